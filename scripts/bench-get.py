#!/usr/bin/env python3
"""Side-by-side C-GET benchmark: `dclient get` vs DCMTK `getscu` vs pynetdicom `getscu`,
all retrieving the same 1,000 CT-like files of 512 KB (512x512x16-bit, explicit VR LE, one
patient, 10 studies) from DCMTK `dcmqrscp` on loopback, run with TCP_NODELAY=1 in its
environment. Each client retrieves everything with one PATIENT-level C-GET (Patient Root),
once receiving without writing (`--ignore`) and once writing files; clients alternate,
ROUNDS times. Before timing, each client's writing run must deliver all 1,000 files.
Medians of wall time, client CPU (user+sys) and client peak RSS, as a Markdown table.

Run through scripts/bench-get.sh, which builds the release binaries.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import NODELAY, Server, free_port, run_client  # noqa: E402

DCMQRSCP = "/usr/bin/dcmqrscp"
STORESCU = "/usr/bin/storescu"
GETSCU = "/usr/bin/getscu"
DCMDUMP = "/usr/bin/dcmdump"
AE = "QRSCP"


class QrScp(Server):
    """dcmqrscp on a free port with its own configuration and storage area."""

    def __init__(self, root):
        self.port = free_port()
        self.store = os.path.join(root, "qr-store")
        os.makedirs(self.store, exist_ok=True)
        cfg = os.path.join(root, "dcmqrscp.cfg")
        with open(cfg, "w") as fh:
            fh.write(f"""NetworkTCPPort = {self.port}
MaxPDUSize = 16384
MaxAssociations = 16
HostTable BEGIN
HostTable END
VendorTable BEGIN
VendorTable END
AETable BEGIN
{AE} {self.store} RW (10, 1024mb) ANY
AETable END
""")
        self.start([DCMQRSCP, "-c", cfg, "-dhl", str(self.port)])


def patient_id(path):
    out = subprocess.run([DCMDUMP, "+P", "PatientID", path], capture_output=True, text=True).stdout
    return out.split("[", 1)[1].split("]", 1)[0]


def clients(dclient, port, pid, out):
    """name -> (argv, env) for receiving into `out`, or without writing when out is None."""
    d_out = ["--ignore"] if out is None else ["--out", out]
    g_out = ["--ignore"] if out is None else ["-od", out]
    p_out = ["--ignore"] if out is None else ["-od", out]
    return {
        "dclient get": ([dclient, "get", "127.0.0.1", str(port), "--host-ae", AE, "--level", "patient",
                         "-k", f"PatientID={pid}", "-q"] + d_out, None),
        "DCMTK getscu": ([GETSCU, "-P", "-aec", AE, "-k", "QueryRetrieveLevel=PATIENT", "-k",
                          f"PatientID={pid}", "127.0.0.1", str(port)] + g_out, NODELAY),
        "pynetdicom getscu": ([sys.executable, "-m", "pynetdicom", "getscu", "-P", "-aec", AE, "-k",
                               "QueryRetrieveLevel=PATIENT", "-k", f"PatientID={pid}", "127.0.0.1",
                               str(port)] + p_out, None),
    }


def count_dicom(d):
    return sum(1 for _, _, files in os.walk(d) for f in files if not f.startswith("."))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dclient", required=True)
    ap.add_argument("--synth", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--py-rounds", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/dclient-bench-get")
    a = ap.parse_args()

    data = os.path.join(a.dir, "a")
    if count_dicom(data) != 1000:
        shutil.rmtree(data, ignore_errors=True)
        subprocess.run([a.synth, data, "--patients", "1", "--studies", "10", "--series", "1",
                        "--instances", "100", "--rows", "512", "--cols", "512", "--syntax",
                        "explicit", "--seed", "5"], check=True)
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(data) for f in fs)
    pid = patient_id(files[0])

    root = tempfile.mkdtemp(prefix="qr-", dir=a.dir)
    qr = QrScp(root)
    try:
        subprocess.run([STORESCU, "+sd", "+r", "-aec", AE, "127.0.0.1", str(qr.port), data],
                       env=NODELAY, check=True, stdout=subprocess.DEVNULL)
        # Every client must deliver all files once before anything is timed.
        for name, (args, env) in clients(a.dclient, qr.port, pid, "OUT").items():
            if name.startswith("pynetdicom") and a.py_rounds == 0:
                continue
            out = tempfile.mkdtemp(prefix="rx-", dir=a.dir)
            args = [out if x == "OUT" else x for x in args]
            _, _, _, rc = run_client(args, env)
            n = count_dicom(out)
            shutil.rmtree(out)
            if n != 1000:
                sys.exit(f"{name} delivered {n} of 1000 files (exit {rc})")
            print(f"checked: {name} delivered 1000 files", file=sys.stderr)

        results = {}
        for mode in ("not writing", "writing"):
            for r in range(a.rounds):
                for name in clients(a.dclient, qr.port, pid, None):
                    py = name.startswith("pynetdicom")
                    if py and r >= a.py_rounds:
                        continue
                    out = None if mode == "not writing" else tempfile.mkdtemp(prefix="rx-", dir=a.dir)
                    args, env = clients(a.dclient, qr.port, pid, out)[name]
                    wall, cpu, rss, rc = run_client(args, env)
                    if out is not None:
                        shutil.rmtree(out)
                    if rc == 0:
                        results.setdefault((mode, name), []).append((wall, cpu, rss))
                    print(f"  {mode:12} round {r + 1}: {name:18} {wall:7.3f} s wall {cpu:6.3f} s cpu",
                          file=sys.stderr)
    finally:
        qr.stop()
        shutil.rmtree(root, ignore_errors=True)

    print("| mode | client | wall (s) | client CPU (s) | peak RSS (MiB) | wall vs getscu | CPU vs getscu |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for mode in ("not writing", "writing"):
        base = results.get((mode, "DCMTK getscu"))
        bw = statistics.median(x[0] for x in base) if base else None
        bc = statistics.median(x[1] for x in base) if base else None
        for name in ("dclient get", "DCMTK getscu", "pynetdicom getscu"):
            runs = results.get((mode, name))
            if not runs:
                continue
            w = statistics.median(x[0] for x in runs)
            c = statistics.median(x[1] for x in runs)
            m = statistics.median(x[2] for x in runs)
            rw = f"{w / bw:.2f}x" if bw else ""
            rc = f"{c / bc:.2f}x" if bc else ""
            print(f"| {mode} | {name} | {w:.3f} | {c:.3f} | {m:.1f} | {rw} | {rc} |")
    for name in ("dclient get", "DCMTK getscu"):
        nw, wr = results.get(("not writing", name)), results.get(("writing", name))
        if nw and wr:
            print(f"\n{name}: writing files costs {statistics.median(x[0] for x in wr) / statistics.median(x[0] for x in nw):.2f}x not writing (wall)")


if __name__ == "__main__":
    main()
