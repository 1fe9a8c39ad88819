//! Parsers: turn a line into a [`Record`]. A line that fails to parse is kept as raw text,
//! flagged `parse_error` and counted; it is never dropped.

pub mod text;

use chrono::{FixedOffset, TimeZone};
use regex::Regex;
use serde_json::{Map, Value};

use super::config::{ParserConfig, ParserType};
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

/// A parser compiled from a runner's `parser` config (regexes built once per runner).
pub struct Parser {
    kind: Kind,
    /// Field holding the event time, and how to read it.
    time_key: Option<String>,
    layouts: Vec<String>,
    zone: FixedOffset,
    level_key: String,
}

enum Kind {
    Raw,
    Json,
    Logfmt,
    Regex(Regex),
    /// The regex always compiles (it validates the format); the matcher runs where it can.
    Access(Regex, Option<text::AccessMatcher>),
    Syslog,
    Csv {
        splitter: char,
        schema: Vec<(String, text::CsvType)>,
    },
}

/// Longest user pattern accepted (`parser.regex`, `parser.nginx_log_format`, a transform's
/// `pattern`). Real ones are well under 2 KiB; the cap keeps compiling cheap.
pub const MAX_PATTERN_BYTES: usize = 16 * 1024;
/// Most capture groups (named groups, nginx `$variables`) in one pattern. nginx's `combined`
/// has 9 and rich formats have a few dozen; every group adds to the cost of each match.
pub const MAX_PATTERN_GROUPS: usize = 128;
/// Cap on a compiled regex (regex's `size_limit`; its default is 10 MiB). Matching costs
/// time in proportion to the program's size times the line's length, so this, with
/// [`MAX_PATTERN_GROUPS`] and `collect.max_line_bytes`, bounds the time one line can take.
pub const MAX_COMPILED_REGEX_BYTES: usize = 2 * 1024 * 1024;

/// Compile a user pattern within the limits above; the error names `key` and the limit.
pub fn compile_regex(key: &str, pattern: &str) -> Result<Regex, String> {
    check_pattern_size(key, pattern)?;
    let regex = regex::RegexBuilder::new(pattern)
        .size_limit(MAX_COMPILED_REGEX_BYTES)
        .dfa_size_limit(MAX_COMPILED_REGEX_BYTES)
        .build()
        .map_err(|err| match err {
            regex::Error::CompiledTooBig(limit) => format!(
                "{key}: the compiled pattern is larger than the limit of {limit} bytes; \
                 simplify it (fewer repetitions or Unicode classes)"
            ),
            other => format!("{key}: {other}"),
        })?;
    // The group count includes the implicit whole-match group 0.
    let groups = regex.captures_len() - 1;
    if groups > MAX_PATTERN_GROUPS {
        return Err(format!(
            "{key} has {groups} capture groups; at most {MAX_PATTERN_GROUPS} are allowed"
        ));
    }
    Ok(regex)
}

/// Refuse a pattern longer than [`MAX_PATTERN_BYTES`] before any work is done on it.
pub fn check_pattern_size(key: &str, pattern: &str) -> Result<(), String> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(format!(
            "{key} is {} bytes long; at most {MAX_PATTERN_BYTES} bytes are allowed",
            pattern.len()
        ));
    }
    Ok(())
}

/// A line cut to `max_line_bytes` (`collect.max_line_bytes`), and whether it was cut. Every
/// input applies it before parsing, as the file tailer does; a cut line is flagged
/// `truncated` and counted as dropped (`reason="line_truncated"`).
pub fn cut_line(line: &[u8], max_line_bytes: usize) -> (&[u8], bool) {
    if line.len() > max_line_bytes {
        (&line[..max_line_bytes], true)
    } else {
        (line, false)
    }
}

/// Timestamp layout of nginx's and Apache's `$time_local` / `%t`.
pub const ACCESS_TIME_LAYOUT: &str = "%d/%b/%Y:%H:%M:%S %z";

