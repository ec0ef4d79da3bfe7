#!/usr/bin/env python3
"""What huge statements on some sessions cost everyone else (SPEC S5).

One client runs `SELECT 1` in a loop through a protected tombstone while
0, 1 and 4 other sessions keep sending a statement with a 100,000-element
`IN` list on a protected table (about 700 kB: never cached, parsed and
rewritten every time on tombstone's parser pool). Reports the `SELECT 1`
client's latency (p50, p99, max) per load, and how much p99 grew over the
unloaded run. The same load straight against PostgreSQL (no proxy) is
the reference: on a small machine PostgreSQL's own parsing and planning of
those statements competes for the CPU too. To see tombstone's share alone,
a third load sends the same statements with a call tombstone refuses
(`query_to_xml`): tombstone parses and walks all of it, PostgreSQL only
runs the one-line refusal. Cells are interleaved and repeated (--rounds);
each figure is the median over rounds, so noise from other work on the
machine hits every cell alike; the load average is recorded. It reports;
it never asserts.

    bench/stall.py [--duration S] [--rounds N] [--elements N]

Needs a release build (cargo build --release), psql, psycopg, and a
PostgreSQL superuser at $TOMBSTONE_TEST_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/postgres). Writes
bench/results/stall-<date>.md and .json.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ROOT, Server, log, start_tombstone  # noqa: E402


def huge_statement(elements, salt, refused):
    ids = ", ".join(str(salt + i) for i in range(elements))
    tail = " AND query_to_xml('SELECT 1', true, false, '') IS NOT NULL" if refused else ""
    return f"SELECT count(*) FROM items WHERE id IN ({ids}){tail}"


def loader(url, elements, refused, stop, counts, index):
    with psycopg.connect(url, autocommit=True) as c:
        salt = 0
        while not stop.is_set():
            try:
                c.execute(huge_statement(elements, salt % 7, refused)).fetchone()
            except psycopg.errors.InsufficientPrivilege:
                pass
            salt += 1
            counts[index] += 1


def probe(url, duration):
    latencies = []
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as c:
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            c.execute("SELECT 1").fetchone()
            latencies.append((time.perf_counter() - t0) * 1000.0)
            time.sleep(0.002)
    latencies.sort()
    return {
        "samples": len(latencies),
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 3),
        "max_ms": round(latencies[-1], 3),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=20, help="seconds per load level")
    ap.add_argument("--elements", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3, help="repeats of every cell (median)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    server = Server(os.environ.get("TOMBSTONE_TEST_DATABASE_URL",
                                   "postgres://postgres@127.0.0.1:5432/postgres"))
    db = f"tombstone_bench_stall_{os.getpid()}"
    workdir = tempfile.mkdtemp(prefix="tombstone-stall-")
    binary = os.path.join(ROOT, "target", "release", "tombstone")
    started = datetime.datetime.now(datetime.timezone.utc)
    proxy = None
    results = []
    try:
        server.psql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        server.psql("postgres", f'CREATE DATABASE "{db}"')
        server.psql(db, "CREATE TABLE items (id bigint PRIMARY KEY, deleted_at timestamptz); "
                        "INSERT INTO items SELECT g, NULL FROM generate_series(1, 1000) g")
        subprocess.run([binary, "migrate", "--apply", "--database-url", server.url(db)],
                       check=True, stdout=subprocess.DEVNULL)
        proxy = start_tombstone("tombstone-stall", server, db, workdir, protected=True)
        through = server.url(db, port=proxy.port)
        targets = [("direct", server.url(db), False), ("tombstone", through, False),
                   ("tombstone, refused", through, True)]
        cells = [(t, n) for _ in range(args.rounds) for t in targets for n in (0, 1, 4)]
        for (target, url, refused), sessions in cells:
            stop = threading.Event()
            counts = [0] * sessions
            threads = [threading.Thread(target=loader, args=(url, args.elements, refused, stop, counts, i))
                       for i in range(sessions)]
            for t in threads:
                t.start()
            time.sleep(1.0 if sessions else 0.0)
            row = probe(url, args.duration)
            stop.set()
            for t in threads:
                t.join()
            row["target"] = target
            row["huge_sessions"] = sessions
            row["huge_statements"] = sum(counts)
            results.append(row)
            log(f"{target}, {sessions} huge sessions: {row}")
    finally:
        if proxy:
            proxy.stop()
        server.psql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    rounds = results
    results = []
    for target in dict.fromkeys(r["target"] for r in rounds):
        for sessions in (0, 1, 4):
            runs = [r for r in rounds if r["target"] == target and r["huge_sessions"] == sessions]
            cell = {"target": target, "huge_sessions": sessions}
            for k in ("samples", "huge_statements"):
                cell[k] = sum(r[k] for r in runs)
            for k in ("p50_ms", "p99_ms", "max_ms"):
                cell[k] = round(statistics.median(r[k] for r in runs), 3)
            cell["p99_rounds_ms"] = [r["p99_ms"] for r in runs]
            results.append(cell)
    for r in results:
        base = next(b["p99_ms"] for b in results
                    if b["target"] == r["target"] and b["huge_sessions"] == 0)
        r["p99_added_ms"] = round(r["p99_ms"] - base, 3)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    meta = {
        "command": " ".join(["bench/stall.py"] + sys.argv[1:]),
        "started": started.isoformat(timespec="seconds"),
        "commit": commit,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "postgres": server.version(),
        "duration_s": args.duration,
        "rounds": args.rounds,
        "load_average_at_end": os.getloadavg(),
        "elements": args.elements,
    }
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"stall-{started.date().isoformat()}")
    with open(stem + ".json", "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
    with open(stem + ".md", "w") as f:
        f.write("# Huge statements vs. everyone else's `SELECT 1`\n\n")
        f.write(f"`{meta['command']}` — commit {commit}, {meta['machine']}, "
                f"PostgreSQL {meta['postgres']}, {args.duration} s per cell, "
                f"median of {args.rounds} interleaved rounds (load average at the end "
                f"{', '.join(f'{x:.2f}' for x in meta['load_average_at_end'])}), "
                f"{args.elements:,}-element `IN` lists on a protected table.\n\n")
        f.write("| target | huge sessions | huge statements done | SELECT 1 samples | p50 ms | p99 ms | max ms | p99 added ms | p99 per round |\n")
        f.write("|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
        for r in results:
            f.write(f"| {r['target']} | {r['huge_sessions']} | {r['huge_statements']} | {r['samples']} | {r['p50_ms']} "
                    f"| {r['p99_ms']} | {r['max_ms']} | {r['p99_added_ms']} | {r['p99_rounds_ms']} |\n")
    log(f"wrote {stem}.md")


if __name__ == "__main__":
    main()
