#!/usr/bin/env python3
"""What row-level security costs (SPEC S2, issue 9 item 2).

`tombstone migrate` enables and forces row-level security on every
protected table: restrictive policies that call `(SELECT
tombstone.sees_all())`, and a `BEFORE INSERT` row trigger
`tombstone_revive` that probes the primary key of every inserted row.
Superusers and BYPASSRLS roles skip the policies, so this measures as a
normal login role with the README quick start's grants (DML on the
scenario tables, nothing on tombstone's own).

Two databases are loaded from tests/scenario (schema.sql + data.sql, which
is deterministic) and migrated alike. In one the policies stay (`rls`); in
the other every protected table gets `DISABLE ROW LEVEL SECURITY` and its
`tombstone_revive` trigger is dropped (`no-rls`): the audit triggers, the
hard-delete guard and the proxy's rewriting are the same in both. Each has
its own tombstone. Every workload runs through tombstone and directly, in
both databases, with pgbench custom scripts:

  point     SELECT … FROM tasks WHERE id = :id
  join      projects ⋈ tasks ⋈ comments for one task (4 rows)
  delete    a soft delete of one task (cascades to its 4 comments, its
            attachment and time entry; audited). Through tombstone the
            client's DELETE; directly the statement tombstone generates for
            it (a plain DELETE would be refused by the hard-delete guard).
            Each transaction deletes another task: a fixed count, not a
            duration, and the same task ids in both databases.
  update    an audited UPDATE of one task (each client its own rows)
  insert    a single-row INSERT into document_versions (audited)
  insert1k  INSERT … SELECT of 1,000 rows into document_versions (1,000
            revive probes with RLS)

Directly, reads and writes are the client's SQL as written (what an app
connected without the proxy sends). Runs are interleaved: per round, per
cell, `rls` and `no-rls` back to back, the order alternating between
rounds; each figure is the median over rounds, and the ratio is with RLS ÷
without (TPS: below 1 means RLS costs throughput). The per-round ratios of
the paired runs are listed to show the noise.

Planning: `EXPLAIN (ANALYZE, SUMMARY, FORMAT JSON)` as the normal role,
directly, repeated; the median planning and execution time of typical
statements in each database, and the trigger times of the 1,000-row
insert (in a rolled-back transaction).

It reports; it never asserts.

    bench/rls.py [--quick] [--duration S] [--rounds N] [--projects N] [--out DIR]

Needs a release build (bench/run.sh builds it), psql, pgbench, psycopg and
a PostgreSQL superuser at $TOMBSTONE_TEST_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/postgres). Writes
bench/results/rls-<date>.md and .json (`-quick` for quick runs).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ROOT, Server, log, start_tombstone  # noqa: E402

BINARY = os.path.join(ROOT, "target", "release", "tombstone")
TASKS_PER_PROJECT = 500  # tests/scenario/data.sql

# Reads and updates use project 1's tasks (1..500), which are never deleted;
# deletes take tasks of projects 2.. in order; inserts add versions to project
# 1's documents (1..10), outside every task's cascade.
READ = "\\set id random(1, 500)\n"
DOC = "\\set doc random(1, 10)\n"
SQL = {
    "point": "SELECT id, title, done FROM tasks WHERE id = :id",
    "join": "SELECT p.name, t.title, c.body FROM projects p JOIN tasks t ON t.project_id = p.id "
            "JOIN comments c ON c.task_id = t.id WHERE t.id = :id",
    "delete": "DELETE FROM tasks WHERE id = :id",
    "update": "UPDATE tasks SET done = NOT done WHERE id = :id",
    "insert": "INSERT INTO document_versions (document_id, version, body) VALUES (:doc, 1, 'v')",
    "insert1k": "INSERT INTO document_versions (document_id, version, body) "
                "SELECT :doc, g, 'v' FROM generate_series(1, 1000) g",
}
PREFIX = {
    "point": READ,
    "join": READ,
    # :n counts this client's transactions (pgbench keeps variables across
    # them): client k deletes base + k, base + clients + k, …
    "delete": "\\set n :n + 1\n\\set id :base + (:n - 1) * :clients + :client_id\n",
    # each client its own 50 tasks: no lock waits between clients
    "update": "\\set id 1 + (:client_id % 10) * 50 + random(0, 49)\n",
    "insert": DOC,
    "insert1k": DOC,
}
LABEL = {
    "point": "point read by primary key",
    "join": "join read (projects ⋈ tasks ⋈ comments, 4 rows)",
    "delete": "soft delete of a task (cascade: 4 comments, attachment, time entry)",
    "update": "audited UPDATE of one task",
    "insert": "single-row INSERT (document_versions)",
    "insert1k": "1,000-row INSERT … SELECT (document_versions)",
}


def sh(argv, **kw):
    return subprocess.run(argv, check=True, **kw)


def load(server, db, projects, app, rls, bulk_sizes):
    server.psql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    server.psql("postgres", f'CREATE DATABASE "{db}"')
    sh(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"projects={projects}", server.url(db),
        "-f", os.path.join(ROOT, "tests/scenario/schema.sql"),
        "-f", os.path.join(ROOT, "tests/scenario/data.sql")], stdout=subprocess.DEVNULL)
    # Empty protected tables for the bulk insert (see bulk_insert).
    server.psql(db, "; ".join(f"CREATE TABLE bulk_{n} (id bigserial PRIMARY KEY, v int, deleted_at timestamptz)"
                              for n in bulk_sizes))
    sh([BINARY, "migrate", "--apply", "--database-url", server.url(db)],
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The README quick start's grants, after migrate as there.
    server.psql(db, f'GRANT USAGE ON SCHEMA public, billing TO "{app}"; '
                    f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, billing TO "{app}"; '
                    f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public, billing TO "{app}"')
    with psycopg.connect(server.url(db), autocommit=True) as c:
        tables = c.execute(
            "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relrowsecurity ORDER BY 1").fetchall()
        if not rls:
            for (t,) in tables:
                c.execute(f"ALTER TABLE {t} DISABLE ROW LEVEL SECURITY")
                c.execute(f"DROP TRIGGER IF EXISTS tombstone_revive ON {t}")
        c.execute("VACUUM ANALYZE")
        return [t for (t,) in tables]


def pgbench(server, port, db, user, script, mode, clients, duration, count, defines, workdir):
    """(tps, mean ms, p99 ms, failed) of one pgbench run of `script`."""
    logdir = tempfile.mkdtemp(prefix="pgbench-", dir=workdir)
    path = os.path.join(logdir, "script.sql")
    with open(path, "w") as f:
        f.write(script)
    args = ["pgbench", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-n", "-M", mode,
            "-c", str(clients), "-j", str(min(clients, 2)), "-f", path,
            "-l", "--log-prefix", os.path.join(logdir, "tx")]
    args += ["-t", str(count)] if count else ["-T", str(duration)]
    for k, v in defines.items():
        args += ["-D", f"{k}={v}"]
    args.append(db)
    out = subprocess.run(args, capture_output=True, text=True, cwd=logdir)
    tps = re.search(r"^tps = ([0-9.]+)", out.stdout, re.M)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    latencies = []
    for name in os.listdir(logdir):
        if name.startswith("tx"):
            with open(os.path.join(logdir, name)) as f:
                latencies += [int(p[2]) for p in (line.split() for line in f) if len(p) >= 3]
    shutil.rmtree(logdir, ignore_errors=True)
    if out.returncode != 0 or not tps or not latencies:
        raise RuntimeError(f"pgbench failed ({' '.join(args)}):\n{out.stdout}\n{out.stderr}")
    latencies.sort()
    return {"tps": float(tps.group(1)), "mean_ms": statistics.fmean(latencies) / 1000.0,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1000.0,
            "failed": int(failed.group(1)) if failed else 0}


def bulk_insert(server, db, user, sizes):
    """ms of one INSERT … SELECT of n rows into an empty protected table that
    has been vacuumed (reltuples = 0, as after VACUUM or ANALYZE of a new or
    emptied table), directly as the normal role. The revive trigger's
    primary-key probe is a cached plan chosen for the table's size when the
    statement starts."""
    out = {}
    with psycopg.connect(server.url(db, user=user), autocommit=True) as c:
        for n in sizes:
            t = time.perf_counter()
            c.execute(f"INSERT INTO bulk_{n} (v) SELECT g FROM generate_series(1, {n}) g")
            out[n] = (time.perf_counter() - t) * 1000.0
    return out


def generated_delete(server, db):
    """The statement tombstone sends for the delete, with :id for pgbench."""
    sql = sh([BINARY, "rewrite", "--database-url", server.url(db), SQL["delete"].replace(":id", "$1")],
             capture_output=True, text=True).stdout.strip()
    if "$1" not in sql:
        raise RuntimeError(f"unexpected rewrite of the delete: {sql}")
    return sql.replace("$1", ":id")


def explain(server, dbs, user, statements, repeats):
    """Median planning / execution ms (and trigger ms) per statement and
    database. One session per database; the two alternate statement by
    statement (the order flipping every time), so load from other work on
    the machine hits both alike."""
    out = {v: {} for v in dbs}
    conns = {v: psycopg.connect(server.url(db, user=user), autocommit=True) for v, db in dbs.items()}
    try:
        for name, (sql, analyze) in statements.items():
            opts = "ANALYZE, SUMMARY, FORMAT JSON" if analyze else "SUMMARY, FORMAT JSON"
            samples = {v: {"plan": [], "exec": [], "triggers": {}} for v in dbs}
            variants = list(dbs)
            for i in range(repeats + 3):
                for v in (variants if i % 2 == 0 else variants[::-1]):
                    c = conns[v]
                    c.execute("BEGIN")
                    try:
                        doc = c.execute(f"EXPLAIN ({opts}) {sql}").fetchone()[0][0]
                    finally:
                        c.execute("ROLLBACK")
                    if i < 3:  # warm the session's caches
                        continue
                    got = samples[v]
                    got["plan"].append(doc["Planning Time"])
                    if analyze:
                        got["exec"].append(doc["Execution Time"])
                        per = {}
                        for t in doc.get("Triggers", []):
                            trig = ("FK checks" if t["Trigger Name"].startswith("RI_ConstraintTrigger")
                                    else t["Trigger Name"])
                            per[trig] = per.get(trig, 0.0) + t["Time"]
                        for k, ms in per.items():
                            got["triggers"].setdefault(k, []).append(ms)
            for v, got in samples.items():
                out[v][name] = {
                    "planning_ms": statistics.median(got["plan"]),
                    "execution_ms": statistics.median(got["exec"]) if got["exec"] else None,
                    "triggers_ms": {k: statistics.median(x) for k, x in got["triggers"].items()},
                }
    finally:
        for c in conns.values():
            c.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run for CI (seconds)")
    ap.add_argument("--duration", type=int, help="seconds per timed pgbench cell")
    ap.add_argument("--rounds", type=int, help="interleaved repetitions of every cell")
    ap.add_argument("--projects", type=int, help="scenario size (must hold the deletes)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--built-from", help="what target/release/tombstone was built from, for the report, "
                                         "when not this working tree (e.g. 'git archive HEAD')")
    args = ap.parse_args()
    quick = args.quick
    duration = args.duration or 5
    rounds = args.rounds or (1 if quick else 3)
    clients_list = [2] if quick else [1, 8]
    # Timed cells in quick mode are short fixed counts instead (pgbench -T is
    # whole seconds): transactions per client.
    quick_count = {"point": 1000, "join": 1000, "delete": 25, "update": 200, "insert": 200, "insert1k": 5}
    # Deletes per client per cell (full): one to two seconds at c = 1 and 8.
    delete_count = {1: 400, 8: 100}
    cells = [(w, "simple") for w in SQL] + ([] if quick else [("point", "prepared"), ("join", "prepared")])
    deletes_per_db = rounds * 2 * sum(c * (quick_count["delete"] if quick else delete_count[c])
                                      for c in clients_list)
    projects = args.projects or (1 + -(-deletes_per_db // TASKS_PER_PROJECT))
    bulk_sizes = [1000, 3000] if quick else [1000, 10000]

    server = Server(os.environ.get("TOMBSTONE_TEST_DATABASE_URL",
                                   "postgres://postgres@127.0.0.1:5432/postgres"))
    pid = os.getpid()
    app = f"tombstone_bench_app_{pid}"
    dbs = {"rls": f"tombstone_bench_rls_{pid}", "no-rls": f"tombstone_bench_norls_{pid}"}
    workdir = tempfile.mkdtemp(prefix="tombstone-rls-")
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    proxies = {}
    runs = []
    try:
        server.psql("postgres", f'DROP ROLE IF EXISTS "{app}"; CREATE ROLE "{app}" LOGIN')
        protected = None
        for variant, db in dbs.items():
            protected = load(server, db, projects, app, variant == "rls", bulk_sizes) or protected
        delete_sql = generated_delete(server, dbs["rls"])
        for variant, db in dbs.items():
            proxies[variant] = start_tombstone(f"tombstone-{variant}", server, db, workdir, protected=True)
        log(f"rls bench: {projects} projects, {len(protected)} protected tables, setup "
            f"{time.monotonic() - t0:.1f} s")

        planning_statements = {
            "point": (SQL["point"].replace(":id", "42"), True),
            "join": (SQL["join"].replace(":id", "42"), True),
            "join, rewritten by tombstone": (sh(
                [BINARY, "rewrite", "--database-url", server.url(dbs["rls"]), SQL["join"].replace(":id", "42")],
                capture_output=True, text=True).stdout.strip(), True),
            "soft delete, generated": (delete_sql.replace(":id", str(TASKS_PER_PROJECT + 1)), False),
            "update": (SQL["update"].replace(":id", "42"), True),
            "insert": (SQL["insert"].replace(":doc", "3"), True),
            "insert1k": (SQL["insert1k"].replace(":doc", "3"), True),
        }
        repeats = 10 if quick else 300
        planning = explain(server, dbs, app, planning_statements, repeats)
        bulk = {v: bulk_insert(server, db, app, bulk_sizes) for v, db in dbs.items()}

        next_delete = TASKS_PER_PROJECT + 1  # first task of project 2
        for r in range(rounds):
            order = ["rls", "no-rls"] if r % 2 == 0 else ["no-rls", "rls"]
            for workload, mode in cells:
                for clients in clients_list:
                    for target in ("tombstone", "direct"):
                        script = PREFIX[workload] + (
                            delete_sql if workload == "delete" and target == "direct" else SQL[workload]) + ";\n"
                        count = None
                        defines = {}
                        if workload == "delete":
                            count = quick_count["delete"] if quick else delete_count[clients]
                            defines = {"n": 0, "base": next_delete, "clients": clients}
                            next_delete += count * clients
                        elif quick:
                            count = quick_count[workload]
                        for variant in order:
                            port = proxies[variant].port if target == "tombstone" else server.port
                            res = pgbench(server, port, dbs[variant], app, script, mode, clients,
                                          duration, count, defines, workdir)
                            res.update(workload=workload, mode=mode, clients=clients, target=target,
                                       variant=variant, round=r + 1, load1=os.getloadavg()[0])
                            runs.append(res)
                            log(f"round {r + 1} {workload:8} {mode:8} c={clients} {target:9} {variant:6} "
                                f"{res['tps']:9.0f} tps  mean {res['mean_ms']:7.3f} ms  p99 {res['p99_ms']:7.3f} ms"
                                + (f"  FAILED {res['failed']}" if res["failed"] else ""))
        # What the deletes did, in each database (the same if both worked alike).
        audited = {}
        for variant, db in dbs.items():
            with psycopg.connect(server.url(db), autocommit=True) as c:
                audited[variant] = {
                    "soft_deleted_tasks": c.execute(
                        "SELECT count(*) FROM tasks WHERE deleted_at IS NOT NULL").fetchone()[0],
                    "audit_rows": dict(c.execute(
                        "SELECT action, count(*) FROM tombstone.audit GROUP BY 1 ORDER BY 1").fetchall()),
                }
    finally:
        for p in proxies.values():
            p.stop()
        for db in dbs.values():
            try:
                server.psql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            except subprocess.CalledProcessError:
                pass
        try:
            server.psql("postgres", f'DROP ROLE IF EXISTS "{app}"')
        except subprocess.CalledProcessError:
            pass
    elapsed = time.monotonic() - t0
    report(args, quick, started, elapsed, server, runs, planning, protected, projects, duration, rounds,
           audited, planning_statements, repeats, bulk)
    shutil.rmtree(workdir, ignore_errors=True)


def summarize(runs):
    rows = []
    keys = list(dict.fromkeys((r["workload"], r["mode"], r["clients"], r["target"]) for r in runs))
    for workload, mode, clients, target in keys:
        sel = [r for r in runs if (r["workload"], r["mode"], r["clients"], r["target"]) ==
               (workload, mode, clients, target)]
        row = {"workload": workload, "mode": mode, "clients": clients, "target": target}
        for variant in ("rls", "no-rls"):
            v = [r for r in sel if r["variant"] == variant]
            row[variant] = {k: statistics.median(x[k] for x in v) for k in ("tps", "mean_ms", "p99_ms")}
            row[variant]["failed"] = sum(x["failed"] for x in v)
        # Ratios of the paired (back-to-back) runs of each round, then their
        # median: drift between rounds (other work on the machine) cancels.
        by_round = {}
        for x in sel:
            by_round.setdefault(x["round"], {})[x["variant"]] = x
        pairs = [b for _, b in sorted(by_round.items())]
        row["tps_ratio_rounds"] = [round(b["rls"]["tps"] / b["no-rls"]["tps"], 3) for b in pairs]
        row["tps_ratio"] = statistics.median(row["tps_ratio_rounds"])
        row["mean_ratio"] = statistics.median(b["rls"]["mean_ms"] / b["no-rls"]["mean_ms"] for b in pairs)
        rows.append(row)
    return rows


def report(args, quick, started, elapsed, server, runs, planning, protected, projects, duration, rounds,
           audited, planning_statements, repeats, bulk):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if args.built_from:
        source = f"{commit}, binary built from {args.built_from}"
    else:
        source = commit + (" + uncommitted changes in src/" if dirty else "")
    rows = summarize(runs)
    meta = {
        "command": " ".join(["bench/rls.py"] + sys.argv[1:]),
        "date": started.isoformat(timespec="seconds"),
        "commit": source,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}",
        "postgres": server.version(),
        "mode": "quick" if quick else "full",
        "seconds_per_cell": None if quick else duration,
        "rounds": rounds,
        "projects": projects,
        "protected_tables": len(protected),
        "load_average_at_end": os.getloadavg(),
        "elapsed_s": round(elapsed, 1),
        "afterwards": audited,
    }
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"rls-{started.date().isoformat()}" + ("-quick" if quick else ""))
    with open(stem + ".json", "w") as f:
        json.dump({"meta": meta, "pgbench": rows, "runs": runs, "planning": planning, "bulk_insert_ms": bulk,
                   "planning_statements": {k: v[0] for k, v in planning_statements.items()}}, f, indent=2)
    cell = "fixed transaction counts" if quick else (
        f"{duration} s per cell (deletes: a fixed count of distinct tasks)")
    md = [f"# Row-level security: what the policies and the revive trigger cost ({meta['mode']})", "",
          f"`{meta['command']}` — {meta['date']}, commit `{meta['commit']}`, {meta['machine']}, "
          f"PostgreSQL {meta['postgres']}. Scenario schema with {projects} projects, "
          f"{len(protected)} protected tables; {cell}; median of {rounds} interleaved round(s); "
          f"1-minute load average during the runs {min(r['load1'] for r in runs):.1f}–"
          f"{max(r['load1'] for r in runs):.1f} (median {statistics.median(r['load1'] for r in runs):.1f}); "
          f"{elapsed / 60:.1f} min.", "",
          "A normal login role with the README quick start's grants. `RLS` = the database as "
          "`tombstone migrate` leaves it; `no RLS` = the same database with row-level security "
          "disabled on every protected table and `tombstone_revive` dropped. Ratio = with ÷ without "
          "(TPS below 1 and latency above 1: RLS costs), the median of the rounds' paired ratios; "
          "TPS and latency columns are medians over rounds. `tombstone` = through the proxy; `direct` = "
          "the client's SQL straight to PostgreSQL (for the delete, the statement tombstone generates).",
          "", "## pgbench", "",
          "| workload | protocol | c | target | TPS RLS | TPS no RLS | TPS ratio | mean ms RLS / no RLS | "
          "latency ratio | p99 ms RLS / no RLS | TPS ratio per round |",
          "|---|---|---:|---|---:|---:|---:|---|---:|---|---|"]
    for r in rows:
        a, b = r["rls"], r["no-rls"]
        md.append(f"| {r['workload']} | {r['mode']} | {r['clients']} | {r['target']} | {a['tps']:.0f} | "
                  f"{b['tps']:.0f} | **{r['tps_ratio']:.2f}** | {a['mean_ms']:.3f} / {b['mean_ms']:.3f} | "
                  f"{r['mean_ratio']:.2f} | {a['p99_ms']:.2f} / {b['p99_ms']:.2f} | "
                  f"{', '.join(f'{x:.2f}' for x in r['tps_ratio_rounds'])} |")
    md += ["", "Workloads: " + "; ".join(f"`{k}` {LABEL[k]}" for k in SQL) + ".", "",
           "## Planning and execution (EXPLAIN ANALYZE, SUMMARY; normal role, direct)", "",
           f"Median of {repeats} after 3 warm-up runs, one session per database, the two "
           "alternating statement by statement, each in a rolled-back transaction; the soft delete "
           "is planned only (EXPLAIN without ANALYZE).", "",
           "| statement | planning ms RLS / no RLS | ratio | execution ms RLS / no RLS | ratio | "
           "triggers ms (RLS) | triggers ms (no RLS) |",
           "|---|---|---:|---|---:|---|---|"]
    for name in planning["rls"]:
        a, b = planning["rls"][name], planning["no-rls"][name]
        ex = (f"{a['execution_ms']:.3f} / {b['execution_ms']:.3f} | {a['execution_ms'] / b['execution_ms']:.2f}"
              if a["execution_ms"] is not None else "— | —")
        trig = lambda t: ", ".join(f"{k} {v:.2f}" for k, v in t["triggers_ms"].items()) or "—"
        md.append(f"| {name} | {a['planning_ms']:.3f} / {b['planning_ms']:.3f} | "
                  f"{a['planning_ms'] / b['planning_ms']:.2f} | {ex} | {trig(a)} | {trig(b)} |")
    md += ["", "## Bulk INSERT … SELECT into an empty, vacuumed protected table (direct, one run each)", "",
           "| rows | ms RLS | ms no RLS | ratio | µs per row RLS / no RLS |", "|---:|---:|---:|---:|---|"]
    for n in bulk["rls"]:
        a, b = bulk["rls"][n], bulk["no-rls"][n]
        md.append(f"| {n:,} | {a:.1f} | {b:.1f} | {a / b:.2f} | {1000 * a / n:.1f} / {1000 * b / n:.1f} |")
    failed = sum(r["failed"] for r in runs)
    md += ["", f"Failed pgbench transactions: {failed}. Afterwards, soft-deleted tasks and audit rows by "
               "action: " + "; ".join(
                   f"{v}: {a['soft_deleted_tasks']} tasks, "
                   + ", ".join(f"{k} {n}" for k, n in a["audit_rows"].items())
                   for v, a in audited.items()) + ".", ""]
    with open(stem + ".md", "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))
    log(f"results: {stem}.md and .json")


if __name__ == "__main__":
    main()
