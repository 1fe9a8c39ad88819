#!/usr/bin/env python3
"""Ingest benchmark of a lograft node: parser throughput, `_bulk` throughput, rsyslog comparison.

Phases (--phases, comma list, default parsers,bulk,rsyslog):

  * parsers: one fresh node per parser (raw, json, nginx, logfmt, regex, syslog, csv), one
    file-mode runner on a --parse-lines file; wall time from the runner creation until every
    line is searchable, and the lograft process CPU (utime+stime) -> lines per CPU-second;
  * bulk: a fresh node with a `bulk` runner; a stdlib client (--bulk-threads threads, keep-alive
    connections) posts the app.jsonl documents as Elasticsearch `_bulk` NDJSON requests of
    --bulk-size documents; docs/s until all are searchable and lograft CPU per million docs;
  * rsyslog: Debian rsyslogd (imfile -> omfile with a disk-assisted LinkedList queue) moves the
    same nginx file as the `raw` parser phase into an output file; wall and CPU until the output
    has every line; lograft's raw-parser figures as ratios to it.

Reuses the helpers of benches/e2e.py (the node, the token, the searchable poll). Python 3.11
standard library only, Linux only. It measures, it asserts nothing. See benches/README.md.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

sys.dont_write_bytecode = True  # importing e2e must not leave benches/__pycache__ behind
sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e  # noqa: E402
from e2e import BenchError, fmt, log, md_table, MiB  # noqa: E402

PARSERS = ["raw", "json", "nginx", "logfmt", "regex", "syslog", "csv"]

# Combined log format with named groups (the regex parser's workload).
COMBINED_REGEX = (r'^(?P<remote_addr>\S+) \S+ (?P<remote_user>\S+) \[(?P<time_local>[^\]]+)\] '
                  r'"(?P<method>\S+) (?P<path>\S+) (?P<protocol>[^"]*)" (?P<status>\d{3}) '
                  r'(?P<body_bytes_sent>\d+|-) "(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)"$')
CSV_SCHEMA = ("ts string, level string, service string, host string, trace_id string, "
              "user_id long, latency_ms float, msg string")
SYSLOG_SEVERITY = {"ERROR": 3, "WARN": 4, "INFO": 6, "DEBUG": 7}
SYSLOG_FACILITY = 16  # local0


# ----------------------------------------------------------------------------- inputs

def head_lines(src: Path, dst: Path, n: int) -> int:
    """Copy the first n lines of src to dst (cached); returns the line count written."""
    if dst.exists():
        with open(dst, "rb") as f:
            return sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 20), b""))
    tmp = dst.with_suffix(dst.suffix + ".tmp")
    count = 0
    with open(src, "rb", buffering=1 << 20) as fin, open(tmp, "wb", buffering=1 << 20) as fout:
        for line in fin:
            if count >= n:
                break
            fout.write(line)
            count += 1
    tmp.rename(dst)
    return count


def logfmt_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_logfmt(r: dict) -> str:
    return (f"ts={r['ts']} level={r['level']} service={r['service']} host={r['host']} "
            f"trace_id={r['trace_id']} user_id={r['user_id']} latency_ms={r['latency_ms']} "
            f"msg={logfmt_quote(r['msg'])}")


def to_syslog(r: dict) -> str:
    """RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG."""
    pri = SYSLOG_FACILITY * 8 + SYSLOG_SEVERITY.get(r["level"], 6)
    sd = f'[app@32473 trace_id="{r["trace_id"]}" user_id="{r["user_id"]}"]'
    return f"<{pri}>1 {r['ts']} {r['host']} {r['service']} - - {sd} {r['msg']}"


def csv_cell(s: str) -> str:
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"') else s


def to_csv(r: dict) -> str:
    return ",".join([r["ts"], r["level"], r["service"], r["host"], r["trace_id"], str(r["user_id"]),
                     repr(float(r["latency_ms"])), csv_cell(r["msg"])])


def ensure_inputs(data: Path, n: int) -> dict[str, Path]:
    """Per-parser input files of (up to) n lines, cached under <data>/ingest-<n>/."""
    out = data / f"ingest-{n}"
    out.mkdir(exist_ok=True)
    nginx = out / "nginx.log"
    app = out / "app.jsonl"
    head_lines(data / "nginx.log", nginx, n)
    head_lines(data / "app.jsonl", app, n)
    derived = {"logfmt": out / "app.logfmt", "syslog": out / "app.syslog", "csv": out / "app.csv"}
    if not all(p.exists() for p in derived.values()):
        log(f"writing logfmt/syslog/csv inputs from {app} (cached)")
        t0 = time.time()
        tmps = {k: p.with_suffix(p.suffix + ".tmp") for k, p in derived.items()}
        files = {k: open(p, "w", buffering=1 << 20) for k, p in tmps.items()}
        conv = {"logfmt": to_logfmt, "syslog": to_syslog, "csv": to_csv}
        with open(app, "rb", buffering=1 << 20) as f:
            for line in f:
                rec = json.loads(line)
                for k, fh in files.items():
                    fh.write(conv[k](rec) + "\n")
        for k, fh in files.items():
            fh.close()
            tmps[k].rename(derived[k])
        log(f"written in {time.time() - t0:.0f} s")
    return {"raw": nginx, "nginx": nginx, "regex": nginx, "json": app, **derived}


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 20), b""))


def parser_config(parser: str) -> dict:
    if parser == "regex":
        return {"type": "regex", "regex": COMBINED_REGEX}
    if parser == "csv":
        return {"type": "csv", "csv_schema": CSV_SCHEMA}
    return {"type": parser}


# ----------------------------------------------------------------------------- lograft phases

def create_runner(node: e2e.Node, body: dict) -> None:
    status, resp, _ = e2e.http("POST", node.base + "/api/v1/runners", body)
    if status != 201:
        raise BenchError(f"creating runner {body['name']} -> HTTP {status}: {resp}")


def runner_status(node: e2e.Node, name: str) -> dict | None:
    status, body, _ = node.get(f"/api/v1/runners/{name}")
    if status == 200 and isinstance(body, dict):
        return body.get("status", body)
    return None


def make_sampler(node: e2e.Node):
    peak = {"rss_max_kb": 0}

    def sampler():
        peak["rss_max_kb"] = max(peak["rss_max_kb"], node.rss_kb())
    return sampler, peak


def run_parser(parser: str, path: Path, binary: Path, run_dir: Path, args) -> dict:
    lines = count_lines(path)
    node = e2e.Node(binary, run_dir / f"parser-{parser}", [path.parent], args)
    try:
        node.start()
        name = f"p{parser}"
        sampler, _ = make_sampler(node)
        cpu0 = node.cpu()
        t0 = time.monotonic()
        create_runner(node, {"name": name, "reader": {"mode": "file", "log_path": str(path),
                                                      "read_from": "oldest"},
                             "parser": parser_config(parser)})
        log(f"[parser {parser}] runner created on {path.name}; waiting until {lines:,} lines are searchable")
        e2e.wait_searchable(node, {name: lines}, t0, args, sampler)
        wall = time.monotonic() - t0
        cpu = node.cpu() - cpu0
        body, _ = node.search(f"runner:{name}", limit=1)
        res = {"parser": parser, "file": str(path), "lines": lines, "bytes": path.stat().st_size,
               "wall_s": round(wall, 2), "lines_per_s": round(lines / wall, 1),
               "cpu_s": round(cpu, 2), "lines_per_cpu_s": round(lines / cpu, 1) if cpu else None,
               "cpu_s_per_mline": round(cpu / lines * 1e6, 2), "searchable": body.get("total"),
               "sample_hit": (body.get("hits") or [None])[0],
               "peak_rss_mib": round(node.hwm_kb() / 1024, 1),
               "runner_status": runner_status(node, name), "log_problems": node.log_problems()}
        log(f"[parser {parser}] {lines:,} lines in {wall:.1f} s ({lines / wall:,.0f} lines/s), CPU {cpu:.1f} s "
            f"({res['lines_per_cpu_s']:,.0f} lines per CPU-s)")
        return res
    finally:
        node.stop()
        if not args.keep:
            shutil.rmtree(node.data_dir, ignore_errors=True)


def build_bulk_bodies(app: Path, n: int, batch: int, index: str) -> list[bytes]:
    action = json.dumps({"index": {"_index": index}}).encode() + b"\n"
    bodies, cur, count = [], [], 0
    with open(app, "rb", buffering=1 << 20) as f:
        for line in f:
            if count >= n:
                break
            cur.append(action)
            cur.append(line if line.endswith(b"\n") else line + b"\n")
            count += 1
            if len(cur) == 2 * batch:
                bodies.append(b"".join(cur))
                cur = []
    if cur:
        bodies.append(b"".join(cur))
    return bodies


def run_bulk(app: Path, binary: Path, run_dir: Path, args) -> dict:
    name = "bulk"
    log(f"[bulk] building NDJSON bodies ({args.bulk_size} docs each) from {app}")
    bodies = build_bulk_bodies(app, args.bulk_docs, args.bulk_size, name)
    docs = min(args.bulk_docs, count_lines(app))
    payload = sum(len(b) for b in bodies)
    node = e2e.Node(binary, run_dir / "bulk", [app.parent], args)
    try:
        node.start()
        create_runner(node, {"name": name, "reader": {"mode": "bulk"}, "parser": {"type": "json"}})
        time.sleep(0.5)
        errors: list[str] = []
        item_errors = [0]
        next_i = [0]
        lock = threading.Lock()
        post_walls: list[float] = []

        def worker():
            conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=120)
            headers = {"authorization": f"Bearer {e2e.API_TOKEN}", "content-type": "application/x-ndjson"}
            try:
                while True:
                    with lock:
                        i = next_i[0]
                        next_i[0] += 1
                    if i >= len(bodies) or errors:
                        return
                    t = time.perf_counter()
                    try:
                        conn.request("POST", f"/{name}/_bulk", body=bodies[i], headers=headers)
                        resp = conn.getresponse()
                        raw = resp.read()
                    except (OSError, http.client.HTTPException) as err:
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=120)
                        with lock:
                            errors.append(f"request {i}: {err!r}")
                        return
                    w = time.perf_counter() - t
                    with lock:
                        post_walls.append(w)
                    if resp.status != 200:
                        with lock:
                            errors.append(f"request {i}: HTTP {resp.status}: {raw[:300]!r}")
                        return
                    try:
                        out = json.loads(raw)
                    except ValueError:
                        continue
                    if out.get("errors"):
                        bad = sum(1 for it in out.get("items", [])
                                  if any(v.get("status", 200) >= 300 for v in it.values()))
                        with lock:
                            item_errors[0] += bad
            finally:
                conn.close()

        sampler, _ = make_sampler(node)
        cpu0 = node.cpu()
        client0 = os.times()
        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.bulk_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        posted = time.monotonic() - t0
        client1 = os.times()
        if errors:
            raise BenchError(f"_bulk failed: {errors[:3]}")
        log(f"[bulk] {len(bodies)} requests posted in {posted:.1f} s; waiting until {docs:,} docs are searchable")
        e2e.wait_searchable(node, {name: docs}, t0, args, sampler)
        wall = time.monotonic() - t0
        cpu = node.cpu() - cpu0
        body, _ = node.search(f"runner:{name}", limit=1)
        client_cpu = (client1.user - client0.user) + (client1.system - client0.system)
        res = {"docs": docs, "requests": len(bodies), "batch": args.bulk_size, "threads": args.bulk_threads,
               "payload_bytes": payload, "posted_s": round(posted, 2), "wall_s": round(wall, 2),
               "docs_per_s": round(docs / wall, 1), "accepted_docs_per_s": round(docs / posted, 1),
               "request_p50_ms": round(e2e.percentile(post_walls, 50) * 1000, 1),
               "request_p99_ms": round(e2e.percentile(post_walls, 99) * 1000, 1),
               "cpu_s": round(cpu, 2), "cpu_s_per_mdoc": round(cpu / docs * 1e6, 2),
               "docs_per_cpu_s": round(docs / cpu, 1) if cpu else None,
               "client_cpu_s": round(client_cpu, 2), "item_errors": item_errors[0],
               "searchable": body.get("total"), "peak_rss_mib": round(node.hwm_kb() / 1024, 1),
               "runner_status": runner_status(node, name), "log_problems": node.log_problems()}
        log(f"[bulk] {docs:,} docs searchable in {wall:.1f} s ({docs / wall:,.0f} docs/s; all accepted after "
            f"{posted:.1f} s), lograft CPU {cpu:.1f} s ({res['cpu_s_per_mdoc']:.1f} s per M docs), "
            f"client CPU {client_cpu:.1f} s")
        return res
    finally:
        node.stop()
        if not args.keep:
            shutil.rmtree(node.data_dir, ignore_errors=True)


# ----------------------------------------------------------------------------- rsyslog

def rsyslog_conf(src: Path, work: Path, out: Path) -> str:
    return f"""global(workDirectory="{work}")
