#!/usr/bin/env python3
"""What PostgreSQL's client backends wait on, sampled while a benchmark runs.

Every 10 ms for DURATION seconds, reads `pg_stat_activity` for the client
backends of the databases named like PATTERN (the bench's own,
`deploy_gate_bench_%`, by default) and prints the average number of
backends in each wait event and state: `Client:ClientRead` is a backend
waiting for the service, `Lock:object` the notification lock every
notifying commit takes, `IO:WALSync` a commit's WAL flush. Start it when
the run to watch starts, for example on the fan-out's log line:

    python3 bench/driver.py --only fanout > run.log &
    until grep -q 'fan-out on postgres' run.log; do sleep 0.2; done
    python3 bench/pg_waits.py 5
"""

import argparse
import collections
import subprocess
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("duration", type=float, help="seconds to sample")
    parser.add_argument("pattern", nargs="?", default="deploy_gate_bench%")
    parser.add_argument("--url", default="postgres://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    query = (
        "SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, 'running')"
        " || ':' || state FROM pg_stat_activity"
        f" WHERE datname LIKE '{args.pattern}' AND backend_type = 'client backend'"
        " AND pid <> pg_backend_pid();\nSELECT '--end--';\n"
    )
    psql = subprocess.Popen(
        ["psql", args.url, "-At"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
    )
    counts: collections.Counter[str] = collections.Counter()
    samples = 0
    started = time.time()
    while time.time() - started < args.duration:
        psql.stdin.write(query)
        psql.stdin.flush()
        while (line := psql.stdout.readline().strip()) != "--end--":
            if line:
                counts[line] += 1
        samples += 1
        time.sleep(0.01)
    psql.stdin.close()
    print(f"{samples} samples; backends in each state on average:")
    for state, count in counts.most_common():
        print(f"{count / samples:6.2f}  {state}")


if __name__ == "__main__":
    main()
