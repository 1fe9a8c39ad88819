//! Parsed fields as the doc store keeps them (`index::stored_fields`): any bytes read back are
//! a value or an error, never a panic; and any fields encoded against any message come back
//! exactly as they went in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lograft::index::stored_fields::{decode, encode};

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input into a message and the rest.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (split as usize).min(rest.len());
    let (message, body) = rest.split_at(at);
    let message = String::from_utf8_lossy(message);
    // Whatever a damaged doc store holds.
    let _ = decode(body, &message);
    // Fields from any JSON, against a message that holds some of their strings.
    let Ok(fields) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let mut line = message.into_owned();
    line.push_str(&String::from_utf8_lossy(body));
    let encoded = encode(&fields, &line);
    assert_eq!(decode(&encoded, &line).unwrap(), fields);
});
