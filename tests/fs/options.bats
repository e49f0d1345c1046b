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

@test "long flags: --foreground, --debug, --cache-dir DIR / =DIR, --read-only, --allow-other, --log-file, --log-level" {
	MNT=$BATS_TEST_TMPDIR/m
	"$UPLOADFS" --foreground --cache-dir "$BATS_TEST_TMPDIR/c1" --read-only --allow-other \
		--log-file="$BATS_TEST_TMPDIR/l.log" --log-level info -o "api_base=$BASE" "$MNT" \
		>>"$BATS_TEST_TMPDIR/fs.log" 2>&1 &
	FS_PID=$!
	for i in $(seq 100); do grep -q " $MNT fuse.uploadfs" /proc/mounts && break; sleep 0.05; done
	grep " $MNT fuse.uploadfs" /proc/mounts | grep -qE '(^| |,)ro,'
	grep " $MNT fuse.uploadfs" /proc/mounts | grep -q allow_other
	[ -f "$BATS_TEST_TMPDIR/c1/lock" ] || ls "$BATS_TEST_TMPDIR/c1" | grep -q .
	grep -q "mounted $BASE on $MNT" "$BATS_TEST_TMPDIR/l.log"
	# --foreground: still our child
	kill -0 "$FS_PID"
	umount_fs
	# --cache-dir=DIR (a comma in it stays in the name), --debug: debug lines on stderr
	"$UPLOADFS" --debug "--cache-dir=$BATS_TEST_TMPDIR/c,2" -o "api_base=$BASE" "$MNT" \
		>>"$BATS_TEST_TMPDIR/fs.log" 2>&1 &
	FS_PID=$!
	for i in $(seq 100); do grep -q " $MNT fuse.uploadfs" /proc/mounts && break; sleep 0.05; done
	echo x >"$MNT/f.txt"
	[ -d "$BATS_TEST_TMPDIR/c,2/spool" ]
	grep -q "uploadfs debug:" "$BATS_TEST_TMPDIR/fs.log"
	umount_fs
}

@test "an unknown option is refused at once, before any network access, naming it and --help" {
	# a server that logs every request stands where the default base would be looked up
	stop_server
	start_server --log-requests "$BATS_TEST_TMPDIR/req.log"
	export OPENAI_BASE_URL=$BASE
	for opts in "--bogus" "-x" "-o bogus=1" "-o part_size=2M,nonsense" "--foreground=yes"; do
		# shellcheck disable=SC2086
		run timeout 2 "$UPLOADFS" $opts "$BATS_TEST_TMPDIR/m"
		echo "$opts: $status $output" >&2
		[ "$status" = 2 ]
		[ "$(wc -l <<<"$output")" = 1 ]
		[[ "$output" == *"--help"* ]]
	done
	run timeout 2 "$UPLOADFS" --bogus "$BATS_TEST_TMPDIR/m"
	[[ "$output" == "uploadfs: unknown option --bogus (uploadfs --help lists the options)" ]]
	run timeout 2 "$UPLOADFS" "$BATS_TEST_TMPDIR/m" --cache-dir
	[ "$status" = 2 ]
	[[ "$output" == *"--cache-dir needs a value"* ]]
	run timeout 2 "$UPLOADFS" -o bogus=1 "$BATS_TEST_TMPDIR/m"
	[[ "$output" == "uploadfs: unknown option -o bogus=1 (uploadfs --help lists the options)" ]]
	# with no api_base at all (api.openai.com would be resolved): still at once
	unset OPENAI_BASE_URL
	run timeout 2 env -u OPENAI_BASE_URL -u PORTKEY_API_KEY "$UPLOADFS" --bogus "$BATS_TEST_TMPDIR/m"
	[ "$status" = 2 ]
	[[ "$output" == *"--bogus"*"--help"* ]]
	[ ! -s "$BATS_TEST_TMPDIR/req.log" ]
	! grep -q " $BATS_TEST_TMPDIR/m fuse" /proc/mounts
}

@test "a 401 at start says where the key came from, never the key" {
	stop_server
	start_server --api-key right-key-123
	printf 'wrong-key-from-file\n' >"$BATS_TEST_TMPDIR/key"
	chmod 600 "$BATS_TEST_TMPDIR/key"
	m() { run env "$@" "$UPLOADFS" -f -o "api_base=$BASE,retries=0,cache_dir=$BATS_TEST_TMPDIR/c" "$BATS_TEST_TMPDIR/m"; }
	m -u PORTKEY_API_KEY OPENAI_API_KEY=wrong-key-from-env
	[ "$status" != 0 ]
	[[ "$output" == *"the server refused the key from \$OPENAI_API_KEY"* ]]
	[[ "$output" != *wrong-key-from-env* ]]
	run env -u PORTKEY_API_KEY OPENAI_API_KEY=wrong-key-from-env "$UPLOADFS" -f -o "api_base=$BASE,retries=0,cache_dir=$BATS_TEST_TMPDIR/c,api_key_file=$BATS_TEST_TMPDIR/key" "$BATS_TEST_TMPDIR/m"
	[ "$status" != 0 ]
	[[ "$output" == *"the server refused the key from api_key_file $BATS_TEST_TMPDIR/key"* ]]
	[[ "$output" != *wrong-key-from* ]]
	m -u OPENAI_API_KEY PORTKEY_API_KEY=wrong-portkey-key
	[ "$status" != 0 ]
	[[ "$output" == *"the server refused the key from \$PORTKEY_API_KEY"* ]]
	[[ "$output" != *wrong-portkey-key* ]]
	m -u OPENAI_API_KEY -u PORTKEY_API_KEY
	[ "$status" != 0 ]
	[[ "$output" == *"the server refused the key from none"* ]]
	! grep -q " $BATS_TEST_TMPDIR/m fuse" /proc/mounts
	# the right key mounts
	OPENAI_API_KEY=right-key-123 mount_fs
	echo x >"$MNT/f.txt"
}

@test "a base URL without /v1: did you mean .../v1?" {
	run "$UPLOADFS" -f -o "api_base=${BASE%/v1},retries=0,cache_dir=$BATS_TEST_TMPDIR/c" "$BATS_TEST_TMPDIR/m"
	[ "$status" != 0 ]
	[ "$(wc -l <<<"$output")" = 1 ]
	[[ "$output" == *"does not answer as an Uploads/Files API"*"did you mean $BASE?"* ]]
	# with /v1 no such hint: a server that is down is only "cannot be reached"
	run "$UPLOADFS" -f -o "api_base=http://127.0.0.1:9/v1,retries=0,cache_dir=$BATS_TEST_TMPDIR/c" "$BATS_TEST_TMPDIR/m"
	[[ "$output" != *"did you mean"* ]]
}
