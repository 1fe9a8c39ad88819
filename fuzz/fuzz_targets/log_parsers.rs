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

/// Selector byte for structured JSON: the rest of the input describes a JSON object (see
/// [`json_of`]) for the json parser. Nesting then grows by repeating one byte, which mutation
/// finds at once, where balanced brackets in free text are rare.
const STRUCTURED_JSON: u8 = 0xFF;

/// A JSON object from bytes: 0 opens eight arrays, 1 an object, 2 closes the innermost
/// container, any other byte is a number; whatever is still open is closed at the end.
fn json_of(bytes: &[u8]) -> String {
    let mut out = String::from("{");
    // (is an object, has items) of each open container, the root object first.
    let mut open: Vec<(bool, bool)> = vec![(true, false)];
    fn start_value(out: &mut String, open: &mut [(bool, bool)]) {
        let top = open.last_mut().expect("the root stays open");
        if top.1 {
            out.push(',');
        }
        top.1 = true;
        if top.0 {
            out.push_str("\"k\":");
        }
    }
    for &byte in bytes {
        match byte {
            0 => {
                for _ in 0..8 {
                    start_value(&mut out, &mut open);
                    out.push('[');
                    open.push((false, false));
                }
            }
            1 => {
                start_value(&mut out, &mut open);
                out.push('{');
                open.push((true, false));
            }
            2 => {
                if open.len() > 1 {
                    let (object, _) = open.pop().expect("checked");
                    out.push(if object { '}' } else { ']' });
                }
            }
            number => {
                start_value(&mut out, &mut open);
                out.push_str(&number.to_string());
            }
        }
    }
    while let Some((object, _)) = open.pop() {
        out.push(if object { '}' } else { ']' });
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, line)) = data.split_first() else {
        return;
    };
    PARSERS.with(|parsers| {
        assert_eq!(parsers.len(), TYPES.len(), "every parser type compiles");
        if selector == STRUCTURED_JSON {
            let json = TYPES.iter().position(|t| *t == ParserType::Json).unwrap();
            check(&parsers[json], json_of(line).as_bytes());
        } else {
            check(&parsers[selector as usize % parsers.len()], line)
        }
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
    // As the queue stores it, and as the indexer reads it back.
    let prepared = [lograft::queue::codec::Prepared::prepare(&record)];
    let stored = lograft::queue::codec::encode_chunk(1, &prepared, &[], false, 0);
    let back = lograft::queue::codec::decode(&stored).expect("a stored record decodes");
    assert_eq!(back.records, [record], "a stored record reads back as it was");
}
