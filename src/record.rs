//! The unit of data that flows from a runner through the queue into the index.

use serde::{Deserialize, Serialize};

/// One log event, as produced by a runner's parser.
///
/// `seq` is not part of the record: the queue assigns it, and it is the identity of the record
/// from then on (the index stores it; exactly-once is reasoned about in sequence numbers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Event time, microseconds since the Unix epoch (UTC). Parsed from the line when the
    /// parser finds a timestamp, else the time the line was read.
    pub ts: i64,
    /// Name of the runner that collected the line.
    pub runner: String,
    /// File the line was read from (empty for network inputs).
    pub path: String,
    /// Byte offset of the first byte of the line in that file.
    pub offset: u64,
    /// Severity, lowercase (`error`, `warn`, ...), empty when unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub level: String,
    /// The text that is searched by default.
    pub message: String,
    /// Structured fields from the parser (a JSON object), `Null` when none.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub fields: serde_json::Value,
    /// The line was longer than `collect.max_line_bytes` and was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The parser could not parse the line; `message` holds the raw line.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parse_error: bool,
    /// The file the line came from, as one stream through renames and truncation
    /// (`<runner>/<dev>:<inode>`); empty for lines that did not come from a file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stream: String,
}

/// The runner name of the audit trail (records the node writes about its own API use).
pub const AUDIT_RUNNER: &str = "_audit";

/// 2200-01-01 in micros: the latest event time kept, and the default end of a search range
/// (tantivy dates are i64 nanoseconds: up to 2262).
pub const END_OF_TIME: i64 = 7_258_118_400_000_000;

/// Current time in microseconds since the epoch.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Deepest nesting kept in [`Record::fields`]. Anything deeper is kept as its JSON text (a
/// string), so every accepted record stays far below the recursion limit of the queue's codec
/// (the binary codec stores `fields` as JSON, which serde_json reads to 128 levels; entries of
/// the older JSON format wrap records in three more): a record that went in always comes out.
pub const MAX_FIELD_DEPTH: usize = 32;

impl Record {
    /// A plain line of runner `r` at `ts` (tests).
    #[cfg(test)]
    pub fn test_line(ts: i64, message: &str) -> Record {
        Record {
            ts,
            runner: "r".into(),
            path: String::new(),
            offset: 0,
            level: String::new(),
            message: message.into(),
            fields: serde_json::Value::Null,
            truncated: false,
            parse_error: false,
            stream: String::new(),
        }
    }

    /// Make the record storable: fields nested deeper than [`MAX_FIELD_DEPTH`] become their
    /// JSON text. Returns whether anything was rewritten. Every queue calls this on append.
    pub fn bound_depth(&mut self) -> bool {
        bound_value(&mut self.fields, 0)
    }
}

/// [`Record::bound_depth`] for a value at `depth`.
pub(crate) fn bound_value(value: &mut serde_json::Value, depth: usize) -> bool {
    use serde_json::Value;
    match value {
        Value::Array(_) | Value::Object(_) if depth >= MAX_FIELD_DEPTH => {
            *value = Value::String(value.to_string());
            true
        }
        Value::Array(items) => {
            let mut changed = false;
            for item in items {
                changed |= bound_value(item, depth + 1);
            }
            changed
        }
        Value::Object(map) => {
            let mut changed = false;
            for (_, item) in map.iter_mut() {
                changed |= bound_value(item, depth + 1);
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> serde_json::Value {
        let text = format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn deep_fields_become_text_and_the_record_round_trips() {
        let mut record = Record {
            ts: 1,
            runner: "r".into(),
            path: String::new(),
            offset: 0,
            level: String::new(),
            message: "m".into(),
            fields: serde_json::json!({"a": nested(126)}),
            truncated: false,
            parse_error: false,
            stream: String::new(),
        };
        // As the queue stores it: inside an object, inside an array, inside an object.
        let wrapped = |record: &Record| {
            format!(
                "{{\"records\":[{}]}}",
                serde_json::to_string(record).unwrap()
            )
        };
        assert!(
            serde_json::from_str::<serde_json::Value>(&wrapped(&record)).is_err(),
            "unbounded, the queue entry cannot be read back"
        );
        assert!(record.bound_depth());
        let text = wrapped(&record);
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut deepest = &back["records"][0]["fields"]["a"];
        let mut levels = 1;
        while let Some(inner) = deepest.get(0) {
            deepest = inner;
            levels += 1;
        }
        assert_eq!(levels, MAX_FIELD_DEPTH, "kept structure down to the limit");
        assert!(
            deepest.as_str().unwrap().starts_with("[[[["),
            "the rest as its text"
        );
        assert!(!record.bound_depth(), "already bounded");
    }
}
