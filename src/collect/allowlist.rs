//! The node's local allowlist: the only authority on which files a runner may read.
//!
//! It comes from the node's own config file (`collect.allowed_paths`) and is never replicated.
//! It is checked twice: when a runner config is accepted (its glob must lie inside an allowed
//! glob) and again when each file is opened (the canonical path, symlinks resolved, must match),
//! so a symlink inside an allowed folder cannot lead outside it.
//!
//! On top of it, a built-in deny list ([`DENIED_PATHS`]: password hashes, sudoers, private
//! keys, `/proc`, `/sys`, `/dev`) is refused at both checks even when `allowed_paths` is as broad
//! as `/**`. It cannot be configured away.
//!
//! Paths are never decoded: `%2e%2e` is a file name of six characters on Linux, not `..`.

use std::path::{Component, Path};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Files lograft never reads, whatever `collect.allowed_paths` says. Matched against the path
/// with `*` not crossing `/`; `**/name` matches that name in any folder.
pub const DENIED_PATHS: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/sudoers.d/**",
    "/proc/**",
    "/sys/**",
    "/dev/**",
    "/etc/ssl/private/**",
    "/root/.ssh/**",
    "/home/*/.ssh/**",
    "**/id_rsa",
    "**/id_ed25519",
    "**/id_ecdsa",
    "**/*.key",
    "**/*.pem",
    "/etc/ssh/ssh_host_*_key",
];

/// Why a runner glob is refused at config time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not an absolute path, contains a NUL byte, or `..` climbs above `/`.
    Invalid(String),
    /// On the built-in deny list. `resolved` is the (normalized or canonical) form that matched.
    Denied {
        resolved: String,
        rule: &'static str,
    },
    /// Outside `collect.allowed_paths`. `resolved` is the form that fell outside.
    NotAllowed { resolved: String },
}

impl Refusal {
    pub fn denied_reason(resolved: &str, rule: &str) -> String {
        format!(
            "{resolved} is on lograft's built-in deny list ({rule:?}): it is never read, \
             whatever collect.allowed_paths says"
        )
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Invalid(reason) => f.write_str(reason),
            Refusal::Denied { resolved, rule } => {
                f.write_str(&Refusal::denied_reason(resolved, rule))
            }
            Refusal::NotAllowed { resolved } => {
                write!(f, "{resolved} is outside this node's collect.allowed_paths")
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Allowlist {
    patterns: Vec<String>,
    set: GlobSet,
    denied: GlobSet,
    /// The node's own data dir (store, tokens, secrets): never readable by a runner, by path
    /// or through a hard link.
    protected: Option<std::path::PathBuf>,
    /// Where runners may write (`collect.write_paths`, logkit's `file` sender): empty means
    /// nowhere.
    write_patterns: Vec<String>,
    writes: GlobSet,
    /// For checking a config's shape only (a cluster-wide push: each target node checks its
    /// own lists when it applies the config).
    shape_only: bool,
}

/// Files whose inodes a hard link must not lead to: the literal entries of [`DENIED_PATHS`]
/// and the files of a few denied folders (wildcard rules like `**/*.key` are matched by name).
const DENIED_FILES_BY_INODE: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
];
const DENIED_DIRS_BY_INODE: &[&str] = &[
    "/etc/sudoers.d",
    "/etc/ssl/private",
    "/root/.ssh",
    "/etc/ssh",
];

fn build_set<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<GlobSet, globset::Error> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(GlobBuilder::new(pattern).literal_separator(true).build()?);
    }
    builder.build()
}

impl Allowlist {
    pub fn new(patterns: Vec<String>) -> Result<Allowlist, globset::Error> {
        Ok(Allowlist {
            set: build_set(patterns.iter().map(String::as_str))?,
            denied: build_set(DENIED_PATHS.iter().copied())?,
            patterns,
            protected: None,
            write_patterns: Vec::new(),
            writes: GlobSet::empty(),
            shape_only: false,
        })
    }

    /// Allows every path to be read and written (bar the deny list): for checking the shape of
    /// a config that other nodes will check against their own lists.
    pub fn shape_only() -> Allowlist {
        let mut list = Allowlist::new(vec!["/**".into()]).expect("a valid glob");
        list.shape_only = true;
        list
    }

    /// Also let runners write to the files matching `patterns` (`collect.write_paths`).
    pub fn with_writes(mut self, patterns: Vec<String>) -> Result<Allowlist, globset::Error> {
        self.writes = build_set(patterns.iter().map(String::as_str))?;
        self.write_patterns = patterns;
        Ok(self)
    }

