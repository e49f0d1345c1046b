#!/usr/bin/env bash
# make-tls.sh DIR: certificates for tests and benchmarks, valid two days. In DIR: a test CA
# (ca.pem), a server certificate it signed for localhost and 127.0.0.1 (srv.pem, srv.key),
# another CA that signed nothing here (other-ca.pem), and a certificate of the test CA for
# another host name only (wronghost.pem, wronghost.key). Keys are mode 0600.
set -euo pipefail
d=$1
mkdir -p "$d"
for n in ca other-ca; do
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=uploadfs test $n" \
		-keyout "$d/$n.key" -out "$d/$n.pem" 2>/dev/null
done
sign() { # NAME SUBJECT_ALT_NAMES
	openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$d/$1.key" -out "$d/$1.csr" 2>/dev/null
	printf 'subjectAltName=%s\n' "$2" >"$d/$1.ext"
	openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -extfile "$d/$1.ext" -out "$d/$1.pem" 2>/dev/null
}
sign srv 'DNS:localhost,IP:127.0.0.1'
sign wronghost 'DNS:elsewhere.invalid'
chmod 600 "$d"/*.key
