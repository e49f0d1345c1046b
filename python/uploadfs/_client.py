"""The blocking API: Uploads (with .parts and .files) over one up_client."""

import builtins
import ctypes
import io
import json
import math
import os
import stat
import threading

from . import _lib
from ._errors import APIError, from_up_error
from ._types import FileDeleted, file_from_c, part_from_c, upload_from_c

_bytes = builtins.bytes  # the methods take an argument named bytes, as the SDK's do
_byref = ctypes.byref
UP_MAX_PART = 64 << 20


def _enc(value):
    """A str, bytes or path argument as the bytes the C library takes; None stays None."""
    if value is None or isinstance(value, _bytes):
        return value
    if isinstance(value, os.PathLike):
        return os.fsencode(value)
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"expected a string, not {type(value).__name__}")


def _mem_pointer(data):
    """A void * to the bytes of data (a bytes object, kept alive by the caller)."""
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p)


def _as_bytes(data):
    return data if isinstance(data, _bytes) else _bytes(data)


class _Handle:
    """One up_client: calls hold it; close() waits for the calls in flight, then frees."""

    def __init__(self, lib, handle):
        self.lib = lib
        self._h = handle
        self._busy = 0
        self._cv = threading.Condition()

    def call(self, fn, *args):
        with self._cv:
            if not self._h:
                raise APIError("the client is closed")
            self._busy += 1
            h = self._h
        try:
            return getattr(self.lib, fn)(h, *args)
        finally:
            with self._cv:
                self._busy -= 1
                self._cv.notify_all()

    def base(self):
        with self._cv:
            if not self._h:
                return None
            return self.lib.up_client_base(self._h).decode()

    def close(self):
        with self._cv:
            while self._busy:
                self._cv.wait()
            h, self._h = self._h, None
        if h:
            self.lib.up_client_free(h)


def _new_client(api_key, base_url, portkey_api_key, virtual_key, provider, config, custom_host,
                timeout, max_retries, ca_file, api_key_file, retry_window):
    lib = _lib.load()
    cfg = _lib.UpConfig()
    # The bytes cfg points at stay referenced here until up_client_new has copied them.
    keep = {}

    def put(field, value):
        keep[field] = _enc(value)
        setattr(cfg, field, keep[field])

    if isinstance(config, (dict, list)):
        config = json.dumps(config, separators=(",", ":"))
    for field, value in (("api_base", base_url), ("api_key", api_key),
                         ("api_key_file", api_key_file), ("ca_file", ca_file),
                         ("portkey_api_key", portkey_api_key),
                         ("portkey_virtual_key", virtual_key), ("portkey_provider", provider),
                         ("portkey_config", config), ("portkey_custom_host", custom_host)):
        put(field, value)
    if timeout is not None:
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        cfg.timeout = max(1, math.ceil(timeout))
    if max_retries is not None:
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        cfg.retries = _lib.UP_NO_RETRIES if max_retries == 0 else int(max_retries)
        if max_retries == 0 and retry_window is None:
            retry_window = 0  # no retries: none across an outage either
    if retry_window is not None:
        if retry_window < 0:
            raise ValueError("retry_window must be 0 or more")
        cfg.retry_window = _lib.UP_NO_RETRIES if retry_window == 0 else math.ceil(retry_window)
    handle = ctypes.c_void_p()
    err = _lib.UpError()
    rc = lib.up_client_new(_byref(cfg), _byref(handle), _byref(err))
    if rc < 0:
        e = from_up_error(err, rc)
        # The library never puts a key in a message; this makes sure of it.
        for secret in (api_key, portkey_api_key, virtual_key):
            if isinstance(secret, str) and len(secret) >= 4:
                e.message = e.message.replace(secret, "[REDACTED]")
                e.args = (e.message,)
        raise e
    return _Handle(lib, handle.value)


class _PartData:
    """An up_source for parts.create's data: bytes-like, a path, a (name, content) tuple
    as the SDK takes it, a regular file (sent from its position to its end, read by the
    library) or any object with read(). Holds what the source points at."""

    def __init__(self, data):
        self.src = _lib.UpSource()
        self._opened = None
        self._file = None
        if isinstance(data, tuple):
            data = data[1]
        if isinstance(data, str):
            raise TypeError("data must be bytes, a file object or a path (os.PathLike)")
        if isinstance(data, os.PathLike):
            data = self._opened = open(data, "rb")
        if not isinstance(data, (_bytes, bytearray, memoryview)):
            fd = _real_file(data)
            if fd is not None:
                pos = data.tell()
                size = os.fstat(fd).st_size
                self.src.kind, self.src.fd = _lib.UP_SRC_FD, fd
                self.src.offset, self.src.len = pos, max(0, size - pos)
                self._file = data
                return
            data = data.read()
        self._data = _as_bytes(data)
        self.src.kind, self.src.len = _lib.UP_SRC_MEM, len(self._data)
        self.src.mem = _mem_pointer(self._data)

    def sent(self):
        """A file sent from its position is read to its end, as read() would have."""
        if self._file is not None:
            self._file.seek(self.src.offset + self.src.len)

    def close(self):
        if self._opened is not None:
            self._opened.close()


