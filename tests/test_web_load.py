"""Load test of `matcalc serve`, on loopback only and bounded in count and time:
20 concurrent clients send 1,000 requests mixing good ones (the gallery's
examples, some with the check), bad ones (syntax and name errors, malformed
JSON, unknown fields, oversized bodies) and runaways (a derivation far past the
time limit).  Every good request must be answered with the right derivation,
every bad one with a 4xx, every runaway with the limit's error, and the
server's memory (its process and its workers) must stay bounded.  The p50/p95
latencies of the good requests are printed (README: "Web page")."""
from __future__ import annotations

import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from matcalc.web import service

from .test_web import EXAMPLES, RUNAWAY, post, running_server

CLIENTS, REQUESTS = 20, 1_000
TIME_LIMIT = 5.0                  # seconds per derivation: 10x the slowest good one's CPU time
RUNAWAY_EVERY = 100               # 10 runaways, each holding a worker for TIME_LIMIT
WALL = 300.0                      # the whole run must end within this (about 60 s on an idle 2-core machine)
MEMORY_BOUND = 1_500 * 2**20      # bytes of resident memory: the server and every worker together

BAD = [
    ({"expr": "x'*A*y + ", "wrt": ["x"]}, None),
    ({"expr": "tarce(X)", "wrt": ["X"]}, None),
    ({"expr": "x'*A*x", "wrt": ["z"]}, None),
    ({"expr": "x'*A*x", "wrt": ["x"], "let": ["A: matrx(n)"]}, None),
    ({"expr": "x'*A*x", "wrt": ["x"], "format": "numpy"}, None),
    ({"expr": "A*B", "wrt": ["A"]}, None),                         # grad of a matrix
    (None, b"{not json"),
    (None, b"[" * 10_000),
    (None, b"x" * (300 * 1024)),                                 # over the body limit: 413
]


def _resident_bytes(root: int) -> int:
    """Resident memory of a process and its descendants, from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    family, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        family.update(children)
        frontier += children
    total = 0
    for pid in family:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            pass
    return total


def _workload() -> list[tuple[str, object, bytes | None, object]]:
    """(kind, body, raw bytes, expected) for every request, in a fixed random order."""
    rng = random.Random(15)
    good = []
    for example in EXAMPLES:
        for check in (False, True):
            body = {k: example[k] for k in ("command", "expr", "wrt", "let")} | {"check": check}
            status, out = service.answer(body)
            assert status == 200
            good.append((body, out["formats"]["text"]))
    plan = []
    for i in range(REQUESTS):
        roll = rng.random()
        if i % RUNAWAY_EVERY == RUNAWAY_EVERY // 2:
            plan.append(("runaway", RUNAWAY, None, None))
        elif roll < 0.2:
            body, raw = rng.choice(BAD)
            plan.append(("bad", body, raw, None))
        else:
            body, text = rng.choice(good)
            plan.append(("good", body, None, text))
    return plan


def test_twenty_clients_a_thousand_requests():
    plan = _workload()
    with running_server(time_limit=TIME_LIMIT) as (base, proc):
        post(base, {"expr": "x'*A*x", "wrt": ["x"]})            # warm
        baseline = _resident_bytes(proc.pid)
        peak, stop = [baseline], threading.Event()

        def sample():
            while not stop.wait(0.25):
                peak.append(_resident_bytes(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.monotonic()
        failures, latencies = [], {"good": [], "bad": [], "runaway": []}

        def one(item):
            kind, body, raw, want = item
            if time.monotonic() - start > WALL:
                failures.append(("not sent: the run is over its time", kind))
                return
            t = time.monotonic()
            try:
                status, out = post(base, body, raw=raw, timeout=60)
            except Exception as exc:  # a failed request of any kind is a failure of the test
                failures.append((kind, repr(exc)))
                return
            latencies[kind].append(time.monotonic() - t)
            if kind == "good" and (status != 200 or out["formats"]["text"] != want):
                failures.append((kind, status, json.dumps(out)[:300]))
            elif kind == "bad" and not 400 <= status < 500:
                failures.append((kind, status, json.dumps(out)[:300]))
            elif kind == "runaway" and (status != 400 or out["error"]["kind"] != "limit exceeded"):
                failures.append((kind, status, json.dumps(out)[:300]))

        with ThreadPoolExecutor(CLIENTS) as clients:
            list(clients.map(one, plan))
        wall = time.monotonic() - start
        stop.set()
        sampler.join()
        after = _resident_bytes(proc.pid)
        assert proc.poll() is None, "the server died"

    assert not failures, failures[:5]
    assert sum(len(v) for v in latencies.values()) == REQUESTS
    good = sorted(latencies["good"])
    p50, p95 = good[len(good) // 2], good[int(len(good) * 0.95)]
    print(f"\nload: {REQUESTS} requests ({len(good)} good, {len(latencies['bad'])} bad, "
          f"{len(latencies['runaway'])} runaway) from {CLIENTS} clients in {wall:.1f} s; "
          f"good p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms; memory {baseline / 2**20:.0f} MiB at start, "
          f"peak {max(peak) / 2**20:.0f} MiB, {after / 2**20:.0f} MiB after")
    assert max(peak) < MEMORY_BOUND
    assert wall < WALL