module(load="imfile" mode="inotify")
template(name="line" type="string" string="%msg%\\n")
ruleset(name="bench") {{
  action(type="omfile" file="{out}" template="line"
         queue.type="LinkedList" queue.filename="q" queue.saveOnShutdown="on")
}}
input(type="imfile" file="{src}" tag="nginx" ruleset="bench" freshStartTail="off")
"""


def run_rsyslog(src: Path, run_dir: Path, args) -> dict:
    rsyslogd = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
    if not rsyslogd:
        return {"skipped": "rsyslogd not found (apt-get install -y rsyslog)"}
    version = subprocess.run([rsyslogd, "-v"], capture_output=True, text=True).stdout.splitlines()
    lines = count_lines(src)
    base = Path(tempfile.mkdtemp(prefix="rsyslog-", dir=run_dir))
    work = base / "work"
    work.mkdir()
    out = base / "out.log"
    conf = base / "rsyslog.conf"
    conf.write_text(rsyslog_conf(src, work, out))
    check = subprocess.run([rsyslogd, "-N1", "-f", str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        return {"skipped": f"rsyslogd -N1 rejected the config: {(check.stderr or check.stdout)[-500:]}"}
    logf = open(base / "rsyslogd.log", "w")
    t0 = time.monotonic()
    proc = subprocess.Popen([rsyslogd, "-n", "-f", str(conf), "-i", str(base / "rsyslogd.pid")],
                            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        cpu0 = 0.0  # a new process: all of its CPU belongs to the measurement
        seen, offset, last_change = 0, 0, time.monotonic()
        hwm = 0
        while seen < lines:
            if proc.poll() is not None:
                raise BenchError(f"rsyslogd exited with {proc.returncode}; see {base / 'rsyslogd.log'}")
            now = time.monotonic()
            if now - t0 > args.ingest_timeout or now - last_change > args.stall_timeout:
                raise BenchError(f"rsyslog stalled or timed out at {seen:,} of {lines:,} lines")
            try:
                with open(out, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
            except FileNotFoundError:
                chunk = b""
            if chunk:
                seen += chunk.count(b"\n")
                offset += len(chunk)
                last_change = time.monotonic()
            hwm = max(hwm, e2e.proc_status_kb(proc.pid, "VmRSS"))
            if seen < lines:
                time.sleep(args.poll_fast if seen >= 0.9 * lines else args.poll_slow)
        wall = time.monotonic() - t0
        cpu = e2e.proc_cpu_seconds(proc.pid) - cpu0
        hwm = max(hwm, e2e.proc_status_kb(proc.pid, "VmHWM"))
    finally:
        e2e.stop_proc(proc)
        logf.close()
    res = {"version": version[0].replace(" compiled with:", "").strip() if version else "?", "lines": lines, "out_lines": seen,
           "out_bytes": offset, "in_bytes": src.stat().st_size, "wall_s": round(wall, 2),
           "lines_per_s": round(lines / wall, 1), "cpu_s": round(cpu, 2),
           "lines_per_cpu_s": round(lines / cpu, 1) if cpu else None,
           "cpu_s_per_mline": round(cpu / lines * 1e6, 2), "peak_rss_mib": round(hwm / 1024, 1),
           "identical": offset == src.stat().st_size, "dir": str(base)}
    log(f"[rsyslog] {lines:,} lines written in {wall:.1f} s ({lines / wall:,.0f} lines/s), CPU {cpu:.1f} s, "
        f"output {'identical size' if res['identical'] else 'size differs'}")
    if not args.keep:
        for p in (out,):
            p.unlink(missing_ok=True)
    return res


# ----------------------------------------------------------------------------- report

def report(res: dict) -> str:
    out = [f"# lograft ingest benchmark {res['stamp']}", "",
           f"binary `{res['binary']}`, {res['cores']} cores, load average at start {res['loadavg']}", ""]
    parsers = res.get("parsers") or []
    if parsers:
        out += ["## Parse throughput (fresh node per parser, file runner, until all lines are searchable)", ""]
        rows = []
        for p in parsers:
            if "error" in p:
                rows.append([p["parser"], "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "FAILED: " + p["error"][:160].replace("|", "\\|")])
                continue
            ok = "OK" if p["searchable"] == p["lines"] else f"MISMATCH ({p['searchable']:,})"
            rows.append([p["parser"], Path(p["file"]).name, fmt(p["lines"]), fmt(p["bytes"] / MiB),
                         fmt(p["wall_s"]), fmt(p["lines_per_s"], 0), fmt(p["cpu_s"]),
                         fmt(p["lines_per_cpu_s"], 0), fmt(p["cpu_s_per_mline"]), fmt(p["peak_rss_mib"], 0),
                         fmt((p.get("runner_status") or {}).get("parse_errors")), ok])
        out.append(md_table(["parser", "file", "lines", "MiB", "wall s", "lines/s", "CPU s",
                             "lines/s per core", "CPU s / M lines", "peak RSS MiB", "parse errors", "count"], rows))
        out += ["", "lines/s per core = lines ÷ lograft CPU seconds (utime+stime of the whole process: "
                "tailer, parser, queue, indexer, HTTP), so it is the end-to-end cost per line, not the parser "
                "alone.", ""]
    b = res.get("bulk")
    if b and "error" in b:
        out += ["## `_bulk` ingest", "", f"FAILED: {b['error']}", ""]
        b = None
    if b:
        out += ["## `_bulk` ingest (app.jsonl documents, local stdlib client)", ""]
        ok = "OK" if b["searchable"] == b["docs"] else f"MISMATCH ({b['searchable']:,})"
        out.append(md_table(
            ["docs", "batch", "threads", "MiB posted", "all accepted s", "searchable s", "docs/s",
             "request p50/p99 ms", "lograft CPU s", "CPU s / M docs", "docs/s per core", "client CPU s",
             "item errors", "count"],
            [[fmt(b["docs"]), b["batch"], b["threads"], fmt(b["payload_bytes"] / MiB), fmt(b["posted_s"]),
              fmt(b["wall_s"]), fmt(b["docs_per_s"], 0),
              f"{fmt(b['request_p50_ms'])} / {fmt(b['request_p99_ms'])}", fmt(b["cpu_s"]),
              fmt(b["cpu_s_per_mdoc"]), fmt(b["docs_per_cpu_s"], 0), fmt(b["client_cpu_s"]),
              b["item_errors"], ok]]))
        out += ["", "The client runs on the same 2 cores, so its CPU competes with the node's; docs/s counts "
                "from the first request until the last document is searchable.", ""]
    r = res.get("rsyslog")
    if r:
        out += ["## rsyslog comparison (nginx.log, file tail → output)", ""]
        if "skipped" in r:
            out += [f"rsyslog skipped: {r['skipped']}", ""]
        else:
            raw = next((p for p in parsers if p["parser"] == "raw" and "error" not in p), None)
            rows = [["rsyslog imfile → omfile (LinkedList DA queue)", fmt(r["lines"]), fmt(r["wall_s"]),
                     fmt(r["lines_per_s"], 0), fmt(r["cpu_s"]), fmt(r["cpu_s_per_mline"]),
                     fmt(r["peak_rss_mib"], 0), "1", "1"]]
            if raw:
                rows.append(["lograft raw parser (tail, parse, queue, index)", fmt(raw["lines"]),
                             fmt(raw["wall_s"]), fmt(raw["lines_per_s"], 0), fmt(raw["cpu_s"]),
                             fmt(raw["cpu_s_per_mline"]), fmt(raw["peak_rss_mib"], 0),
                             fmt(raw["cpu_s_per_mline"] / r["cpu_s_per_mline"], 2) if r["cpu_s"] else "-",
                             fmt(raw["wall_s"] / r["wall_s"], 2)])
            out.append(md_table(["program", "lines", "wall s", "lines/s", "CPU s", "CPU s / M lines",
                                 "peak RSS MiB", "CPU/line ratio", "wall ratio"], rows))
            out += ["", f"{r['version']}. rsyslog only moves the lines into a file (no parsing, no index, no "
                    "search); lograft also indexes every line and makes it searchable, so the ratios are the "
                    "price of the index, not a like-for-like comparison. Output "
                    f"{'byte-identical in size to the input' if r['identical'] else 'differs in size from the input'}"
                    f" ({fmt(r['out_bytes'])} vs {fmt(r['in_bytes'])} bytes).", ""]
    probs = {k: v["log_problems"]["counts"] for k, v in
             [(p["parser"], p) for p in parsers if "log_problems" in p] + ([("bulk", b)] if b else [])}
    if any(c["ERROR"] or c["WARN"] for c in probs.values()):
        out += ["## lograft log problems", ""]
        out.append(md_table(["node", "ERROR", "WARN"], [[k, c["ERROR"], c["WARN"]] for k, c in probs.items()]))
        out.append("")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gen", default=str(e2e.REPO.parent / "shared" / "bench" / "gen_logs.py"),
                    help="workload generator (default: ../shared/bench/gen_logs.py from the repo root)")
    ap.add_argument("--workdir", default="/tmp/lograft-bench", help="cache of data, runs and results")
    ap.add_argument("--nginx", type=int, default=2_000_000, help="workload to take the inputs from")
    ap.add_argument("--app", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build --release")
    ap.add_argument("--binary", help="lograft binary to measure (implies --no-build)")
    ap.add_argument("--keep", action="store_true", help="keep the nodes' data dirs and rsyslog's output")
    ap.add_argument("--phases", default="parsers,bulk,rsyslog", help="comma list: parsers, bulk, rsyslog")
    ap.add_argument("--parsers", default=",".join(PARSERS), help="comma list of parsers to measure")
    ap.add_argument("--parse-lines", type=int, default=1_000_000,
                    help="lines per parser input (the first N of nginx.log / app.jsonl; also rsyslog's input)")
    ap.add_argument("--bulk-docs", type=int, default=1_000_000, help="app.jsonl documents to post")
    ap.add_argument("--bulk-size", type=int, default=1000, help="documents per _bulk request")
    ap.add_argument("--bulk-threads", type=int, default=2, help="client threads (keep-alive connection each)")
    ap.add_argument("--skip-rsyslog", action="store_true", help="skip the rsyslog comparison")
    ap.add_argument("--writer-memory", default="256MiB")
    ap.add_argument("--commit-interval", default="1s")
    ap.add_argument("--queue-max", default="64MiB")
    ap.add_argument("--ingest-timeout", type=float, default=3600, help="seconds per phase")
    ap.add_argument("--stall-timeout", type=float, default=180, help="abort when the count does not move for this long")
    ap.add_argument("--poll-slow", type=float, default=0.5, help="poll period (s) below 90%%")
    ap.add_argument("--poll-fast", type=float, default=0.05, help="poll period (s) above 90%%")
    args = ap.parse_args()
    if args.binary:
        args.no_build = True
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    for p in phases:
        if p not in ("parsers", "bulk", "rsyslog"):
            ap.error(f"unknown phase {p!r}")
    parsers = [p.strip() for p in args.parsers.split(",") if p.strip()]
    for p in parsers:
        if p not in PARSERS:
            ap.error(f"unknown parser {p!r}")
    if args.skip_rsyslog and "rsyslog" in phases:
        phases.remove("rsyslog")

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(args.workdir).resolve()
    args.workdir = str(workdir)
    run_dir = workdir / "runs" / f"ingest-{stamp}"
    run_dir.mkdir(parents=True)
    res: dict = {"stamp": stamp, "args": vars(args), "cores": os.cpu_count(),
                 "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    try:
        binary = e2e.build_lograft(args)
        res["binary"] = str(binary)
        data, _manifest, _extra = e2e.ensure_workload(args)
        inputs = ensure_inputs(data, args.parse_lines)
        if "parsers" in phases:
            res["parsers"] = []
            for p in parsers:
                try:
                    res["parsers"].append(run_parser(p, inputs[p], binary, run_dir, args))
                except BenchError as err:  # one parser failing must not lose the others
                    log(f"[parser {p}] FAILED: {err}")
                    res["parsers"].append({"parser": p, "error": str(err)})
        if "bulk" in phases:
            try:
                res["bulk"] = run_bulk(inputs["json"], binary, run_dir, args)
            except BenchError as err:
                log(f"[bulk] FAILED: {err}")
                res["bulk"] = {"error": str(err)}
        if "rsyslog" in phases:
            try:
                res["rsyslog"] = run_rsyslog(inputs["raw"], run_dir, args)
            except (BenchError, OSError) as err:
                log(f"[rsyslog] failed: {err}")
                res["rsyslog"] = {"skipped": f"failed: {err}"}
    except BenchError as err:
        log(f"FAILED: {err}")
        res["error"] = str(err)
    md = report(res)
    (workdir / f"ingest-results-{stamp}.json").write_text(json.dumps(res, indent=2, default=str))
    (workdir / f"ingest-results-{stamp}.md").write_text(md + "\n")
    print()
    print(md)
    log(f"results: {workdir / f'ingest-results-{stamp}.json'} and .md")
    return 1 if "error" in res else 0


if __name__ == "__main__":
    sys.exit(main())
