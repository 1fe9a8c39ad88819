//! Segment merges are bounded and scheduled by the node (issue 22): ingesting a few million
//! lines on a small writer budget (many small segments, so many merges) never runs more than
//! two merges at once, by the node's own counters, and the merged index holds every line
//! exactly once.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::harness::Node;

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn merges_never_run_more_than_two_at_once_and_lose_nothing() {
    let mut node = Node::new(
        "",
        "[index]\nwriter_memory = \"32MiB\"\ncommit_interval = \"100ms\"\n",
    );
    node.start();
    const LINES: usize = 2_000_000;
    let path = node.logs().join("many.log");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..LINES {
            writeln!(
                file,
                "mergeline {i} GET /index.html 200 from 10.0.{}.{}",
                i % 256,
                i / 256 % 256
            )
            .unwrap();
        }
    }
    node.add_runner(&node.runner_json("many", "many.log", "raw"));
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let metrics = node.metrics();
        assert!(
            metric(&metrics, "lograft_index_merges_peak") <= 2.0,
            "more than 2 merges at once:\n{metrics}"
        );
        if node.count("mergeline") == LINES as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {LINES} lines searchable",
            node.count("mergeline")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Merges did run (the bound was tested, not idle), and none ran beyond it.
    let deadline = Instant::now() + Duration::from_secs(120);
    while metric(
        &node.metrics(),
        "lograft_index_merges_total{outcome=\"merged\"",
    ) < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "no merge ran:\n{}",
            node.metrics()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = node.metrics();
    assert!(
        metric(&metrics, "lograft_index_merges_peak") <= 2.0,
        "{metrics}"
    );
    assert_eq!(node.count("mergeline"), LINES as u64);
    assert_eq!(node.count("\"mergeline 1999999\""), 1);
    assert_eq!(node.count("\"mergeline 0\""), 1);
}
