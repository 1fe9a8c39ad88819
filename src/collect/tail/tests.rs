use super::*;
use std::io::Write;
use std::thread::sleep;

const IDLE: Duration = Duration::from_millis(400);

fn fast() -> TailOptions {
    TailOptions {
        partial_line_timeout: Duration::from_millis(300),
        ..TailOptions::default()
    }
}
fn allow() -> PathFilter {
    Box::new(|_, _| Ok(()))
}
fn tailer(
    pat: &Path,
    opts: TailOptions,
    cps: Vec<(String, FileCheckpoint)>,
    first_run: bool,
) -> Tailer {
    Tailer::new(pat.to_str().unwrap(), opts, cps, first_run, allow()).unwrap()
}
fn append(p: &Path, s: &str) {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap()
        .write_all(s.as_bytes())
        .unwrap();
}
fn text(b: &Batch) -> Vec<String> {
    b.lines
        .iter()
        .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
        .collect()
}
/// Polls until a poll yields nothing; returns all line texts.
fn drain(t: &mut Tailer) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let b = t.poll(1000, 1 << 20);
        if b.lines.is_empty() {
            return out;
        }
        out.extend(text(&b));
    }
}
fn v(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}
fn key_of(p: &Path) -> String {
    let m = fs::metadata(p).unwrap();
    stream_key(m.dev(), m.ino())
}

#[test]
fn append_and_offsets() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.log");
    append(&p, "one\n\ntwo\r\n");
    let mut t = tailer(&d.path().join("*.log"), fast(), vec![], false);
    let ev = t.scan();
    assert!(
        matches!(&ev[..], [TailEvent::Opened { offset: 0, .. }]),
        "{ev:?}"
    );
    let b = t.poll(100, 1 << 20);
    assert_eq!(text(&b), v(&["one", "two"]));
    assert_eq!((b.lines[0].offset, b.lines[1].offset), (0, 5));
    assert_eq!(b.checkpoints[0].1.offset, 10);
    assert_eq!(b.bytes_read, 10);
    append(&p, "three\n");
    let b = t.poll(100, 1 << 20);
    assert_eq!(text(&b), v(&["three"]));
    assert_eq!(b.lines[0].offset, 10);
    assert_eq!(t.status()[0].state, "active");
    assert_eq!(t.watch_root(), d.path());
}

#[test]
fn partial_line_held_completed_and_flushed() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.log");
    append(&p, "abc\npart");
    let mut t = tailer(&p, fast(), vec![], false);
    t.scan();
    let b = t.poll(100, 1 << 20);
    assert_eq!(text(&b), v(&["abc"]));
    assert_eq!(b.checkpoints[0].1.offset, 4); // partial line not counted
    append(&p, "ial\nlast");
    let b = t.poll(100, 1 << 20);
    assert_eq!(text(&b), v(&["partial"]));
    assert_eq!(b.lines[0].offset, 4);
    assert!(t.poll(100, 1 << 20).lines.is_empty());
    sleep(IDLE);
    let b = t.poll(100, 1 << 20);
    assert_eq!(text(&b), v(&["last"]));
    assert_eq!(b.checkpoints[0].1.offset, 16);
    append(&p, "more\n");
    assert_eq!(drain(&mut t), v(&["more"]));
}

#[test]
fn rename_rotation_drains_old_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("app.log");
    let mut w = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .unwrap();
    w.write_all(b"1\n2\n").unwrap();
    let mut t = tailer(&p, fast(), vec![], false);
    t.scan();
    assert_eq!(drain(&mut t), v(&["1", "2"]));
    let old_key = key_of(&p);
    fs::rename(&p, d.path().join("app.log.1")).unwrap();
    w.write_all(b"3\n").unwrap(); // written to the old file after the rename
    append(&p, "a\n");
    let ev = t.scan();
    assert!(
        ev.contains(&TailEvent::Rotated {
            old_path: p.clone(),
            key: old_key.clone()
        }),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|e| matches!(e, TailEvent::Opened { offset: 0, .. }))
    );
    let mut got = drain(&mut t);
    w.write_all(b"4\n").unwrap();
    append(&p, "b\n");
    got.extend(drain(&mut t));
    got.sort();
    assert_eq!(got, v(&["3", "4", "a", "b"]));
    assert!(t.status().iter().any(|s| s.state == "draining"));
    sleep(IDLE);
    let b = t.poll(100, 1 << 20);
    assert_eq!(b.forget, vec![old_key.clone()]);
    assert!(b.checkpoints.iter().all(|(k, _)| *k != old_key));
    assert_eq!(
        t.take_events(),
        vec![TailEvent::Closed {
            path: p.clone(),
            key: old_key
        }]
    );
    assert_eq!(t.status().len(), 1);
}

