//! Line formats: logfmt, CSV with a schema, syslog (RFC 3164 and 5424), and access logs from an
//! nginx `log_format` (the `combined` format by default, which Apache's combined log shares).

use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Utc};
use regex::Regex;
use serde_json::{Map, Value};

/// `key=value key2="quoted value"`. Bare words without `=` are ignored.
pub fn logfmt(text: &str) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut key_end = start;
        while let Some(&(i, c)) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key_end = i + c.len_utf8();
            chars.next();
        }
        let key = &text[start..key_end];
        if chars.peek().map(|&(_, c)| c) != Some('=') {
            continue; // a bare word
        }
        chars.next();
        let value = if chars.peek().map(|&(_, c)| c) == Some('"') {
            chars.next();
            let mut value = String::new();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return None;
            }
            value
        } else {
            let mut value = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value
        };
        if !key.is_empty() {
            out.insert(key.to_string(), typed(&value));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A number when the text is one, else the text.
pub fn typed(text: &str) -> Value {
    if let Ok(n) = text.parse::<i64>() {
        return Value::from(n);
    }
    if let Ok(f) = text.parse::<f64>()
        && f.is_finite()
        && text.contains('.')
    {
        return Value::from(f);
    }
    Value::String(text.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CsvType {
    String,
    Long,
    Float,
    Bool,
}

/// `"name type, name type"` (logkit's `csv_schema`); types `string`, `long`, `float`, `bool`.
pub fn csv_schema(schema: &str) -> Result<Vec<(String, CsvType)>, String> {
    schema
        .split(',')
        .map(|column| {
            let mut parts = column.split_whitespace();
            let name = parts
                .next()
                .ok_or_else(|| "parser.csv_schema has an empty column".to_string())?;
            let kind = match parts.next().unwrap_or("string") {
                "string" => CsvType::String,
                "long" | "int" => CsvType::Long,
                "float" => CsvType::Float,
                "bool" => CsvType::Bool,
                other => {
                    return Err(format!(
                        "parser.csv_schema: unknown type {other:?} of column {name:?}"
                    ));
                }
            };
            Ok((name.to_string(), kind))
        })
        .collect()
}

/// Split one CSV line (quotes with doubled quotes inside) and type it by the schema.
pub fn csv(text: &str, splitter: char, schema: &[(String, CsvType)]) -> Option<Map<String, Value>> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if cell.is_empty() => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            ('"', true) => quoted = false,
            (c, false) if c == splitter => cells.push(std::mem::take(&mut cell)),
            (c, _) => cell.push(c),
        }
    }
    cells.push(cell);
    if quoted || cells.len() != schema.len() {
        return None;
    }
    let mut out = Map::new();
    for ((name, kind), cell) in schema.iter().zip(cells) {
        let value = match kind {
            CsvType::String => Value::String(cell),
            CsvType::Long => Value::from(cell.trim().parse::<i64>().ok()?),
            CsvType::Float => Value::from(cell.trim().parse::<f64>().ok()?),
            CsvType::Bool => Value::from(cell.trim().parse::<bool>().ok()?),
        };
        out.insert(name.clone(), value);
    }
    Some(out)
}

/// A parsed syslog line.
pub struct Syslog {
    pub ts: Option<i64>,
    pub severity: Option<u8>,
    pub fields: Map<String, Value>,
    pub message: String,
}

const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
];

pub fn severity_name(severity: u8) -> &'static str {
    SEVERITIES[(severity & 7) as usize]
}

