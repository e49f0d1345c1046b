#!/usr/bin/env bats
# The Debian package as installed (tests/run-all.sh builds it with packaging/build-deb.sh
# and installs it first): every file in its place, `mount -t fuse.uploadfs` and an fstab
# line through the mount helper, and systemd-analyze verify of the units. Everything runs
# from the installed paths.

load ../lib/common

SERVER=/usr/bin/uploadfs-server

setup() {
	dpkg -s uploadfs >/dev/null 2>&1 || {
		echo "the uploadfs package is not installed (bash packaging/build-deb.sh; dpkg -i build/deb/*.deb)" >&2
		return 1
	}
	MNT=$BATS_TEST_TMPDIR/mnt
	LOG=$BATS_TEST_TMPDIR/uploadfs.log
	mkdir -p "$MNT" "$BATS_TEST_TMPDIR/mnt2"
}

teardown() {
	local m
	for m in "$MNT" "$BATS_TEST_TMPDIR/mnt2"; do
		if grep -q " $m fuse.uploadfs" /proc/mounts; then umount "$m" || fusermount3 -uz "$m"; fi
	done
	stop_server
	# the daemon logged no error or warning the test did not expect
	if [ -f "$LOG" ]; then
		! grep -E 'uploadfs (error|warning):' "$LOG"
	fi
	check_server_log
}

wait_mounted() {
	local i
	for i in $(seq 50); do
		grep -q " $1 fuse.uploadfs" /proc/mounts && return 0
		sleep 0.1
	done
	return 1
}

copy_and_check() { # MOUNTPOINT NAME
	head -c 3000000 /dev/urandom >"$BATS_TEST_TMPDIR/$2"
	cp "$BATS_TEST_TMPDIR/$2" "$1/$2"
	[ "$(getfattr --only-values -n user.upload.status "$1/$2")" = completed ]
	id=$(curl -sS "$BASE/files" | jq -r --arg n "$2" '[.data[] | select(.filename == $n)][0].id')
	[ "$(curl -sS "$BASE/files/$id/content" | md5sum)" = "$(md5sum <"$BATS_TEST_TMPDIR/$2")" ]
}

@test "the package puts every file in its place" {
	for f in /usr/bin/uploadfs /usr/bin/uploadfs-server /usr/sbin/mount.uploadfs; do
		[ -x "$f" ]
	done
	[ "$(readlink /usr/sbin/mount.fuse.uploadfs)" = mount.uploadfs ]
	[ -f /usr/include/uploadfs/uploadfs.h ]
	[ "$(pkg-config --modversion uploadfs)" = "$(dpkg-query -W -f '${Version}' uploadfs)" ]
	ldconfig -p | grep -q 'libuploadfs.so.0 '
	for p in uploadfs uploadfs-server libuploadfs mount.uploadfs uploadfs-put uploadfs-ls uploadfs-rm uploadfs-get uploadfs-cancel; do man -w "$p"; done
	[ -f /usr/lib/systemd/system/uploadfs-server.service ]
	[ -f /usr/share/doc/uploadfs/examples/mnt-uploads.mount ]
	[ -f /usr/share/doc/uploadfs/examples/fstab.example ]
	/usr/bin/uploadfs --version | grep -q "^uploadfs $(dpkg-query -W -f '${Version}' uploadfs) "
	# the installed paths are the ones the helper and the unit name
	grep -q 'ExecStart=/usr/bin/uploadfs-server ' /usr/lib/systemd/system/uploadfs-server.service
}

@test "mount -t fuse.uploadfs: the base URL as source, options for mount(8) dropped" {
	start_server --allow-downloads
	mount -t fuse.uploadfs "$BASE" "$MNT" \
		-o "cache_dir=$BATS_TEST_TMPDIR/cache,log=$LOG,_netdev,nofail,x-systemd.device-timeout=5"
	wait_mounted "$MNT"
	# the daemon is the installed one
	grep -q "^uploadfs $MNT fuse.uploadfs" /proc/mounts
	copy_and_check "$MNT" a.bin
	[ "$(/usr/bin/uploadfs status --json "$MNT" | jq .failed)" = 0 ]
	umount "$MNT"
	! grep -q " $MNT fuse.uploadfs" /proc/mounts
	grep -q "uploaded a.bin (3000000 bytes" "$LOG"
}

