//! Framing: cutting bytes into lines at exact offsets (byte or UTF-16 newlines, over-long
//! lines cut and flagged, partial lines kept in memory).

use super::*;

/// The first newline in `rest` (which starts at file offset `start`): (index, length).
pub(super) fn find_newline(rest: &[u8], start: u64, newline: Newline) -> Option<(usize, usize)> {
    let (first, second) = match newline {
        Newline::Byte => return rest.iter().position(|&c| c == b'\n').map(|i| (i, 1)),
        Newline::Utf16Le => (0x0A, 0x00),
        Newline::Utf16Be => (0x00, 0x0A),
    };
    let mut i = (start % 2) as usize;
    while i + 1 < rest.len() {
        if rest[i] == first && rest[i + 1] == second {
            return Some((i, 2));
        }
        i += 2;
    }
    None
}

/// Emits one line starting at `s.offset` (strips one "\r", skips empty lines, cuts long ones).
pub(super) fn emit(s: &Stream, line: &[u8], b: &mut Batch, max: usize) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return;
    }
    let truncated = line.len() > max;
    b.truncated_lines += truncated as u64;
    b.lines.push(Line {
        key: s.key.clone(),
        path: s.path.clone(),
        offset: s.offset,
        bytes: line[..line.len().min(max)].to_vec(),
        truncated,
    });
}

/// One read from one stream; parses as many lines as the limits allow and advances
/// `read_pos` by exactly the bytes consumed. Returns whether anything happened.
pub(super) fn read_step(
    s: &mut Stream,
    buf: &mut [u8],
    opts: &TailOptions,
    b: &mut Batch,
    max_lines: usize,
    events: &mut Vec<TailEvent>,
) -> bool {
    let n = match s.file.read_at(buf, s.read_pos) {
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::Interrupted => return true,
        Err(e) => {
            tracing::warn!(path = ?s.path, error = %e, "read failed");
            return false;
        }
    };
    if n == 0 {
        // EOF: a file now shorter than what we read was truncated (copytruncate).
        return match s.verify(false, opts.fingerprint_bytes) {
            Some(e) => {
                events.push(e);
                true
            }
            None => false,
        };
    }
    s.last_data = Instant::now();
    if (s.fingerprint_len as usize) < opts.fingerprint_bytes {
        // Young file: extend the fingerprint, which also catches truncate-and-refill early.
        if let Some(e) = s.verify(true, opts.fingerprint_bytes) {
            events.push(e);
            return true;
        }
    }
    let max = opts.max_line_bytes;
    let data = &buf[..n];
    let mut pos = 0;
    while pos < n && b.lines.len() < max_lines {
        let rest = &data[pos..];
        if let Some((i, newline_len)) = find_newline(rest, s.read_pos, opts.newline) {
            if s.skipping {
                s.skipping = false;
            } else if s.pending.is_empty() {
                emit(s, &rest[..i], b, max);
            } else {
                let mut line = std::mem::take(&mut s.pending);
                line.extend_from_slice(&rest[..i]);
                emit(s, &line, b, max);
                line.clear();
                s.pending = line;
            }
            pos += i + newline_len;
            s.read_pos += (i + newline_len) as u64;
            s.offset = s.read_pos;
            s.dirty = true;
        } else {
            // A UTF-16 newline may straddle two reads: keep a lone odd byte for the next one.
            let take = match opts.newline {
                Newline::Byte => rest.len(),
                _ => rest.len() - ((s.read_pos + rest.len() as u64) % 2) as usize,
            };
            let rest = &rest[..take];
            pos += take;
            s.read_pos += rest.len() as u64;
            if s.skipping {
                s.offset = s.read_pos;
                s.dirty = true;
            } else {
                s.pending.extend_from_slice(rest);
                // Longer than max even if it ends in "\r": emit the head, discard the rest.
                if s.pending.len() > max + 1 {
                    let line = std::mem::take(&mut s.pending);
                    emit(s, &line[..max + 2], b, max); // >= max+1 bytes even without a "\r"
                    s.skipping = true;
                    s.offset = s.read_pos;
                    s.dirty = true;
                }
            }
            // No newline in the rest of this read.
            break;
        }
    }
    b.bytes_read += pos as u64;
    // Progress, unless a UTF-16 reader is waiting for the second byte of a code unit.
    pos > 0
}
