#!/usr/bin/env bats
# Completed files change: edit, append and rename are a new upload under the name, then the
# delete of the old file (the API cannot modify or rename). The bytes come from the content
# cache (-o cache_size) or a download; where neither has them the call fails and nothing
# changes on the server.

load ../lib/mount

setup() {
	SRC=$BATS_TEST_TMPDIR/src
	mkdir -p "$SRC"
}

teardown() {
	fs_teardown
}

VIM=$(command -v vim || command -v vim.tiny || echo vim)

md5s() { printf '%s' "$1" | md5sum | cut -d' ' -f1; }
names() { curl -sS "$BASE/files?limit=10000" | jq -r '[.data[].filename] | sort | join(" ")'; }
ids() { curl -sS "$BASE/files?limit=10000" | jq -r '[.data[].id] | sort | join(" ")'; }
pending() { find "$SRV_DATA" -path '*uploads*' -name '*.json' -newer "$BATS_TEST_TMPDIR" 2>/dev/null | wc -l; }

@test "vim saves an edit of a completed file: one file, the new bytes" {
	fs_setup
	mount_fs
	printf 'alpha\nbeta\n' >"$MNT/notes.txt"
	(cd "$MNT" && "$VIM" -u NONE -i NONE -es -c '%s/beta/gamma/' -c 'wq' notes.txt)
	[ "$(names)" = notes.txt ]
	[ "$(remote_md5 notes.txt)" = "$(md5s $'alpha\ngamma\n')" ]
	[ "$(cat "$MNT/notes.txt")" = "$(printf 'alpha\ngamma')" ]
}

@test "sed -i edits a completed file in place: the edited bytes under the name, nothing else" {
	fs_setup
	mount_fs
	printf 'color=red\nsize=1\n' >"$MNT/conf.ini"
	old=$(remote_json conf.ini | jq -r .id)
	sed -i 's/red/blue/' "$MNT/conf.ini"
	[ "$(names)" = conf.ini ]
	[ "$(remote_md5 conf.ini)" = "$(md5s $'color=blue\nsize=1\n')" ]
	[ "$(curl -sS -o /dev/null -w '%{http_code}' "$BASE/files/$old")" = 404 ]
}

@test "git init, add, commit and a second commit inside the mount; the server's copy is a sound repository" {
	fs_setup
	mount_fs
	mkdir "$MNT/repo"
	cd "$MNT/repo"
	git init -q .
	git config user.email t@example.invalid
	git config user.name t
	echo one >a.txt
	git add a.txt
	git commit -qm one
	echo two >>a.txt
	git commit -qam two
	[ "$(git log --oneline | wc -l)" = 2 ]
	git fsck --strict 2>&1
	cd /
	# the same repository rebuilt from the server's files alone
	mkdir "$BATS_TEST_TMPDIR/clone"
	curl -sS "$BASE/files?limit=10000" | jq -r '.data[] | "\(.id) \(.filename)"' |
		while read -r id name; do
			mkdir -p "$BATS_TEST_TMPDIR/clone/$(dirname "$name")"
			curl -sS "$BASE/files/$id/content" -o "$BATS_TEST_TMPDIR/clone/$name"
		done
	cd "$BATS_TEST_TMPDIR/clone/repo"
	[ "$(git log --oneline | wc -l)" = 2 ]
	git fsck --strict
	[ "$(git show HEAD:a.txt)" = "$(printf 'one\ntwo')" ]
	# no name twice, no lock file left
	[ "$(curl -sS "$BASE/files?limit=10000" | jq -r '.data[].filename' | sort | uniq -d)" = "" ]
	! curl -sS "$BASE/files?limit=10000" | jq -r '.data[].filename' | grep -q '\.lock$'
}

