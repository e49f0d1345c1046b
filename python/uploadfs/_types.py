"""The API's objects, with the fields the OpenAI SDK gives them."""

from dataclasses import dataclass
from typing import Optional


@dataclass
class FileObject:
    id: str
    object: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str
    expires_at: Optional[int] = None


@dataclass
class Upload:
    id: str
    object: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str
    expires_at: int
    file: Optional[FileObject] = None


@dataclass
class UploadPart:
    id: str
    object: str
    created_at: int
    upload_id: str


@dataclass
class FileDeleted:
    id: str
    object: str
    deleted: bool


def _text(v):
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else v


def _cstr(ptr):
    import ctypes

    return ctypes.string_at(ptr).decode("utf-8", "replace") if ptr else ""


def file_from_c(f):
    return FileObject(
        id=_text(f.id),
        object="file",
        bytes=f.bytes,
        created_at=f.created_at,
        filename=_cstr(f.filename),
        purpose=_text(f.purpose),
        status=_text(f.status),
        expires_at=f.expires_at or None,
    )


def upload_from_c(u):
    return Upload(
        id=_text(u.id),
        object="upload",
        bytes=u.bytes,
        created_at=u.created_at,
        filename=_cstr(u.filename),
        purpose=_text(u.purpose),
        status=_text(u.status),
        expires_at=u.expires_at,
        file=file_from_c(u.file) if u.has_file else None,
    )


def part_from_c(p):
    return UploadPart(
        id=_text(p.id),
        object="upload.part",
        created_at=p.created_at,
        upload_id=_text(p.upload_id),
    )
