#!/usr/bin/env python3
"""Search latency across nodes: a 3-node cluster on loopback vs 1 node holding the same data.

The shared workload (../shared/bench/gen_logs.py, nginx lines) is indexed once by a single node
and once by a 3-node cluster (line i goes to node i % 3). Then the same queries run against
both -- hits, a second page by cursor, histogram, top values (exact across nodes: two phases),
numeric stats and fields -- and the wall time of each HTTP call is recorded. The report gives
p50/p99 per query type for both set-ups and their ratio, and checks that both answered the same
counts (a mismatch is printed, never fatal).

On one machine the three nodes share its cores, so this measures the cost of the fan-out and the
merge (HTTP, JSON, the extra phase of top values), not the speed-up a real cluster gets from
searching three disks with three CPUs.

Python 3.11 standard library only. See benches/README.md ("Search across nodes").

  python3 benches/fanout.py --nginx 300000              # release build (built unless --no-build)
  python3 benches/fanout.py --nginx 30000 --binary target/debug/lograft --reps 10   # quick check
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NEEDLE_IP = "203.0.113.77"


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, token: str = "", body: dict | None = None, timeout: float = 120.0):
    """(status, parsed JSON or text, wall seconds)."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    wall = time.perf_counter() - t0
    try:
        return status, json.loads(raw), wall
    except ValueError:
        return status, raw.decode(errors="replace"), wall


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def md_table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


# ----------------------------------------------------------------------------- nodes

