#!/usr/bin/env python3
"""A soak of tombstone (issue 14 item 3): many clients, an ORM-like mixed
workload, for a long time, through one `tombstone serve` that also runs its
scheduled purge.

    python3 bench/soak.py                 64 clients, 30 minutes
    python3 bench/soak.py --quick         64 clients, 60 seconds (CI)
    python3 bench/soak.py --minutes 120 --clients 128

Each client owns one project of the scenario (so no client's work can make
another's fail) and loops over: reads (a task list with a join, a project
page), writes (an audited UPDATE, an INSERT of a comment), deletes (a
comment; a task, which cascades to its comments, attachments and time
entries), and restores of its own recent task deletes (as the bypass role,
`tombstone.restore_row`, on a few connections the clients share: one
upstream connection per client plus those). Meanwhile `serve` purges what has been deleted for
longer than `retention.keep` every `retention.purge_interval`.

Pass/fail: 0 errors (every statement's error is one). Reported in
bench/results/soak-<date>.md (and .json): the error count, the proxy's
resident memory and open descriptors sampled every few seconds with their
least-squares slope after the warm-up (KiB and descriptors per minute),
latency percentiles per operation kind and per time slice, statements per
second. Exit status 1 on any error.
"""

import argparse
import json
import os
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import psycopg  # noqa: E402

from bench import ROOT, Server, log, rss_kib, free_port, Proxy  # noqa: E402

BINARY = os.environ.get("TOMBSTONE_BIN", os.path.join(ROOT, "target", "release", "tombstone"))
RETENTION = "40s"
PURGE_INTERVAL = "10s"
# A client restores only task deletes younger than this, long before the
# purge may take them.
RESTORE_WITHIN = 10.0

# Restores (a few per cent of the work) share this many bypass-role
# connections, so the soak needs one upstream connection per client plus
# these, well within PostgreSQL's default max_connections = 100 at 64
# clients.
ADMIN_CONNECTIONS = 8

KINDS = ["read_list", "read_page", "update", "insert", "delete_comment",
         "delete_task", "restore"]
WEIGHTS = [40, 15, 15, 12, 8, 6, 4]


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def slope(points):
    """Least-squares slope of (t, v) points, per minute."""
    if len(points) < 3:
        return 0.0
    ts = [p[0] for p in points]
    vs = [p[1] for p in points]
    mt, mv = statistics.fmean(ts), statistics.fmean(vs)
    den = sum((t - mt) ** 2 for t in ts)
    if den == 0:
        return 0.0
    return 60.0 * sum((t - mt) * (v - mv) for t, v in zip(ts, vs)) / den


