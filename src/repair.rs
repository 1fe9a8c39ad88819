//! `lograft repair`: what a stopped node's data dir holds that the node would refuse or set
//! aside at start, and what can be done about it. By default a dry run: it reads, changes
//! nothing, and prints each finding with what `--apply` would do. Nothing indexed is ever
//! deleted: damaged files are moved aside next to where they were, with the time in the name.
//!
//! | finding | `--apply` |
//! |---|---|
//! | `index/checkpoint.json` damaged | moved aside; the next start rebuilds its sequence from the partitions' commits |
//! | a partition with segments but no (readable) `meta.json` | moved to `index/aside/` (the node does it at start too) |
//! | the config store damaged | moved aside, and a new one is begun: a new cluster unless `[cluster] join` is set |
//! | the config store missing next to indexed data | a new one is begun (the node refuses to start otherwise) |
//! | partitions set aside earlier, old broken queues | listed (restore them by hand, or delete them) |

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::NodeConfig;

/// One thing found, and what `--apply` does about it (`None`: nothing to do but know it).
pub struct Finding {
    pub problem: String,
    pub action: Option<Action>,
}

pub enum Action {
    /// Move `from` to `to` (never delete).
    MoveAside {
        from: PathBuf,
        to: PathBuf,
        then: String,
    },
    /// Begin a new, empty config store at this path.
    NewStore { dir: PathBuf, then: String },
}

impl Action {
    fn describe(&self) -> String {
        match self {
            Action::MoveAside { from, to, then } => {
                format!("move {} to {}; {then}", from.display(), to.display())
            }
            Action::NewStore { dir, then } => {
                format!("begin a new config store in {}; {then}", dir.display())
            }
        }
    }

    fn apply(&self) -> anyhow::Result<()> {
        match self {
            Action::MoveAside { from, to, .. } => {
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                std::fs::rename(from, to)
                    .with_context(|| format!("moving {} to {}", from.display(), to.display()))
            }
            Action::NewStore { dir, .. } => {
                crate::cluster::LocalStore::open(dir)
                    .with_context(|| format!("creating the config store {}", dir.display()))?;
                Ok(())
            }
        }
    }
}

fn stamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%S").to_string()
}

fn aside(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{name}.{what}-{}", stamp()))
}

