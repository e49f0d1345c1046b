#!/usr/bin/env bats
# HTTPS end to end: uploadfs-server with --tls-cert/--tls-key, the mount and the library
# verifying it with a test CA (-o ca_file, $SSL_CERT_FILE), and the refusals of a server
# they must not trust.

load ../lib/mount

setup_file() {
	make_tls "$BATS_FILE_TMPDIR/tls"
}

setup() {
	TLS=$BATS_FILE_TMPDIR/tls
	export CURL_CA_BUNDLE=$TLS/ca.pem # for the tests' own curl
	fs_setup --tls-cert "$TLS/srv.pem" --tls-key "$TLS/srv.key"
	# a client that gives up on the handshake is logged by the server
	ALLOW_LOG='handshake|TLS|tls'
}

teardown() {
	fs_teardown
}

@test "the server speaks HTTPS with --tls-cert and --tls-key, and says so" {
	[[ "$BASE" == https://127.0.0.1:* ]]
	api GET /files
	[ "$code" = 200 ]
	# plain http to it is no answer, and a client without the CA is refused
	run curl -sS --max-time 5 "http${BASE#https}/files"
	[ "$status" != 0 ]
	run env -u CURL_CA_BUNDLE curl -sS --cacert "$TLS/other-ca.pem" "$BASE/files"
	[ "$status" = 60 ]
}

@test "the server refuses a key others can read, half a pair, a pair that does not match, and not-PEM" {
	stop_server
	local out=$BATS_TEST_TMPDIR/o
	cp "$TLS/srv.key" "$BATS_TEST_TMPDIR/open.key"
	chmod 644 "$BATS_TEST_TMPDIR/open.key"
	run "$SERVER" --listen 127.0.0.1:0 --data "$BATS_TEST_TMPDIR/d1" --tls-cert "$TLS/srv.pem" --tls-key "$BATS_TEST_TMPDIR/open.key"
	[ "$status" = 1 ]
	[[ "$output" == *"--tls-key"*"mode 0600"* ]]
	run "$SERVER" --listen 127.0.0.1:0 --data "$BATS_TEST_TMPDIR/d1" --tls-cert "$TLS/srv.pem"
	[ "$status" = 2 ]
	[[ "$output" == *"--tls-cert and --tls-key go together"* ]]
	run "$SERVER" --listen 127.0.0.1:0 --data "$BATS_TEST_TMPDIR/d1" --tls-cert "$TLS/srv.pem" --tls-key "$TLS/wronghost.key"
	[ "$status" = 1 ]
	[[ "$output" == *"cannot serve HTTPS"*"certificate and its private key"* ]]
	run "$SERVER" --listen 127.0.0.1:0 --data "$BATS_TEST_TMPDIR/d1" --tls-cert /etc/hostname --tls-key "$TLS/srv.key"
	[ "$status" = 1 ]
	[[ "$output" == *"not PEM"* ]]
	[ "${#lines[@]}" = 1 ]
}

@test "the mount over https with -o ca_file: cp, cat back, md5 checked on the server" {
	mount_fs -o "ca_file=$TLS/ca.pem,part_size=1M"
	head -c 5000000 /dev/urandom >"$BATS_TEST_TMPDIR/f"
	cp "$BATS_TEST_TMPDIR/f" "$MNT/f.bin"
	[ "$(xattr "$MNT/f.bin" user.upload.status)" = completed ]
	[ "$(remote_md5 f.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/f")" ]
	cmp "$MNT/f.bin" "$BATS_TEST_TMPDIR/f"
	ls -l "$MNT" | grep -q f.bin
}

@test "\$SSL_CERT_FILE trusts the server for the mount and for the library's example" {
	SSL_CERT_FILE=$TLS/ca.pem mount_fs
	echo hello >"$MNT/hello.txt"
	[ "$(xattr "$MNT/hello.txt" user.upload.status)" = completed ]
	head -c 3000000 /dev/urandom >"$BATS_TEST_TMPDIR/train.jsonl"
	SSL_CERT_FILE=$TLS/ca.pem OPENAI_BASE_URL=$BASE OPENAI_API_KEY=sk-x \
		run "$UPLOADFS_BUILD/core/upload" "$BATS_TEST_TMPDIR/train.jsonl" batch 1048576
	[ "$status" = 0 ]
	[[ "${lines[0]}" =~ ^upload\ upload_[A-Za-z0-9]+\ completed$ ]]
	# without it, the library refuses the server and says what to do
	OPENAI_BASE_URL=$BASE OPENAI_API_KEY=sk-x run "$UPLOADFS_BUILD/core/upload" "$BATS_TEST_TMPDIR/train.jsonl" batch
	[ "$status" = 1 ]
	[[ "$output" == *"TLS"*"ca_file or \$SSL_CERT_FILE"* ]]
}

# mount_refused OPTIONS: runs the mount in the foreground; it must exit 1 without mounting.
mount_refused() {
	MNT=$BATS_TEST_TMPDIR/mnt
	mkdir -p "$MNT"
	run timeout 30 "$UPLOADFS" -f -o "api_base=$BASE,cache_dir=$BATS_TEST_TMPDIR/cache,$1" "$MNT"
	[ "$status" = 1 ]
	! grep -q " $MNT fuse.uploadfs" /proc/mounts
}

@test "a server signed by another CA, a certificate for another name, a CA file that is not there: the mount refuses, in one line" {
	mount_refused "ca_file=$TLS/other-ca.pem"
	[ "${#lines[@]}" = 1 ]
	[[ "$output" == *"cannot be reached: TLS: SSL certificate problem"*"give its CA certificate with ca_file"* ]]
	mount_refused "ca_file=$BATS_TEST_TMPDIR/none.pem"
	[ "${#lines[@]}" = 1 ]
	[[ "$output" == *"cannot read the CA file"*"none.pem (ca_file)"* ]]
	# the same CA, but a certificate for elsewhere.invalid
	stop_server
	start_server --tls-cert "$TLS/wronghost.pem" --tls-key "$TLS/wronghost.key"
	mount_refused "ca_file=$TLS/ca.pem"
	[ "${#lines[@]}" = 1 ]
	[[ "$output" == *"TLS"*"host name"*"for another name"* ]]
}
