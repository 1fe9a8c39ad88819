//! The bytes of one stored queue chunk: a compact binary encoding of its records.
//!
//! A stored value is an 8-byte header and a body:
//!
//! ```text
//! header  record count (u32 BE) | format (u8) | 3 reserved bytes (0)
//! body    format 0 (JSON, written before the binary codec): {"first_seq":..,"records":[..],..}
//!         format 1 (binary): see below
//! ```
//!
//! The header's format byte was a reserved zero byte in the JSON format, so queues written by
//! older versions open and drain as they are; new chunks are always binary.
//!
//! Formats 1 and 2, all integers LEB128 varints (signed ones zigzag):
//!
//! ```text
//! first_seq | more (u8) | appended_at (i) | n records
//! n × record:
//!   bits (u8): 1 truncated, 2 parse_error, 4 has fields, 8 runner as previous,
//!              16 path as previous, 32 stream as previous
//!   ts - previous ts (i) | [runner] | [path] | offset | level | message | [fields]
//!   | [stream]                                  (strings: length, then UTF-8 bytes)
//! n checkpoints: key | present (u8) | [value]
//! ```
//!
//! Runner, path and stream repeat from one line to the next of a file, so they are written
//! once per chunk; event times are deltas.
//!
//! The two differ in `fields`: format 1 wrote them as JSON text; format 2 (written since) as
//! [`stored_fields`]: a string the parser cut out of the line is a byte range of the message,
//! the rest compact binary. Parsed lines carried their text twice, once in the message and
//! once quoted and escaped in the JSON, which the runner wrote and the indexer parsed again;
//! now each value takes a few bytes (the keys are still written out). Fields read from format 1 are bounded in depth
//! as appends bound them, so anything read can be written again.
//!
//! Decoding checks every length against what is left
//! and every string for UTF-8, and refuses trailing bytes: a damaged value is an error, never
//! a panic or a wrong record (`fuzz/fuzz_targets/queue_codec.rs`).

use super::{CheckpointKey, QueueBatch};
use crate::index::stored_fields;
use crate::record::Record;

pub const HEADER_LEN: usize = 8;
/// Entries written before the binary codec.
pub const FORMAT_JSON: u8 = 0;
/// Binary, `fields` as JSON text (written before ranges).
pub const FORMAT_BINARY: u8 = 1;
/// Binary, `fields` as [`stored_fields`]: what new chunks are.
pub const FORMAT_RANGES: u8 = 2;

const TRUNCATED: u8 = 1;
const PARSE_ERROR: u8 = 2;
const HAS_FIELDS: u8 = 4;
const SAME_RUNNER: u8 = 8;
const SAME_PATH: u8 = 16;
const SAME_STREAM: u8 = 32;
const KNOWN_BITS: u8 = 63;

/// A record ready to be chunked: its fields already encoded (once, outside the queue's lock)
/// and a size estimate for cutting chunks.
pub struct Prepared<'a> {
    pub record: &'a Record,
    pub fields: Option<Vec<u8>>,
}

impl Prepared<'_> {
    pub fn prepare(record: &Record) -> Prepared<'_> {
        let fields = (!record.fields.is_null())
            .then(|| stored_fields::encode(&record.fields, &record.message));
        Prepared { record, fields }
    }

    /// About the bytes this record takes in a chunk (exact for the first of a chunk).
    pub fn size(&self) -> usize {
        let r = self.record;
        r.runner.len()
            + r.path.len()
            + r.level.len()
            + r.message.len()
            + r.stream.len()
            + self.fields.as_ref().map_or(0, Vec::len)
            + 32
    }
}