@test ">> from two processes holding the file open: one upload of all their lines after the last close" {
	fs_setup --log-requests "$BATS_TEST_TMPDIR/req.log"
	mount_fs
	echo start >"$MNT/shared.log"
	python3 - "$MNT/shared.log" <<'PY'
import os, sys
p = sys.argv[1]
a = os.open(p, os.O_WRONLY | os.O_APPEND)
b = os.open(p, os.O_WRONLY | os.O_APPEND)
for i in range(50):
    os.write(a, b"a%d\n" % i)
    os.write(b, b"b%d\n" % i)
os.close(a)
os.close(b)
PY
	want=$( { echo start; for i in $(seq 0 49); do echo a$i; echo b$i; done; } | md5sum | cut -d' ' -f1)
	[ "$(names)" = shared.log ]
	[ "$(remote_md5 shared.log)" = "$want" ]
	# two uploads in all: the first file, and its one new version
	[ "$(grep -c '"path":"\\/v1\\/uploads"' "$BATS_TEST_TMPDIR/req.log")" = 2 ]
}

@test "an open for writing that writes nothing, and touch, change nothing on the server" {
	fs_setup --log-requests "$BATS_TEST_TMPDIR/req.log"
	mount_fs
	echo keep >"$MNT/k.txt"
	id=$(remote_json k.txt | jq -r .id)
	exec 7>>"$MNT/k.txt"
	exec 7>&-
	touch "$MNT/k.txt"
	python3 -c "import os,sys; os.close(os.open(sys.argv[1], os.O_RDWR))" "$MNT/k.txt"
	[ "$(remote_json k.txt | jq -r .id)" = "$id" ]
	[ "$(grep -c '"path":"\\/v1\\/uploads"' "$BATS_TEST_TMPDIR/req.log")" = 1 ]
	[ "$(xattr "$MNT/k.txt" user.upload.status)" = completed ]
}

@test "a completed file removed while open: its writes and truncates succeed and go nowhere" {
	# model check seed 407476: O_APPEND open of a completed file, unlink, then write: EBADF
	fs_setup
	mount_fs
	printf '0123456789' >"$MNT/gone.txt"
	printf 'abc' >"$MNT/gone2.txt"
	python3 - "$MNT" <<'PY'
import os, sys
mnt = sys.argv[1]
fd = os.open(mnt + "/gone.txt", os.O_WRONLY | os.O_APPEND)
os.unlink(mnt + "/gone.txt")
assert os.write(fd, b"more") == 4
assert os.fstat(fd).st_size == 14, os.fstat(fd).st_size
os.close(fd)
fd = os.open(mnt + "/gone2.txt", os.O_RDWR)
os.unlink(mnt + "/gone2.txt")
os.ftruncate(fd, 1)
assert os.fstat(fd).st_size == 1
os.close(fd)
PY
	[ "$(remote_count)" = 0 ]
	[ ! -e "$MNT/gone.txt" ]
}

@test "truncate -s of a completed file, by path and through a descriptor, uploads the new size" {
	fs_setup
	mount_fs
	printf '0123456789' >"$MNT/t.txt"
	truncate -s 4 "$MNT/t.txt"
	[ "$(remote_md5 t.txt)" = "$(md5s 0123)" ]
	python3 -c "import os,sys; os.truncate(sys.argv[1], 2)" "$MNT/t.txt"
	[ "$(remote_md5 t.txt)" = "$(md5s 01)" ]
	[ "$(names)" = t.txt ]
}

@test "mv of a completed file: uploaded under the new name, the old one deleted, xattrs kept" {
	fs_setup
	mount_fs
	echo data >"$MNT/a.jsonl"
	old=$(remote_json a.jsonl | jq -r .id)
	mv "$MNT/a.jsonl" "$MNT/b.jsonl"
	[ "$(names)" = b.jsonl ]
	[ "$(remote_md5 b.jsonl)" = "$(md5s $'data\n')" ]
	[ "$(curl -sS -o /dev/null -w '%{http_code}' "$BASE/files/$old")" = 404 ]
	[ ! -e "$MNT/a.jsonl" ]
	[ "$(xattr "$MNT/b.jsonl" user.upload.file_id)" = "$(remote_json b.jsonl | jq -r .id)" ]
	[ "$(xattr "$MNT/b.jsonl" user.upload.status)" = completed ]
}