def pct(values, q):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class Client(threading.Thread):
    def __init__(self, n, project, app_url, admins, stop, seed):
        super().__init__(daemon=True)
        self.n, self.project = n, project
        self.app_url, self.admins = app_url, admins
        self.stop = stop
        self.rng = random.Random(seed)
        self.samples = []  # (t, kind, seconds)
        self.errors = []   # (t, kind, message)
        self.deleted = []  # (t, task id) deleted and not yet restored

    def run(self):
        try:
            app = psycopg.connect(self.app_url, autocommit=True)
        except Exception as e:  # noqa: BLE001 - every failure is an error
            self.errors.append((time.time(), "connect", str(e)))
            return
        tasks = [r[0] for r in app.execute(
            "SELECT id FROM tasks WHERE project_id = %s ORDER BY id", (self.project,))]
        comments = [r[0] for r in app.execute(
            "SELECT c.id FROM comments c JOIN tasks t ON t.id = c.task_id "
            "WHERE t.project_id = %s", (self.project,))]
        while not self.stop.is_set():
            kind = self.rng.choices(KINDS, WEIGHTS)[0]
            start = time.perf_counter()
            self.waited = 0.0
            try:
                self.step(kind, app, tasks, comments)
            except Exception as e:  # noqa: BLE001
                self.errors.append((time.time(), kind, f"{type(e).__name__}: {e}"))
                if app.closed or app.broken:
                    self.stop.wait(0.5)
                    try:
                        app = psycopg.connect(self.app_url, autocommit=True)
                    except Exception as e2:  # noqa: BLE001
                        self.errors.append((time.time(), "reconnect", str(e2)))
                        self.stop.wait(1)
                continue
            # A restore's wait for a shared connection is not its latency.
            self.samples.append((time.time(), kind, time.perf_counter() - start - self.waited))
        app.close()

    def step(self, kind, app, tasks, comments):
        rng = self.rng
        if not tasks:
            kind = "restore" if self.deleted else "read_page"
        if kind == "read_list":
            app.execute(
                "SELECT t.id, t.title, t.done, u.name FROM tasks t LEFT JOIN users u ON u.id = t.assignee_id "
                "WHERE t.project_id = %s ORDER BY t.id LIMIT 50", (self.project,)).fetchall()
        elif kind == "read_page":
            app.execute(
                "SELECT p.name, (SELECT count(*) FROM tasks t WHERE t.project_id = p.id), "
                "(SELECT count(*) FROM comments c JOIN tasks t ON t.id = c.task_id WHERE t.project_id = p.id) "
                "FROM projects p WHERE p.id = %s", (self.project,)).fetchall()
        elif kind == "update":
            app.execute("UPDATE tasks SET done = NOT done, title = %s WHERE id = %s",
                        (f"task {rng.randrange(10**6)}", rng.choice(tasks)))
        elif kind == "insert":
            row = app.execute(
                "INSERT INTO comments (task_id, body) VALUES (%s, %s) RETURNING id",
                (rng.choice(tasks), f"soak {rng.randrange(10**6)}")).fetchone()
            comments.append(row[0])
        elif kind == "delete_comment":
            if comments:
                c = comments.pop(rng.randrange(len(comments)))
                app.execute("DELETE FROM comments WHERE id = %s", (c,))
        elif kind == "delete_task":
            t = tasks.pop(rng.randrange(len(tasks)))
            cur = app.execute("DELETE FROM tasks WHERE id = %s", (t,))
            if cur.rowcount != 1:
                raise RuntimeError(f"DELETE of live task {t} reported {cur.rowcount}")
            self.deleted.append((time.time(), t))
        elif kind == "restore":
            now = time.time()
            self.deleted = [(at, t) for at, t in self.deleted if now - at < RESTORE_WITHIN]
            if self.deleted:
                _, t = self.deleted.pop(rng.randrange(len(self.deleted)))
                asked = time.perf_counter()
                with self.admins.connection() as admin:
                    self.waited = time.perf_counter() - asked
                    admin.execute("SELECT tombstone.restore_row('tasks', %s::jsonb)",
                                  (json.dumps({"id": t}),)).fetchall()
                tasks.append(t)


class AdminPool:
    """A few bypass-role connections the clients take turns on; a broken
    one is replaced when it is handed back."""

    def __init__(self, url, size):
        self.url = url
        self.free = queue.Queue()
        for _ in range(size):
            self.free.put(psycopg.connect(url, autocommit=True))

    class _Lease:
        def __init__(self, pool):
            self.pool = pool

        def __enter__(self):
            self.conn = self.pool.free.get()
            return self.conn

        def __exit__(self, *exc):
            conn = self.conn
            if conn.closed or conn.broken:
                try:
                    conn = psycopg.connect(self.pool.url, autocommit=True)
                except Exception:  # noqa: BLE001 - the lease's error is reported
                    conn = self.conn
            self.pool.free.put(conn)
            return False

    def connection(self):
        return self._Lease(self)

    def close(self):
        while not self.free.empty():
            self.free.get().close()


