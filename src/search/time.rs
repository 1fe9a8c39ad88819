//! Time arguments: RFC 3339 (`2026-01-15T10:00:00Z`), a date (`2026-01-15`), `now`,
//! relative times (`-15m`, `now-1d`, `now-2h`), and epoch seconds or milliseconds.

use chrono::{DateTime, NaiveDate, Utc};

const UNITS: [(&str, i64); 6] = [
    ("ms", 1_000),
    ("s", 1_000_000),
    ("m", 60_000_000),
    ("h", 3_600_000_000),
    ("d", 86_400_000_000),
    ("w", 604_800_000_000),
];

/// A duration like `15m` in micros.
fn parse_span(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let number: i64 = digits.parse().ok()?;
    let (_, micros) = UNITS.iter().find(|(name, _)| *name == unit)?;
    number.checked_mul(*micros)
}

pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<i64, String> {
    let text = text.trim();
    let now_micros = now.timestamp_micros();
    if text == "now" {
        return Ok(now_micros);
    }
    let relative = text.strip_prefix("now").unwrap_or(text);
    if let Some(span) = relative.strip_prefix('-') {
        return parse_span(span)
            .map(|span| now_micros - span)
            .ok_or_else(|| {
                format!("{text:?}: expected a relative time like -15m, now-1h, now-7d")
            });
    }
    if let Some(span) = relative.strip_prefix('+') {
        return parse_span(span)
            .map(|span| now_micros + span)
            .ok_or_else(|| format!("{text:?}: expected a relative time like now+1h"));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Ok(dt.timestamp_micros());
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp_micros());
    }
    if let Ok(number) = text.parse::<i64>() {
        // Epoch seconds or milliseconds, told apart by magnitude.
        return Ok(if number.abs() < 100_000_000_000 {
            number * 1_000_000
        } else {
            number * 1_000
        });
    }
    Err("expected RFC 3339 (2026-01-15T10:00:00Z), a date, now, a relative time (-15m, now-1d) or epoch seconds".into())
}

/// An interval like `30s`, `5m`, `1h`, `1d` in micros.
pub fn parse_interval(text: &str) -> Result<i64, String> {
    match parse_span(text.trim()) {
        Some(micros) if micros >= 1_000 => Ok(micros),
        Some(_) => Err("must be at least 1ms".into()),
        None => Err("expected an interval like 30s, 5m, 1h or 1d".into()),
    }
}

pub fn format_interval(micros: i64) -> String {
    for (name, size) in UNITS.iter().rev() {
        if micros % size == 0 {
            return format!("{}{name}", micros / size);
        }
    }
    format!("{}us", micros)
}

/// The smallest round interval that gives at most ~120 buckets over `span` micros.
pub fn auto_interval(span: i64) -> i64 {
    const STEPS: [i64; 17] = [
        1,
        5,
        10,
        30,
        60,
        300,
        600,
        1_800,
        3_600,
        3 * 3_600,
        6 * 3_600,
        12 * 3_600,
        86_400,
        7 * 86_400,
        30 * 86_400,
        90 * 86_400,
        365 * 86_400,
    ];
    STEPS
        .iter()
        .map(|seconds| seconds * 1_000_000)
        .find(|interval| span / interval <= 120)
        .unwrap_or(365 * 86_400 * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_and_relative_times() {
        let now = DateTime::parse_from_rfc3339("2026-01-15T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let noon = now.timestamp_micros();
        assert_eq!(parse_time("now", now).unwrap(), noon);
        assert_eq!(parse_time("-15m", now).unwrap(), noon - 900_000_000);
        assert_eq!(parse_time("now-1d", now).unwrap(), noon - 86_400_000_000);
        assert_eq!(
            parse_time("2026-01-15T11:00:00Z", now).unwrap(),
            noon - 3_600_000_000
        );
        assert_eq!(
            parse_time("2026-01-15", now).unwrap(),
            noon - 12 * 3_600_000_000
        );
        assert_eq!(parse_time("1768478400", now).unwrap(), noon);
        assert!(
            parse_time("yesterday", now)
                .unwrap_err()
                .contains("RFC 3339")
        );
        assert!(parse_time("-15 minutes", now).is_err());
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5m").unwrap(), 300_000_000);
        assert_eq!(format_interval(3_600_000_000), "1h");
        assert_eq!(auto_interval(86_400_000_000), 900_000_000 * 2); // 30m for a day
        assert!(parse_interval("fast").is_err());
    }
}
