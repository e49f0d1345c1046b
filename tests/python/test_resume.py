"""upload_file_chunked(resume_path=..., progress=...): a call that failed for want of the
server keeps its session, and the same call made again sends only the parts missing."""

import hashlib
import os
import threading

import pytest

import uploadfs
from conftest import Server


def test_the_same_call_finishes_what_an_outage_interrupted(server, tmp_path):
    srv = server("--latency-ms", "300")
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(6 * 2**20 + 123))
    rec = tmp_path / "resume.json"
    seen = []
    two_parts = threading.Event()

    def progress(sent, total):
        seen.append((sent, total))
        if sent >= 2 * 2**20:
            two_parts.set()

    c = uploadfs.Uploads(base_url=srv.base, max_retries=1, retry_window=0)
    failed = []

    def run():
        try:
            c.upload_file_chunked(file=src, mime_type="application/octet-stream",
                                  purpose="batch", part_size=2**20, parallel=1,
                                  resume_path=rec, progress=progress)
        except uploadfs.APIConnectionError as e:
            failed.append(e)

    t = threading.Thread(target=run)
    t.start()
    assert two_parts.wait(30)
    srv.stop()  # the server goes away mid-upload
    t.join(60)
    assert failed and failed[0].status_code == 0
    assert rec.exists()  # the session was kept, not cancelled
    assert all(total == src.stat().st_size for _, total in seen)

    before = len(srv.requests())  # the log goes on in the same file
    again = Server(srv.dir, ("--allow-downloads",))  # the same data, another port
    try:
        c2 = uploadfs.Uploads(base_url=again.base)
        up = c2.upload_file_chunked(file=src, mime_type="application/octet-stream",
                                    purpose="batch", part_size=2**20, parallel=1,
                                    resume_path=rec)
        assert up.status == "completed"
        got = c2.files.content(up.file.id)
        assert hashlib.md5(got).hexdigest() == hashlib.md5(src.read_bytes()).hexdigest()
        assert not rec.exists()
        reqs = again.requests()[before:]
    finally:
        again.stop()
    paths = [r["path"] for r in reqs]
    # no new session: the parts left, then the complete, in the first session
    assert "/v1/uploads" not in paths
    assert not any(p.endswith("/cancel") for p in paths)
    parts = [p for p in paths if p.endswith("/parts")]
    assert 0 < len(parts) < 7
    assert all(up.id in p for p in parts)


def test_progress_reports_every_part_up_to_the_total(server, tmp_path):
    srv = server()
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 * 2**20 + 5))
    seen = []
    with uploadfs.Uploads(base_url=srv.base) as c:
        c.upload_file_chunked(file=src, mime_type="application/octet-stream",
                              purpose="batch", part_size=2**20,
                              progress=lambda s, t: seen.append((s, t)))
    assert len(seen) == 4
    assert max(s for s, _ in seen) == src.stat().st_size
    assert {t for _, t in seen} == {src.stat().st_size}
