//! The node's local allowlist: the only authority on which files a runner may read.
//!
//! It comes from the node's own config file (`collect.allowed_paths`) and is never replicated.
//! It is checked twice: when a runner config is accepted (its glob must lie inside an allowed
//! glob) and again when each file is opened (the canonical path, symlinks resolved, must match),
//! so a symlink inside an allowed folder cannot lead outside it.

use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

#[derive(Debug, Clone)]
pub struct Allowlist {
    patterns: Vec<String>,
    set: GlobSet,
}

impl Allowlist {
    pub fn new(patterns: Vec<String>) -> Result<Allowlist, globset::Error> {
        let mut builder = GlobSetBuilder::new();
        for pattern in &patterns {
            builder.add(GlobBuilder::new(pattern).literal_separator(true).build()?);
        }
        Ok(Allowlist {
            set: builder.build()?,
            patterns,
        })
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether a file (already canonicalized by the caller) may be read.
    pub fn allows_file(&self, canonical: &Path) -> bool {
        self.set.is_match(canonical)
    }

    /// Whether every file a runner glob can match lies inside the allowlist. The glob is tested
    /// as a path: `/var/log/*.log` is inside `/var/log/**`, `/var/**` is not. When the literal
    /// folder of the glob exists, its canonical form is tested too (symlinked folders).
    pub fn covers_pattern(&self, pattern: &str) -> bool {
        if !self.set.is_match(pattern) {
            return false;
        }
        let (literal_dir, rest) = split_literal_prefix(pattern);
        match std::fs::canonicalize(&literal_dir) {
            Ok(canonical) => {
                let rebuilt = if rest.is_empty() {
                    canonical.to_string_lossy().into_owned()
                } else {
                    format!(
                        "{}/{}",
                        canonical.to_string_lossy().trim_end_matches('/'),
                        rest
                    )
                };
                self.set.is_match(rebuilt)
            }
            Err(_) => true, // does not exist yet: the open-time check guards it
        }
    }
}

/// Split a glob into its longest literal directory prefix and the rest.
pub fn split_literal_prefix(pattern: &str) -> (String, String) {
    let mut literal = Vec::new();
    let parts: Vec<&str> = pattern.split('/').collect();
    let mut index = 0;
    while index < parts.len().saturating_sub(1) {
        let part = parts[index];
        if part.contains(['*', '?', '[', '{', '\\']) {
            break;
        }
        literal.push(part);
        index += 1;
    }
    let dir = if literal.len() <= 1 {
        "/".to_string()
    } else {
        literal.join("/")
    };
    (dir, parts[index..].join("/"))
}

/// Compile a runner glob the same way the allowlist does (`*` does not cross `/`).
pub fn compile_glob(pattern: &str) -> Result<globset::GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()?
        .compile_matcher())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_prefix() {
        assert_eq!(
            split_literal_prefix("/var/log/*.log"),
            ("/var/log".into(), "*.log".into())
        );
        assert_eq!(
            split_literal_prefix("/var/log/app.log"),
            ("/var/log".into(), "app.log".into())
        );
        assert_eq!(split_literal_prefix("/*/x"), ("/".into(), "*/x".into()));
    }

    #[test]
    fn symlinked_folder_out_of_the_allowlist_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("allowed");
        let secret = dir.path().join("secret");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&secret).unwrap();
        std::os::unix::fs::symlink(&secret, allowed.join("link")).unwrap();
        let list = Allowlist::new(vec![format!("{}/**", allowed.display())]).unwrap();
        assert!(list.covers_pattern(&format!("{}/*.log", allowed.display())));
        assert!(!list.covers_pattern(&format!("{}/link/*.log", allowed.display())));
        assert!(!list.allows_file(&secret.join("x.log")));
    }
}
