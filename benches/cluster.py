#!/usr/bin/env python3
"""Config write latency and throughput on a 3-node loopback cluster (Raft, fsync on).

Starts three `lograft serve` processes on loopback ports (fresh temp data dirs), joins them,
then measures runner-config writes (POST /api/v1/runners, an http-mode runner: a Raft entry
replicated to a majority and fsynced before the answer):

  * sequential writes sent to the leader, and to a follower (forwarded to the leader);
  * throughput with several concurrent writers spread over the three nodes;
  * the same sequential writes on a one-node cluster, for comparison.

Python 3.11 standard library only. It measures, it asserts nothing. Usage:

    python3 benches/cluster.py [--binary target/release/lograft] [--writes 300] [--writers 8]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, binary: str, root: Path, name: str, join: "Node | None", secret: str = ""):
        self.binary, self.name, self.port = binary, name, free_port()
        self.root = root / name
        (self.root / "logs").mkdir(parents=True)
        cluster = "[cluster]\nheartbeat_interval = \"1s\"\n"
        if join:
            cluster += f'join = "{join.url}"\njoin_token = "{secret}"\n'
        (self.root / "node.toml").write_text(
            f'data_dir = "{self.root / "data"}"\nlisten = "127.0.0.1:{self.port}"\n'
            f'node_name = "{name}"\n[collect]\nallowed_paths = ["{self.root / "logs"}/**"]\n'
            f"default_runner = false\n{cluster}"
        )
        self.token = join.token if join else ""
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if not self.token:
            self.token = subprocess.check_output(
                [self.binary, "token", "create", "--name", "bench", "--role", "admin",
                 "--config", str(self.root / "node.toml")], text=True).strip()
        log = open(self.root / "node.log", "ab")
        self.proc = subprocess.Popen([self.binary, "serve", "--config", str(self.root / "node.toml")],
                                     stdout=log, stderr=log)

    def call(self, method: str, path: str, body: dict | None = None, conn=None):
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        payload = json.dumps(body) if body is not None else None
        conn.request(method, path, body=payload, headers={"Authorization": f"Bearer {self.token}"})
        response = conn.getresponse()
        data = response.read()
        if own:
            conn.close()
        return response.status, (json.loads(data) if data else None)

    def wait_members(self, n: int) -> dict:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                status, value = self.call("GET", "/api/v1/cluster/nodes")
                if status == 200 and len(value["nodes"]) == n and value["leader"]:
                    return value
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{self.name} did not see {n} members; see {self.root / 'node.log'}")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def runner(name: str) -> dict:
    return {"name": name, "reader": {"mode": "http"}, "parser": {"type": "raw"}}


def sequential(node: Node, prefix: str, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    latencies = []
    for i in range(n):
        start = time.perf_counter()
        status, value = node.call("POST", "/api/v1/runners", runner(f"{prefix}{i}"), conn)
        latencies.append((time.perf_counter() - start) * 1000)
        if status != 201:
            raise SystemExit(f"write failed: {status} {value}")
    conn.close()
    return latencies


def concurrent(nodes: list[Node], writers: int, per_writer: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()

    def work(w: int) -> None:
        node = nodes[w % len(nodes)]
        mine = sequential(node, f"c{w}-", per_writer)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return writers * per_writer / (time.perf_counter() - start), latencies


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def report(label: str, latencies: list[float]) -> None:
    print(f"{label:<44} n={len(latencies):<5} p50 {pct(latencies, 0.5):7.2f} ms   "
          f"p99 {pct(latencies, 0.99):7.2f} ms   mean {statistics.mean(latencies):7.2f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=str(REPO / "target/release/lograft"))
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--writers", type=int, default=8)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lograft-cluster-bench-"))
    nodes: list[Node] = []
    try:
        single = Node(args.binary, root, "solo", None)
        single.start()
        single.wait_members(1)
        report("1 node: sequential writes", sequential(single, "s", args.writes))
        single.stop()

        first = Node(args.binary, root, "n1", None)
        first.start()
        first.wait_members(1)
        secret = subprocess.check_output(
            [args.binary, "cluster", "token", "--url", first.url, "--token", first.token], text=True).strip()
        nodes = [first] + [Node(args.binary, root, f"n{i}", first, secret) for i in (2, 3)]
        for node in nodes[1:]:
            node.start()
        for node in nodes:
            node.wait_members(3)
        view = first.call("GET", "/api/v1/cluster/nodes")[1]
        leader = next(n for n in nodes if n.name == view["leader"])
        follower = next(n for n in nodes if n is not leader)
        report("3 nodes: sequential writes to the leader", sequential(leader, "l", args.writes))
        report("3 nodes: sequential writes to a follower", sequential(follower, "f", args.writes))
        per_writer = max(1, args.writes // args.writers)
        rate, latencies = concurrent(nodes, args.writers, per_writer)
        report(f"3 nodes: {args.writers} concurrent writers", latencies)
        print(f"3 nodes: throughput with {args.writers} writers: {rate:.0f} writes/s", flush=True)
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
