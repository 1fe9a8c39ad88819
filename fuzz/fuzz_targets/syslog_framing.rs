//! Syslog-over-TCP framing: any byte stream, split anywhere, gives the same messages, each at
//! most the cap, and never buffers more than the cap (a stream without newlines used to grow
//! without limit; an octet count over the cap swallowed the messages after it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lograft::collect::framing::Framer;

const MAX: usize = 256;

fn frames(chunks: &[&[u8]]) -> Vec<(Vec<u8>, bool)> {
    let mut framer = Framer::new(MAX);
    let mut out = Vec::new();
    let mut collect = |message: &[u8], cut: bool| {
        assert!(!message.is_empty(), "empty messages are not delivered");
        assert!(message.len() <= MAX, "a message is cut at the cap");
        out.push((message.to_vec(), cut));
    };
    for chunk in chunks {
        framer.push(chunk, &mut collect);
    }
    framer.finish(&mut collect);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let whole = frames(&[stream]);
    // However the stream is cut into reads, the messages are the same.
    let size = (split as usize % 17) + 1;
    let pieces: Vec<&[u8]> = stream.chunks(size).collect();
    assert_eq!(
        frames(&pieces),
        whole,
        "framing depends on how reads split the stream"
    );
    let total: usize = whole.iter().map(|(message, _)| message.len()).sum();
    assert!(total <= stream.len());
});