fn parse_zone(text: &str) -> Result<FixedOffset, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("utc") || text == "Z" {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => {
            return Err(format!(
                "parser.timezone {text:?}: use UTC or an offset like +08:00"
            ));
        }
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    let (hours, minutes) = match digits.len() {
        2 => (digits.parse::<i32>().ok(), Some(0)),
        4 => (
            digits[..2].parse::<i32>().ok(),
            digits[2..].parse::<i32>().ok(),
        ),
        _ => (None, None),
    };
    match (hours, minutes) {
        (Some(h), Some(m)) if h <= 14 && m < 60 => {
            FixedOffset::east_opt(sign * (h * 3600 + m * 60))
                .ok_or_else(|| format!("parser.timezone {text:?} is out of range"))
        }
        _ => Err(format!(
            "parser.timezone {text:?}: use UTC or an offset like +08:00"
        )),
    }
}

impl Parser {
    /// Compile a parser config; the error names the key and what is wrong.
    pub fn new(config: &ParserConfig) -> Result<Parser, String> {
        let kind = match config.parser_type {
            ParserType::Raw => Kind::Raw,
            ParserType::Json => Kind::Json,
            ParserType::Logfmt => Kind::Logfmt,
            ParserType::Regex => {
                let pattern = config
                    .regex
                    .as_deref()
                    .ok_or("parser.regex is required for type regex")?;
                let regex = compile_regex("parser.regex", pattern)?;
                if regex.capture_names().flatten().next().is_none() {
                    return Err("parser.regex needs named groups, like (?P<status>\\d+)".into());
                }
                Kind::Regex(regex)
            }
            ParserType::Nginx | ParserType::Apache => {
                let format = config
                    .nginx_log_format
                    .as_deref()
                    .unwrap_or(text::NGINX_COMBINED);
                Kind::Access(text::nginx_regex(format)?, text::AccessMatcher::new(format))
            }
            ParserType::Syslog => Kind::Syslog,
            ParserType::Csv => {
                let schema = text::csv_schema(
                    config
                        .csv_schema
                        .as_deref()
                        .ok_or("parser.csv_schema is required for type csv")?,
                )?;
                let splitter = config.csv_splitter.as_deref().unwrap_or(",");
                let mut chars = splitter.chars();
                let splitter = match (chars.next(), chars.next()) {
                    (Some(c), None) => c,
                    _ => {
                        return Err(format!(
                            "parser.csv_splitter {splitter:?} must be one character"
                        ));
                    }
                };
                Kind::Csv { splitter, schema }
            }
        };
        let default_time_key = match config.parser_type {
            ParserType::Nginx | ParserType::Apache => Some("time_local".to_string()),
            _ => None,
        };
        let mut layouts = config.timeformat_layouts.clone().unwrap_or_default();
        if matches!(config.parser_type, ParserType::Nginx | ParserType::Apache) {
            layouts.push(ACCESS_TIME_LAYOUT.to_string());
        }
        for layout in &layouts {
            // chrono reports a bad layout only when parsing; catch obvious mistakes early.
            if !layout.contains('%') {
                return Err(format!(
                    "parser.timeformat_layouts: {layout:?} has no %-directives"
                ));
            }
        }
        Ok(Parser {
            kind,
            time_key: config.timestamp_key.clone().or(default_time_key),
            layouts,
            zone: parse_zone(config.timezone.as_deref().unwrap_or("UTC"))?,
            level_key: config
                .level_key
                .clone()
                .unwrap_or_else(|| "level".to_string()),
        })
    }

