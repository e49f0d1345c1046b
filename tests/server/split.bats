#!/usr/bin/env bats
# A request body split anywhere is the same request: every endpoint's body cut in two at
# every byte offset (random ones for 1 MiB), with a pause between the halves, without one,
# and as two chunks of chunked transfer encoding (tests/lib/splitbody.py). The official
# SDKs send headers and body in separate writes; curl sends them at once.

load ../lib/common

setup() {
	start_server
}

teardown() {
	server_teardown
}

split() {
	run python3 "$BATS_TEST_DIRNAME/../lib/splitbody.py" "$BASE" "$1"
	echo "$output"
	[ "$status" = 0 ]
	[ "$(grep -c 'the same answer' <<<"$output")" = 3 ]
}

@test "a part of 0, 1, 2 and 3 bytes, its body split at every offset" {
	for k in part0 part1 part2 part3; do split "$k"; done
}

@test "a part of 1 MiB split at 44 offsets" {
	split part1M
}

@test "POST /v1/files of 0 and 3 bytes split at every offset" {
	split file0
	split file3
}

@test "the JSON bodies of create and complete split at every offset" {
	split create
	split complete
}
