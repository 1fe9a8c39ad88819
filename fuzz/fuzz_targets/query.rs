//! The query language: any text is a query or a clear refusal, never a crash (a 3000-deep
//! query used to overflow the stack and abort the process).
#![no_main]

use libfuzzer_sys::fuzz_target;

thread_local! {
    static BUILDER: lograft::search::QueryBuilder = lograft::search::QueryBuilder::default();
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        BUILDER.with(|builder| {
            let _ = builder.parse(text);
        });
    }
});
