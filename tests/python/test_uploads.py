"""uploadfs.Uploads against uploadfs-server: the seed's methods, the Files calls, errors."""

import hashlib
import io
import json
import os
import threading
import time

import pytest

import uploadfs
from conftest import max_overlap, part_requests


def client(srv, **kw):
    return uploadfs.Uploads(base_url=srv.base, **kw)


def test_create_parts_and_complete_by_hand(server, tmp_path):
    srv = server("--allow-downloads")
    src = tmp_path / "third.bin"
    src.write_bytes(b"0123456789" * 100)
    with client(srv) as c:
        up = c.create(bytes=3000, filename="hand.jsonl", mime_type="text/jsonl", purpose="batch")
        assert isinstance(up, uploadfs.Upload)
        assert up.id.startswith("upload_") and up.object == "upload"
        assert (up.bytes, up.filename, up.purpose, up.status) == (3000, "hand.jsonl", "batch",
                                                                 "pending")
        assert up.created_at > 0 and up.expires_at == up.created_at + 3600 and up.file is None
        # bytes, a file-like object, and a real file sent from its position
        p1 = c.parts.create(up.id, data=b"a" * 1000)
        p2 = c.parts.create(up.id, data=io.BytesIO(b"b" * 1000))
        with open(src, "rb") as f:
            p3 = c.parts.create(up.id, data=f)
            assert f.tell() == 1000  # read to its end, as the SDK's read() would
        for p in (p1, p2, p3):
            assert isinstance(p, uploadfs.UploadPart)
            assert p.id.startswith("part_") and p.object == "upload.part"
            assert p.upload_id == up.id and p.created_at > 0
        want = b"b" * 1000 + src.read_bytes() + b"a" * 1000  # the order complete gives
        done = c.complete(up.id, part_ids=[p2.id, p3.id, p1.id],
                          md5=hashlib.md5(want).hexdigest())
        assert done.status == "completed" and done.id == up.id
        f = done.file
        assert isinstance(f, uploadfs.FileObject)
        assert f.id.startswith("file-") and f.object == "file"
        assert (f.bytes, f.filename, f.purpose) == (3000, "hand.jsonl", "batch")
        assert c.files.content(f.id) == want
        # the Files calls
        assert c.files.retrieve(f.id) == f
        assert [x.id for x in c.files.list()] == [f.id]
        assert c.files.list(purpose="vision") == []
        out = tmp_path / "down.bin"
        assert c.files.content(f.id, out) == 3000 and out.read_bytes() == want
        gone = c.files.delete(f.id)
        assert (gone.id, gone.object, gone.deleted) == (f.id, "file", True)
        with pytest.raises(uploadfs.NotFoundError):
            c.files.retrieve(f.id)


def test_upload_file_chunked_from_a_path(server, tmp_path):
    srv = server("--allow-downloads")
    path = tmp_path / "data.jsonl"
    data = os.urandom(5 * 1024 * 1024 + 123)
    path.write_bytes(data)
    with client(srv) as c:
        for file in (path, str(path)):  # a PathLike and a str
            up = c.upload_file_chunked(file=file, mime_type="application/jsonl",
                                       purpose="fine-tune", part_size=1 << 20,
                                       md5=hashlib.md5(data).hexdigest())
            assert up.status == "completed" and up.object == "upload"
            assert (up.bytes, up.filename, up.purpose) == (len(data), "data.jsonl", "fine-tune")
            assert up.file.bytes == len(data) and up.file.filename == "data.jsonl"
            assert c.files.content(up.file.id) == data
        # filename and bytes given
        up = c.upload_file_chunked(file=path, mime_type="text/plain", purpose="batch",
                                   filename="renamed.jsonl", bytes=len(data))
        assert up.filename == "renamed.jsonl" and up.file.bytes == len(data)
        with pytest.raises(FileNotFoundError):
            c.upload_file_chunked(file=tmp_path / "missing", mime_type="x", purpose="batch")
    log = srv.requests()
    # 6 parts each time with 1 MiB parts, the last one of 123 bytes; then one of 8 MiB
    ids = [r["path"].split("/")[3] for r in part_requests(log)]
    assert sorted(ids.count(i) for i in set(ids)) == [1, 6, 6]
    assert all(r["status"] == 200 for r in log)


