#!/usr/bin/env python3
"""A soak: deploy-gate under steady mixed load for a long time (bench/soak).

Starts the release build on loopback with the bench's SMTP sink and approvers
API (as bench/run does), then for --minutes keeps four loads going at once:

- creates: new releases of TeamProject Bench at --creates-per-s, each with
  three approvers;
- polls: wrk with poll_post.lua over every release created so far, paced
  (--poll-conns connections, --poll-delay-ms between a connection's requests);
- decisions: each approval email that arrives is answered (approve, or reject
  for one release in ten) through POST /approval, so releases keep concluding;
- board: the board's first page and its status filters, --board-per-s.

Every --window seconds it records the service's resident memory and the p99 of
each load in that window. The report (soak.json and soak.md in --out) states
the growth of resident memory after the first --settle minutes and the p99 of
the first windows after settling beside the last ones: the issue's targets are
growth under 10 % and no rise in p99.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import driver  # noqa: E402  (the bench's own helpers)
from driver import Bench, Proc, log, release_body, wrk  # noqa: E402

BOARD_PATHS = [
    "/releases?limit=50",
    "/releases?status=pending&limit=50",
    "/releases?status=approved&limit=50",
    "/releases?status=rejected&limit=50",
    "/releases?TeamProject=Bench&limit=50",
]


class Timings:
    """Latencies (ms) of one load, per window; thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.current: list[float] = []
        self.failures = 0

    def add(self, ms: float, ok: bool) -> None:
        with self.lock:
            self.current.append(ms)
            if not ok:
                self.failures += 1

    def take(self) -> dict:
        with self.lock:
            taken, self.current = self.current, []
            failures, self.failures = self.failures, 0
        return summary(taken, failures)


def summary(latencies: list[float], failures: int = 0) -> dict:
    if not latencies:
        return {"requests": 0, "p50_ms": None, "p99_ms": None, "failures": failures}
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "p50_ms": ordered[len(ordered) // 2],
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "failures": failures,
    }


