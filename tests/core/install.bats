#!/usr/bin/env bats
# libuploadfs as installed: header under <uploadfs/uploadfs.h>, a pkg-config file, and a
# program built against only the installed files.

load ../lib/common

setup() {
	start_server
}

teardown() {
	server_teardown
}

@test "a program builds against the installed header and pkg-config file and runs" {
	dest=$BATS_TEST_TMPDIR/root
	DESTDIR=$dest meson install -C "$UPLOADFS_BUILD" --no-rebuild --quiet >/dev/null
	pc=$(find "$dest" -name uploadfs.pc)
	[ -n "$pc" ]
	[ -f "$(find "$dest" -path '*/include/uploadfs/uploadfs.h')" ]
	cat >"$BATS_TEST_TMPDIR/prog.c" <<'C'
#include <uploadfs/uploadfs.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
	struct up_error err;
	up_client *c;
	if (up_client_new(NULL, &c, &err) < 0)
		return 1;
	struct up_upload u;
	if (up_upload_file(c, &(struct up_file_upload){.fd = -1, .mem = "hello\n", .bytes = 6,
						       .filename = "hello.txt", .purpose = "batch"},
			   &u, &err) < 0) {
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	printf("%s %s %s\n", up_version(), u.status, u.file.filename);
	up_upload_clear(&u);
	up_client_free(c);
	return 0;
}
C
	export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$dest
	libdir=$(dirname "$(find "$dest" -name 'libuploadfs.so.0' | head -n1)")
	# a sanitizer build of the library needs a program built the same way
	san=
	ldd "$libdir/libuploadfs.so.0" | grep -q libasan && san=-fsanitize=address,undefined
	cc $san -o "$BATS_TEST_TMPDIR/prog" "$BATS_TEST_TMPDIR/prog.c" $(pkg-config --cflags --libs uploadfs)
	OPENAI_BASE_URL=$BASE LD_LIBRARY_PATH=$libdir run "$BATS_TEST_TMPDIR/prog"
	[ "$status" = 0 ]
	[ "$output" = "0.1.0 completed hello.txt" ]
}
