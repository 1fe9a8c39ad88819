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

/// Current time in microseconds since the epoch.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
