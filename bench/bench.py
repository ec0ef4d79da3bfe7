#!/usr/bin/env python3
"""tombstone's benchmark harness: one run measures, side by side,

  * pgbench (select-only -S and the default TPC-B-like script) in simple,
    extended and prepared mode at 1, 8 and 32 clients against PostgreSQL
    directly, PgBouncer (session mode), tombstone as a pure relay (no
    protected table) and tombstone with the pgbench tables protected (every
    statement parsed and rewritten): TPS, mean and p99 latency, and the
    ratios tombstone/direct and tombstone/PgBouncer;
  * the proxies' own CPU per transaction (user+sys from /proc);
  * resident memory of the proxies with 1, 50 and 90 idle clients;
  * the brief's scenario: soft-deleting a project (500 tasks, 2,000
    comments, 300 attachments …) through tombstone, the same generated SQL
    sent directly, and a plain hard DELETE with ON DELETE CASCADE.

It reports; it never asserts. Runs are interleaved (every system once per
round, rounds repeated) and each cell is the median of its rounds, so noise
hits all systems alike. Results go to bench/results/<date>.md and .json with
the machine, PostgreSQL version and git commit.

    bench/run.sh [--quick] [--duration S] [--rounds N]

Needs: psql, pgbench, pgbouncer (bench/run.sh installs it), psycopg,
a PostgreSQL superuser at $TOMBSTONE_TEST_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/postgres).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

import psycopg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def cpu_seconds(pid):
    """user+sys CPU seconds of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    """The PostgreSQL the benchmark runs against."""

    def __init__(self, url):
        parts = urllib.parse.urlparse(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 5432
        self.user = parts.username or "postgres"
        self.admin_url = url

    def url(self, db, port=None, user=None):
        return f"postgresql://{user or self.user}@{self.host}:{port or self.port}/{db}"

    def psql(self, db, sql):
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.url(db), "-c", sql],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def version(self):
        with psycopg.connect(self.url("postgres")) as c:
            return c.execute("SHOW server_version").fetchone()[0]


class Proxy:
    """A tombstone or PgBouncer process on its own port."""

    def __init__(self, name, argv, port, workdir, user=None):
        self.name = name
        self.port = port
        self.log_path = os.path.join(workdir, f"{name}.log")
        cmd = argv if user is None else ["runuser", "-u", user, "--"] + argv
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w")
        )
        wait_port(port)
        # runuser forks the real process; measure that one.
        self.pid = self._real_pid(argv[0])

    def _real_pid(self, exe):
        base = os.path.basename(exe)
        try:
            children = subprocess.run(
                ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True
            ).stdout.split()
        except FileNotFoundError:
            children = []
        for pid in children:
            try:
                if base in os.readlink(f"/proc/{pid}/exe"):
                    return int(pid)
            except OSError:
                pass
        return self.proc.pid

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_tombstone(name, server, db, workdir, protected):
    port = free_port()
    cfg = os.path.join(workdir, f"{name}.toml")
    with open(cfg, "w") as f:
        f.write(f'[listen]\naddress = "127.0.0.1:{port}"\nshutdown_grace = "2s"\n')
        f.write(f'[upstream]\nhost = "{server.host}"\nport = {server.port}\n')
        # info: the rewrite cache's counters are logged at shutdown.
        f.write('[log]\nlevel = "info"\n')
        if protected:
            f.write(f'[database]\nurl = "{server.url(db)}"\n')
    binary = os.path.join(ROOT, "target", "release", "tombstone")
    return Proxy(name, [binary, "serve", "--config", cfg], port, workdir)


