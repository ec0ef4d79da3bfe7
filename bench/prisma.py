#!/usr/bin/env python3
"""A Prisma-like workload of distinct statements: tombstone's cold path
(every statement a rewrite-cache miss) against PgBouncer.

Prisma sends each query as its own extended-protocol statement with `$n`
parameters, fully qualified quoted names, and IN lists whose length
follows the data, so a busy application sends many distinct statement
texts. This generates N distinct ones (default 100,000 per round) over the
scenario schema (tests/scenario) — `findMany`-style reads of tasks,
projects, comments and users with a column subset, an `IN ($1, …, $k)`
filter, optional ORDER BY and LIMIT/OFFSET — and runs them once each from
C client processes through PgBouncer (session mode) and through tombstone
protecting the same database (row-level security and all, as `migrate`
installs it), interleaved, every round with statements neither proxy has
seen. Both connect as the benchmark's PostgreSQL user (PgBouncer's auth
file has that one); tombstone rewrites its statements as for any normal
role. Reports statements per second and the ratio tombstone / PgBouncer,
and tombstone's cache counters (every statement should be a miss).

It reports; it never asserts. Results go to bench/results/prisma-<date>.md
and .json.

    python3 bench/prisma.py [--quick] [--statements N] [--clients C] [--rounds R]

Needs what bench/bench.py needs (psql, pgbouncer, psycopg, a release build).
"""

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ROOT, Server, log, start_pgbouncer, start_tombstone  # noqa: E402

BINARY = os.path.join(ROOT, "target", "release", "tombstone")

# Read-only columns of the scenario tables a findMany may select.
TABLES = {
    "tasks": ["id", "project_id", "assignee_id", "title", "done"],
    "projects": ["id", "team_id", "category_id", "owner_id", "name", "created_at"],
    "comments": ["id", "task_id", "author_id", "body"],
    "users": ["id", "email", "name", "created_at", "updated_at"],
}
# The column the IN list filters on, and its parameter type.
KEY = {"tasks": ("id", int), "projects": ("id", int), "comments": ("id", int), "users": ("email", str)}
# A second condition a findMany may add (None: none), and its parameter.
EXTRA = {
    "tasks": [None, ("project_id", 1), ("done", False)],
    "projects": [None, ("team_id", 1), ("category_id", 1)],
    "comments": [None, ("task_id", 1)],
    "users": [None, ("name", "User 1")],
}
ORDERS = [None, "ASC", "DESC", "LIMIT"]
MAX_IN = 150


def shapes():
    """Every (table, column subset, IN length, extra condition, order)
    once, in a fixed pseudo-random order."""
    space = []
    for table, cols in TABLES.items():
        for mask in range(1, 1 << len(cols)):
            for extra in range(len(EXTRA[table])):
                for n in range(1, MAX_IN + 1):
                    for order in range(len(ORDERS)):
                        space.append((table, mask, extra, n, order))
    random.Random(20261202).shuffle(space)
    return space


def statement(shape):
    table, mask, extra, n, order = shape
    cols = [c for i, c in enumerate(TABLES[table]) if mask >> i & 1]
    q = f'"public"."{table}"'
    select = ", ".join(f'{q}."{c}"' for c in cols)
    key, _ = KEY[table]
    where = f'{q}."{key}" IN ({", ".join(["%s"] * n)})'
    if EXTRA[table][extra]:
        where = f'({where} AND {q}."{EXTRA[table][extra][0]}" = %s)'
    sql = f"SELECT {select} FROM {q} WHERE {where}"
    match ORDERS[order]:
        case "ASC" | "DESC" as d:
            sql += f' ORDER BY {q}."id" {d} LIMIT %s OFFSET %s'
        case "LIMIT":
            sql += " LIMIT %s OFFSET %s"
    return sql


def params(shape, rng):
    table, _, extra, n, order = shape
    _, kind = KEY[table]
    if kind is int:
        values = [rng.randint(1, 5000) for _ in range(n)]
    else:
        values = [f"user{rng.randint(1, 200)}@example.com" for _ in range(n)]
    if EXTRA[table][extra]:
        values.append(EXTRA[table][extra][1])
    if ORDERS[order]:
        values += [n, 0]
    return values


def client(args):
    url, chunk, seed = args
    rng = random.Random(seed)
    with psycopg.connect(url, autocommit=True) as c:
        cur = c.cursor()
        start = time.perf_counter()
        for shape in chunk:
            cur.execute(statement(shape), params(shape, rng), prepare=False)
            cur.fetchall()
        return time.perf_counter() - start


def run(url, batch, clients, seed):
    chunks = [batch[i::clients] for i in range(clients)]
    with multiprocessing.Pool(clients) as pool:
        t0 = time.perf_counter()
        pool.map(client, [(url, ch, seed + i) for i, ch in enumerate(chunks)])
        return time.perf_counter() - t0


