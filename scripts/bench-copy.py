#!/usr/bin/env python3
"""Side-by-side benchmark of `dclient copy`, run through scripts/bench-copy.sh.

  move   PACS -> PACS, 1,000 x 513 KB (10 studies): `dclient copy --via move` (inventory,
         C-MOVE per study, verification by C-FIND) against DCMTK `movescu` moving the same
         studies (one query file per study, one association, no verification).
  get    the same through us: `dclient copy --via get` (C-GET into a spool, C-STORE to the
         destination, verification) against `getscu` of the same studies into a folder,
         then `storescu +sd +r` of that folder (the scripted pipeline).
  send   folder -> PACS, the same 1,000 files: `dclient copy` (journal, scan beside the
         transfer, verification) against plain `dclient send` (the journal's overhead).
  scale  folder -> PACS with many small files (--scale-files, default 10000,100000):
         `dclient copy` peak RSS, and the time from start to the first C-STORE-RQ on the
         wire (seen by a relay in front of the destination).

The PACSs are `dclient serve` (source loaded once; a fresh, empty destination for every
run, so nobody replaces what an earlier run stored); the scale destination is DCMTK
`storescp --ignore`. Every run is checked: the destination must hold every instance.
Medians of --rounds; wall and CPU of the client processes (the pipeline's two added up,
its peak RSS the larger) and their peak RSS from GNU time.
"""

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402
    NODELAY, FirstPdataRelay, Server, free_port, generate, run_client)

STORESCP = "/usr/bin/storescp"
STORESCU = "/usr/bin/storescu"
MOVESCU = "/usr/bin/movescu"
GETSCU = "/usr/bin/getscu"
DUMP2DCM = "/usr/bin/dump2dcm"


class Serve(Server):
    """`dclient serve` on a free port."""

    def __init__(self, dclient, folder, ae="ANY-SCP", peers=()):
        self.port = free_port()
        args = [dclient, "serve", "--port", str(self.port), "--dir", folder, "--ae", ae,
                "--accept-any-ae", "-q"]
        for p in peers:
            args += ["--peer", p]
        self.start(args)


class StoreScp(Server):
    def __init__(self):
        self.port = free_port()
        self.start([STORESCP, "-pdu", "16384", "+xa", "--ignore", str(self.port)])


def dicom_files(d):
    return sorted(os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs
                  if f.endswith(".dcm") and not f.startswith("."))


def study_uids(data):
    """The Study Instance UID of each studyNNN folder (from its first file)."""
    import pydicom
    out = []
    for s in sorted(glob.glob(os.path.join(data, "study*"))):
        f = sorted(glob.glob(os.path.join(s, "*.dcm")))[0]
        out.append(str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID))
    return out


def query_files(uids, folder):
    """One study-level query file per study, for movescu and getscu."""
    os.makedirs(folder, exist_ok=True)
    out = []
    for i, u in enumerate(uids):
        dump = os.path.join(folder, f"q{i}.dump")
        with open(dump, "w") as fh:
            fh.write(f"(0008,0052) CS [STUDY]\n(0020,000d) UI [{u}]\n")
        q = os.path.join(folder, f"q{i}.dcm")
        subprocess.run([DUMP2DCM, dump, q], check=True, stderr=subprocess.DEVNULL)
        out.append(q)
    return out


def count_stored(folder):
    return sum(1 for _, _, fs in os.walk(folder) for f in fs if f.endswith(".dcm") and not f.startswith("."))


def median3(ms):
    return tuple(statistics.median(m[i] for m in ms) for i in range(3))


def bench_pacs(a, data, n_files):
    uids = study_uids(data)
    work = tempfile.mkdtemp(prefix="bench-copy-", dir=a.dir)
    queries = query_files(uids, os.path.join(work, "queries"))
    src_dir = os.path.join(a.dir, "src-pacs")
    dest_port = free_port()
    # The source knows the destination as DEST (and the pipeline's getscu needs nothing).
    shutil.rmtree(src_dir, ignore_errors=True)
    src = Serve(a.dclient, src_dir, peers=[f"DEST=127.0.0.1:{dest_port}"])
    results = {}
    try:
        subprocess.run([a.dclient, "send", "127.0.0.1", str(src.port), data, "-q"], check=True)
        for r in range(a.rounds):
            for name in clients_for(a.sets):
                dest_dir = tempfile.mkdtemp(prefix="dest-", dir=work)
                dest = Serve.__new__(Serve)
                dest.port = dest_port
                dest.start([a.dclient, "serve", "--port", str(dest_port), "--dir", dest_dir, "--ae", "DEST",
                            "--accept-any-ae", "-q"])
                try:
                    m = run_one(a, name, src.port, dest_port, queries, work, data)
                finally:
                    dest.stop()
                got = count_stored(dest_dir)
                if got != n_files or m[3] != 0:
                    sys.exit(f"{name}: {got}/{n_files} instances at the destination, exit {m[3]}")
                shutil.rmtree(dest_dir, ignore_errors=True)
                results.setdefault(name, []).append(m)
                print(f"  round {r + 1} {name}: {m[0]:.3f} s wall, {m[1]:.3f} s CPU, {m[2]:.1f} MiB", flush=True)
    finally:
        src.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {n: median3(v) for n, v in results.items()}


def clients_for(sets):
    out = []
    if "move" in sets:
        out += ["dclient copy --via move", "DCMTK movescu"]
    if "get" in sets:
        out += ["dclient copy --via get", "DCMTK getscu + storescu"]
    if "send" in sets:
        out += ["dclient copy (folder)", "dclient send"]
    return out