@test "mount -t fuse.uploadfs none with api_base and a key file" {
	printf 'sk-deb-test\n' >"$BATS_TEST_TMPDIR/key"
	chmod 600 "$BATS_TEST_TMPDIR/key"
	start_server --api-key-file "$BATS_TEST_TMPDIR/key"
	mount -t fuse.uploadfs none "$MNT" \
		-o "api_base=$BASE,api_key_file=$BATS_TEST_TMPDIR/key,cache_dir=$BATS_TEST_TMPDIR/cache,log=$LOG"
	wait_mounted "$MNT"
	head -c 1000 /dev/urandom >"$BATS_TEST_TMPDIR/k.bin"
	cp "$BATS_TEST_TMPDIR/k.bin" "$MNT/"
	[ "$(getfattr --only-values -n user.upload.status "$MNT/k.bin")" = completed ]
	umount "$MNT"
	# the key is in no argument of any process and in no log line
	! grep -q sk-deb-test "$LOG"
}

@test "mount -a with a test fstab mounts its uploadfs lines, and not the noauto one" {
	start_server --allow-downloads
	cat >"$BATS_TEST_TMPDIR/fstab" <<FSTAB
# a test fstab
$BASE  $MNT  fuse.uploadfs  _netdev,nofail,cache_dir=$BATS_TEST_TMPDIR/cache,log=$LOG  0  0
none  $BATS_TEST_TMPDIR/mnt2  fuse.uploadfs  noauto,api_base=$BASE,cache_dir=$BATS_TEST_TMPDIR/cache2  0  0
FSTAB
	mount -a --fstab "$BATS_TEST_TMPDIR/fstab"
	wait_mounted "$MNT"
	! grep -q " $BATS_TEST_TMPDIR/mnt2 " /proc/mounts
	copy_and_check "$MNT" f.bin
	# the noauto line mounts by its mountpoint alone
	mount --fstab "$BATS_TEST_TMPDIR/fstab" "$BATS_TEST_TMPDIR/mnt2"
	wait_mounted "$BATS_TEST_TMPDIR/mnt2"
	[ -f "$BATS_TEST_TMPDIR/mnt2/f.bin" ]
	umount "$BATS_TEST_TMPDIR/mnt2"
	umount "$MNT"
}

@test "the helper refuses a key in the options, fakes with -f, shows its command with -v" {
	run /usr/sbin/mount.uploadfs none "$MNT" -o api_key=sk-in-fstab
	[ "$status" = 1 ]
	[[ "$output" == *"use api_key_file"* ]]
	[[ "$output" != *sk-in-fstab* ]]
	run /usr/sbin/mount.uploadfs http://127.0.0.1:9/v1 "$MNT" -f -v -o _netdev,ro,noauto
	[ "$status" = 0 ]
	[ "$output" = "mount.uploadfs: /usr/bin/uploadfs -o api_base=http://127.0.0.1:9/v1,ro $MNT" ]
	! grep -q " $MNT " /proc/mounts
	run /usr/sbin/mount.uploadfs none
	[ "$status" = 1 ]
	[[ "$output" == *usage* ]]
}

@test "systemd-analyze verify accepts the units, and refuses a broken one" {
	cd "$BATS_TEST_TMPDIR"
	systemd-analyze verify /usr/lib/systemd/system/uploadfs-server.service
	cp /usr/share/doc/uploadfs/examples/mnt-uploads.mount .
	systemd-analyze verify ./mnt-uploads.mount
	mkdir broken
	sed 's|^Where=.*|Where=/mnt/elsewhere|' mnt-uploads.mount >broken/mnt-uploads.mount
	run systemd-analyze verify broken/mnt-uploads.mount
	[ "$status" != 0 ]
	[[ "$output" == *"doesn't match unit name"* ]]
	sed 's|^ExecStart=/usr/bin/|ExecStart=/usr/bin/no-such-|' /usr/lib/systemd/system/uploadfs-server.service >broken/uploadfs-server.service
	run systemd-analyze verify broken/uploadfs-server.service
	[ "$status" != 0 ]
}

