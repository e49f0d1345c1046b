#!/usr/bin/env bats
# An upload session that expires (1 h at OpenAI; --expire-seconds here) is recreated and
# its parts sent again from the spool, transparently.

load ../lib/mount

setup() {
	fs_setup --expire-seconds 2 --log-requests "$BATS_TEST_TMPDIR/req.log"
	mount_fs -o part_size=1M
}

teardown() {
	fs_teardown
}

@test "a session that expires while the file is written is replaced at close" {
	python3 - "$MNT/slow.bin" "$BATS_TEST_TMPDIR/slow.bin" <<'PY'
import os, sys, time
data = os.urandom(3 * 1024 * 1024 + 77)
open(sys.argv[2], "wb").write(data)
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.ftruncate(fd, len(data))          # the session starts now
os.write(fd, data[:1024 * 1024])
os.fsync(fd)
assert os.getxattr(sys.argv[1], "user.upload.status") == b"uploading"
time.sleep(3)                        # ... and expires
os.write(fd, data[1024 * 1024:])
os.close(fd)                         # a new session takes every part again
assert os.getxattr(sys.argv[1], "user.upload.status") == b"completed"
PY
	[ "$(remote_md5 slow.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/slow.bin")" ]
	stop_server
	# two sessions were created, and the first expired
	[ "$(grep -c '"path":"\\/v1\\/uploads"' "$BATS_TEST_TMPDIR/req.log")" = 2 ]
	grep -l '"status":"expired"' "$SRV_DATA"/uploads/*.json
}
