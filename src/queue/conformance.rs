//! The behaviour every [`Queue`] shows, as a suite generic over the trait: CI runs it against
//! sled; the Kafka adapter runs it against a real broker. `open(max_bytes)` reopens the same
//! queue (as after a crash: nothing is closed cleanly first).

use std::time::Duration;

use super::{Queue, QueueBatch};
use crate::record::Record;

fn record(message: &str) -> Record {
    Record::test_line(1, message)
}

/// A record of every shape the codec distinguishes: runners and paths that repeat or change
/// from one record to the next, levels, fields, flags, event times back and forth.
fn varied(step: usize, i: usize, random: u64) -> Record {
    let pick = |shift: u32, n: u64| ((random >> shift) % n) as usize;
    let mut record = Record::test_line(
        1_700_000_000_000_000 + (random % 1_000_000) as i64 - 500_000,
        &format!(
            "m{step}-{i} {}",
            ["GET /", "é 日本", "", "a\nb"][pick(8, 4)]
        ),
    );
    record.runner = ["r", "web", "app"][pick(12, 3)].into();
    record.path = ["", "/var/log/a.log", "/var/log/b.log"][pick(16, 3)].into();
    record.stream = if record.path.is_empty() {
        String::new()
    } else {
        format!("{}/1:{}", record.runner, pick(20, 2))
    };
    record.offset = random >> 24;
    record.level = ["", "error", "warn"][pick(30, 3)].into();
    if pick(34, 3) == 0 {
        record.fields =
            serde_json::json!({"status": pick(36, 600), "user": {"id": format!("u{step}")}});
    }
    record.truncated = pick(40, 7) == 0;
    record.parse_error = pick(44, 5) == 0;
    record
}

fn records_after(queue: &dyn Queue, acked: u64) -> Vec<(u64, Record)> {
    queue
        .read_after(acked, usize::MAX)
        .unwrap()
        .into_iter()
        .flat_map(|b: QueueBatch| {
            let first = b.first_seq;
            b.records
                .into_iter()
                .enumerate()
                .map(move |(i, r)| (first + i as u64, r))
        })
        .collect()
}

pub fn run(open: &mut dyn FnMut(u64) -> Box<dyn Queue>) {
    matches_a_model_through_reopen(open);
    a_deep_record_comes_back(open);
    a_full_queue_has_no_room_until_acked(open);
    runners_and_reset_epochs_survive_a_reopen_and_go_when_forgotten(open);
}

/// What a runner's supervisor needs across restarts: which runners have state here, and the
/// last reset applied to each (a reset issued while the node was down is applied at start).
fn runners_and_reset_epochs_survive_a_reopen_and_go_when_forgotten(
    open: &mut dyn FnMut(u64) -> Box<dyn Queue>,
) {
    let queue = open(1 << 30);
    queue
        .append(
            vec![record("x")],
            vec![("kept/a.log".into(), Some("{}".into()))],
        )
        .unwrap();
    queue.checkpoints().mark_runner_seen("seen-only").unwrap();
    queue.checkpoints().set_reset_epoch("kept", 3).unwrap();
    drop(queue);
    let queue = open(1 << 30);
    let checkpoints = queue.checkpoints();
    let runners = checkpoints.runners().unwrap();
    assert!(runners.contains(&"kept".to_string()), "{runners:?}");
    assert!(runners.contains(&"seen-only".to_string()), "{runners:?}");
    assert_eq!(checkpoints.reset_epoch("kept").unwrap(), 3);
    assert_eq!(checkpoints.reset_epoch("never").unwrap(), 0);
    checkpoints.forget_runner("kept").unwrap();
    checkpoints.forget_runner("seen-only").unwrap();
    assert_eq!(checkpoints.reset_epoch("kept").unwrap(), 0);
    let runners = checkpoints.runners().unwrap();
    assert!(!runners.contains(&"kept".to_string()), "{runners:?}");
    assert!(!runners.contains(&"seen-only".to_string()), "{runners:?}");
}

