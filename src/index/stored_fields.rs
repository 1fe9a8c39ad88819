//! How a document's parsed fields are kept in the doc store: as references into its message
//! where they can be.
//!
//! A text parser (nginx, regex, grok, key=value) cuts its fields out of the line, and the line
//! is the message: every string field is a substring of a text the doc store already holds. Kept
//! as tantivy's stored JSON, the fields were a second copy of the line, with their keys and
//! 8-byte numbers, and more than doubled the doc store of parsed nginx lines (127.8 MiB against
//! 56.7 MiB raw for 2 M lines, compressed). New partitions keep `fields` indexed and in columns,
//! not stored, and store this compact encoding in `fields_stored` instead: a string found in the
//! message is its byte range there, anything else is written out. Values come back exactly as
//! they went in (numbers keep their kind: unsigned, signed or float).
//!
//! Encoding: one version byte, then one value.
//!
//! | tag | value |
//! |---|---|
//! | 0, 1, 2 | null, false, true |
//! | 3 | unsigned integer, varint |
//! | 4 | negative integer, zigzag varint |
//! | 5 | float, 8 bytes little-endian |
//! | 6 | string: varint length, UTF-8 bytes |
//! | 7 | string in the message: zigzag varint of its start minus the end of the previous one (or 0), varint length (bytes) |
//! | 8 | array: varint count, values |
//! | 9 | object: varint count, then per entry a key (varint length, UTF-8) and a value |
//!
//! The decoder trusts nothing: lengths are checked against the bytes left, ranges against the
//! message and its character boundaries, nesting against [`MAX_FIELD_DEPTH`], and trailing bytes
//! are an error.

use serde_json::{Map, Number, Value};

use crate::record::MAX_FIELD_DEPTH;

const VERSION: u8 = 1;
/// Strings shorter than this are written out: a range costs about as much.
const MIN_REFERENCE: usize = 4;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UNSIGNED: u8 = 3;
const NEGATIVE: u8 = 4;
const FLOAT: u8 = 5;
const STRING: u8 = 6;
const IN_MESSAGE: u8 = 7;
const ARRAY: u8 = 8;
const OBJECT: u8 = 9;

/// Encodes `fields` (any JSON value, depth-bounded by the record) against `message`.
pub fn encode(fields: &Value, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(VERSION);
    // Fields are usually cut from the line in order: look after the previous match first.
    let mut hint = 0;
    encode_value(fields, message, &mut hint, &mut out);
    out
}

fn encode_value(value: &Value, message: &str, hint: &mut usize, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.push(UNSIGNED);
                varint(u, out);
            } else if let Some(i) = n.as_i64() {
                out.push(NEGATIVE);
                varint(zigzag(i), out);
            } else {
                out.push(FLOAT);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
            }
        }
        Value::String(text) => match find(message, text, *hint) {
            Some(start) => {
                // Relative to the previous range: fields cut in order from lines of one format
                // are a few constant gaps apart, which the doc store's compression takes to
                // almost nothing; absolute starts vary with every line.
                out.push(IN_MESSAGE);
                varint(zigzag(start as i64 - *hint as i64), out);
                varint(text.len() as u64, out);
                *hint = start + text.len();
            }
            None => {
                out.push(STRING);
                bytes(text.as_bytes(), out);
            }
        },
        Value::Array(items) => {
            out.push(ARRAY);
            varint(items.len() as u64, out);
            for item in items {
                encode_value(item, message, hint, out);
            }
        }
        Value::Object(map) => {
            out.push(OBJECT);
            varint(map.len() as u64, out);
            for (key, item) in map {
                bytes(key.as_bytes(), out);
                encode_value(item, message, hint, out);
            }
        }
    }
}

/// Where `text` occurs in `message`: after `hint` first, then anywhere.
fn find(message: &str, text: &str, hint: usize) -> Option<usize> {
    if text.len() < MIN_REFERENCE || text.len() > message.len() {
        return None;
    }
    let (message, text) = (message.as_bytes(), text.as_bytes());
    message
        .get(hint..)
        .and_then(|rest| find_bytes(rest, text, 0))
        .map(|at| at + hint)
        .or_else(|| {
            // Anything starting before `hint`, including a match across it.
            let end = (hint + text.len()).saturating_sub(1).min(message.len());
            find_bytes(&message[..end], text, 0)
        })
}