/// One stored value: header and binary body.
pub fn encode_chunk(
    first_seq: u64,
    records: &[Prepared<'_>],
    checkpoints: &[(CheckpointKey, Option<String>)],
    more: bool,
    appended_at: i64,
) -> Vec<u8> {
    let size: usize = records.iter().map(Prepared::size).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + size + 64);
    out.extend_from_slice(&(records.len() as u32).to_be_bytes());
    out.extend_from_slice(&[FORMAT_RANGES, 0, 0, 0]);
    put_u64(&mut out, first_seq);
    out.push(u8::from(more));
    put_i64(&mut out, appended_at);
    put_u64(&mut out, records.len() as u64);
    let mut previous: Option<&Record> = None;
    for prepared in records {
        let r = prepared.record;
        let same = |get: fn(&Record) -> &str| previous.is_some_and(|p| get(p) == get(r));
        let mut bits = 0u8;
        if r.truncated {
            bits |= TRUNCATED;
        }
        if r.parse_error {
            bits |= PARSE_ERROR;
        }
        if prepared.fields.is_some() {
            bits |= HAS_FIELDS;
        }
        let same_runner = same(|p| &p.runner);
        let same_path = same(|p| &p.path);
        let same_stream = same(|p| &p.stream);
        if same_runner {
            bits |= SAME_RUNNER;
        }
        if same_path {
            bits |= SAME_PATH;
        }
        if same_stream {
            bits |= SAME_STREAM;
        }
        out.push(bits);
        put_i64(&mut out, r.ts.wrapping_sub(previous.map_or(0, |p| p.ts)));
        if !same_runner {
            put_str(&mut out, &r.runner);
        }
        if !same_path {
            put_str(&mut out, &r.path);
        }
        put_u64(&mut out, r.offset);
        put_str(&mut out, &r.level);
        put_str(&mut out, &r.message);
        if let Some(fields) = &prepared.fields {
            put_bytes(&mut out, fields);
        }
        if !same_stream {
            put_str(&mut out, &r.stream);
        }
        previous = Some(r);
    }
    put_u64(&mut out, checkpoints.len() as u64);
    for (key, value) in checkpoints {
        put_str(&mut out, key);
        match value {
            Some(value) => {
                out.push(1);
                put_str(&mut out, value);
            }
            None => out.push(0),
        }
    }
    out
}

/// The record count and format a header says.
pub fn header(value: &[u8]) -> Result<(u64, u8), String> {
    if value.len() < HEADER_LEN {
        return Err("value shorter than its header".into());
    }
    let count = u32::from_be_bytes(value[0..4].try_into().expect("4 bytes")) as u64;
    Ok((count, value[4]))
}

/// The batch a stored value holds, in either format.
pub fn decode(value: &[u8]) -> Result<QueueBatch, String> {
    let (count, format) = header(value)?;
    let body = &value[HEADER_LEN..];
    let batch = match format {
        FORMAT_JSON => serde_json::from_slice::<QueueBatch>(body).map_err(|err| err.to_string())?,
        FORMAT_BINARY | FORMAT_RANGES => decode_binary(body, format)?,
        other => {
            return Err(format!(
                "format {other} is unknown to this version (written by a newer lograft?)"
            ));
        }
    };
    if batch.records.len() as u64 != count {
        return Err(format!(
            "the header says {count} records, the body holds {}",
            batch.records.len()
        ));
    }
    Ok(batch)
}

