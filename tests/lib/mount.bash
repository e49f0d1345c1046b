# A fresh uploadfs-server and uploadfs mount per test (on top of common.bash).
# Mounts are unmounted and the daemon is stopped by PID in teardown; the daemon's log must
# hold no "error" or "warning" line the test did not expect (FS_ALLOW, an ERE).

load ../lib/common

UPLOADFS="$UPLOADFS_BUILD/fs/uploadfs"

# mount_fs [-o opts...]: mounts $MNT on the running server; sets FS_PID.
mount_fs() {
	MNT=${MNT:-$BATS_TEST_TMPDIR/mnt}
	CACHE=${CACHE:-$BATS_TEST_TMPDIR/cache}
	mkdir -p "$MNT"
	"$UPLOADFS" -f -o "api_base=$BASE,cache_dir=$CACHE" "$@" "$MNT" \
		>>"$BATS_TEST_TMPDIR/fs.log" 2>&1 &
	FS_PID=$!
	local i
	for i in $(seq 100); do
		grep -q " $MNT fuse.uploadfs" /proc/mounts && return 0
		kill -0 "$FS_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "uploadfs did not mount:" >&2
	cat "$BATS_TEST_TMPDIR/fs.log" >&2
	return 1
}

umount_fs() {
	[ -n "${FS_PID:-}" ] || return 0
	if grep -q " $MNT fuse.uploadfs" /proc/mounts; then
		fusermount3 -u "$MNT" 2>/dev/null || { sleep 0.5; fusermount3 -u "$MNT" || fusermount3 -uz "$MNT"; }
	fi
	local i
	for i in $(seq 100); do
		kill -0 "$FS_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill "$FS_PID" 2>/dev/null || true
	wait "$FS_PID" 2>/dev/null || true
	FS_PID=
}

check_fs_log() {
	local f="$BATS_TEST_TMPDIR/fs.log" bad
	[ -f "$f" ] || return 0
	bad=$(grep -E 'uploadfs (error|warning):|(Address|Leak)Sanitizer|runtime error' "$f" |
		grep -vE "${FS_ALLOW:-^$}" || true)
	if [ -n "$bad" ]; then
		echo "unexpected uploadfs log lines:" >&2
		echo "$bad" >&2
		return 1
	fi
}

fs_setup() {
	start_server --allow-downloads "$@"
}

fs_teardown() {
	umount_fs
	stop_server
	check_fs_log
	check_server_log
}

# remote_json NAME: the server's File object named NAME (newest).
remote_json() {
	curl -sS "$BASE/files?limit=10000" | jq -c --arg n "$1" '[.data[] | select(.filename == $n)][0]'
}

# remote_md5 NAME: md5 of the server's copy.
remote_md5() {
	local id
	id=$(remote_json "$1" | jq -r .id)
	[ "$id" != null ] || { echo "no remote file $1" >&2; return 1; }
	curl -sS "$BASE/files/$id/content" | md5sum | cut -d' ' -f1
}

remote_count() {
	curl -sS "$BASE/files?limit=10000" | jq '.data | length'
}

xattr() { getfattr --only-values -n "$2" "$1" 2>/dev/null; }