def load(server, db):
    server.psql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    server.psql("postgres", f'CREATE DATABASE "{db}"')
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "projects=3", server.url(db),
                    "-f", os.path.join(ROOT, "tests/scenario/schema.sql"),
                    "-f", os.path.join(ROOT, "tests/scenario/data.sql")],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([BINARY, "migrate", "--apply", "--database-url", server.url(db)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server.psql(db, "VACUUM ANALYZE")


def cache_counts(log_path):
    """The last cache counters tombstone logged (at shutdown)."""
    try:
        with open(log_path) as f:
            lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in f if "rewrite cache" in line]
        return lines[-1].strip() if lines else None
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run for CI (seconds)")
    ap.add_argument("--statements", type=int, help="distinct statements per round and system")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    n = args.statements or (2000 if args.quick else 100_000)
    rounds = args.rounds or (1 if args.quick else 2)
    space = shapes()
    if n * rounds > len(space):
        sys.exit(f"only {len(space)} distinct statements; ask for fewer")
    server = Server(os.environ.get("TOMBSTONE_TEST_DATABASE_URL",
                                   "postgres://postgres@127.0.0.1:5432/postgres"))
    pid = os.getpid()
    db = f"tombstone_bench_prisma_{pid}"
    workdir = tempfile.mkdtemp(prefix="tombstone-prisma-")
    started = datetime.datetime.now(datetime.timezone.utc)
    proxies = {}
    results = {"pgbouncer": [], "tombstone": []}
    counts = None
    try:
        load(server, db)
        proxies["pgbouncer"] = start_pgbouncer(server, workdir)
        proxies["tombstone"] = start_tombstone("tombstone", server, db, workdir, protected=True)
        # Warm both paths (connections, catalog caches) with statements of
        # their own, outside every round's set.
        warm = space[-200:]
        for name, p in proxies.items():
            run(server.url(db, port=p.port), warm, 1, 7)
        for r in range(rounds):
            batch = space[r * n:(r + 1) * n]
            order = list(proxies) if r % 2 == 0 else list(reversed(list(proxies)))
            for name in order:
                url = server.url(db, port=proxies[name].port)
                secs = run(url, batch, args.clients, 1000 * r)
                results[name].append(secs)
                log(f"prisma round {r + 1}/{rounds}: {name} {n} statements in {secs:.2f} s "
                    f"({n / secs:,.0f}/s)")
    finally:
        for p in proxies.values():
            p.stop()
        if "tombstone" in proxies:
            counts = cache_counts(proxies["tombstone"].log_path)
        try:
            server.psql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        except subprocess.CalledProcessError:
            pass
    report(args, started, server, n, rounds, results, counts)


def report(args, started, server, n, rounds, results, counts):
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    rate = {k: [n / s for s in v] for k, v in results.items()}
    ratios = [t / b for t, b in zip(rate["tombstone"], rate["pgbouncer"])]
    med = lambda xs: sorted(xs)[len(xs) // 2] if xs else float("nan")  # noqa: E731
    date = started.strftime("%Y-%m-%d")
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"prisma-{date}{'-quick' if args.quick else ''}")
    data = {
        "started": started.isoformat(), "commit": commit, "machine": platform.node(),
        "cpus": os.cpu_count(), "postgres": server.version(), "statements_per_round": n,
        "rounds": rounds, "clients": args.clients, "seconds": results, "per_second": rate,
        "ratio_tombstone_pgbouncer": ratios, "tombstone_cache": counts,
    }
    with open(stem + ".json", "w") as f:
        json.dump(data, f, indent=2)
    with open(stem + ".md", "w") as f:
        f.write(f"# Prisma-like distinct statements, {date}\n\n")
        f.write(f"`python3 bench/prisma.py {' '.join(sys.argv[1:])}` at {commit}; "
                f"{os.cpu_count()} cores, PostgreSQL {server.version()}; {n:,} distinct statements per "
                f"round and system, {args.clients} client processes, {rounds} interleaved rounds.\n\n")
        f.write("| round | PgBouncer stmt/s | tombstone stmt/s | tombstone / PgBouncer |\n|---|---|---|---|\n")
        for i, r in enumerate(ratios):
            f.write(f"| {i + 1} | {rate['pgbouncer'][i]:,.0f} | {rate['tombstone'][i]:,.0f} | {r:.2f} |\n")
        f.write(f"\nMedian ratio: {med(ratios):.2f}. tombstone's cache at shutdown: `{counts}`.\n")
    print(f"prisma: tombstone / PgBouncer {med(ratios):.2f} ({stem}.md)")


if __name__ == "__main__":
    main()
