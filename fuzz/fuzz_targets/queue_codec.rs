//! Stored queue entries, as a damaged disk may leave them: any bytes decode to a batch or an
//! error, never a panic or an unbounded allocation; a batch that decodes encodes again to a
//! value that decodes to the same batch (nothing read from the queue is changed by being
//! written again).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lograft::queue::codec::{self, Prepared};

fuzz_target!(|data: &[u8]| {
    // Binary bodies are what queues hold: give most inputs a valid binary header (either
    // format of `fields`).
    let mut value = Vec::with_capacity(data.len() + 8);
    if data.first().is_some_and(|b| b & 1 == 1) {
        let count = data.get(1).copied().unwrap_or(0) as u32 % 8;
        value.extend_from_slice(&count.to_be_bytes());
        let format = if data.first().is_some_and(|b| b & 2 == 2) {
            codec::FORMAT_RANGES
        } else {
            codec::FORMAT_BINARY
        };
        value.extend_from_slice(&[format, 0, 0, 0]);
        value.extend_from_slice(data.get(2..).unwrap_or_default());
    } else {
        value.extend_from_slice(data);
    }
    let Ok(batch) = codec::decode(&value) else {
        return;
    };
    let prepared: Vec<Prepared<'_>> = batch.records.iter().map(Prepared::prepare).collect();
    let again = codec::encode_chunk(
        batch.first_seq,
        &prepared,
        &batch.checkpoints,
        batch.more,
        batch.appended_at,
    );
    let back = codec::decode(&again).expect("an encoded batch decodes");
    assert_eq!(back.first_seq, batch.first_seq);
    assert_eq!(back.more, batch.more);
    assert_eq!(back.appended_at, batch.appended_at);
    assert_eq!(back.records, batch.records);
    assert_eq!(back.checkpoints, batch.checkpoints);
});