/// What `dir` (a day partition) has committed: the sequence in its `meta.json` payload, or
/// why it cannot be read. Reads the file only (no tantivy open, no lock, no change).
fn partition_commit(dir: &Path) -> Result<u64, String> {
    let meta = dir.join("meta.json");
    let bytes = std::fs::read(&meta).map_err(|err| format!("{}: {err}", meta.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|err| format!("{} is damaged: {err}", meta.display()))?;
    Ok(value["payload"]
        .as_str()
        .and_then(|payload| serde_json::from_str::<serde_json::Value>(payload).ok())
        .and_then(|payload| payload["seq"].as_u64())
        .unwrap_or(0))
}

/// Examine the data dir of `config` (the node must be stopped). Changes nothing.
pub fn examine(config: &NodeConfig) -> anyhow::Result<(Vec<Finding>, Vec<String>)> {
    let mut findings = Vec::new();
    let mut fine = Vec::new();
    let index = config.index_dir();

    // Day partitions: what they committed, or why they cannot be read.
    let mut commits = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&index) {
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if chrono::NaiveDate::parse_from_str(&name, "%Y-%m-%d").is_err() {
                continue;
            }
            let path = entry.path();
            match partition_commit(&path) {
                Ok(seq) => commits.push(seq),
                Err(reason) => {
                    let holds_segments = std::fs::read_dir(&path).is_ok_and(|mut files| {
                        files.any(|f| {
                            f.is_ok_and(|f| !f.file_name().to_string_lossy().starts_with('.'))
                        })
                    });
                    if !holds_segments {
                        fine.push(format!(
                            "{} was created but never committed (the node removes it at start)",
                            path.display()
                        ));
                        continue;
                    }
                    let to = index.join("aside").join(format!("{name}.{}", stamp()));
                    findings.push(Finding {
                        problem: format!(
                            "index partition {} cannot be read ({reason})",
                            path.display()
                        ),
                        action: Some(Action::MoveAside {
                            from: path.clone(),
                            to,
                            then: "its documents are not searchable until it is restored from a backup (the node sets it aside at start too)".into(),
                        }),
                    });
                }
            }
        }
    }
    if let (Some(low), Some(high)) = (commits.iter().min(), commits.iter().max()) {
        let partitions = match commits.len() {
            1 => "1 index partition".to_string(),
            n => format!("{n} index partitions"),
        };
        fine.push(if low == high {
            format!("{partitions}, committed up to sequence {low}")
        } else {
            format!("{partitions}, committed up to sequences {low} (lowest) to {high}")
        });
    }

    // checkpoint.json.
    let checkpoint = index.join("checkpoint.json");
    match std::fs::read(&checkpoint) {
        Ok(bytes) => match serde_json::from_slice::<crate::index::IndexCheckpoint>(&bytes) {
            Ok(parsed) => fine.push(format!(
                "{} at sequence {}",
                checkpoint.display(),
                parsed.seq
            )),
            Err(err) => findings.push(Finding {
                problem: format!("{} is damaged ({err})", checkpoint.display()),
                action: Some(Action::MoveAside {
                    from: checkpoint.clone(),
                    to: aside(&checkpoint, "damaged"),
                    then: format!(
                        "the next start rebuilds its sequence from the partitions' commits ({}; nothing is indexed twice) and the runners' file positions come from the queue",
                        match commits.iter().min() {
                            Some(seq) => format!("sequence {seq}"),
                            None => "no partition: sequence 0".into(),
                        }
                    ),
                }),
            }),
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if !commits.is_empty() {
                fine.push(format!(
                    "{} is missing: the node rebuilds it from the partitions' commits at start",
                    checkpoint.display()
                ));
            }
        }
        Err(err) => findings.push(Finding {
            problem: format!("{} cannot be read ({err})", checkpoint.display()),
            action: None,
        }),
    }

    // Partitions set aside before, and queues moved aside.
    if let Ok(entries) = std::fs::read_dir(index.join("aside")) {
        for entry in entries.flatten() {
            findings.push(Finding {
                problem: format!(
                    "{} was set aside earlier (damaged): its documents are not searchable; restore the partition from a backup into {}, or delete this copy once it is not needed",
                    entry.path().display(),
                    index.display()
                ),
                action: None,
            });
        }
    }
    if let Ok(entries) = std::fs::read_dir(&config.data_dir) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with("queue.broken-")
            {
                findings.push(Finding {
                    problem: format!(
                        "{} is a damaged queue moved aside earlier (what it held was read again from the files); delete it once it is not needed",
                        entry.path().display()
                    ),
                    action: None,
                });
            }
        }
    }

    // The config store.
    if config.cluster.backend == crate::config::ClusterBackend::Embedded {
        let store = config.store_dir();
        let then = "the node starts as a new cluster (a new admin password in initial-admin-password, no runner configs): to take a cluster's state instead, set [cluster] join and a join token before starting; to keep this one, restore the store from a backup instead of applying";
        if store.exists() {
            match crate::cluster::LocalStore::open(&store) {
                Ok(_) => fine.push(format!("config store {}", store.display())),
                Err(err) => findings.push(Finding {
                    problem: format!("{err:#}"),
                    action: Some(Action::MoveAside {
                        from: store.clone(),
                        to: aside(&store, "damaged"),
                        then: format!("then a new config store is begun: {then}"),
                    }),
                }),
            }
        } else if !commits.is_empty() || checkpoint.exists() {
            findings.push(Finding {
                problem: format!(
                    "the config store {} is missing, but {} holds indexed data (the node refuses to start)",
                    store.display(),
                    index.display()
                ),
                action: Some(Action::NewStore {
                    dir: store.clone(),
                    then: then.into(),
                }),
            });
        }
    }
    Ok((findings, fine))
}

/// `lograft repair [--apply]`: print what [`examine`] found and, with `apply`, do it.
pub fn run(config: &NodeConfig, apply: bool) -> anyhow::Result<bool> {
    // The node must be stopped: it holds this lock while it runs.
    let lock_path = config.data_dir.join("lograft.lock");
    let _lock = match std::fs::OpenOptions::new().write(true).open(&lock_path) {
        Ok(file) => {
            if file.try_lock().is_err() {
                anyhow::bail!(
                    "data_dir {} is in use (lograft is running on it): stop the node first",
                    config.data_dir.display()
                );
            }
            Some(file)
        }
        Err(_) => None,
    };
    let (mut findings, fine) = examine(config)?;
    // A damaged store moved aside is followed by a new one.
    if findings.iter().any(|f| {
        matches!(&f.action, Some(Action::MoveAside { from, .. }) if *from == config.store_dir())
    }) {
        findings.push(Finding {
            problem: String::new(),
            action: Some(Action::NewStore {
                dir: config.store_dir(),
                then: "(after moving the damaged one aside)".into(),
            }),
        });
    }
    println!(
        "lograft repair: data_dir {}{}",
        config.data_dir.display(),
        if apply {
            ""
        } else {
            " (dry run: nothing is changed; --apply does what is listed under \"would\")"
        }
    );
    for line in &fine {
        println!("ok: {line}");
    }
    let mut changed = false;
    for finding in &findings {
        if !finding.problem.is_empty() {
            println!("problem: {}", finding.problem);
        }
        match (&finding.action, apply) {
            (Some(action), false) => println!("  would: {}", action.describe()),
            (Some(action), true) => {
                action.apply()?;
                changed = true;
                println!("  done: {}", action.describe());
            }
            (None, _) => {}
        }
    }
    if findings.is_empty() {
        println!("nothing to repair");
    } else if !apply && findings.iter().any(|f| f.action.is_some()) {
        println!("run again with --apply to do it");
    }
    Ok(changed)
}