def test_upload_file_chunked_from_bytes(server):
    srv = server("--allow-downloads")
    data = os.urandom(3 * 1024 * 1024 + 7)
    with client(srv) as c:
        up = c.upload_file_chunked(file=data, filename="mem.bin", bytes=len(data),
                                   mime_type="application/octet-stream", purpose="assistants",
                                   part_size=1 << 20, parallel=2)
        assert up.status == "completed" and up.filename == "mem.bin" and up.bytes == len(data)
        assert c.files.content(up.file.id) == data
        # a bytearray, bytes taken from its length
        up = c.upload_file_chunked(file=bytearray(b"xyz"), filename="small.txt",
                                   mime_type="text/plain", purpose="batch")
        assert up.file.bytes == 3 and c.files.content(up.file.id) == b"xyz"
        # as the SDK: in-memory content needs a filename
        with pytest.raises(TypeError, match="filename"):
            c.upload_file_chunked(file=data, mime_type="x", purpose="batch")
        with pytest.raises(ValueError, match="bytes"):
            c.upload_file_chunked(file=data, filename="a", bytes=10, mime_type="x",
                                  purpose="batch")
        with pytest.raises(ValueError, match="part_size"):
            c.upload_file_chunked(file=data, filename="a", mime_type="x", purpose="batch",
                                  part_size=65 << 20)


def test_an_md5_mismatch_raises_and_leaves_no_pending_upload(server, tmp_path):
    srv = server()
    path = tmp_path / "m.bin"
    path.write_bytes(os.urandom(3 << 20))
    with client(srv) as c:
        with pytest.raises(uploadfs.MD5MismatchError) as e:
            c.upload_file_chunked(file=path, mime_type="x", purpose="batch", part_size=1 << 20,
                                  md5="0123456789abcdef0123456789abcdef")
        real = hashlib.md5(path.read_bytes()).hexdigest()
        assert real in e.value.message and "0123456789abcdef0123456789abcdef" in e.value.message
        assert e.value.status_code == 0 and isinstance(e.value, uploadfs.APIError)
        assert c.files.list() == []
        # the upload's id from the server's log (its line comes once the answer is sent)
        cancels = []
        for _ in range(100):
            lines = srv.log.read_text().splitlines() if srv.log.exists() else []
            cancels = [json.loads(x)["path"] for x in lines if "/cancel" in x]
            if cancels:
                break
            time.sleep(0.05)
        assert len(cancels) == 1
        upload_id = cancels[0].split("/")[3]
        # the server holds it cancelled, not pending: no part goes in any more
        with pytest.raises(uploadfs.BadRequestError, match="cancelled"):
            c.parts.create(upload_id, data=b"x")
        log = [(r["method"], r["path"], r["status"]) for r in srv.requests()]
    assert [p for m, p, s in log if p == "/v1/uploads"] == ["/v1/uploads"]
    assert (("POST", f"/v1/uploads/{upload_id}/cancel", 200)) in log
    assert not [p for m, p, s in log if p.endswith("/complete")]
    assert len([p for m, p, s in log if p == f"/v1/uploads/{upload_id}/parts"]) == 4


def test_cancel(server):
    srv = server()
    with client(srv) as c:
        up = c.create(bytes=10, filename="c.txt", mime_type="text/plain", purpose="batch")
        c.parts.create(up.id, data=b"12345")
        gone = c.cancel(up.id)
        assert gone.id == up.id and gone.status == "cancelled" and gone.file is None
        with pytest.raises(uploadfs.BadRequestError) as e:
            c.parts.create(up.id, data=b"67890")
        assert e.value.status_code == 400 and "cancelled" in e.value.message
        assert e.value.type == "invalid_request_error"
        assert c.files.list() == []