/// RFC 5424 (`<34>1 2026-01-15T10:00:00Z host app 123 ID [sd] msg`), RFC 3164
/// (`<34>Jan 15 10:00:00 host app[123]: msg`) and the file forms rsyslog writes (no `<PRI>`,
/// with a BSD or an RFC 3339 time). BSD times have no year or zone: the current year and
/// `zone` are assumed.
pub fn syslog(text: &str, zone: chrono::FixedOffset) -> Option<Syslog> {
    let mut rest = text;
    let mut fields = Map::new();
    let mut severity = None;
    if let Some(after) = rest.strip_prefix('<') {
        let end = after.find('>')?;
        let pri: u16 = after[..end].parse().ok()?;
        if pri > 191 {
            return None;
        }
        severity = Some((pri % 8) as u8);
        fields.insert("facility".into(), Value::from(pri / 8));
        rest = &after[end + 1..];
    }
    let ts;
    if let Some(after) = rest.strip_prefix("1 ") {
        // RFC 5424: TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
        let mut parts = after.splitn(6, ' ');
        let time = parts.next()?;
        ts = if time == "-" {
            None
        } else {
            Some(DateTime::parse_from_rfc3339(time).ok()?.timestamp_micros())
        };
        for name in ["hostname", "appname", "procid", "msgid"] {
            let value = parts.next()?;
            if value != "-" {
                fields.insert(name.into(), Value::String(value.into()));
            }
        }
        let mut tail = parts.next().unwrap_or("");
        if tail.starts_with('[') {
            let end = structured_data_end(tail)?;
            fields.insert("structured_data".into(), Value::String(tail[..end].into()));
            tail = tail[end..].trim_start();
        } else if let Some(after) = tail.strip_prefix('-') {
            tail = after.trim_start();
        }
        let message = tail.strip_prefix('\u{feff}').unwrap_or(tail).to_string();
        return Some(Syslog {
            ts,
            severity,
            fields,
            message,
        });
    }
    // An RFC 3339 time (rsyslog's file format), or a BSD time "Jan 15 10:00:00".
    let (time, after) = rest.split_once(' ')?;
    if let Ok(dt) = DateTime::parse_from_rfc3339(time) {
        ts = Some(dt.timestamp_micros());
        rest = after;
    } else {
        if rest.len() < 16 || !rest.is_char_boundary(15) {
            return None;
        }
        let (bsd, after) = rest.split_at(15);
        let year = Utc::now().year();
        let naive =
            NaiveDateTime::parse_from_str(&format!("{year} {bsd}"), "%Y %b %e %H:%M:%S").ok()?;
        let mut when = zone
            .from_local_datetime(&naive)
            .single()?
            .timestamp_micros();
        // December lines read in January belong to last year.
        if when > Utc::now().timestamp_micros() + 86_400_000_000 {
            let naive =
                NaiveDateTime::parse_from_str(&format!("{} {bsd}", year - 1), "%Y %b %e %H:%M:%S")
                    .ok()?;
            when = zone
                .from_local_datetime(&naive)
                .single()?
                .timestamp_micros();
        }
        ts = Some(when);
        rest = after.trim_start();
    }
    let (host, after) = rest.split_once(' ')?;
    fields.insert("hostname".into(), Value::String(host.into()));
    // TAG[PID]: MSG
    let message = match after.split_once(": ") {
        Some((tag, message)) if !tag.contains(' ') => {
            match tag.split_once('[') {
                Some((app, pid)) => {
                    fields.insert("appname".into(), Value::String(app.into()));
                    fields.insert(
                        "procid".into(),
                        Value::String(pid.trim_end_matches(']').into()),
                    );
                }
                None => {
                    fields.insert("appname".into(), Value::String(tag.into()));
                }
            }
            message.to_string()
        }
        _ => after.to_string(),
    };
    Some(Syslog {
        ts,
        severity,
        fields,
        message,
    })
}

/// End of RFC 5424 structured data (`[id k="v"][id2 ...]`), honouring `\]` escapes.
fn structured_data_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i] == b'[' {
        let mut escaped = false;
        i += 1;
        loop {
            let b = *bytes.get(i)?;
            i += 1;
            match (b, escaped) {
                (b'\\', false) => escaped = true,
                (b']', false) => break,
                _ => escaped = false,
            }
        }
    }
    Some(i)
}

