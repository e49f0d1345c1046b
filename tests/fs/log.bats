#!/usr/bin/env bats
# Logging: -o log=FILE gets one line per upload finished (name, bytes, seconds, file id)
# and per failure (name, reason); SIGHUP reopens the file, as logrotate needs; a
# daemonized mount writes there too.

load ../lib/mount

setup() {
	fs_setup --max-upload-bytes 1000
	LOG=$BATS_TEST_TMPDIR/uploadfs.log
	FS_ALLOW='upload of big.txt failed'
}

teardown() {
	fs_teardown
}

@test "-o log=FILE: a line per upload and per failure, reopened on SIGHUP" {
	mount_fs -o "log=$LOG"
	echo hello >"$MNT/a.txt"
	id=$(remote_json a.txt | jq -r .id)
	grep -E "uploadfs info: uploaded a\.txt \(6 bytes, [0-9.]+ s\) as $id\$" "$LOG"
	# the server refuses files over 1000 bytes: the failure is logged with its reason
	run cp /etc/services "$MNT/big.txt"
	[ "$status" != 0 ]
	grep -E "uploadfs error: upload of big\.txt failed: .+" "$LOG"
	# nothing went to stderr but what libfuse prints
	! grep -q "uploaded a.txt" "$BATS_TEST_TMPDIR/fs.log"
	# logrotate: move the file away, SIGHUP, the next lines go to a new file
	mv "$LOG" "$LOG.1"
	kill -HUP "$FS_PID"
	for i in $(seq 50); do [ -f "$LOG" ] && break; sleep 0.1; done
	echo again >"$MNT/b.txt"
	grep -q "SIGHUP: log file reopened" "$LOG"
	grep -q "uploaded b.txt (6 bytes" "$LOG"
	! grep -q "uploaded a.txt" "$LOG"
	! grep -q "uploaded b.txt" "$LOG.1"
	# SIGHUP did not unmount
	grep -q " $MNT fuse.uploadfs" /proc/mounts
	[ "$(stat -c %a "$LOG")" = 600 ]
}

@test "a daemonized mount with -o log=FILE writes its lines there" {
	MNT=$BATS_TEST_TMPDIR/mnt
	mkdir -p "$MNT"
	"$UPLOADFS" -o "api_base=$BASE,cache_dir=$BATS_TEST_TMPDIR/cache,log=$LOG" "$MNT"
	grep -q " $MNT fuse.uploadfs" /proc/mounts
	echo hi >"$MNT/d.txt"
	fusermount3 -u "$MNT"
	grep -q "mounted $BASE on $MNT" "$LOG"
	grep -q "uploaded d.txt (3 bytes" "$LOG"
	for i in $(seq 50); do grep -q "unmounted $MNT" "$LOG" && break; sleep 0.1; done
	grep -q "unmounted $MNT" "$LOG"
}

@test "a log file that cannot be opened is refused at start" {
	run "$UPLOADFS" -f -o "api_base=$BASE,cache_dir=$BATS_TEST_TMPDIR/c,log=/nonexistent/dir/x.log" "$BATS_TEST_TMPDIR"
	[ "$status" = 2 ]
	[[ "$output" == *"cannot open the log file /nonexistent/dir/x.log"* ]]
}

@test "a daemonized mount without -o log writes to syslog (LOG_DAEMON, with its pid)" {
	# a private mount namespace whose /dev is a fresh tmpfs: /dev/log there is this test's
	# own socket, and nothing of the machine's logging is touched
	cat >"$BATS_TEST_TMPDIR/inner.sh" <<'INNER'
set -e
T=$1 BASE=$2 BIN=$3
mount --make-rprivate /
mount -t tmpfs -o mode=755 none /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/urandom c 1 9
mknod -m 666 /dev/fuse c 10 229
python3 - "$T/syslog.txt" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
with open(sys.argv[1], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536) + b"\n")
PY
listener=$!
for i in $(seq 100); do [ -S /dev/log ] && break; sleep 0.05; done
mkdir -p "$T/smnt"
"$BIN" -o "api_base=$BASE,cache_dir=$T/scache" "$T/smnt"
echo hello >"$T/smnt/s.txt"
cp /etc/services "$T/smnt/big.txt" 2>/dev/null && exit 3
fusermount3 -u "$T/smnt"
for i in $(seq 100); do grep -q unmounted "$T/syslog.txt" && break; sleep 0.05; done
kill "$listener"
INNER
	unshare -m bash "$BATS_TEST_TMPDIR/inner.sh" "$BATS_TEST_TMPDIR" "$BASE" "$UPLOADFS"
	! grep -q " $BATS_TEST_TMPDIR/smnt " /proc/mounts
	cat "$BATS_TEST_TMPDIR/syslog.txt" >&2
	# <30> is daemon.info, <27> daemon.err
	grep -E '^<30>.* uploadfs\[[0-9]+\]: mounted ' "$BATS_TEST_TMPDIR/syslog.txt"
	grep -E '^<30>.* uploadfs\[[0-9]+\]: uploaded s\.txt \(6 bytes, [0-9.]+ s\) as file-' "$BATS_TEST_TMPDIR/syslog.txt"
	grep -E '^<27>.* uploadfs\[[0-9]+\]: upload of big\.txt failed: ' "$BATS_TEST_TMPDIR/syslog.txt"
	grep -E '^<30>.* uploadfs\[[0-9]+\]: unmounted ' "$BATS_TEST_TMPDIR/syslog.txt"
}

