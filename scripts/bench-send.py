#!/usr/bin/env python3
"""Side-by-side C-STORE benchmark: `dclient send` vs DCMTK `storescu` (and pynetdicom's
`storescu` for set a), into DCMTK `storescp --ignore -pdu 16384` on loopback, plus the raw
loopback ceiling (the same file bytes through one TCP socket with sendfile).

Run through scripts/bench-send.sh, which builds the release binaries. Sets:
  a  1,000 CT-like files of 512 KB (512x512x16-bit, explicit VR LE, 10 studies)
  b  5,000 files of 1.7 KB (16x16)
  c  one 1 GiB multi-frame file (512x512x2048)
Each client runs ROUNDS times, alternating; medians of wall time, client CPU (user+sys) and
client peak RSS are printed as a Markdown table. Before timing, every client's run is checked
once against a storescp that writes files: all objects must arrive.
"""

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import NODELAY, Server, free_port, generate, run_client  # noqa: E402

STORESCP = "/usr/bin/storescp"
STORESCU = "/usr/bin/storescu"


class StoreScp(Server):
    """DCMTK storescp on a free port: --ignore (timing) or writing files into a folder."""

    def __init__(self, out_dir=None):
        self.port = free_port()
        args = [STORESCP, "-pdu", "16384", "+xa"]
        if out_dir is None:
            args.append("--ignore")
        else:
            args += ["-od", out_dir]
        args.append(str(self.port))
        self.start(args)


def clients(dclient, port, data, with_pynetdicom):
    c = {
        "dclient": ([dclient, "send", "127.0.0.1", str(port), data, "-q"], None),
        "DCMTK storescu": ([STORESCU, "+sd", "+r", "127.0.0.1", str(port), data], NODELAY),
    }
    if with_pynetdicom:
        c["pynetdicom storescu"] = (
            [sys.executable, "-m", "pynetdicom", "storescu", "-q", "-r", "127.0.0.1", str(port), data],
            None,
        )
    return c


def count_files(d):
    return sum(len(f) for _, _, f in os.walk(d))


def verify(dclient, data, n_files, with_pynetdicom):
    """Each client once into a storescp that writes files: every object must arrive."""
    for name, (args, env) in clients(dclient, 0, data, with_pynetdicom).items():
        out = tempfile.mkdtemp(prefix="bench-rx-", dir=os.path.dirname(data))
        scp = StoreScp(out)
        try:
            args = [a if a != "0" else str(scp.port) for a in args]
            _, _, _, code = run_client(args, env)
            time.sleep(0.3)
            got = count_files(out)
        finally:
            scp.stop()
            shutil.rmtree(out, ignore_errors=True)
        ok = got == n_files and code == 0
        print(f"  check {name}: {got}/{n_files} objects arrived, exit {code}" + ("" if ok else "  <-- FAILED"))
        if not ok:
            sys.exit(f"{name} did not deliver every file of {data}")


def raw_ceiling(files):
    """The same bytes through one TCP socket with sendfile; the receiver discards them."""
    total = sum(os.path.getsize(f) for f in files)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    done = threading.Event()

    def sink():
        conn, _ = srv.accept()
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        got = 0
        while got < total:
            n = conn.recv_into(view)
            if n == 0:
                break
            got += n
        conn.close()
        done.set()

    t = threading.Thread(target=sink)
    t.start()
    start = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for f in files:
        with open(f, "rb") as fh:
            s.sendfile(fh)
    s.shutdown(socket.SHUT_WR)
    done.wait(600)
    wall = time.perf_counter() - start
    s.close()
    t.join()
    srv.close()
    return wall


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dclient", required=True)
    ap.add_argument("--synth", required=True)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "dclient-bench"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--py-rounds", type=int, default=3, help="rounds for pynetdicom (slow; 0 leaves it out)")
    ap.add_argument("--sets", default="abc")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    sets = {
        "a": ("1,000 x 512 KB CT", ["--studies", "10", "--instances", "100", "--rows", "512", "--cols", "512"]),
        "b": ("5,000 x 1.7 KB", ["--studies", "10", "--instances", "500", "--rows", "16", "--cols", "16"]),
        "c": ("1 x 1 GiB multi-frame", ["--rows", "512", "--cols", "512", "--frames", "2048"]),
    }
    rows = []
    for key in args.sets:
        label, gen = sets[key]
        data = generate(args.synth, args.dir, key, gen)
        files = sorted(os.path.join(r, f) for r, _, fs in os.walk(data) for f in fs)
        size = sum(os.path.getsize(f) for f in files)
        print(f"set {key}: {label}: {len(files)} files, {size / 1e6:.1f} MB in {data}", flush=True)
        with_py = key == "a" and args.py_rounds > 0
        verify(args.dclient, data, len(files), with_py)

        results = {}
        scp = StoreScp()
        try:
            cl = clients(args.dclient, scp.port, data, with_py)
            for r in range(args.rounds):
                for name, (cargs, env) in cl.items():
                    if name.startswith("pynetdicom") and r >= args.py_rounds:
                        continue
                    m = run_client(cargs, env)
                    results.setdefault(name, []).append(m)
                    print(f"  round {r + 1} {name}: {m[0]:.3f} s wall, {m[1]:.3f} s CPU, {m[2]:.1f} MiB", flush=True)
        finally:
            scp.stop()
        raw = statistics.median(raw_ceiling(files) for _ in range(args.rounds))
        med = {n: tuple(statistics.median(x[i] for x in v) for i in range(3)) for n, v in results.items()}
        d, k = med["dclient"], med["DCMTK storescu"]
        rows.append((key, label, med, raw, d, k))
        print(f"  raw ceiling {raw:.3f} s; dclient/DCMTK wall {d[0] / k[0]:.2f}x, CPU {d[1] / k[1]:.2f}x, "
              f"dclient/raw {d[0] / raw:.2f}x", flush=True)

    print()
    print(f"Medians of {args.rounds} rounds (pynetdicom: {args.py_rounds}), loopback, "
          "into `TCP_NODELAY=1 storescp --ignore -pdu 16384`.")
    print()
    print("| set | client | wall (s) | CPU user+sys (s) | peak RSS (MiB) | wall vs DCMTK | CPU vs DCMTK | wall vs raw |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for key, label, med, raw, d, k in rows:
        for name, (w, c, m) in med.items():
            print(f"| {key}: {label} | {name} | {w:.3f} | {c:.3f} | {m:.1f} | {w / k[0]:.2f}x | {c / k[1]:.2f}x | {w / raw:.2f}x |")
        print(f"| {key}: {label} | raw sendfile ceiling | {raw:.3f} | | | {raw / k[0]:.2f}x | | 1.00x |")


if __name__ == "__main__":
    main()