def load(server, db, projects, app, admin, bypass):
    server.psql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    server.psql("postgres", f'CREATE DATABASE "{db}"')
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"projects={projects}",
                    server.url(db), "-f", os.path.join(ROOT, "tests/scenario/schema.sql"),
                    "-f", os.path.join(ROOT, "tests/scenario/data.sql")],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([BINARY, "migrate", "--apply", "--database-url", server.url(db)],
                   check=True, stdout=subprocess.DEVNULL)
    for stmt in (f'DROP ROLE IF EXISTS "{app}"', f'DROP ROLE IF EXISTS "{admin}"',
                 f'DROP ROLE IF EXISTS "{bypass}"',
                 f'CREATE ROLE "{app}" LOGIN', f'CREATE ROLE "{bypass}" NOLOGIN',
                 f'CREATE ROLE "{admin}" LOGIN IN ROLE "{bypass}"'):
        server.psql("postgres", stmt)
    for role in (app, admin):
        server.psql(db, f'GRANT USAGE ON SCHEMA public, billing TO "{role}"; '
                        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, billing TO "{role}"; '
                        f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public, billing TO "{role}"')
    server.psql(db, "VACUUM ANALYZE")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="60 seconds (CI)")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between memory samples")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    seconds = 60.0 if args.quick else args.minutes * 60.0
    server = Server(os.environ.get("TOMBSTONE_TEST_DATABASE_URL",
                                   "postgresql://postgres@127.0.0.1:5432/postgres"))
    pid = os.getpid()
    db, app, admin, bypass = (f"tombstone_soak_{pid}", f"soak_app_{pid}",
                              f"soak_admin_{pid}", f"soak_trash_{pid}")
    workdir = tempfile.mkdtemp(prefix="tombstone-soak-")
    if not os.path.exists(BINARY):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    log(f"loading {args.clients} projects")
    load(server, db, args.clients, app, admin, bypass)
    port = free_port()
    cfg = os.path.join(workdir, "soak.toml")
    with open(cfg, "w") as f:
        f.write(f'[listen]\naddress = "127.0.0.1:{port}"\nshutdown_grace = "2s"\n'
                f'[upstream]\nhost = "{server.host}"\nport = {server.port}\n'
                f'[log]\nlevel = "info"\n'
                f'[database]\nurl = "{server.url(db)}"\n'
                f'[roles]\nbypass = ["{bypass}"]\n'
                f'[retention]\nkeep = "{RETENTION}"\npurge_interval = "{PURGE_INTERVAL}"\n')
    proxy = Proxy("tombstone", [BINARY, "serve", "--config", cfg], port, workdir)
    stop = threading.Event()
    admins = AdminPool(server.url(db, port=port, user=admin), min(ADMIN_CONNECTIONS, args.clients))
    clients = [Client(i, i + 1, server.url(db, port=port, user=app), admins, stop, 1000 + i)
               for i in range(args.clients)]
    started = time.time()
    for c in clients:
        c.start()
    memory = []  # (t since start, rss KiB, fds)
    try:
        while time.time() - started < seconds:
            time.sleep(args.sample)
            memory.append((time.time() - started, rss_kib(proxy.pid), fds(proxy.pid)))
            done = sum(len(c.samples) for c in clients)
            errors = sum(len(c.errors) for c in clients)
            log(f"{memory[-1][0]:6.0f}s  rss {memory[-1][1]} KiB  fds {memory[-1][2]}  "
                f"statements {done}  errors {errors}")
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=30)
        admins.close()
        elapsed = time.time() - started
        purged = purge_lines(proxy.log_path)
        proxy.stop()
        try:
            server.psql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            for r in (app, admin, bypass):
                server.psql("postgres", f'DROP ROLE IF EXISTS "{r}"')
        except subprocess.CalledProcessError as e:
            log(f"cleanup: {e}")
    report(args, seconds, elapsed, clients, memory, purged)
    return 1 if any(c.errors for c in clients) or purged["failed"] else 0


