#!/usr/bin/env python3
"""Sending very many files: memory, time to the first C-STORE, and throughput.

Builds a tree of N hard links (folders of 1,000) to the 5,000 small files (1.7 KB) of set b
of bench-send.py, then, into DCMTK `storescp --ignore` on loopback:
  - every client's wall time, CPU, peak RSS (GNU time) and files/s, medians of ROUNDS runs;
  - the time from the client's start to its first C-STORE-RQ on the wire, through a small
    TCP relay that watches the client's PDUs (the run is then stopped).
Clients: `dclient send` (this build), optionally an older build (--old-dclient: today's
`send` before the pipeline), and DCMTK `storescu +sd +r`.

Run through scripts/bench-send-scale.sh, which builds the release binaries.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import NODELAY, FirstPdataRelay, Server, free_port, run_client  # noqa: E402

STORESCP = "/usr/bin/storescp"
STORESCU = "/usr/bin/storescu"


class StoreScp(Server):
    def __init__(self):
        self.port = free_port()
        self.start([STORESCP, "-pdu", "16384", "+xa", "--ignore", str(self.port)])


def build_tree(src, root, n):
    """`root` with n hard links to the files of `src`, 1,000 per folder."""
    done = root + ".done"
    if os.path.exists(done) and open(done).read() == str(n):
        return root
    shutil.rmtree(root, ignore_errors=True)
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(src) for f in fs)
    for i in range(n):
        d = os.path.join(root, f"d{i // 1000:04d}")
        if i % 1000 == 0:
            os.makedirs(d)
        os.link(files[i % len(files)], os.path.join(d, f"f{i:07d}.dcm"))
    with open(done, "w") as fh:
        fh.write(str(n))
    return root


def first_store(cargs, scp_port, timeout=60.0):
    """Seconds from the client's start to its first P-DATA-TF after A-ASSOCIATE-RQ, seen
    on a relay (on a port of its own) in front of the SCP; the client is stopped then."""
    relay = FirstPdataRelay(scp_port)
    args = [str(relay.port) if x == "PORT" else x for x in cargs]
    start = time.perf_counter()
    p = subprocess.Popen(args, env=NODELAY, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = start + timeout
    while relay.first is None and time.perf_counter() < end and p.poll() is None:
        time.sleep(0.005)
    p.kill()
    p.wait()
    relay.close()
    return relay.first - start if relay.first is not None else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dclient", required=True)
    ap.add_argument("--old-dclient", help="an older dclient build to compare with")
    ap.add_argument("--synth", required=True)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "dclient-bench"))
    ap.add_argument("--files", default="100000,1000000", help="comma-separated tree sizes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-first-store", action="store_true", help="leave the first-C-STORE runs out")
    ap.add_argument("--big-rounds", type=int, default=1, help="rounds at 1,000,000 files and more")
    ap.add_argument("--no-storescu-above", type=int, default=1000000,
                    help="leave DCMTK storescu out above this many files")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    src = os.path.join(args.dir, "b")
    if not os.path.exists(src + ".done"):
        shutil.rmtree(src, ignore_errors=True)
        subprocess.run([args.synth, src, "--seed", "1", "--studies", "10", "--instances", "500",
                        "--rows", "16", "--cols", "16"], check=True, stdout=subprocess.DEVNULL)
        open(src + ".done", "w").close()

    table = []
    for n in (int(x) for x in args.files.split(",")):
        root = build_tree(src, os.path.join(args.dir, f"tree-{n}"), n)
        print(f"{n} files in {root}", flush=True)
        clients = {"dclient": [args.dclient, "send", "127.0.0.1", "PORT", root, "-q"]}
        if args.old_dclient:
            clients["dclient (before)"] = [args.old_dclient, "send", "127.0.0.1", "PORT", root, "-q"]
        if n <= args.no_storescu_above:
            clients["DCMTK storescu"] = [STORESCU, "+sd", "+r", "127.0.0.1", "PORT", root]
        rounds = args.rounds if n < 1000000 else args.big_rounds
        results = {}
        scp = StoreScp()
        try:
            for r in range(rounds):
                for name, cargs in clients.items():
                    a = [str(scp.port) if x == "PORT" else x for x in cargs]
                    m = run_client(a, NODELAY, timeout=7200)
                    results.setdefault(name, []).append(m)
                    print(f"  round {r + 1} {name}: {m[0]:.1f} s, {m[1]:.1f} s CPU, {m[2]:.1f} MiB, exit {m[3]}", flush=True)
            firsts = {name: float("nan") for name in clients}
            for name, cargs in ([] if args.no_first_store else clients.items()):
                firsts[name] = statistics.median(first_store(cargs, scp.port) for _ in range(3))
                print(f"  first C-STORE {name}: {firsts[name]:.3f} s", flush=True)
        finally:
            scp.stop()
        for name, v in results.items():
            w, c, m = (statistics.median(x[i] for x in v) for i in range(3))
            table.append((n, name, w, c, m, n / w, firsts[name], len(v)))

    print()
    print("| files | client | wall (s) | CPU (s) | peak RSS (MiB) | files/s | first C-STORE (s) | runs |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for n, name, w, c, m, rate, first, runs in table:
        print(f"| {n:,} | {name} | {w:.1f} | {c:.1f} | {m:.1f} | {rate:,.0f} | {first:.3f} | {runs} |")


if __name__ == "__main__":
    main()
