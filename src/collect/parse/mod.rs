//! Parsers: turn a line into a [`Record`]. A line that fails to parse is kept as raw text,
//! flagged `parse_error` and counted; it is never dropped.

use serde_json::{Map, Value};

use super::config::ParserType;
use crate::record::{Record, now_micros};

/// Keys a JSON line may carry its event time, level and message under (first match wins).
const TIME_KEYS: [&str; 4] = ["ts", "time", "timestamp", "@timestamp"];
const LEVEL_KEYS: [&str; 4] = ["level", "lvl", "severity", "log.level"];
const MESSAGE_KEYS: [&str; 3] = ["msg", "message", "log"];

pub struct LineContext<'a> {
    pub runner: &'a str,
    pub path: &'a str,
    pub offset: u64,
    pub truncated: bool,
    /// `<runner>/<stream key>` of the file.
    pub stream: &'a str,
}

pub fn parse(parser: ParserType, line: &[u8], context: &LineContext<'_>) -> Record {
    let text = String::from_utf8_lossy(line);
    let mut record = Record {
        ts: now_micros(),
        runner: context.runner.to_string(),
        path: context.path.to_string(),
        offset: context.offset,
        level: String::new(),
        message: String::new(),
        fields: Value::Null,
        truncated: context.truncated,
        parse_error: false,
        stream: context.stream.to_string(),
    };
    match parser {
        ParserType::Raw => record.message = text.into_owned(),
        ParserType::Json => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(object)) => apply_json(&mut record, object),
            _ => {
                record.parse_error = true;
                record.message = text.into_owned();
            }
        },
    }
    record
}

fn apply_json(record: &mut Record, mut object: Map<String, Value>) {
    if let Some((key, ts)) = TIME_KEYS.iter().find_map(|key| {
        object
            .get(*key)
            .and_then(timestamp_micros)
            .map(|ts| (*key, ts))
    }) {
        record.ts = ts;
        object.remove(key);
    }
    if let Some(key) = LEVEL_KEYS
        .iter()
        .find(|key| object.get(**key).is_some_and(Value::is_string))
        && let Some(Value::String(level)) = object.remove(*key)
    {
        record.level = level.to_ascii_lowercase();
    }
    match MESSAGE_KEYS
        .iter()
        .find(|key| object.get(**key).is_some_and(Value::is_string))
    {
        Some(key) => {
            if let Some(Value::String(message)) = object.remove(*key) {
                record.message = message;
            }
        }
        // No message field: the whole object is the message, so it is searchable as text.
        None => record.message = Value::Object(object.clone()).to_string(),
    }
    if !object.is_empty() {
        record.fields = Value::Object(object);
    }
}

/// Event times outside `[1970, 2200)` are not believed (the index stores dates in i64
/// nanoseconds, and search ranges end in 2200): such a line keeps its ingest time.
const LATEST_EVENT_MICROS: i64 = crate::search::END_OF_TIME;

/// RFC 3339 text, or epoch seconds / milliseconds / microseconds told apart by magnitude.
fn timestamp_micros(value: &Value) -> Option<i64> {
    parse_timestamp_micros(value).filter(|micros| (0..LATEST_EVENT_MICROS).contains(micros))
}

fn parse_timestamp_micros(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|dt| dt.timestamp_micros()),
        Value::Number(number) => {
            let n = number.as_f64()?;
            let micros = if n.abs() < 1e11 {
                n * 1e6
            } else if n.abs() < 1e14 {
                n * 1e3
            } else {
                n
            };
            Some(micros as i64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> LineContext<'static> {
        LineContext {
            runner: "r",
            path: "/x.log",
            offset: 7,
            truncated: false,
            stream: "r/1:2",
        }
    }

    #[test]
    fn json_extracts_time_level_message() {
        let line = br#"{"ts":"2026-01-15T10:00:00.250Z","level":"ERROR","service":"api","msg":"boom","latency_ms":12.5}"#;
        let record = parse(ParserType::Json, line, &ctx());
        assert_eq!(record.ts, 1_768_471_200_250_000);
        assert_eq!(record.level, "error");
        assert_eq!(record.message, "boom");
        assert_eq!(
            record.fields,
            serde_json::json!({"service":"api","latency_ms":12.5})
        );
        assert!(!record.parse_error);
    }

    #[test]
    fn bad_json_is_kept_raw_and_flagged() {
        let record = parse(ParserType::Json, b"not json {", &ctx());
        assert!(record.parse_error);
        assert_eq!(record.message, "not json {");
        assert_eq!(record.offset, 7);
    }

    #[test]
    fn out_of_range_times_keep_the_ingest_time() {
        for line in [
            &br#"{"ts":"9999-12-31T23:59:59Z","msg":"far"}"#[..],
            br#"{"ts":1e300,"msg":"huge"}"#,
            br#"{"ts":-5,"msg":"before 1970"}"#,
        ] {
            let before = now_micros();
            let record = parse(ParserType::Json, line, &ctx());
            assert!(
                record.ts >= before && record.ts <= now_micros(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn epoch_units() {
        assert_eq!(
            timestamp_micros(&serde_json::json!(1_768_471_200)),
            Some(1_768_471_200_000_000)
        );
        assert_eq!(
            timestamp_micros(&serde_json::json!(1_768_471_200_123i64)),
            Some(1_768_471_200_123_000)
        );
    }
}
