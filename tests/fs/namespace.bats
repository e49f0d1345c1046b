#!/usr/bin/env bats
# The mount as a directory: ls of the remote files, nested names, duplicates, cat, rm,
# mkdir/rmdir, rsync -a twice, cp -a and tar -x.

load ../lib/mount

setup() {
	fs_setup
}

teardown() {
	fs_teardown
}

# api_put NAME PURPOSE CONTENT: a file put on the server directly, not through the mount.
api_put() {
	printf '%s' "$3" >"$BATS_TEST_TMPDIR/api_put"
	curl -sS -o /dev/null "$BASE/files" -F "purpose=$2" -F "file=@$BATS_TEST_TMPDIR/api_put;filename=$1"
}

@test "ls -l lists remote files; names with / are directories" {
	api_put top.txt batch hello
	api_put a/b/deep.jsonl batch '{"x":1}'
	api_put a/side.txt vision side
	mount_fs
	run ls "$MNT"
	[ "$output" = "$(printf 'a\ntop.txt')" ]
	run ls "$MNT/a"
	[ "$output" = "$(printf 'b\nside.txt')" ]
	[ -d "$MNT/a/b" ]
	[ "$(stat -c %s "$MNT/a/b/deep.jsonl")" = 7 ]
	[ "$(cat "$MNT/a/b/deep.jsonl")" = '{"x":1}' ]
	ls -l "$MNT" "$MNT/a" "$MNT/a/b" >/dev/null
}

@test "ls -l (READDIRPLUS) gives each name its attributes; the kernel's references stay right" {
	python3 "$BATS_TEST_DIRNAME/../lib/populate.py" "$BASE" 3000
	mount_fs
	[ "$(ls -l "$MNT" | grep -c '^-')" = 2700 ]
	# sizes as listed: file i holds the digits of i
	[ "$(stat -c %s "$MNT/f1234.txt")" = 4 ]
	[ "$(ls -l "$MNT/fdir" | awk '$NF == "f1230.txt" {print $5}')" = 4 ]
	# the kernel forgets what READDIRPLUS made it look up, then lists again: every count
	# that reached the daemon must match (an extra forget would free a node in use)
	sync
	echo 3 >/proc/sys/vm/drop_caches
	[ "$(ls -l "$MNT" | grep -c '^-')" = 2700 ]
	# names that change between the listing's snapshot and the read are listed without
	# attributes, and stat finds them as they are
	exec 7<"$MNT"
	rm "$MNT/f1.txt"
	mv "$MNT/f2.txt" "$MNT/moved.txt"
	exec 7<&-
	ls -l "$MNT" >/dev/null
	[ ! -e "$MNT/f1.txt" ]
	[ "$(cat "$MNT/moved.txt")" = 2 ]
	echo 3 >/proc/sys/vm/drop_caches
	[ "$(find "$MNT" -type f | wc -l)" = 2999 ]
}

@test "two remote files with one name: the newest plain, the other as NAME~FILEID" {
	api_put dup.txt batch old
	sleep 1.1
	api_put dup.txt batch new
	mount_fs
	old=$(curl -sS "$BASE/files?order=asc" | jq -r '.data[0].id')
	run ls "$MNT"
	[ "$output" = "$(printf 'dup.txt\ndup.txt~%s' "$old")" ]
	[ "$(cat "$MNT/dup.txt")" = new ]
	[ "$(cat "$MNT/dup.txt~$old")" = old ]
}

@test "files uploaded elsewhere appear within list_interval; files deleted elsewhere go at the sweep" {
	mount_fs -o list_interval=1,sweep_interval=3
	[ -z "$(ls "$MNT")" ]
	api_put later.txt batch x
	api_put gone.txt batch y
	sleep 1.5
	[ "$(ls "$MNT" | tr '\n' ' ')" = "gone.txt later.txt " ]
	gid=$(remote_json gone.txt | jq -r .id)
	chmod 600 "$MNT/gone.txt" # a record in the state store
	sleep 0.3
	[ "$(sqlite3 "$CACHE/state.db" "SELECT count(*) FROM files WHERE id = '$gid'")" = 1 ]
	curl -sS -o /dev/null -X DELETE "$BASE/files/$gid"
	for i in $(seq 50); do [ -e "$MNT/gone.txt" ] || break; sleep 0.1; done
	[ ! -e "$MNT/gone.txt" ]
	[ "$(ls "$MNT")" = later.txt ]
	# and the store forgot it
	[ "$(sqlite3 "$CACHE/state.db" "SELECT count(*) FROM files WHERE id = '$gid'")" = 0 ]
}

