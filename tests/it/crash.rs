//! kill -9 at random moments while lines are being written, with rotations in between:
//! after the last restart every line is indexed exactly once.
//! Cycles: `LOGRAFT_CRASH_CYCLES` (default 20).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::{Node, Rng, append_lines, assert_exactly_once, numbered};

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let cycles: usize = std::env::var("LOGRAFT_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test: {cycles} cycles, seed {seed}");
    let mut rng = Rng(seed);

    let mut node = Node::new("", "[index]\ncommit_interval = \"300ms\"");
    node.start();
    node.add_runner(&node.runner_json("crash", "app.log*", "raw"));
    let path = node.logs().join("app.log");

    // A writer appends numbered lines continuously, in bursts, across all cycles.
    let written = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (written, stop, path) = (written.clone(), stop.clone(), path.clone());
        std::thread::spawn(move || {
            let mut rng = Rng(seed ^ 0x9E37_79B9_7F4A_7C15);
            let mut rotations = 0;
            while !stop.load(Ordering::Acquire) {
                let start = written.load(Ordering::Acquire);
                let burst = 1 + rng.below(200) as usize;
                append_lines(&path, numbered("crashtest", start..start + burst));
                written.store(start + burst, Ordering::Release);
                // Now and then rotate by rename (the glob still matches app.log.N).
                if rng.below(40) == 0 {
                    rotations += 1;
                    std::fs::rename(&path, path.with_extension(format!("log.{rotations}")))
                        .unwrap();
                }
                std::thread::sleep(Duration::from_millis(rng.below(20)));
            }
        })
    };

    for cycle in 0..cycles {
        std::thread::sleep(Duration::from_millis(100 + rng.below(1500)));
        node.kill();
        eprintln!(
            "cycle {cycle}: killed with {} lines written",
            written.load(Ordering::Acquire)
        );
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        node.start();
    }
    stop.store(true, Ordering::Release);
    writer.join().unwrap();
    let total = written.load(Ordering::Acquire);
    node.wait_for_count("crashtest", total as u64);
    // Let any straggler (a duplicate would arrive late) get indexed before counting.
    std::thread::sleep(Duration::from_secs(2));
    assert_exactly_once(
        &node.search_all("crashtest"),
        &numbered("crashtest", 0..total),
    );
    assert_eq!(node.count("crashtest"), total as u64);
}
