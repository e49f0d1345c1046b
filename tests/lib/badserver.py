#!/usr/bin/env python3
"""A server that answers like a broken OpenAI-compatible API, for uploadfs's robustness
tests. Loopback only. Usage: badserver.py MODE; prints 'listening on http://HOST:PORT/v1'."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = sys.argv[1]
UPLOAD = {"id": "upload_good", "object": "upload", "bytes": 5, "created_at": 1,
          "expires_at": 4000000000, "filename": "x", "purpose": "assistants",
          "status": "pending", "file": None}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if MODE == "list-garbage":
            return self.send(200, b"this is not json")
        if MODE == "list-wrong-types":
            return self.send(200, {"object": "list", "data": [{"id": 5, "bytes": "x"}],
                                   "has_more": False})
        if MODE == "list-loop":
            f = {"id": "file-a", "object": "file", "bytes": 1, "created_at": 1,
                 "filename": "a", "purpose": "batch"}
            return self.send(200, {"object": "list", "data": [f], "has_more": True,
                                   "first_id": "file-a", "last_id": "file-a"})
        if MODE == "list-huge":
            return self.send(200, b'{"object":"list","data":[' + b" " * (40 << 20) + b"]}")
        if MODE == "list-bad-id":
            f = {"id": "../../etc", "object": "file", "bytes": 1, "created_at": 1,
                 "filename": "a", "purpose": "batch"}
            return self.send(200, {"object": "list", "data": [f], "has_more": False})
        return self.send(200, {"object": "list", "data": [], "has_more": False,
                               "first_id": None, "last_id": None})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        while n > 0:
            n -= len(self.rfile.read(min(n, 1 << 20)))
        path = self.path
        if path == "/v1/uploads":
            if MODE == "create-bad-id":
                return self.send(200, dict(UPLOAD, id="upload/../../x"))
            if MODE == "create-missing":
                return self.send(200, {"object": "upload"})
            if MODE == "error-html":
                return self.send(502, b"<html>Bad gateway</html>", "text/html")
            return self.send(200, UPLOAD)
        if path.endswith("/parts"):
            if MODE == "part-bad-id":
                return self.send(200, {"id": "part/..", "object": "upload.part"})
            return self.send(200, {"id": "part_1", "object": "upload.part",
                                   "created_at": 1, "upload_id": "upload_good"})
        if path.endswith("/complete"):
            if MODE == "complete-nofile":
                return self.send(200, dict(UPLOAD, status="completed", file=None))
            return self.send(200, dict(UPLOAD, status="completed", file=[1, 2]))
        if path.endswith("/cancel"):
            return self.send(200, dict(UPLOAD, status="cancelled"))
        return self.send(404, {"error": {"message": "no", "type": "x", "param": None,
                                         "code": None}})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening on http://127.0.0.1:{server.server_address[1]}/v1", flush=True)
server.serve_forever()