@test "a program builds and links against the installed library" {
	cat >"$BATS_TEST_TMPDIR/p.c" <<'C'
#include <uploadfs/uploadfs.h>
#include <stdio.h>
int main(void) { printf("%s\n", up_version()); return 0; }
C
	cc -o "$BATS_TEST_TMPDIR/p" "$BATS_TEST_TMPDIR/p.c" $(pkg-config --cflags --libs uploadfs)
	[ "$("$BATS_TEST_TMPDIR/p")" = "$(dpkg-query -W -f '${Version}' uploadfs)" ]
	ldd "$BATS_TEST_TMPDIR/p" | grep -qE 'libuploadfs\.so\.0 => (/usr)?/lib/x86_64-linux-gnu/libuploadfs\.so\.0'
}

@test "python3-uploadfs: import uploadfs finds the installed library and uploads a file" {
	dpkg -s python3-uploadfs >/dev/null
	[ -f /usr/lib/python3/dist-packages/uploadfs/__init__.py ]
	start_server --allow-downloads
	head -c 3000000 /dev/urandom >"$BATS_TEST_TMPDIR/py.bin"
	cd "$BATS_TEST_TMPDIR"
	# -I: no PYTHONPATH, no user site, not the current directory; no UPLOADFS_LIBRARY
	run env -u UPLOADFS_LIBRARY /usr/bin/python3 -I -c '
import hashlib, sys, uploadfs
path = sys.argv[2]
c = uploadfs.Uploads(base_url=sys.argv[1])
up = c.upload_file_chunked(file=path, mime_type="application/octet-stream", purpose="batch",
                           part_size=1 << 20, md5=hashlib.md5(open(path, "rb").read()).hexdigest())
libs = {l.split()[-1] for l in open("/proc/self/maps") if "libuploadfs" in l}
print(uploadfs.__file__, up.status, up.file.id, up.file.bytes, uploadfs.library_version(), *libs)
' "$BASE" "$BATS_TEST_TMPDIR/py.bin"
	echo "$output"
	[ "$status" = 0 ]
	read -r module upstatus id bytes version lib <<<"$output"
	[ "$module" = /usr/lib/python3/dist-packages/uploadfs/__init__.py ]
	[ "$upstatus" = completed ] && [ "$bytes" = 3000000 ]
	[ "$version" = "$(dpkg-query -W -f '${Version}' uploadfs)" ]
	[[ "$lib" == /usr/lib/x86_64-linux-gnu/libuploadfs.so.0* ]]
	[ "$(curl -sS "$BASE/files/$id/content" | md5sum)" = "$(md5sum <"$BATS_TEST_TMPDIR/py.bin")" ]
}

@test "the installed uploadfs put, ls, get and rm work with no FUSE and no build tree" {
	start_server --allow-downloads
	head -c 3000000 /dev/urandom >"$BATS_TEST_TMPDIR/cli.bin"
	export OPENAI_BASE_URL=$BASE
	id=$(/usr/bin/uploadfs put "$BATS_TEST_TMPDIR/cli.bin" --purpose batch --cache-dir "$BATS_TEST_TMPDIR/cache" -q)
	[[ "$id" == file-* ]]
	[ "$(/usr/bin/uploadfs ls --json | jq -r '.[0].filename')" = cli.bin ]
	/usr/bin/uploadfs get "$id" -o "$BATS_TEST_TMPDIR/back.bin"
	cmp "$BATS_TEST_TMPDIR/back.bin" "$BATS_TEST_TMPDIR/cli.bin"
	/usr/bin/uploadfs rm "$id"
	[ "$(/usr/bin/uploadfs ls --json | jq length)" = 0 ]
}
