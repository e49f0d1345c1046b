#!/usr/bin/env bats
# Extended attributes: user.purpose and user.mime_type before the upload starts, directory
# defaults, the read-only user.upload.* status, and the kernel's probes.

load ../lib/mount

setup() {
	fs_setup
	mount_fs -o part_size=1M
}

teardown() {
	fs_teardown
}

@test "touch, setfattr user.purpose, then cat > uploads with that purpose" {
	touch "$MNT/batch.jsonl"
	[ "$(xattr "$MNT/batch.jsonl" user.upload.status)" = pending ]
	[ "$(remote_count)" = 0 ]
	setfattr -n user.purpose -v batch "$MNT/batch.jsonl"
	[ "$(xattr "$MNT/batch.jsonl" user.purpose)" = batch ]
	seq 100 >"$BATS_TEST_TMPDIR/input"
	cat "$BATS_TEST_TMPDIR/input" >"$MNT/batch.jsonl"
	[ "$(remote_json batch.jsonl | jq -r .purpose)" = batch ]
	[ "$(remote_md5 batch.jsonl)" = "$(md5_of "$BATS_TEST_TMPDIR/input")" ]
}

@test "getfattr -d -m - shows every attribute of a completed file" {
	echo data >"$MNT/f.txt"
	run getfattr -d -m - "$MNT/f.txt"
	[[ "$output" == *'user.purpose="assistants"'* ]]
	[[ "$output" == *'user.mime_type="text/plain"'* ]]
	[[ "$output" == *'user.upload.status="completed"'* ]]
	[[ "$output" == *'user.upload.id="upload_'* ]]
	[[ "$output" == *'user.upload.file_id="file-'* ]]
	[[ "$output" == *"user.upload.md5=\"$(echo data | md5sum | cut -d' ' -f1)\""* ]]
	[[ "$output" == *'user.upload.bytes_sent="5"'* ]]
	[[ "$output" != *user.upload.error* ]]
}

@test "a bad purpose is EINVAL with a log line" {
	FS_ALLOW="is not a purpose"
	touch "$MNT/p"
	run setfattr -n user.purpose -v answers "$MNT/p"
	[ "$status" != 0 ]
	[[ "$output" == *"Invalid argument"* ]]
	grep -q "'answers' is not a purpose" "$BATS_TEST_TMPDIR/fs.log"
	[ "$(xattr "$MNT/p" user.purpose)" = assistants ]
}

@test "user.purpose and user.mime_type are EPERM once the upload started" {
	FS_ALLOW="cannot change once the upload has started"
	echo x >"$MNT/done.txt"
	run setfattr -n user.purpose -v batch "$MNT/done.txt"
	[ "$status" != 0 ]
	[[ "$output" == *"Operation not permitted"* ]]
	run setfattr -n user.mime_type -v text/csv "$MNT/done.txt"
	[[ "$output" == *"Operation not permitted"* ]]
}

@test "user.upload.* are read-only (EPERM); other namespaces ENOTSUP" {
	FS_ALLOW="is read-only"
	touch "$MNT/ro"
	for a in status id file_id md5 bytes_sent error; do
		run setfattr -n "user.upload.$a" -v x "$MNT/ro"
		[[ "$output" == *"Operation not permitted"* ]]
	done
	run setfattr -n trusted.x -v 1 "$MNT/ro"
	[[ "$output" == *"Operation not supported"* ]]
	run getfattr -n trusted.x "$MNT/ro"
	[[ "$output" == *"Operation not supported"* ]]
	run getfattr -n security.capability "$MNT/ro"
	[[ "$output" == *"No such attribute"* ]]
	run getfattr -n user.upload.file_id "$MNT/ro"
	[[ "$output" == *"No such attribute"* ]]
}

@test "XATTR_CREATE, XATTR_REPLACE, removal and the size-0 and ERANGE probes" {
	touch "$MNT/flags.txt"
	python3 - "$MNT/flags.txt" <<'PY'
import ctypes, errno, os, sys
p = sys.argv[1]
os.setxattr(p, "user.purpose", b"batch", os.XATTR_CREATE)
try:
    os.setxattr(p, "user.purpose", b"vision", os.XATTR_CREATE)
    raise SystemExit("XATTR_CREATE on an existing attribute succeeded")
except OSError as e:
    assert e.errno == errno.EEXIST, e
os.setxattr(p, "user.purpose", b"vision", os.XATTR_REPLACE)
assert os.getxattr(p, "user.purpose") == b"vision"
try:
    os.setxattr(p, "user.mime_type", b"text/csv", os.XATTR_REPLACE)
    raise SystemExit("XATTR_REPLACE on a missing attribute succeeded")
except OSError as e:
    assert e.errno == errno.ENODATA, e
os.removexattr(p, "user.purpose")
assert os.getxattr(p, "user.purpose") == b"assistants"
libc = ctypes.CDLL(None, use_errno=True)
size = libc.getxattr(p.encode(), b"user.purpose", None, 0)
assert size == len("assistants"), size
buf = ctypes.create_string_buffer(3)
assert libc.getxattr(p.encode(), b"user.purpose", buf, 3) == -1
assert ctypes.get_errno() == errno.ERANGE
assert libc.listxattr(p.encode(), None, 0) > 0
small = ctypes.create_string_buffer(4)
assert libc.listxattr(p.encode(), small, 4) == -1 and ctypes.get_errno() == errno.ERANGE
PY
}

@test "mime_type defaults from the extension and can be set" {
	touch "$MNT/a.jsonl" "$MNT/b.pdf" "$MNT/c.unknown" "$MNT/d.csv"
	[ "$(xattr "$MNT/a.jsonl" user.mime_type)" = application/jsonl ]
	[ "$(xattr "$MNT/b.pdf" user.mime_type)" = application/pdf ]
	[ "$(xattr "$MNT/c.unknown" user.mime_type)" = application/octet-stream ]
	setfattr -n user.mime_type -v text/x-custom "$MNT/d.csv"
	[ "$(xattr "$MNT/d.csv" user.mime_type)" = text/x-custom ]
}

@test "a directory's user.purpose is the default for files below it, inherited" {
	mkdir -p "$MNT/ft/deeper"
	setfattr -n user.purpose -v fine-tune "$MNT/ft"
	[ "$(xattr "$MNT/ft" user.purpose)" = fine-tune ]
	echo '{}' >"$MNT/ft/train.jsonl"
	echo '{}' >"$MNT/ft/deeper/valid.jsonl"
	[ "$(remote_json ft/train.jsonl | jq -r .purpose)" = fine-tune ]
	[ "$(remote_json ft/deeper/valid.jsonl | jq -r .purpose)" = fine-tune ]
	# a file's own xattr wins over the directory's
	touch "$MNT/ft/own.jsonl"
	setfattr -n user.purpose -v batch "$MNT/ft/own.jsonl"
	echo '{}' >"$MNT/ft/own.jsonl"
	[ "$(remote_json ft/own.jsonl | jq -r .purpose)" = batch ]
	# and directory defaults survive a remount
	umount_fs
	mount_fs -o part_size=1M
	[ "$(xattr "$MNT/ft" user.purpose)" = fine-tune ]
}

@test "the mount's -o purpose is the default when nothing else says" {
	umount_fs
	mount_fs -o purpose=batch
	echo x >"$MNT/m.txt"
	[ "$(remote_json m.txt | jq -r .purpose)" = batch ]
	run "$UPLOADFS" -f -o "api_base=$BASE,purpose=answers" "$BATS_TEST_TMPDIR"
	[ "$status" = 2 ]
	[[ "$output" == *"purpose"* ]]
}