    /// Whether a runner may write to `path` (absolute, normalized or canonical): inside
    /// `collect.write_paths`, and neither readable by runners (it could forge the logs being
    /// collected), nor deny-listed, nor in the node's data dir.
    pub fn allows_write(&self, path: &Path) -> Result<(), String> {
        if let Some(rule) = self.deny_rule(path) {
            return Err(Refusal::denied_reason(&path.display().to_string(), rule));
        }
        if self.shape_only {
            return Ok(());
        }
        if let Some(data_dir) = &self.protected
            && path.starts_with(data_dir)
        {
            return Err(format!(
                "{} is in this node's data dir: runners never write there",
                path.display()
            ));
        }
        if !self.writes.is_match(path) {
            return Err(format!(
                "{} is outside this node's collect.write_paths {:?}",
                path.display(),
                self.write_patterns
            ));
        }
        if self.set.is_match(path) {
            return Err(format!(
                "{} is inside this node's collect.allowed_paths {:?}: a runner may not write \
                 where runners read (it could forge the logs being collected)",
                path.display(),
                self.patterns
            ));
        }
        Ok(())
    }

    /// Also refuse every file of `data_dir` (the node's own), by path and by inode.
    pub fn protect(mut self, data_dir: &Path) -> Allowlist {
        self.protected =
            Some(std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf()));
        self
    }

    /// Whether a file the tailer opened may be read: `opened` is the path it really is (from
    /// its descriptor), `md` its metadata. On top of [`Allowlist::allows_file`]: files of the
    /// node's data dir, files on `/proc`, `/sys` and `/dev`, and hard links to a deny-listed
    /// file or to a file of the data dir are refused.
    pub fn allows_opened(&self, opened: &Path, md: &std::fs::Metadata) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        if let Some(data_dir) = &self.protected
            && opened.starts_with(data_dir)
        {
            return Err(format!(
                "{} is in this node's own data_dir: runners never read it",
                opened.display()
            ));
        }
        self.allows_file(opened)?;
        for pseudo in ["/proc", "/sys", "/dev"] {
            if std::fs::metadata(pseudo).is_ok_and(|m| m.dev() == md.dev()) {
                return Err(format!(
                    "{} is on the file system of {pseudo}, which lograft never reads",
                    opened.display()
                ));
            }
        }
        // A hard link has no target to check: compare the inode with the files it must not be.
        if md.nlink() > 1 {
            let same = |path: &Path| {
                std::fs::symlink_metadata(path)
                    .is_ok_and(|m| m.is_file() && m.dev() == md.dev() && m.ino() == md.ino())
            };
            let mut candidates: Vec<std::path::PathBuf> = DENIED_FILES_BY_INODE
                .iter()
                .map(std::path::PathBuf::from)
                .collect();
            for dir in DENIED_DIRS_BY_INODE {
                if let Ok(entries) = std::fs::read_dir(dir) {
                    candidates.extend(entries.filter_map(Result::ok).map(|e| e.path()));
                }
            }
            if let Some(hit) = candidates.iter().find(|path| same(path)) {
                return Err(format!(
                    "{} is a hard link to {}, which lograft never reads",
                    opened.display(),
                    hit.display()
                ));
            }
            if let Some(data_dir) = &self.protected {
                let linked = walkdir::WalkDir::new(data_dir)
                    .into_iter()
                    .filter_map(Result::ok)
                    .find(|entry| same(entry.path()));
                if let Some(entry) = linked {
                    return Err(format!(
                        "{} is a hard link to {} in this node's own data_dir",
                        opened.display(),
                        entry.path().display()
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The deny rule matching `path`, if any.
    pub fn deny_rule(&self, path: impl AsRef<Path>) -> Option<&'static str> {
        self.denied
            .matches(path)
            .first()
            .map(|&index| DENIED_PATHS[index])
    }

    /// Whether a file (already canonicalized by the caller) may be read; `Err` says why not.
    pub fn allows_file(&self, canonical: &Path) -> Result<(), String> {
        if let Some(rule) = self.deny_rule(canonical) {
            return Err(Refusal::denied_reason(
                &canonical.display().to_string(),
                rule,
            ));
        }
        if self.set.is_match(canonical) {
            Ok(())
        } else {
            Err(format!(
                "{} is outside this node's collect.allowed_paths {:?}",
                canonical.display(),
                self.patterns
            ))
        }
    }

    /// Whether every file a runner glob can match lies inside the allowlist and off the deny
    /// list, as far as can be told before the files exist. The glob is tested as a path:
    /// `/var/log/*.log` is inside `/var/log/**`, `/var/**` is not; `/etc/ssl/private/*.key` and
    /// `/sys/**` are denied, `/var/log/**` is not (its files are vetted when opened).
    ///
    /// The glob is first normalized lexically (`//`, `.`, `..`; climbing above `/` is refused),
    /// then the longest existing part of its literal prefix is canonicalized (symlinks, and
    /// `/proc/self/root`-style links) and the rebuilt glob is tested too.
    pub fn covers_pattern(&self, pattern: &str) -> Result<(), Refusal> {
        if pattern.contains('\0') {
            return Err(Refusal::Invalid(format!("{pattern:?} contains a NUL byte")));
        }
        if !pattern.starts_with('/') {
            return Err(Refusal::Invalid(format!(
                "{pattern:?} is not an absolute path"
            )));
        }
        let normalized = normalize_lexically(pattern)
            .ok_or_else(|| Refusal::Invalid(format!("{pattern:?} climbs above /")))?;
        let mut forms = vec![normalized.clone()];
        if let Some(canonical) = canonical_form(&normalized)
            && canonical != normalized
        {
            forms.push(canonical);
        }
        for form in &forms {
            if let Some(rule) = self.deny_rule(form) {
                return Err(Refusal::Denied {
                    resolved: form.clone(),
                    rule,
                });
            }
        }
        for form in forms {
            if !self.set.is_match(&form) {
                return Err(Refusal::NotAllowed { resolved: form });
            }
        }
        Ok(())
    }
}

/// Resolve `//`, `.` and `..` lexically in an absolute path or glob; `None` if `..` climbs above
/// `/`. Nothing is decoded.
pub fn normalize_lexically(path: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

fn has_glob_chars(component: &str) -> bool {
    component.contains(['*', '?', '[', '{', '\\'])
}

/// The glob with the longest existing ancestor of its literal prefix (all leading components
/// without glob characters, the file itself for a plain path) canonicalized.
fn canonical_form(normalized: &str) -> Option<String> {
    let components: Vec<&str> = normalized.split('/').filter(|c| !c.is_empty()).collect();
    let literal_len = components
        .iter()
        .position(|c| has_glob_chars(c))
        .unwrap_or(components.len());
    for existing in (0..=literal_len).rev() {
        let ancestor = format!("/{}", components[..existing].join("/"));
        if let Ok(canonical) = std::fs::canonicalize(&ancestor) {
            let mut rebuilt = canonical
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string();
            for component in &components[existing..] {
                rebuilt.push('/');
                rebuilt.push_str(component);
            }
            if rebuilt.is_empty() {
                rebuilt.push('/');
            }
            return Some(rebuilt);
        }
    }
    None
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
    fn writes_go_only_inside_write_paths_and_never_where_runners_read() {
        let list = Allowlist::new(vec!["/var/log/**".into()])
            .unwrap()
            .protect(Path::new("/var/lib/lograft"))
            .with_writes(vec!["/var/**".into()])
            .unwrap();
        assert!(list.allows_write(Path::new("/var/out/a.json")).is_ok());
        let refused = |path: &str| list.allows_write(Path::new(path)).unwrap_err();
        assert!(refused("/var/log/forged.log").contains("collect.allowed_paths"));
        assert!(refused("/var/lib/lograft/queue/x").contains("data dir"));
        assert!(refused("/etc/out.json").contains("collect.write_paths"));
        assert!(refused("/var/keys/server.key").contains("deny list"));
        let nowhere = Allowlist::new(vec!["/var/log/**".into()]).unwrap();
        assert!(
            nowhere.allows_write(Path::new("/tmp/x")).is_err(),
            "empty write_paths: nowhere"
        );
        assert!(
            Allowlist::shape_only()
                .allows_write(Path::new("/tmp/x"))
                .is_ok()
        );
    }

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
        assert!(
            list.covers_pattern(&format!("{}/*.log", allowed.display()))
                .is_ok()
        );
        assert!(matches!(
            list.covers_pattern(&format!("{}/link/*.log", allowed.display())),
            Err(Refusal::NotAllowed { .. })
        ));
        // Also when the folders after the link do not exist yet.
        assert!(matches!(
            list.covers_pattern(&format!("{}/link/not/yet/*.log", allowed.display())),
            Err(Refusal::NotAllowed { .. })
        ));
        assert!(list.allows_file(&secret.join("x.log")).is_err());
    }

    fn list(patterns: &[&str]) -> Allowlist {
        Allowlist::new(patterns.iter().map(|s| s.to_string()).collect()).unwrap()
    }

    fn assert_denied(list: &Allowlist, pattern: &str) {
        match list.covers_pattern(pattern) {
            Err(refusal @ Refusal::Denied { .. }) => {
                assert!(
                    refusal.to_string().contains("built-in deny list"),
                    "{pattern}: {refusal}"
                )
            }
            other => panic!("{pattern:?} should be on the deny list, got {other:?}"),
        }
    }

    #[test]
    fn deny_list_applies_to_files_even_with_a_root_allowlist() {
        let everything = list(&["/**"]);
        for path in [
            "/etc/shadow",
            "/etc/shadow-",
            "/etc/gshadow",
            "/etc/gshadow-",
            "/etc/sudoers",
            "/etc/sudoers.d/90-cloud-init-users",
            "/proc/self/environ",
            "/proc/1/cmdline",
            "/sys/kernel/notes",
            "/dev/zero",
            "/dev/shm/x.log",
            "/etc/ssl/private/ssl-cert-snakeoil.key",
            "/etc/ssl/private/nested/x.log",
            "/root/.ssh/authorized_keys",
            "/home/alice/.ssh/known_hosts",
            "/home/alice/backup/id_rsa",
            "/var/lib/x/id_ed25519",
            "/opt/id_ecdsa",
            "/var/log/app/server.key",
            "/srv/tls/cert.pem",
        ] {
            let err = everything.allows_file(Path::new(path)).unwrap_err();
            assert!(
                err.contains("built-in deny list") && err.contains(path),
                "{err}"
            );
            assert_denied(&everything, path);
        }
        for path in [
            "/etc/passwd",
            "/etc/shadow.log",
            "/var/log/syslog",
            "/var/log/auth.log",
            "/home/alice/app.log",
            "/var/log/id_rsa.log",
            "/var/log/keys.log",
            "/var/log/app.pem.log",
        ] {
            assert_eq!(everything.allows_file(Path::new(path)), Ok(()), "{path}");
        }
        // Outside the allowlist (and not denied): the allowlist reason.
        let logs = list(&["/var/log/**"]);
        let err = logs.allows_file(Path::new("/etc/passwd")).unwrap_err();
        assert!(
            err.contains("outside this node's collect.allowed_paths"),
            "{err}"
        );
        let err = logs.allows_file(Path::new("/var/log/x.pem")).unwrap_err();
        assert!(err.contains("built-in deny list"), "{err}");
    }

    #[test]
    fn deny_list_applies_to_runner_globs() {
        let everything = list(&["/**"]);
        for pattern in [
            "/sys/**",
            "/proc/**",
            "/proc/*/environ",
            "/proc/self/root/etc/passwd",
            "/proc/1/cwd/etc/passwd",
            "/dev/*",
            "/etc/ssl/private/*.key",
            "/etc/ssl/private/**",
            "/etc/sudoers.d/*",
            "/home/*/.ssh/*",
            "/root/.ssh/id_rsa",
            "/var/log/*.pem",
            "/var/log/**/*.key",
            "/etc/shadow",
            "//etc//shadow",
            "/var/log/../../etc/shadow",
            "/var/log/./../../etc/gshadow",
        ] {
            assert_denied(&everything, pattern);
        }
        // Broad globs are fine at config time: their files are vetted when opened.
        for pattern in [
            "/var/log/**",
            "/var/log/*.log",
            "/**",
            "/etc/*",
            "/etc/passwd",
        ] {
            assert_eq!(everything.covers_pattern(pattern), Ok(()), "{pattern}");
        }
    }

    #[test]
    fn traversal_corpus_against_a_log_folder() {
        let logs = list(&["/var/log/**"]);
        for pattern in [
            "/var/log/../../etc/shadow",
            "//etc//shadow",
            "/var/log/./../../etc/passwd",
            "/var/log/../../../../../../etc/passwd",
            "/var/log/..",
            "/var/log/../*.log",
            "/var/**",
            "/etc/passwd",
            "/proc/self/root/etc/passwd",
            "/proc/self/root/var/log/syslog",
            "/proc/self/cwd/x.log",
            "/proc/1/cwd/x.log",
            "/proc/self/environ",
            "/dev/zero",
            "/var/log/x.key",
            // Not decoded: a literal folder named "%2e%2e" next to /etc, which is outside.
            "/etc/%2e%2e/passwd",
            "/var/log/%2e%2e/../../etc/passwd",
        ] {
            assert!(
                logs.covers_pattern(pattern).is_err(),
                "{pattern:?} accepted"
            );
        }
        for (pattern, expected) in [
            ("", "not an absolute path"),
            ("x.log", "not an absolute path"),
            ("var/log/x.log", "not an absolute path"),
            ("./var/log/x.log", "not an absolute path"),
            ("~root/.ssh/id_rsa", "not an absolute path"),
            ("~/x.log", "not an absolute path"),
            ("/var/log/a\0/../../etc/passwd", "NUL"),
            ("/var/log/x.log\0", "NUL"),
            ("/../etc/passwd", "climbs above /"),
        ] {
            match logs.covers_pattern(pattern) {
                Err(Refusal::Invalid(reason)) => {
                    assert!(reason.contains(expected), "{pattern:?}: {reason}")
                }
                other => panic!("{pattern:?}: {other:?}"),
            }
        }
        // Percent-encoding is not decoded: `%2e%2e` is a literal folder name inside /var/log,
        // so these stay inside the allowlist and are correctly accepted.
        for pattern in [
            "/var/log/%2e%2e/%2e%2e/etc/passwd",
            "/var/log/%2E%2E/x.log",
            "/var/log/..%2f..%2fetc%2fpasswd",
            "/var/log/app/../x.log",
            "/var/log/./x.log",
            "//var//log//x.log",
            "/var/log/*.log",
        ] {
            assert_eq!(logs.covers_pattern(pattern), Ok(()), "{pattern:?}");
        }
    }

    #[test]
    fn symlinks_to_etc_and_proc_inside_the_allowed_folder() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("logs");
        std::fs::create_dir_all(&allowed).unwrap();
        std::os::unix::fs::symlink("/etc", allowed.join("etc-link")).unwrap();
        std::os::unix::fs::symlink("/proc/self", allowed.join("me")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", allowed.join("passwd.log")).unwrap();
        std::os::unix::fs::symlink("/", allowed.join("root")).unwrap();
        let base = allowed.display().to_string();
        let logs = list(&[&format!("{base}/**")]);
        for pattern in [
            format!("{base}/etc-link/passwd"),
            format!("{base}/etc-link/*.conf"),
            format!("{base}/etc-link/**"),
            format!("{base}/passwd.log"),
            format!("{base}/root/etc/hostname"),
            format!("{base}/x/../etc-link/passwd"),
        ] {
            assert!(
                matches!(
                    logs.covers_pattern(&pattern),
                    Err(Refusal::NotAllowed { .. })
                ),
                "{pattern}: {:?}",
                logs.covers_pattern(&pattern)
            );
        }
        // Through a link into /proc or onto a denied file: the deny list names it.
        for pattern in [
            format!("{base}/me/environ"),
            format!("{base}/me/root/etc/passwd"),
            format!("{base}/etc-link/shadow"),
            format!("{base}/root/sys/kernel/notes"),
        ] {
            assert!(logs.covers_pattern(&pattern).is_err(), "{pattern}");
        }
        assert_denied(&logs, &format!("{base}/etc-link/shadow"));
        assert_denied(&list(&["/**"]), &format!("{base}/me/environ"));
        assert_denied(&list(&["/**"]), &format!("{base}/root/proc/self/environ"));
        // The open-time check sees the canonical path.
        let canonical = std::fs::canonicalize(allowed.join("passwd.log")).unwrap();
        assert!(logs.allows_file(&canonical).is_err());
        // A glob over the folder is fine: each file is vetted when it is opened.
        assert_eq!(logs.covers_pattern(&format!("{base}/*.log")), Ok(()));
    }

    #[test]
    fn lexical_normalization() {
        assert_eq!(
            normalize_lexically("/var/log/../../etc/shadow").as_deref(),
            Some("/etc/shadow")
        );
        assert_eq!(
            normalize_lexically("//etc//shadow").as_deref(),
            Some("/etc/shadow")
        );
        assert_eq!(
            normalize_lexically("/var/log/./x/").as_deref(),
            Some("/var/log/x")
        );
        assert_eq!(normalize_lexically("/.."), None);
        assert_eq!(normalize_lexically("/").as_deref(), Some("/"));
    }
}
