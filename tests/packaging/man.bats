#!/usr/bin/env bats
# The man pages render, say what the contract says, and meson install puts them in place.

load ../lib/common

MAN=$BATS_TEST_DIRNAME/../../packaging/man

render() { MANWIDTH=100 man -l "$MAN/$1" 2>"$BATS_TEST_TMPDIR/warn"; }

@test "uploadfs(1) renders and documents every option and xattr of the contract" {
	out=$(render uploadfs.1)
	[ ! -s "$BATS_TEST_TMPDIR/warn" ]
	for word in api_base= api_key_file= purpose= part_size= parallel= cache_dir= retries= \
		timeout= max_file_size= async allow_other user.purpose user.mime_type \
		user.upload.status user.upload.file_id user.upload.md5 user.upload.bytes_sent \
		user.upload.error PORTKEY_API_KEY OPENAI_BASE_URL; do
		grep -q -- "$word" <<<"$out" || { echo "uploadfs(1) lacks $word" >&2; return 1; }
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

@test "meson install puts the three pages in place" {
	DESTDIR=$BATS_TEST_TMPDIR/root meson install -C "$UPLOADFS_BUILD" --no-rebuild --quiet >/dev/null
	[ -n "$(find "$BATS_TEST_TMPDIR/root" -path '*/man1/uploadfs.1*')" ]
	[ -n "$(find "$BATS_TEST_TMPDIR/root" -path '*/man1/uploadfs-server.1*')" ]
	[ -n "$(find "$BATS_TEST_TMPDIR/root" -path '*/man3/libuploadfs.3*')" ]
}