#[test]
fn rotation_within_glob_is_rename() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.log");
    append(&a, "1\n2\n");
    let mut t = tailer(&d.path().join("*.log"), fast(), vec![], false);
    t.scan();
    assert_eq!(drain(&mut t), v(&["1", "2"]));
    let key = key_of(&a);
    let b2 = d.path().join("b.log");
    fs::rename(&a, &b2).unwrap();
    append(&b2, "3\n");
    append(&a, "new\n");
    let ev = t.scan();
    assert!(
        ev.contains(&TailEvent::Renamed {
            from: a.clone(),
            to: b2.clone(),
            key: key.clone()
        }),
        "{ev:?}"
    );
    let mut got = drain(&mut t);
    got.sort();
    assert_eq!(got, v(&["3", "new"]));
    sleep(IDLE);
    let b = t.poll(100, 1 << 20);
    assert!(b.forget.is_empty() && b.lines.is_empty());
    assert!(t.status().iter().all(|s| s.state == "active"));
}

#[test]
fn copytruncate() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("app.log");
    append(&p, "old line 1\nold line 2\n");
    let mut t = tailer(&p, fast(), vec![], false);
    t.scan();
    assert_eq!(drain(&mut t), v(&["old line 1", "old line 2"]));
    fs::copy(&p, d.path().join("app.log.1")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&p, "n1\nn2\n");
    let ev = t.scan();
    assert!(
        matches!(&ev[..], [TailEvent::Truncated { old_offset: 22, .. }]),
        "{ev:?}"
    );
    assert_eq!(drain(&mut t), v(&["n1", "n2"]));
    // Truncation noticed by poll alone (no scan).
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&p, "x\n");
    assert_eq!(drain(&mut t), v(&["x"]));
    assert!(matches!(
        &t.take_events()[..],
        [TailEvent::Truncated { old_offset: 6, .. }]
    ));
}

#[test]
fn truncate_and_refill_past_offset_detected_by_fingerprint() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("app.log");
    append(&p, "aaaa\n");
    let mut t = tailer(&p, fast(), vec![], false);
    t.scan();
    assert_eq!(drain(&mut t), v(&["aaaa"]));
    fs::write(&p, "bbbbbbbbbb\ncc\n").unwrap(); // truncate + refill past offset 5
    let ev = t.scan();
    assert!(
        matches!(&ev[..], [TailEvent::Truncated { old_offset: 5, .. }]),
        "{ev:?}"
    );
    assert_eq!(drain(&mut t), v(&["bbbbbbbbbb", "cc"]));
    // Same without a scan: caught while extending the young file's fingerprint.
    fs::write(&p, "dddddddddddddddd\nee\n").unwrap();
    assert_eq!(drain(&mut t), v(&["dddddddddddddddd", "ee"]));
}

#[test]
fn deletion_drained_then_closed() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("app.log");
    let mut w = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .unwrap();
    w.write_all(b"1\n").unwrap();
    let mut t = tailer(&d.path().join("*.log"), fast(), vec![], false);
    t.scan();
    assert_eq!(drain(&mut t), v(&["1"]));
    let key = key_of(&p);
    fs::remove_file(&p).unwrap();
    w.write_all(b"2\n3").unwrap();
    assert_eq!(
        t.scan(),
        vec![TailEvent::Deleted {
            path: p.clone(),
            key: key.clone()
        }]
    );
    assert_eq!(drain(&mut t), v(&["2"]));
    sleep(IDLE);
    let b = t.poll(100, 1 << 20);
    assert_eq!(text(&b), v(&["3"])); // partial line flushed before closing
    assert_eq!(b.forget, vec![key]);
    assert!(t.status().is_empty());
}

#[test]
fn inode_reuse_reads_from_zero() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("new.log");
    append(&p, "fresh\n");
    let m = fs::metadata(&p).unwrap();
    let key = stream_key(m.dev(), m.ino());
    let cp = FileCheckpoint {
        path: d.path().join("old.log"),
        dev: m.dev(),
        ino: m.ino(),
        fingerprint: xxh3_64(b"other c"),
        fingerprint_len: 7,
        offset: 3,
        skipping_oversized: false,
    };
    let mut t = tailer(
        &d.path().join("*.log"),
        fast(),
        vec![(key.clone(), cp)],
        false,
    );
    let ev = t.scan();
    assert!(
        ev.contains(&TailEvent::Replaced {
            path: p.clone(),
            key: key.clone()
        }),
        "{ev:?}"
    );
    let b = t.poll(100, 1 << 20);
    assert_eq!(text(&b), v(&["fresh"]));
    assert_eq!(b.checkpoints[0].1.fingerprint, xxh3_64(b"fresh\n"));
}

