#!/usr/bin/env bats
# Options refused at start with one clear line; the contract's flags accepted.

load ../lib/mount

setup() {
	fs_setup
	mkdir -p "$BATS_TEST_TMPDIR/m"
}

teardown() {
	fs_teardown
}

refused() { # OPTS WORD: uploadfs -o OPTS refuses to mount, saying WORD
	run "$UPLOADFS" -f -o "api_base=$BASE,cache_dir=$BATS_TEST_TMPDIR/c,$1" "$BATS_TEST_TMPDIR/m"
	[ "$status" != 0 ]
	[ "$(wc -l <<<"$output")" -le 2 ]
	[[ "$output" == *"$2"* ]]
	! grep -q " $BATS_TEST_TMPDIR/m fuse" /proc/mounts
}

@test "bad option values are refused with a clear line" {
	refused part_size=512K part_size
	refused part_size=65M part_size
	refused parallel=0 parallel
	refused purpose=answers purpose
	refused max_file_size=9G max_file_size
	refused timeout=0 timeout
	refused umask=999 umask
	refused list_interval=0 list_interval
	refused sweep_interval=x sweep_interval
	refused cache_size=lots cache_size
	refused no_such_option unknown
}

@test "a key on the command line is refused and never echoed" {
	refused api_key=sk-secret-on-argv api_key_file
	[[ "$output" != *sk-secret-on-argv* ]]
}

@test "a key file readable by others is refused" {
	printf 'sk-x\n' >"$BATS_TEST_TMPDIR/key"
	chmod 644 "$BATS_TEST_TMPDIR/key"
	refused "api_key_file=$BATS_TEST_TMPDIR/key" 0600
	[[ "$output" != *sk-x* ]]
}

@test "no mountpoint, or one that is not a directory" {
	run "$UPLOADFS" -o "api_base=$BASE"
	[ "$status" = 2 ]
	[[ "$output" == *mountpoint* ]]
	run "$UPLOADFS" -o "api_base=$BASE" /nonexistent/dir
	[ "$status" = 2 ]
	[[ "$output" == *"mount point"* || "$output" == *"not a directory"* ]]
}

@test "an api_base that does not answer is refused at start" {
	run "$UPLOADFS" -f -o "api_base=http://127.0.0.1:9/v1,retries=0,cache_dir=$BATS_TEST_TMPDIR/c" "$BATS_TEST_TMPDIR/m"
	[ "$status" != 0 ]
	[[ "$output" == *"127.0.0.1:9/v1 cannot be reached: "*"connect"* ]]
	run "$UPLOADFS" -f -o "api_base=http://example.invalid/v1,cache_dir=$BATS_TEST_TMPDIR/c" "$BATS_TEST_TMPDIR/m"
	[ "$status" != 0 ]
	[[ "$output" == *"allow_http"* ]]
}

@test "-V and -h" {
	run "$UPLOADFS" -V
	[ "$status" = 0 ]
	[[ "$output" == "uploadfs 0.1.0"* ]]
	run "$UPLOADFS" -h
	[ "$status" = 0 ]
	[[ "$output" == *"part_size=SIZE"* ]]
}

@test "the contract's options mount: sizes with suffixes, uid/gid/umask, ro" {
	mount_fs -o part_size=2M,parallel=2,retries=3,timeout=30,max_file_size=1G,cache_size=512M,list_interval=5,sweep_interval=60,uid=1234,gid=4321,umask=027
	echo x >"$MNT/f.txt"
	[ "$(stat -c '%u %g %a' "$MNT/f.txt")" = "1234 4321 640" ]
	umount_fs
	mount_fs -o ro
	run bash -c "echo y > '$MNT/g.txt'"
	[ "$status" != 0 ]
	[[ "$output" == *"Read-only file system"* ]]
	[ "$(cat "$MNT/f.txt")" = x ]
}

@test "max_file_size: a write past it is EFBIG and the file is failed" {
	FS_ALLOW='write to big failed|max_file_size'
	mount_fs -o max_file_size=1M
	run dd if=/dev/zero of="$MNT/big" bs=64k count=20 status=none
	[ "$status" != 0 ]
	[[ "$output" == *"File too large"* ]]
	[ "$(xattr "$MNT/big" user.upload.status)" = failed ]
	[ "$(remote_count)" = 0 ]
}

@test "allow_other only when asked, and then with default_permissions" {
	mount_fs
	! grep " $MNT " /proc/mounts | grep -q allow_other
	umount_fs
	mount_fs -o allow_other
	grep " $MNT " /proc/mounts | grep -q allow_other
	grep " $MNT " /proc/mounts | grep -q default_permissions
	echo x >"$MNT/f.txt"
	[ "$(remote_count)" = 1 ]
}

@test "-s: the single-threaded loop uploads too" {
	mount_fs -s -o part_size=1M
	head -c 2500000 /dev/urandom >"$BATS_TEST_TMPDIR/s"
	cp "$BATS_TEST_TMPDIR/s" "$MNT/s"
	[ "$(remote_md5 s)" = "$(md5_of "$BATS_TEST_TMPDIR/s")" ]
	ls -l "$MNT" >/dev/null
}
