#!/usr/bin/env python3
"""populate.py BASE N [PREFIX]: N small files put on the server through POST /v1/files, on one
kept-alive connection (a curl per file would take minutes at 20k). Names PREFIXi.txt; every
tenth under PREFIXdir/ (a nested name)."""
import http.client
import sys
import urllib.parse
import uuid

base, n = sys.argv[1], int(sys.argv[2])
prefix = sys.argv[3] if len(sys.argv) > 3 else "f"
u = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(u.hostname, u.port)
for i in range(n):
    b = uuid.uuid4().hex
    name = "%sdir/%s%d.txt" % (prefix, prefix, i) if i % 10 == 0 else "%s%d.txt" % (prefix, i)
    body = ("--{b}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
            "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{n}\"\r\n"
            "Content-Type: text/plain\r\n\r\n{i}\r\n--{b}--\r\n").format(b=b, n=name, i=i)
    conn.request("POST", u.path + "/files", body.encode(),
                 {"Content-Type": "multipart/form-data; boundary=" + b})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("POST /files: %d" % r.status)
