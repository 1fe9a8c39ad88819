//! Syslog-over-TCP framing (RFC 6587), without I/O: bytes in, messages out.
//!
//! A stream carries either octet-counted frames (`<length> SP <message>`, the message starting
//! with `<`, its PRI) or one message per line. Each frame is decided on its own first bytes, so
//! a line that merely starts with digits (`2026-12-01 ...`, `404 not found`) stays a line.
//!
//! Memory is bounded whatever the peer sends: a message keeps at most `max` bytes (the rest is
//! skipped as it arrives and the message is flagged cut), an octet count has at most 10 digits,
//! and an over-long octet frame is skipped to its declared end, so framing stays in step.
//! `scripts/fuzz syslog_framing` fuzzes it.

/// The most digits an octet count may have (a count up to 9,999,999,999 bytes).
const MAX_COUNT_DIGITS: usize = 10;

#[derive(Debug)]
enum State {
    /// Between frames.
    Start,
    /// Digits at the start of a frame: an octet count or the start of a line.
    Count,
    /// Digits and a space: a frame if the next byte opens a PRI (`<`).
    AfterCount(u64),
    /// Inside an octet-counted frame: bytes of it still to come.
    Octets(u64),
    /// Inside a newline-terminated line.
    Line,
}

/// Splits one TCP stream into syslog messages.
#[derive(Debug)]
pub struct Framer {
    max: usize,
    state: State,
    /// The current message (or the digits seen so far), at most `max` bytes.
    message: Vec<u8>,
    cut: bool,
}

impl Framer {
    /// Messages keep at most `max` bytes (at least 1).
    pub fn new(max: usize) -> Framer {
        Framer {
            max: max.max(1),
            state: State::Start,
            message: Vec::new(),
            cut: false,
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = self.max.saturating_sub(self.message.len());
        if bytes.len() > room {
            self.cut = true;
        }
        self.message
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn emit(&mut self, out: &mut dyn FnMut(&[u8], bool)) {
        let mut message: &[u8] = &self.message;
        if matches!(self.state, State::Line) && !self.cut {
            message = message.strip_suffix(b"\r").unwrap_or(message);
        }
        if !message.is_empty() {
            out(message, self.cut);
        }
        self.message.clear();
        self.cut = false;
        self.state = State::Start;
    }

    /// Feed bytes as they arrive; `out` gets each complete message and whether it was cut.
    pub fn push(&mut self, mut data: &[u8], out: &mut dyn FnMut(&[u8], bool)) {
        while let Some(&byte) = data.first() {
            match self.state {
                State::Start => {
                    if byte == b'\n' || byte == b'\r' {
                        data = &data[1..]; // blank lines between frames
                    } else if byte.is_ascii_digit() {
                        self.state = State::Count;
                    } else {
                        self.state = State::Line;
                    }
                }
                State::Count => {
                    if byte.is_ascii_digit() && self.message.len() < MAX_COUNT_DIGITS {
                        self.message.push(byte);
                        data = &data[1..];
                    } else if byte == b' ' {
                        // At most 10 digits: always fits in a u64.
                        let count = std::str::from_utf8(&self.message)
                            .ok()
                            .and_then(|digits| digits.parse().ok())
                            .unwrap_or(0);
                        self.state = State::AfterCount(count);
                        data = &data[1..];
                    } else {
                        self.state = State::Line; // the digits open a line
                    }
                }
                State::AfterCount(count) => {
                    if byte == b'<' && count > 0 {
                        self.message.clear();
                        self.state = State::Octets(count);
                    } else {
                        self.message.push(b' ');
                        self.state = State::Line;
                    }
                }
                State::Octets(remaining) => {
                    let take = (data.len() as u64).min(remaining) as usize;
                    self.keep(&data[..take]);
                    data = &data[take..];
                    let remaining = remaining - take as u64;
                    self.state = State::Octets(remaining);
                    if remaining == 0 {
                        self.emit(out);
                    }
                }
                State::Line => match data.iter().position(|b| *b == b'\n') {
                    Some(at) => {
                        self.keep(&data[..at]);
                        data = &data[at + 1..];
                        self.emit(out);
                    }
                    None => {
                        self.keep(data);
                        data = &[];
                    }
                },
            }
        }
    }

    /// The stream ended: a last line without its newline is a message; so is the part of an
    /// octet frame that arrived (flagged cut).
    pub fn finish(mut self, out: &mut dyn FnMut(&[u8], bool)) {
        match self.state {
            State::Start => {}
            State::Octets(_) => {
                self.cut = true;
                self.emit(out);
            }
            State::AfterCount(_) => {
                self.message.push(b' ');
                self.state = State::Line;
                self.emit(out);
            }
            State::Count | State::Line => {
                self.state = State::Line;
                self.emit(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]], max: usize) -> Vec<(String, bool)> {
        let mut framer = Framer::new(max);
        let mut out = Vec::new();
        let mut collect = |m: &[u8], cut: bool| out.push((String::from_utf8_lossy(m).into(), cut));
        for chunk in chunks {
            framer.push(chunk, &mut collect);
        }
        framer.finish(&mut collect);
        out
    }

    fn bytewise(stream: &[u8], max: usize) -> Vec<(String, bool)> {
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        frames(&chunks, max)
    }

    #[test]
    fn lines_and_octet_frames_mix_on_one_stream() {
        let stream =
            b"<13>first\n10 <13>second<13>third\r\n2026-12-01 a dated line\n404 not found\n";
        let expected = vec![
            ("<13>first".to_string(), false),
            ("<13>second".to_string(), false),
            ("<13>third".to_string(), false),
            ("2026-12-01 a dated line".to_string(), false),
            ("404 not found".to_string(), false),
        ];
        assert_eq!(frames(&[stream], 1024), expected);
        // The same however the bytes are split.
        assert_eq!(bytewise(stream, 1024), expected);
    }

    #[test]
    fn an_over_long_frame_is_cut_and_the_next_frames_survive() {
        let mut stream = b"20 <13>0123456789abcdef".to_vec();
        stream.extend_from_slice(b"9 <13>after");
        stream.extend_from_slice(b"<13>a line that is far too long\n<13>ok\n");
        let got = bytewise(&stream, 9);
        assert_eq!(
            got,
            vec![
                ("<13>01234".to_string(), true),
                ("<13>after".to_string(), false),
                ("<13>a lin".to_string(), true),
                ("<13>ok".to_string(), false),
            ]
        );
    }

    #[test]
    fn a_stream_of_digits_is_a_line_not_a_count() {
        let digits = vec![b'7'; 100_000];
        let got = frames(&[&digits, b"\n<13>next\n"], 64);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], ("7".repeat(64), true));
        assert_eq!(got[1], ("<13>next".to_string(), false));
    }

    #[test]
    fn the_end_of_the_stream_keeps_what_arrived() {
        assert_eq!(
            frames(&[b"no newline"], 64),
            vec![("no newline".into(), false)]
        );
        assert_eq!(frames(&[b"12 "], 64), vec![("12 ".into(), false)]);
        assert_eq!(
            frames(&[b"30 <13>half"], 64),
            vec![("<13>half".into(), true)]
        );
        assert!(frames(&[b"\n\r\n"], 64).is_empty());
    }
}