def _real_file(f):
    """The descriptor of a regular file object the library can pread, else None."""
    try:
        fd = f.fileno()
        if isinstance(f, io.TextIOBase) or not f.seekable():
            return None
        if hasattr(f, "flush"):
            f.flush()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
        return None


class Parts:
    def __init__(self, handle):
        self._h = handle

    def create(self, upload_id, *, data):
        """Adds a part (at most 64 MiB) to an upload: POST /uploads/{id}/parts."""
        part = _PartData(data)
        try:
            out, err = _lib.UpPart(), _lib.UpError()
            rc = self._h.call("up_part_add", _enc(upload_id), _byref(part.src), _byref(out),
                              _byref(err))
            if rc < 0:
                raise from_up_error(err, rc)
            part.sent()
            return part_from_c(out)
        finally:
            part.close()


class Files:
    def __init__(self, handle):
        self._h = handle

    def _file(self, fn, *args):
        out, err = _lib.UpFile(), _lib.UpError()
        rc = self._h.call(fn, *args, _byref(out), _byref(err))
        try:
            if rc < 0:
                raise from_up_error(err, rc)
            return file_from_c(out)
        finally:
            self._h.lib.up_file_clear(_byref(out))

    def list(self, purpose=None, *, order=None, limit=None):
        """Every file (all pages), newest first unless order="asc"."""
        q = _lib.UpListQuery()
        p = _enc(purpose)
        q.purpose = p
        q.ascending = order == "asc"
        q.limit = limit or 0
        out, err = _lib.UpFileList(), _lib.UpError()
        rc = self._h.call("up_files_list", _byref(q), _byref(out), _byref(err))
        try:
            if rc < 0:
                raise from_up_error(err, rc)
            return [file_from_c(out.files[i]) for i in range(out.n)]
        finally:
            self._h.lib.up_file_list_clear(_byref(out))

    def retrieve(self, file_id):
        return self._file("up_file_retrieve", _enc(file_id))

    def delete(self, file_id):
        err = _lib.UpError()
        rc = self._h.call("up_file_delete", _enc(file_id), _byref(err))
        if rc < 0:
            raise from_up_error(err, rc)
        return FileDeleted(id=file_id, object="file", deleted=True)

    def content(self, file_id, path=None):
        """Downloads a file: into path (returns the byte count; resumed with Range when
        the connection breaks), or, with no path, returns its bytes."""
        if path is None:
            import tempfile

            with tempfile.TemporaryFile() as f:
                self._content_to(file_id, f.fileno())
                f.seek(0)
                return f.read()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            return self._content_to(file_id, fd)
        finally:
            os.close(fd)

    def _content_to(self, file_id, fd):
        written, err = ctypes.c_uint64(), _lib.UpError()
        rc = self._h.call("up_file_content", _enc(file_id), fd, _byref(written), _byref(err))
        if rc < 0:
            raise from_up_error(err, rc)
        return written.value

    def create(self, *, file, purpose, filename=None):
        """POST /files in one request: file is bytes (filename required) or a path."""
        src = _lib.UpSource()
        if isinstance(file, (_bytes, bytearray, memoryview)):
            if filename is None:
                raise TypeError("filename is required for in-memory content")
            data = _as_bytes(file)
            src.kind, src.mem, src.len = _lib.UP_SRC_MEM, _mem_pointer(data), len(data)
            return self._file("up_file_create", _byref(src), _enc(filename), _enc(purpose))
        path = os.fspath(file)
        with open(path, "rb") as f:
            src.kind, src.fd, src.len = _lib.UP_SRC_FD, f.fileno(), os.fstat(f.fileno()).st_size
            name = filename if filename is not None else os.path.basename(path)
            return self._file("up_file_create", _byref(src), _enc(name), _enc(purpose))


