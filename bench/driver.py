#!/usr/bin/env python3
"""The deploy-gate benchmark suite; run it through `bench/run`, which builds first.

Starts the release build of deploy-gate on loopback with a local approvers API
and a local SMTP server (the bench_* examples), loads it with wrk, and loads
the bare poem example the same way right after each run, so that every figure
also appears as a ratio to the framework's own ceiling under the same machine
load. Writes results.json and report.md into the output folder and prints the
report. Every load is bounded in time and stays on 127.0.0.1.

With --baseline, an earlier build is measured too, each run right before or
right after the same run of --binary, the order drawn anew for each, so both
see the same machine and neither always has the first turn (on PostgreSQL's
fan-out the first of a pair ran about 0.2 s slower); the report then ends
with the two side by side.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "lua"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
RELEASE = TARGET / "release"
SECRET = "bench-token-secret-0123456789abcdef"
APPROVERS = "ana@example.com; bo@example.com; cy@example.com"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load1() -> float:
    return round(os.getloadavg()[0], 2)


# ---------------------------------------------------------------- processes


class Proc:
    """A child process this script started; stopped by its own pid only."""

    running: list["Proc"] = []

    def __init__(self, name: str, argv: list[str], out: Path, env=None, stdout=None):
        self.name = name
        self.log_path = out / f"{name}.log"
        self.log_file = open(self.log_path, "ab")
        self.stdout_file = open(stdout, "ab") if stdout else None
        self.popen = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.stdout_file or self.log_file,
            stderr=self.log_file,
        )
        Proc.running.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def status_kb(self, field: str) -> int:
        """A VmRSS/VmHWM-style field of /proc/PID/status, in kB."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        for f in (self.log_file, self.stdout_file):
            if f:
                f.close()
        if self in Proc.running:
            Proc.running.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        for proc in list(cls.running):
            proc.stop(timeout=5)


def http_ok(port: int, path: str = "/healthz", timeout: float = 0.5) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", path)
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def wait_until_answering(proc: Proc, port: int, started: float, limit: float = 60) -> float:
    """Milliseconds from `started` (perf_counter) to the first 200 on /healthz."""
    while time.perf_counter() - started < limit:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited; see {proc.log_path}")
        if http_ok(port):
            return (time.perf_counter() - started) * 1000
        time.sleep(0.001)
    raise RuntimeError(f"{proc.name} did not answer within {limit} s; see {proc.log_path}")