#[test]
fn file_appearing_later_and_missing_root() {
    let d = tempfile::tempdir().unwrap();
    let sub = d.path().join("sub");
    let mut t = tailer(
        &sub.join("*.log"),
        TailOptions {
            read_from: ReadFrom::Newest,
            ..fast()
        },
        vec![],
        true,
    );
    assert!(t.scan().is_empty());
    assert_eq!(t.watch_root(), sub);
    fs::create_dir(&sub).unwrap();
    append(&sub.join("x.log"), "hello\n");
    append(&sub.join("x.txt"), "no\n");
    let ev = t.scan();
    assert!(
        matches!(&ev[..], [TailEvent::Opened { offset: 0, .. }]),
        "{ev:?}"
    );
    assert_eq!(drain(&mut t), v(&["hello"]));
}

#[test]
fn oversized_lines_and_restart_while_skipping() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.log");
    let long = "x".repeat(10_000);
    append(&p, &format!("{long}\nshort\n{long}\r\nok\n"));
    let opts = TailOptions {
        max_line_bytes: 100,
        read_buffer_bytes: 256,
        ..fast()
    };
    let mut t = tailer(&p, opts.clone(), vec![], false);
    t.scan();
    let b = t.poll(1, 300); // stops in the middle of skipping the first long line
    assert_eq!(b.lines.len(), 1);
    assert!(b.lines[0].truncated && b.lines[0].bytes.len() == 100);
    assert_eq!(b.truncated_lines, 1);
    let cp = b.checkpoints.clone();
    assert!(
        cp[0].1.skipping_oversized && cp[0].1.offset == 256,
        "{cp:?}"
    );
    assert!(
        t.streams
            .values()
            .all(|s| s.pending.capacity() <= 100 + 2 + 256)
    );
    // Restart mid-skip: the rest of the long line is discarded, not emitted.
    let mut t = tailer(&p, opts, cp, false);
    t.scan();
    let mut lines = Vec::new();
    loop {
        let b = t.poll(1000, 1 << 20);
        if b.lines.is_empty() {
            break;
        }
        lines.extend(b.lines);
    }
    let got: Vec<_> = lines
        .iter()
        .map(|l| {
            (
                String::from_utf8_lossy(&l.bytes).len(),
                l.truncated,
                l.offset,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(5, false, 10_001), (100, true, 10_007), (2, false, 20_009)]
    );
}

/// Restarting after every batch (new Tailer from the merged checkpoints) must yield
/// exactly the file's lines, with correct offsets, whatever the batch boundaries.
#[test]
fn utf16_newlines_at_even_offsets_even_across_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u16.log");
    // "Ċ" is U+010A: its little-endian low byte is 0x0A, which is not a newline.
    let text = "\u{feff}first Ċ line\r\nsecond 行\nthird";
    let mut bytes = Vec::new();
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    std::fs::write(&path, &bytes).unwrap();
    for buffer in [3, 7, 64] {
        let opts = TailOptions {
            newline: Newline::Utf16Le,
            read_buffer_bytes: buffer,
            ..fast()
        };
        let mut t = tailer(&path, opts, vec![], true);
        t.scan();
        let batch = t.poll(100, 1 << 20);
        let lines: Vec<String> = batch
            .lines
            .iter()
            .map(|l| {
                let units: Vec<u16> = l
                    .bytes
                    .chunks(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16(&units).unwrap()
            })
            .collect();
        assert_eq!(
            lines,
            ["\u{feff}first Ċ line\r", "second 行"],
            "buffer {buffer}"
        );
        let before_second = text.split("second").next().unwrap().encode_utf16().count() as u64 * 2;
        assert_eq!(batch.lines[1].offset, before_second, "buffer {buffer}");
    }
}

#[test]
fn restart_after_every_batch_is_exact() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.log");
    let mut content = String::new();
    for i in 0..120 {
        match i % 7 {
            0 => content.push('\n'),
            1 => content.push_str(&format!("crlf {i}\r\n")),
            _ => content.push_str(&format!("line {i} {}\n", "y".repeat(i % 23))),
        }
    }
    let (first, second) = content.split_at(content.len() / 2 + 3); // split mid-line
    let expected: Vec<String> = content
        .split('\n')
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !l.is_empty())
        .collect();
    for (max_lines, max_bytes, rbuf) in [(3, 1 << 20, 7), (1, 10, 64), (5, 33, 1)] {
        fs::write(&p, first).unwrap();
        let opts = TailOptions {
            read_buffer_bytes: rbuf,
            partial_line_timeout: Duration::from_secs(3600),
            ..fast()
        };
        let mut cps: HashMap<String, FileCheckpoint> = HashMap::new();
        let mut got = Vec::new();
        let mut appended = false;
        for _ in 0..10_000 {
            let mut t = tailer(&p, opts.clone(), cps.clone().into_iter().collect(), false);
            t.scan();
            let b = t.poll(max_lines, max_bytes);
            for l in &b.lines {
                let at = l.offset as usize;
                assert!(content.as_bytes()[at..].starts_with(&l.bytes));
                got.push(String::from_utf8(l.bytes.clone()).unwrap());
            }
            let idle = b.lines.is_empty() && b.checkpoints.is_empty();
            cps.extend(b.checkpoints);
            if idle && appended {
                break;
            }
            if idle {
                append(&p, second);
                appended = true;
            }
        }
        assert_eq!(
            got, expected,
            "max_lines={max_lines} max_bytes={max_bytes} rbuf={rbuf}"
        );
    }
}

