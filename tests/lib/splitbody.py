#!/usr/bin/env python3
"""splitbody.py BASE KIND: sends one request of KIND to the server at BASE (http://HOST:PORT/v1)
with its body cut in two at every byte offset (or at random offsets of a large body), in
three ways: two writes with a pause between them and a Content-Length, the same with no
pause, and chunked transfer encoding with a chunk boundary at the cut. Every answer must be
the same: prints one line per way and exits 1 at the first answer that differs.

KIND: part0 part1 part2 part3 part1M (a part of that many bytes), file0 file3 (POST
/v1/files), create, complete (JSON bodies)."""
import json
import random
import socket
import sys
import time
import urllib.request

BASE = sys.argv[1].rstrip("/")
KIND = sys.argv[2]
HOST, PORT = BASE.split("//")[1].split("/")[0].split(":")
PORT = int(PORT)


def api(method, path, body=None):
    req = urllib.request.Request(BASE + path, method=method, data=body and json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def new_upload(nbytes):
    return api("POST", "/uploads", {"bytes": nbytes, "filename": "s.bin",
                                    "mime_type": "application/octet-stream",
                                    "purpose": "batch"})["id"]


def multipart(field, payload, extra=()):
    b = "----splitbody%08x" % random.getrandbits(32)
    out = b""
    for k, v in extra:
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (b, k, v)).encode()
    out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"x.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n" % (b, field)).encode()
    out += payload + ("\r\n--%s--\r\n" % b).encode()
    return "multipart/form-data; boundary=" + b, out


def send(path, ctype, body, cut, way):
    """One request; returns (status, parsed JSON answer)."""
    s = socket.create_connection((HOST, PORT))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = "POST /v1%s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\nConnection: close\r\n" % (
        path, HOST, PORT, ctype)
    if way == "chunked":
        head += "Transfer-Encoding: chunked\r\n\r\n"
        pieces = [body[:cut], body[cut:]]
        data = [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p] + [b"0\r\n\r\n"]
        s.sendall(head.encode() + data[0])
        for d in data[1:]:
            time.sleep(0.002)
            s.sendall(d)
    else:
        head += "Content-Length: %d\r\n\r\n" % len(body)
        s.sendall(head.encode() + body[:cut])
        if way == "pause":
            time.sleep(0.002)
        s.sendall(body[cut:])
    resp = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        resp += d
    s.close()
    status = int(resp.split(b" ", 2)[1])
    return status, json.loads(resp.split(b"\r\n\r\n", 1)[1] or b"null")


def shape(status, obj):
    """What must be the same every time: status, object kind, the bytes stored."""
    if not isinstance(obj, dict):
        return (status, None)
    keys = ("object", "status", "bytes", "filename", "purpose")
    return (status,) + tuple(obj.get(k) for k in keys) + (
        (obj.get("error") or {}).get("message"),)


PAYLOAD = {"part0": b"", "part1": b"a", "part2": b"ab", "part3": b"abc",
           "part1M": bytes((i * 7 + i // 251) & 255 for i in range(1 << 20))}


def body_of():
    """The request's path, content type and body."""
    if KIND in PAYLOAD:
        return ("/uploads/%s/parts" % UPLOAD,) + multipart("data", PAYLOAD[KIND])
    if KIND in ("file0", "file3"):
        return ("/files",) + multipart("file", b"abc"[:int(KIND[4:])], extra=[("purpose", "batch")])
    if KIND == "create":
        return "/uploads", "application/json", json.dumps(
            {"bytes": 3, "filename": "s.bin", "mime_type": "text/plain", "purpose": "batch"}).encode()
    if KIND == "complete":  # an empty upload, completed: a new one each time
        return "/uploads/%s/complete" % new_upload(0), "application/json", json.dumps(
            {"part_ids": [], "md5": "d41d8cd98f00b204e9800998ecf8427e"}).encode()
    raise SystemExit("unknown kind " + KIND)


UPLOAD = new_upload(0) if KIND in PAYLOAD else None
random.seed(7)
path, ctype, body = body_of()
want = shape(*send(path, ctype, body, len(body), "whole"))  # the answer of the uncut body
if want[0] != 200:
    raise SystemExit("%s: the uncut request is answered %r" % (KIND, want))
n = len(body)
# every offset of a small body; both ends and 40 random ones of a large one
cuts = list(range(n + 1)) if n < 4096 else [0, 1, n - 1, n] + random.sample(range(2, n - 1), 40)
for way in ("pause", "nopause", "chunked"):
    for at in cuts:
        path, ctype, body = body_of()  # a complete needs its own upload
        got = shape(*send(path, ctype, body, at, way))
        if got != want:
            print("%s %s cut at %d of %d: %r, not %r" % (KIND, way, at, n, got, want))
            sys.exit(1)
    print("%s %s: %d cuts, the same answer" % (KIND, way, len(cuts)))