/// Where `needle` (not empty) first occurs in `hay` at or after `from`. Fields are short and
/// lines a few hundred bytes: the first byte's occurrences (memchr) checked in place beat
/// setting up a substring searcher per field (std's two-way searcher, or memchr's `memmem`,
/// were each a third of the cost of a parsed line's fields). A long needle in a long line
/// takes the linear-time searcher, so no line costs quadratic time.
pub(crate) fn find_bytes(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let rest = hay.get(from..)?;
    if rest.len() < needle.len() {
        return None;
    }
    let at = if needle.len() > 16 && rest.len() > 4096 {
        memchr::memmem::find(rest, needle)
    } else {
        let last_start = rest.len() - needle.len();
        memchr::memchr_iter(needle[0], &rest[..=last_start])
            .find(|&i| rest[i..].starts_with(needle))
    };
    at.map(|at| at + from)
}

fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn bytes(data: &[u8], out: &mut Vec<u8>) {
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// Why stored fields could not be read back (a damaged doc store, or a newer format).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored fields: {0}")]
pub struct DecodeError(String);

fn bad<T>(what: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(what.into()))
}

/// Decodes what [`encode`] wrote for a document whose message is `message`.
pub fn decode(data: &[u8], message: &str) -> Result<Value, DecodeError> {
    let Some((&version, body)) = data.split_first() else {
        return bad("empty");
    };
    if version != VERSION {
        return bad(format!(
            "format {version} is not known to this version (it reads {VERSION})"
        ));
    }
    let mut reader = Reader {
        data: body,
        message,
        hint: 0,
    };
    let value = reader.value(0)?;
    if !reader.data.is_empty() {
        return bad(format!("{} bytes after the value", reader.data.len()));
    }
    Ok(value)
}

