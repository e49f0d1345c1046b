#!/usr/bin/env bats
# valgrind over one server session and one mount session: no memory errors, no leak.
# (On the release build only: valgrind cannot run the ASan build.)

load ../lib/mount

VG="valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99"

teardown() {
	fs_teardown
}

@test "uploadfs-server under valgrind: a whole session, no error, no leak" {
	SRV_DATA=$BATS_TEST_TMPDIR/data
	$VG --log-file="$BATS_TEST_TMPDIR/vg-server.log" "$SERVER" --listen 127.0.0.1:0 \
		--data "$SRV_DATA" >"$BATS_TEST_TMPDIR/srv.out" 2>"$BATS_TEST_TMPDIR/srv.err" &
	SRV_PID=$!
	for i in $(seq 200); do
		BASE=$(sed -n 's/^listening on //p' "$BATS_TEST_TMPDIR/srv.out")
		[ -n "$BASE" ] && break
		sleep 0.1
	done
	head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/a"
	fid=$(upload_file "$BATS_TEST_TMPDIR/a" batch a.bin)
	curl -sS "$BASE/files/$fid/content" | cmp - "$BATS_TEST_TMPDIR/a"
	api GET /files
	api POST /uploads -H "$J" -d '{"bytes":"bad"}'
	up=$(new_upload 10)
	api POST "/uploads/$up/cancel"
	api POST /files -F purpose=batch -F "file=@$BATS_TEST_TMPDIR/a"
	api DELETE "/files/$fid"
	kill "$SRV_PID"
	wait "$SRV_PID"
	rc=$?
	SRV_PID=
	cat "$BATS_TEST_TMPDIR/vg-server.log" >&2
	[ "$rc" = 0 ]
}

@test "uploadfs under valgrind: mount, cp, ls, cat, rm, unmount; no error, no leak" {
	fs_setup
	MNT=$BATS_TEST_TMPDIR/mnt
	CACHE=$BATS_TEST_TMPDIR/cache
	mkdir -p "$MNT"
	$VG --log-file="$BATS_TEST_TMPDIR/vg-fs.log" "$UPLOADFS" -f \
		-o "api_base=$BASE,cache_dir=$CACHE,part_size=1M" "$MNT" >>"$BATS_TEST_TMPDIR/fs.log" 2>&1 &
	FS_PID=$!
	for i in $(seq 300); do
		grep -q " $MNT fuse.uploadfs" /proc/mounts && break
		sleep 0.1
	done
	head -c 2500000 /dev/urandom >"$BATS_TEST_TMPDIR/x"
	cp "$BATS_TEST_TMPDIR/x" "$MNT/x"
	mkdir "$MNT/d"
	echo hi >"$MNT/d/y.txt"
	setfattr -n user.purpose -v batch "$MNT/d" || true
	ls -lR "$MNT" >/dev/null
	cat "$MNT/x" | cmp - "$BATS_TEST_TMPDIR/x"
	getfattr -d -m - "$MNT/x" >/dev/null
	rm "$MNT/x"
	fusermount3 -u "$MNT"
	wait "$FS_PID"
	rc=$?
	FS_PID=
	cat "$BATS_TEST_TMPDIR/vg-fs.log" >&2
	[ "$rc" = 0 ]
}