class Uploads:
    """The Uploads API of an OpenAI-compatible server (OpenAI, the Portkey gateway,
    uploadfs-server), with the OpenAI SDK's methods.

    Omitted arguments come from the environment, as for the mount: OPENAI_BASE_URL,
    OPENAI_API_KEY, PORTKEY_API_KEY, PORTKEY_VIRTUAL_KEY, PORTKEY_PROVIDER,
    PORTKEY_CONFIG, PORTKEY_CUSTOM_HOST, PORTKEY_BASE_URL, SSL_CERT_FILE. A Portkey
    argument given as "" sends no header even when its variable is set. timeout is the
    seconds a request may go without progress (default 60); max_retries the retries of a
    failed request (default 5; 0: none, and no retry across an outage); retry_window the
    seconds a request is retried across an outage of the server (default 300; 0: none).
    api_key_file: a file of mode 0600 holding the key. Keys are never shown in errors or
    repr()."""

    def __init__(self, api_key=None, base_url=None, *, portkey_api_key=None, virtual_key=None,
                 provider=None, config=None, custom_host=None, timeout=None, max_retries=None,
                 ca_file=None, api_key_file=None, retry_window=None):
        self._h = _new_client(api_key, base_url, portkey_api_key, virtual_key, provider, config,
                              custom_host, timeout, max_retries, ca_file, api_key_file,
                              retry_window)
        self.parts = Parts(self._h)
        self.files = Files(self._h)

    @property
    def base_url(self):
        return self._h.base()

    def __repr__(self):
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def close(self):
        """Frees the client once the calls in flight have returned."""
        self._h.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is not None:
            h.close()

    def _upload(self, fn, *args):
        out, err = _lib.UpUpload(), _lib.UpError()
        rc = self._h.call(fn, *args, _byref(out), _byref(err))
        try:
            if rc < 0:
                raise from_up_error(err, rc)
            return upload_from_c(out)
        finally:
            self._h.lib.up_upload_clear(_byref(out))

    def create(self, *, bytes, filename, mime_type, purpose):
        """POST /uploads: an upload session of `bytes` bytes, status pending."""
        return self._upload("up_upload_create", int(bytes), _enc(filename), _enc(mime_type),
                            _enc(purpose))

    def complete(self, upload_id, *, part_ids, md5=None):
        """POST /uploads/{id}/complete: the parts in their order; the result's .file is
        the file made."""
        ids = [_enc(p) for p in part_ids]
        arr = (ctypes.c_char_p * max(1, len(ids)))(*ids)
        return self._upload("up_upload_complete", _enc(upload_id), arr, len(ids), _enc(md5))

    def cancel(self, upload_id):
        """POST /uploads/{id}/cancel"""
        return self._upload("up_upload_cancel", _enc(upload_id))

    def upload_file_chunked(self, *, file, mime_type, purpose, filename=None, bytes=None,
                            part_size=None, md5=None, parallel=None, resume_path=None,
                            progress=None):
        """Uploads a whole file (a path, bytes, or a regular file object) in parts of
        part_size (default 8 MiB, at most 64 MiB), `parallel` (default 4) in flight, each
        byte read once. The MD5 is computed while reading and sent at complete; when md5
        is given and differs, MD5MismatchError. Any failure cancels the upload, unless
        resume_path names a record (one per source): then the session and each part the
        server acknowledged are kept there, a failure for want of the server keeps the
        session, and the same call made again sends only the parts missing. progress, a
        callable(bytes_sent, bytes_total), is called after each part (from a worker
        thread). Returns the completed Upload (its .file is the file)."""
        o = _lib.UpFileUpload()
        o.fd = -1
        keep = []
        if resume_path is not None:
            keep.append(_enc(resume_path))
            o.resume_path = keep[-1]
        if progress is not None:
            def report(_ud, sent, total):
                try:
                    progress(sent, total)
                except Exception:  # never into C: the upload goes on
                    pass
            keep.append(_lib.PROGRESS_FN(report))
            o.progress = keep[-1]
        if part_size is not None:
            if not 0 < part_size <= UP_MAX_PART:
                raise ValueError(f"part_size must be 1 to {UP_MAX_PART} bytes")
            o.part_size = part_size
        if parallel is not None:
            if parallel < 1:
                raise ValueError("parallel must be at least 1")
            o.parallel = parallel
        if isinstance(file, (_bytes, bytearray, memoryview)):
            if filename is None:
                raise TypeError("The `filename` argument must be given for in-memory files")
            data = _as_bytes(file)
            if bytes is not None and bytes != len(data):
                raise ValueError(f"bytes is {bytes} but the content holds {len(data)}")
            keep.append(data)
            o.mem = _mem_pointer(data)
            o.bytes = len(data)
        elif hasattr(file, "fileno") and not isinstance(file, os.PathLike):
            fd = _real_file(file)
            if fd is None:
                raise TypeError("file must be a path, bytes or a regular file opened for reading")
            o.fd = fd
            if filename is None:
                filename = os.path.basename(getattr(file, "name", "") or "") or None
            if bytes is not None:
                o.bytes = bytes
        else:
            path = os.fspath(file)
            os.stat(path)  # a missing file is FileNotFoundError, as open() says it
            keep.append(_enc(path))
            o.path = keep[-1]
            if bytes is not None:
                o.bytes = bytes
        for field, value in (("filename", filename), ("mime_type", mime_type),
                             ("purpose", purpose), ("md5", md5)):
            keep.append(_enc(value))
            setattr(o, field, keep[-1])
        return self._upload("up_upload_file", _byref(o))


class Client:
    """The OpenAI client's shape: client.uploads (with .parts) and client.files."""

    def __init__(self, *args, **kwargs):
        self.uploads = Uploads(*args, **kwargs)
        self.files = self.uploads.files

    def __repr__(self):
        return f"Client(base_url={self.uploads.base_url!r})"

    def close(self):
        self.uploads.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