/// nginx's predefined `combined` format (Apache's combined log has the same shape).
pub const NGINX_COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// A regex with one named group per `$variable` of an nginx `log_format`. A variable runs up to
/// the literal character that follows it in the format.
pub fn nginx_regex(format: &str) -> Result<Regex, String> {
    const KEY: &str = "parser.nginx_log_format";
    // Counted before building anything: each variable becomes a group.
    let variables = format.matches('$').count();
    if variables > super::MAX_PATTERN_GROUPS {
        return Err(format!(
            "{KEY} has {variables} variables; at most {} are allowed",
            super::MAX_PATTERN_GROUPS
        ));
    }
    super::check_pattern_size(KEY, format)?;
    let mut pattern = String::from("^");
    let mut chars = format.chars().peekable();
    let mut names = std::collections::HashSet::new();
    while let Some(c) = chars.next() {
        if c != '$' {
            pattern.push_str(&regex::escape(&c.to_string()));
            continue;
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if !(c.is_ascii_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() {
            return Err("parser.nginx_log_format: '$' without a variable name".into());
        }
        let group = if names.insert(name.clone()) {
            format!("?P<{name}>")
        } else {
            "?:".to_string()
        };
        match chars.peek() {
            Some(&next) => pattern.push_str(&format!(
                "({group}[^{}]*)",
                regex::escape(&next.to_string())
            )),
            None => pattern.push_str(&format!("({group}.*)")),
        }
    }
    pattern.push('$');
    // The escaped pattern may be a few times the format's length: only the compiled size
    // and the group count are checked again.
    let regex = regex::RegexBuilder::new(&pattern)
        .size_limit(super::MAX_COMPILED_REGEX_BYTES)
        .dfa_size_limit(super::MAX_COMPILED_REGEX_BYTES)
        .build()
        .map_err(|err| format!("{KEY}: {err}"))?;
    Ok(regex)
}

/// An nginx `log_format` compiled to a byte scanner: the same matches and captures as
/// [`nginx_regex`], without a regex engine or a capture table per line (the regex took most of
/// the nginx parser's own CPU).
///
/// The regex is `^lit(?P<a>[^c]*)lit...$`, where `c` is the first character of the literal
/// after a variable. `[^c]*` cannot run past a `c` and the next literal starts with one, so the
/// one possible match takes each variable up to the first `c`; no backtracking can change
/// that. The scanner does just that. Formats where it would not hold — two variables with no
/// literal between them, a non-ASCII character after a variable — get `None` from
/// [`AccessMatcher::new`] and keep the regex.
#[derive(Debug, Clone)]
pub struct AccessMatcher {
    parts: Vec<AccessPart>,
}

#[derive(Debug, Clone)]
enum AccessPart {
    Literal(String),
    /// A variable up to its stop byte; `name` is `None` for a repeated name (the regex's
    /// non-capturing group), and `stop` is `None` for a variable that ends the format (`.*`).
    Variable {
        name: Option<String>,
        stop: Option<u8>,
    },
}

impl AccessMatcher {
    /// `None` when the format needs the regex (see the type's documentation). The format must
    /// already have compiled with [`nginx_regex`], which reports its errors.
    pub fn new(format: &str) -> Option<AccessMatcher> {
        let mut parts = Vec::new();
        let mut names = std::collections::HashSet::new();
        let mut literal = String::new();
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '$' {
                literal.push(c);
                continue;
            }
            if !literal.is_empty() {
                parts.push(AccessPart::Literal(std::mem::take(&mut literal)));
            }
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if !(c.is_ascii_alphanumeric() || c == '_') {
                    break;
                }
                name.push(c);
                chars.next();
            }
            if name.is_empty() {
                return None;
            }
            let stop = match chars.peek() {
                None => None,
                Some('$') => return None,
                Some(&next) if next.is_ascii() => Some(next as u8),
                Some(_) => return None,
            };
            let name = names.insert(name.clone()).then_some(name);
            parts.push(AccessPart::Variable { name, stop });
        }
        if !literal.is_empty() {
            parts.push(AccessPart::Literal(literal));
        }
        Some(AccessMatcher { parts })
    }

    /// The named variables of a matching line, typed as [`typed`] does; `None` when the line
    /// does not match the format.
    pub fn fields(&self, text: &str) -> Option<Map<String, Value>> {
        let bytes = text.as_bytes();
        let mut at = 0;
        let mut out = Map::new();
        for part in &self.parts {
            match part {
                AccessPart::Literal(literal) => {
                    if !bytes[at..].starts_with(literal.as_bytes()) {
                        return None;
                    }
                    at += literal.len();
                }
                AccessPart::Variable { name, stop } => {
                    let end = match stop {
                        Some(stop) => bytes[at..]
                            .iter()
                            .position(|b| b == stop)
                            .map_or(bytes.len(), |i| at + i),
                        // `.*` then `$`: the rest of the line, which `.` only takes without a
                        // newline.
                        None => {
                            if bytes[at..].contains(&b'\n') {
                                return None;
                            }
                            bytes.len()
                        }
                    };
                    if let Some(name) = name {
                        // The stop byte is ASCII, so `end` is on a character boundary.
                        out.insert(name.clone(), typed(&text[at..end]));
                    }
                    at = end;
                }
            }
        }
        (at == bytes.len()).then_some(out)
    }
}

/// `$time_local` as nginx writes it, `15/Jan/2026:10:00:00 +0000`, read without chrono's
/// format interpreter. `None` for anything else, which the caller then gives to chrono with
/// the layout `%d/%b/%Y:%H:%M:%S %z`; whatever this returns, chrono returns too (tested).
pub fn access_time_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 26
        || b[2] != b'/'
        || b[6] != b'/'
        || b[11] != b':'
        || b[14] != b':'
        || b[17] != b':'
        || b[20] != b' '
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let month = MONTHS.iter().position(|m| m[..] == b[3..6])? as u32 + 1;
    let (day, year) = (num(0..2)?, num(7..11)?);
    let (hour, minute, second) = (num(12..14)?, num(15..17)?, num(18..20)?);
    let sign = match b[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (zone_hours, zone_minutes) = (num(22..24)?, num(24..26)?);
    // chrono takes a leap second (:60) and odd zones its own way: leave them to it.
    if second > 59 || zone_hours > 23 || zone_minutes > 59 {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let time = chrono::NaiveTime::from_hms_opt(hour, minute, second)?;
    let offset = sign * (zone_hours * 3600 + zone_minutes * 60) as i64;
    Some((date.and_time(time).and_utc().timestamp() - offset) * 1_000_000)
}