#[test]
fn read_from_newest_only_on_first_run() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.log");
    append(&p, "old\n");
    let newest = TailOptions {
        read_from: ReadFrom::Newest,
        ..fast()
    };
    let mut t = tailer(&p, newest.clone(), vec![], true);
    assert!(matches!(
        &t.scan()[..],
        [TailEvent::Opened { offset: 4, .. }]
    ));
    append(&p, "new\n");
    let b = t.poll(100, 1 << 20);
    assert_eq!(text(&b), v(&["new"]));
    let mut t = tailer(&p, newest, vec![], false);
    t.scan();
    assert_eq!(drain(&mut t), v(&["old", "new"]));
    assert_eq!(
        serde_json::to_string(&ReadFrom::Newest).unwrap(),
        "\"newest\""
    );
}

#[test]
fn filter_refusal_reported_once() {
    let d = tempfile::tempdir().unwrap();
    append(&d.path().join("secret.log"), "s\n");
    append(&d.path().join("ok.log"), "o\n");
    let filter: PathFilter = Box::new(|p, _| {
        if p.to_string_lossy().contains("secret") {
            Err("denied".into())
        } else {
            Ok(())
        }
    });
    let pat = d.path().join("*.log");
    let mut t = Tailer::new(pat.to_str().unwrap(), fast(), vec![], false, filter).unwrap();
    let ev = t.scan();
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, TailEvent::Refused { reason, .. } if reason == "denied"))
            .count(),
        1
    );
    assert!(t.scan().is_empty());
    assert_eq!(drain(&mut t), v(&["o"]));
}

#[test]
fn recursive_glob() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("a/b")).unwrap();
    append(&d.path().join("top.log"), "top\n");
    append(&d.path().join("a/b/deep.log"), "deep\n");
    append(&d.path().join("a/skip.txt"), "no\n");
    let mut t = tailer(&d.path().join("**/*.log"), fast(), vec![], false);
    assert!(t.watch_recursive());
    assert_eq!(t.scan().len(), 2);
    let mut got = drain(&mut t);
    got.sort();
    assert_eq!(got, v(&["deep", "top"]));
    // `*` does not cross `/`.
    let mut t = tailer(&d.path().join("*.log"), fast(), vec![], false);
    assert_eq!(t.scan().len(), 1);
    assert_eq!(t.watch_root(), d.path());
    // One level: the root's own events suffice (no recursive watch into unreadable dirs).
    assert!(!t.watch_recursive());
    assert!(tailer(&d.path().join("*/x.log"), fast(), vec![], false).watch_recursive());
    assert!(matches!(
        Tailer::new("rel/*.log", fast(), vec![], false, allow()),
        Err(TailError::NotAbsolute(_))
    ));
    assert!(matches!(
        Tailer::new("/x/[.log", fast(), vec![], false, allow()),
        Err(TailError::Pattern { .. })
    ));
}

#[test]
fn restart_resumes_and_reports_lost() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("app.log");
    append(&p, "1\n2\n");
    let gone = d.path().join("gone.log");
    append(&gone, "g\n");
    let mut t = tailer(&d.path().join("*.log"), fast(), vec![], false);
    t.scan();
    let b = t.poll(100, 1 << 20);
    assert_eq!(b.lines.len(), 3);
    let cps = b.checkpoints;
    let gone_key = key_of(&gone);
    drop(t);
    // While down: gone.log deleted, app.log rotated out of the glob with one more line.
    append(&p, "3\n");
    fs::rename(&p, d.path().join("app.log.1")).unwrap();
    append(&p, "new\n");
    fs::remove_file(&gone).unwrap(); // after creating app.log, so its inode is not reused
    let mut t = tailer(&d.path().join("*.log"), fast(), cps, false);
    let ev = t.scan();
    assert!(
        ev.contains(&TailEvent::Lost {
            path: gone.clone(),
            key: gone_key.clone(),
            offset: 2
        }),
        "{ev:?}"
    );
    assert!(
        ev.iter().any(|e| matches!(e, TailEvent::Rotated { .. })),
        "{ev:?}"
    );
    let b = t.poll(100, 1 << 20);
    assert_eq!(b.forget, vec![gone_key]);
    let mut got = text(&b);
    got.sort();
    assert_eq!(got, v(&["3", "new"]));
}
