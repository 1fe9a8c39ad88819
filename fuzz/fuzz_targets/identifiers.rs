//! Parsed fields from any JSON: moving the identifiers out into the `ids` column and putting
//! them back gives the fields as they came (a hit shows what the line held).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lograft::index::identifiers::{is_identifier, merge, split};

fuzz_target!(|data: &[u8]| {
    let Ok(original) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let mut rest = original.clone();
    let ids = split(&mut rest);
    if !original.is_object() {
        assert!(ids.is_none());
        assert_eq!(rest, original);
        return;
    }
    if let Some(ids) = &ids {
        let mut stack = vec![ids];
        while let Some(value) = stack.pop() {
            match value {
                serde_json::Value::Object(map) => {
                    assert!(!map.is_empty(), "no empty object among the ids");
                    stack.extend(map.values());
                }
                serde_json::Value::String(text) => assert!(is_identifier(text), "{text:?}"),
                other => panic!("{other:?} moved to the ids"),
            }
        }
    }
    if let Some(ids) = ids {
        merge(&mut rest, ids);
    }
    assert_eq!(rest, original);
});
