//! Every log parser on any line: the record it makes must be storable and read back from the
//! queue's codec (a 126-deep JSON line used to be accepted and then never decode again).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lograft::collect::config::{ParserConfig, ParserType};
use lograft::collect::parse::{LineContext, Parser};

const TYPES: [ParserType; 8] = [
    ParserType::Raw,
    ParserType::Json,
    ParserType::Logfmt,
    ParserType::Regex,
    ParserType::Nginx,
    ParserType::Apache,
    ParserType::Syslog,
    ParserType::Csv,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, line)) = data.split_first() else {
        return;
    };
    PARSERS.with(|parsers| {
        assert_eq!(parsers.len(), TYPES.len(), "every parser type compiles");
        check(&parsers[selector as usize % parsers.len()], line)
    });
});

thread_local! {
    /// Each parser compiled once (compiling the regex ones per input would be most of the work).
    static PARSERS: Vec<Parser> = TYPES
        .iter()
        .filter_map(|parser_type| {
            Parser::new(&ParserConfig {
                parser_type: *parser_type,
                // The regex parser with named groups, as an operator writes one.
                regex: Some(r"^(?P<ip>\S+) (?P<level>\w+) (?P<msg>.*)$".into()),
                csv_schema: Some("a string, b long, c float".into()),
                ..ParserConfig::default()
            })
            .ok()
        })
        .collect();
}

fn check(parser: &Parser, line: &[u8]) {
    let context = LineContext {
        runner: "fuzz",
        path: "/var/log/fuzz.log",
        offset: 0,
        truncated: false,
        stream: "",
    };
    let mut record = parser.parse(line, &context);
    record.bound_depth();
    // As the queue stores it: inside an object, inside an array, inside an object.
    let stored = format!(
        "{{\"records\":[{}]}}",
        serde_json::to_string(&record).unwrap()
    );
    let back: serde_json::Value = serde_json::from_str(&stored).expect("a stored record decodes");
    assert!(back["records"][0].is_object());
}
