#!/usr/bin/env bats
# The man pages render, say what the contract says, and meson install puts them in place.

load ../lib/common

MAN=$BATS_TEST_DIRNAME/../../packaging/man
BASE_X=http://127.0.0.1:9/v1

render() { MANWIDTH=100 man -l "$MAN/$1" 2>"$BATS_TEST_TMPDIR/warn"; }

@test "uploadfs(1) renders and documents every option and xattr of the contract" {
	out=$(render uploadfs.1)
	[ ! -s "$BATS_TEST_TMPDIR/warn" ]
	for word in api_base= api_key_file= purpose= part_size= parallel= cache_dir= retries= \
		timeout= retry_window= max_file_size= cache_size= list_interval= sweep_interval= async size_hint= log= allow_other user.purpose user.mime_type \
		user.upload.status user.upload.file_id user.upload.md5 user.upload.bytes_sent \
		user.upload.error PORTKEY_API_KEY OPENAI_BASE_URL; do
		grep -q -- "$word" <<<"$out" || { echo "uploadfs(1) lacks $word" >&2; return 1; }
	done
}

@test "uploadfs-put, -ls, -rm, -get and -cancel(1) render and document every flag of their --help" {
	local c flag out
	for c in put ls rm get cancel; do
		out=$(render "uploadfs-$c.1")
		[ ! -s "$BATS_TEST_TMPDIR/warn" ]
		[[ "$out" == *"uploadfs $c"* ]]
		for flag in $("$UPLOADFS_BUILD/fs/uploadfs" "$c" --help | grep -o -- '--[a-z-]*' | sort -u); do
			grep -q -- "$flag" <<<"$out" || { echo "uploadfs-$c(1) lacks $flag" >&2; return 1; }
		done
	done
}

@test "uploadfs-server(1) renders and documents every flag" {
	out=$(render uploadfs-server.1)
	[ ! -s "$BATS_TEST_TMPDIR/warn" ]
	for flag in $("$SERVER" --help | grep -o -- '--[a-z-]*' | sort -u); do
		[ "$flag" = --help ] || [ "$flag" = --version ] && continue
		grep -q -- "$flag" <<<"$out" || { echo "uploadfs-server(1) lacks $flag" >&2; return 1; }
	done
}

@test "libuploadfs(3) renders" {
	out=$(render libuploadfs.3)
	[ ! -s "$BATS_TEST_TMPDIR/warn" ]
	[[ "$out" == *up_upload_file* ]]
	[[ "$out" == *"pkg-config --cflags --libs uploadfs"* ]]
}

@test "mount.uploadfs(8) renders and documents the helper" {
	out=$(render mount.uploadfs.8)
	[ ! -s "$BATS_TEST_TMPDIR/warn" ]
	for word in "mount -t fuse.uploadfs" fstab _netdev nofail api_key_file; do
		grep -q -- "$word" <<<"$out" || { echo "mount.uploadfs(8) lacks $word" >&2; return 1; }
	done
	# uploadfs(1) tells of status, -o log and the helper
	out=$(render uploadfs.1)
	for word in "uploadfs status" --json --watch log= SIGHUP mount.uploadfs "Files API"; do
		grep -q -- "$word" <<<"$out" || { echo "uploadfs(1) lacks $word" >&2; return 1; }
	done
}

@test "meson install puts the pages, the mount helper and the units in place" {
	root=$BATS_TEST_TMPDIR/root
	DESTDIR=$root meson install -C "$UPLOADFS_BUILD" --no-rebuild --quiet >/dev/null
	[ -n "$(find "$root" -path '*/man1/uploadfs.1*')" ]
	[ -n "$(find "$root" -path '*/man1/uploadfs-server.1*')" ]
	[ -n "$(find "$root" -path '*/man1/uploadfs-put.1*')" ]
	[ -n "$(find "$root" -path '*/man1/uploadfs-cancel.1*')" ]
	[ -n "$(find "$root" -path '*/man3/libuploadfs.3*')" ]
	[ -n "$(find "$root" -path '*/man8/mount.uploadfs.8*')" ]
	helper=$(find "$root" -path '*/sbin/mount.uploadfs')
	[ -x "$helper" ]
	[ "$(readlink "$(dirname "$helper")/mount.fuse.uploadfs")" = mount.uploadfs ]
	[ -n "$(find "$root" -path '*/systemd/system/uploadfs-server.service')" ]
	[ -n "$(find "$root" -path '*/examples/mnt-uploads.mount')" ]
	# the helper finds the uploadfs installed beside it, and passes what uploadfs takes
	run "$helper" none /mnt/x -f -v -o "api_base=$BASE_X,defaults,_netdev,x-systemd.automount,parallel=2"
	[ "$status" = 0 ]
	[ "$output" = "mount.uploadfs: $(cd "$(dirname "$helper")/../bin" && pwd -P)/uploadfs -o api_base=$BASE_X,parallel=2 /mnt/x" ]
}