    pub fn parse(&self, line: &[u8], context: &LineContext<'_>) -> Record {
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
        let fields = match &self.kind {
            Kind::Raw => {
                record.message = text.into_owned();
                return record;
            }
            Kind::Json => {
                match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(object)) => apply_json(&mut record, object),
                    _ => {
                        record.parse_error = true;
                        record.message = text.into_owned();
                    }
                }
                if let Some(key) = &self.time_key
                    && let Value::Object(fields) = &mut record.fields
                    && let Some(ts) = fields.get(key).and_then(|v| self.read_time(v))
                {
                    record.ts = ts;
                    fields.remove(key);
                }
                return record;
            }
            Kind::Logfmt => text::logfmt(&text).map(|fields| (fields, None)),
            Kind::Regex(regex) => named_groups(regex, &text).map(|fields| (fields, None)),
            Kind::Access(regex, matcher) => match matcher {
                Some(matcher) => matcher.fields(&text),
                None => named_groups(regex, &text),
            }
            .map(|mut fields| {
                if let Some(Value::String(request)) = fields.get("request").cloned() {
                    let mut parts = request.splitn(3, ' ');
                    for key in ["request_method", "request_uri", "server_protocol"] {
                        if let Some(part) = parts.next() {
                            fields.insert(key.into(), Value::String(part.into()));
                        }
                    }
                }
                (fields, Some(text.to_string()))
            }),
            Kind::Syslog => text::syslog(&text, self.zone).map(|parsed| {
                if let Some(ts) = parsed.ts.filter(|ts| (0..LATEST_EVENT_MICROS).contains(ts)) {
                    record.ts = ts;
                }
                if let Some(severity) = parsed.severity {
                    record.level = text::severity_name(severity).to_string();
                }
                (parsed.fields, Some(parsed.message))
            }),
            Kind::Csv { splitter, schema } => {
                text::csv(&text, *splitter, schema).map(|fields| (fields, None))
            }
        };
        let Some((mut fields, message)) = fields else {
            record.parse_error = true;
            record.message = text.into_owned();
            return record;
        };
        let time_key = self.time_key.clone().or_else(|| {
            TIME_KEYS
                .iter()
                .find(|key| fields.contains_key(**key))
                .map(|key| key.to_string())
        });
        if let Some(key) = time_key
            && let Some(ts) = fields.get(&key).and_then(|value| self.read_time(value))
        {
            record.ts = ts;
        }
        if record.level.is_empty()
            && let Some(Value::String(level)) = fields.get(&self.level_key)
        {
            record.level = level.to_ascii_lowercase();
        }
        record.message = match message {
            Some(message) => message,
            None => match MESSAGE_KEYS
                .iter()
                .find_map(|key| fields.get(*key).and_then(Value::as_str))
            {
                Some(message) => message.to_string(),
                None => text.into_owned(),
            },
        };
        for key in MESSAGE_KEYS {
            if fields.get(key).and_then(Value::as_str) == Some(record.message.as_str()) {
                fields.remove(key);
            }
        }
        if !fields.is_empty() {
            record.fields = Value::Object(fields);
        }
        record
    }

    /// An event time from a field: the configured layouts, then RFC 3339 and epoch numbers.
    fn read_time(&self, value: &Value) -> Option<i64> {
        if let Value::String(text) = value {
            for layout in &self.layouts {
                let micros = if layout == ACCESS_TIME_LAYOUT
                    && let Some(micros) = text::access_time_micros(text)
                {
                    Some(micros)
                } else if layout.contains("%z") || layout.contains("%:z") {
                    chrono::DateTime::parse_from_str(text, layout)
                        .ok()
                        .map(|dt| dt.timestamp_micros())
                } else {
                    chrono::NaiveDateTime::parse_from_str(text, layout)
                        .ok()
                        .and_then(|naive| self.zone.from_local_datetime(&naive).single())
                        .map(|dt| dt.timestamp_micros())
                };
                if let Some(micros) = micros.filter(|m| (0..LATEST_EVENT_MICROS).contains(m)) {
                    return Some(micros);
                }
            }
        }
        timestamp_micros(value)
    }
}

/// The named groups of a regex match, typed (numbers as numbers).
pub fn named_groups(regex: &Regex, text: &str) -> Option<Map<String, Value>> {
    let captures = regex.captures(text)?;
    Some(
        regex
            .capture_names()
            .flatten()
            .filter_map(|name| {
                captures
                    .name(name)
                    .map(|m| (name.to_string(), text::typed(m.as_str())))
            })
            .collect(),
    )
}