fn decode_binary(body: &[u8], format: u8) -> Result<QueueBatch, String> {
    let mut r = Reader { bytes: body, at: 0 };
    let first_seq = r.u64()?;
    let more = match r.u8()? {
        0 => false,
        1 => true,
        other => return Err(format!("bad `more` byte {other}")),
    };
    let appended_at = r.i64()?;
    let n = r.u64()?;
    // Every record takes at least 6 bytes: a count beyond that is damage, not an allocation.
    if n > (body.len() / 6) as u64 {
        return Err(format!("{n} records cannot fit in {} bytes", body.len()));
    }
    let mut records: Vec<Record> = Vec::with_capacity(n as usize);
    for i in 0..n {
        let bits = r.u8()?;
        if bits & !KNOWN_BITS != 0
            || (i == 0 && bits & (SAME_RUNNER | SAME_PATH | SAME_STREAM) != 0)
        {
            return Err(format!("record {i}: bad flags {bits:#x}"));
        }
        let previous = records.last();
        let ts = previous.map_or(0, |p| p.ts).wrapping_add(r.i64()?);
        let runner = if bits & SAME_RUNNER != 0 {
            previous.expect("checked above").runner.clone()
        } else {
            r.string()?
        };
        let path = if bits & SAME_PATH != 0 {
            previous.expect("checked above").path.clone()
        } else {
            r.string()?
        };
        let offset = r.u64()?;
        let level = r.string()?;
        let message = r.string()?;
        let fields = if bits & HAS_FIELDS == 0 {
            serde_json::Value::Null
        } else if format == FORMAT_RANGES {
            stored_fields::decode(r.bytes()?, &message)
                .map_err(|err| format!("record {i} fields: {err}"))?
        } else {
            let mut fields = serde_json::from_slice(r.bytes()?)
                .map_err(|err| format!("record {i} fields: {err}"))?;
            crate::record::bound_value(&mut fields, 0);
            fields
        };
        let stream = if bits & SAME_STREAM != 0 {
            previous.expect("checked above").stream.clone()
        } else {
            r.string()?
        };
        records.push(Record {
            ts,
            runner,
            path,
            offset,
            level,
            message,
            fields,
            truncated: bits & TRUNCATED != 0,
            parse_error: bits & PARSE_ERROR != 0,
            stream,
        });
    }
    let n = r.u64()?;
    if n > body.len() as u64 {
        return Err(format!(
            "{n} checkpoints cannot fit in {} bytes",
            body.len()
        ));
    }
    let mut checkpoints = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let key = r.string()?;
        let value = match r.u8()? {
            0 => None,
            1 => Some(r.string()?),
            other => return Err(format!("bad checkpoint marker {other}")),
        };
        checkpoints.push((key, value));
    }
    if r.at != body.len() {
        return Err(format!("{} bytes after the end", body.len() - r.at));
    }
    Ok(QueueBatch {
        first_seq,
        records,
        checkpoints,
        more,
        appended_at,
        damaged: None,
    })
}

