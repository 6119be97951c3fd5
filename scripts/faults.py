"""Load and fault runs against `dclient serve` (issue 16), with the figures the README's
Robustness section quotes. Run through scripts/faults.sh, which builds the release binary.

Runs, each on fresh folders under --work, all traffic on 127.0.0.1, every wait bounded:
  load      32 concurrent senders of three kinds (dclient send, DCMTK storescu, pynetdicom
            storescu) against one serve, while another SQLite writer holds the index for
            0.5 s at a time; every file stored once with its data set byte-identical, the
            index equal to the folder, a C-FIND at IMAGE level counting every file.
  second    a second serve on the same folder: exit status and its one line.
  kill9     serve killed with SIGKILL in the middle of a load, restarted on the same folder:
            index against folder, leftover temporary files, then the senders again.
  sender    a dclient send killed with SIGKILL mid-transfer: what serve keeps.
  get-kill  dclient get killed with SIGINT, SIGTERM, SIGKILL mid-transfer, then a new get.
  diskfull  serve on a 20 MB tmpfs fed 30 MB; then space freed and the same sent again;
            dclient get of 30 MB into a 5 MB tmpfs.
  corrupt   a damaged index.sqlite: the start-up line, the rebuild, the find count.
A tmpfs needs root and mount permission; without it the disk-full run says so and fails.
"""

import argparse
import glob
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import free_port, wait_port

AE = "ANY-SCP"
RESULTS = []  # (run, what, figure)


def note(run, what, figure):
    RESULTS.append((run, what, figure))
    print(f"  {run}: {what}: {figure}", file=sys.stderr)


