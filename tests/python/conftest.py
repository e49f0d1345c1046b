"""The Python binding's tests: `import uploadfs` from python/ of this tree, the library and
uploadfs-server from $UPLOADFS_BUILD (default: build-py at the top of the tree), and a
real server per test on a free loopback port, stopped by its PID."""

import json
import os
import pathlib
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest

TOP = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("UPLOADFS_BUILD") or TOP / "build-py")
SERVER = BUILD / "server" / "uploadfs-server"
os.environ.setdefault("UPLOADFS_LIBRARY", str(BUILD / "core" / "libuploadfs.so.0"))
sys.dont_write_bytecode = True
sys.path.insert(0, str(TOP / "python"))

# What these tests may find in the environment must not steer the clients they make.
for _v in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "PORTKEY_API_KEY", "PORTKEY_VIRTUAL_KEY",
           "PORTKEY_PROVIDER", "PORTKEY_CONFIG", "PORTKEY_CUSTOM_HOST", "PORTKEY_BASE_URL"):
    os.environ.pop(_v, None)


class Server:
    """uploadfs-server --listen 127.0.0.1:0 --data DIR --log-requests FILE [flags]."""

    def __init__(self, tmp, flags):
        self.dir = tmp
        self.data = tmp / "data"
        self.log = tmp / "requests.log"
        self.errlog = tmp / "server.err"
        argv = [str(SERVER), "--listen", "127.0.0.1:0", "--data", str(self.data),
                "--log-requests", str(self.log), *flags]
        with open(self.errlog, "ab") as err:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
        line = b""
        deadline = time.monotonic() + 20
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 256)
                if not chunk:
                    break
                line += chunk
        if not line.startswith(b"listening on "):
            self.stop()
            raise RuntimeError(f"uploadfs-server did not start: {line!r} "
                               f"{self.errlog.read_text(errors='replace')}")
        self.base = line.split()[2].decode()

    def stop(self):
        """Stops it by its PID (SIGTERM, then SIGKILL after 10 s) and waits for it."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stdout.close()

    def requests(self):
        """The request log, one dict per request. The server writes a request's line once
        it is done, after its answer: the server is stopped first, so every line is in."""
        self.stop()
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


@pytest.fixture
def server(tmp_path):
    """server(*flags): a fresh uploadfs-server; all of them stop after the test."""
    started = []

    def start(*flags):
        d = tmp_path / f"srv{len(started)}"
        d.mkdir()
        s = Server(d, flags)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
        shutil.rmtree(s.data, ignore_errors=True)  # pytest keeps tmp_path: not the content


def max_overlap(intervals):
    """The largest number of [start, end] intervals open at one instant."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                    key=lambda ev: (ev[0], ev[1]))
    n = best = 0
    for _, d in events:
        n += d
        best = max(best, n)
    return best


def part_requests(log, upload_id=None):
    """The part requests in a request log (of one upload, if given)."""
    return [r for r in log if r["method"] == "POST" and r["path"].endswith("/parts")
            and (upload_id is None or r["path"] == f"/v1/uploads/{upload_id}/parts")]


class Link:
    """tests/lib/linkem in front of a server: every connection paced to `rate` bytes per
    second, so a part's body takes a while on the wire and the server's request log shows
    which bodies were under way together."""

    def __init__(self, srv, rate, delay_ms=0):
        port = srv.base.rsplit(":", 1)[1].split("/")[0]
        argv = [str(BUILD / "tests" / "linkem"), "--upstream", port, "--rate", str(rate),
                "--delay-ms", str(delay_ms)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = os.read(self.proc.stdout.fileno(), 256) if ready else b""
        if not line.startswith(b"listening on "):
            self.stop()
            raise RuntimeError(f"linkem did not start: {line!r}")
        self.base = "http://" + line.split()[2].decode() + "/v1"

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture
def link():
    """link(server, rate): a paced link in front of the server; stopped after the test."""
    made = []

    def start(srv, rate, delay_ms=0):
        made.append(Link(srv, rate, delay_ms))
        return made[-1]

    yield start
    for k in made:
        k.stop()
