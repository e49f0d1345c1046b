"""libuploadfs through ctypes: finding the library, the structs of core/uploadfs.h, and the
prototypes. The structs mirror the header field by field (tests/python/test_layout.py
compares them with it); each one the binding allocates ends in spare zeroed bytes, so a
library whose struct has grown by fields at its end reads zeros (their defaults) there.

ctypes releases the GIL around every call into the library: parallel calls from Python
threads run in parallel, and up_upload_file's workers never wait for Python."""

import ctypes
import ctypes.util
import os
import threading

SONAME = "libuploadfs.so.0"
UP_ID_MAX = 128
UP_NO_RETRIES = -1
_SPARE = 256  # bytes after each struct the binding allocates

c_char_p = ctypes.c_char_p
c_void_p = ctypes.c_void_p
c_int = ctypes.c_int
c_uint = ctypes.c_uint
c_bool = ctypes.c_bool
c_u64 = ctypes.c_uint64
c_i64 = ctypes.c_int64
c_size_t = ctypes.c_size_t
c_ssize_t = ctypes.c_ssize_t

LOG_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_char_p)
READ_FN = ctypes.CFUNCTYPE(c_ssize_t, c_void_p, c_u64, c_void_p, c_size_t)
PROGRESS_FN = ctypes.CFUNCTYPE(None, c_void_p, c_u64, c_u64)


class UpError(ctypes.Structure):
    _fields_ = [
        ("status", c_int),
        ("errnum", c_int),
        ("type", ctypes.c_char * 64),
        ("code", ctypes.c_char * 64),
        ("param", ctypes.c_char * 64),
        ("message", ctypes.c_char * 512),
        ("_spare", ctypes.c_char * _SPARE),
    ]


class UpConfig(ctypes.Structure):
    _fields_ = [
        ("api_base", c_char_p),
        ("api_key", c_char_p),
        ("api_key_file", c_char_p),
        ("retries", c_int),
        ("timeout", c_uint),
        ("retry_window", c_int),
        ("allow_http", c_bool),
        ("ca_file", c_char_p),
        ("no_env", c_bool),
        ("log", LOG_FN),
        ("log_ud", c_void_p),
        ("log_level", c_int),
        ("portkey_api_key", c_char_p),
        ("portkey_virtual_key", c_char_p),
        ("portkey_provider", c_char_p),
        ("portkey_config", c_char_p),
        ("portkey_custom_host", c_char_p),
        ("_spare", ctypes.c_char * _SPARE),
    ]


class UpFile(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_char * UP_ID_MAX),
        ("bytes", c_u64),
        ("created_at", c_i64),
        ("expires_at", c_i64),
        ("filename", c_void_p),  # char *, owned by the library: freed by up_file_clear
        ("purpose", ctypes.c_char * 32),
        ("status", ctypes.c_char * 16),
    ]


class UpUpload(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_char * UP_ID_MAX),
        ("bytes", c_u64),
        ("created_at", c_i64),
        ("expires_at", c_i64),
        ("filename", c_void_p),
        ("purpose", ctypes.c_char * 32),
        ("status", ctypes.c_char * 16),
        ("has_file", c_bool),
        ("file", UpFile),
        ("_spare", ctypes.c_char * _SPARE),
    ]


class UpPart(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_char * UP_ID_MAX),
        ("upload_id", ctypes.c_char * UP_ID_MAX),
        ("created_at", c_i64),
        ("_spare", ctypes.c_char * _SPARE),
    ]


UP_SRC_MEM, UP_SRC_FD, UP_SRC_CB = 0, 1, 2


class UpSource(ctypes.Structure):
    _fields_ = [
        ("kind", c_int),
        ("len", c_u64),
        ("mem", c_void_p),
        ("fd", c_int),
        ("offset", c_u64),
        ("read", READ_FN),
        ("ud", c_void_p),
        ("placed", c_bool),
        ("place", c_u64),
        ("_spare", ctypes.c_char * _SPARE),
    ]


