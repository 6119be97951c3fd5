#!/usr/bin/env python3
"""The async (tokio) driver against the blocking one, side by side, medians of ROUNDS runs.

  1. N concurrent C-FIND associations from one process against `dclient serve`
     (--max-associations N+16): async tasks on 2 runtime threads vs the blocking driver on
     N threads. Wall time, client CPU (user+sys), client peak RSS (GNU time).
  2. One association, set A (1,000 files of 512 KB) into DCMTK `storescp --ignore`: async
     vs blocking, wall and CPU (target: async within 1.05x of blocking).
  3. M C-FINDs on one association (`Association`) vs one association per C-FIND.

Run through scripts/bench-async.sh, which builds the release binaries.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Server, free_port, run_client  # noqa: E402


class Serve(Server):
    def __init__(self, dclient, pacs, max_assoc):
        self.port = free_port()
        self.start([dclient, "serve", "--port", str(self.port), "--dir", pacs,
                    "--max-associations", str(max_assoc), "-q"])


class StoreScp(Server):
    def __init__(self):
        self.port = free_port()
        self.start(["/usr/bin/storescp", "-pdu", "16384", "+xa", "--ignore", str(self.port)])


def median_table(title, rows, rounds):
    print(f"\n### {title} (medians of {rounds} runs)\n")
    print("| client | wall s | CPU s | peak RSS MiB |")
    print("|---|---:|---:|---:|")
    for name, runs in rows.items():
        w = statistics.median(r[0] for r in runs)
        c = statistics.median(r[1] for r in runs)
        m = statistics.median(r[2] for r in runs)
        print(f"| {name} | {w:.2f} | {c:.2f} | {m:.1f} |")
    names = list(rows)
    if len(names) == 2:
        a, b = (rows[n] for n in names)
        wa, wb = statistics.median(r[0] for r in a), statistics.median(r[0] for r in b)
        ca, cb = statistics.median(r[1] for r in a), statistics.median(r[1] for r in b)
        ma, mb = statistics.median(r[2] for r in a), statistics.median(r[2] for r in b)
        print(f"\n{names[0]} / {names[1]}: wall {wa / wb:.2f}x, CPU {ca / cb:.2f}x, "
              f"RSS {ma / mb:.2f}x")


def rounds_of(clients, rounds):
    rows = {name: [] for name in clients}
    for _ in range(rounds):
        for name, args in clients.items():
            wall, cpu, rss, rc = run_client(args)
            if rc != 0:
                sys.exit(f"{name} failed (exit {rc})")
            rows[name].append((wall, cpu, rss))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dclient", required=True)
    ap.add_argument("--bench", required=True, help="the bench_drivers example")
    ap.add_argument("--synth", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--finds", type=int, default=500)
    ap.add_argument("--sequential", type=int, default=1000)
    ap.add_argument("--only", default="123")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-async-")

    if "1" in a.only or "3" in a.only:
        pacs = os.path.join(work, "pacs")
        src = os.path.join(work, "studies")
        subprocess.run([a.synth, src, "--studies", "20", "--series", "1", "--instances", "1",
                        "--rows", "8", "--cols", "8"], check=True, stdout=subprocess.DEVNULL)
        serve = Serve(a.dclient, pacs, a.finds + 16)
        try:
            subprocess.run([a.dclient, "send", "127.0.0.1", str(serve.port), src, "-q"],
                           check=True)
            p = str(serve.port)
            if "1" in a.only:
                rows = rounds_of({
                    f"async, {a.finds} tasks on 2 threads":
                        [a.bench, "finds-async", "127.0.0.1", p, str(a.finds)],
                    f"blocking, {a.finds} threads":
                        [a.bench, "finds-threads", "127.0.0.1", p, str(a.finds)],
                }, a.rounds)
                median_table(f"{a.finds} concurrent C-FINDs (20 study matches each) against "
                             "dclient serve", rows, a.rounds)
            if "3" in a.only:
                rows = rounds_of({
                    "one association": [a.bench, "finds-one-assoc", "127.0.0.1", p,
                                        str(a.sequential)],
                    "one association per C-FIND": [a.bench, "finds-per-call", "127.0.0.1", p,
                                                   str(a.sequential)],
                }, a.rounds)
                median_table(f"{a.sequential} C-FINDs one after the other against dclient "
                             "serve", rows, a.rounds)
        finally:
            serve.stop()

    if "2" in a.only:
        data = os.path.join(work, "set-a")
        subprocess.run([a.synth, data, "--studies", "10", "--series", "1", "--instances",
                        "100", "--rows", "512", "--cols", "512"], check=True,
                       stdout=subprocess.DEVNULL)
        scp = StoreScp()
        try:
            p = str(scp.port)
            rows = rounds_of({
                "async": [a.bench, "send-async", "127.0.0.1", p, data],
                "blocking": [a.bench, "send-blocking", "127.0.0.1", p, data],
            }, a.rounds)
            median_table("send set A (1,000 x 513 KB) on one association into DCMTK "
                         "storescp --ignore", rows, a.rounds)
        finally:
            scp.stop()


if __name__ == "__main__":
    main()