def run_one(a, name, src_port, dest_port, queries, work, data):
    src = f"ANY-SCP@127.0.0.1:{src_port}"
    dest = f"DEST@127.0.0.1:{dest_port}"
    journal = os.path.join(work, f"j-{time.monotonic_ns()}.journal")
    if name == "dclient copy --via move":
        return run_client([a.dclient, "copy", src, dest, "--journal", journal, "-q"])
    if name == "DCMTK movescu":
        return run_client([MOVESCU, "-S", "-aet", "DCLIENT", "-aec", "ANY-SCP", "-aem", "DEST",
                           "127.0.0.1", str(src_port)] + queries, NODELAY)
    if name == "dclient copy --via get":
        return run_client([a.dclient, "copy", src, dest, "--via", "get", "--journal", journal, "-q"])
    if name == "DCMTK getscu + storescu":
        # One getscu per study: DCMTK 3.6.7's getscu crashes (SIGSEGV) on its second
        # query file in one run.
        out = tempfile.mkdtemp(prefix="got-", dir=work)
        runs = [run_client([GETSCU, "-S", "-aet", "DCLIENT", "-aec", "ANY-SCP", "-od", out,
                            "127.0.0.1", str(src_port), q], NODELAY) for q in queries]
        runs.append(run_client([STORESCU, "+sd", "+r", "-aet", "DCLIENT", "-aec", "DEST", "127.0.0.1",
                                str(dest_port), out], NODELAY))
        shutil.rmtree(out, ignore_errors=True)
        return (sum(r[0] for r in runs), sum(r[1] for r in runs), max(r[2] for r in runs),
                next((r[3] for r in runs if r[3]), 0))
    if name == "dclient copy (folder)":
        return run_client([a.dclient, "copy", data, dest, "--journal", journal, "-q"])
    if name == "dclient send":
        return run_client([a.dclient, "send", "127.0.0.1", str(dest_port), data, "--host-ae", "DEST", "-q"])
    raise SystemExit(f"unknown client {name}")


def bench_scale(a, n):
    studies = max(1, n // 1000)
    data = generate(a.synth, a.dir, f"scale{n}",
                    ["--studies", str(studies), "--instances", str(n // studies), "--rows", "16", "--cols", "16"])
    files = dicom_files(data)
    scp = StoreScp()
    relay = FirstPdataRelay(scp.port)
    journal = os.path.join(a.dir, f"scale{n}-{time.monotonic_ns()}.journal")
    try:
        start = time.perf_counter()
        # storescp answers no C-FIND: the verification fails (exit 1); what counts here
        # is the transfer's memory and its first C-STORE.
        m = run_client([a.dclient, "copy", data, f"ANY@127.0.0.1:{relay.port}", "--journal", journal,
                        "--retries", "0", "-q"], timeout=7200)
        first = (relay.first - start) if relay.first else float("nan")
    finally:
        relay.close()
        scp.stop()
    size = os.path.getsize(journal)
    for f in glob.glob(journal + "*"):
        os.unlink(f)
    return len(files), m, first, size


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dclient", required=True)
    ap.add_argument("--synth", required=True)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "dclient-bench-copy"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sets", default="move,get,send,scale")
    ap.add_argument("--scale-files", default="10000,100000")
    a = ap.parse_args()
    a.sets = a.sets.split(",")
    os.makedirs(a.dir, exist_ok=True)
    rows = []
    if any(s in a.sets for s in ("move", "get", "send")):
        data = generate(a.synth, a.dir, "a513",
                        ["--studies", "10", "--instances", "100", "--rows", "512", "--cols", "512"])
        n = len(dicom_files(data))
        size = sum(os.path.getsize(f) for f in dicom_files(data))
        print(f"1,000 x 513 KB: {n} files, {size / 1e6:.1f} MB in {data}", flush=True)
        med = bench_pacs(a, data, n)
        pairs = [("move", "dclient copy --via move", "DCMTK movescu"),
                 ("get", "dclient copy --via get", "DCMTK getscu + storescu"),
                 ("send", "dclient copy (folder)", "dclient send")]
        for key, ours, theirs in pairs:
            if key in a.sets:
                rows.append((key, ours, med[ours], theirs, med[theirs]))
    scale = []
    if "scale" in a.sets:
        for n in (int(x) for x in a.scale_files.split(",")):
            files, m, first, jsize = bench_scale(a, n)
            print(f"  scale {files} files: {m[0]:.1f} s wall, {m[1]:.1f} s CPU, {m[2]:.1f} MiB, "
                  f"first C-STORE after {first:.2f} s, journal {jsize / 1e6:.1f} MB", flush=True)
            scale.append((files, m, first, jsize))

    print()
    print(f"Medians of {a.rounds} rounds, loopback, `dclient serve` as source and destination.")
    print()
    print("| run | client | wall (s) | CPU user+sys (s) | peak RSS (MiB) | wall ratio | CPU ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for key, ours, o, theirs, t in rows:
        print(f"| {key} | {ours} | {o[0]:.3f} | {o[1]:.3f} | {o[2]:.1f} | {o[0] / t[0]:.2f}x | {o[1] / t[1]:.2f}x |")
        print(f"| {key} | {theirs} | {t[0]:.3f} | {t[1]:.3f} | {t[2]:.1f} | 1.00x | 1.00x |")
    if scale:
        print()
        print("| files (1.7 KB) | wall (s) | CPU (s) | peak RSS (MiB) | first C-STORE after (s) | journal (MB) |")
        print("|---:|---:|---:|---:|---:|---:|")
        for files, m, first, jsize in scale:
            print(f"| {files:,} | {m[0]:.1f} | {m[1]:.1f} | {m[2]:.1f} | {first:.2f} | {jsize / 1e6:.1f} |")


if __name__ == "__main__":
    main()
