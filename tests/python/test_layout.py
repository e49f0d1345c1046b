"""The binding's ctypes structs are core/uploadfs.h's: the same fields in the same order at
the same offsets, and the same sizes (a C program built against the header prints them).
A field added to the header without the binding fails here."""

import re
import subprocess

from conftest import TOP

from uploadfs import _lib

STRUCTS = {
    "up_error": _lib.UpError,
    "up_config": _lib.UpConfig,
    "up_file": _lib.UpFile,
    "up_upload": _lib.UpUpload,
    "up_part": _lib.UpPart,
    "up_source": _lib.UpSource,
    "up_file_upload": _lib.UpFileUpload,
    "up_file_list": _lib.UpFileList,
    "up_list_query": _lib.UpListQuery,
}


def header_fields(text, name):
    """The member names of `struct name { ... };` in declaration order."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    m = re.search(r"\bstruct\s+" + name + r"\s*\{", text)
    assert m, f"struct {name} is not in the header"
    depth, i = 1, m.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    body = text[m.end():i - 1]
    while re.search(r"\{[^{}]*\}", body):  # an inline enum or struct: its braces go
        body = re.sub(r"\{[^{}]*\}", "", body)
    names = []
    for decl in body.split(";"):
        decl = decl.strip()
        if not decl:
            continue
        fn = re.search(r"\(\s*\*\s*(\w+)\s*\)\s*\(", decl)
        if fn:
            names.append(fn.group(1))
            continue
        decl = re.sub(r"\[[^\]]*\]", "", decl)
        for piece in decl.split(","):
            names.append(re.findall(r"\w+", piece)[-1])
    return names


def binding_fields(cls):
    return [f[0] for f in cls._fields_ if not f[0].startswith("_spare")]


def c_size(cls):
    """The struct's size without the binding's spare bytes."""
    spare = getattr(cls, "_spare", None)
    return spare.offset if spare is not None else __import__("ctypes").sizeof(cls)


def test_the_structs_have_the_headers_fields_in_order():
    text = (TOP / "core" / "uploadfs.h").read_text()
    for name, cls in STRUCTS.items():
        assert binding_fields(cls) == header_fields(text, name), name


def test_offsets_and_sizes_match_a_c_program(tmp_path):
    text = (TOP / "core" / "uploadfs.h").read_text()
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "uploadfs.h"',
             "int main(void) {"]
    for name in STRUCTS:
        lines.append(f'printf("{name} %zu\\n", sizeof(struct {name}));')
        for f in header_fields(text, name):
            lines.append(f'printf("{name}.{f} %zu\\n", offsetof(struct {name}, {f}));')
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    subprocess.run(["cc", "-std=c11", "-I", str(TOP / "core"), "-o", str(exe), str(src)],
                   check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    want = dict(line.split() for line in out.splitlines())
    for name, cls in STRUCTS.items():
        assert int(want[name]) == c_size(cls), f"sizeof(struct {name})"
        for f in binding_fields(cls):
            assert int(want[f"{name}.{f}"]) == getattr(cls, f).offset, f"{name}.{f}"