def fail(msg):
    print(f"FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def make_files(out, n, study=None, pixels=64 * 64, prefix=""):
    """n CT files of one study (pydicom, Explicit VR LE); returns their paths."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    os.makedirs(out, exist_ok=True)
    study = study or generate_uid()
    series = generate_uid()
    data = bytes((i * 7) & 0xFF for i in range(pixels * 2))
    paths = []
    for i in range(n):
        ds = Dataset()
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.SOPInstanceUID = generate_uid()
        ds.PatientID, ds.PatientName = "FAULTS", "Fault^Run"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.StudyDate, ds.Modality, ds.InstanceNumber = "20240101", "CT", i + 1
        side = int(pixels ** 0.5)
        ds.Rows = ds.Columns = side
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = data[: side * side * 2]
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        p = os.path.join(out, f"{prefix}{i:05d}.dcm")
        ds.save_as(p, enforce_file_format=True)
        paths.append(p)
    return study, series, paths


def data_set_bytes(path):
    """The bytes after the preamble and file meta group."""
    with open(path, "rb") as f:
        b = f.read()
    if b[128:132] != b"DICM":
        return b
    pos = 132
    while pos + 8 <= len(b) and b[pos:pos + 2] == b"\x02\x00":
        vr = b[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC", b"UR"):
            ln = int.from_bytes(b[pos + 8:pos + 12], "little")
            pos += 12 + ln
        else:
            ln = int.from_bytes(b[pos + 6:pos + 8], "little")
            pos += 8 + ln
    return b[pos:]


def sop_uid_of(path):
    import pydicom
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


class Serve:
    def __init__(self, dclient, folder, extra=()):
        self.dclient, self.folder, self.extra = dclient, folder, list(extra)
        self.port = free_port()
        self.proc = None

    def start(self, expect_listen=True):
        parent = os.path.dirname(self.folder.rstrip("/")) or "."
        os.makedirs(parent, exist_ok=True)
        self.log = open(os.path.join(parent, f"serve-{self.port}.log"), "ab")
        self.proc = subprocess.Popen(
            [self.dclient, "serve", "--port", str(self.port), "--dir", self.folder,
             "--max-associations", "64"] + self.extra,
            stdout=self.log, stderr=self.log)
        if expect_listen:
            wait_port(self.port, 60)
        return self

    def stop(self, sig=signal.SIGINT):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def log_text(self):
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")


def sender_cmd(kind, dclient, port, folder):
    if kind == "dclient":
        return [dclient, "send", "127.0.0.1", str(port), folder, "-q"]
    if kind == "dcmtk":
        return ["/usr/bin/storescu", "-aec", AE, "+sd", "+r", "127.0.0.1", str(port), folder]
    return [sys.executable, "-m", "pynetdicom", "storescu", "-aec", AE, "-r",
            "127.0.0.1", str(port), folder]


def run_senders(kinds, dclient, port, folders, timeout=900):
    procs = []
    for kind, folder in zip(kinds, folders):
        procs.append((kind, subprocess.Popen(sender_cmd(kind, dclient, port, folder),
                                             stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE)))
    codes = {}
    end = time.monotonic() + timeout
    for kind, p in procs:
        try:
            _, err = p.communicate(timeout=max(1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        codes.setdefault(kind, []).append(p.returncode)
    return codes


def stored_files(folder):
    return [p for p in glob.glob(os.path.join(folder, "*", "*.dcm"))]


def index_count(folder):
    c = sqlite3.connect(f"file:{os.path.join(folder, 'index.sqlite')}?mode=ro", uri=True)
    try:
        return c.execute("SELECT COUNT(*) FROM instance").fetchone()[0]
    finally:
        c.close()


def find_count(dclient, port, study):
    o = subprocess.run([dclient, "find", "image", "127.0.0.1", str(port), "-k",
                        f"StudyInstanceUID={study}", "-k", "SOPInstanceUID", "--format", "csv",
                        "--model", "study", "--timeout", "60"],
                       capture_output=True, timeout=300)
    if o.returncode != 0:
        # A hierarchical SCP wants the series: count per series instead.
        return None
    return max(0, len(o.stdout.decode().splitlines()) - 1)


def find_count_by_series(dclient, port, study, series_list):
    n = 0
    for se in series_list:
        o = subprocess.run([dclient, "find", "image", "127.0.0.1", str(port), "-k",
                            f"StudyInstanceUID={study}", "-k", f"SeriesInstanceUID={se}",
                            "--format", "csv", "--timeout", "60"],
                           capture_output=True, timeout=300)
        if o.returncode != 0:
            fail(f"find: {o.stderr.decode()}")
        n += max(0, len(o.stdout.decode().splitlines()) - 1)
    return n


def part_files(folder):
    return glob.glob(os.path.join(folder, ".dclient-*.part"))


def check_identical(sources, folder):
    """Every source file stored once, with its data set byte for byte."""
    stored = {os.path.basename(p)[:-4]: p for p in stored_files(folder)}
    same = 0
    for src in sources:
        uid = sop_uid_of(src)
        if uid not in stored:
            fail(f"{src} ({uid}) was not stored")
        if data_set_bytes(src) == data_set_bytes(stored[uid]):
            same += 1
    return same


def other_writer(db, stop, holds):
    """Holds the index's write lock for 0.5 s at a time (as `sqlite3` with BEGIN IMMEDIATE
    would), until stopped."""
    c = sqlite3.connect(db, timeout=30, isolation_level=None)
    c.execute("CREATE TABLE IF NOT EXISTS fault_run (at REAL)")
    while not stop.is_set():
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO fault_run VALUES (?)", (time.time(),))
        time.sleep(0.5)
        c.execute("COMMIT")
        holds[0] += 1
        time.sleep(0.2)
    c.close()


def run_load(args, work):
    print("== load: 32 senders of three kinds, another writer on the index", file=sys.stderr)
    folder = os.path.join(work, "load", "store")
    serve = Serve(args.dclient, folder).start()
    kinds = (["dclient"] * 11 + ["dcmtk"] * 11 + ["pynetdicom"] * 10)[: args.senders]
    sources, folders, studies = [], [], {}
    for i, kind in enumerate(kinds):
        f = os.path.join(work, "load", "in", f"{i:02d}-{kind}")
        study, series, paths = make_files(f, args.files, prefix=f"{i:02d}-")
        studies.setdefault(study, []).append(series)
        sources += paths
        folders.append(f)
    stop, holds = threading.Event(), [0]
    w = threading.Thread(target=other_writer,
                         args=(os.path.join(folder, "index.sqlite"), stop, holds))
    w.start()
    t0 = time.monotonic()
    codes = run_senders(kinds, args.dclient, serve.port, folders)
    wall = time.monotonic() - t0
    stop.set()
    w.join(30)
    time.sleep(0.5)
    n = len(sources)
    files = stored_files(folder)
    same = check_identical(sources, folder)
    idx = index_count(folder)
    found = sum(find_count_by_series(args.dclient, serve.port, st, ses)
                for st, ses in studies.items())
    warns = serve.log_text().count(" WARN ")
    serve.stop()
    bad = {k: [c for c in v if c != 0] for k, v in codes.items()}
    note("load", "senders (dclient / DCMTK / pynetdicom)",
         f"{kinds.count('dclient')} / {kinds.count('dcmtk')} / {kinds.count('pynetdicom')}, "
         f"{args.files} files each; non-zero exits: {sum(len(v) for v in bad.values())}")
    note("load", "files sent / stored / byte-identical / indexed / found by C-FIND",
         f"{n} / {len(files)} / {same} / {idx} / {found}")
    note("load", "wall time, files/s", f"{wall:.1f} s, {n / wall:.0f}")
    note("load", "other writer's 0.5 s holds of the index during the load", f"{holds[0]}")
    note("load", "WARN lines in serve's log", f"{warns}")
    if not (len(files) == same == idx == found == n) or any(bad.values()):
        fail("load: not every file stored once and identical")
    return folder


def run_second(args, work):
    print("== second serve on the same folder", file=sys.stderr)
    folder = os.path.join(work, "second", "store")
    first = Serve(args.dclient, folder).start()
    o = subprocess.run([args.dclient, "serve", "--port", "0", "--dir", folder],
                       capture_output=True, timeout=60)
    first.stop()
    line = o.stderr.decode().strip()
    note("second", "exit status, line", f"{o.returncode}: `{line}`")
    if o.returncode != 2 or "in use by another dclient serve" not in line:
        fail("second serve was not refused")


def run_kill9(args, work):
    print("== serve killed with SIGKILL mid-load, restarted", file=sys.stderr)
    folder = os.path.join(work, "kill9", "store")
    serve = Serve(args.dclient, folder).start()
    kinds = ["dclient", "dcmtk", "pynetdicom"] * 3
    folders, sources, studies = [], [], {}
    for i, kind in enumerate(kinds):
        f = os.path.join(work, "kill9", "in", f"{i:02d}-{kind}")
        study, series, paths = make_files(f, args.files * 2, pixels=128 * 128, prefix=f"{i}-")
        studies.setdefault(study, []).append(series)
        folders.append(f)
        sources += paths
    procs = [subprocess.Popen(sender_cmd(k, args.dclient, serve.port, f),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for k, f in zip(kinds, folders)]
    # Kill once about a third is stored (bounded: 60 s).
    end = time.monotonic() + 60
    while len(stored_files(folder)) < len(sources) // 3 and time.monotonic() < end:
        time.sleep(0.02)
    serve.proc.kill()
    serve.proc.wait()
    serve.log.close()
    for p in procs:
        try:
            p.wait(120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    on_disk = len(stored_files(folder))
    parts = len(part_files(folder))
    t0 = time.monotonic()
    serve = Serve(args.dclient, folder).start()
    restart = time.monotonic() - t0
    time.sleep(0.3)
    idx = index_count(folder)
    parts_after = len(part_files(folder))
    note("kill9", "files on disk / indexed after the restart / temporary files before, after",
         f"{on_disk} / {idx} / {parts}, {parts_after}")
    note("kill9", "restart (index checked against the folder)", f"{restart:.2f} s")
    # The senders again: everything arrives, once.
    codes = run_senders(kinds, args.dclient, serve.port, folders)
    files = len(stored_files(folder))
    idx2 = index_count(folder)
    found = sum(find_count_by_series(args.dclient, serve.port, st, ses)
                for st, ses in studies.items())
    serve.stop()
    note("kill9", "after sending again: sent / stored / indexed / found",
         f"{len(sources)} / {files} / {idx2} / {found}")
    if idx != on_disk or parts_after or not (files == idx2 == found == len(sources)):
        fail("kill9: index and folder disagree")
    if any(c != 0 for v in codes.values() for c in v):
        fail(f"kill9: a sender failed the second time: {codes}")


def run_sender_kill(args, work):
    print("== a sender killed with SIGKILL mid-transfer", file=sys.stderr)
    folder = os.path.join(work, "sender", "store")
    serve = Serve(args.dclient, folder).start()
    src = os.path.join(work, "sender", "in")
    make_files(src, 1, pixels=4096 * 4096)  # one 32 MB instance
    p = subprocess.Popen([args.dclient, "send", "127.0.0.1", str(serve.port), src, "-q",
                          "--max-pdu", "4096"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 30
    while not part_files(folder) and time.monotonic() < end:
        time.sleep(0.005)
    seen = len(part_files(folder))
    p.kill()
    p.wait()
    time.sleep(1.0)
    left = len(part_files(folder))
    alive = subprocess.run([args.dclient, "echo", "127.0.0.1", str(serve.port)],
                           capture_output=True, timeout=60).returncode == 0
    stored = len(stored_files(folder))
    serve.stop()
    note("sender", "temporary file while receiving / after the kill / stored / serve answers",
         f"{seen} / {left} / {stored} / {'yes' if alive else 'no'}")
    if left or not alive:
        fail("sender: leftovers or a dead server")


def run_get_kill(args, work):
    print("== dclient get interrupted (SIGINT, SIGTERM, SIGKILL), then a new get",
          file=sys.stderr)
    folder = os.path.join(work, "getkill", "store")
    serve = Serve(args.dclient, folder).start()
    src = os.path.join(work, "getkill", "in")
    study, _, _ = make_files(src, 4, pixels=2048 * 2048)  # 4 x 8 MB
    subprocess.run([args.dclient, "send", "127.0.0.1", str(serve.port), src, "-q"], check=True,
                   timeout=300)
    rows = []
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        out = os.path.join(work, "getkill", f"out-{sig.name}")
        os.makedirs(out)
        p = subprocess.Popen([args.dclient, "get", "127.0.0.1", str(serve.port), "--out", out,
                              "-k", f"StudyInstanceUID={study}", "--max-pdu", "4096"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.monotonic() + 60
        while not part_files(out) and time.monotonic() < end and p.poll() is None:
            time.sleep(0.002)
        during = len(part_files(out))
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        after = len(part_files(out))
        rows.append((sig.name, during, p.returncode, after, err.decode().strip()))
    # A new get into the SIGKILL folder removes the leftover first.
    out = os.path.join(work, "getkill", "out-SIGKILL")
    o = subprocess.run([args.dclient, "get", "127.0.0.1", str(serve.port), "--out", out, "-k",
                        f"StudyInstanceUID={study}"], capture_output=True, timeout=300)
    serve.stop()
    for name, during, code, after, line in rows:
        note("get-kill", f"{name}: .part while receiving / exit / .part after",
             f"{during} / {code} / {after}" + (f" (`{line}`)" if line else ""))
    left = len(part_files(out))
    note("get-kill", "next get into the SIGKILL folder: exit / .part left / files",
         f"{o.returncode} / {left} / {len(glob.glob(os.path.join(out, '*.dcm')))}")
    if any(r[3] for r in rows[:2]) or left or o.returncode != 0:
        fail("get-kill: a partial file stayed")


class Tmpfs:
    def __init__(self, path, mb):
        os.makedirs(path, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}m", "tmpfs", path],
                           capture_output=True)
        if r.returncode != 0:
            fail(f"cannot mount a tmpfs at {path} (root and mount permission needed): "
                 f"{r.stderr.decode().strip()}")
        self.path = path

    def close(self):
        subprocess.run(["umount", "-l", self.path])


def run_disk_full(args, work):
    print("== serve on a 20 MB tmpfs fed 30 MB; get of 30 MB into a 5 MB tmpfs",
          file=sys.stderr)
    disk = Tmpfs(os.path.join(work, "full", "mnt"), 20)
    try:
        folder = os.path.join(disk.path, "store")
        serve = Serve(args.dclient, folder).start()
        src = os.path.join(work, "full", "in")
        study, series, paths = make_files(src, 60, pixels=512 * 512)  # 60 x 512 KB
        # -nh: go on after a refusal (storescu halts at the first one by default).
        o = subprocess.run(["/usr/bin/storescu", "-v", "-nh", "-aec", AE, "+sd", "+r",
                            "127.0.0.1", str(serve.port), src], capture_output=True,
                           timeout=600)
        err = o.stderr.decode(errors="replace") + o.stdout.decode(errors="replace")
        a700 = err.count("Refused: OutOfResources")
        stored = len(stored_files(folder))
        alive = subprocess.run([args.dclient, "echo", "127.0.0.1", str(serve.port)],
                               capture_output=True, timeout=60).returncode == 0
        idx = index_count(folder)
        parts = len(part_files(folder))
        note("diskfull", "serve: sent / stored / refused A700 / indexed / .part / alive",
             f"{len(paths)} / {stored} / {a700} / {idx} / {parts} / "
             f"{'yes' if alive else 'no'}")
        log = serve.log_text()
        comment = next((l for l in log.splitlines() if "refused" in l and "space" in l), "")
        note("diskfull", "serve's log line for a refused instance",
             "`" + comment.split("refused: ")[-1].strip() + "`" if comment else "(none)")
        # Space returns: half the stored files removed (and their rows, by the restart's
        # check), then the same 60 sent again.
        for p in stored_files(folder)[: stored // 2]:
            os.unlink(p)
        serve.stop()
        serve = Serve(args.dclient, folder).start()
        shutil.rmtree(src)
        study2, _, paths2 = make_files(src, 8, pixels=512 * 512)
        o = subprocess.run(["/usr/bin/storescu", "-aec", AE, "+sd", "+r", "127.0.0.1",
                            str(serve.port), src], capture_output=True, timeout=600)
        note("diskfull", "after freeing space: 8 new instances sent, storescu exit",
             f"{o.returncode}, stored {len(glob.glob(os.path.join(folder, study2, '*.dcm')))}")
        serve.stop()
        if not alive or parts or idx != stored or o.returncode != 0 or \
                a700 + stored != len(paths):
            fail("diskfull: serve")
    finally:
        disk.close()
    # dclient get into a 5 MB tmpfs, from a serve on ordinary disk.
    folder = os.path.join(work, "full", "store2")
    serve = Serve(args.dclient, folder).start()
    src = os.path.join(work, "full", "in2")
    study, _, paths = make_files(src, 60, pixels=512 * 512)
    subprocess.run([args.dclient, "send", "127.0.0.1", str(serve.port), src, "-q"], check=True,
                   timeout=300)
    disk = Tmpfs(os.path.join(work, "full", "mnt2"), 5)
    try:
        for ro in (False, True):
            out = os.path.join(disk.path, "out-ro" if ro else "out")
            os.makedirs(out, exist_ok=True)
            if ro:
                subprocess.run(["mount", "-o", "remount,ro", disk.path], check=True)
            t0 = time.monotonic()
            o = subprocess.run([args.dclient, "get", "127.0.0.1", str(serve.port), "--out", out,
                                "-k", f"StudyInstanceUID={study}"], capture_output=True,
                               timeout=300)
            took = time.monotonic() - t0
            lines = [l for l in o.stderr.decode().splitlines() if l.strip()]
            got = len(glob.glob(os.path.join(out, "*.dcm")))
            what = "read-only" if ro else "full"
            note("diskfull", f"get of 60 x 512 KB onto a {what} 5 MB tmpfs: exit / lines / "
                             f"stored / time", f"{o.returncode} / {len(lines)} / {got} / "
                                               f"{took:.2f} s")
            if lines:
                note("diskfull", f"get's line ({what})", "`" + lines[-1] + "`")
            if o.returncode != 1 or len(lines) != 1:
                fail("diskfull: get")
            if ro:
                subprocess.run(["mount", "-o", "remount,rw", disk.path], check=True)
    finally:
        serve.stop()
        disk.close()


def run_corrupt(args, work):
    print("== a damaged index.sqlite", file=sys.stderr)
    folder = os.path.join(work, "corrupt", "store")
    serve = Serve(args.dclient, folder).start()
    src = os.path.join(work, "corrupt", "in")
    n = args.files * 25
    study, series, _ = make_files(src, n)
    subprocess.run([args.dclient, "send", "127.0.0.1", str(serve.port), src, "-q"], check=True,
                   timeout=600)
    serve.stop()
    db = os.path.join(folder, "index.sqlite")
    size = os.path.getsize(db)
    with open(db, "r+b") as f:
        f.seek(4096)
        f.write(b"\xa5" * (size - 4096))
    t0 = time.monotonic()
    serve = Serve(args.dclient, folder).start()
    took = time.monotonic() - t0
    found = find_count_by_series(args.dclient, serve.port, study, [series])
    serve.stop()
    lines = [l for l in serve.log_text().splitlines() if "index.sqlite" in l]
    note("corrupt", "files / found after the restart / lines about the index / start-up",
         f"{n} / {found} / {len(lines)} / {took:.2f} s")
    if lines:
        line = lines[0].strip()
        note("corrupt", "the line", "`" + line[line.find("WARN") + 5:] + "`")
    if found != n or len(lines) != 1:
        fail("corrupt: not rebuilt")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dclient", required=True)
    ap.add_argument("--files", type=int, default=40, help="files per sender in the load run")
    ap.add_argument("--senders", type=int, default=32)
    ap.add_argument("--work", default=None)
    ap.add_argument("--runs", default="load,second,kill9,sender,get-kill,diskfull,corrupt")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="dclient-faults-")
    runs = {"load": run_load, "second": run_second, "kill9": run_kill9,
            "sender": run_sender_kill, "get-kill": run_get_kill, "diskfull": run_disk_full,
            "corrupt": run_corrupt}
    try:
        for r in args.runs.split(","):
            runs[r](args, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"Fault runs against dclient serve on {os.cpu_count()} cores "
          f"({args.senders} senders x {args.files} files in the load run):")
    print()
    print("| run | what | figure |")
    print("|---|---|---|")
    for run, what, fig in RESULTS:
        print(f"| {run} | {what} | {fig} |")


if __name__ == "__main__":
    main()