class MailLog:
    """The SMTP sink's output: one line per accepted message, `micros token`."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.lines: list[tuple[int, str]] = []
        self.partial = b""

    def refresh(self) -> int:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = self.partial + f.read()
        self.offset += len(data) - len(self.partial)
        *complete, self.partial = data.split(b"\n")
        for line in complete:
            micros, token = line.decode().split(" ", 1)
            self.lines.append((int(micros), token))
        return len(self.lines)

    def wait_for(self, count: int, limit: float) -> bool:
        deadline = time.monotonic() + limit
        last_report = time.monotonic()
        while self.refresh() < count:
            if time.monotonic() > deadline:
                return False
            if time.monotonic() - last_report > 15:
                log(f"  ... {len(self.lines)}/{count} emails so far")
                last_report = time.monotonic()
            time.sleep(0.05)
        return True


# ---------------------------------------------------------------- load


def wrk(port: int, script: str, conns: int, seconds: float, env: dict | None = None) -> dict:
    """One wrk run; returns its figures (latencies in ms)."""
    threads = min(2, conns)
    run_env = dict(os.environ, BENCH_LUA_DIR=str(LUA), BENCH_THREADS=str(threads))
    run_env.update(env or {})
    argv = [
        "wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s",
        "--timeout", "10s", "-s", str(LUA / script), f"http://127.0.0.1:{port}",
    ]
    done = subprocess.run(
        argv, env=run_env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    lines = [l for l in done.stdout.splitlines() if l.startswith("WRK_JSON ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    raw = json.loads(lines[-1][len("WRK_JSON "):])
    lat = raw["latency_us"]
    errors = {k: v for k, v in raw["errors"].items() if v}
    return {
        "requests": raw["requests"],
        "seconds": raw["duration_us"] / 1e6,
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": lat["p50"] / 1000,
        "p90_ms": lat["p90"] / 1000,
        "p99_ms": lat["p99"] / 1000,
        "p999_ms": lat["p999"] / 1000,
        "max_ms": lat["max"] / 1000,
        "errors": errors,
        "threads_exhausted": raw["threads_exhausted"],
    }


def post_releases(port: int, bodies: list[bytes], threads: int = 8) -> dict:
    """POSTs each body to /release over `threads` keep-alive connections."""
    lock = threading.Lock()
    cursor = iter(bodies)
    failures: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                body = next(cursor, None)
            if body is None:
                break
            conn.request("POST", "/release", body, {"Content-Type": "application/json"})
            answer = conn.getresponse()
            answer.read()
            if answer.status not in (200, 202):
                with lock:
                    failures.append(str(answer.status))
        conn.close()

    started = time.perf_counter()
    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} POST /release failed, e.g. {failures[:5]}")
    return {"requests": len(bodies), "seconds": seconds, "rps": len(bodies) / seconds}


def release_body(release_id: str, approvers: str | None = None, project="Bench") -> bytes:
    body = {"ReleaseName": "seed", "ReleaseId": release_id, "TeamProject": project}
    if approvers:
        body["Approvers"] = approvers
    return json.dumps(body).encode()


# ---------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.seconds = args.duration or (3 if args.quick else 10)
        self.warmup = 1 if args.quick else 2
        self.releases = args.releases or (1000 if args.quick else 10000)
        self.fanout = args.fanout or (200 if args.quick else 1000)
        self.results: dict = {"runs": [], "services": [], "fanout": [], "seeding": [], "propagation": []}
        # The server's autovacuum is looked at with the first PostgreSQL database.
        self.autovacuum_checked = False
        self.sink_port = free_port()
        self.bare_port = free_port()
        self.mails_path = self.out / "mails.log"
        self.mails_path.write_bytes(b"")
        self.mails = MailLog(self.mails_path)
        self.bare: Proc | None = None
        self.approvers: dict[int, tuple[Proc, int]] = {}
        # (tag, binary) of each build measured; runs and services are tagged with it.
        self.builds = [("before", args.baseline), ("after", args.binary)] if args.baseline else [("", args.binary)]
        self.build = self.builds[-1]

    # -- surroundings

    def start_surroundings(self) -> None:
        self.sink = Proc(
            "smtp-sink", [str(RELEASE / "examples" / "bench_smtp_sink"), f"127.0.0.1:{self.sink_port}"],
            self.out, stdout=self.mails_path,
        )
        self.wait_for_port(self.sink_port)
        started = time.perf_counter()
        self.bare = Proc(
            "bare-poem", [str(RELEASE / "examples" / "bare_poem"), f"127.0.0.1:{self.bare_port}"], self.out
        )
        startup = wait_until_answering(self.bare, self.bare_port, started)
        time.sleep(0.5)
        self.results["services"].append(
            {"name": "bare poem", "startup_ms": [startup], "idle_rss_kb": self.bare.status_kb("VmRSS")}
        )

    def approvers_port(self, delay_ms: int) -> int:
        if delay_ms not in self.approvers:
            port = free_port()
            proc = Proc(
                f"approvers-{delay_ms}ms",
                [str(RELEASE / "examples" / "bench_approvers"), f"127.0.0.1:{port}", str(delay_ms)],
                self.out,
            )
            self.wait_for_port(port)
            self.approvers[delay_ms] = (proc, port)
        return self.approvers[delay_ms][1]

    @staticmethod
    def wait_for_port(port: int) -> None:
        for _ in range(2000):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.005)
        raise RuntimeError(f"nothing listens on {port}")

    # -- databases

    def fresh_database(self, backend: str, name: str) -> str:
        if backend == "sqlite":
            path = self.out / f"{name}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return f"sqlite://{path}"
        admin = self.args.postgres_url
        if not self.autovacuum_checked:
            self.autovacuum_checked = True
            autovacuum = subprocess.run(["psql", "-Atq", "-d", admin, "-c", "SHOW autovacuum"],
                                        check=True, capture_output=True, text=True).stdout.strip()
            if autovacuum != "on":
                # Production servers vacuum: without it dead rows pile up and a long
                # run measures the bloat (a soak's board p99 grew fivefold in 10 min).
                log(f"WARNING: autovacuum is {autovacuum} on {admin}: long PostgreSQL runs will not "
                    "represent a production server (ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf())")
        db = f"deploy_gate_bench_{name}".replace("-", "_")
        for sql in (f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", f"CREATE DATABASE {db}"):
            subprocess.run(["psql", "-q", "-d", admin, "-c", sql], check=True, capture_output=True)
        return admin.rsplit("/", 1)[0] + "/" + db

    def postgres_available(self) -> bool:
        if not shutil.which("psql"):
            return False
        ok = subprocess.run(["psql", "-q", "-d", self.args.postgres_url, "-c", "SELECT 1"],
                            capture_output=True, check=False)
        return ok.returncode == 0

    # -- deploy-gate

    def start_service(self, name: str, db_url: str, approvers_delay: int = 0, **settings) -> tuple[Proc, int, float]:
        """Starts the build being measured on `db_url`; `name` names its log."""
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOY_GATE_")}
        env.update({
            "DEPLOY_GATE_BIND": f"127.0.0.1:{port}",
            "DEPLOY_GATE_DATABASE_URL": db_url,
            "DEPLOY_GATE_SMTP_URL": f"smtp://127.0.0.1:{self.sink_port}",
            "DEPLOY_GATE_APPROVERS_URL": f"http://127.0.0.1:{self.approvers_port(approvers_delay)}/approvers",
            "DEPLOY_GATE_TOKEN_SECRET": SECRET,
            "DEPLOY_GATE_MAIL_DIR": str(self.out / "mail"),
            # Every request comes from 127.0.0.1, standing in for many approvers.
            "DEPLOY_GATE_RATE_LIMIT_APPROVAL": "0",
            # The seeds name their approvers in the request (release_body).
            "DEPLOY_GATE_REQUEST_APPROVERS": "true",
        })
        for setting in self.args.set:
            key, _, value = setting.partition("=")
            settings.setdefault(key, value)
        env.update({f"DEPLOY_GATE_{k.upper()}": str(v) for k, v in settings.items()})
        started = time.perf_counter()
        proc = Proc(name, [self.build[1], "serve"], self.out, env=env)
        startup = wait_until_answering(proc, port, started)
        return proc, port, startup

    def tagged(self, name: str) -> str:
        """`name` of a service of the build being measured, with its tag when there are two."""
        return f"{self.build[0]}-{name}" if self.build[0] else name

    def record_service(self, name: str, proc: Proc, startups: list[float], idle_kb: int, **extra) -> None:
        entry = {
            "name": name,
            "build": self.build[0],
            "startup_ms": startups,
            "idle_rss_kb": idle_kb,
            "rss_after_kb": proc.status_kb("VmRSS"),
            "peak_rss_kb": proc.status_kb("VmHWM"),
        }
        entry.update(extra)
        self.results["services"].append(entry)
        log(f"  {name}: start-up {', '.join(f'{s:.0f}' for s in startups)} ms, RSS idle "
            f"{idle_kb / 1024:.1f} MB, peak {entry['peak_rss_kb'] / 1024:.1f} MB")

    def idle_rss(self, proc: Proc) -> int:
        time.sleep(1.0)
        return proc.status_kb("VmRSS")

    # -- runs

    def measure(self, section: str, label: str, port: int, proc: Proc | None, script: str,
                conns: int, env: dict | None = None, warmup: bool = True, bare_env: dict | None = None,
                bare: bool = True, warm_env: dict | None = None) -> dict:
        """Runs one load on deploy-gate, then the same load on bare poem. With
        `warm_env` the warm-up is the script run with it for 15 s (wrk runs its
        whole duration even when every thread has stopped) instead of the
        usual seconds."""
        env = dict(env or {})
        if warm_env:
            wrk(port, script, conns, 15, {**env, **warm_env})
        elif warmup and self.warmup:
            wrk(port, script, conns, self.warmup, env)
        cpu_before = proc.cpu_seconds() if proc else 0.0
        load_before = load1()
        result = wrk(port, script, conns, self.seconds, env)
        cpu = (proc.cpu_seconds() - cpu_before) if proc else 0.0
        result.update({
            "section": section, "label": label, "script": script, "conns": conns, "build": self.build[0],
            "load1": load_before,
            "cpu_us_per_req": cpu * 1e6 / max(result["requests"], 1),
        })
        if env.get("BENCH_DELAY_MS"):
            result["paced"] = f"{conns} connections, {env['BENCH_DELAY_MS']} ms between requests"
        if bare and self.bare:
            benv = dict(env)
            benv.update(bare_env or {})
            bare_cpu = self.bare.cpu_seconds()
            b = wrk(self.bare_port, script, conns, self.seconds, benv)
            b["cpu_us_per_req"] = (self.bare.cpu_seconds() - bare_cpu) * 1e6 / max(b["requests"], 1)
            result["bare"] = b
        self.results["runs"].append(result)
        ratio = f" = {result['rps'] / result['bare']['rps']:.0%} of bare" if "bare" in result else ""
        errors = f" ERRORS {result['errors']}" if result["errors"] else ""
        log(f"  {label} c={conns}: {result['rps']:,.0f} req/s{ratio}, p50 {result['p50_ms']:.2f} ms, "
            f"p99 {result['p99_ms']:.2f} ms (load {load_before}){errors}")
        return result

    def new_releases(self, backend: str) -> None:
        for delay in (0, 4000):
            name = self.tagged(f"{backend}-new-{delay}ms")
            log(f"POST /release for new releases on {backend}, approvers API delay {delay} ms")
            db = self.fresh_database(backend, name)
            proc, port, startup = self.start_service(name, db, approvers_delay=delay)
            idle = self.idle_rss(proc)
            section = f"new releases, {backend}, approvers API {'instant' if delay == 0 else f'{delay / 1000:g} s delay'}"
            paced = {"BENCH_DELAY_MS": str(self.args.paced_delay_ms), "BENCH_TAG": f"p{delay}"}
            self.measure(section, "POST /release (new), paced", port, proc, "new_release.lua",
                         self.args.paced_conns, paced, warmup=False)
            self.measure(section, "POST /release (new), saturated", port, proc, "new_release.lua", 32,
                         {"BENCH_TAG": f"s{delay}"}, warmup=False)
            self.record_service(name, proc, [startup], idle)
            proc.stop()

    def fan_out(self, backend: str, workers: int | None) -> None:
        name = self.tagged(f"{backend}-fanout" + (f"-{workers}-workers" if workers else ""))
        log(f"fan-out on {backend}: {self.fanout} new releases x 3 approvers (approvers API, instant)"
            + (f", DEPLOY_GATE_WORKERS={workers}" if workers else ""))
        db = self.fresh_database(backend, name)
        proc, port, startup = self.start_service(name, db, **({"workers": workers} if workers else {}))
        idle = self.idle_rss(proc)
        before = self.mails.refresh()
        bodies = [release_body(f"fan-{i}", project="Fanout") for i in range(1, self.fanout + 1)]
        t0 = time.time()
        posted = post_releases(port, bodies)
        want = before + 3 * self.fanout
        if not self.mails.wait_for(want, limit=300):
            raise RuntimeError(f"fan-out: only {len(self.mails.lines) - before} emails arrived")
        last = self.mails.lines[want - 1][0] / 1e6
        seconds = last - t0
        entry = {"backend": backend, "workers": workers or "default", "build": self.build[0], "releases": self.fanout, "emails": 3 * self.fanout,
                 "seconds": seconds, "emails_per_s": 3 * self.fanout / seconds,
                 "posting_seconds": posted["seconds"], "load1": load1()}
        self.results["fanout"].append(entry)
        log(f"  {3 * self.fanout} emails accepted {seconds:.2f} s after the first POST "
            f"({entry['emails_per_s']:.0f}/s; posting took {posted['seconds']:.2f} s)")
        self.record_service(name, proc, [startup], idle)
        proc.stop()

    def polls(self, backend: str) -> None:
        name = self.tagged(f"{backend}-polls")
        log(f"gate polls and approvals on {backend} with {self.releases} releases x 3 approvers")
        db = self.fresh_database(backend, name)
        seeding = {"workers": self.args.seed_workers} if self.args.seed_workers else {}
        proc, port, startup = self.start_service(name, db, **seeding)
        before = self.mails.refresh()
        bodies = [release_body(str(i), APPROVERS) for i in range(1, self.releases + 1)]
        posted = post_releases(port, bodies)
        t0 = time.time()
        want = before + 3 * self.releases
        if not self.mails.wait_for(want, limit=900):
            raise RuntimeError(f"seeding: only {len(self.mails.lines) - before} emails arrived")
        emailed = self.mails.lines[want - 1][0] / 1e6 - t0 + posted["seconds"]
        self.results["seeding"].append({
            "backend": backend, "build": self.build[0], "releases": self.releases, "post_rps": posted["rps"],
            "workers": self.args.seed_workers or "default",
            "emails": 3 * self.releases, "seconds_to_last_email": emailed,
        })
        log(f"  seeded at {posted['rps']:,.0f} releases/s; {3 * self.releases} emails in {emailed:.1f} s")
        tokens = self.out / f"{name}.tokens"
        tokens.write_text("".join(t + "\n" for _, t in self.mails.lines[before:want]))
        proc.stop()
        startups = []
        for attempt in range(3):
            proc, port, startup = self.start_service(name, db)
            startups.append(startup)
            if attempt < 2:
                proc.stop()
        idle = self.idle_rss(proc)
        section = f"gate polls, {backend}, {self.releases} releases"
        env = {"BENCH_RELEASES": str(self.releases)}
        for script, label in (("poll_post.lua", "POST /release (known)"), ("poll_get.lua", "GET /release/…")):
            for conns in (32, 256):
                self.measure(section, label, port, proc, script, conns, env)
        self.measure(section, "GET /healthz (no database: the middleware's ceiling)", port, proc,
                     "healthz.lua", 32)
        section = f"approvals, {backend}"
        tenv = {"BENCH_TOKENS": str(tokens)}
        # Warmed up by viewing every approval once: the steady state of links
        # viewed again while nothing changes, which the first view of each
        # of 30,000 links (a read from the database) would otherwise dilute.
        self.measure(section, "GET /approval?token=… (each viewed once before)", port, proc,
                     "approval_get.lua", 32, tenv, warm_env={"BENCH_ONCE": "1"})
        self.measure(section, "POST /approval (first decisions)", port, proc, "approval_post.lua", 32, tenv,
                     warmup=False, bare_env={"BENCH_CYCLE": "1"})
        self.record_service(name, proc, startups, idle)
        proc.stop()

    def propagation(self, backend: str) -> None:
        """Two replicas on one database: how long after replica A answers a
        decision replica B's gate poll shows it, B having answered the same
        poll (pending) twice before, so that it had kept that answer."""
        name = self.tagged(f"{backend}-propagation")
        count = self.args.decisions or (50 if self.args.quick else 300)
        log(f"propagation on {backend}: {count} decisions through replica A, polled on replica B")
        db = self.fresh_database(backend, name)
        a, a_port, a_startup = self.start_service(f"{name}-a", db)
        b, b_port, b_startup = self.start_service(f"{name}-b", db)
        before = self.mails.refresh()
        post_releases(a_port, [release_body(f"prop-{i}", "ana@example.com") for i in range(count)])
        if not self.mails.wait_for(before + count, limit=300):
            raise RuntimeError(f"propagation: only {len(self.mails.lines) - before} emails arrived")
        tokens = [t for _, t in self.mails.lines[before:before + count]]
        on_a = http.client.HTTPConnection("127.0.0.1", a_port, timeout=30)
        on_b = http.client.HTTPConnection("127.0.0.1", b_port, timeout=30)

        def call(conn, method: str, path: str, body: dict | None = None) -> dict:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, data, {"Content-Type": "application/json"} if data else {})
            answer = conn.getresponse()
            payload = answer.read()
            if answer.status != 200:
                raise RuntimeError(f"{method} {path}: {answer.status} {payload[:200]!r}")
            return json.loads(payload)

        delays, polls_after = [], []
        for token in tokens:
            release_id = call(on_a, "GET", f"/approval?token={token}")["release"]["ReleaseId"]
            path = f"/release/Bench/{release_id}"
            for _ in range(2):
                if call(on_b, "GET", path)["status"] != "pending":
                    raise RuntimeError(f"{path} was not pending before the decision")
            call(on_a, "POST", "/approval", {"token": token, "decision": "approve"})
            answered = time.perf_counter()
            polls = 0
            while True:
                polls += 1
                status = call(on_b, "GET", path)["status"]
                if status == "approved":
                    delays.append((time.perf_counter() - answered) * 1000)
                    polls_after.append(polls)
                    break
                if time.perf_counter() - answered > 30:
                    raise RuntimeError(f"{path} still {status} on replica B 30 s after the decision")
        on_a.close()
        on_b.close()
        delays.sort()
        pick = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]
        entry = {"backend": backend, "build": self.build[0], "decisions": count,
                 "p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99), "max_ms": delays[-1],
                 "stale_polls": sum(polls_after) - len(polls_after), "load1": load1()}
        self.results["propagation"].append(entry)
        log(f"  replica B showed the decision {entry['p50_ms']:.2f} ms (p50), {entry['p99_ms']:.2f} ms (p99), "
            f"{entry['max_ms']:.2f} ms (max) after replica A answered; {entry['stale_polls']} polls still pending")
        for proc, startup, suffix in ((a, a_startup, "a"), (b, b_startup, "b")):
            self.record_service(f"{name}-{suffix}", proc, [startup], proc.status_kb("VmRSS"))
            proc.stop()

    # -- report

    def machine(self) -> dict:
        def cmd(*argv):
            try:
                return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
            except OSError:
                return "?"

        model = next((l.split(":", 1)[1].strip() for l in cmd("lscpu").splitlines()
                      if l.startswith("Model name")), platform.processor())
        mem_kb = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
        dirty = cmd("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no")
        return {
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": os.cpu_count(),
            "cpu": model,
            "ram_gib": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(),
            "rustc": cmd("rustc", "-V"),
            "wrk": cmd("wrk", "-v").splitlines()[0] if cmd("wrk", "-v") else "?",
            "commit": cmd("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD") + (" (dirty)" if dirty else ""),
            "binary": self.args.binary,
            "baseline": self.args.baseline,
            "load_at_start": [round(x, 2) for x in os.getloadavg()],
        }

    def each_build(self, scenario) -> None:
        """Runs `scenario` on each build measured, in an order drawn anew each time."""
        for build in random.sample(self.builds, len(self.builds)):
            self.build = build
            if build[0]:
                log(f"[{build[0]}: {build[1]}]")
            scenario()

    def run(self) -> None:
        self.results["machine"] = self.machine()
        self.results["settings"] = {
            "quick": self.args.quick, "seconds_per_run": self.seconds, "warmup_seconds": self.warmup,
            "releases": self.releases, "fanout": self.fanout,
            "paced": f"{self.args.paced_conns} connections, {self.args.paced_delay_ms} ms between requests",
            "service": self.args.set,
        }
        m = self.results["machine"]
        log(f"{m['nproc']} x {m['cpu']}, {m['ram_gib']} GiB, load {m['load_at_start']}, commit {m['commit']}")
        backends = ["sqlite"]
        if self.args.postgres and self.postgres_available():
            backends.append("postgres")
        elif self.args.postgres:
            log(f"PostgreSQL unreachable at {self.args.postgres_url}: skipping the PostgreSQL runs")
        self.start_surroundings()
        only = set(self.args.only.split(",")) if self.args.only else {"new", "fanout", "polls", "propagation"}
        for backend in backends:
            if "fanout" in only:
                for workers in [None, *self.args.fanout_workers]:
                    self.each_build(lambda: self.fan_out(backend, workers))
            if "new" in only:
                self.each_build(lambda: self.new_releases(backend))
            if "polls" in only:
                self.each_build(lambda: self.polls(backend))
            if "propagation" in only:
                self.each_build(lambda: self.propagation(backend))
        bare = next(s for s in self.results["services"] if s["name"] == "bare poem")
        bare["peak_rss_kb"] = self.bare.status_kb("VmHWM")
        bare["rss_after_kb"] = self.bare.status_kb("VmRSS")
        self.results["machine"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
        (self.out / "results.json").write_text(json.dumps(self.results, indent=2))
        report = render_report(self.results)
        (self.out / "report.md").write_text(report)
        print()
        print(report)
        log(f"results in {self.out}/results.json and {self.out}/report.md")


def render_report(r: dict) -> str:
    m, s = r["machine"], r["settings"]
    lines = [
        f"Run of {m['date']} on commit {m['commit']}: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, "
        f"{m['kernel']}, {m['rustc']}, {m['wrk']}. Load average (1/5/15 min) {m['load_at_start']} at the start, "
        f"{m['load_at_end']} at the end. {s['seconds_per_run']} s per run after {s['warmup_seconds']} s of "
        f"warm-up{' (--quick)' if s['quick'] else ''}; paced runs: {s['paced']}. Binary {m['binary']}"
        + (f", baseline {m['baseline']} (each run right before or after the same run of the binary, in random order)" if m.get("baseline") else "")
        + (f", settings {', '.join(s['service'])}" if s["service"] else "") + ".",
        "",
        "| what | conns | req/s | p50 ms | p99 ms | bare req/s | bare p99 ms | req/s vs bare | p99 vs bare | CPU µs/req | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    section = None
    for run in r["runs"]:
        if run["section"] != section:
            section = run["section"]
            lines.append(f"| **{section}** | | | | | | | | | | |")
        b = run.get("bare")
        notes = []
        if run["errors"]:
            notes.append(f"errors {run['errors']}")
        if run["threads_exhausted"]:
            notes.append("ran out of tokens")
        label = (f"[{run['build']}] " if run.get("build") else "") + run["label"] + (f" ({'; '.join(notes)})" if notes else "")
        lines.append(
            f"| {label} | {run['conns']} | {run['rps']:,.0f} | {run['p50_ms']:.2f} | {run['p99_ms']:.2f} | "
            + (f"{b['rps']:,.0f} | {b['p99_ms']:.2f} | {run['rps'] / b['rps']:.0%} | "
               f"{run['p99_ms'] / b['p99_ms']:.1f}× | " if b else "| | | | ")
            + f"{run['cpu_us_per_req']:.0f} | {run['load1']} |"
        )
    lines += ["", "| fan-out | releases | emails | seconds to the last email | emails/s | posting took s |",
              "|---|---:|---:|---:|---:|---:|"]
    for f in r["fanout"]:
        tag = f"[{f['build']}] " if f.get("build") else ""
        lines.append(f"| {tag}{f['backend']}, workers {f['workers']} | {f['releases']} | {f['emails']} | {f['seconds']:.2f} | "
                     f"{f['emails_per_s']:.0f} | {f['posting_seconds']:.2f} |")
    for seed in r["seeding"]:
        lines.append(f"| {seed['backend']} seeding (approvers in the request, {seed['workers']} workers) | {seed['releases']} | "
                     f"{seed['emails']} | {seed['seconds_to_last_email']:.1f} | "
                     f"{seed['emails'] / seed['seconds_to_last_email']:.0f} | "
                     f"{seed['releases'] / seed['post_rps']:.2f} |")
    if r.get("propagation"):
        lines += ["", "| replica A decides, replica B's poll shows it | decisions | p50 ms | p90 ms | p99 ms | max ms | "
                  "polls still pending | load |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for p in r["propagation"]:
            tag = f"[{p['build']}] " if p.get("build") else ""
            lines.append(f"| {tag}{p['backend']} | {p['decisions']} | {p['p50_ms']:.2f} | {p['p90_ms']:.2f} | "
                         f"{p['p99_ms']:.2f} | {p['max_ms']:.2f} | {p['stale_polls']} | {p['load1']} |")
    lines += ["", "| process | start-up to first answer ms | RSS idle MB | RSS peak MB | RSS after load MB |",
              "|---|---|---:|---:|---:|"]
    for svc in r["services"]:
        lines.append(
            f"| {svc['name']} | {', '.join(f'{x:.0f}' for x in svc['startup_ms'])} | "
            f"{svc['idle_rss_kb'] / 1024:.1f} | {svc.get('peak_rss_kb', 0) / 1024:.1f} | "
            f"{svc.get('rss_after_kb', 0) / 1024:.1f} |"
        )
    if m.get("baseline"):
        lines += side_by_side(r)
    return "\n".join(lines) + "\n"


def side_by_side(r: dict) -> list[str]:
    """The baseline's figures and the binary's, run by run."""
    def paired(entries, key):
        before = {key(e): e for e in entries if e.get("build") == "before"}
        return [(before[key(e)], e) for e in entries if e.get("build") == "after" and key(e) in before]

    lines = ["", "Before (baseline) and after (binary), each pair measured one right after the other:", "",
             "| what | conns | before req/s | after req/s | after/before | before p99 ms | after p99 ms |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for b, a in paired(r["runs"], lambda e: (e["section"], e["label"], e["conns"])):
        lines.append(f"| {a['section']}: {a['label']} | {a['conns']} | {b['rps']:,.0f} | {a['rps']:,.0f} | "
                     f"{a['rps'] / b['rps']:.0%} | {b['p99_ms']:.2f} | {a['p99_ms']:.2f} |")
    for b, a in paired(r["fanout"], lambda e: (e["backend"], e["workers"])):
        lines.append(f"| fan-out {a['backend']}, workers {a['workers']}: seconds to the last of {a['emails']} "
                     f"emails | | {b['seconds']:.2f} s | {a['seconds']:.2f} s | {b['seconds'] / a['seconds']:.0%} | | |")
    for b, a in paired(r["services"], lambda e: e["name"].split("-", 1)[-1]):
        lines.append(f"| RSS of {a['name'].split('-', 1)[-1]}: idle / peak MB | | "
                     f"{b['idle_rss_kb'] / 1024:.1f} / {b['peak_rss_kb'] / 1024:.1f} | "
                     f"{a['idle_rss_kb'] / 1024:.1f} / {a['peak_rss_kb'] / 1024:.1f} | | | |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (3 s runs, 1,000 releases)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run [10, --quick 3]")
    parser.add_argument("--releases", type=int, help="releases seeded for the poll runs [10000, --quick 1000]")
    parser.add_argument("--fanout", type=int, help="new releases in the fan-out run [1000, --quick 200]")
    parser.add_argument("--only", help="comma-separated subset of: fanout,new,polls,propagation")
    parser.add_argument("--decisions", type=int,
                        help="decisions timed from replica A to replica B's poll [300, --quick 50]")
    parser.add_argument("--no-postgres", dest="postgres", action="store_false", help="SQLite only")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a database of a server where the bench may create and drop deploy_gate_bench_* databases")
    parser.add_argument("--paced-conns", type=int, default=8)
    parser.add_argument("--paced-delay-ms", type=int, default=40)
    parser.add_argument("--seed-workers", type=int, default=16,
                        help="DEPLOY_GATE_WORKERS while seeding, which is set-up, not measured [16]")
    parser.add_argument("--fanout-workers", type=int, nargs="*", default=[16],
                        help="also time the fan-out with these DEPLOY_GATE_WORKERS [16]")
    parser.add_argument("--out", default=str(TARGET / "bench"), help="output folder [target/bench]")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for every deploy-gate started, e.g. workers=8 for DEPLOY_GATE_WORKERS")
    parser.add_argument("--binary", default=str(RELEASE / "deploy-gate"),
                        help="the deploy-gate binary to measure [target/release/deploy-gate]")
    parser.add_argument("--baseline", help="also measure this earlier build of deploy-gate, each run right "
                        "before or after the same run of --binary (in random order), and report both side by side")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        Bench(args).run()
    except KeyboardInterrupt:
        return 130
    finally:
        Proc.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