fn put_u64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_i64(out: &mut Vec<u8>, value: i64) {
    put_u64(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_bytes(out, text.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, String> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| format!("ends early at byte {}", self.at))?;
        self.at += 1;
        Ok(byte)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(format!("varint overflows at byte {}", self.at));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint longer than 10 bytes at byte {}", self.at))
    }

    fn i64(&mut self) -> Result<i64, String> {
        let raw = self.u64()?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.u64()?;
        let left = (self.bytes.len() - self.at) as u64;
        if len > left {
            return Err(format!(
                "a length of {len} at byte {} runs past the end",
                self.at
            ));
        }
        let slice = &self.bytes[self.at..self.at + len as usize];
        self.at += len as usize;
        Ok(slice)
    }

    fn string(&mut self) -> Result<String, String> {
        let at = self.at;
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|err| format!("text at byte {at} is not UTF-8: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ts: i64, runner: &str, path: &str, message: &str) -> Record {
        Record {
            ts,
            runner: runner.into(),
            path: path.into(),
            offset: (ts as u64).wrapping_mul(3),
            level: if ts % 2 == 0 {
                "error".into()
            } else {
                String::new()
            },
            message: message.into(),
            fields: if ts % 3 == 0 {
                serde_json::json!({"status": 500, "deep": {"a": [1, "x"]}, "s": "é"})
            } else {
                serde_json::Value::Null
            },
            truncated: ts % 5 == 0,
            parse_error: ts % 7 == 0,
            stream: format!("{runner}/1:{}", ts / 4),
        }
    }

    fn round_trip(records: &[Record], checkpoints: &[(CheckpointKey, Option<String>)]) -> Vec<u8> {
        let prepared: Vec<Prepared<'_>> = records.iter().map(Prepared::prepare).collect();
        let value = encode_chunk(42, &prepared, checkpoints, true, -7);
        let batch = decode(&value).unwrap();
        assert_eq!(batch.first_seq, 42);
        assert!(batch.more);
        assert_eq!(batch.appended_at, -7);
        assert_eq!(batch.records, records);
        assert_eq!(batch.checkpoints, checkpoints);
        value
    }

    #[test]
    fn records_round_trip_and_repeated_strings_are_written_once() {
        let records: Vec<Record> = (0..50)
            .map(|i| {
                let runner = if i < 30 { "web" } else { "app" };
                record(
                    1_700_000_000_000_000 + i,
                    runner,
                    "/var/log/a.log",
                    "GET / 200",
                )
            })
            .collect();
        let value = round_trip(
            &records,
            &[
                ("web/1:2".into(), Some("{\"offset\":9}".into())),
                ("app/1:3".into(), None),
            ],
        );
        let json: usize = records
            .iter()
            .map(|r| serde_json::to_vec(r).unwrap().len())
            .sum();
        assert!(
            value.len() * 3 < json,
            "binary {} bytes, JSON {json}",
            value.len()
        );
        assert_eq!(
            value
                .windows(b"/var/log/a.log".len())
                .filter(|w| w == b"/var/log/a.log")
                .count(),
            1,
            "the path is written once"
        );
    }

    #[test]
    fn extremes_round_trip() {
        let mut odd = record(i64::MIN, "", "", "");
        odd.offset = u64::MAX;
        let mut other = record(i64::MAX, "r\u{0}", "p\n", "日本語\u{7f}");
        other.fields = serde_json::json!({});
        round_trip(&[odd, other], &[]);
        round_trip(&[], &[("k".into(), Some(String::new()))]);
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_an_error_or_a_valid_batch() {
        let records: Vec<Record> = (0..6).map(|i| record(i * 1000, "r", "/p", "m")).collect();
        let prepared: Vec<Prepared<'_>> = records.iter().map(Prepared::prepare).collect();
        let value = encode_chunk(1, &prepared, &[("r/x".into(), Some("{}".into()))], false, 5);
        for len in 0..value.len() {
            assert!(decode(&value[..len]).is_err(), "cut at {len} decodes");
        }
        for at in 0..value.len() {
            for bit in 0..8 {
                let mut damaged = value.clone();
                damaged[at] ^= 1 << bit;
                if let Ok(batch) = decode(&damaged) {
                    // A flip may land in a value (a letter of a message): the batch is still
                    // well formed and the count agrees with the header.
                    assert_eq!(batch.records.len(), 6);
                }
            }
        }
    }

    #[test]
    fn a_json_entry_of_the_previous_format_decodes() {
        // As the JSON format wrote it (header reserved bytes zero).
        let mut value = 2u32.to_be_bytes().to_vec();
        value.extend_from_slice(&[0; 4]);
        value.extend_from_slice(
            br#"{"first_seq":7,"more":false,"appended_at":11,"records":[{"ts":1,"runner":"r","path":"/p","offset":3,"message":"a"},{"ts":2,"runner":"r","path":"/p","offset":5,"level":"warn","message":"b","fields":{"x":1},"truncated":true}],"checkpoints":[["r/s","{}"]]}"#,
        );
        let batch = decode(&value).unwrap();
        assert_eq!(batch.first_seq, 7);
        assert_eq!(batch.records.len(), 2);
        assert_eq!(batch.records[1].fields, serde_json::json!({"x": 1}));
        assert!(batch.records[1].truncated);
        assert_eq!(
            batch.checkpoints,
            vec![("r/s".to_string(), Some("{}".to_string()))]
        );
    }

    #[test]
    fn parsed_fields_travel_as_ranges_of_the_message() {
        let line = r#"203.0.113.77 - alice [15/Jan/2026:10:00:00 +0000] "GET /api/v2/admin/export HTTP/1.1" 200 5120 "-" "curl/8.5.0""#;
        let mut parsed = record(1, "web", "/var/log/nginx/access.log", line);
        parsed.fields = serde_json::json!({
            "remote_addr": "203.0.113.77", "remote_user": "alice",
            "time_local": "15/Jan/2026:10:00:00 +0000", "request_method": "GET",
            "request_uri": "/api/v2/admin/export", "server_protocol": "HTTP/1.1",
            "status": 200, "body_bytes_sent": 5120, "http_referer": "-",
            "http_user_agent": "curl/8.5.0", "upstream": {"time": 0.25, "cache": null},
        });
        let prepared = Prepared::prepare(&parsed);
        let fields = prepared.fields.as_ref().unwrap();
        let json = serde_json::to_vec(&parsed.fields).unwrap();
        // The keys and a few bytes per value: no value's text is written again.
        let keys: usize = ["remote_addr", "remote_user", "time_local", "request_method"]
            .iter()
            .chain(&[
                "request_uri",
                "server_protocol",
                "status",
                "body_bytes_sent",
            ])
            .chain(&[
                "http_referer",
                "http_user_agent",
                "upstream",
                "time",
                "cache",
            ])
            .map(|key| key.len())
            .sum();
        // Per key its length byte; per value at most 4 bytes (the float 9); version and the
        // objects' tags and counts.
        assert!(
            fields.len() <= keys + 13 + 4 * 10 + 9 + 5,
            "{} bytes as ranges for {keys} bytes of keys, {} as JSON",
            fields.len(),
            json.len()
        );
        for text in [
            "alice",
            "curl/8.5.0",
            "/api/v2/admin/export",
            "203.0.113.77",
        ] {
            let text = text.as_bytes();
            assert!(!fields.windows(text.len()).any(|w| w == text));
        }
        round_trip(&[parsed], &[]);
    }

    /// A format 1 value (fields as JSON text), as the version before ranges wrote it.
    fn format_1(record: &Record, fields_json: &str) -> Vec<u8> {
        let mut value = 1u32.to_be_bytes().to_vec();
        value.extend_from_slice(&[FORMAT_BINARY, 0, 0, 0]);
        put_u64(&mut value, 9);
        value.push(0);
        put_i64(&mut value, 3);
        put_u64(&mut value, 1);
        value.push(HAS_FIELDS);
        put_i64(&mut value, record.ts);
        put_str(&mut value, &record.runner);
        put_str(&mut value, &record.path);
        put_u64(&mut value, record.offset);
        put_str(&mut value, &record.level);
        put_str(&mut value, &record.message);
        put_bytes(&mut value, fields_json.as_bytes());
        put_str(&mut value, &record.stream);
        put_u64(&mut value, 0);
        value
    }

    #[test]
    fn a_binary_entry_with_json_fields_decodes_and_writes_again() {
        let mut old = Record::test_line(5, "GET /x 200");
        old.fields = serde_json::json!({"status": 200, "path": "/x", "f": -1.5, "n": [null, true]});
        let batch = decode(&format_1(&old, &old.fields.to_string())).unwrap();
        assert_eq!(batch.first_seq, 9);
        assert_eq!(batch.records, vec![old.clone()]);
        round_trip(&batch.records, &[]);
        // Fields deeper than appends allow (no lograft wrote them, a damaged disk might) are
        // bounded as appends bound them, so the record can be stored again.
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(60), "]".repeat(60));
        let batch = decode(&format_1(&old, &deep)).unwrap();
        assert!(batch.records[0].fields["a"].is_array());
        round_trip(&batch.records, &[]);
    }

    #[test]
    fn an_unknown_format_names_itself() {
        let mut value = 0u32.to_be_bytes().to_vec();
        value.extend_from_slice(&[9, 0, 0, 0]);
        let err = decode(&value).unwrap_err();
        assert!(err.contains("format 9"), "{err}");
    }
}