@test "a new version keeps the file's purpose and MIME type (set before its first upload)" {
	fs_setup --log-requests "$BATS_TEST_TMPDIR/req.log"
	mount_fs
	exec 7>"$MNT/train.jsonl"
	setfattr -n user.purpose -v fine-tune "$MNT/train.jsonl"
	setfattr -n user.mime_type -v text/plain "$MNT/train.jsonl"
	echo '{"a":1}' >&7
	exec 7>&-
	echo '{"a":2}' >>"$MNT/train.jsonl"
	mv "$MNT/train.jsonl" "$MNT/train2.jsonl"
	[ "$(remote_json train2.jsonl | jq -r .purpose)" = fine-tune ]
	[ "$(xattr "$MNT/train2.jsonl" user.purpose)" = fine-tune ]
	[ "$(xattr "$MNT/train2.jsonl" user.mime_type)" = text/plain ]
	[ "$(grep '"path":"\\/v1\\/uploads"' "$BATS_TEST_TMPDIR/req.log" | wc -l)" = 3 ]
	[ "$(remote_md5 train2.jsonl)" = "$(md5s $'{"a":1}\n{"a":2}\n')" ]
}

@test "mv onto an existing completed file replaces it; cp -a over a completed file too" {
	fs_setup
	mount_fs
	echo one >"$MNT/one.txt"
	echo two >"$MNT/two.txt"
	two=$(remote_json two.txt | jq -r .id)
	mv "$MNT/one.txt" "$MNT/two.txt"
	[ "$(names)" = two.txt ]
	[ "$(remote_md5 two.txt)" = "$(md5s $'one\n')" ]
	[ "$(curl -sS -o /dev/null -w '%{http_code}' "$BASE/files/$two")" = 404 ]
	echo three >"$SRC/two.txt"
	cp -a "$SRC/two.txt" "$MNT/two.txt"
	[ "$(names)" = two.txt ]
	[ "$(remote_md5 two.txt)" = "$(md5s $'three\n')" ]
}

@test "mv of a file whose bytes are not cached downloads them (the purpose allows it)" {
	fs_setup --log-requests "$BATS_TEST_TMPDIR/req.log"
	mount_fs -o cache_size=0
	head -c 300000 /dev/urandom >"$SRC/r.bin"
	cp "$SRC/r.bin" "$MNT/r.bin"
	[ -z "$(ls "$CACHE/content")" ]
	mv "$MNT/r.bin" "$MNT/s.bin"
	[ "$(names)" = s.bin ]
	[ "$(remote_md5 s.bin)" = "$(md5_of "$SRC/r.bin")" ]
	grep -q '"path":"\\/v1\\/files\\/[^"]*\\/content"' "$BATS_TEST_TMPDIR/req.log"
}

@test "mv and append where the bytes are neither cached nor downloadable fail cleanly; nothing changes" {
	FS_ALLOW='cannot read|cannot rename|cannot copy'
	start_server # OpenAI's rule: no download of purpose assistants
	mount_fs -o cache_size=0
	echo secret >"$MNT/s.txt"
	id=$(remote_json s.txt | jq -r .id)
	run mv "$MNT/s.txt" "$MNT/t.txt"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Permission denied"* ]]
	run bash -c "echo more >>'$MNT/s.txt'"
	[ "$status" -ne 0 ]
	[ "$(names)" = s.txt ]
	[ "$(ids)" = "$id" ]
	[ -e "$MNT/s.txt" ] && [ ! -e "$MNT/t.txt" ]
	grep -q 'does not allow downloading' "$BATS_TEST_TMPDIR/fs.log"
}

@test "the same file cached: mv and append work without downloading, even where the API forbids it" {
	start_server --log-requests "$BATS_TEST_TMPDIR/req.log"
	mount_fs
	echo secret >"$MNT/s.txt"
	mv "$MNT/s.txt" "$MNT/t.txt"
	echo more >>"$MNT/t.txt"
	[ "$(names)" = t.txt ]
	[ "$(cat "$MNT/t.txt")" = "$(printf 'secret\nmore')" ]
	! grep -q '/content"' "$BATS_TEST_TMPDIR/req.log"
}

