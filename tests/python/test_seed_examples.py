"""The usage examples of the seed (../shared/api/OPENAI_UPLOADS.md) with `import uploadfs`
in place of `from openai import OpenAI`: openai-python's examples/uploads.py (from disk and
from memory, mime_type="txt", purpose="batch"), the helper's docstring example, the spec's
create example, and the create + parts + complete flow captured on the wire (§9: 100
bytes of hello.txt in a buffered part of 60 and a streamed part of 40, with the md5)."""

import asyncio
import hashlib
import os

import uploadfs
from uploadfs import Client as OpenAI  # the examples' client, unchanged below


def test_examples_uploads_py(server, tmp_path, monkeypatch):
    srv = server("--allow-downloads")
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base)  # OpenAI() takes its base from here
    # generate_file.sh's file, smaller
    file = tmp_path / "big_test_file.txt"
    with open(file, "w") as f:
        for i in range(200_000):
            f.write(f"{i:08d} {'x' * 40}\n")

    client = OpenAI()

    def from_disk():
        print("uploading file from disk")
        upload = client.uploads.upload_file_chunked(
            file=file,
            mime_type="txt",
            purpose="batch",
        )
        print(upload)
        return upload

    def from_in_memory():
        print("uploading file from memory")
        # read the data into memory ourselves to simulate
        # it coming from somewhere else
        data = file.read_bytes()
        filename = "my_file.txt"
        upload = client.uploads.upload_file_chunked(
            file=data,
            filename=filename,
            bytes=len(data),
            mime_type="txt",
            purpose="batch",
        )
        print(upload)
        return upload

    disk, mem = from_disk(), from_in_memory()
    want = file.read_bytes()
    assert (disk.filename, mem.filename) == ("big_test_file.txt", "my_file.txt")
    for up in (disk, mem):
        assert up.status == "completed" and up.purpose == "batch" and up.bytes == len(want)
        assert client.files.content(up.file.id) == want
    client.close()


def test_the_helpers_docstring_example(server, tmp_path, monkeypatch):
    srv = server()
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base)
    pdf = tmp_path / "my-paper.pdf"
    pdf.write_bytes(b"%PDF-1.4\n" + os.urandom(100_000))
    client = OpenAI()
    # the docstring says client.uploads.upload_file(...): the helper is upload_file_chunked
    upload = client.uploads.upload_file_chunked(
        file=pdf,
        mime_type="pdf",
        purpose="assistants",
    )
    assert upload.status == "completed" and upload.file.filename == "my-paper.pdf"


def test_the_specs_create_example(server):
    srv = server()
    client = OpenAI(base_url=srv.base)
    upload = client.uploads.create(bytes=2147483648, filename="training_examples.jsonl",
                                   mime_type="text/jsonl", purpose="fine-tune")
    assert upload.object == "upload" and upload.status == "pending"
    assert upload.bytes == 2147483648 and upload.expires_at == upload.created_at + 3600
    assert client.uploads.cancel(upload.id).status == "cancelled"


def test_create_parts_complete_as_on_the_wire(server, tmp_path):
    srv = server("--allow-downloads")
    data = os.urandom(100)
    (tmp_path / "chunk1.bin").write_bytes(data[60:])
    client = OpenAI(api_key="sk-test", base_url=srv.base)
    upload = client.uploads.create(bytes=100, filename="hello.txt", mime_type="text/plain",
                                   purpose="assistants")
    part0 = client.uploads.parts.create(upload.id, data=data[:60])  # buffered
    with open(tmp_path / "chunk1.bin", "rb") as stream:  # streamed from a file
        part1 = client.uploads.parts.create(upload.id, data=stream)
    done = client.uploads.complete(upload.id, part_ids=[part0.id, part1.id],
                                   md5=hashlib.md5(data).hexdigest())
    assert done.status == "completed" and done.file.bytes == 100
    assert client.files.content(done.file.id) == data
    log = srv.requests()
    assert [(r["method"], r["path"].split("/")[-1]) for r in log][:4] == [
        ("POST", "uploads"), ("POST", "parts"), ("POST", "parts"), ("POST", "complete")]


def test_the_async_example(server, tmp_path):
    """examples/uploads.py with AsyncOpenAI: the same calls, awaited."""
    srv = server()
    file = tmp_path / "f.txt"
    file.write_bytes(b"line\n" * 100_000)

    async def main():
        client = uploadfs.AsyncClient(base_url=srv.base)
        upload = await client.uploads.upload_file_chunked(file=file, mime_type="txt",
                                                          purpose="batch")
        assert upload.status == "completed" and upload.bytes == 500_000
        await client.close()

    asyncio.run(main())
