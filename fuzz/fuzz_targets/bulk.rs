//! An Elasticsearch `_bulk` body: split into lines (cut at the line cap) and read as actions and
//! documents; each document goes through the json parser. Any body is items or a refusal with
//! a reason, never a crash, and every record made from it reads back from the queue's codec.
#![no_main]

use std::ops::ControlFlow;

use libfuzzer_sys::fuzz_target;
use lograft::collect::bulk::{BulkLine, BulkReader, LineSplitter};
use lograft::collect::config::{ParserConfig, ParserType};
use lograft::collect::parse::{LineContext, Parser};

const MAX_LINE: usize = 1024;

thread_local! {
    static PARSER: Parser = Parser::new(&ParserConfig {
        parser_type: ParserType::Json,
        ..ParserConfig::default()
    })
    .unwrap();
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, body)) = data.split_first() else {
        return;
    };
    let size = (split as usize % 64) + 1;
    let mut splitter = LineSplitter::new(MAX_LINE);
    let mut reader = BulkReader::default();
    let mut refused = false;
    for piece in body.chunks(size) {
        let flow = splitter.push(piece, &mut |line, truncated| {
            assert!(line.len() <= MAX_LINE);
            match reader.line(line, truncated) {
                Ok(BulkLine::Document { line, truncated }) => PARSER.with(|parser| {
                    let context = LineContext {
                        runner: "fuzz",
                        path: "",
                        offset: 0,
                        truncated,
                        stream: "",
                    };
                    let mut record = parser.parse(line, &context);
                    record.bound_depth();
                    let stored = serde_json::to_string(&record).unwrap();
                    let back: serde_json::Value =
                        serde_json::from_str(&format!("{{\"records\":[{stored}]}}"))
                            .expect("a stored record decodes");
                    assert!(back["records"][0].is_object());
                }),
                Ok(_) => {}
                Err(error) => {
                    assert!(!error.reason.is_empty(), "a refusal says why");
                    refused = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        if flow.is_break() {
            break;
        }
    }
    if !refused {
        let (rest, _) = splitter.finish();
        if let Err(error) = reader.finish(&rest) {
            assert!(!error.reason.is_empty());
        }
    }
});