struct Reader<'a> {
    data: &'a [u8],
    message: &'a str,
    /// Where the previous range ended.
    hint: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let Some((&b, rest)) = self.data.split_first() else {
            return bad("cut short");
        };
        self.data = rest;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        bad("a number longer than 64 bits")
    }

    /// A length that fits in what is left (each counted item takes at least a byte).
    fn length(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        if n > self.data.len() as u64 {
            return bad(format!(
                "a length of {n} with {} bytes left",
                self.data.len()
            ));
        }
        Ok(n as usize)
    }

    fn text(&mut self) -> Result<String, DecodeError> {
        let n = self.length()?;
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        match std::str::from_utf8(head) {
            Ok(text) => Ok(text.to_string()),
            Err(_) => bad("a string that is not UTF-8"),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_FIELD_DEPTH {
            return bad(format!("nested deeper than {MAX_FIELD_DEPTH}"));
        }
        Ok(match self.byte()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            UNSIGNED => Value::Number(self.varint()?.into()),
            NEGATIVE => Value::Number(unzigzag(self.varint()?).into()),
            FLOAT => {
                if self.data.len() < 8 {
                    return bad("cut short");
                }
                let (head, rest) = self.data.split_at(8);
                self.data = rest;
                let f = f64::from_le_bytes(head.try_into().expect("8 bytes"));
                match Number::from_f64(f) {
                    Some(n) => Value::Number(n),
                    None => return bad("a float that is not finite"),
                }
            }
            STRING => Value::String(self.text()?),
            IN_MESSAGE => {
                let start = (self.hint as i64).checked_add(unzigzag(self.varint()?));
                let len = self.varint()?;
                let range = start
                    .filter(|&start| start >= 0)
                    .and_then(|start| Some((start as u64, (start as u64).checked_add(len)?)))
                    .filter(|&(_, end)| end <= self.message.len() as u64);
                match range.and_then(|(start, end)| self.message.get(start as usize..end as usize))
                {
                    Some(text) => {
                        self.hint = range.expect("a range").1 as usize;
                        Value::String(text.to_string())
                    }
                    None => {
                        return bad(format!(
                            "a range of {len} bytes at {start:?} outside the message ({} bytes) or inside a character",
                            self.message.len()
                        ));
                    }
                }
            }
            ARRAY => {
                let n = self.length()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            OBJECT => {
                let n = self.length()?;
                let mut map = Map::new();
                for _ in 0..n {
                    let key = self.text()?;
                    let item = self.value(depth + 1)?;
                    map.insert(key, item);
                }
                Value::Object(map)
            }
            tag => return bad(format!("unknown tag {tag}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LINE: &str = r#"203.0.113.77 - alice [15/Jan/2026:10:00:00 +0000] "GET /api/v2/admin/export HTTP/1.1" 200 5120 "-" "curl/8.5.0""#;

    #[test]
    fn parsed_fields_are_ranges_of_the_message_and_come_back_exactly() {
        let fields = json!({
            "remote_addr": "203.0.113.77",
            "remote_user": "alice",
            "request": "GET /api/v2/admin/export HTTP/1.1",
            "request_uri": "/api/v2/admin/export",
            "status": 200,
            "body_bytes_sent": 5120,
            "http_referer": "-",
            "http_user_agent": "curl/8.5.0",
            "not_in_line": "written out",
            "neg": -17,
            "big": u64::MAX,
            "ratio": 0.25,
            "nested": {"list": [true, false, null, "GET /api"], "empty": {}},
        });
        let data = encode(&fields, LINE);
        assert_eq!(decode(&data, LINE).unwrap(), fields);
        // The line's substrings are not in the encoding, the others are.
        let raw = String::from_utf8_lossy(&data);
        assert!(!raw.contains("/api/v2/admin/export"), "{raw}");
        assert!(!raw.contains("curl/8.5.0"), "{raw}");
        assert!(raw.contains("written out"));
        let stored_json = serde_json::to_vec(&fields).unwrap().len();
        assert!(data.len() < stored_json, "{} vs {stored_json}", data.len());
    }

    #[test]
    fn a_string_found_before_the_previous_match_is_still_a_range() {
        let fields = json!({"a": "second part", "b": "first"});
        let message = "first, then the second part";
        let data = encode(&fields, message);
        assert_eq!(decode(&data, message).unwrap(), fields);
        assert!(!String::from_utf8_lossy(&data).contains("first"));
    }

    #[test]
    fn multibyte_text_round_trips() {
        let message = "用户 登录失败 user=张三 ip=10.0.0.1";
        let fields = json!({"user": "张三", "msg": "登录失败", "ip": "10.0.0.1", "x": "é"});
        assert_eq!(decode(&encode(&fields, message), message).unwrap(), fields);
    }

    #[test]
    fn damaged_bytes_are_errors_that_say_what_is_wrong() {
        let fields = json!({"request": "GET /api/v2/admin/export HTTP/1.1", "n": [1, 2]});
        let data = encode(&fields, LINE);
        // Every cut is an error, never a panic.
        for cut in 0..data.len() {
            assert!(decode(&data[..cut], LINE).is_err(), "cut at {cut}");
        }
        let mut trailing = data.clone();
        trailing.push(0);
        assert!(
            decode(&trailing, LINE)
                .unwrap_err()
                .0
                .contains("after the value")
        );
        let mut newer = data.clone();
        newer[0] = 9;
        assert!(decode(&newer, LINE).unwrap_err().0.contains("format 9"));
        // A range read against a shorter message (the wrong document) is refused.
        assert!(
            decode(&data, "short")
                .unwrap_err()
                .0
                .contains("outside the message")
        );
        // A range inside a character.
        let mut inside = vec![VERSION, IN_MESSAGE, 2, 1]; // start 1 (zigzag 2), 1 byte
        assert!(decode(&inside, "张三").is_err());
        inside[2] = 0;
        inside[3] = 3;
        assert_eq!(decode(&inside, "张三").unwrap(), json!("张"));
        // A range before the start of the message.
        assert!(decode(&[VERSION, IN_MESSAGE, 1, 1], LINE).is_err());
        // A huge count with nothing behind it.
        assert!(decode(&[VERSION, ARRAY, 0xff, 0xff, 0xff, 0x0f], LINE).is_err());
        // Nesting deeper than records may be.
        let mut deep = vec![VERSION];
        deep.extend(std::iter::repeat_n([ARRAY, 1], MAX_FIELD_DEPTH + 2).flatten());
        deep.push(NULL);
        assert!(decode(&deep, LINE).unwrap_err().0.contains("deeper"));
    }
}