@test "the cache budget evicts the least recently used content; an evicted file still reads (download)" {
	fs_setup
	mount_fs -o cache_size=700K
	for f in a b c; do head -c 300000 /dev/urandom >"$SRC/$f"; cp "$SRC/$f" "$MNT/$f"; done
	# 900 KB written, 700 K allowed: the oldest (a) went
	[ ! -e "$CACHE/content/$(remote_json a | jq -r .id)" ]
	[ -e "$CACHE/content/$(remote_json c | jq -r .id)" ]
	[ "$(du -cb "$CACHE"/content/* | tail -1 | cut -f1)" -le 716800 ]
	cmp "$SRC/a" "$MNT/a"
	[ "$(ls "$CACHE/content" | wc -l)" -le 2 ]
	[ "$(ls "$MNT" | sort | tr '\n' ' ')" = "a b c " ]
}

@test "the cache survives a remount: a file cached before reads and renames without a download" {
	start_server --log-requests "$BATS_TEST_TMPDIR/req.log"
	mount_fs
	echo kept >"$MNT/k.txt"
	umount_fs
	mount_fs
	[ "$(cat "$MNT/k.txt")" = kept ]
	mv "$MNT/k.txt" "$MNT/l.txt"
	[ "$(names)" = l.txt ]
	! grep -q '/content"' "$BATS_TEST_TMPDIR/req.log"
}

@test "kill -9 during the upload of an edit: the old file stays until the new one completes at remount" {
	FS_ALLOW='.'
	ALLOW_LOG=$CUT_REQUEST_LOG
	fs_setup --latency-ms 300
	mount_fs -o part_size=1M,parallel=1
	head -c 3000000 /dev/urandom >"$SRC/big"
	cp "$SRC/big" "$MNT/big.bin"
	old=$(remote_json big.bin | jq -r .id)
	echo tail >>"$SRC/big"
	echo tail >>"$MNT/big.bin" &
	apid=$!
	for i in $(seq 100); do
		[ "$(xattr "$MNT/big.bin" user.upload.status)" = uploading ] && break
		sleep 0.05
	done
	sleep 0.4
	kill -9 "$FS_PID"
	wait "$FS_PID" 2>/dev/null || true
	FS_PID=
	wait "$apid" || true
	fusermount3 -u "$MNT"
	# the old file is still there, whole
	[ "$(remote_json big.bin | jq -r .id)" = "$old" ]
	mount_fs -o part_size=1M,parallel=1
	for i in $(seq 200); do
		[ "$(remote_json big.bin | jq -r .id)" != "$old" ] && [ "$(names)" = big.bin ] && break
		sleep 0.1
	done
	[ "$(names)" = big.bin ]
	[ "$(remote_md5 big.bin)" = "$(md5_of "$SRC/big")" ]
	cmp "$SRC/big" "$MNT/big.bin"
}

@test "kill -9 during a rename's upload: after the remount the file is under the new name only" {
	FS_ALLOW='.'
	ALLOW_LOG=$CUT_REQUEST_LOG
	fs_setup --latency-ms 300
	mount_fs -o part_size=1M,parallel=1
	# 10 parts: with one body sent at a time and another part awaiting its answer, the
	# new upload takes about 2 s, and the kill at 1 s falls in its middle
	head -c 10000000 /dev/urandom >"$SRC/big"
	cp "$SRC/big" "$MNT/a.bin"
	mv "$MNT/a.bin" "$MNT/b.bin" &
	mpid=$!
	sleep 1
	kill -9 "$FS_PID"
	wait "$FS_PID" 2>/dev/null || true
	FS_PID=
	wait "$mpid" || true
	fusermount3 -u "$MNT"
	[ "$(names)" = a.bin ]
	mount_fs -o part_size=1M,parallel=1
	for i in $(seq 200); do
		[ "$(names)" = b.bin ] && break
		sleep 0.1
	done
	[ "$(names)" = b.bin ]
	[ "$(remote_md5 b.bin)" = "$(md5_of "$SRC/big")" ]
}

