//! The nginx parser's byte scanner against the regex it stands in for: any `log_format` and any
//! line (split at the first 0 byte) get the same fields from both, or no match from both; and
//! `$time_local`'s fast reader never answers differently from chrono.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lograft::collect::parse::{ACCESS_TIME_LAYOUT, named_groups, text};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (format, line) = text.split_once('\0').unwrap_or((text.as_ref(), ""));
    if let Ok(regex) = text::nginx_regex(format)
        && let Some(matcher) = text::AccessMatcher::new(format)
    {
        assert_eq!(
            matcher.fields(line),
            named_groups(&regex, line),
            "format {format:?}, line {line:?}"
        );
    }
    if let Some(micros) = text::access_time_micros(line) {
        let chrono = chrono::DateTime::parse_from_str(line, ACCESS_TIME_LAYOUT)
            .map(|dt| dt.timestamp_micros());
        assert_eq!(Ok(micros), chrono.map_err(|_| ()), "time {line:?}");
    }
});