/// Random appends, acks and reopenings against a `Vec` of what must be there: durable on
/// return, ordered, never reused sequences, checkpoints moved with their records.
fn matches_a_model_through_reopen(open: &mut dyn FnMut(u64) -> Box<dyn Queue>) {
    let mut queue = open(1 << 30);
    let mut acked = queue.stats().acked_seq;
    let mut model: Vec<(u64, Record)> = records_after(queue.as_ref(), acked);
    let mut last_seq = queue.last_seq();
    let mut next_random = crate::testutil::xorshift(0x2545_f491_4f6c_dd1du64);
    let mut last_checkpoint = None;
    for step in 0..300 {
        match next_random() % 10 {
            0..=5 => {
                let n = (next_random() % 5) as usize;
                let records: Vec<Record> = (0..n).map(|i| varied(step, i, next_random())).collect();
                let checkpoint = format!("{{\"step\":{step}}}");
                let (first, last) = queue
                    .append(
                        records.clone(),
                        vec![("r/1".into(), Some(checkpoint.clone()))],
                    )
                    .unwrap();
                assert_eq!(last + 1 - first, n.max(1) as u64);
                assert!(first > last_seq, "sequences are never reused");
                last_seq = last;
                last_checkpoint = Some(checkpoint);
                for (i, r) in records.into_iter().enumerate() {
                    model.push((first + i as u64, r));
                }
            }
            6..=7 => {
                if let Some((seq, _)) = model.get(model.len() / 2) {
                    // Only batch boundaries are acked by the indexer; ack a whole prefix.
                    let batches = queue.read_after(acked, usize::MAX).unwrap();
                    let upto = batches
                        .iter()
                        .map(|b| b.last_seq())
                        .filter(|last| last <= seq)
                        .max();
                    if let Some(upto) = upto {
                        queue.ack(upto).unwrap();
                        acked = upto;
                        model.retain(|(s, _)| *s > upto);
                    }
                }
            }
            _ => {
                drop(queue);
                queue = open(1 << 30);
                assert!(queue.last_seq() >= last_seq, "sequences survive a reopen");
            }
        }
        assert_eq!(records_after(queue.as_ref(), acked), model, "step {step}");
        assert_eq!(queue.stats().depth, model.len() as u64);
        let checkpoints = queue.checkpoints().of_runner("r").unwrap();
        assert_eq!(
            checkpoints.first().map(|(_, c)| c.clone()),
            last_checkpoint,
            "the checkpoint of the last append, step {step}"
        );
    }
}

/// What is accepted always reads back: a record nested far deeper than any codec's limit.
fn a_deep_record_comes_back(open: &mut dyn FnMut(u64) -> Box<dyn Queue>) {
    let queue = open(1 << 30);
    let acked = queue.stats().acked_seq;
    let mut deep = record("deep");
    let text = format!("{}1{}", "[".repeat(126), "]".repeat(126));
    deep.fields =
        serde_json::json!({ "a": serde_json::from_str::<serde_json::Value>(&text).unwrap() });
    let (_, last) = queue.append(vec![deep], Vec::new()).unwrap();
    let batches = queue.read_after(acked, usize::MAX).unwrap();
    let batch = batches
        .iter()
        .find(|b| b.last_seq() == last)
        .expect("read back");
    assert!(batch.damaged.is_none(), "{:?}", batch.damaged);
    assert_eq!(batch.records[0].message, "deep");
    queue.ack(last).unwrap();
}

/// Bounded: over `max_bytes`, no room until the reader acks.
fn a_full_queue_has_no_room_until_acked(open: &mut dyn FnMut(u64) -> Box<dyn Queue>) {
    let queue = open(4096);
    let acked = queue.stats().acked_seq;
    let big: Vec<Record> = (0..20).map(|i| record(&format!("{i:0>400}"))).collect();
    let (_, last) = queue.append(big, Vec::new()).unwrap();
    assert!(!queue.wait_for_room(Duration::from_millis(50)), "full");
    let batches = queue.read_after(acked, usize::MAX).unwrap();
    assert!(batches.iter().any(|b| b.last_seq() == last));
    queue.ack(last).unwrap();
    assert!(
        queue.wait_for_room(Duration::from_secs(5)),
        "room after the ack"
    );
}