@test "cat downloads a completed file (cached); cat of a forbidden purpose is EACCES" {
	FS_ALLOW='cannot read secret.txt'
	umount_fs 2>/dev/null
	stop_server
	start_server
	api_put open.txt batch "batch content"
	api_put secret.txt assistants "assistant content"
	mount_fs
	[ "$(cat "$MNT/open.txt")" = "batch content" ]
	[ -f "$CACHE/content/$(remote_json open.txt | jq -r .id)" ]
	run cat "$MNT/secret.txt"
	[ "$status" != 0 ]
	[[ "$output" == *"Permission denied"* ]]
	grep -q 'cannot read secret.txt.*does not allow downloading' "$BATS_TEST_TMPDIR/fs.log"
	# reading a file still being written comes from the spool
	exec 7>"$MNT/pending.txt"
	echo "not yet sent" >&7
	[ "$(cat "$MNT/pending.txt")" = "not yet sent" ]
	exec 7>&-
}

@test "rm deletes the remote file" {
	api_put del.txt batch x
	mount_fs
	rm "$MNT/del.txt"
	[ "$(remote_count)" = 0 ]
	[ ! -e "$MNT/del.txt" ]
	run rm "$MNT/never"
	[ "$status" != 0 ]
}

@test "rm of a file still uploading cancels the upload" {
	FS_ALLOW='upload of .* failed|part [0-9]+'
	umount_fs 2>/dev/null
	stop_server
	start_server --allow-downloads --latency-ms 300
	mount_fs -o part_size=1M,parallel=1
	head -c 8000000 /dev/urandom >"$BATS_TEST_TMPDIR/big"
	cp "$BATS_TEST_TMPDIR/big" "$MNT/big" 2>"$BATS_TEST_TMPDIR/cp.err" &
	cpid=$!
	for i in $(seq 100); do
		[ "$(xattr "$MNT/big" user.upload.status)" = uploading ] && break
		sleep 0.05
	done
	rm "$MNT/big"
	wait "$cpid" || true
	sleep 0.5
	[ "$(remote_count)" = 0 ]
	stop_server
	# the server recorded the upload as cancelled
	grep -l '"status":"cancelled"' "$SRV_DATA"/uploads/*.json
}

@test "mkdir and rmdir; rmdir of a directory with files is ENOTEMPTY" {
	mount_fs
	mkdir "$MNT/d"
	mkdir -p "$MNT/d/e/f"
	[ -d "$MNT/d/e/f" ]
	echo x >"$MNT/d/e/file.txt"
	[ "$(remote_json d/e/file.txt | jq -r .bytes)" = 2 ]
	run rmdir "$MNT/d/e"
	[[ "$output" == *"not empty"* ]]
	rmdir "$MNT/d/e/f"
	[ ! -e "$MNT/d/e/f" ]
	run mkdir "$MNT/d"
	[[ "$output" == *"exists"* ]]
	# empty directories of the mount survive a remount
	mkdir "$MNT/keep"
	umount_fs
	mount_fs
	[ -d "$MNT/keep" ]
}

@test "a temporary renamed just after its close goes up, whichever of rename and release the mount sees first" {
	# rsync's close returns before the kernel's release of the file reaches the mount, so
	# its rename can come first or land in the middle of that release
	mount_fs
	python3 - "$MNT" <<'PY'
import ctypes, os, sys
ctypes.CDLL(None).prctl(15, b"rsync", 0, 0, 0)  # PR_SET_NAME: temporaries are rsync's
d = sys.argv[1]
for i in range(150):
    tmp = os.path.join(d, ".t%d.bin.Ab12Cd" % i)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"%d\n" % i)
    os.close(fd)
    os.rename(tmp, os.path.join(d, "t%d.bin" % i))
PY
	# a rename that came first leaves the upload to that release: wait for it, then none
	# may be left pending
	for t in $(seq 100); do
		[ "$(remote_count)" = 150 ] && break
		sleep 0.1
	done
	for i in $(seq 0 149); do
		[ "$(xattr "$MNT/t$i.bin" user.upload.status)" = completed ] || { echo "t$i.bin" >&2; false; }
	done
	[ "$(remote_count)" = 150 ]
}

@test "rsync -a: final names only, each byte once, and a second run uploads nothing" {
	mkdir -p "$BATS_TEST_TMPDIR/src/sub"
	for i in 1 2 3; do head -c $((100000 * i)) /dev/urandom >"$BATS_TEST_TMPDIR/src/f$i.bin"; done
	head -c 3000000 /dev/urandom >"$BATS_TEST_TMPDIR/src/sub/big.bin"
	echo small >"$BATS_TEST_TMPDIR/src/sub/s.txt"
	start_log=$BATS_TEST_TMPDIR/req.log
	stop_server
	start_server --allow-downloads --log-requests "$start_log"
	mount_fs -o part_size=1M
	rsync -a "$BATS_TEST_TMPDIR/src/" "$MNT/"
	names=$(curl -sS "$BASE/files" | jq -r '.data[].filename' | sort | tr '\n' ' ')
	[ "$names" = "f1.bin f2.bin f3.bin sub/big.bin sub/s.txt " ]
	for f in f1.bin f2.bin f3.bin sub/big.bin sub/s.txt; do
		[ "$(remote_md5 "$f")" = "$(md5_of "$BATS_TEST_TMPDIR/src/$f")" ]
	done
	# each byte once: one upload per file
	[ "$(grep -c '"path":"\\/v1\\/uploads"' "$start_log")" = 5 ]
	# sizes and mtimes match, so the second run transfers nothing
	run rsync -a --stats "$BATS_TEST_TMPDIR/src/" "$MNT/"
	[ "$status" = 0 ]
	[[ "$output" == *"Number of regular files transferred: 0"* ]]
	[ "$(grep -c '"path":"\\/v1\\/uploads"' "$start_log")" = 5 ]
	# and after a remount too (the state store keeps mode and mtime)
	umount_fs
	mount_fs -o part_size=1M
	run rsync -a --stats "$BATS_TEST_TMPDIR/src/" "$MNT/"
	[[ "$output" == *"Number of regular files transferred: 0"* ]]
	[ "$(stat -c %a "$MNT/f1.bin")" = "$(stat -c %a "$BATS_TEST_TMPDIR/src/f1.bin")" ]
	# a changed file is uploaded again and replaces the old one
	echo changed >"$BATS_TEST_TMPDIR/src/sub/s.txt"
	rsync -a "$BATS_TEST_TMPDIR/src/" "$MNT/"
	[ "$(remote_md5 sub/s.txt)" = "$(md5_of "$BATS_TEST_TMPDIR/src/sub/s.txt")" ]
	[ "$(remote_count)" = 5 ]
}

@test "a failed upload makes rsync fail" {
	FS_ALLOW='upload of .* failed|retry'
	stop_server
	start_server --fail-first 1000 --fail-kind 500
	mount_fs -o retries=1
	mkdir -p "$BATS_TEST_TMPDIR/src"
	echo data >"$BATS_TEST_TMPDIR/src/a.txt"
	run rsync -a "$BATS_TEST_TMPDIR/src/" "$MNT/"
	[ "$status" != 0 ]
}

@test "cp -a keeps modes and times" {
	mount_fs
	mkdir -p "$BATS_TEST_TMPDIR/tree/x"
	echo a >"$BATS_TEST_TMPDIR/tree/x/a.txt"
	chmod 640 "$BATS_TEST_TMPDIR/tree/x/a.txt"
	touch -d '2020-01-02 03:04:05' "$BATS_TEST_TMPDIR/tree/x/a.txt"
	cp -a "$BATS_TEST_TMPDIR/tree" "$MNT/"
	[ "$(stat -c '%a %Y' "$MNT/tree/x/a.txt")" = "640 $(date -d '2020-01-02 03:04:05' +%s)" ]
	[ "$(remote_md5 tree/x/a.txt)" = "$(echo a | md5sum | cut -d' ' -f1)" ]
	# atime is not kept (as noatime): it reads as mtime, and touch -a changes nothing
	[ "$(stat -c %X "$MNT/tree/x/a.txt")" = "$(stat -c %Y "$MNT/tree/x/a.txt")" ]
	touch -a -d '2021-05-06 07:08:09' "$MNT/tree/x/a.txt"
	[ "$(stat -c '%X %Y' "$MNT/tree/x/a.txt")" = "$(date -d '2020-01-02 03:04:05' +%s) $(date -d '2020-01-02 03:04:05' +%s)" ]
}

@test "tar -x into the mount" {
	mount_fs
	mkdir -p "$BATS_TEST_TMPDIR/t/d"
	head -c 1500000 /dev/urandom >"$BATS_TEST_TMPDIR/t/d/blob"
	echo text >"$BATS_TEST_TMPDIR/t/note.txt"
	tar -C "$BATS_TEST_TMPDIR/t" -cf "$BATS_TEST_TMPDIR/t.tar" .
	tar -C "$MNT" -xf "$BATS_TEST_TMPDIR/t.tar"
	[ "$(remote_md5 d/blob)" = "$(md5_of "$BATS_TEST_TMPDIR/t/d/blob")" ]
	[ "$(remote_md5 note.txt)" = "$(md5_of "$BATS_TEST_TMPDIR/t/note.txt")" ]
}

@test "stat, and a completed file cannot be renamed by the API (mv copies)" {
	FS_ALLOW='cannot rename'
	mount_fs
	echo x >"$MNT/s.txt"
	run stat -c '%F %s %a' "$MNT/s.txt"
	[ "$output" = "regular file 2 644" ]
	run mv "$MNT/s.txt" "$MNT/t.txt"
	# mv falls back to copy and delete (EXDEV): the content moves under the new name
	[ "$status" = 0 ]
	[ "$(remote_json t.txt | jq -r .bytes)" = 2 ]
	[ "$(remote_json s.txt)" = null ]
}