def purge_lines(path):
    """The scheduled purges the proxy logged: runs that removed rows, the
    rows, and failed runs (each an error of the soak)."""
    runs, rows, failed = 0, 0, []
    try:
        with open(path) as f:
            for line in f:
                if "scheduled purge removed rows" in line:
                    runs += 1
                    for tok in line.split():
                        if tok.startswith("rows="):
                            try:
                                rows += int(tok.split("=", 1)[1])
                            except ValueError:
                                pass
                elif "scheduled purge failed" in line:
                    failed.append(line.strip())
    except OSError:
        pass
    return {"runs": runs, "rows": rows, "failed": failed}


def report(args, seconds, elapsed, clients, memory, purged):
    samples = [s for c in clients for s in c.samples]
    errors = [e for c in clients for e in c.errors]
    t0 = min((s[0] for s in samples), default=time.time())
    warm = [m for m in memory if m[0] >= min(60.0, seconds * 0.2)]
    rss_slope = slope([(m[0], m[1]) for m in warm])
    fd_slope = slope([(m[0], m[2]) for m in warm])
    slices = max(1, min(10, int(seconds // 60) or 1))
    width = seconds / slices
    by_slice = []
    for i in range(slices):
        lo, hi = t0 + i * width, t0 + (i + 1) * width
        lat = [s[2] * 1000 for s in samples if lo <= s[0] < hi]
        by_slice.append({"from_s": round(i * width), "to_s": round((i + 1) * width),
                         "statements": len(lat), "p50_ms": pct(lat, .5),
                         "p95_ms": pct(lat, .95), "p99_ms": pct(lat, .99)})
    by_kind = {}
    for k in KINDS:
        lat = [s[2] * 1000 for s in samples if s[1] == k]
        by_kind[k] = {"count": len(lat), "p50_ms": pct(lat, .5), "p95_ms": pct(lat, .95),
                      "p99_ms": pct(lat, .99)}
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip(),
        "clients": args.clients, "seconds": round(elapsed),
        "statements": len(samples), "per_second": round(len(samples) / max(elapsed, 1e-9)),
        "errors": len(errors), "first_errors": [f"{k}: {m}" for _, k, m in errors[:10]],
        "rss_kib_first": memory[0][1] if memory else None,
        "rss_kib_last": memory[-1][1] if memory else None,
        "rss_kib_per_minute": round(rss_slope, 1),
        "fds_first": memory[0][2] if memory else None,
        "fds_last": memory[-1][2] if memory else None,
        "fds_per_minute": round(fd_slope, 2),
        "purge": purged, "by_kind": by_kind, "by_slice": by_slice,
        "memory": memory,
    }
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"soak-{time.strftime('%Y-%m-%d', time.gmtime())}"
                        + ("-quick" if args.quick else ""))
    with open(stem + ".json", "w") as f:
        json.dump(result, f, indent=1)
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    lines = [
        f"# Soak {result['date']} ({result['commit']})", "",
        f"{args.clients} clients for {result['seconds']} s: {result['statements']} statements "
        f"({result['per_second']}/s), **{result['errors']} errors**.", "",
        f"Proxy resident memory {result['rss_kib_first']} → {result['rss_kib_last']} KiB, "
        f"slope {result['rss_kib_per_minute']} KiB/min after the warm-up; open descriptors "
        f"{result['fds_first']} → {result['fds_last']}, slope {result['fds_per_minute']}/min.",
        f"Scheduled purges that removed rows: {purged['runs']} ({purged['rows']} rows); "
        f"failed: {len(purged['failed'])}.", "",
        "| operation | count | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|",
    ]
    for k, v in by_kind.items():
        lines.append(f"| {k} | {v['count']} | {fmt(v['p50_ms'])} | {fmt(v['p95_ms'])} | {fmt(v['p99_ms'])} |")
    lines += ["", "| from s | to s | statements | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|---|"]
    for s in by_slice:
        lines.append(f"| {s['from_s']} | {s['to_s']} | {s['statements']} | {fmt(s['p50_ms'])} | "
                     f"{fmt(s['p95_ms'])} | {fmt(s['p99_ms'])} |")
    if errors:
        lines += ["", "First errors:", ""] + [f"- {e}" for e in result["first_errors"]]
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