@test "a shared writable mmap of a completed file: the mapped change is uploaded as the new version" {
	fs_setup
	mount_fs
	printf 'hello world\n' >"$MNT/m.txt"
	python3 - "$MNT/m.txt" <<'PY'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
mm = mmap.mmap(fd, 12, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
mm[0:5] = b"HELLO"
mm.flush()
mm.close()
os.close(fd)
PY
	[ "$(names)" = m.txt ]
	[ "$(remote_md5 m.txt)" = "$(md5s $'HELLO world\n')" ]
}

@test "a new version that fails: the writer's close fails, the old file stays whole" {
	FS_ALLOW='.'
	fs_setup
	mount_fs -o retries=0,timeout=2
	echo first >"$MNT/f.txt"
	id=$(remote_json f.txt | jq -r .id)
	port=${BASE##*:}
	stop_server
	# (bash ignores the close of a redirection: python says what close returned)
	run python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.write(fd, b"second\n")
try:
    os.close(fd)
    print("close 0")
except OSError as e:
    print("close", e.errno)' "$MNT/f.txt"
	[ "$output" != "close 0" ]
	[ "$(xattr "$MNT/f.txt" user.upload.status)" = failed ]
	port=${port%/v1}
	"$SERVER" --listen "127.0.0.1:$port" --data "$SRV_DATA" --allow-downloads \
		>"$BATS_TEST_TMPDIR/srv2.out" 2>>"$BATS_TEST_TMPDIR/srv.err" &
	SRV_PID=$!
	for i in $(seq 100); do grep -q listening "$BATS_TEST_TMPDIR/srv2.out" && break; sleep 0.05; done
	[ "$(ids)" = "$id" ]
	[ "$(remote_md5 f.txt)" = "$(md5s $'first\n')" ]
	# the server back (same address): the failed version still shows, as for any failed
	# file; further appends are EIO, and writing the file whole (O_TRUNC) replaces it
	[ "$(cat "$MNT/f.txt")" = "$(printf 'first\nsecond')" ]
	run bash -c "echo third >>'$MNT/f.txt'"
	[ "$status" -ne 0 ]
	printf 'first\nthird\n' >"$MNT/f.txt"
	[ "$(names)" = f.txt ]
	[ "$(remote_md5 f.txt)" = "$(md5s $'first\nthird\n')" ]
	[ "$(curl -sS -o /dev/null -w '%{http_code}' "$BASE/files/$id")" = 404 ]
	[ "$(xattr "$MNT/f.txt" user.upload.status)" = completed ]
}

@test "mv of a completed file inside the mount prints nothing (no copy, no xattr errors)" {
	fs_setup
	mount_fs
	mkdir "$MNT/sub"
	echo quiet >"$MNT/q.txt"
	run mv "$MNT/q.txt" "$MNT/sub/q.txt"
	[ "$status" = 0 ]
	[ -z "$output" ]
	[ "$(names)" = sub/q.txt ]
}

@test "a reader holding a file open across an append and a rename reads the newest bytes" {
	fs_setup
	mount_fs
	echo before >"$MNT/r.txt"
	exec 7<"$MNT/r.txt"
	[ "$(head -c 6 <&7)" = before ]
	echo more >>"$MNT/r.txt"
	mv "$MNT/r.txt" "$MNT/r2.txt" # the same file (inode), a third file id
	echo 1 >/proc/sys/vm/drop_caches
	got=$(python3 -c 'import os; print(os.pread(7, 100, 0).decode(), end="")')
	exec 7<&-
	[ "$got" = "$(printf 'before\nmore\n')" ]
}

@test "listings during renames of completed files never show or delete the wrong file" {
	fs_setup --latency-ms 150
	mount_fs -o part_size=1M
	head -c 1500000 /dev/urandom >"$SRC/x"
	cp "$SRC/x" "$MNT/f0"
	( for i in $(seq 200); do ls -l "$MNT" >/dev/null 2>&1; sleep 0.05; done ) &
	lpid=$!
	for i in 1 2 3 4 5 6; do
		mv "$MNT/f$((i - 1))" "$MNT/f$i"
	done
	kill "$lpid" 2>/dev/null || true
	wait "$lpid" 2>/dev/null || true
	[ "$(names)" = f6 ]
	[ "$(remote_md5 f6)" = "$(md5_of "$SRC/x")" ]
	sleep 2.2 # a fresh listing
	[ "$(ls "$MNT" | tr '\n' ' ')" = "f6 " ]
	cmp "$SRC/x" "$MNT/f6"
}

@test ">> from two processes at once (a shared log): one new version with every line" {
	fs_setup --log-requests "$BATS_TEST_TMPDIR/req.log"
	mount_fs
	echo start >"$MNT/app.log"
	writer() { # NAME: 20 lines, slowly, through one descriptor
		exec 8>>"$MNT/app.log"
		for i in $(seq 20); do echo "$1 $i" >&8; sleep 0.02; done
		exec 8>&-
	}
	writer a &
	pa=$!
	writer b &
	pb=$!
	wait "$pa" "$pb"
	[ "$(names)" = app.log ]
	[ "$(grep -c '"path":"\\/v1\\/uploads"' "$BATS_TEST_TMPDIR/req.log")" = 2 ]
	got=$(curl -sS "$BASE/files/$(remote_json app.log | jq -r .id)/content")
	[ "$(head -1 <<<"$got")" = start ]
	[ "$(grep -c '^a ' <<<"$got")" = 20 ]
	[ "$(grep -c '^b ' <<<"$got")" = 20 ]
	[ "$(wc -l <<<"$got")" = 41 ]
}

@test "mv of a directory whose files are neither cached nor downloadable fails; nothing changes" {
	FS_ALLOW='cannot rename'
	start_server
	mount_fs -o cache_size=0
	mkdir "$MNT/d"
	echo one >"$MNT/d/one.txt"
	echo two >"$MNT/d/two.txt"
	before=$(ids)
	run mv "$MNT/d" "$MNT/e"
	[ "$status" -ne 0 ]
	[ "$(names)" = "d/one.txt d/two.txt" ]
	[ "$(ids)" = "$before" ]
	[ -e "$MNT/d/one.txt" ] && [ ! -e "$MNT/e" ]
}

@test "mv of a directory whose files are not cached but downloadable: every file under the new path" {
	fs_setup
	mount_fs -o cache_size=0
	mkdir -p "$MNT/d/s"
	echo one >"$MNT/d/one.txt"
	echo two >"$MNT/d/s/two.txt"
	mv "$MNT/d" "$MNT/e"
	[ "$(names)" = "e/one.txt e/s/two.txt" ]
	[ "$(remote_md5 e/s/two.txt)" = "$(md5s $'two\n')" ]
	[ "$(cat "$MNT/e/one.txt")" = one ]
}

@test "mv of a directory fails half-way (second file not obtainable): the copies made are deleted" {
	FS_ALLOW='cannot rename'
	start_server --log-requests "$BATS_TEST_TMPDIR/req.log"
	mount_fs -o cache_size=1 # the newest content only
	mkdir "$MNT/d"
	touch "$MNT/d/one.txt" # first in the directory, written last: the newest in the cache
	echo two >"$MNT/d/two.txt"
	echo one >"$MNT/d/one.txt" # two.txt's bytes leave the cache
	before=$(ids)
	run mv "$MNT/d" "$MNT/e"
	[ "$status" -ne 0 ]
	[ "$(names)" = "d/one.txt d/two.txt" ]
	[ "$(ids)" = "$before" ]
	# e/one.txt had been uploaded, and was deleted
	[ "$(grep '"method":"DELETE"' "$BATS_TEST_TMPDIR/req.log" | grep -c '"status":200')" = 1 ]
	[ -e "$MNT/d/two.txt" ] && [ ! -e "$MNT/e" ]
}

@test "the cache gives way when the disk fills: a new file's spool comes before cached content" {
	fs_setup
	SMALL=$BATS_TEST_TMPDIR/small
	mkdir -p "$SMALL"
	mount -t tmpfs -o size=16m tmpfs "$SMALL"
	CACHE=$SMALL/cache
	mount_fs -o cache_size=1G
	for f in a b c; do head -c 3000000 /dev/urandom >"$SRC/$f"; cp "$SRC/$f" "$MNT/$f"; done
	[ "$(ls "$CACHE/content" | wc -l)" = 3 ]
	# something else takes the disk's free space: the cache's budget shrinks
	avail=$(df -B1 --output=avail "$SMALL" | tail -1)
	head -c $((avail - 300000)) /dev/zero >"$SMALL/filler"
	exec 7>"$MNT/new.txt" # its spool is made: the cache makes room first
	n=$(ls "$CACHE/content" | wc -l)
	echo new >&7
	exec 7>&-
	rm -f "$SMALL/filler"
	umount_fs
	umount "$SMALL"
	[ "$n" -lt 3 ]
}
