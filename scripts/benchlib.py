"""Helpers shared by the benchmark scripts: free ports, waiting for a listener, running a
peer process, timing a client process with GNU time, generating data once, and a relay
that sees a send's first C-STORE on the wire."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

NODELAY = dict(os.environ, TCP_NODELAY="1")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Server:
    """A peer process listening on `self.port`, run with TCP_NODELAY=1, its output kept in a
    temporary file. Subclasses pick the port, then call `start(args)`."""

    def start(self, args):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, env=NODELAY, stdout=self.log, stderr=self.log)
        wait_port(self.port)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_client(args, env=None, timeout=900):
    """Runs a client under GNU time; returns (wall s, cpu s, peak RSS MiB, exit code).

    GNU time forks the client from its own small image and reports the client's own
    user+sys time and peak RSS (a child forked straight from Python would carry Python's
    pages into its peak RSS)."""
    fd, stats = tempfile.mkstemp(prefix="bench-time-")
    os.close(fd)
    start = time.perf_counter()
    p = subprocess.Popen(["/usr/bin/time", "-f", "%U %S %M", "-o", stats] + args, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    wall = time.perf_counter() - start
    with open(stats) as fh:
        lines = fh.read().strip().splitlines()
    os.unlink(stats)
    user, sys_, rss_kb = lines[-1].split() if lines else ("0", "0", "0")
    if p.returncode != 0:
        msg = err.decode(errors="replace").strip()[-500:]
        print(f"  ! {' '.join(args[:2])}... exit {p.returncode}: {msg}", file=sys.stderr)
    return wall, float(user) + float(sys_), int(rss_kb) / 1024.0, p.returncode


def generate(synth, root, name, args):
    """`dclient-synth` data in ROOT/NAME (seed 1, ARGS), made once: kept between runs."""
    d = os.path.join(root, name)
    if os.path.isdir(d) and os.path.exists(d + ".done"):
        return d
    shutil.rmtree(d, ignore_errors=True)
    subprocess.run([synth, d, "--seed", "1"] + args, check=True, stdout=subprocess.DEVNULL)
    open(d + ".done", "w").close()
    return d


class FirstPdataRelay:
    """A relay on a port of its own to the server on `target` that notes (in `first`, a
    `time.perf_counter()`) when the first P-DATA-TF (PDU type 4) goes from the client to
    the server: the first C-STORE-RQ of a send. The PDUs before it are skipped by their
    declared lengths, across reads."""

    def __init__(self, target):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.target = target
        self.first = None
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.target))
            for x in (c, s):
                x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.pump, args=(c, s, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(s, c, False), daemon=True).start()

    def pump(self, a, b, watch):
        pending = b""
        skip = 0
        try:
            while True:
                d = a.recv(1 << 16)
                if not d:
                    break
                if watch and self.first is None:
                    # Walk the PDU headers (type, reserved, 4-byte length).
                    pending += d
                    while True:
                        if skip:
                            k = min(skip, len(pending))
                            pending, skip = pending[k:], skip - k
                            if skip:
                                break
                        if len(pending) < 6:
                            break
                        if pending[0] == 4 and self.first is None:
                            self.first = time.perf_counter()
                        skip = int.from_bytes(pending[2:6], "big")
                        pending = pending[6:]
                    if self.first is not None:
                        pending = b""
                b.sendall(d)
        except OSError:
            pass
        finally:
            for x in (a, b):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.srv.close()
