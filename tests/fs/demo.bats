#!/usr/bin/env bats
# The README's first command (after its dependency step): packaging/demo.sh.

load ../lib/common

@test "packaging/demo.sh mounts, copies a file in and shows it completed" {
	run bash "$BATS_TEST_DIRNAME/../../packaging/demo.sh"
	[ "$status" = 0 ]
	[[ "$output" == *'user.upload.status="completed"'* ]]
	md5=$(sed -n 's/^md5 of the local file: //p' <<<"$output")
	[[ "$output" == *"user.upload.md5=\"$md5\""* ]]
	[[ "$output" == *"20000000 bytes  sample.bin  assistants"* ]]
	# and it unmounted what it mounted
	mnt=$(sed -n 's/^mounted on //p' <<<"$output")
	[ -n "$mnt" ]
	! grep -q " $mnt " /proc/mounts
}
