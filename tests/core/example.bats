#!/usr/bin/env bats
# core/examples/upload.c, the seed's usage example in C, built and run against the server.

load ../lib/common

EXAMPLE="$UPLOADFS_BUILD/core/upload"

setup() {
	start_server --api-key sk-example --log-requests "$BATS_TEST_TMPDIR/req.log"
}

teardown() {
	server_teardown
}

@test "the example uploads a file in parts and prints the upload and the file" {
	head -c 5000000 /dev/urandom >"$BATS_TEST_TMPDIR/train.jsonl"
	OPENAI_BASE_URL=$BASE OPENAI_API_KEY=sk-example run "$EXAMPLE" "$BATS_TEST_TMPDIR/train.jsonl" batch 1048576
	[ "$status" = 0 ]
	[[ "${lines[0]}" =~ ^upload\ upload_[A-Za-z0-9]+\ completed$ ]]
	[[ "${lines[1]}" =~ ^file\ file-[A-Za-z0-9]+\ 5000000\ bytes\ train.jsonl$ ]]
	fid=$(awk '/^file /{print $2}' <<<"$output")
	curl -sS -H 'Authorization: Bearer sk-example' "$BASE/files/$fid/content" | cmp - "$BATS_TEST_TMPDIR/train.jsonl"
	stop_server
	# five parts of 1 MiB, each with a Content-Length and never chunked, and one complete
	[ "$(grep -c '/parts"' "$BATS_TEST_TMPDIR/req.log")" = 5 ]
	! grep '/parts"' "$BATS_TEST_TMPDIR/req.log" | grep -q transfer-encoding
	[ "$(grep '/parts"' "$BATS_TEST_TMPDIR/req.log" | grep -c content-length)" = 5 ]
	grep -q '/complete"' "$BATS_TEST_TMPDIR/req.log"
	! grep -q sk-example "$BATS_TEST_TMPDIR/req.log"
}

@test "the example reports a wrong key with the server's message and exits 1" {
	OPENAI_BASE_URL=$BASE OPENAI_API_KEY=sk-wrong run "$EXAMPLE" /etc/hostname
	[ "$status" = 1 ]
	[[ "$output" == *"Incorrect API key"*"HTTP 401"* ]]
	[[ "$output" != *sk-wrong* ]]
}

@test "the example answers --help with its usage, refuses an unknown option, and sends the file's MIME type" {
	run "$EXAMPLE" --help
	[ "$status" = 0 ]
	[[ "$output" == *"usage:"*"FILE [PURPOSE"* ]]
	run "$EXAMPLE" --bogus
	[ "$status" = 2 ]
	[[ "$output" == *"usage:"* ]]
	printf '{"a":1}\n' >"$BATS_TEST_TMPDIR/x.jsonl"
	OPENAI_BASE_URL=$BASE OPENAI_API_KEY=sk-example run "$EXAMPLE" "$BATS_TEST_TMPDIR/x.jsonl"
	[ "$status" = 0 ]
	jq -r .mime_type "$SRV_DATA"/uploads/*.json | grep -qx application/jsonl
}
