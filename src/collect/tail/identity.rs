//! Which file a stream is: (dev, ino) plus a fingerprint of its first bytes (see the module
//! doc of `tail`).

use super::*;

impl Stream {
    pub(super) fn checkpoint(&self) -> FileCheckpoint {
        FileCheckpoint {
            path: self.path.clone(),
            dev: self.dev,
            ino: self.ino,
            fingerprint: self.fingerprint,
            fingerprint_len: self.fingerprint_len,
            offset: self.offset,
            skipping_oversized: self.skipping,
        }
    }

    /// Checks that the file was not truncated or rewritten under us (size below what we read,
    /// or, with `prefix`, a changed fingerprint) and extends a short fingerprint. On mismatch
    /// the stream restarts at 0 and the `Truncated` event is returned.
    pub(super) fn verify(&mut self, prefix: bool, fp_bytes: usize) -> Option<TailEvent> {
        let size = self.file.metadata().ok()?.len();
        let mut changed = size < self.read_pos;
        if !changed && prefix {
            match refresh_fp(&self.file, self.fingerprint, self.fingerprint_len, fp_bytes) {
                Ok(Some((fp, len))) => {
                    if (fp, len) != (self.fingerprint, self.fingerprint_len) {
                        (self.fingerprint, self.fingerprint_len) = (fp, len);
                        self.dirty = true;
                    }
                }
                Ok(None) => changed = true,
                Err(e) => tracing::debug!(path = ?self.path, error = %e, "fingerprint read failed"),
            }
        }
        if !changed {
            return None;
        }
        let ev = TailEvent::Truncated {
            path: self.path.clone(),
            key: self.key.clone(),
            old_offset: self.offset,
        };
        (self.fingerprint, self.fingerprint_len) = fresh_fp(&self.file, fp_bytes);
        self.offset = 0;
        self.read_pos = 0;
        self.pending.clear();
        self.skipping = false;
        self.dirty = true;
        self.last_data = Instant::now();
        Some(ev)
    }
}

/// Reads up to `limit` bytes from the start of the file (fewer at EOF).
pub(super) fn read_prefix(file: &File, limit: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; limit];
    let mut got = 0;
    while got < limit {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// Verifies that the first `len` bytes still hash to `fp` and returns the fingerprint extended
/// to as many bytes as available up to `limit`. `None`: the prefix changed or got shorter.
pub(super) fn refresh_fp(
    file: &File,
    fp: u64,
    len: u32,
    limit: usize,
) -> io::Result<Option<(u64, u32)>> {
    let len = len as usize;
    if len > limit.max(1 << 20) {
        return Ok(None); // implausible (corrupt checkpoint): do not allocate it
    }
    let buf = read_prefix(file, limit.max(len))?;
    if buf.len() < len || xxh3_64(&buf[..len]) != fp {
        return Ok(None);
    }
    Ok(Some((xxh3_64(&buf), buf.len() as u32)))
}

pub(super) fn fresh_fp(file: &File, limit: usize) -> (u64, u32) {
    refresh_fp(file, xxh3_64(b""), 0, limit)
        .ok()
        .flatten()
        .unwrap_or((xxh3_64(b""), 0))
}
