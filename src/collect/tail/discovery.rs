//! Finding the files: walking the glob, opening what matches (checked against the filter on
//! the opened file), telling renames, rotations, truncations and inode reuse apart.

use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use super::*;

pub(super) fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '[', '{', '\\'])
}

impl Tailer {
    /// Matching regular files, sorted by path, with their stream key.
    pub(super) fn walk(&mut self, ev: &mut Vec<TailEvent>) -> Vec<(PathBuf, String)> {
        let Some(depth) = self.walk_depth else {
            return match fs::metadata(&self.root) {
                Ok(m) if m.is_file() => vec![(self.root.clone(), stream_key(m.dev(), m.ino()))],
                _ => Vec::new(),
            };
        };
        let mut walker = WalkDir::new(&self.root)
            .follow_links(false)
            .sort_by_file_name();
        if let Some(d) = depth {
            walker = walker.max_depth(d);
        }
        let mut out = Vec::new();
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let not_found = e
                        .io_error()
                        .is_some_and(|io| io.kind() == ErrorKind::NotFound);
                    if let (Some(p), false) = (e.path(), not_found)
                        && self.unreadable.insert(p.to_path_buf())
                    {
                        ev.push(TailEvent::Unreadable {
                            path: p.to_path_buf(),
                            error: e.to_string(),
                        });
                    }
                    continue;
                }
            };
            if !self.matcher.is_match(entry.path()) {
                continue;
            }
            // A symlink to a file counts as that file (logs are often symlinked); where it
            // points is checked against the allowlist when it is opened.
            let metadata = if entry.file_type().is_symlink() {
                fs::metadata(entry.path())
            } else if entry.file_type().is_file() {
                entry.metadata().map_err(io::Error::from)
            } else {
                continue;
            };
            if let Ok(m) = metadata
                && m.is_file()
            {
                out.push((entry.into_path(), stream_key(m.dev(), m.ino())));
            }
        }
        out
    }

    pub(super) fn report_unreadable(
        &mut self,
        path: &Path,
        e: &io::Error,
        ev: &mut Vec<TailEvent>,
    ) {
        if self.unreadable.insert(path.to_path_buf()) {
            ev.push(TailEvent::Unreadable {
                path: path.to_path_buf(),
                error: e.to_string(),
            });
        }
    }

    /// Filter + open. `None` if refused, unreadable, vanished or not a regular file.
    pub(super) fn open_checked(
        &mut self,
        path: &Path,
        ev: &mut Vec<TailEvent>,
    ) -> Option<(File, fs::Metadata)> {
        // Open first, then check what was opened: checking a path and opening it after leaves
        // a window in which a symlink swapped in wins (seen: /etc/shadow read through a swap).
        // Non-blocking, so a FIFO swapped in cannot hang the tailer (it is refused below as
        // not a regular file).
        let res = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .and_then(|file| {
                let md = file.metadata()?;
                if !md.is_file() {
                    return Ok(Ok((file, md)));
                }
                let opened = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
                if let Err(reason) = (self.filter)(&opened, &md) {
                    return Ok(Err(reason));
                }
                Ok(Ok((file, md)))
            });
        match res {
            Ok(Ok((file, md))) if md.is_file() => {
                self.unreadable.remove(path);
                self.refused.remove(path);
                Some((file, md))
            }
            Ok(Ok(_)) => None,
            Ok(Err(reason)) => {
                if self.refused.insert(path.to_path_buf()) {
                    ev.push(TailEvent::Refused {
                        path: path.to_path_buf(),
                        reason,
                    });
                }
                None
            }
            Err(e) if e.kind() == ErrorKind::NotFound => None, // vanished since the walk
            Err(e) => {
                self.report_unreadable(path, &e, ev);
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_stream(
        &mut self,
        path: &Path,
        file: File,
        md: &fs::Metadata,
        fp: (u64, u32),
        offset: u64,
        skipping: bool,
        draining: bool,
        dirty: bool,
    ) {
        let key = stream_key(md.dev(), md.ino());
        if self.streams.contains_key(&key) {
            return;
        }
        self.order.push(key.clone());
        self.streams.insert(
            key.clone(),
            Stream {
                key,
                path: path.to_path_buf(),
                dev: md.dev(),
                ino: md.ino(),
                file,
                fingerprint: fp.0,
                fingerprint_len: fp.1,
                offset,
                read_pos: offset,
                pending: Vec::new(),
                skipping,
                draining,
                last_data: Instant::now(),
                dirty,
            },
        );
    }

    /// A walked file with no open stream: resume its checkpoint or start a new stream.
    pub(super) fn open_found(&mut self, path: &Path, newest: bool, ev: &mut Vec<TailEvent>) {
        let Some((file, md)) = self.open_checked(path, ev) else {
            return;
        };
        // Identity of what we actually opened (the path may have changed since the walk).
        let key = stream_key(md.dev(), md.ino());
        if self.streams.contains_key(&key) {
            return;
        }
        let fpb = self.opts.fingerprint_bytes;
        // A resumed checkpoint that did not change needs no new checkpoint.
        let (offset, skipping, fp, dirty) = match self.restored.remove(&key) {
            Some(cp) => match refresh_fp(&file, cp.fingerprint, cp.fingerprint_len, fpb) {
                Ok(Some(fp)) => {
                    let same = cp.path == path && fp == (cp.fingerprint, cp.fingerprint_len);
                    (cp.offset, cp.skipping_oversized, fp, !same)
                }
                Ok(None) => {
                    ev.push(if cp.path == path {
                        TailEvent::Truncated {
                            path: path.to_path_buf(),
                            key: key.clone(),
                            old_offset: cp.offset,
                        }
                    } else {
                        TailEvent::Replaced {
                            path: path.to_path_buf(),
                            key: key.clone(),
                        }
                    });
                    (0, false, fresh_fp(&file, fpb), true)
                }
                Err(e) => {
                    self.report_unreadable(path, &e, ev);
                    self.restored.insert(key, cp);
                    return;
                }
            },
            None => (
                if newest { md.len() } else { 0 },
                false,
                fresh_fp(&file, fpb),
                true,
            ),
        };
        ev.push(TailEvent::Opened {
            path: path.to_path_buf(),
            key,
            offset,
        });
        self.add_stream(path, file, &md, fp, offset, skipping, false, dirty);
    }

    /// A restored checkpoint whose file is not matched by the glob: look for the same inode
    /// in its old directory (rotated while we were down) and drain it. Returns false if the
    /// file is gone; true if resumed or to be retried (refused/unreadable).
    pub(super) fn resume_rotated(
        &mut self,
        key: &str,
        cp: &FileCheckpoint,
        ev: &mut Vec<TailEvent>,
    ) -> bool {
        let Some(dir) = cp.path.parent() else {
            return false;
        };
        let Ok(rd) = fs::read_dir(dir) else {
            return false;
        };
        let found = rd.flatten().map(|e| e.path()).find(|p| {
            fs::symlink_metadata(p)
                .is_ok_and(|m| m.is_file() && m.dev() == cp.dev && m.ino() == cp.ino)
        });
        let Some(path) = found else { return false };
        let Some((file, md)) = self.open_checked(&path, ev) else {
            self.restored.insert(key.to_string(), cp.clone());
            return true;
        };
        if (md.dev(), md.ino()) != (cp.dev, cp.ino) {
            return false;
        }
        match refresh_fp(
            &file,
            cp.fingerprint,
            cp.fingerprint_len,
            self.opts.fingerprint_bytes,
        ) {
            Ok(Some(fp)) => {
                ev.push(TailEvent::Opened {
                    path: path.clone(),
                    key: key.to_string(),
                    offset: cp.offset,
                });
                ev.push(TailEvent::Rotated {
                    old_path: cp.path.clone(),
                    key: key.to_string(),
                });
                self.add_stream(
                    &path,
                    file,
                    &md,
                    fp,
                    cp.offset,
                    cp.skipping_oversized,
                    true,
                    true,
                );
                true
            }
            _ => false,
        }
    }

    /// Walks the glob, matches files to streams and detects rotation, truncation, deletion
    /// and inode reuse. Returns the events (the caller logs and counts them).
    pub fn scan(&mut self) -> Vec<TailEvent> {
        let mut ev = Vec::new();
        let found = self.walk(&mut ev);
        let newest = self.first_run && !self.scanned && self.opts.read_from == ReadFrom::Newest;
        let fpb = self.opts.fingerprint_bytes;
        // Group paths by file (hard links): one stream per (dev, ino).
        let mut by_key: HashMap<String, Vec<PathBuf>> = HashMap::new();
        let mut keys = Vec::new();
        for (path, key) in found {
            let paths = by_key.entry(key.clone()).or_default();
            if paths.is_empty() {
                keys.push(key);
            }
            paths.push(path);
        }
        // Active streams no longer found: rotated away or deleted; drain them.
        for key in &self.order {
            let s = self.streams.get_mut(key).expect("order in sync");
            if s.draining || by_key.contains_key(key) {
                continue;
            }
            let at_path = match fs::symlink_metadata(&s.path) {
                Ok(m) => Some(stream_key(m.dev(), m.ino())),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(_) => continue, // cannot tell (EACCES...): keep reading it as active
            };
            if at_path.as_deref() == Some(key.as_str()) {
                continue; // still there: the walk missed it (I/O error); do not drop it
            }
            let linked = s.file.metadata().is_ok_and(|m| m.nlink() > 0);
            ev.push(if at_path.is_some() || linked {
                TailEvent::Rotated {
                    old_path: s.path.clone(),
                    key: key.clone(),
                }
            } else {
                TailEvent::Deleted {
                    path: s.path.clone(),
                    key: key.clone(),
                }
            });
            s.draining = true;
            s.last_data = Instant::now();
        }
        for key in &keys {
            let paths = &by_key[key];
            if let Some(s) = self.streams.get_mut(key) {
                if !paths.contains(&s.path) {
                    ev.push(TailEvent::Renamed {
                        from: s.path.clone(),
                        to: paths[0].clone(),
                        key: key.clone(),
                    });
                    s.path = paths[0].clone();
                    s.dirty = true;
                }
                s.draining = false; // back under the glob: a normal active stream again
                ev.extend(s.verify(true, fpb));
            } else {
                self.open_found(&paths[0], newest, &mut ev);
            }
        }
        // Restored checkpoints not found by the glob.
        let mut unmatched: Vec<String> = self
            .restored
            .keys()
            .filter(|k| !by_key.contains_key(*k))
            .cloned()
            .collect();
        unmatched.sort();
        for key in unmatched {
            let cp = self.restored.remove(&key).expect("key from map");
            if !self.resume_rotated(&key, &cp, &mut ev) {
                ev.push(TailEvent::Lost {
                    path: cp.path,
                    key: key.clone(),
                    offset: cp.offset,
                });
                self.pending_forget.push(key);
            }
        }
        self.scanned = true;
        ev
    }
}
