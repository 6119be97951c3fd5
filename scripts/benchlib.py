"""Helpers shared by the benchmark scripts: free ports, waiting for a listener, running a
peer process, and timing a client process with GNU time."""

import os
import socket
import subprocess
import sys
import tempfile
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