/// Parse one line with a parser type's defaults (tests and `parser/parse` previews).
pub fn parse(parser: ParserType, line: &[u8], context: &LineContext<'_>) -> Record {
    let config = ParserConfig {
        parser_type: parser,
        ..ParserConfig::default()
    };
    match Parser::new(&config) {
        Ok(parser) => parser.parse(line, context),
        Err(_) => Parser::new(&ParserConfig::default())
            .expect("raw parser")
            .parse(line, context),
    }
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
const LATEST_EVENT_MICROS: i64 = crate::record::END_OF_TIME;

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

#[cfg(test)]
mod format_tests {
    use super::*;

    fn ctx() -> LineContext<'static> {
        LineContext {
            runner: "r",
            path: "/x.log",
            offset: 0,
            truncated: false,
            stream: "r/1:2",
        }
    }

    fn parser(json: &str) -> Parser {
        Parser::new(&serde_json::from_str::<ParserConfig>(json).unwrap()).unwrap()
    }

    fn parse_fixture(parser: &Parser, fixture: &str) -> Vec<Record> {
        let path = format!("{}/tests/data/{fixture}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| parser.parse(line.as_bytes(), &ctx()))
            .collect()
    }

    fn at(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_micros()
    }

    #[test]
    fn nginx_combined() {
        let records = parse_fixture(&parser(r#"{"type":"nginx"}"#), "nginx-access.log");
        assert_eq!(records[0].ts, at("2026-01-15T10:00:05Z"));
        assert_eq!(records[0].fields["remote_addr"], "203.0.113.77");
        assert_eq!(records[0].fields["status"], 200);
        assert_eq!(records[0].fields["body_bytes_sent"], 5123);
        assert_eq!(records[0].fields["request_uri"], "/api/v2/admin/export");
        assert_eq!(
            records[1].ts,
            at("2026-01-15T09:00:06Z"),
            "the +0100 offset is applied"
        );
        assert_eq!(records[1].fields["remote_user"], "alice");
        assert_eq!(
            records[2].fields["http_user_agent"],
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)"
        );
        assert!(records[3].parse_error && records[3].message == "this is not an access log line");
        assert!(
            records[0].message.starts_with("203.0.113.77 - -"),
            "the whole line stays searchable"
        );
        // A custom log_format.
        let custom = parser(
            r#"{"type":"nginx","nginx_log_format":"$remote_addr [$time_local] $status $request_time"}"#,
        );
        let record = custom.parse(b"10.0.0.1 [15/Jan/2026:10:00:05 +0000] 503 0.123", &ctx());
        assert_eq!(record.fields["status"], 503);
        assert_eq!(record.fields["request_time"], 0.123);
    }

    #[test]
    fn syslog_debian_files_3164_and_5424() {
        let records = parse_fixture(&parser(r#"{"type":"syslog"}"#), "syslog");
        assert_eq!(records[0].ts, at("2026-01-15T10:00:01.123456Z"));
        assert_eq!(records[0].fields["appname"], "CRON");
        assert_eq!(records[0].fields["procid"], "4242");
        assert!(records[0].message.starts_with("(root) CMD"));
        assert_eq!(records[2].fields["appname"], "sshd");
        assert!(
            records[2]
                .message
                .starts_with("Failed password for invalid user admin")
        );
        assert_eq!(records[3].level, "info");
        assert_eq!(records[3].fields["facility"], 10);
        assert_eq!(records[4].ts, at("2026-01-15T10:00:05.003Z"));
        assert_eq!(records[4].level, "notice");
        assert_eq!(records[4].fields["hostname"], "mymachine.example.com");
        assert_eq!(records[4].fields["msgid"], "ID47");
        assert_eq!(records[4].message, "An application event log entry");
        assert!(records.iter().all(|r| !r.parse_error));
    }

    #[test]
    fn logfmt_with_layouts_and_zone() {
        let p = parser(
            r#"{"type":"logfmt","timeformat_layouts":["%Y-%m-%d %H:%M:%S"],"timezone":"+08:00"}"#,
        );
        let records = parse_fixture(&p, "app.logfmt");
        assert_eq!(records[0].ts, at("2026-01-15T10:00:00Z"));
        assert_eq!(records[0].level, "warn");
        assert_eq!(records[0].message, "slow query");
        assert_eq!(records[0].fields["duration_ms"], 1234);
        assert_eq!(
            records[1].ts,
            at("2026-01-15T02:00:01Z"),
            "a zone-less time is read in +08:00"
        );
        assert_eq!(records[1].fields["order"], 4242);
        assert!(records[2].parse_error);
    }

    #[test]
    fn csv_with_schema() {
        let p = parser(
            r#"{"type":"csv","csv_schema":"time string, order long, amount float, paid bool, buyer string",
                "timestamp_key":"time","timeformat_layouts":["%Y-%m-%d %H:%M:%S"]}"#,
        );
        let records = parse_fixture(&p, "orders.csv");
        assert_eq!(records[0].ts, at("2026-01-15T10:00:00Z"));
        assert_eq!(records[0].fields["amount"], 129.9);
        assert_eq!(records[0].fields["paid"], true);
        assert_eq!(records[0].fields["buyer"], "Alice, the buyer");
        assert_eq!(records[1].fields["buyer"], "Bob \"the builder\"");
        assert!(
            records[2].parse_error,
            "a row that does not fit the schema is kept raw"
        );
    }

    #[test]
    fn regex_named_groups() {
        let p = parser(
            r#"{"type":"regex","regex":"^(?P<level>\\w+) \\[(?P<thread>[^\\]]+)\\] (?P<message>.*)$"}"#,
        );
        let record = p.parse(b"ERROR [main-7] boom: disk full", &ctx());
        assert_eq!(record.level, "error");
        assert_eq!(record.message, "boom: disk full");
        assert_eq!(record.fields["thread"], "main-7");
        assert!(p.parse(b"no match here", &ctx()).parse_error);
    }

    // See: attack review item 9 (a 5000-variable log_format held both async workers 46 s).
    #[test]
    fn hostile_patterns_are_refused_naming_the_limit() {
        let error = |config: serde_json::Value| {
            Parser::new(&serde_json::from_value::<ParserConfig>(config).unwrap())
                .err()
                .unwrap()
        };
        let format: String = (0..5000).map(|i| format!("$v{i} ")).collect();
        let err = error(serde_json::json!({"type": "nginx", "nginx_log_format": format}));
        assert!(
            err.contains("parser.nginx_log_format has 5000 variables; at most 128"),
            "{err}"
        );
        let long = "a".repeat(MAX_PATTERN_BYTES + 1);
        let err = error(serde_json::json!({"type": "regex", "regex": format!("(?P<x>{long})")}));
        assert!(
            err.contains("parser.regex is 16392 bytes long; at most 16384"),
            "{err}"
        );
        let err = error(serde_json::json!({"type": "regex", "regex": "(?P<x>\\w{100}){100}"}));
        assert!(
            err.contains("parser.regex: the compiled pattern is larger than the limit"),
            "{err}"
        );
        let groups: String = (0..200).map(|i| format!("(?P<g{i}>a)")).collect();
        let err = error(serde_json::json!({"type": "regex", "regex": groups}));
        assert!(
            err.contains("parser.regex has 200 capture groups; at most 128"),
            "{err}"
        );
        // The largest accepted format still parses.
        let format: String = (0..MAX_PATTERN_GROUPS).map(|i| format!("$v{i} ")).collect();
        let parser = parser(
            &serde_json::json!({"type": "nginx", "nginx_log_format": format.trim_end()})
                .to_string(),
        );
        let line: String = (0..MAX_PATTERN_GROUPS).map(|i| format!("{i} ")).collect();
        let record = parser.parse(line.trim_end().as_bytes(), &ctx());
        assert_eq!(record.fields["v127"], 127);
    }

    #[test]
    fn bad_parser_configs_name_the_key() {
        let error = |json: &str| {
            Parser::new(&serde_json::from_str::<ParserConfig>(json).unwrap())
                .err()
                .unwrap()
        };
        assert!(error(r#"{"type":"regex"}"#).contains("parser.regex is required"));
        assert!(error(r#"{"type":"regex","regex":"(unclosed"}"#).contains("parser.regex"));
        assert!(error(r#"{"type":"regex","regex":"no groups"}"#).contains("named groups"));
        assert!(error(r#"{"type":"csv"}"#).contains("parser.csv_schema"));
        assert!(error(r#"{"type":"csv","csv_schema":"a blob"}"#).contains("unknown type"));
        assert!(
            error(r#"{"type":"logfmt","timezone":"Mars/Olympus"}"#).contains("parser.timezone")
        );
    }
}

#[cfg(test)]
mod access_matcher_tests {
    use super::*;
    use crate::testutil::xorshift;

    /// Formats the scanner takes, and ones it must leave to the regex.
    const FORMATS: [&str; 7] = [
        text::NGINX_COMBINED,
        r#"$remote_addr [$time_local] $status $request_time"#,
        r#"[$a] "$b" $a $c"#,
        "$a",
        "prefix $a suffix",
        "$a|$b|$c|",
        "",
    ];

    /// Lines made of the characters that matter: every format's literals and stop bytes, a
    /// newline, digits (typed values), multi-byte text.
    fn random_line(next: &mut impl FnMut() -> u64, format: &str) -> String {
        const PIECES: [&str; 14] = [
            " ",
            "\"",
            "[",
            "]",
            "|",
            "-",
            "12",
            "3.5",
            "GET /x HTTP/1.1",
            "é",
            "\n",
            "a b",
            "prefix ",
            " suffix",
        ];
        let mut line = String::new();
        // Half the lines start from the format with its variables filled, so they mostly
        // match; the rest are noise.
        if next() % 2 == 0 {
            let mut chars = format.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '$' {
                    while chars
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
                    {
                        chars.next();
                    }
                    for _ in 0..next() % 3 {
                        line.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
                    }
                } else {
                    line.push(c);
                }
            }
        } else {
            for _ in 0..next() % 12 {
                line.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
        }
        line
    }

    #[test]
    fn the_scanner_finds_what_the_regex_finds() {
        let mut next = xorshift(0x5eed_acce55);
        let mut matched = 0;
        for format in FORMATS {
            let regex = text::nginx_regex(format).unwrap();
            let matcher = text::AccessMatcher::new(format).expect("a format the scanner takes");
            for _ in 0..4000 {
                let line = random_line(&mut next, format);
                let expected = named_groups(&regex, &line);
                matched += usize::from(expected.is_some());
                assert_eq!(matcher.fields(&line), expected, "{format:?} on {line:?}");
            }
        }
        assert!(matched > 5000, "most filled-in lines match ({matched})");
    }

    #[test]
    fn formats_the_scanner_cannot_follow_keep_the_regex() {
        // Two variables with nothing between them: the regex backtracks between them.
        assert!(text::AccessMatcher::new("$a$b x").is_none());
        // A variable stopped by a non-ASCII character.
        assert!(text::AccessMatcher::new("$a→$b").is_none());
        let parser = Parser::new(&ParserConfig {
            parser_type: ParserType::Nginx,
            nginx_log_format: Some("$a$b x".into()),
            ..ParserConfig::default()
        })
        .unwrap();
        let context = LineContext {
            runner: "r",
            path: "/x.log",
            offset: 0,
            truncated: false,
            stream: "r/1:2",
        };
        let record = parser.parse(b"foo bar x", &context);
        assert!(!record.parse_error);
        assert_eq!(record.fields["a"], "foo bar");
        assert_eq!(record.fields["b"], "");
    }

    #[test]
    fn time_local_reads_as_chrono_reads_it() {
        let mut next = xorshift(0x71e_10ca1);
        let months = ["Jan", "Feb", "Mar", "Jun", "Sep", "Dec", "jan", "Foo"];
        let mut fast = 0;
        for _ in 0..20_000 {
            let mut pick = |n: u64| next() % n;
            let text = format!(
                "{:02}/{}/{:04}:{:02}:{:02}:{:02} {}{:02}{:02}",
                pick(33),
                months[pick(months.len() as u64) as usize],
                1965 + pick(80),
                pick(26),
                pick(62),
                pick(62),
                ["+", "-", "*"][pick(3) as usize],
                pick(26),
                pick(62),
            );
            let chrono = chrono::DateTime::parse_from_str(&text, ACCESS_TIME_LAYOUT)
                .ok()
                .map(|dt| dt.timestamp_micros());
            if let Some(micros) = text::access_time_micros(&text) {
                fast += 1;
                assert_eq!(Some(micros), chrono, "{text}");
            }
        }
        assert!(
            fast > 3000,
            "the fast reader takes the common form ({fast})"
        );
        assert_eq!(
            text::access_time_micros("15/Jan/2026:10:00:00 +0800"),
            Some(1_768_442_400_000_000)
        );
    }
}