def start_pgbouncer(server, workdir):
    port = free_port()
    pdir = tempfile.mkdtemp(prefix="pgbouncer-", dir=workdir)
    ini = os.path.join(pdir, "pgbouncer.ini")
    users = os.path.join(pdir, "users.txt")
    with open(users, "w") as f:
        f.write(f'"{server.user}" ""\n')
    with open(ini, "w") as f:
        f.write(
            f"""[databases]
* = host={server.host} port={server.port}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {users}
pool_mode = session
max_client_conn = 500
default_pool_size = 100
max_db_connections = 0
logfile = {pdir}/pgbouncer.log
pidfile = {pdir}/pgbouncer.pid
ignore_startup_parameters = extra_float_digits,options
"""
        )
    user = None
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root; postgres must reach its files.
        os.chmod(workdir, 0o755)
        shutil.chown(pdir, "postgres", "postgres")
        for p in (ini, users):
            shutil.chown(p, "postgres", "postgres")
        user = "postgres"
    return Proxy("pgbouncer", ["/usr/sbin/pgbouncer", ini], port, workdir, user=user)


def pgbench(server, port, db, script, mode, clients, duration, workdir):
    """Runs pgbench; returns (tps, mean ms, p99 ms, transactions, failed)."""
    logdir = tempfile.mkdtemp(prefix="pgbench-", dir=workdir)
    args = [
        "pgbench", "-h", "127.0.0.1", "-p", str(port), "-U", server.user,
        "-M", mode, "-c", str(clients), "-j", str(min(clients, 2)),
        "-T", str(duration), "-l", "--log-prefix", os.path.join(logdir, "tx"), "-n",
    ]
    if script == "select":
        args.append("-S")
    args.append(db)
    out = subprocess.run(args, capture_output=True, text=True, cwd=logdir)
    tps = re.search(r"^tps = ([0-9.]+)", out.stdout, re.M)
    processed = re.search(r"actually processed: (\d+)", out.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    latencies = []
    for name in os.listdir(logdir):
        with open(os.path.join(logdir, name)) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    latencies.append(int(parts[2]))
    shutil.rmtree(logdir, ignore_errors=True)
    if not tps or not latencies:
        raise RuntimeError(f"pgbench failed:\n{out.stdout}\n{out.stderr}")
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1000.0
    mean = statistics.fmean(latencies) / 1000.0
    return (
        float(tps.group(1)),
        mean,
        p99,
        int(processed.group(1)) if processed else len(latencies),
        int(failed.group(1)) if failed else 0,
    )


def idle_memory(proxies, server, db):
    """RSS (KiB) of each proxy with 1, 50 and 90 idle clients."""
    out = {}
    for p in proxies:
        row = {}
        conns = []
        try:
            for n in (1, 50, 90):
                while len(conns) < n:
                    conns.append(psycopg.connect(server.url(db, port=p.port), autocommit=True))
                time.sleep(0.3)
                row[n] = rss_kib(p.pid)
        finally:
            for c in conns:
                c.close()
        out[p.name] = row
    return out


def scenario(server, workdir, projects, rounds):
    """The brief's project delete: through tombstone, the same SQL sent
    directly, and a hard DELETE with ON DELETE CASCADE (ms)."""
    db = f"tombstone_bench_scenario_{os.getpid()}"
    twin = db + "_hard"
    times = {"tombstone": [], "direct_sql": [], "hard_delete": []}
    binary = os.path.join(ROOT, "target", "release", "tombstone")
    for name in (db, twin):
        server.psql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.psql("postgres", f'CREATE DATABASE "{name}"')
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"projects={projects}",
             server.url(name), "-f", os.path.join(ROOT, "tests/scenario/schema.sql"),
             "-f", os.path.join(ROOT, "tests/scenario/data.sql")],
            check=True, stdout=subprocess.DEVNULL,
        )
    subprocess.run([binary, "migrate", "--apply", "--database-url", server.url(db)],
                   check=True, stdout=subprocess.DEVNULL)
    proxy = start_tombstone("tombstone-scenario", server, db, workdir, protected=True)
    try:
        with psycopg.connect(server.url(db, port=proxy.port), autocommit=True) as via, \
                psycopg.connect(server.url(db), autocommit=True) as direct, \
                psycopg.connect(server.url(twin), autocommit=True) as hard:
            for r in range(rounds):
                a, b, c = 1 + 3 * r, 2 + 3 * r, 3 + 3 * r
                t = time.perf_counter()
                via.execute(f"DELETE FROM projects WHERE id = {a}")
                times["tombstone"].append((time.perf_counter() - t) * 1000)
                sql = subprocess.run(
                    [binary, "rewrite", "--database-url", server.url(db),
                     f"DELETE FROM projects WHERE id = {b}"],
                    check=True, capture_output=True, text=True,
                ).stdout
                t = time.perf_counter()
                direct.execute(sql)
                times["direct_sql"].append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                hard.execute(f"DELETE FROM projects WHERE id = {c}")
                times["hard_delete"].append((time.perf_counter() - t) * 1000)
            rows = direct.execute(
                "SELECT count(*) FROM tombstone.audit WHERE op_id = "
                "(SELECT op_id FROM tombstone.audit ORDER BY id LIMIT 1)"
            ).fetchone()[0]
    finally:
        proxy.stop()
        for name in (db, twin):
            server.psql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {k: statistics.median(v) for k, v in times.items()}, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smoke run (under 3 minutes)")
    ap.add_argument("--duration", type=int, help="seconds per pgbench cell")
    ap.add_argument("--rounds", type=int, help="repeats of the whole matrix")
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    duration = args.duration or (1 if args.quick else 15)
    rounds = args.rounds or (1 if args.quick else 3)
    clients_list = [1, 8] if args.quick else [1, 8, 32]
    modes = ["simple", "prepared"] if args.quick else ["simple", "extended", "prepared"]
    scripts = ["select", "tpcb"]

    server = Server(os.environ.get("TOMBSTONE_TEST_DATABASE_URL",
                                   "postgres://postgres@127.0.0.1:5432/postgres"))
    workdir = tempfile.mkdtemp(prefix="tombstone-bench-")
    plain_db = f"tombstone_bench_plain_{os.getpid()}"
    prot_db = f"tombstone_bench_protected_{os.getpid()}"
    binary = os.path.join(ROOT, "target", "release", "tombstone")
    started = datetime.datetime.now(datetime.timezone.utc)
    proxies = []
    try:
        for db in (plain_db, prot_db):
            server.psql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            server.psql("postgres", f'CREATE DATABASE "{db}"')
            subprocess.run(["pgbench", "-h", server.host, "-p", str(server.port), "-U", server.user,
                            "-i", "-q", "-s", str(args.scale), db],
                           check=True, capture_output=True)
        # Protect every pgbench table that has a key (history has none).
        server.psql(prot_db, "ALTER TABLE pgbench_accounts ADD COLUMN deleted_at timestamptz; "
                             "ALTER TABLE pgbench_branches ADD COLUMN deleted_at timestamptz; "
                             "ALTER TABLE pgbench_tellers ADD COLUMN deleted_at timestamptz")
        subprocess.run([binary, "migrate", "--apply", "--database-url", server.url(prot_db)],
                       check=True, stdout=subprocess.DEVNULL)

        bouncer = start_pgbouncer(server, workdir)
        relay = start_tombstone("tombstone-relay", server, plain_db, workdir, protected=False)
        guarded = start_tombstone("tombstone-protected", server, prot_db, workdir, protected=True)
        proxies = [bouncer, relay, guarded]
        systems = [
            ("direct", server.port, plain_db, None),
            ("pgbouncer", bouncer.port, plain_db, bouncer),
            ("tombstone", relay.port, plain_db, relay),
            ("tombstone-protected", guarded.port, prot_db, guarded),
        ]
        cells = {}
        total = len(scripts) * len(modes) * len(clients_list) * len(systems) * rounds
        done = 0
        for r in range(rounds):
            for script in scripts:
                for mode in modes:
                    for clients in clients_list:
                        for name, port, db, proc in systems:
                            cpu0 = cpu_seconds(proc.pid) if proc else 0.0
                            tps, mean, p99, txns, failed = pgbench(
                                server, port, db, script, mode, clients, duration, workdir)
                            cpu = (cpu_seconds(proc.pid) - cpu0) if proc else 0.0
                            cell = cells.setdefault((script, mode, clients, name), [])
                            cell.append({"tps": tps, "mean_ms": mean, "p99_ms": p99,
                                         "cpu_us_per_txn": cpu * 1e6 / max(txns, 1),
                                         "failed": failed})
                            done += 1
                            log(f"[{done}/{total}] round {r + 1} {script:6} {mode:8} c={clients:<2} "
                                f"{name:20} {tps:10.0f} tps  p99 {p99:7.2f} ms")
        # PgBouncer keeps its session pool's server connections after its
        # clients leave: restart it, so that 90 idle clients of each proxy
        # fit in max_connections.
        memory = {}
        try:
            bouncer.stop()
            proxies.remove(bouncer)
            time.sleep(1)
            memory.update(idle_memory([relay], server, plain_db))
            memory.update(idle_memory([guarded], server, prot_db))
            fresh = start_pgbouncer(server, workdir)
            proxies.append(fresh)
            memory.update(idle_memory([fresh], server, plain_db))
        except Exception as e:  # reported, never fatal: the matrix is kept
            log(f"memory measurement failed: {e}")
        try:
            scenario_ms, scenario_rows = scenario(server, workdir, 4 if args.quick else 8,
                                                  1 if args.quick else 3)
        except Exception as e:
            log(f"scenario measurement failed: {e}")
            scenario_ms, scenario_rows = None, 0
    finally:
        for p in proxies:
            p.stop()
        for db in (plain_db, prot_db):
            try:
                server.psql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            except subprocess.CalledProcessError:
                pass
    cache = re.findall(r"exact_hits=(\d+) normalized_hits=(\d+) misses=(\d+)",
                       re.sub(r"\x1b\[[0-9;]*m", "", open(guarded.log_path).read()))
    report(args, started, server, cells, memory, scenario_ms, scenario_rows, cache,
           duration, rounds, scripts, modes, clients_list)
    shutil.rmtree(workdir, ignore_errors=True)


