"""300 MiB through upload_file_chunked in 8 MiB parts, 4 in flight: the content the server
keeps has the file's MD5, and the server's request log shows 4 part bodies under way at
once (through a link paced per connection, so each body takes a while on the wire)."""

import hashlib
import os

import uploadfs
from conftest import max_overlap, part_requests

MiB = 1 << 20


def test_300_mib_in_8_mib_parts_4_in_flight(server, link, tmp_path):
    srv = server("--allow-downloads")
    # 40 MB/s per connection: an 8 MiB body is about 0.2 s on the wire
    far = link(srv, 40_000_000)
    path = tmp_path / "big.bin"
    size = 300 * MiB
    md5 = hashlib.md5()
    with open(path, "wb") as f:
        for i in range(300):
            block = os.urandom(MiB)
            md5.update(block)
            f.write(block)
    with uploadfs.Uploads(base_url=far.base) as c:
        try:
            up = c.upload_file_chunked(file=path, mime_type="application/octet-stream",
                                       purpose="batch", part_size=8 * MiB, parallel=4,
                                       md5=md5.hexdigest())
        finally:
            path.unlink()
        assert up.status == "completed" and up.bytes == size and up.file.bytes == size
        # the server's content, downloaded straight from the server, hashed as it comes
        with uploadfs.Uploads(base_url=srv.base) as direct:
            down = tmp_path / "down.bin"
            assert direct.files.content(up.file.id, down) == size
        got = hashlib.md5()
        with open(down, "rb") as f:
            for block in iter(lambda: f.read(MiB), b""):
                got.update(block)
        os.unlink(down)
        assert got.hexdigest() == md5.hexdigest()
    log = srv.requests()
    parts = part_requests(log, up.id)
    assert len(parts) == 38 and all(r["status"] == 200 for r in parts)  # 37 x 8 MiB + 4 MiB
    complete = [r for r in log if r["path"] == f"/v1/uploads/{up.id}/complete"]
    assert len(complete) == 1 and complete[0]["status"] == 200
    # 4 bodies at once; never more requests than 4 bodies plus 4 awaiting their answer
    at_once = max_overlap([(r["start"], r["end"]) for r in parts])
    print(f"part requests under way at once: {at_once}")
    assert 4 <= at_once <= 8


def test_parallel_1_sends_one_body_at_a_time(server, link):
    srv = server()
    far = link(srv, 20_000_000)
    data = os.urandom(6 * MiB)
    with uploadfs.Uploads(base_url=far.base) as c:
        up = c.upload_file_chunked(file=data, filename="one.bin", mime_type="x",
                                   purpose="batch", part_size=MiB, parallel=1)
        assert up.status == "completed"
    parts = part_requests(srv.requests(), up.id)
    assert len(parts) == 6
    # one body on the wire; at most one more request awaiting its answer
    assert max_overlap([(r["start"], r["end"]) for r in parts]) <= 2
