//! Event times from untrusted lines (syslog, json): wherever a parser puts a record's time, the
//! retention policy places it between the oldest day kept and the day of now + the grace, so no
//! input opens partitions outside that window (10 k datagrams with distinct future dates used
//! to open one partition each and crash-loop the node).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lograft::collect::config::{ParserConfig, ParserType};
use lograft::collect::parse::{LineContext, Parser};
use lograft::index::day_of;
use lograft::index::{Placement, RetentionPolicy};

const TYPES: [ParserType; 4] = [
    ParserType::Syslog,
    ParserType::Json,
    ParserType::Logfmt,
    ParserType::Nginx,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, line)) = data.split_first() else {
        return;
    };
    PARSERS.with(|parsers| check(&parsers[selector as usize % parsers.len()], line));
});

thread_local! {
    /// Each parser compiled once (compiling the regex ones per input would be most of the work).
    static PARSERS: Vec<Parser> = TYPES
        .iter()
        // (A type that needs settings, as regex needs its pattern, is left out.)
        .filter_map(|parser_type| {
            Parser::new(&ParserConfig {
                parser_type: *parser_type,
                ..ParserConfig::default()
            })
            .ok()
        })
        .collect();
}

fn check(parser: &Parser, line: &[u8]) {
    let context = LineContext {
        runner: "fuzz",
        path: "",
        offset: 0,
        truncated: false,
        stream: "",
    };
    let record = parser.parse(line, &context);
    let policy = RetentionPolicy {
        max_age_days: 30,
        ..RetentionPolicy::default()
    };
    let now = chrono::Utc::now();
    let ingest = now.timestamp_micros();
    let today = now.date_naive();
    match policy.place(record.ts, ingest, today) {
        Placement::Keep { ts, .. } => {
            let newest = day_of(ingest + policy.future_grace.as_micros() as i64);
            let day = day_of(ts);
            assert!(day <= newest, "{day} is after {newest}");
            assert!(
                day >= policy.oldest_day_kept(today).unwrap(),
                "{day} is before the window"
            );
        }
        Placement::TooOld => {}
    }
}