class Soak:
    def __init__(self, args):
        self.args = args
        # The bench's surroundings (SMTP sink, approvers API) and service start-up.
        bench_args = argparse.Namespace(
            out=args.out, duration=None, quick=True, releases=None, fanout=None, baseline=None,
            binary=args.binary, postgres_url=args.postgres_url, set=args.set, seed_workers=None,
        )
        self.bench = Bench(bench_args)
        self.stop = threading.Event()
        self.created = 0
        self.created_lock = threading.Lock()
        self.timings = {name: Timings() for name in ("create", "decision", "board")}
        self.decided = 0

    def run(self) -> dict:
        bench = self.bench
        bench.start_surroundings()
        db = bench.fresh_database(self.args.backend, f"soak-{self.args.backend}")
        self.proc, self.port, _ = bench.start_service(f"soak-{self.args.backend}", db)
        log(f"soak on {self.args.backend} for {self.args.minutes} min, windows of {self.args.window} s")
        # Enough releases for the polls to start with.
        for _ in range(100):
            self.create_one(http.client.HTTPConnection("127.0.0.1", self.port, timeout=30))
        loads = [threading.Thread(target=f, daemon=True) for f in (self.creates, self.decisions, self.board)]
        for load in loads:
            load.start()
        windows = []
        started = time.monotonic()
        end = started + self.args.minutes * 60
        # A last stretch shorter than half a window is not measured: too few
        # requests for a p99.
        while end - time.monotonic() >= self.args.window / 2:
            seconds = int(min(self.args.window, end - time.monotonic()))
            with self.created_lock:
                releases = self.created
            env = {"BENCH_RELEASES": str(releases), "BENCH_DELAY_MS": str(self.args.poll_delay_ms)}
            polls = wrk(self.port, "poll_post.lua", self.args.poll_conns, seconds, env)
            window = {
                "minute": round((time.monotonic() - started) / 60, 2),
                "rss_kb": self.proc.status_kb("VmRSS"),
                # Created when the window began (polls pick among these).
                "releases": releases,
                "decisions": self.decided,
                "poll": {k: polls[k] for k in ("requests", "p50_ms", "p99_ms", "errors")},
            }
            for name, timings in self.timings.items():
                window[name] = timings.take()
            windows.append(window)
            log(f"  {window['minute']:5.1f} min: RSS {window['rss_kb'] / 1024:.1f} MB, "
                f"{releases} releases, {self.decided} decisions, poll p99 {polls['p99_ms']:.2f} ms, "
                f"create p99 {fmt(window['create']['p99_ms'])}, decision p99 {fmt(window['decision']['p99_ms'])}, "
                f"board p99 {fmt(window['board']['p99_ms'])}")
            if not self.proc.alive():
                raise RuntimeError("deploy-gate stopped during the soak")
        self.stop.set()
        for load in loads:
            load.join(timeout=30)
        result = {"backend": self.args.backend, "minutes": self.args.minutes, "settle_minutes": self.args.settle,
                  "windows": windows, "peak_rss_kb": self.proc.status_kb("VmHWM"), "load1": driver.load1()}
        self.proc.stop()
        return result

    # -- the loads

    def paced(self, per_second: float, step) -> None:
        """Calls `step(conn)` `per_second` times a second until the soak stops."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        interval = 1 / per_second
        due = time.monotonic()
        while not self.stop.is_set():
            try:
                step(conn)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            due += interval
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                due = time.monotonic()

    def timed(self, name: str, conn, method: str, path: str, body: bytes | None, ok_statuses) -> http.client.HTTPResponse:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        t0 = time.perf_counter()
        conn.request(method, path, body, headers)
        answer = conn.getresponse()
        answer.read()
        self.timings[name].add((time.perf_counter() - t0) * 1000, answer.status in ok_statuses)
        return answer

    def create_one(self, conn) -> None:
        with self.created_lock:
            self.created += 1
            release_id = self.created
        self.timed("create", conn, "POST", "/release", release_body(str(release_id), driver.APPROVERS),
                   (200, 202))

    def creates(self) -> None:
        self.paced(self.args.creates_per_s, self.create_one)

    def decisions(self) -> None:
        answered = 0

        def decide(conn) -> None:
            nonlocal answered
            mails = self.bench.mails
            mails.refresh()
            if answered >= len(mails.lines):
                return
            token = mails.lines[answered][1]
            decision = "reject" if answered % 30 == 0 else "approve"
            answered += 1
            body = json.dumps({"token": token, "decision": decision}).encode()
            self.timed("decision", conn, "POST", "/approval", body, (200, 409, 410))
            self.decided = answered

        self.paced(self.args.decisions_per_s, decide)

    def board(self) -> None:
        turn = 0

        def look(conn) -> None:
            nonlocal turn
            path = BOARD_PATHS[turn % len(BOARD_PATHS)]
            turn += 1
            self.timed("board", conn, "GET", path, None, (200,))

        self.paced(self.args.board_per_s, look)


def fmt(ms) -> str:
    return "-" if ms is None else f"{ms:.2f} ms"


def verdict(result: dict) -> dict:
    """Growth of RSS after settling, and p99 of the first windows after settling vs the last ones."""
    windows = [w for w in result["windows"] if w["minute"] > result["settle_minutes"]]
    if len(windows) < 4:
        return {"note": "too short to judge: fewer than four windows after settling"}
    settled_rss = windows[0]["rss_kb"]
    end_rss = windows[-1]["rss_kb"]
    quarter = max(1, len(windows) // 4)
    first, last = windows[:quarter], windows[-quarter:]
    out = {
        "rss_after_settling_kb": settled_rss,
        "rss_at_end_kb": end_rss,
        "rss_growth": (end_rss - settled_rss) / settled_rss,
    }
    for load in ("poll", "create", "decision", "board"):
        def p99s(ws):
            values = [w[load]["p99_ms"] for w in ws if w[load]["p99_ms"] is not None]
            return statistics.median(values) if values else None
        out[f"{load}_p99_first_ms"] = p99s(first)
        out[f"{load}_p99_last_ms"] = p99s(last)
    return out


def render(result: dict, judged: dict) -> str:
    lines = [f"# Soak: {result['backend']}, {result['minutes']} minutes", ""]
    if "note" in judged:
        lines.append(judged["note"])
    else:
        lines += [
            f"Resident memory after {result['settle_minutes']} min: {judged['rss_after_settling_kb'] / 1024:.1f} MB; "
            f"at the end: {judged['rss_at_end_kb'] / 1024:.1f} MB; growth {judged['rss_growth']:+.1%} "
            f"(target < +10 %). Peak {result['peak_rss_kb'] / 1024:.1f} MB.",
            "",
            "| load | p99, first quarter after settling (median of windows) | p99, last quarter |",
            "|---|---|---|",
        ]
        for load in ("poll", "create", "decision", "board"):
            lines.append(f"| {load} | {fmt(judged[f'{load}_p99_first_ms'])} | {fmt(judged[f'{load}_p99_last_ms'])} |")
    lines += ["", "| minute | RSS MB | releases | decisions | poll req | poll p99 | create p99 | decision p99 | board p99 |",
              "|---|---|---|---|---|---|---|---|---|"]
    for w in result["windows"]:
        lines.append(
            f"| {w['minute']} | {w['rss_kb'] / 1024:.1f} | {w['releases']} | {w['decisions']} | {w['poll']['requests']} "
            f"| {fmt(w['poll']['p99_ms'])} | {fmt(w['create']['p99_ms'])} | {fmt(w['decision']['p99_ms'])} "
            f"| {fmt(w['board']['p99_ms'])} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--settle", type=float, default=5, help="minutes before memory and p99 are judged [5]")
    parser.add_argument("--window", type=float, default=60, help="seconds per measured window [60]")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--creates-per-s", type=float, default=20)
    # Three approval emails arrive per release: answering fewer than three times
    # the creates a second piles undecided approvals up without end.
    parser.add_argument("--decisions-per-s", type=float, default=60)
    parser.add_argument("--board-per-s", type=float, default=10)
    parser.add_argument("--poll-conns", type=int, default=16)
    parser.add_argument("--poll-delay-ms", type=int, default=10)
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--out", default=str(driver.TARGET / "soak"))
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--binary", default=str(driver.RELEASE / "deploy-gate"))
    args = parser.parse_args()
    try:
        result = Soak(args).run()
    finally:
        Proc.stop_all()
    judged = verdict(result)
    result["verdict"] = judged
    out = Path(args.out)
    (out / "soak.json").write_text(json.dumps(result, indent=2))
    report = render(result, judged)
    (out / "soak.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
