"""uploadfs: the OpenAI Uploads API (OpenAI, the Portkey gateway, uploadfs-server) from
Python, through libuploadfs (ctypes; no compiler needed).

    import uploadfs
    client = uploadfs.Uploads()              # OPENAI_BASE_URL, OPENAI_API_KEY, PORTKEY_*
    upload = client.upload_file_chunked(file="train.jsonl", mime_type="application/jsonl",
                                        purpose="fine-tune")
    print(upload.file.id)

The library is $UPLOADFS_LIBRARY (a build tree's build/core/libuploadfs.so.0), else the
installed libuploadfs.so.0. docs/LIBRARY.md has the rest."""

from ._async import AsyncClient, AsyncFiles, AsyncParts, AsyncUploads
from ._client import Client, Files, Parts, Uploads
from ._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    MD5MismatchError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from ._types import FileDeleted, FileObject, Upload, UploadPart

__version__ = "0.1.0"


def library_version():
    """The version of the libuploadfs in use."""
    from . import _lib

    return _lib.load().up_version().decode()


__all__ = [
    "Uploads", "Parts", "Files", "Client",
    "AsyncUploads", "AsyncParts", "AsyncFiles", "AsyncClient",
    "Upload", "UploadPart", "FileObject", "FileDeleted",
    "APIError", "APIStatusError", "BadRequestError", "AuthenticationError",
    "PermissionDeniedError", "NotFoundError", "ConflictError", "UnprocessableEntityError",
    "RateLimitError", "InternalServerError", "APIConnectionError", "APITimeoutError",
    "MD5MismatchError", "library_version",
]
