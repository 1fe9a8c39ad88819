#!/usr/bin/env python3
"""End-to-end benchmark of a lograft node, with tantivy-cli as the baseline.

Measures, on the shared deterministic workload (../shared/bench/gen_logs.py):

  * ingest: wall time from runner creation until every line is searchable, lines/s,
    CPU-seconds of the lograft process per million lines, peak RSS (VmHWM), and
    bytes of data_dir/index per byte of input -- for nginx alone, app alone and both
    together (one fresh node per phase);
  * written->searchable latency of single lines appended to a followed file (p50/p99);
  * query latency (took_ms reported by the node and wall ms of the HTTP call) for the
    standard queries, with the hit counts checked against the generator's manifest;
  * the same documents indexed by tantivy-cli (`tantivy index`), and our figures as
    ratios to it (CPU per line, index size).

Python 3.11 standard library only. It measures, it asserts nothing: mismatches are
printed and recorded, never fatal. See benches/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
MiB = 1024 * 1024

RANGE_FROM = "2026-01-15T10:00:00Z"
RANGE_TO = "2026-01-15T11:00:00Z"
NEEDLE_IP = "203.0.113.77"
NEEDLE_PATH = "/api/v2/admin/export"
RARE_EXC = "OutOfMemoryError"
PHRASE = "connection reset by peer"


class BenchError(Exception):
    """A wait that timed out or a step that failed: the message says which and why."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- helpers

# Admin API token of the node under test (created offline before it starts).
API_TOKEN = ""


def http(method: str, url: str, body: dict | None = None, timeout: float = 60.0):
    """Returns (status, parsed JSON or text, wall seconds)."""
    data = None
    headers = {"authorization": f"Bearer {API_TOKEN}"} if API_TOKEN else {}
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        raw = err.read()
        status = err.code
    wall = time.perf_counter() - t0
    try:
        return status, json.loads(raw), wall
    except ValueError:
        return status, raw.decode(errors="replace"), wall


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass  # a segment file removed by a merge while we walk
    return total


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    # after "pid (comm) ": state=0 ... utime=11 stime=12 (fields 14 and 15 of the man page)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def md_table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


# ----------------------------------------------------------------------------- workload

def ensure_workload(args) -> tuple[Path, dict, dict]:
    """Generate (or reuse) the workload; returns (dir, manifest, extra ground truth)."""
    key = f"n{args.nginx}-a{args.app}-s{args.seed}"
    out = Path(args.workdir) / "data" / key
    manifest_path = out / "manifest.json"
    if not (manifest_path.exists() and (out / "nginx.docs.jsonl").exists()):
        gen = Path(args.gen)
        if not gen.exists():
            raise BenchError(f"generator not found at {gen} (use --gen PATH)")
        tmp = out.with_name(key + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"generating workload {key} into {out} (cached for reruns)")
        t0 = time.time()
        subprocess.run([sys.executable, str(gen), str(tmp), "--nginx", str(args.nginx),
                        "--app", str(args.app), "--seed", str(args.seed), "--docs"],
                       check=True, stdout=subprocess.DEVNULL)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
        log(f"generated in {time.time() - t0:.0f} s")
    else:
        log(f"reusing cached workload {out}")
    manifest = json.loads(manifest_path.read_text())
    extra = ensure_extra_truth(out)
    return out, manifest, extra


def ensure_extra_truth(out: Path) -> dict:
    """Counts the manifest lacks (the common-term query), computed once and cached.

    nginx: the method is the only place the token GET can occur (paths, agents and
    referers have no "get"), so lines with '"GET ' are exactly the matches.
    app: the message (the only field searched by default) has GET only as method=GET.
    Also the `level:error AND fields.service:payments` 1-hour count, the per-host counts
    of the top-hosts query, and a trace id (the middle line's) with its count, from app.jsonl.
    """
    path = out / "extra_truth_v4.json"
    if path.exists():
        return json.loads(path.read_text())
    extra = {"nginx GET": 0, "app GET": 0}
    # app: level ERROR and service payments in [10:00, 11:00Z); host counts in [01-15, 01-16).
    lo, hi = RANGE_FROM.replace("Z", ""), RANGE_TO.replace("Z", "")
    dlo, dhi = DAY_FROM.replace("Z", ""), DAY_TO.replace("Z", "")
    err_pay, hosts = 0, {}
    app_lines = sum(1 for _ in open(out / "app.jsonl", "rb", buffering=1 << 20))
    trace = None
    with open(out / "app.jsonl", "rb", buffering=1 << 20) as f:
        for number, line in enumerate(f):
            rec = json.loads(line)
            if number == app_lines // 2:
                trace = rec.get("trace_id")
            ts = rec["ts"].replace("Z", "")
            if lo <= ts < hi and rec["level"] == "ERROR" and rec.get("service") == SERVICE:
                err_pay += 1
            if dlo <= ts < dhi and "host" in rec:
                hosts[rec["host"]] = hosts.get(rec["host"], 0) + 1
    with open(out / "app.jsonl", "rb", buffering=1 << 20) as f:
        # A trace id appears only as the value of trace_id.
        extra["app trace id"] = [trace, sum(1 for line in f if trace and f'"{trace}"'.encode() in line)]
    extra["app error payments 1h"] = err_pay
    extra["app top hosts 24h"] = sorted(([h, c] for h, c in hosts.items()), key=lambda x: (-x[1], x[0]))
    with open(out / "nginx.log", "rb", buffering=1 << 20) as f:
        extra["nginx GET"] = sum(1 for line in f if b'"GET ' in line)
    with open(out / "app.jsonl", "rb", buffering=1 << 20) as f:
        extra["app GET"] = sum(1 for line in f if b"method=GET" in line)
    path.write_text(json.dumps(extra, indent=2))
    return extra


def ensure_app_docs(data: Path) -> Path:
    """app.jsonl as tantivy-cli documents: ts, level (lowercased, as lograft stores it),
    message, and the remaining keys under a json field, as lograft's `fields`."""
    out = data / "app.docs.jsonl"
    if out.exists():
        return out
    tmp = data / "app.docs.jsonl.tmp"
    with open(data / "app.jsonl") as src, open(tmp, "w", buffering=1 << 20) as dst:
        for line in src:
            rec = json.loads(line)
            doc = {"ts": rec.pop("ts"), "level": rec.pop("level").lower(), "message": rec.pop("msg"),
                   "fields": rec}
            dst.write(json.dumps(doc, separators=(",", ":")) + "\n")
    tmp.rename(out)
    return out


# ----------------------------------------------------------------------------- build / tools

def start_tantivy_install(args) -> subprocess.Popen | None:
    if args.skip_tantivy or tantivy_bin(args).exists():
        return None
    root = Path(args.workdir) / "tools"
    root.mkdir(parents=True, exist_ok=True)
    logf = open(root / "install.log", "w")
    log(f"installing tantivy-cli into {root} in the background (several minutes; log: {root}/install.log)")
    return subprocess.Popen(["nice", "-n", "10", "cargo", "install", "tantivy-cli", "--root", str(root)],
                            stdout=logf, stderr=subprocess.STDOUT)


def tantivy_bin(args) -> Path:
    if args.tantivy:
        return Path(args.tantivy)
    return Path(args.workdir) / "tools" / "bin" / "tantivy"


def build_lograft(args) -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = Path(args.binary) if args.binary else target / "release" / "lograft"
    if not args.no_build and not args.binary:
        log("cargo build --release (nice -n 10)")
        t0 = time.time()
        r = subprocess.run(["nice", "-n", "10", "cargo", "build", "--release"], cwd=REPO)
        if r.returncode != 0:
            raise BenchError("cargo build --release failed")
        log(f"build done in {time.time() - t0:.0f} s")
    if not binary.exists():
        raise BenchError(f"lograft binary not found at {binary} (build it or pass --binary)")
    return binary


# ----------------------------------------------------------------------------- the node