def test_a_wrong_key_is_an_authentication_error(server):
    srv = server("--api-key", "sk-right-key")
    with client(srv, api_key="sk-wrong-key") as c:
        with pytest.raises(uploadfs.AuthenticationError) as e:
            c.create(bytes=1, filename="a", mime_type="x", purpose="batch")
        err = e.value
        assert err.status_code == 401 and err.errno == 13
        assert err.message.startswith("Incorrect API key provided")
        assert err.type == "invalid_request_error"
        assert isinstance(err, uploadfs.APIStatusError) and isinstance(err, uploadfs.APIError)
        for text in (str(err), repr(err), repr(c)):
            assert "sk-wrong-key" not in text and "sk-right-key" not in text
    with client(srv, api_key="sk-right-key") as c:
        up = c.upload_file_chunked(file=b"ok", filename="ok", mime_type="x", purpose="batch")
        assert up.status == "completed"
        assert "sk-right-key" not in repr(c)


def test_a_wrong_upload_id_is_not_found(server):
    srv = server()
    with client(srv) as c:
        for call in (lambda: c.parts.create("upload_nope", data=b"x"),
                     lambda: c.complete("upload_nope", part_ids=[]),
                     lambda: c.cancel("upload_nope")):
            with pytest.raises(uploadfs.NotFoundError) as e:
                call()
            assert e.value.status_code == 404 and e.value.errno == 2
            assert "upload_nope" in e.value.message
        with pytest.raises(TypeError, match="data must be bytes"):
            c.parts.create("upload_nope", data="a str is not content")
        # a bad request names its param
        up = c.create(bytes=4, filename="b", mime_type="x", purpose="batch")
        p = c.parts.create(up.id, data=b"abc")
        with pytest.raises(uploadfs.BadRequestError) as e:
            c.complete(up.id, part_ids=[p.id])
        assert e.value.status_code == 400 and e.value.param


def test_no_server_is_a_connection_error(server):
    srv = server()
    base = srv.base
    srv.stop()
    with uploadfs.Uploads(base_url=base, max_retries=0) as c:
        with pytest.raises(uploadfs.APIConnectionError) as e:
            c.create(bytes=1, filename="a", mime_type="x", purpose="batch")
        assert e.value.status_code == 0 and e.value.message


def test_threads_call_at_once(server):
    """The library runs without the GIL: two threads' parts are on the server together."""
    srv = server("--latency-ms", "300")
    with client(srv) as c:
        up = c.create(bytes=4, filename="t", mime_type="x", purpose="batch")
        parts = {}

        def send(i):
            parts[i] = c.parts.create(up.id, data=bytes([65 + i]) * 2)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        c.complete(up.id, part_ids=[parts[0].id, parts[1].id])
        log = srv.requests()
    parts_log = part_requests(log, up.id)
    assert len(parts_log) == 2
    assert max_overlap([(r["start"], r["end"]) for r in parts_log]) == 2


def test_arguments_come_from_the_environment(server, monkeypatch):
    srv = server("--api-key", "sk-env-key")
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key")
    with uploadfs.Uploads() as c:
        assert c.base_url == srv.base
        assert c.upload_file_chunked(file=b"e", filename="e", mime_type="x",
                                     purpose="batch").status == "completed"
    # an argument wins over the environment
    with uploadfs.Uploads(api_key="sk-other") as c:
        with pytest.raises(uploadfs.AuthenticationError):
            c.files.list()
    assert uploadfs.library_version() == uploadfs.__version__


def test_a_closed_client_refuses_calls(server):
    srv = server()
    c = client(srv)
    c.close()
    with pytest.raises(uploadfs.APIError, match="closed"):
        c.files.list()
    c.close()  # twice is fine
