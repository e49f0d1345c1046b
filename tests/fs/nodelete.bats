#!/usr/bin/env bats
# -o no_delete: nothing the mount does deletes a remote file. rm of one, a rename of one or
# onto one, and a change to one (O_TRUNC, >>, truncate: each would upload a new version
# and delete the old) fail with EPERM and one log line; the server keeps every file.
# Files not yet on the server, and empty directories, are removed as usual.

load ../lib/mount

setup() {
	fs_setup
	FS_ALLOW='no_delete is set'
}

teardown() {
	fs_teardown
}

refusals() { grep -c "no_delete is set" "$BATS_TEST_TMPDIR/fs.log" || true; }

@test "-o no_delete: rm, mv, O_TRUNC, >> and truncate of a remote file are EPERM; the server keeps it" {
	mount_fs -o no_delete
	echo one >"$MNT/a.txt"
	echo two >"$MNT/b.txt"
	id=$(remote_json a.txt | jq -r .id)
	[ "$(remote_count)" = 2 ]

	run rm "$MNT/a.txt"
	[ "$status" != 0 ]
	[[ "$output" == *"Operation not permitted"* ]]
	[ "$(refusals)" = 1 ]
	grep -q "rm of a.txt refused: it would delete $id on the server, and no_delete is set" "$BATS_TEST_TMPDIR/fs.log"
	[ -f "$MNT/a.txt" ]
	[ "$(cat "$MNT/a.txt")" = one ]

	# a rename of a remote file is a new upload and the delete of the old one
	run mv "$MNT/a.txt" "$MNT/c.txt"
	[ "$status" != 0 ]
	[[ "$output" == *"Operation not permitted"* ]]
	[ "$(refusals)" = 2 ]
	[ -f "$MNT/a.txt" ] && [ ! -e "$MNT/c.txt" ]

	# a rename onto a remote file deletes the file it replaces
	exec 5>"$MNT/new.tmp"
	echo three >&5
	run mv "$MNT/new.tmp" "$MNT/b.txt"
	[ "$status" != 0 ]
	[[ "$output" == *"Operation not permitted"* ]]
	[ "$(refusals)" = 3 ]
	grep -q "mv onto b.txt refused" "$BATS_TEST_TMPDIR/fs.log"
	exec 5>&-

	# O_TRUNC, >> and truncate would each replace it by a new version
	run bash -c "echo new >'$MNT/a.txt'"
	[ "$status" != 0 ]
	[[ "$output" == *"Operation not permitted"* ]]
	run bash -c "echo more >>'$MNT/a.txt'"
	[ "$status" != 0 ]
	[[ "$output" == *"Operation not permitted"* ]]
	run truncate -s 0 "$MNT/a.txt"
	[ "$status" != 0 ]
	[[ "$output" == *"Operation not permitted"* ]]
	[ "$(refusals)" = 6 ]

	# nothing changed on the server: the same files, the same bytes
	[ "$(remote_json a.txt | jq -r .id)" = "$id" ]
	[ "$(curl -sS "$BASE/files/$id/content")" = one ]
	[ "$(remote_json b.txt | jq -r .bytes)" = 4 ]
	[ "$(remote_count)" = 3 ] # a.txt, b.txt and new.tmp, uploaded at its close
	[ "$(cat "$MNT/a.txt")" = one ]

	# what deletes no remote file goes on: rm of a file still being written (its upload
	# is cancelled), rmdir of an empty directory, new files
	exec 6>"$MNT/w.txt"
	echo partial >&6
	rm "$MNT/w.txt"
	exec 6>&-
	mkdir "$MNT/d"
	rmdir "$MNT/d"
	echo four >"$MNT/e.txt"
	[ "$(remote_count)" = 4 ]
	[ "$(refusals)" = 6 ]

	# without no_delete, rm deletes as before
	umount_fs
	mount_fs
	rm "$MNT/a.txt"
	[ "$(remote_json a.txt)" = null ]
	[ "$(remote_count)" = 3 ]
}
