//! Files the node writes for itself: private (0700 directories, 0600 files, whatever the
//! umask) and, where they must survive a power loss, synced.
//!
//! `lograft serve` sets its umask to 0o077 ([`restrict_umask`]), so every file that sled,
//! tantivy and the node create is 0600 and every directory 0700; [`tighten_tree`] fixes a data
//! dir made by an older version (0755 directories, 0644 files: the cluster secret in the
//! store was readable by any local user).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Make everything this process creates from now on private to its user (umask 0o077).
pub fn restrict_umask() {
    // SAFETY: umask only swaps the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Create `dir` (and missing parents) as 0700; an existing `dir` is set to 0700.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Set every directory under `root` (and `root`) to 0700 and every file to 0600 when they
/// allow more; symbolic links under `root` are not followed (`root` itself may be one).
/// Returns how many entries were tightened.
pub fn tighten_tree(root: &Path) -> std::io::Result<usize> {
    let mut tightened = 0;
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = if path == root {
            std::fs::metadata(&path)?
        } else {
            std::fs::symlink_metadata(&path)?
        };
        let file_type = metadata.file_type();
        let private_mode = if file_type.is_dir() {
            0o700
        } else if file_type.is_file() {
            0o600
        } else {
            continue;
        };
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & !private_mode != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & private_mode))?;
            tightened += 1;
        }
        if file_type.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(tightened)
}

/// Write `bytes` to a new file at `path` (0600), fsync it and its directory.
pub fn write_private_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode on open: make it private too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: "No input stops the appliance", item 6: an upgraded node's data dir was 0755 with
    // 0644 files.
    #[test]
    fn tighten_tree_makes_an_old_data_dir_private() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::create_dir_all(root.join("store/db")).unwrap();
        std::fs::write(root.join("store/db/conf"), "secret").unwrap();
        std::fs::write(root.join("cli-token"), "token").unwrap();
        let set = |path: &Path, mode| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        for path in [root.clone(), root.join("store"), root.join("store/db")] {
            set(&path, 0o755);
        }
        set(&root.join("store/db/conf"), 0o644);
        set(&root.join("cli-token"), 0o600);
        std::os::unix::fs::symlink("/etc/hostname", root.join("link")).unwrap();

        assert_eq!(tighten_tree(&root).unwrap(), 4);
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("store/db")), 0o700);
        assert_eq!(mode(&root.join("store/db/conf")), 0o600);
        assert_eq!(mode(&root.join("cli-token")), 0o600);
        assert_eq!(tighten_tree(&root).unwrap(), 0, "nothing left to tighten");
    }
}

/// Open a sled database, waiting a little while its file lock is held.
///
/// sled releases its lock when the last handle's background flusher ends, which can be a moment
/// after the `Db` was dropped: reopening a store right after closing it (a restart inside one
/// process) would otherwise fail at random. A lock still held after `LOCK_WAIT` belongs to
/// someone else and is returned as the error it is.
pub fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            Err(sled::Error::Io(io))
                if is_lock_error(&io) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Whether sled failed to open because its file lock is held.
pub fn is_lock_error(io: &std::io::Error) -> bool {
    io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock")
}

/// Bytes free for an unprivileged writer on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path holds a NUL byte"))?;
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid C string and `stats` a valid, writable statvfs.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stats.f_bavail as u64 * stats.f_frsize as u64)
}

/// Watches the free space of the data dir's disk: below `min_free` the node takes no data in
/// and indexes nothing (what is accepted stays where it is: files, the queue), so a full disk
/// is backpressure, not an error that sticks. Checked at most every 500 ms.
pub struct DiskGuard {
    path: std::path::PathBuf,
    min_free: u64,
    last: std::sync::Mutex<Option<(std::time::Instant, Option<String>)>>,
}

impl DiskGuard {
    pub fn new(path: &Path, min_free: u64) -> DiskGuard {
        DiskGuard {
            path: path.to_path_buf(),
            min_free,
            last: std::sync::Mutex::new(None),
        }
    }

    /// `Some(why)` while the disk is below the reserve.
    pub fn full(&self) -> Option<String> {
        if self.min_free == 0 {
            return None;
        }
        let mut last = self.last.lock().expect("disk guard lock");
        if let Some((at, answer)) = &*last
            && at.elapsed() < std::time::Duration::from_millis(500)
        {
            return answer.clone();
        }
        let answer = match free_bytes(&self.path) {
            Ok(free) if free < self.min_free => Some(format!(
                "disk full on {}: {} MiB free, below queue.min_free_bytes ({} MiB); taking no data in until space returns",
                self.path.display(),
                free / (1024 * 1024),
                self.min_free / (1024 * 1024)
            )),
            _ => None,
        };
        let was_full = last.as_ref().is_some_and(|(_, a)| a.is_some());
        if answer.is_some() != was_full {
            match &answer {
                Some(why) => tracing::error!("{why}"),
                None => {
                    tracing::info!(path = %self.path.display(), "disk space is back above queue.min_free_bytes; resuming")
                }
            }
        }
        *last = Some((std::time::Instant::now(), answer.clone()));
        answer
    }
}
