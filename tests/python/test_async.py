"""uploadfs.AsyncUploads: the same methods, awaited; the blocking calls run in threads, so
gathered calls are on the server together."""

import asyncio
import hashlib
import os

import pytest

import uploadfs
from conftest import max_overlap, part_requests


def test_async_create_parts_complete_cancel_and_errors(server):
    srv = server("--allow-downloads", "--latency-ms", "300")

    async def flow():
        async with uploadfs.AsyncUploads(base_url=srv.base) as c:
            up = await c.create(bytes=8, filename="a.txt", mime_type="text/plain",
                                purpose="batch")
            assert up.status == "pending" and isinstance(up, uploadfs.Upload)
            chunks = [b"ab", b"cd", b"ef", b"gh"]
            parts = await asyncio.gather(*(c.parts.create(up.id, data=d) for d in chunks))
            assert all(isinstance(p, uploadfs.UploadPart) for p in parts)
            done = await c.complete(up.id, part_ids=[p.id for p in parts],
                                    md5=hashlib.md5(b"abcdefgh").hexdigest())
            assert done.status == "completed" and done.file.bytes == 8
            assert await c.files.content(done.file.id) == b"abcdefgh"
            assert [f.id for f in await c.files.list()] == [done.file.id]
            assert (await c.files.retrieve(done.file.id)).filename == "a.txt"
            other = await c.create(bytes=1, filename="b", mime_type="x", purpose="batch")
            assert (await c.cancel(other.id)).status == "cancelled"
            with pytest.raises(uploadfs.NotFoundError) as e:
                await c.parts.create("upload_nope", data=b"x")
            assert e.value.status_code == 404
            with pytest.raises(uploadfs.BadRequestError):
                await c.parts.create(other.id, data=b"x")
            assert (await c.files.delete(done.file.id)).deleted
            return up.id

    upload_id = asyncio.run(flow())
    parts = part_requests(srv.requests(), upload_id)
    # the 4 gathered parts were all on the server at once
    assert len(parts) == 4
    assert max_overlap([(r["start"], r["end"]) for r in parts]) == 4


def test_async_upload_file_chunked(server, tmp_path):
    srv = server("--allow-downloads")
    path = tmp_path / "f.bin"
    data = os.urandom(2 * 1024 * 1024 + 5)
    path.write_bytes(data)

    async def flow():
        c = uploadfs.AsyncUploads(base_url=srv.base)
        ups = await asyncio.gather(
            c.upload_file_chunked(file=path, mime_type="x", purpose="batch", part_size=1 << 20),
            c.upload_file_chunked(file=data, filename="m.bin", bytes=len(data), mime_type="x",
                                  purpose="assistants", md5=hashlib.md5(data).hexdigest()))
        for up in ups:
            assert up.status == "completed" and up.bytes == len(data)
            assert await c.files.content(up.file.id) == data
        assert sorted(u.filename for u in ups) == ["f.bin", "m.bin"]
        with pytest.raises(uploadfs.MD5MismatchError):
            await c.upload_file_chunked(file=data, filename="x", mime_type="x",
                                        purpose="batch", md5="f" * 32)
        assert len(await c.files.list()) == 2
        assert repr(c) == f"AsyncUploads(base_url={srv.base!r})"
        await c.close()

    asyncio.run(flow())


def test_async_client_shape(server):
    srv = server()

    async def flow():
        async with uploadfs.AsyncClient(base_url=srv.base) as client:
            up = await client.uploads.upload_file_chunked(file=b"hi", filename="hi.txt",
                                                          mime_type="text/plain",
                                                          purpose="batch")
            assert [f.id for f in await client.files.list()] == [up.file.id]

    asyncio.run(flow())