def med(cell, key):
    return statistics.median(x[key] for x in cell)


def report(args, started, server, cells, memory, scenario_ms, scenario_rows, cache,
           duration, rounds, scripts, modes, clients_list):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "unknown"
    with open("/proc/meminfo") as f:
        mem_gib = int(f.readline().split()[1]) / 1024 / 1024
    machine = {
        "cores": os.cpu_count(), "memory_gib": round(mem_gib, 1),
        "kernel": platform.release(), "postgres": server.version(), "commit": commit,
        "date": started.isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full", "seconds_per_cell": duration, "rounds": rounds,
    }
    rows = []
    for script in scripts:
        for mode in modes:
            for clients in clients_list:
                get = lambda name: cells[(script, mode, clients, name)]
                d, b, t, p = get("direct"), get("pgbouncer"), get("tombstone"), get("tombstone-protected")
                rows.append({
                    "script": script, "mode": mode, "clients": clients,
                    "direct": {k: med(d, k) for k in ("tps", "mean_ms", "p99_ms")},
                    "pgbouncer": {k: med(b, k) for k in ("tps", "mean_ms", "p99_ms", "cpu_us_per_txn")},
                    "tombstone": {k: med(t, k) for k in ("tps", "mean_ms", "p99_ms", "cpu_us_per_txn")},
                    "tombstone_protected": {k: med(p, k) for k in ("tps", "mean_ms", "p99_ms", "cpu_us_per_txn")},
                    "failed": sum(x["failed"] for c in (d, b, t, p) for x in c),
                })
    result = {"machine": machine, "pgbench": rows, "memory_kib": memory,
              "scenario_ms": scenario_ms, "scenario_audit_rows": scenario_rows,
              "rewrite_cache": cache[-1] if cache else None}
    os.makedirs(args.out, exist_ok=True)
    stamp = started.strftime("%Y-%m-%d") + ("-quick" if args.quick else "")
    with open(os.path.join(args.out, f"{stamp}.json"), "w") as f:
        json.dump(result, f, indent=2)
    md = [f"# tombstone benchmark — {machine['date']} ({machine['mode']})", "",
          f"Machine: {machine['cores']} cores, {machine['memory_gib']} GiB, Linux {machine['kernel']}, "
          f"PostgreSQL {machine['postgres']}, commit `{commit}`. pgbench scale {args.scale}, "
          f"{duration} s per cell, median of {rounds} interleaved round(s).", "",
          "## pgbench: TPS and latency", "",
          "`relay` = tombstone with no protected table; `protected` = tombstone with "
          "pgbench_accounts/branches/tellers protected (every statement rewritten). "
          "Ratios are TPS ratios (higher is better).", "",
          "| script | mode | c | direct TPS | PgBouncer TPS | relay TPS | protected TPS | relay/direct | relay/PgB | protected/direct | protected/PgB | p99 ms direct / PgB / relay / protected |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d, b, t, p = r["direct"], r["pgbouncer"], r["tombstone"], r["tombstone_protected"]
        md.append(f"| {r['script']} | {r['mode']} | {r['clients']} | {d['tps']:.0f} | {b['tps']:.0f} | "
                  f"{t['tps']:.0f} | {p['tps']:.0f} | {t['tps'] / d['tps']:.2f} | {t['tps'] / b['tps']:.2f} | "
                  f"{p['tps'] / d['tps']:.2f} | {p['tps'] / b['tps']:.2f} | "
                  f"{d['p99_ms']:.2f} / {b['p99_ms']:.2f} / {t['p99_ms']:.2f} / {p['p99_ms']:.2f} |")
    md += ["", "## Proxy CPU per transaction (µs, user+sys of the proxy process)", "",
           "| script | mode | c | PgBouncer | relay | protected |", "|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['script']} | {r['mode']} | {r['clients']} | {r['pgbouncer']['cpu_us_per_txn']:.1f} | "
                  f"{r['tombstone']['cpu_us_per_txn']:.1f} | {r['tombstone_protected']['cpu_us_per_txn']:.1f} |")
    md += ["", "## Resident memory with idle clients (KiB)", "",
           "| proxy | 1 client | 50 clients | 90 clients |", "|---|---|---|---|"]
    for name, m in memory.items():
        md.append(f"| {name} | {m.get(1)} | {m.get(50)} | {m.get(90)} |")
    if scenario_ms is None:
        scenario_ms = {"tombstone": float("nan"), "direct_sql": float("nan"), "hard_delete": float("nan")}
    md += ["", "## The brief's scenario: deleting a project (ms, median)", "",
           f"1 project, 500 tasks, 2,000 comments, 300 attachments, 250 time entries, 10 documents, "
           f"50 versions, 8 members, 3 invoices; {scenario_rows} audit rows per delete.", "",
           "| how | ms |", "|---|---|",
           f"| soft delete through tombstone (rewrite + cascade + operation + audit) | {scenario_ms['tombstone']:.1f} |",
           f"| the same generated SQL sent directly | {scenario_ms['direct_sql']:.1f} |",
           f"| hard DELETE with ON DELETE CASCADE (task_tags included) | {scenario_ms['hard_delete']:.1f} |", ""]
    if cache:
        e, n, m = (int(x) for x in cache[-1])
        total = max(e + n + m, 1)
        md += [f"Rewrite cache during the protected runs: {e} exact hits, {n} literal-normalized hits, "
               f"{m} misses ({100.0 * (e + n) / total:.3f}% hits).", ""]
    failed = sum(r["failed"] for r in rows)
    md.append(f"Failed pgbench transactions across all cells: {failed}.")
    path = os.path.join(args.out, f"{stamp}.md")
    with open(path, "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    log(f"results: {path} and .json")


if __name__ == "__main__":
    main()
