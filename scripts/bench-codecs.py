#!/usr/bin/env python3
"""Side-by-side benchmark of compressed objects: `dclient send` against the pipeline a user
scripts today, into DCMTK `storescp` on loopback. Run through scripts/bench-codecs.sh.

  decode  200 CT files 512x512x16 compressed by GDCM (JPEG 2000 lossless), DCMTK (JPEG-LS
          lossless, RLE), sent to a storescp that accepts Implicit VR only (+xi --ignore):
          `dclient send DIR` (it decodes on a second thread while it sends) against
          `gdcmconv --raw` / `dcmdjpls` / `dcmdrle` of each file, then `storescu +sd +r`.
  encode  the 200 uncompressed files to a storescp taking everything (+xa --ignore) with
          `dclient send --transfer-syntax rle | j2k-lossless | jpeg-ls-lossless`: throughput
          of native data and compression ratio; against `dcmcrle` / `dcmcjpls` + storescu.
  memory  one 1 GiB multi-frame file (512x512x2048) sent as RLE, JPEG 2000 and JPEG-LS, and
          one 2,000-frame JPEG 2000 object (256x256, by GDCM) to an Implicit-only storescp:
          peak RSS of dclient (GNU time).

Wall time and client CPU (user+sys, the pipeline's whole process tree) are medians of
ROUNDS alternating runs; each client is checked once against a storescp that writes files.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Server, free_port, run_client  # noqa: E402

STORESCP = "/usr/bin/storescp"
STORESCU = "/usr/bin/storescu"
GDCMCONV = "/usr/bin/gdcmconv"


class StoreScp(Server):
    def __init__(self, mode, out_dir=None):
        self.port = free_port()
        args = [STORESCP, "-pdu", "16384", mode]
        args += ["--ignore"] if out_dir is None else ["-od", out_dir]
        self.start(args + [str(self.port)])


def sh(cmd):
    subprocess.run(["bash", "-c", cmd], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def files(d):
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".dcm"))


def du(d):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)


def generate(args):
    root = args.dir
    ct = os.path.join(root, "ct")
    if not os.path.isdir(ct):
        print(f"generating 200 CT files in {ct}", file=sys.stderr)
        subprocess.run([args.synth, ct + ".tmp", "--seed", "7", "--studies", "1", "--series", "1",
                        "--instances", str(args.n), "--rows", "512", "--cols", "512",
                        "--syntax", "explicit"], check=True, stdout=subprocess.DEVNULL)
        flat = ct + ".flat"
        os.makedirs(flat)
        for r, _, fs in os.walk(ct + ".tmp"):
            for f in fs:
                os.rename(os.path.join(r, f), os.path.join(flat, f if f.endswith(".dcm") else f + ".dcm"))
        shutil.rmtree(ct + ".tmp")
        os.rename(flat, ct)
    for name, cmd in [("j2k", f"{GDCMCONV} --j2k"), ("jls", "/usr/bin/dcmcjpls"), ("rle", "/usr/bin/dcmcrle")]:
        d = os.path.join(root, name)
        if os.path.isdir(d):
            continue
        print(f"compressing into {d} with {cmd}", file=sys.stderr)
        os.makedirs(d + ".tmp")
        for f in files(ct):
            sh(f"{cmd} {f} {d}.tmp/{os.path.basename(f)}")
        os.rename(d + ".tmp", d)
    big = os.path.join(root, "big")
    if not os.path.isdir(big):
        print("generating the 1 GiB multi-frame file", file=sys.stderr)
        subprocess.run([args.synth, big + ".tmp", "--seed", "8", "--studies", "1", "--series", "1",
                        "--instances", "1", "--rows", "512", "--cols", "512", "--frames", "2048",
                        "--syntax", "explicit"], check=True, stdout=subprocess.DEVNULL)
        os.rename(big + ".tmp", big)
    mf = os.path.join(root, "mf2000")
    if not os.path.isdir(mf):
        print("generating the 2,000-frame JPEG 2000 object (GDCM)", file=sys.stderr)
        src = mf + ".src"
        subprocess.run([args.synth, src, "--seed", "9", "--studies", "1", "--series", "1",
                        "--instances", "1", "--rows", "256", "--cols", "256", "--frames", "2000",
                        "--syntax", "explicit"], check=True, stdout=subprocess.DEVNULL)
        os.makedirs(mf + ".tmp")
        (f,) = [os.path.join(r, x) for r, _, fs in os.walk(src) for x in fs]
        sh(f"{GDCMCONV} --j2k {f} {mf}.tmp/mf2000.dcm")
        shutil.rmtree(src)
        os.rename(mf + ".tmp", mf)
    return ct


def decode_clients(args, kind, port, tmp):
    d = os.path.join(args.dir, kind)
    decoder = {"j2k": f"{GDCMCONV} --raw", "jls": "/usr/bin/dcmdjpls", "rle": "/usr/bin/dcmdrle"}[kind]
    dclient = args.dclient
    script = (f"set -e; rm -rf {tmp}; mkdir -p {tmp}; for f in {d}/*.dcm; do "
              f"{decoder} \"$f\" {tmp}/$(basename \"$f\"); done; "
              f"TCP_NODELAY=1 {STORESCU} +sd +r 127.0.0.1 {port} {tmp}")
    c = {}
    if dclient:
        c[f"dclient send ({kind})"] = [dclient, "send", "127.0.0.1", str(port), d, "-q"]
        c[f"dclient send --parallel 2 ({kind})"] = [dclient, "send", "127.0.0.1", str(port), d, "-q", "--parallel", "2"]
    c[f"{decoder.split()[0].split('/')[-1]} + storescu ({kind})"] = ["bash", "-c", script]
    return c


def encode_clients(args, ts, port, tmp, ct):
    dclient = args.dclient
    c = {}
    if dclient:
        c[f"dclient send --transfer-syntax {ts}"] = [dclient, "send", "127.0.0.1", str(port), ct, "-q", "--transfer-syntax", ts]
    enc, propose = {"rle": ("/usr/bin/dcmcrle", "-xr"), "jpeg-ls-lossless": ("/usr/bin/dcmcjpls", "-xt")}.get(ts, (None, None))
    if enc:
        script = (f"set -e; rm -rf {tmp}; mkdir -p {tmp}; for f in {ct}/*.dcm; do "
                  f"{enc} \"$f\" {tmp}/$(basename \"$f\"); done; "
                  f"TCP_NODELAY=1 {STORESCU} {propose} +sd +r 127.0.0.1 {port} {tmp}")
        c[f"{enc.split('/')[-1]} + storescu"] = ["bash", "-c", script]
    return c


def verify(clients, mode, expect):
    for name, cmd in clients.items():
        out = tempfile.mkdtemp(prefix="bench-codecs-verify-")
        scp = StoreScp(mode, out)
        fixed = [a.replace("@PORT@", str(scp.port)) for a in cmd]
        run_client(fixed)
        scp.stop()
        got = sum(len(fs) for _, _, fs in os.walk(out))
        shutil.rmtree(out)
        if got != expect:
            sys.exit(f"{name}: {got} of {expect} objects arrived")


def table(title, rows, extra=None):
    print(f"\n### {title}\n")
    hdr = "| client | wall (s) | CPU user+sys (s) | peak RSS (MiB) | wall vs pipeline |"
    if extra:
        hdr = hdr + f" {extra} |"
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    base = next((r for r in rows if "storescu" in r[0]), None)
    for name, w, c, m, x in rows:
        ratio = f"{w / base[1]:.2f}x" if base else ""
        line = f"| {name} | {w:.2f} | {c:.2f} | {m:.1f} | {ratio} |"
        if extra:
            line += f" {x} |"
        print(line)


def bench(clients, mode, rounds, extra=lambda name: ""):
    scp = StoreScp(mode)
    stats = {n: [] for n in clients}
    for _ in range(rounds):
        for name, cmd in clients.items():
            fixed = [a.replace("@PORT@", str(scp.port)) for a in cmd]
            w, c, m, rc = run_client(fixed)
            if rc != 0:
                sys.exit(f"{name} failed")
            stats[name].append((w, c, m))
    scp.stop()
    rows = []
    for name, v in stats.items():
        rows.append((name, statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
                     max(x[2] for x in v), extra(name)))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dclient", required=True)
    ap.add_argument("--synth", required=True)
    ap.add_argument("--dir", default="/tmp/dclient-bench-codecs")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--parts", default="decode,encode,memory")
    ap.add_argument("--kinds", default="j2k,jls,rle", help="which syntaxes' rows to run")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    ct = generate(args)
    tmp = os.path.join(args.dir, "pipeline.tmp")
    parts = args.parts.split(",")
    native = du(ct)
    print(f"data: {args.n} files, {native / 1e6:.0f} MB uncompressed; J2K {du(os.path.join(args.dir, 'j2k')) / 1e6:.0f} MB, "
          f"JPEG-LS {du(os.path.join(args.dir, 'jls')) / 1e6:.0f} MB, RLE {du(os.path.join(args.dir, 'rle')) / 1e6:.0f} MB")
    if "decode" in parts:
        for kind in [k for k in ["j2k", "jls", "rle"] if k in args.kinds.split(",")]:
            c = decode_clients(args, kind, "@PORT@", tmp)
            verify(c, "+xi", args.n)
            table(f"decode {kind}: {args.n} x 512x512x16 to storescp +xi", bench(c, "+xi", args.rounds))
    if "encode" in parts:
        kinds = {"rle": "rle", "j2k-lossless": "j2k", "jpeg-ls-lossless": "jls"}
        for ts in [t for t, k in kinds.items() if k in args.kinds.split(",")]:
            c = encode_clients(args, ts, "@PORT@", tmp, ct)
            if not c:
                continue
            verify(c, "+xa", args.n)
            # Compression ratio: what the peer received against the native files.
            out = tempfile.mkdtemp(prefix="bench-codecs-ratio-")
            scp = StoreScp("+xa", out)
            first = next(iter(c.values()))
            run_client([a.replace("@PORT@", str(scp.port)) for a in first])
            scp.stop()
            ratio = native / max(du(out), 1)
            shutil.rmtree(out)
            rows = bench(c, "+xa", args.rounds)
            rows = [(n, w, cpu, m, f"{native / 1e6 / w:.0f} MB/s") for n, w, cpu, m, _ in rows]
            table(f"encode {ts}: {args.n} files to storescp +xa (ratio {ratio:.2f}:1)", rows, "native MB/s")
    if "memory" in parts:
        big = os.path.join(args.dir, "big")
        mf = os.path.join(args.dir, "mf2000")
        c = {"dclient send, 1 GiB as it is": [args.dclient, "send", "127.0.0.1", "@PORT@", big, "-q"]}
        for ts, kind in [("rle", "rle"), ("j2k-lossless", "j2k"), ("jpeg-ls-lossless", "jls")]:
            if kind in args.kinds.split(","):
                exe = args.dclient
                c[f"dclient send --transfer-syntax {ts}, 1 GiB"] = [exe, "send", "127.0.0.1", "@PORT@", big, "-q", "--transfer-syntax", ts]
        verify(c, "+xa", 1)
        table("memory: one 1 GiB multi-frame (512x512x2048) to storescp +xa", bench(c, "+xa", 1))
        if "j2k" in args.kinds.split(","):
            c = {"dclient send, 2,000-frame J2K (256x256) decoded": [args.dclient, "send", "127.0.0.1", "@PORT@", mf, "-q"]}
            verify(c, "+xi", 1)
            table("memory: a 2,000-frame JPEG 2000 object to storescp +xi", bench(c, "+xi", 1))


if __name__ == "__main__":
    main()
