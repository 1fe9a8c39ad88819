//! The query language: any text is a query or a clear refusal, never a crash (a 3000-deep
//! query used to overflow the stack and abort the process; later, deep groups after an
//! unterminated quote, found here). Free text, and a structured mode.
#![no_main]

use libfuzzer_sys::fuzz_target;

thread_local! {
    static BUILDER: lograft::search::QueryBuilder = lograft::search::QueryBuilder::default();
}

/// First byte for structured queries: the rest are tokens (see [`query_of`]), so deep nesting
/// is a few repeated bytes, which mutation finds at once (free text needs a thousand `(` in
/// one input, and no step towards it shows new coverage).
const STRUCTURED: u8 = 0xFF;

fn query_of(tokens: &[u8]) -> String {
    let mut out = String::new();
    for &token in tokens {
        match token {
            0 => out.push_str(&"(".repeat(64)),
            1 => out.push(')'),
            2 => out.push_str(" AND "),
            3 => out.push_str(" OR "),
            4 => out.push_str("NOT "),
            5 => out.push('"'),
            6 => out.push_str("level:"),
            7 => out.push_str("[1 TO 5]"),
            other => out.push((b'a' + other % 26) as char),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if let Some((&STRUCTURED, tokens)) = data.split_first() {
        BUILDER.with(|builder| {
            let _ = builder.parse(&query_of(tokens));
        });
        return;
    }
    if let Ok(text) = std::str::from_utf8(data) {
        BUILDER.with(|builder| {
            let _ = builder.parse(text);
        });
    }
});