@test "a daemonized mount with no syslog logs to cache_dir/uploadfs.log, and says so at start" {
	# a private mount namespace whose /dev is a fresh tmpfs with no /dev/log: syslog(3)
	# has nowhere to go there
	cat >"$BATS_TEST_TMPDIR/inner.sh" <<'INNER'
set -e
T=$1 BASE=$2 BIN=$3
mount --make-rprivate /
mount -t tmpfs -o mode=755 none /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/urandom c 1 9
mknod -m 666 /dev/fuse c 10 229
# nothing answers on /dev/log (datagram or stream)
for t in SOCK_DGRAM SOCK_STREAM; do
	if python3 -c "import socket; socket.socket(socket.AF_UNIX, socket.$t).connect('/dev/log')" 2>/dev/null; then
		echo "syslog answers in the namespace" >&2
		exit 4
	fi
done
mkdir -p "$T/nmnt"
"$BIN" -o "api_base=$BASE,cache_dir=$T/ncache" "$T/nmnt" 2>"$T/start.err"
mkdir "$T/nmnt/d"
echo hello >"$T/nmnt/d/n.txt"
if setfattr -n user.purpose -v bogus "$T/nmnt/d" 2>"$T/setfattr.err"; then exit 3; fi
fusermount3 -u "$T/nmnt"
for i in $(seq 100); do grep -q unmounted "$T/ncache/uploadfs.log" && break; sleep 0.05; done
INNER
	unshare -m bash "$BATS_TEST_TMPDIR/inner.sh" "$BATS_TEST_TMPDIR" "$BASE" "$UPLOADFS"
	! grep -q " $BATS_TEST_TMPDIR/nmnt " /proc/mounts
	# said on stderr before the daemon left the terminal
	grep -q "no syslog (/dev/log does not answer): logging to $BATS_TEST_TMPDIR/ncache/uploadfs.log" "$BATS_TEST_TMPDIR/start.err"
	grep -q "Invalid argument" "$BATS_TEST_TMPDIR/setfattr.err"
	LOGF=$BATS_TEST_TMPDIR/ncache/uploadfs.log
	cat "$LOGF" >&2
	[ "$(stat -c %a "$LOGF")" = 600 ]
	grep -q "uploadfs info: mounted $BASE on $BATS_TEST_TMPDIR/nmnt" "$LOGF"
	grep -qE "uploadfs info: uploaded d/n\.txt \(6 bytes" "$LOGF"
	# the EINVAL names the valid purposes
	grep -E "uploadfs warning: d: 'bogus' is not a purpose \(.*assistants.*batch.*fine-tune.*vision.*user_data.*evals.*\)" "$LOGF"
	grep -q "uploadfs info: unmounted $BATS_TEST_TMPDIR/nmnt" "$LOGF"
}

@test "-o log_level=error keeps errors and drops warnings; --log-file and --log-level are the same" {
	mount_fs --log-file "$LOG" --log-level=error
	mkdir "$MNT/d"
	run setfattr -n user.purpose -v bogus "$MNT/d"
	[ "$status" != 0 ]
	[[ "$output" == *"Invalid argument"* ]]
	run cp /etc/services "$MNT/big.txt"
	[ "$status" != 0 ]
	echo hi >"$MNT/ok.txt"
	cat "$LOG" >&2
	grep -qE "uploadfs error: upload of big\.txt failed: .+" "$LOG"
	! grep -q "is not a purpose" "$LOG"
	! grep -q "uploadfs info:" "$LOG"
	umount_fs
	# the default (info): the warning is there, and the info lines
	rm -f "$LOG"
	mount_fs -o "log=$LOG"
	run setfattr -n user.purpose -v bogus "$MNT/d"
	[ "$status" != 0 ]
	grep -q "uploadfs warning: d: 'bogus' is not a purpose" "$LOG"
	grep -q "uploadfs info: mounted" "$LOG"
	! grep -q "uploadfs debug:" "$LOG"
	umount_fs
	# debug: the debug lines too, in the file (no -d, no foreground stderr)
	rm -f "$LOG"
	mount_fs -o "log=$LOG,log_level=debug"
	echo x >"$MNT/dbg.txt"
	grep -q "uploadfs debug:" "$LOG"
}

@test "-o log_level with another value is refused before mounting, naming the valid ones" {
	run "$UPLOADFS" -f -o "api_base=$BASE,cache_dir=$BATS_TEST_TMPDIR/c,log_level=bogus" "$BATS_TEST_TMPDIR"
	[ "$status" = 2 ]
	[ "$(wc -l <<<"$output")" = 1 ]
	[[ "$output" == *"log_level=bogus"*"error, warn, info or debug"* ]]
	! grep -q " $BATS_TEST_TMPDIR fuse" /proc/mounts
	run "$UPLOADFS" -f --log-level verbose -o "api_base=$BASE" "$BATS_TEST_TMPDIR"
	[ "$status" = 2 ]
	[[ "$output" == *"log_level=verbose"*"error, warn, info or debug"* ]]
}