class Node:
    def __init__(self, binary: Path, root: Path, name: str, join: "Node | None" = None):
        self.binary, self.root, self.name = binary, root, name
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.token = ""
        cluster = f'[cluster]\ntag = "bench"\n'
        if join is not None:
            secret = subprocess.run(
                [str(binary), "cluster", "token", "--url", join.base, "--token", join.token],
                check=True, capture_output=True, text=True).stdout.strip()
            cluster += f'join = "{join.base}"\njoin_token = "{secret}"\n'
            self.token = join.token  # users and tokens are the cluster's
        self.config = root / "node.toml"
        self.config.write_text(f"""data_dir = {json.dumps(str(root / "data"))}
listen = "127.0.0.1:{self.port}"
node_name = "{name}"
[collect]
allowed_paths = [{json.dumps(str(self.logs) + "/**")}]
default_runner = false
[index]
retention_days = 0
{cluster}""")

    def start(self) -> None:
        if not self.token:
            self.token = subprocess.run(
                [str(self.binary), "token", "create", "--name", "bench", "--role", "admin",
                 "--config", str(self.config)],
                check=True, capture_output=True, text=True).stdout.strip()
        self.logf = open(self.root / "lograft.log", "w")
        env = dict(os.environ)
        env.setdefault("LOGRAFT_LOG", "warn")
        self.proc = subprocess.Popen([str(self.binary), "serve", "--config", str(self.config)],
                                     stdout=self.logf, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        self.wait("/health", lambda s, _: s == 200, "health")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def get(self, path: str, params: dict | None = None):
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        return http("GET", url, self.token)

    def wait(self, path: str, ok, what: str, timeout: float = 600.0, params=None) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited ({self.proc.returncode}); see {self.root}/lograft.log")
            try:
                status, body, _ = self.get(path, params)
                if ok(status, body):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError(f"{self.name}: timed out waiting for {what}")

    def add_runner(self, path: Path) -> None:
        runner = {"name": "nginx", "reader": {"mode": "tailx", "log_path": str(path), "read_from": "oldest"},
                  "parser": {"type": "nginx"}}
        status, body, _ = http("POST", self.base + "/api/v1/runners", self.token, runner)
        if status != 201:
            raise BenchError(f"{self.name}: creating the runner: {status} {body}")


def setup(binary: Path, run: Path, names: list[str], files: list[Path], lines: list[int]) -> list[Node]:
    nodes: list[Node] = []
    for name in names:
        node = Node(binary, run / name, name, nodes[0] if nodes else None)
        node.start()
        nodes.append(node)
    for node in nodes:
        node.wait("/api/v1/cluster/nodes",
                  lambda s, b: s == 200 and len(b.get("nodes", [])) == len(names) and isinstance(b.get("leader"), str),
                  "cluster members")
    t0 = time.time()
    for node, file, count in zip(nodes, files, lines):
        target = node.logs / "nginx.log"
        shutil.copyfile(file, target)
        node.add_runner(target)
    for node, count in zip(nodes, lines):
        node.wait("/api/v1/search", lambda s, b: s == 200 and b.get("total", 0) >= count,
                  f"{count} lines indexed", params={"q": "runner:nginx", "limit": 1, "nodes": node.name})
    log(f"{len(names)}-node set-up: {sum(lines):,} lines indexed in {time.time() - t0:.1f} s")
    return nodes


# ----------------------------------------------------------------------------- queries

def queries() -> list[dict]:
    return [
        {"name": "search: rare phrase (needle IP)", "path": "/api/v1/search",
         "params": {"q": f'"{NEEDLE_IP}"', "limit": 100}, "count": "total"},
        {"name": "search: common term, newest 100", "path": "/api/v1/search",
         "params": {"q": "GET", "limit": 100}, "count": "total"},
        {"name": "search: next page by cursor", "path": "/api/v1/search",
         "params": {"q": "GET", "limit": 100}, "count": "total", "second_page": True},
        {"name": "histogram: common term", "path": "/api/v1/histogram",
         "params": {"q": "GET"}, "count": "total"},
        {"name": "top 10: fields.status", "path": "/api/v1/top",
         "params": {"field": "fields.status", "size": 10}, "count": "top"},
        {"name": "top 10: fields.remote_addr", "path": "/api/v1/top",
         "params": {"field": "fields.remote_addr", "size": 10}, "count": "top"},
        {"name": "stats: fields.body_bytes_sent", "path": "/api/v1/stats",
         "params": {"field": "fields.body_bytes_sent", "q": "runner:nginx"}, "count": "count"},
        {"name": "fields", "path": "/api/v1/fields", "params": {"q": "GET"}, "count": "names"},
    ]


def answer_of(spec: dict, body) -> str:
    if not isinstance(body, dict):
        return "?"
    if spec["count"] == "top":
        return ",".join(f"{v['value']}={v['count']}" for v in body.get("values", []))
    if spec["count"] == "names":  # the samples differ (newest 1000 per node): compare the names
        return ",".join(sorted(f["name"] for f in body.get("fields", [])))
    return str(body.get(spec["count"]))


def measure(node: Node, spec: dict, reps: int, warmup: int) -> tuple[list[float], str]:
    params = dict(spec["params"])
    if spec.get("second_page"):
        status, first, _ = node.get(spec["path"], params)
        if status != 200 or not first.get("cursor"):
            raise BenchError(f"{spec['name']}: no first page ({status})")
        params["cursor"] = first["cursor"]
    walls, answer = [], "?"
    for i in range(warmup + reps):
        status, body, wall = node.get(spec["path"], params)
        if status != 200:
            raise BenchError(f"{spec['name']} on {node.name}: {status} {body}")
        failed = body.get("nodes", {}).get("failed") if isinstance(body, dict) else None
        if failed:
            raise BenchError(f"{spec['name']}: nodes failed: {failed}")
        if i >= warmup:
            walls.append(wall * 1000)
        answer = answer_of(spec, body)
    return walls, answer


# ----------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nginx", type=int, default=300_000, help="nginx lines in all (default 300000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--reps", type=int, default=30, help="measured calls per query and set-up")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/lograft-bench")
    ap.add_argument("--gen", default=str(REPO.parent / "shared" / "bench" / "gen_logs.py"))
    ap.add_argument("--binary", help="lograft binary to measure (default: target/release/lograft, built)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the run dirs")
    args = ap.parse_args()

    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = Path(args.binary) if args.binary else target / "release" / "lograft"
    if not args.binary and not args.no_build:
        log("cargo build --release (nice -n 10)")
        if subprocess.run(["nice", "-n", "10", "cargo", "build", "--release"], cwd=REPO).returncode:
            raise BenchError("cargo build --release failed")
    if not binary.exists():
        raise BenchError(f"no lograft binary at {binary}")

    work = Path(args.workdir)
    data = work / "data" / f"fanout-n{args.nginx}-s{args.seed}"
    if not (data / "nginx.log").exists():
        log(f"generating {args.nginx:,} nginx lines into {data}")
        tmp = data.with_name(data.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run([sys.executable, args.gen, str(tmp), "--nginx", str(args.nginx), "--app", "1",
                        "--seed", str(args.seed)], check=True, stdout=subprocess.DEVNULL)
        tmp.rename(data)
    parts = [data / f"nginx.part{k}.log" for k in range(3)]
    if not all(p.exists() for p in parts):
        outs = [open(p, "w") for p in parts]
        with open(data / "nginx.log") as src:
            for i, line in enumerate(src):
                outs[i % 3].write(line)
        for out in outs:
            out.close()
    lines = [sum(1 for _ in open(p)) for p in parts]

    specs = queries()
    results: dict[str, dict[str, tuple[list[float], str]]] = {}
    run = work / "runs" / f"fanout-{time.strftime('%Y%m%d-%H%M%S')}"
    setups = [("1 node", ["solo"], [data / "nginx.log"], [sum(lines)]),
              ("3 nodes", ["a", "b", "c"], parts, lines)]
    for label, names, files, counts in setups:
        nodes = setup(binary, run / label.replace(" ", ""), names, files, counts)
        try:
            results[label] = {}
            for spec in specs:
                results[label][spec["name"]] = measure(nodes[0], spec, args.reps, args.warmup)
        finally:
            for node in reversed(nodes):
                node.stop()
    if not args.keep:
        shutil.rmtree(run, ignore_errors=True)

    rows, mismatches = [], []
    for spec in specs:
        one, one_answer = results["1 node"][spec["name"]]
        three, three_answer = results["3 nodes"][spec["name"]]
        if one_answer != three_answer:
            mismatches.append(f"{spec['name']}: 1 node {one_answer[:120]} vs 3 nodes {three_answer[:120]}")
        p50_1, p99_1, p50_3, p99_3 = (percentile(one, 50), percentile(one, 99),
                                      percentile(three, 50), percentile(three, 99))
        rows.append([spec["name"], f"{p50_1:.1f}", f"{p99_1:.1f}", f"{p50_3:.1f}", f"{p99_3:.1f}",
                     f"{p50_3 / p50_1:.2f}x" if p50_1 > 0 else "-"])
    print()
    print(f"Search latency, wall ms of the HTTP call ({args.reps} calls each after {args.warmup} warm-up; "
          f"{sum(lines):,} nginx lines; binary {binary})")
    print()
    print(md_table(["query", "1 node p50", "1 node p99", "3 nodes p50", "3 nodes p99", "p50 ratio"], rows))
    print()
    if mismatches:
        print("ANSWERS DIFFER between 1 node and 3 nodes:")
        for m in mismatches:
            print("  " + m)
    else:
        print("Both set-ups gave the same counts for every query.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BenchError, subprocess.CalledProcessError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