class UpFileUpload(ctypes.Structure):
    _fields_ = [
        ("path", c_char_p),
        ("fd", c_int),
        ("mem", c_void_p),
        ("filename", c_char_p),
        ("bytes", c_u64),
        ("mime_type", c_char_p),
        ("purpose", c_char_p),
        ("part_size", c_u64),
        ("parallel", c_uint),
        ("md5", c_char_p),
        ("progress", PROGRESS_FN),
        ("progress_ud", c_void_p),
        ("resume_path", c_char_p),
        ("_spare", ctypes.c_char * _SPARE),
    ]


class UpFileList(ctypes.Structure):
    _fields_ = [("files", ctypes.POINTER(UpFile)), ("n", c_size_t)]


class UpListQuery(ctypes.Structure):
    _fields_ = [
        ("purpose", c_char_p),
        ("ascending", c_bool),
        ("limit", c_uint),
        ("max_files", c_size_t),
        ("_spare", ctypes.c_char * _SPARE),
    ]


_P = ctypes.POINTER
_PROTOTYPES = {
    "up_client_new": (c_int, [_P(UpConfig), _P(c_void_p), _P(UpError)]),
    "up_client_free": (None, [c_void_p]),
    "up_client_base": (c_char_p, [c_void_p]),
    "up_file_clear": (None, [_P(UpFile)]),
    "up_upload_clear": (None, [_P(UpUpload)]),
    "up_file_list_clear": (None, [_P(UpFileList)]),
    "up_upload_create": (
        c_int,
        [c_void_p, c_u64, c_char_p, c_char_p, c_char_p, _P(UpUpload), _P(UpError)],
    ),
    "up_part_add": (c_int, [c_void_p, c_char_p, _P(UpSource), _P(UpPart), _P(UpError)]),
    "up_upload_complete": (
        c_int,
        [c_void_p, c_char_p, _P(c_char_p), c_size_t, c_char_p, _P(UpUpload), _P(UpError)],
    ),
    "up_upload_cancel": (c_int, [c_void_p, c_char_p, _P(UpUpload), _P(UpError)]),
    "up_upload_file": (c_int, [c_void_p, _P(UpFileUpload), _P(UpUpload), _P(UpError)]),
    "up_md5_hex": (None, [c_void_p, c_size_t, ctypes.c_char * 33]),
    "up_files_list": (c_int, [c_void_p, _P(UpListQuery), _P(UpFileList), _P(UpError)]),
    "up_file_retrieve": (c_int, [c_void_p, c_char_p, _P(UpFile), _P(UpError)]),
    "up_file_delete": (c_int, [c_void_p, c_char_p, _P(UpError)]),
    "up_file_content": (c_int, [c_void_p, c_char_p, c_int, _P(c_u64), _P(UpError)]),
    "up_file_create": (
        c_int,
        [c_void_p, _P(UpSource), c_char_p, c_char_p, _P(UpFile), _P(UpError)],
    ),
    "up_version": (c_char_p, []),
}

_lock = threading.Lock()
_lib = None


def _candidates():
    """Where the library may be: $UPLOADFS_LIBRARY (the file, or a directory holding it,
    such as a build tree or its core/), else the installed soname."""
    given = os.environ.get("UPLOADFS_LIBRARY")
    if given:
        if os.path.isdir(given):
            for d in (given, os.path.join(given, "core")):
                for name in (SONAME, "libuploadfs.so"):
                    if os.path.exists(os.path.join(d, name)):
                        return [os.path.join(d, name)]
            return [os.path.join(given, SONAME)]
        return [given]
    return [SONAME, None]  # None: ctypes.util.find_library's answer, if SONAME fails


def load():
    """The library, loaded once; OSError naming where it was looked for."""
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for name in _candidates():
            if name is None:
                name = ctypes.util.find_library("uploadfs")
                if not name:
                    continue
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError as e:
                tried.append(f"{name}: {e}")
        else:
            raise OSError(
                "uploadfs: cannot load libuploadfs ("
                + "; ".join(tried)
                + "); install the uploadfs package, or set UPLOADFS_LIBRARY to a build "
                "tree's build/core/libuploadfs.so.0"
            )
        for fn, (res, args) in _PROTOTYPES.items():
            f = getattr(lib, fn)
            f.restype = res
            f.argtypes = args
        _lib = lib
        return lib