class Node:
    def __init__(self, binary: Path, run_dir: Path, allowed: list[Path], args):
        self.binary = binary
        self.run_dir = run_dir
        self.data_dir = run_dir / "data"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.args = args
        self.proc: subprocess.Popen | None = None
        run_dir.mkdir(parents=True, exist_ok=True)
        allowed_globs = ", ".join(json.dumps(str(p) + "/**") for p in allowed)
        self.config = run_dir / "node.toml"
        self.config.write_text(f"""data_dir = {json.dumps(str(self.data_dir))}
listen = "127.0.0.1:{self.port}"
node_name = "bench"
[collect]
allowed_paths = [{allowed_globs}]
default_runner = false
[queue]
max_bytes = "{args.queue_max}"
[index]
retention_days = 0
commit_interval = "{args.commit_interval}"
writer_memory = "{args.writer_memory}"
""")
        self.log_path = run_dir / "lograft.log"

    def start(self):
        global API_TOKEN
        # Every API call needs a token: make one offline, before the first start.
        API_TOKEN = subprocess.run(
            [str(self.binary), "token", "create", "--name", "bench", "--role", "admin", "--config", str(self.config)],
            check=True, capture_output=True, text=True).stdout.strip()
        self.logf = open(self.log_path, "w")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        self.proc = subprocess.Popen([str(self.binary), "serve", "--config", str(self.config)],
                                     stdout=self.logf, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"lograft exited with {self.proc.returncode} at startup; see {self.log_path}")
            try:
                status, _, _ = http("GET", self.base + "/health", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"lograft did not answer /health within 60 s; see {self.log_path}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu(self) -> float:
        return proc_cpu_seconds(self.pid)

    def hwm_kb(self) -> int:
        return proc_status_kb(self.pid, "VmHWM")

    def rss_kb(self) -> int:
        return proc_status_kb(self.pid, "VmRSS")

    def rss_anon_kb(self) -> int:
        """Resident memory that is the process's own (heap, stacks), without the mapped index files
        the page cache can take back."""
        return proc_status_kb(self.pid, "RssAnon")

    def get(self, path: str, params: dict | None = None, timeout: float = 60.0):
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        return http("GET", url, timeout=timeout)

    def search(self, q: str, limit: int = 1, **extra):
        params = {"q": q, "limit": limit, **extra}
        status, body, wall = self.get("/api/v1/search", params)
        if status != 200:
            raise BenchError(f"search {params} -> HTTP {status}: {body}")
        return body, wall

    def create_runner(self, name: str, path: Path, parser: str):
        body = {"name": name, "reader": {"mode": "file", "log_path": str(path), "read_from": "oldest"},
                "parser": {"type": parser}}
        status, resp, _ = http("POST", self.base + "/api/v1/runners", body)
        if status != 201:
            raise BenchError(f"creating runner {name} -> HTTP {status}: {resp}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log("lograft did not stop within 30 s of SIGTERM; sending SIGKILL")
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.logf.close()

    def log_problems(self, limit: int = 20) -> dict:
        """ERROR/WARN lines of the node's log (ANSI colours stripped)."""
        counts = {"ERROR": 0, "WARN": 0}
        samples: list[str] = []
        ansi = re.compile(r"\x1b\[[0-9;]*m")
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return {"counts": counts, "samples": samples}
        for line in text.splitlines():
            clean = ansi.sub("", line)
            for level in counts:
                if re.search(rf"\b{level}\b", clean[:60]):
                    counts[level] += 1
                    if len(samples) < limit:
                        samples.append(clean[:400])
        return {"counts": counts, "samples": samples}


# ----------------------------------------------------------------------------- ingest

def wait_searchable(node: Node, targets: dict[str, int], t_start: float, args, sampler) -> dict[str, float]:
    """Poll `runner:NAME` totals until each equals its target; returns seconds per runner."""
    done: dict[str, float] = {}
    last_totals = {name: -1 for name in targets}
    last_change = time.monotonic()
    deadline = t_start + args.ingest_timeout
    next_report = time.monotonic() + 10
    while len(done) < len(targets):
        if not node.alive():
            raise BenchError(f"lograft exited with {node.proc.returncode} during ingest; see {node.log_path}")
        now = time.monotonic()
        if now > deadline:
            raise BenchError(f"ingest did not finish within --ingest-timeout {args.ingest_timeout} s "
                             f"(searchable: {last_totals}, targets: {targets})")
        if now - last_change > args.stall_timeout:
            raise BenchError(f"no progress for {args.stall_timeout} s (searchable: {last_totals}, "
                             f"targets: {targets}); see {node.log_path}")
        near = False
        for name, target in targets.items():
            if name in done:
                continue
            body, _ = node.search(f"runner:{name}", limit=1)
            total = body["total"]
            if total != last_totals[name]:
                last_totals[name] = total
                last_change = time.monotonic()
            if total >= target:
                done[name] = time.monotonic() - t_start
                if total > target:
                    log(f"  runner {name}: {total} searchable > {target} lines in the file (duplicates?)")
            elif total >= 0.9 * target:
                near = True
        sampler()
        if time.monotonic() > next_report:
            log(f"  searchable {last_totals} of {targets}, {time.monotonic() - t_start:.0f} s")
            next_report = time.monotonic() + 10
        if len(done) < len(targets):
            time.sleep(args.poll_fast if near else args.poll_slow)
    return done


def run_ingest_phase(phase: str, node: Node, data: Path, manifest: dict, args) -> dict:
    truth = manifest["ground_truth"]
    files = {"nginx": (data / "nginx.log", "raw"), "app": (data / "app.jsonl", "json")}
    if phase == "nginx-parsed":
        # The same file through the nginx parser (fields extracted, the event time parsed).
        files["nginx"] = (data / "nginx.log", "nginx")
    names = ["nginx", "app"] if phase == "both" else ["nginx"] if phase == "nginx-parsed" else [phase]
    targets = {name: truth[name]["lines"] for name in names}
    raw_bytes = sum(files[name][0].stat().st_size for name in names)
    lines = sum(targets.values())

    samples = {"rss_max_kb": 0, "rss_anon_max_kb": 0, "rss_anon_per_tenth_kb": [], "queue_depth_max": 0, "queue_bytes_max": 0, "status_last": None,
               "read_done_s": {}}
    last_status = [0.0]

    def sampler():
        samples["rss_max_kb"] = max(samples["rss_max_kb"], node.rss_kb())
        samples["rss_anon_max_kb"] = max(samples["rss_anon_max_kb"], node.rss_anon_kb())
        if time.monotonic() - last_status[0] < 1.0:
            return
        last_status[0] = time.monotonic()
        status, st, _ = node.get("/api/v1/status")
        if status != 200 or not isinstance(st, dict):
            return
        samples["status_last"] = st
        queue = st.get("queue") or {}
        for key, skey in (("depth", "queue_depth_max"), ("bytes", "queue_bytes_max")):
            if isinstance(queue.get(key), (int, float)):
                samples[skey] = max(samples[skey], queue[key])
        for r in st.get("runners") or []:
            name = r.get("name")
            if name in targets and name not in samples["read_done_s"] and r.get("lines_read", 0) >= targets[name]:
                samples["read_done_s"][name] = round(time.monotonic() - t0, 2)
        # Lines indexed over time, for the rate per tenth of the run (does it hold as the
        # index grows?).
        indexer = st.get("indexer") or {}
        indexed = indexer.get("docs_indexed", indexer.get("indexed"))
        if isinstance(indexed, (int, float)):
            samples.setdefault("indexed", []).append((time.monotonic() - t0, indexed, node.rss_anon_kb(), node.cpu() - cpu0))

    cpu0 = node.cpu()
    t0 = time.monotonic()
    for name in names:
        node.create_runner(name, files[name][0], files[name][1])
    log(f"[{phase}] runners {names} created; waiting until {lines:,} lines are searchable")
    done = wait_searchable(node, targets, t0, args, sampler)
    wall = time.monotonic() - t0
    last_status[0] = 0.0
    sampler()  # one sample at the end, so the last tenth has its crossing
    cpu = node.cpu() - cpu0
    # Every line was searchable at `wall`, whatever the indexer's counter said when sampled.
    indexed = samples.setdefault("indexed", [])
    if not indexed or indexed[-1][1] < lines:
        indexed.append((wall, lines, node.rss_anon_kb(), cpu))
    hwm_kb = node.hwm_kb()
    index_bytes = dir_bytes(node.data_dir / "index")
    data_bytes = dir_bytes(node.data_dir)
    # A few seconds later: background merges may have finished (or left garbage behind),
    # and the queue has been acked.
    time.sleep(args.settle)
    # The merges these lines call for are part of what they cost (tantivy-cli's `index` waits
    # for its merges too): CPU until no merge has run for 3 s.
    wait_merges_settled(node, args.merge_settle_timeout)
    cpu_with_merges = node.cpu() - cpu0
    index_bytes_settled = dir_bytes(node.data_dir / "index")
    data_bytes_settled = dir_bytes(node.data_dir)
    rss_settled_kb = node.rss_kb()
    status, st, _ = node.get("/api/v1/status")
    if status == 200:
        samples["status_last"] = st
    tenths = rate_per_tenth(samples.get("indexed", []), lines)
    anon_tenths = anon_per_tenth(samples.get("indexed", []), lines)
    cpu_tenths = cpu_per_tenth(samples.get("indexed", []), lines)
    # With several runners the mix changes once the first file has been read to its end (the
    # rest is one workload, at its own cost per line): the rate is also taken over the lines
    # indexed while every runner was still reading, where the mix is the same from start to end.
    all_reading = None
    if len(names) > 1 and len(samples["read_done_s"]) == len(names):
        first_done = min(samples["read_done_s"].values())
        inside = [x for x in samples.get("indexed", []) if x[0] <= first_done]
        if inside:
            all_reading = {"until_s": first_done, "lines": inside[-1][1],
                           "rate_per_tenth": rate_per_tenth(inside, int(inside[-1][1]))}
    _, metrics_text, _ = node.get("/metrics")
    merges_peak = metric_value(metrics_text, "lograft_index_merges_peak")
    merges_done = metric_value(metrics_text, "lograft_index_merges_total")
    result = {
        "rate_per_tenth": tenths, "merges_peak": merges_peak, "merges": merges_done,
        "phase": phase, "runners": names, "lines": lines, "raw_bytes": raw_bytes,
        "wall_s": round(wall, 2), "lines_per_s": round(lines / wall, 1),
        "per_runner_searchable_s": {k: round(v, 2) for k, v in done.items()},
        "per_runner_read_done_s": samples["read_done_s"],
        "cpu_s": round(cpu, 2), "cpu_s_per_mline": round(cpu / lines * 1e6, 2),
        "cpu_s_with_merges": round(cpu_with_merges, 2),
        "cpu_s_per_mline_with_merges": round(cpu_with_merges / lines * 1e6, 2),
        "peak_rss_mib": round(hwm_kb / 1024, 1), "peak_rss_anon_mib": round(samples["rss_anon_max_kb"] / 1024, 1),
        "rss_anon_per_tenth_mib": anon_tenths,
        "cpu_s_per_mline_per_tenth": cpu_tenths,
        "all_reading": all_reading,
        "rss_after_settle_mib": round(rss_settled_kb / 1024, 1),
        "index_bytes": index_bytes, "index_bytes_settled": index_bytes_settled,
        "index_ratio": round(index_bytes_settled / raw_bytes, 3),
        "data_dir_bytes": data_bytes, "data_dir_bytes_settled": data_bytes_settled,
        "data_dir_ratio": round(data_bytes_settled / raw_bytes, 3),
        "data_dir_breakdown": {e.name: dir_bytes(Path(e.path)) if e.is_dir() else e.stat().st_size
                               for e in os.scandir(node.data_dir)},
        "queue_depth_max": samples["queue_depth_max"], "queue_bytes_max": samples["queue_bytes_max"],
        "status_at_end": samples["status_last"],
    }
    log(f"[{phase}] {lines:,} lines searchable in {wall:.1f} s ({lines / wall:,.0f} lines/s), "
        f"CPU {cpu:.1f} s ({cpu / lines * 1e6:.1f} s per M lines), peak RSS {hwm_kb / 1024:.0f} MiB "
        f"({rss_settled_kb / 1024:.0f} MiB {args.settle:.0f} s later), "
        f"index {index_bytes_settled / MiB:.0f} MiB ({index_bytes_settled / raw_bytes:.2f} x raw), "
        f"data dir {data_bytes_settled / MiB:.0f} MiB")
    if tenths:
        first, last = tenths[0], tenths[-1]
        log(f"[{phase}] lines/s per tenth of the run: {', '.join(f'{r:,.0f}' for r in tenths)}"
            f" (last ÷ first {last / first:.2f}); merges: {merges_done:.0f}, at most {merges_peak:.0f} at once")
    if cpu_tenths:
        log(f"[{phase}] CPU-s per M lines per tenth: {', '.join(f'{c:.1f}' for c in cpu_tenths)}")
    if all_reading and len(all_reading["rate_per_tenth"]) == 10:
        r = all_reading["rate_per_tenth"]
        log(f"[{phase}] while every runner was reading ({all_reading['lines']:,.0f} lines, "
            f"{all_reading['until_s']:.0f} s): lines/s per tenth {', '.join(f'{x:,.0f}' for x in r)}"
            f" (last ÷ first {r[-1] / r[0]:.2f})")
    if anon_tenths:
        log(f"[{phase}] anonymous RSS (MiB, max per tenth): {', '.join(f'{m:.0f}' for m in anon_tenths)}; "
            f"peak {samples['rss_anon_max_kb'] / 1024:.0f} MiB")
    return result


def wait_merges_settled(node: "Node", timeout: float) -> float | None:
    """Seconds until no segment merge has run for 3 s in a row (the node merges what ingest
    left while idle), so queries are measured on a settled index, not beside two merges;
    None when it did not settle within `timeout`. The gauge appears with the first merge: a
    node that never merged has none, and counts as settled."""
    t0 = time.monotonic()
    quiet_since = None
    while time.monotonic() - t0 < timeout:
        _, text, _ = node.get("/metrics")
        if metric_value(text, "lograft_index_merges_running") == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 3:
                waited = round(quiet_since - t0, 1)
                log(f"merges settled after {waited} s")
                return waited
        else:
            quiet_since = None
        time.sleep(0.5)
    log(f"merges still running after {timeout:.0f} s; measuring queries anyway")
    return None


def at_tenths(points: list[tuple[float, float]], lines: int) -> list[float]:
    """From (lines indexed, y) points, y at each tenth of the lines, interpolated between the
    two points around the crossing (a tenth shorter than the sampling period still gets its
    own value); stops at the first tenth not reached."""
    points = [(0.0, 0.0)] + sorted(points)
    out = [0.0]
    step = lines / 10
    for k in range(1, 11):
        target = step * k
        for (n0, y0), (n1, y1) in zip(points, points[1:]):
            if n0 < target <= n1:
                out.append(y0 + (y1 - y0) * (target - n0) / (n1 - n0))
                break
        else:
            break
    return out


def rate_per_tenth(samples: list[tuple[float, float]], lines: int) -> list[float]:
    """Lines per second over each tenth of the lines, from (seconds, lines indexed, ...)
    samples taken about once a second."""
    if not samples or lines < 10:
        return []
    crossed = at_tenths([(s[1], s[0]) for s in samples], lines)
    return [lines / 10 / max(b - a, 1e-3) for a, b in zip(crossed, crossed[1:])]


def cpu_per_tenth(samples: list[tuple], lines: int) -> list[float]:
    """CPU-seconds of the node per million lines in each tenth of the lines, from (seconds,
    lines indexed, anon KiB, CPU-s) samples."""
    points = [(s[1], s[3]) for s in samples if len(s) > 3]
    if not points or lines < 10:
        return []
    cpu_at = at_tenths(points, lines)
    return [round((b - a) / (lines / 10) * 1e6, 2) for a, b in zip(cpu_at, cpu_at[1:])]


def anon_per_tenth(samples: list[tuple], lines: int) -> list[float]:
    """The largest anonymous RSS (MiB) seen in each tenth of the lines: flat, or growing?"""
    out: list[float] = []
    for k in range(10):
        lo, hi = lines * k / 10, lines * (k + 1) / 10
        inside = [s[2] for s in samples if len(s) > 2 and lo < s[1] <= hi]
        if inside:
            out.append(round(max(inside) / 1024, 1))
    return out


def metric_value(text, name: str) -> float:
    """The sum of a Prometheus metric's samples (0 when absent)."""
    if not isinstance(text, str):
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            try:
                total += float(line.rsplit(" ", 1)[1])
            except (IndexError, ValueError):
                pass
    return total


# ----------------------------------------------------------------------------- latency

def run_latency(node: Node, logs_dir: Path, args) -> dict:
    path = logs_dir / "probe.log"
    path.write_text("")
    node.create_runner("probe", path, "raw")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    token_re = re.compile(r"probe[0-9a-f]{16}")
    try:
        # Warm-up line: wait until the runner is following the file.
        warm = "probe" + secrets.token_hex(8)
        os.write(fd, f"{datetime.now(timezone.utc).isoformat()} warmup {warm}\n".encode())
        deadline = time.monotonic() + 60
        while True:
            body, _ = node.search(warm, limit=1)
            if body["total"] >= 1:
                break
            if time.monotonic() > deadline:
                raise BenchError("the probe runner's warm-up line was not searchable within 60 s")
            time.sleep(0.05)

        written: dict[str, float] = {}
        seen: dict[str, float] = {}
        stop = threading.Event()
        poll_errors: list[str] = []

        def poller():
            # One query returns every visible probe line (newest first), so each poll
            # checks all outstanding tokens at once; poll period --probe-poll.
            while not stop.is_set():
                try:
                    body, _ = node.search("runner:probe", limit=1000)
                    now = time.monotonic()
                    for hit in body["hits"]:
                        m = token_re.search(hit["message"])
                        if m and m.group(0) not in seen:
                            seen[m.group(0)] = now
                except Exception as err:  # keep polling; report at the end
                    poll_errors.append(str(err))
                time.sleep(args.probe_poll)

        thread = threading.Thread(target=poller, daemon=True)
        thread.start()
        log(f"writing {args.probes} probe lines {args.probe_interval * 1000:.0f} ms apart")
        tick = time.monotonic()
        for i in range(args.probes):
            token = "probe" + secrets.token_hex(8)
            line = f"{datetime.now(timezone.utc).isoformat()} latency probe {i} {token}\n".encode()
            written[token] = time.monotonic()
            os.write(fd, line)
            tick += args.probe_interval
            time.sleep(max(0.0, tick - time.monotonic()))
        deadline = time.monotonic() + args.probe_timeout
        while time.monotonic() < deadline and not all(t in seen for t in written):
            time.sleep(0.05)
        stop.set()
        thread.join(timeout=10)
    finally:
        os.close(fd)
    missing = [t for t in written if t not in seen]
    lat_ms = [(seen[t] - written[t]) * 1000 for t in written if t in seen]
    # Each token individually, as a user would search it: exactly one hit expected.
    wrong = 0
    for token in written:
        body, _ = node.search(token, limit=5)
        if body["total"] != 1:
            wrong += 1
    result = {
        "probes": len(written), "seen": len(lat_ms), "missing": len(missing),
        "p50_ms": round(percentile(lat_ms, 50), 1), "p99_ms": round(percentile(lat_ms, 99), 1),
        "min_ms": round(min(lat_ms), 1) if lat_ms else None, "max_ms": round(max(lat_ms), 1) if lat_ms else None,
        "mean_ms": round(statistics.fmean(lat_ms), 1) if lat_ms else None,
        "token_search_not_exactly_one": wrong, "poll_errors": poll_errors[:5],
        "interval_ms": args.probe_interval * 1000, "poll_ms": args.probe_poll * 1000,
    }
    log(f"latency: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms, "
        f"missing {len(missing)}, per-token check off by one or more: {wrong}")
    return result


# ----------------------------------------------------------------------------- queries

DAY_FROM = "2026-01-15T00:00:00Z"
DAY_TO = "2026-01-16T00:00:00Z"
SERVICE = "payments"


def iso_epoch(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def query_specs(manifest: dict, extra: dict) -> list[dict]:
    """The queries, in order. `issue` numbers the issue's query set (1-8); `base` says how the
    baselines ask the same question (None: the baseline cannot answer it)."""
    gt = manifest["ground_truth"]
    n, a = gt["nginx"], gt["app"]
    rng = {"from": RANGE_FROM, "to": RANGE_TO}
    day = {"from": DAY_FROM, "to": DAY_TO}
    sel = "SELECT id FROM nginx, app WHERE MATCH({}) LIMIT 1"
    return [
        # --- the query set (whole store, no runner filter)
        {"issue": 1, "name": "rare term", "workload": "all", "q": RARE_EXC, "expect": a[f"term {RARE_EXC}"],
         "base": {"tantivy": RARE_EXC, "sphinx": ("found", sel.format(f"'{RARE_EXC}'"))}},
        {"issue": 2, "name": "phrase", "workload": "all", "q": f'"{PHRASE}"', "expect": a[f"phrase '{PHRASE}'"],
         "base": {"tantivy": f'"{PHRASE}"', "sphinx": ("found", sel.format(f"'\"{PHRASE}\"'"))}},
        {"issue": 3, "name": "common term (count)", "workload": "all", "q": "GET",
         "expect": extra["nginx GET"] + extra["app GET"],
         "base": {"tantivy": "GET", "sphinx": ("found", sel.format("'GET'"))}},
        {"issue": 4, "name": "1 h range count", "workload": "all", "q": "", "params": rng,
         "expect": a["lines 10:00-11:00Z"],
         "note": "q empty. nginx is parsed raw, so its lines carry the ingest time and are outside the range",
         "base": {"sphinx": ("count", "SELECT COUNT(*) FROM nginx, app WHERE ts >= {f} AND ts < {t}",
                             n["lines 10:00-11:00Z"] + a["lines 10:00-11:00Z"])}},
        {"issue": 5, "name": "error AND service, 1 h", "workload": "all",
         "q": f"level:error AND fields.service:{SERVICE}", "params": rng, "expect": extra["app error payments 1h"],
         "base": {"sphinx": ("count", "SELECT COUNT(*) FROM nginx, app WHERE level = 'ERROR' AND "
                                      f"service = '{SERVICE}' AND ts >= {{f}} AND ts < {{t}}", None)}},
        {"issue": 6, "name": "newest 100 of a term", "workload": "all", "q": "level:error", "limit": 100,
         "expect": a["level ERROR"],
         "note": "tantivy-cli serve ranks by score, not time: not comparable"},
        {"issue": 7, "name": "top-10 hosts, 24 h", "workload": "all", "kind": "top", "q": "", "params": day,
         "field": "fields.host", "size": 10, "expect": extra["app top hosts 24h"],
         "base": {"sphinx": ("top", "SELECT host, COUNT(*) AS c FROM app WHERE ts >= {f} AND ts < {t} "
                                    "GROUP BY host ORDER BY c DESC LIMIT 10", None)}},
        {"issue": 8, "name": "CJK word", "workload": "-", "kind": "na", "q": "",
         "note": "n/a (no CJK in the workload)"},
        # --- the earlier per-runner set
        {"name": "rare term", "workload": "app", "q": f"runner:app {RARE_EXC}", "expect": a[f"term {RARE_EXC}"]},
        {"name": "trace id (needle)", "workload": "app", "q": f"fields.trace_id:{extra['app trace id'][0]}",
         "expect": extra["app trace id"][1],
         "note": "identifiers are kept in a column, not the inverted index (index::identifiers)"},
        {"name": "rare phrase (needle IP)", "workload": "nginx", "q": f'runner:nginx "{NEEDLE_IP}"',
         "expect": n[f"ip {NEEDLE_IP}"]},
        {"name": "rare phrase (needle path)", "workload": "nginx", "q": f'runner:nginx "{NEEDLE_PATH}"',
         "expect": n[f"path {NEEDLE_PATH}"]},
        {"name": "common term", "workload": "nginx", "q": "runner:nginx GET", "expect": extra["nginx GET"]},
        {"name": "common term", "workload": "app", "q": "runner:app GET", "expect": extra["app GET"]},
        {"name": "1 h range count", "workload": "app", "q": "runner:app", "params": rng,
         "expect": a["lines 10:00-11:00Z"]},
        {"name": "1 h range count", "workload": "all", "q": "*", "params": rng,
         "expect": a["lines 10:00-11:00Z"],
         "note": "nginx is parsed raw, so its lines carry the ingest time and are outside the range"},
        {"name": "1 h range count", "workload": "nginx", "q": "runner:nginx", "params": rng, "expect": 0,
         "note": f"ingest time; the file has {n['lines 10:00-11:00Z']} lines dated 10:00-11:00Z"},
        {"name": "match all", "workload": "all", "q": "*", "expect": n["lines"] + a["lines"],
         "note": "plus the latency probe lines", "extra_ok": True},
    ]


def range_label(params: dict | None) -> str:
    if not params:
        return "all"
    if params == {"from": RANGE_FROM, "to": RANGE_TO}:
        return "10:00-11:00Z"
    if params == {"from": DAY_FROM, "to": DAY_TO}:
        return "24 h (01-15)"
    return f"{params.get('from')}..{params.get('to')}"


def p50_p90(values: list[float]) -> tuple[float, float]:
    return percentile(values, 50), percentile(values, 90)


def top_check(got: list, expect: list) -> bool:
    """Top-N check that tolerates ties: every returned value has its true count, and the
    returned counts are the N largest true counts, in order."""
    truth = dict(expect)
    counts = [c for _, c in got]
    return (all(truth.get(v) == c for v, c in got)
            and counts == [c for _, c in expect][:len(counts)] and len(got) == min(len(expect), 10))


def run_queries(node: Node, manifest: dict, extra: dict, probe_lines: int, args) -> list[dict]:
    results = []
    for spec in query_specs(manifest, extra):
        kind = spec.get("kind", "search")
        row = {"issue": spec.get("issue"), "name": spec["name"], "workload": spec["workload"], "kind": kind,
               "q": spec["q"], "range": range_label(spec.get("params")),
               "limit": spec.get("limit", 1), "note": spec.get("note", ""), "baselines": {}}
        if kind == "na":
            row.update({"range": "-", "limit": "-", "total": None, "expect": None, "check": "n/a"})
            results.append(row)
            continue
        if kind == "top":
            path = "/api/v1/top"
            params = {"field": spec["field"], "size": spec["size"], **spec.get("params", {})}
            if spec["q"]:
                params["q"] = spec["q"]
            row["limit"] = f"size {spec['size']}"
            row["q"] = f"top {spec['field']}" + (f" q={spec['q']}" if spec["q"] else "")
        else:
            path = "/api/v1/search"
            params = {"q": spec["q"], "limit": spec.get("limit", 1), **spec.get("params", {})}
        takes, walls, answers, hits_ok = [], [], [], True
        for i in range(1 + args.query_runs):
            status, body, wall = node.get(path, params)
            if status != 200 or not isinstance(body, dict):
                # Recorded, not fatal: the rest of the queries still run.
                row.update({"total": None, "expect": spec["expect"] if kind != "top" else None,
                            "check": f"ERROR HTTP {status}", "error": str(body)[:300]})
                log(f"query {spec['name']!r} {path} {params} -> HTTP {status}: {str(body)[:200]}")
                break
            if i == 0:
                continue  # warm-up
            takes.append(body.get("took_ms"))
            walls.append(wall * 1000)
            if kind == "top":
                answers.append(json.dumps([[v["value"], v["count"]] for v in body.get("values", [])]))
            else:
                answers.append(body["total"])
                if params["limit"] > 1:
                    ts = [h["ts"] for h in body["hits"]]
                    want = min(params["limit"], body["total"])
                    if len(ts) != want or ts != sorted(ts, reverse=True):
                        hits_ok = False
        if "error" in row:
            results.append(row)
            continue
        if kind == "top":
            got = json.loads(answers[-1])
            expect = spec["expect"]
            ok = top_check(got, expect) and len(set(answers)) == 1
            row.update({"total": len(got), "values": got, "expect": len(expect[:10]),
                        "expect_values": expect[:12], "check": "OK" if ok else "MISMATCH",
                        "other": body.get("other")})
        else:
            total = answers[-1]
            expect = spec["expect"] + (probe_lines if spec.get("extra_ok") else 0)
            check = "OK" if total == expect and len(set(answers)) == 1 else "MISMATCH"
            if not hits_ok:
                check += " (hits not newest-first or short)"
            row.update({"total": total, "expect": expect, "check": check})
            if spec.get("extra_ok"):
                # lograft also indexes its own audit events (runner `_audit`, one per API change such
                # as a runner creation): count them with top(runner) and allow for them.
                st, top, _ = node.get("/api/v1/top", {"field": "runner", "size": 20})
                per = ({v["value"]: v["count"] for v in top.get("values", [])}
                       if st == 200 and isinstance(top, dict) else {})
                row["per_runner_totals"] = per
                audit = per.get("_audit", 0)
                if check.startswith("MISMATCH") and audit and total == expect + audit and len(set(answers)) == 1:
                    check = check.replace("MISMATCH", f"OK (+{audit} _audit)", 1)
                    row["check"] = check
                row["note"] += f"; per runner (top runner): {per}"
        takes_num = [t for t in takes if isinstance(t, (int, float))]
        tp50, tp90 = p50_p90(takes_num) if takes_num else (None, None)
        wp50, wp90 = p50_p90(walls)
        row.update({"took_ms_p50": tp50, "took_ms_p90": tp90, "wall_ms_p50": round(wp50, 2),
                    "wall_ms_p90": round(wp90, 2),
                    "took_ms_median": statistics.median(takes_num) if takes_num else None,
                    "wall_ms_median": round(statistics.median(walls), 2),
                    "took_ms_all": takes, "wall_ms_all": [round(w, 2) for w in walls]})
        results.append(row)
        log(f"query {spec['name']!r} [{spec['workload']}] {row['q']!r}: total {row['total']} "
            f"(expected {row['expect']}) {row['check']}, took p50/p90 {tp50}/{tp90} ms, "
            f"wall p50/p90 {wp50:.1f}/{wp90:.1f} ms")
    return results


# ----------------------------------------------------------------------------- query baselines

def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode} at startup")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


def stop_proc(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def measure(fn, runs: int) -> dict:
    """fn() -> (answer, took_ms or None[, wall_ms]); 1 warm-up then `runs` timed calls. Without
    wall_ms, the wall time is the whole fn() call."""
    takes, walls, answers = [], [], []
    for i in range(1 + runs):
        t0 = time.perf_counter()
        got = fn()
        wall = (time.perf_counter() - t0) * 1000
        answer, took = got[0], got[1]
        if len(got) > 2:
            wall = got[2]
        if i == 0:
            continue
        walls.append(wall)
        answers.append(json.dumps(answer))
        if took is not None:
            takes.append(took)
    tp50, tp90 = p50_p90(takes) if takes else (None, None)
    wp50, wp90 = p50_p90(walls)
    return {"answer": json.loads(answers[-1]), "stable": len(set(answers)) == 1,
            "took_ms_p50": None if tp50 is None else round(tp50, 3),
            "took_ms_p90": None if tp90 is None else round(tp90, 3),
            "wall_ms_p50": round(wp50, 2), "wall_ms_p90": round(wp90, 2),
            "took_ms_all": [round(t, 3) for t in takes], "wall_ms_all": [round(w, 2) for w in walls]}


def run_tantivy_queries(index_dirs: dict[str, Path], queries: list[dict], out_dir: Path, args) -> dict:
    """`tantivy serve` on the nginx and the app index (tantivy-cli builds one index per schema), one
    server each; a query asks both servers, one after the other, and adds the counts and times up.
    took = the server's own `timings` (search + fetching docs), wall = the HTTP calls."""
    procs, ports = {}, {}
    info = {"servers": {}, "queries": {}}
    try:
        for kind, index_dir in index_dirs.items():
            port = free_port()
            logf = open(out_dir / f"tantivy-serve-{kind}.log", "w")
            procs[kind] = subprocess.Popen([str(tantivy_bin(args)), "serve", "-i", str(index_dir),
                                            "--host", "127.0.0.1", "-p", str(port)],
                                           stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
            ports[kind] = port
            wait_port(port, procs[kind], f"tantivy serve [{kind}]")
            info["servers"][kind] = f"tantivy serve -i <{kind} index> --host 127.0.0.1 -p {port}"
        for q in queries:
            tq = (q.get("base") or {}).get("tantivy")
            if tq is None:
                continue

            def one(tq=tq):
                total, took = 0, 0.0
                for kind, port in ports.items():
                    url = f"http://127.0.0.1:{port}/api/?" + urllib.parse.urlencode({"q": tq, "nhits": 1})
                    status, body, _ = http("GET", url)
                    if status != 200 or not isinstance(body, dict):
                        raise BenchError(f"tantivy serve [{kind}] {tq!r} -> HTTP {status}: {str(body)[:200]}")
                    total += body["num_hits"]
                    took += sum(t["duration"] for t in body["timings"]["timings"] if t["depth"] == 0) / 1000
                return total, took

            m = measure(one, args.query_runs)
            m["q"] = tq
            m["check"] = ("OK" if m["answer"] == q["expect"] and m["stable"] else "MISMATCH")
            info["queries"][f"Q{q['issue']}"] = m
            log(f"tantivy serve {tq!r}: {m['answer']} hits ({m['check']}), took p50 {m['took_ms_p50']} ms, "
                f"wall p50/p90 {m['wall_ms_p50']}/{m['wall_ms_p90']} ms")
    except (BenchError, OSError, KeyError, ValueError) as err:
        log(f"tantivy serve baseline failed: {err}")
        info["error"] = str(err)
    finally:
        for proc in procs.values():
            stop_proc(proc)
    return info


class SphinxQL:
    """A minimal MySQL-protocol client (protocol 41, no auth: searchd ignores credentials),
    enough for SphinxQL SELECT / SHOW META. Standard library only."""

    def __init__(self, port: int, timeout: float = 60):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self._packet()  # server greeting
        caps = 0x0001 | 0x0200 | 0x8000 | 0x10000  # LONG_PASSWORD, PROTOCOL_41, SECURE_CONN, MULTI_STATEMENTS
        payload = caps.to_bytes(4, "little") + (1 << 24).to_bytes(4, "little") + bytes([33]) + bytes(23)
        payload += b"bench\x00" + b"\x00"
        self._send(payload, 1)
        pkt = self._packet()
        if pkt[0] == 0xFF:
            raise BenchError(f"sphinxql handshake failed: {pkt[9:].decode(errors='replace')}")

    def close(self):
        try:
            self._send(b"\x01", 0)  # COM_QUIT
        except OSError:
            pass
        self.sock.close()

    def _recv(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchError("sphinxql: connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _packet(self) -> bytes:
        head = self._recv(4)
        return self._recv(int.from_bytes(head[:3], "little"))

    def _send(self, payload: bytes, seq: int):
        self.sock.sendall(len(payload).to_bytes(3, "little") + bytes([seq]) + payload)

    @staticmethod
    def _lenenc(data: bytes, pos: int) -> tuple[int | None, int]:
        b = data[pos]
        if b < 0xFB:
            return b, pos + 1
        if b == 0xFB:
            return None, pos + 1
        size = {0xFC: 2, 0xFD: 3, 0xFE: 8}[b]
        return int.from_bytes(data[pos + 1:pos + 1 + size], "little"), pos + 1 + size

    def _strs(self, data: bytes) -> list:
        out, pos = [], 0
        while pos < len(data):
            n, pos = self._lenenc(data, pos)
            if n is None:
                out.append(None)
            else:
                out.append(data[pos:pos + n].decode(errors="replace"))
                pos += n
        return out

    def query(self, sql: str) -> list[list]:
        self._send(b"\x03" + sql.encode(), 0)
        pkt = self._packet()
        if pkt[0] == 0xFF:
            raise BenchError(f"sphinxql error for {sql!r}: {pkt[9:].decode(errors='replace')}")
        if pkt[0] == 0x00:
            return []
        ncols, _ = self._lenenc(pkt, 0)
        for _ in range(ncols):
            self._packet()
        pkt = self._packet()  # EOF after the column definitions
        rows = []
        while True:
            pkt = self._packet()
            if pkt[0] == 0xFE and len(pkt) < 9:
                return rows
            if pkt[0] == 0xFF:
                raise BenchError(f"sphinxql error for {sql!r}: {pkt[9:].decode(errors='replace')}")
            rows.append(self._strs(pkt))


def ensure_sphinx_tsv(data: Path) -> dict[str, Path]:
    """tsvpipe sources, cached next to the workload: id, msg, ts (unix s), level, service, host.
    nginx: the line, its own timestamp (from nginx.docs.jsonl), empty strings. app: msg, ts,
    level, service, host. ids: nginx 1..N, app N+1..; searchd needs them unique across indexes."""
    out = {"nginx": data / "nginx.sphinx.tsv", "app": data / "app.sphinx.tsv"}
    if all(p.exists() for p in out.values()):
        return out
    clean = str.maketrans({"\t": " ", "\n": " ", "\r": " ", "\\": "/"})
    doc_id = 0
    for kind, src in (("nginx", data / "nginx.docs.jsonl"), ("app", data / "app.jsonl")):
        tmp = out[kind].with_suffix(".tmp")
        with open(src) as f, open(tmp, "w", buffering=1 << 20) as dst:
            for line in f:
                rec = json.loads(line)
                doc_id += 1
                ts = int(iso_epoch(rec["ts"]))
                if kind == "nginx":
                    cols = [rec["body"], ts, "", "", ""]
                else:
                    cols = [rec["msg"], ts, rec["level"], rec["service"], rec["host"]]
                dst.write(f"{doc_id}\t" + "\t".join(str(c).translate(clean) for c in cols) + "\n")
        tmp.rename(out[kind])
    return out


def run_sphinx(data: Path, queries: list[dict], out_dir: Path, args) -> dict:
    info: dict = {"queries": {}}
    searchd = shutil.which("searchd")
    indexer = shutil.which("indexer")
    if not (searchd and indexer):
        info["skipped"] = ("sphinx not installed (searchd/indexer not on PATH); "
                           "install it with `apt-get install -y sphinxsearch`")
        log(info["skipped"])
        return info
    ver = subprocess.run([searchd, "--help"], capture_output=True, text=True).stdout.splitlines()
    info["version"] = ver[0] if ver else "?"
    sdir = out_dir / "sphinx"
    shutil.rmtree(sdir, ignore_errors=True)
    sdir.mkdir(parents=True)
    proc = None
    try:
        log("sphinx: writing the tsvpipe sources (cached next to the workload)")
        tsv = ensure_sphinx_tsv(data)
        port = free_port()
        conf = sdir / "sphinx.conf"
        parts = []
        for kind, path in tsv.items():
            parts.append(f"""source {kind}_src
{{
    type = tsvpipe
    tsvpipe_command = cat {path}
    tsvpipe_field = msg
    tsvpipe_attr_timestamp = ts
    tsvpipe_attr_string = level
    tsvpipe_attr_string = service
    tsvpipe_attr_string = host
}}
index {kind}
{{
    source = {kind}_src
    path = {sdir}/{kind}
}}
""")
        parts.append(f"""indexer
{{
    mem_limit = 256M
}}
searchd
{{
    listen = 127.0.0.1:{port}:mysql41
    log = {sdir}/searchd.log
    query_log = {sdir}/query.log
    pid_file = {sdir}/searchd.pid
    binlog_path =
    workers = threads
}}
""")
        conf.write_text("\n".join(parts))
        log(f"sphinx: nice -n 10 indexer --config {conf} --all")
        t0 = time.monotonic()
        with open(sdir / "indexer.log", "w") as logf:
            r = subprocess.run(["nice", "-n", "10", indexer, "--config", str(conf), "--all"],
                               stdout=logf, stderr=subprocess.STDOUT)
        info["indexer_wall_s"] = round(time.monotonic() - t0, 1)
        info["index_bytes"] = sum(e.stat().st_size for e in os.scandir(sdir) if e.name.startswith(("nginx.", "app.")))
        if r.returncode != 0:
            raise BenchError(f"sphinx indexer exited with {r.returncode}; see {sdir}/indexer.log")
        log(f"sphinx: indexed in {info['indexer_wall_s']} s, {info['index_bytes'] / MiB:.0f} MiB")
        proc = subprocess.Popen([searchd, "--config", str(conf), "--nodetach"], stdout=open(sdir / "searchd.out", "w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(port, proc, "searchd")
        time.sleep(0.5)  # searchd listens before it has loaded (preread) the indexes
        f, t = int(iso_epoch(RANGE_FROM)), int(iso_epoch(RANGE_TO))
        df, dt = int(iso_epoch(DAY_FROM)), int(iso_epoch(DAY_TO))
        for q in queries:
            spec = (q.get("base") or {}).get("sphinx")
            if spec is None:
                continue
            mode, sql = spec[0], spec[1]
            sql = sql.format(f=df, t=dt) if mode == "top" else sql.format(f=f, t=t)

            def one(mode=mode, sql=sql):
                t0 = time.perf_counter()
                conn = SphinxQL(port)  # a new connection per query, as the HTTP calls get
                try:
                    rows = conn.query(sql)
                    wall = (time.perf_counter() - t0) * 1000  # connect + query, without SHOW META
                    meta = dict((r[0], r[1]) for r in conn.query("SHOW META"))
                finally:
                    conn.close()
                took = float(meta.get("time", "nan")) * 1000
                if mode == "found":
                    return int(meta["total_found"]), took, wall
                if mode == "count":
                    return (int(rows[0][0]) if rows else 0), took, wall
                return [[r[0], int(r[1])] for r in rows], took, wall

            m = measure(one, args.query_runs)
            m["sql"] = sql
            expect = spec[2] if len(spec) > 2 and spec[2] is not None else q["expect"]
            if mode == "top":
                m["check"] = "OK" if top_check(m["answer"], q["expect"]) and m["stable"] else "MISMATCH"
            else:
                m["check"] = "OK" if m["answer"] == expect and m["stable"] else "MISMATCH"
                m["expect"] = expect
            info["queries"][f"Q{q['issue']}"] = m
            log(f"sphinx {sql!r}: {m['answer'] if mode != 'top' else m['answer'][:3]} ({m['check']}), "
                f"took p50 {m['took_ms_p50']} ms, wall p50/p90 {m['wall_ms_p50']}/{m['wall_ms_p90']} ms")
    except (BenchError, OSError, KeyError, ValueError, IndexError) as err:
        log(f"sphinx baseline failed: {err}")
        info["error"] = str(err)
    finally:
        stop_proc(proc)
        if not args.keep:
            shutil.rmtree(sdir, ignore_errors=True)
    return info


# ----------------------------------------------------------------------------- tantivy-cli

def tantivy_schema(kind: str) -> list[dict]:
    text_pos = {"indexing": {"record": "position", "fieldnorms": True, "tokenizer": "default"},
                "stored": True, "fast": False}
    date = {"name": "ts", "type": "date", "options": {"indexed": True, "fieldnorms": False, "fast": True,
                                                     "stored": True, "precision": "milliseconds"}}
    if kind == "nginx":
        return [date, {"name": "body", "type": "text", "options": text_pos}]
    return [
        date,
        {"name": "level", "type": "text", "options": {
            "indexing": {"record": "basic", "fieldnorms": False, "tokenizer": "raw"}, "stored": True, "fast": True}},
        {"name": "message", "type": "text", "options": text_pos},
        {"name": "fields", "type": "json_object", "options": {
            "stored": True, "indexing": {"record": "position", "fieldnorms": True, "tokenizer": "default"},
            "fast": False, "expand_dots_enabled": False}},
    ]


def run_tantivy(kind: str, docs: Path, lines: int, raw_bytes: int, out_dir: Path, args) -> dict:
    binary = tantivy_bin(args)
    index_dir = out_dir / f"tantivy-{kind}"
    shutil.rmtree(index_dir, ignore_errors=True)
    index_dir.mkdir(parents=True)
    meta = {"index_settings": {"docstore_compression": "lz4", "docstore_blocksize": 16384},
            "segments": [], "schema": tantivy_schema(kind), "opstamp": 0}
    (index_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    cmd = [str(binary), "index", "-i", str(index_dir), "-t", str(args.tantivy_threads),
           "-m", str(args.tantivy_memory)]
    log(f"tantivy-cli [{kind}]: {' '.join(cmd)} < {docs.name}")
    logf = open(out_dir / f"tantivy-{kind}.log", "w")
    t0 = time.monotonic()
    with open(docs, "rb") as stdin:
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=logf, stderr=subprocess.STDOUT)
        deadline = t0 + args.ingest_timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise BenchError(f"tantivy-cli [{kind}] did not finish within {args.ingest_timeout} s")
            time.sleep(0.05)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    logf.close()
    if proc.returncode != 0:
        raise BenchError(f"tantivy-cli [{kind}] exited with {proc.returncode}; see {out_dir}/tantivy-{kind}.log")
    failed = sum(1 for line in open(out_dir / f"tantivy-{kind}.log", errors="replace")
                 if line.startswith("Failed to add document"))
    cpu = usage.ru_utime + usage.ru_stime
    size = dir_bytes(index_dir)
    shown = ["tantivy", "index", "-i", f"<workdir>/runs/<stamp>/tantivy-{kind}"] + cmd[4:]
    result = {"kind": kind, "cmd": " ".join(shown) + f" < {docs.name}",
              "lines": lines, "wall_s": round(wall, 2), "lines_per_s": round(lines / wall, 1),
              "cpu_s": round(cpu, 2), "cpu_s_per_mline": round(cpu / lines * 1e6, 2),
              "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "index_bytes": size,
              "index_ratio": round(size / raw_bytes, 3), "failed_docs": failed}
    log(f"tantivy-cli [{kind}]: {wall:.1f} s wall, CPU {cpu:.1f} s, peak RSS {result['peak_rss_mib']} MiB, "
        f"index {size / MiB:.0f} MiB, failed docs {failed}")
    return result  # main() removes index_dir after the query baseline (unless --keep)


# ----------------------------------------------------------------------------- report

def report(res: dict) -> str:
    out = []
    m = res["meta"]
    out.append(f"## lograft e2e benchmark, {m['started']}\n")
    out.append(f"workload: nginx {m['nginx']:,} lines + app {m['app']:,} lines, seed {m['seed']}; "
               f"git {m['git']}; {m['cpus']} CPUs; load avg at start {m['loadavg']}; "
               f"commit_interval {m['commit_interval']}, writer_memory {m['writer_memory']}\n")
    ing = res["ingest"]
    tan = {t["kind"]: t for t in res.get("tantivy", [])}
    if "nginx" in tan and "app" in tan:
        b = {"kind": "both"}
        for k in ("lines", "wall_s", "cpu_s", "index_bytes"):
            b[k] = tan["nginx"][k] + tan["app"][k]
        b["cpu_s_per_mline"] = b["cpu_s"] / b["lines"] * 1e6
        b["peak_rss_mib"] = max(tan["nginx"]["peak_rss_mib"], tan["app"]["peak_rss_mib"])
        tan["both"] = b
    rows = []
    for p in ing:
        rows.append([p["phase"], fmt(p["lines"]), fmt(p["raw_bytes"] / MiB, 0), fmt(p["wall_s"]),
                     fmt(p["lines_per_s"], 0), fmt(p["cpu_s"]), fmt(p["cpu_s_per_mline"]),
                     fmt(p.get("cpu_s_per_mline_with_merges")),
                     fmt(p["peak_rss_mib"], 0), fmt(p.get("peak_rss_anon_mib"), 0),
                     fmt(p["index_bytes_settled"] / MiB, 0), fmt(p["index_ratio"], 3),
                     fmt(p["data_dir_bytes_settled"] / MiB, 0),
                     fmt(p["rate_per_tenth"][-1] / p["rate_per_tenth"][0], 2) if len(p.get("rate_per_tenth") or []) == 10 else "-"])
    out.append("### Ingest (runner created -> every line searchable)\n")
    out.append(md_table(["workload", "lines", "input MiB", "wall s", "lines/s", "CPU s", "CPU s / M lines",
                         "CPU s / M lines, with the merges they call for", "peak RSS MiB", "peak anon RSS MiB", "index MiB", "index / raw", "data dir MiB",
                         "rate last ÷ first tenth"], rows))
    tenth_rows = []
    for p in ing:
        series = [("lines/s", p.get("rate_per_tenth"), 0), ("CPU-s / M lines", p.get("cpu_s_per_mline_per_tenth"), 1),
                  ("anon RSS MiB", p.get("rss_anon_per_tenth_mib"), 0)]
        reading = (p.get("all_reading") or {}).get("rate_per_tenth")
        if reading:
            series.append(("lines/s, every runner reading", reading, 0))
        for label, values, digits in series:
            if values:
                tenth_rows.append([p["phase"], label] + [fmt(v, digits) for v in values] + [""] * (10 - len(values)))
    if tenth_rows:
        out.append("\n### Per tenth of the lines (does ingest hold as the index grows?)\n")
        out.append(md_table(["workload", "figure"] + [f"{k}0 %" for k in range(1, 11)], tenth_rows))
        out.append("\n(\"every runner reading\": the lines indexed before the first file was read to its end, "
                   "where the mix of workloads stays the same)")
    by_phase = {p["phase"]: p for p in ing}
    if "nginx" in by_phase and "nginx-parsed" in by_phase:
        raw, parsed = by_phase["nginx"], by_phase["nginx-parsed"]
        out.append(f"\nnginx parser (fields extracted) ÷ raw parser, same file: CPU per line "
                   f"{parsed['cpu_s_per_mline'] / raw['cpu_s_per_mline']:.2f}, index "
                   f"{parsed['index_bytes_settled'] / raw['index_bytes_settled']:.2f}")
    if any(p.get("per_runner_searchable_s") for p in ing if p["phase"] == "both"):
        for p in ing:
            if p["phase"] == "both":
                out.append(f"\nboth: per runner searchable at {p['per_runner_searchable_s']} s; "
                           f"read to the end at {p['per_runner_read_done_s']} s (status sampled every 1 s)")
    if tan:
        rows = []
        for p in ing:
            t = tan.get(p["phase"])
            if not t:
                continue
            rows.append([p["phase"], fmt(t["wall_s"]), fmt(t["lines"] / t["wall_s"], 0), fmt(t["cpu_s"]),
                         fmt(t["cpu_s_per_mline"]), fmt(t["peak_rss_mib"], 0), fmt(t["index_bytes"] / MiB, 0),
                         fmt(p["cpu_s_per_mline"] / t["cpu_s_per_mline"], 2),
                         fmt(p["cpu_s_per_mline_with_merges"] / t["cpu_s_per_mline"], 2)
                         if p.get("cpu_s_per_mline_with_merges") else "-",
                         fmt(p["index_bytes_settled"] / t["index_bytes"], 2),
                         fmt(p["wall_s"] / t["wall_s"], 2)])
        out.append("\n### Baseline: tantivy-cli `index` on the same documents (lograft / tantivy-cli ratios)\n")
        out.append(md_table(["workload", "tantivy wall s", "lines/s", "CPU s", "CPU s / M lines", "peak RSS MiB",
                             "index MiB", "CPU/line ratio", "CPU/line ratio, with merges", "disk ratio",
                             "wall ratio"], rows))
        cmds = [t["cmd"] for t in res["tantivy"]]
        out.append("\ncommands: " + "; ".join(f"`{c}`" for c in cmds))
    lat = res.get("latency")
    if lat:
        out.append("\n### Written -> searchable latency\n")
        out.append(md_table(["probes", "seen", "p50 ms", "p99 ms", "min ms", "max ms", "mean ms",
                             "token search != 1 hit"],
                            [[lat["probes"], lat["seen"], fmt(lat["p50_ms"]), fmt(lat["p99_ms"]),
                              fmt(lat["min_ms"]), fmt(lat["max_ms"]), fmt(lat["mean_ms"]),
                              lat["token_search_not_exactly_one"]]]))
        out.append(f"\n(one line every {lat['interval_ms']:.0f} ms, polled every {lat['poll_ms']:.0f} ms)")
    qs = res.get("queries")
    if qs:
        out.append(f"\n### Queries (p50 / p90 of {m['query_runs']} runs after 1 warm-up)\n")
        if "merges_settled_s" in res:
            settled = res["merges_settled_s"]
            out.append("measured once the node's merges had finished "
                       + (f"({settled} s after the latency test)\n" if settled is not None
                          else "(they had not, within --merge-settle-timeout)\n"))
        rows = []
        for q in qs:
            rows.append([q.get("issue") or "", q["name"], q["workload"], ("-" if q.get("kind") == "na" else "`" + (q["q"] or "(empty)").replace("|", "\\|") + "`"),
                         q["range"], q["limit"], fmt(q.get("total")), fmt(q.get("expect")), q["check"],
                         fmt(q.get("took_ms_p50")), fmt(q.get("took_ms_p90")),
                         fmt(q.get("wall_ms_p50")), fmt(q.get("wall_ms_p90"))])
        out.append(md_table(["#", "query", "workload", "q", "range", "limit", "total", "expected", "check",
                             "took p50", "took p90", "wall p50", "wall p90"], rows))
        out.append("\n(took = the node's `took_ms`; wall = the HTTP call in ms, a new connection each time; "
                   "# = the issue's query set)")
        notes = [f"- {q['name']} [{q['workload']}]: {q['note']}" for q in qs if q["note"]]
        notes += [f"- {q['name']} [{q['workload']}]: {q['error']}" for q in qs if q.get("error")]
        for q in qs:
            if q.get("kind") == "top" and q.get("values") is not None:
                notes.append(f"- {q['name']}: got {q['values']}, other {q.get('other')}; "
                             f"true counts {q['expect_values'][:11]}")
        if notes:
            out.append("\n" + "\n".join(notes))
        tq = res.get("tantivy_queries") or {}
        sp = res.get("sphinx") or {}
        base_rows = []
        for q in qs:
            if not q.get("issue"):
                continue
            key = f"Q{q['issue']}"
            row = [q["issue"], q["name"], fmt(q.get("took_ms_p50")), fmt(q.get("wall_ms_p50")),
                   fmt(q.get("wall_ms_p90"))]
            for b in (tq.get("queries", {}).get(key), sp.get("queries", {}).get(key)):
                if b is None:
                    row += ["-"] * 5
                    continue
                ans = b["answer"]
                row += [(fmt(ans) if not isinstance(ans, list) else f"{len(ans)} groups") + " " + b["check"],
                        f"{fmt(b['took_ms_p50'], 2)} / {fmt(b['took_ms_p90'], 2)}",
                        f"{fmt(b['wall_ms_p50'])} / {fmt(b['wall_ms_p90'])}",
                        fmt(q["took_ms_p50"] / b["took_ms_p50"], 2)
                        if (q.get("took_ms_p50") or 0) >= 1 and (b.get("took_ms_p50") or 0) >= 1 else "<1 ms",
                        fmt(q["wall_ms_p50"] / b["wall_ms_p50"], 2) if q.get("wall_ms_p50") else "-"]
            base_rows.append(row)
        if base_rows and (tq or sp):
            out.append("\n### Query baselines (ratio = lograft / baseline, p50; < 1 means lograft is faster)\n")
            out.append(md_table(["#", "query", "lograft took p50", "lograft wall p50", "lograft wall p90",
                                 "tantivy answer", "tantivy took p50/p90", "tantivy wall p50/p90",
                                 "took ratio", "wall ratio",
                                 "sphinx answer", "sphinx took p50/p90", "sphinx wall p50/p90",
                                 "took ratio", "wall ratio"], base_rows))
            bnotes = []
            if tq.get("servers"):
                bnotes.append("- tantivy: `tantivy serve` on the tantivy-cli nginx index and app index (one server "
                              "each, `/api/?q=..&nhits=1`); each query asks both and adds counts and times. took = its "
                              "`timings` (search + fetching docs). Newest-100 is not comparable (it ranks by score); "
                              "it has no time-range, top-N or aggregation endpoint.")
            if tq.get("error"):
                bnotes.append(f"- tantivy serve failed: {tq['error']}")
            if sp.get("skipped"):
                bnotes.append(f"- sphinx skipped: {sp['skipped']}")
            elif sp:
                bnotes.append(f"- sphinx: {sp.get('version', '?')}, indexes `nginx` + `app` (tsvpipe), indexer "
                              f"{fmt(sp.get('indexer_wall_s'))} s wall (nice 10), "
                              f"{fmt((sp.get('index_bytes') or 0) / MiB, 0)} MiB; SphinxQL over a new connection "
                              "per query (wall = connect + query, not the `SHOW META` that follows), took = `SHOW META` time (ms resolution). Text queries count with "
                              "`total_found`. Its nginx docs carry their own timestamps, so its 1 h range count "
                              "includes nginx lines (lograft: ingest time, none).")
                for key, b in sp.get("queries", {}).items():
                    bnotes.append(f"    - {key}: `{b['sql']}`")
                if sp.get("error"):
                    bnotes.append(f"- sphinx failed: {sp['error']}")
            bnotes.append("- took ratio only when both p50 are >= 1 ms: lograft's took_ms and Sphinx's "
                          "`SHOW META` time have 1 ms resolution (tantivy's timings are in µs). The wall ratio "
                          "is the fair one for sub-millisecond queries.")
            out.append("\n" + "\n".join(bnotes))
    probs = res.get("node_log_problems")
    if probs:
        out.append("\n### lograft log\n")
        for phase, p in probs.items():
            out.append(f"- {phase}: {p['counts']['ERROR']} ERROR, {p['counts']['WARN']} WARN lines")
            for s in p["samples"][:5]:
                out.append(f"    - `{s}`")
    out.append(f"\ntotal benchmark time {res['meta'].get('elapsed_s', 0):.0f} s")
    return "\n".join(out)


# ----------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared_gen = REPO.parent / "shared" / "bench" / "gen_logs.py"
    ap.add_argument("--gen", default=str(shared_gen if shared_gen.exists() else REPO / "benches" / "gen_logs.py"),
                    help="workload generator (default: ../shared/bench/gen_logs.py from the repo root, else "
                         "its copy benches/gen_logs.py)")
    ap.add_argument("--workdir", default="/tmp/lograft-bench", help="cache of data, tools, runs and results")
    ap.add_argument("--nginx", type=int, default=2_000_000)
    ap.add_argument("--app", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build --release")
    ap.add_argument("--binary", help="lograft binary to measure (implies --no-build)")
    ap.add_argument("--keep", action="store_true", help="keep the nodes' data dirs and tantivy indexes")
    ap.add_argument("--phases", default="nginx,nginx-parsed,app,both",
                    help="comma list of fresh-node ingest runs: nginx, nginx-parsed (the nginx file "
                         "through the nginx parser), app, both (latency and queries run on the 'both' node)")
    ap.add_argument("--skip-tantivy", action="store_true", help="no tantivy-cli baseline")
    ap.add_argument("--tantivy", help="tantivy-cli binary (default <workdir>/tools/bin/tantivy, installed "
                                      "with cargo install if missing)")
    ap.add_argument("--tantivy-threads", type=int, default=2,
                    help="tantivy index -t (default 2, = lograft's writer threads on 2+ cores)")
    ap.add_argument("--tantivy-memory", type=int, default=256 * MiB,
                    help="tantivy index -m in bytes (default 256 MiB, = our writer_memory)")
    ap.add_argument("--writer-memory", default="256MiB")
    ap.add_argument("--commit-interval", default="1s")
    ap.add_argument("--queue-max", default="64MiB", help="queue.max_bytes (the node default is 64MiB)")
    ap.add_argument("--ingest-timeout", type=float, default=3600, help="seconds per ingest phase")
    ap.add_argument("--stall-timeout", type=float, default=180,
                    help="abort a phase when the searchable count does not move for this long")
    ap.add_argument("--poll-slow", type=float, default=0.5, help="ingest poll period (s) below 90%%")
    ap.add_argument("--poll-fast", type=float, default=0.05, help="ingest poll period (s) above 90%%")
    ap.add_argument("--settle", type=float, default=5, help="seconds to wait before measuring index size again")
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--probe-interval", type=float, default=0.02)
    ap.add_argument("--probe-poll", type=float, default=0.01)
    ap.add_argument("--probe-timeout", type=float, default=60)
    ap.add_argument("--query-runs", type=int, default=15,
                    help="measured repetitions per query, after 1 warm-up (p50/p90 are nearest-rank)")
    ap.add_argument("--skip-tantivy-queries", action="store_true",
                    help="no `tantivy serve` query baseline (the tantivy-cli indexing baseline still runs)")
    ap.add_argument("--merge-settle-timeout", type=float, default=900,
                    help="seconds to wait, before the queries, for the node's merges to finish")
    ap.add_argument("--check-counts", action="store_true",
                    help="exit 3 when a count differs from the ground truth (CI's short run); times are "
                         "never checked")
    ap.add_argument("--skip-sphinx", action="store_true",
                    help="no Sphinx searchd query baseline (it is skipped anyway when searchd/indexer "
                         "are not installed: apt-get install -y sphinxsearch)")
    args = ap.parse_args()
    if args.binary:
        args.no_build = True
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    for p in phases:
        if p not in ("nginx", "nginx-parsed", "app", "both"):
            ap.error(f"unknown phase {p!r}")

    started = time.time()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(args.workdir).resolve()
    args.workdir = str(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = workdir / "runs" / stamp
    run_dir.mkdir(parents=True)
    try:
        git = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True,
                             text=True).stdout.strip() or "?"
    except OSError:
        git = "?"
    res: dict = {"meta": {"started": stamp, "nginx": args.nginx, "app": args.app, "seed": args.seed,
                          "git": git, "cpus": os.cpu_count(), "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
                          "commit_interval": args.commit_interval, "writer_memory": args.writer_memory,
                          "query_runs": args.query_runs, "phases": phases},
                 "ingest": [], "node_log_problems": {}}
    nodes: list[Node] = []
    install = None
    exit_code = 0
    try:
        install = start_tantivy_install(args)
        data, manifest, extra = ensure_workload(args)
        res["meta"]["manifest"] = manifest
        res["meta"]["extra_truth"] = extra
        binary = build_lograft(args)
        if install is not None:
            log("waiting for cargo install tantivy-cli to finish before measuring")
            if install.wait(timeout=3600) != 0:
                raise BenchError(f"cargo install tantivy-cli failed; see {workdir}/tools/install.log")
            install = None
        logs_dir = run_dir / "logs"
        logs_dir.mkdir()
        for phase in phases:
            node = Node(binary, run_dir / phase, [data, logs_dir], args)
            nodes.append(node)
            node.start()
            log(f"[{phase}] lograft pid {node.pid} on {node.base}, data dir {node.data_dir}")
            result = run_ingest_phase(phase, node, data, manifest, args)
            res["ingest"].append(result)
            if phase == "both":
                res["latency"] = run_latency(node, logs_dir, args)
                res["merges_settled_s"] = wait_merges_settled(node, args.merge_settle_timeout)
                res["queries"] = run_queries(node, manifest, extra, res["latency"]["probes"] + 1, args)
                res["metrics_excerpt"] = [
                    line for line in str(node.get("/metrics")[1]).splitlines()
                    if line.startswith("lograft_") and not line.startswith("lograft_http")][:60]
                result["index_bytes_end"] = dir_bytes(node.data_dir / "index")
            node.stop()
            res["node_log_problems"][phase] = node.log_problems()
            if not args.keep:
                shutil.rmtree(node.data_dir, ignore_errors=True)
        if not args.skip_tantivy:
            tantivy = []
            truth = manifest["ground_truth"]
            if any(p in ("nginx", "both") for p in phases):
                tantivy.append(run_tantivy("nginx", data / "nginx.docs.jsonl", truth["nginx"]["lines"],
                                           (data / "nginx.log").stat().st_size, run_dir, args))
            if any(p in ("app", "both") for p in phases):
                tantivy.append(run_tantivy("app", ensure_app_docs(data), truth["app"]["lines"],
                                           (data / "app.jsonl").stat().st_size, run_dir, args))
            res["tantivy"] = tantivy
            index_dirs = {t["kind"]: run_dir / f"tantivy-{t['kind']}" for t in tantivy}
            if res.get("queries") and not args.skip_tantivy_queries and len(index_dirs) == 2:
                log("query baseline: tantivy serve")
                res["tantivy_queries"] = run_tantivy_queries(index_dirs, query_specs(manifest, extra),
                                                             run_dir, args)
            if not args.keep:
                for d in index_dirs.values():
                    shutil.rmtree(d, ignore_errors=True)
        if res.get("queries"):
            if args.skip_sphinx:
                res["sphinx"] = {"skipped": "--skip-sphinx", "queries": {}}
            else:
                log("query baseline: sphinx searchd")
                res["sphinx"] = run_sphinx(data, query_specs(manifest, extra), run_dir, args)
    except (BenchError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        log(f"FAILED: {err}")
        res["error"] = str(err)
        exit_code = 1
    except KeyboardInterrupt:
        log("interrupted")
        res["error"] = "interrupted"
        exit_code = 130
    finally:
        for node in nodes:
            if node.alive():
                node.stop()
                res["node_log_problems"].setdefault(node.run_dir.name, node.log_problems())
        if install is not None and install.poll() is None:
            install.terminate()
    if args.check_counts and exit_code == 0:
        wrong = [f"query {q['name']!r} [{q['workload']}]: {q.get('total')} (expected {q.get('expect')}, {q['check']})"
                 for q in res.get("queries", []) if q.get("check") not in ("n/a",) and not str(q.get("check")).startswith("OK")]
        wrong += [f"tantivy-cli {m}: {v.get('answer')} ({v.get('check')})"
                  for m, v in (res.get("tantivy_queries") or {}).get("queries", {}).items()
                  if isinstance(v, dict) and str(v.get("check", "OK")).startswith("MISMATCH")]
        if "both" in args.phases and not res.get("queries"):
            wrong.append("no query ran")
        if wrong:
            for line in wrong:
                log(f"COUNT MISMATCH: {line}")
            exit_code = 3
        else:
            log("every count matches the ground truth")
    res["meta"]["elapsed_s"] = round(time.time() - started, 1)
    out_json = workdir / f"results-{stamp}.json"
    out_json.write_text(json.dumps(res, indent=2, default=str))
    text = report(res)
    (workdir / f"results-{stamp}.md").write_text(text + "\n")
    print()
    print(text)
    print(f"\nresults: {out_json}")
    if not args.keep and exit_code == 0:
        shutil.rmtree(run_dir / "logs", ignore_errors=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
