#!/usr/bin/env bats
# One life for every file: each case here lost a file, or its error, before the upload's
# state had one owner (core/writer.c) and the close rule one place (fs/lifecycle.c).

load ../lib/mount

setup() {
	# 3.5 MiB: not a multiple of the 1 MiB parts used below
	head -c 3670016 /dev/urandom >"$BATS_TEST_TMPDIR/src"
}

teardown() {
	fs_teardown
}

wait_remote() { # NAME [MD5]: until the server lists it (with that content)
	local i
	for i in $(seq 300); do
		if [ "$(remote_json "$1")" != null ]; then
			[ -z "${2:-}" ] || [ "$(remote_md5 "$1")" = "$2" ] && return 0
		fi
		sleep 0.1
	done
	echo "$1 never reached the server" >&2
	return 1
}

# kill9: the daemon dies; its mount is cleaned up
kill9() {
	kill -9 "$FS_PID"
	wait "$FS_PID" 2>/dev/null || true
	FS_PID=
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
}

no_pending_on_server() { # [N]: at most N sessions left pending (0)
	local n
	n=$(grep -l '"status":"pending"' "$SRV_DATA"/uploads/*.json 2>/dev/null | wc -l)
	[ "$n" -le "${1:-0}" ] || { echo "$n sessions left pending" >&2; return 1; }
}

@test "-o async: a crash right after close, before the session exists, loses nothing" {
	FS_ALLOW='.'
	ALLOW_LOG=$CUT_REQUEST_LOG
	fs_setup --latency-ms 400
	mount_fs -o part_size=1M,size_hint=off,async
	cp "$BATS_TEST_TMPDIR/src" "$MNT/a.bin" # returns at once: the create takes 400 ms
	kill9
	[ -n "$(ls "$CACHE/journal")" ]
	mount_fs -o part_size=1M,size_hint=off
	wait_remote a.bin "$(md5_of "$BATS_TEST_TMPDIR/src")"
	umount_fs
	[ -z "$(ls "$CACHE/journal")" ]
	[ -z "$(ls "$CACHE/spool")" ]
	# the create in flight at the kill may have made a session nobody learnt the id of:
	# the API cannot list sessions, so it waits for its expiry (RELIABILITY.md)
	no_pending_on_server 1
}

@test "a crash while the parts of a closed file go up: resumed whatever its size" {
	FS_ALLOW='.'
	ALLOW_LOG=$CUT_REQUEST_LOG
	fs_setup --latency-ms 300
	mount_fs -o part_size=1M,parallel=1,size_hint=off,async
	cp "$BATS_TEST_TMPDIR/src" "$MNT/b.bin"
	for i in $(seq 100); do
		[ "$(xattr "$MNT/b.bin" user.upload.bytes_sent)" -ge 1048576 ] && break
		sleep 0.05
	done
	kill9
	mount_fs -o part_size=1M,parallel=1,size_hint=off
	wait_remote b.bin "$(md5_of "$BATS_TEST_TMPDIR/src")"
	! grep -q 'a part holds at most' "$BATS_TEST_TMPDIR/fs.log"
	umount_fs
	no_pending_on_server
}

@test "a crashed replacement resumes: the new bytes win, the old file goes after" {
	FS_ALLOW='.'
	ALLOW_LOG=$CUT_REQUEST_LOG
	fs_setup --latency-ms 300
	mount_fs -o part_size=1M,parallel=1,size_hint=off
	echo old >"$MNT/r.txt"
	old=$(remote_json r.txt | jq -r .id)
	cp "$BATS_TEST_TMPDIR/src" "$MNT/r.txt" 2>/dev/null &
	cpid=$!
	for i in $(seq 100); do
		[ "$(xattr "$MNT/r.txt" user.upload.bytes_sent)" -ge 1048576 ] && break
		sleep 0.05
	done
	kill9
	wait "$cpid" || true
	# the old file stays until the new one is complete
	[ "$(curl -sS "$BASE/files/$old" | jq -r .id)" = "$old" ]
	mount_fs -o part_size=1M,parallel=1,size_hint=off
	wait_remote r.txt "$(md5_of "$BATS_TEST_TMPDIR/src")"
	for i in $(seq 50); do
		[ "$(curl -sS "$BASE/files/$old" | jq -r .error.code)" != null ] && break
		sleep 0.1
	done
	[ "$(curl -sS "$BASE/files/$old" | jq -r .id)" != "$old" ]
	[ "$(remote_count)" = 1 ]
	! grep -q 'name is taken' "$BATS_TEST_TMPDIR/fs.log"
	umount_fs
	[ -z "$(ls "$CACHE/journal")" ]
	no_pending_on_server
	# the next mount has nothing to say about it
	: >"$BATS_TEST_TMPDIR/fs.log"
	mount_fs
	umount_fs
	! grep -qE 'error|warning' "$BATS_TEST_TMPDIR/fs.log"
}

@test "-o async on a Files-only server: a crash after close loses nothing" {
	FS_ALLOW='.'
	ALLOW_LOG=$CUT_REQUEST_LOG
	fs_setup --no-uploads --latency-ms 400
	mount_fs -o async
	printf 'tiny\n' >"$MNT/f.txt"
	kill9
	mount_fs
	wait_remote f.txt "$(printf 'tiny\n' | md5sum | cut -d' ' -f1)"
}

@test "reading the status during an early upload does not decide whether it completes" {
	fs_setup
	mount_fs -o part_size=1M
	python3 - "$MNT/e.bin" "$BATS_TEST_TMPDIR/src" "$BASE" <<'PY'
import json, os, subprocess, sys, urllib.request
path, src, base = sys.argv[1:4]
data = open(src, "rb").read()
w = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.ftruncate(w, len(data))                  # the size is announced: an early upload
r = os.open(path, os.O_RDONLY)              # a second, read-only descriptor
os.write(w, data[:1 << 20])
subprocess.run(["getfattr", "-n", "user.upload.status", path], check=True,
               capture_output=True)         # someone looks at the status
os.write(w, data[1 << 20:])
os.close(w)                                 # the last writer: the upload completes here
files = json.load(urllib.request.urlopen(base + "/files"))["data"]
assert [f["filename"] for f in files] == ["e.bin"], files
os.close(r)
PY
	[ "$(remote_md5 e.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/src")" ]
}

@test "names are the user's: dotfiles shaped like rsync's temporaries go up under their names" {
	fs_setup
	mount_fs -o part_size=1M
	mkdir "$BATS_TEST_TMPDIR/dots"
	for f in .env.sample .bashrc.backup .config.jsonld; do
		echo "$f" >"$BATS_TEST_TMPDIR/dots/$f"
		cp "$BATS_TEST_TMPDIR/dots/$f" "$MNT/$f"
		[ "$(remote_md5 "$f")" = "$(md5_of "$BATS_TEST_TMPDIR/dots/$f")" ]
	done
	mkdir "$MNT/r"
	rsync -a "$BATS_TEST_TMPDIR/dots/" "$MNT/r/"
	for f in .env.sample .bashrc.backup .config.jsonld; do
		[ "$(remote_md5 "r/$f")" = "$(md5_of "$BATS_TEST_TMPDIR/dots/$f")" ]
	done
	# rsync's own temporaries never reach the server
	[ "$(remote_count)" = 6 ]
}

@test "mmap, close the descriptor, then write through the map: the mapped bytes go up" {
	fs_setup
	mount_fs -o part_size=1M
	python3 - "$MNT/m.bin" "$BATS_TEST_TMPDIR/src" <<'PY'
import ctypes, ctypes.util, os, sys
# libc's mmap, not Python's module: that one keeps a dup of the descriptor
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
libc.msync.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
path, src = sys.argv[1:3]
data = open(src, "rb").read()
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
os.ftruncate(fd, len(data))
addr = libc.mmap(None, len(data), 3, 1, fd, 0)  # PROT_READ|PROT_WRITE, MAP_SHARED
assert addr not in (None, ctypes.c_void_p(-1).value), "mmap failed"
os.close(fd)                 # legal: the mapping keeps the file
ctypes.memmove(addr, data, len(data))
assert libc.msync(ctypes.c_void_p(addr), len(data), 4) == 0, ctypes.get_errno()  # MS_SYNC
assert libc.munmap(ctypes.c_void_p(addr), len(data)) == 0, ctypes.get_errno()
PY
	wait_remote m.bin
	[ "$(remote_md5 m.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/src")" ]
	[ "$(xattr "$MNT/m.bin" user.upload.status)" = completed ]
}

@test "rename while the close completes: the file ends under its new name" {
	fs_setup --latency-ms 400
	mount_fs -o part_size=1M
	echo slow >"$BATS_TEST_TMPDIR/small"
	cp "$BATS_TEST_TMPDIR/small" "$MNT/old.txt" &
	cpid=$!
	sleep 0.6 # create and part answered: the close is completing
	mv "$MNT/old.txt" "$MNT/new.txt"
	wait "$cpid"
	[ "$(remote_md5 new.txt)" = "$(md5_of "$BATS_TEST_TMPDIR/small")" ]
	[ "$(remote_json old.txt)" = null ]
	[ -f "$MNT/new.txt" ] && [ ! -e "$MNT/old.txt" ]
}

@test "rename onto a file whose replacement is completing keeps the newest bytes" {
	fs_setup --latency-ms 400
	mount_fs -o part_size=1M
	echo one >"$MNT/t.txt"
	echo two >"$BATS_TEST_TMPDIR/two"
	echo three >"$BATS_TEST_TMPDIR/three"
	cp "$BATS_TEST_TMPDIR/two" "$MNT/t.txt" &
	cpid=$!
	exec 5>"$MNT/p.txt"
	echo three >&5
	sleep 0.6
	mv "$MNT/p.txt" "$MNT/t.txt" # p.txt is still open: it goes up at its close
	wait "$cpid"
	exec 5>&-
	wait_remote t.txt "$(md5_of "$BATS_TEST_TMPDIR/three")"
	[ "$(remote_count)" = 1 ]
}

@test "mv of a directory holding a file still being written moves it whole" {
	fs_setup
	mount_fs -o part_size=1M
	mkdir "$MNT/d"
	python3 - "$MNT" "$BATS_TEST_TMPDIR/src" <<'PY'
import os, subprocess, sys
mnt, src = sys.argv[1:3]
data = open(src, "rb").read()
fd = os.open(mnt + "/d/f.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, data[:1000000])
subprocess.run(["mv", mnt + "/d", mnt + "/e"], check=True)
os.write(fd, data[1000000:])
os.close(fd)
PY
	[ "$(remote_md5 e/f.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/src")" ]
	[ "$(remote_count)" = 1 ]
	[ ! -e "$MNT/d" ]
}

@test "mv of a directory holding completed and unwritten files moves them all on the server" {
	fs_setup
	mount_fs
	mkdir -p "$MNT/d/sub"
	echo x >"$MNT/d/f.txt"
	echo y >"$MNT/d/sub/g.txt"
	touch "$MNT/d/local.txt"
	mv "$MNT/d" "$MNT/e"
	[ "$(remote_count)" = 2 ]
	[ "$(remote_json d/f.txt)" = null ]
	[ "$(remote_md5 e/f.txt)" = "$(echo x | md5sum | cut -d' ' -f1)" ]
	[ "$(remote_md5 e/sub/g.txt)" = "$(echo y | md5sum | cut -d' ' -f1)" ]
	[ ! -e "$MNT/d" ]
	[ -e "$MNT/e/local.txt" ]
	[ "$(xattr "$MNT/e/f.txt" user.upload.file_id)" = "$(remote_json e/f.txt | jq -r .id)" ]
}

@test "an O_TRUNC open while a reader reads the file never frees what the reader uses" {
	fs_setup
	mount_fs -o part_size=1M
	head -c 300000 /dev/urandom >"$MNT/u.bin"
	python3 - "$MNT/u.bin" <<'PY'
import os, sys, threading
path = sys.argv[1]
stop = False
errors = []
def reader():
    fd = os.open(path, os.O_RDONLY)
    while not stop:
        try:
            os.pread(fd, 65536, 0)
        except OSError as e:
            errors.append(e)
            break
    os.close(fd)
threads = [threading.Thread(target=reader) for _ in range(3)]
for t in threads:
    t.start()
for i in range(40):
    with open(path, "wb") as f:   # O_TRUNC: a new version each time
        f.write(os.urandom(4096 + i))
stop = True
for t in threads:
    t.join()
assert not errors, errors
PY
	[ "$(remote_count)" = 1 ]
	kill -0 "$FS_PID"
}

@test "a failed upload is cancelled on the server at once, not at the next mount" {
	FS_ALLOW='.'
	ALLOW_LOG='.'
	fs_setup --fail-first 1000 --fail-kind 500
	mount_fs -o part_size=1M,retries=0
	run python3 - "$MNT/x.bin" "$BATS_TEST_TMPDIR/src" <<'PY'
import os, sys, time
path, src = sys.argv[1:3]
data = open(src, "rb").read()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.ftruncate(fd, len(data))          # an early upload: parts go up as they fill
try:
    os.write(fd, data)
    time.sleep(1)
    os.write(fd, b"more")
except OSError as e:
    print("write:", e.errno)
try:
    os.close(fd)
except OSError as e:
    print("close:", e.errno)
PY
	echo "$output"
	[[ "$output" == *"write: 5"* || "$output" == *"close: 5"* ]]
	for i in $(seq 50); do
		grep -l '"status":"cancelled"' "$SRV_DATA"/uploads/*.json && break
		sleep 0.1
	done
	no_pending_on_server
	[ "$(xattr "$MNT/x.bin" user.upload.status)" = failed ]
	[ -z "$(ls "$CACHE/journal")" ]
	umount_fs
	: >"$BATS_TEST_TMPDIR/fs.log"
	mount_fs
	! grep -q 'still being written' "$BATS_TEST_TMPDIR/fs.log"
}

@test "a second mount on the same cache_dir refuses to start, with one clear line" {
	fs_setup
	mount_fs
	mkdir -p "$BATS_TEST_TMPDIR/mnt2"
	run "$UPLOADFS" -f -o "api_base=$BASE,cache_dir=$CACHE" "$BATS_TEST_TMPDIR/mnt2"
	[ "$status" -ne 0 ]
	[[ "$output" == *"is in use by another uploadfs mount"* ]]
	! grep -q " $BATS_TEST_TMPDIR/mnt2 " /proc/mounts
}

@test "link is EPERM; a renamed empty directory stays renamed after a remount" {
	fs_setup
	mount_fs
	echo x >"$MNT/a"
	run python3 -c 'import os,sys
try:
    os.link(sys.argv[1] + "/a", sys.argv[1] + "/b")
except OSError as e:
    print(e.errno)' "$MNT"
	[ "$output" = 1 ]
	mkdir -p "$MNT/d/inner"
	mv "$MNT/d" "$MNT/e"
	umount_fs
	mount_fs
	[ -d "$MNT/e/inner" ]
	[ ! -e "$MNT/d" ]
}

# write_record CACHE REC NAME SPOOL [SIZE]: a journal record of a closed file, no session,
# for the spool SPOOL (under CACHE/spool); SIZE overrides the spool's size in the record
write_record() {
	local cache=$1 rec=$2 name=$3 spool=$4 size md5 parts
	size=${5:-$(stat -c %s "$cache/spool/$spool")}
	md5=$(md5_of "$cache/spool/$spool")
	parts=$(python3 -c "import json,sys; print(json.dumps(['']*max(0,-(-$size//8388608))))")
	printf '{"version":1,"filename":"%s","mime_type":"text/plain","purpose":"assistants","spool":"%s","size":%s,"part_size":8388608,"upload_id":"","expires_at":0,"md5":"%s","parts":%s}' \
		"$name" "$cache/spool/$spool" "$size" "$md5" "$parts" >"$cache/journal/$rec.json"
}

@test "recovery: of two records of one name the newer wins; one that cannot be finished is reported, its bytes kept" {
	FS_ALLOW='cannot finish the upload of'
	fs_setup
	CACHE=$BATS_TEST_TMPDIR/cache
	mkdir -p "$CACHE/journal" "$CACHE/spool"
	echo older >"$CACHE/spool/s1"
	echo newer >"$CACHE/spool/s2"
	echo damaged >"$CACHE/spool/s3"
	write_record "$CACHE" old n.txt s1
	write_record "$CACHE" new n.txt s2
	write_record "$CACHE" bad b.txt s3 100 # the spool is not the size the record says
	touch -d '1 minute ago' "$CACHE/journal/old.json"
	mount_fs
	wait_remote n.txt "$(printf 'newer\n' | md5sum | cut -d' ' -f1)"
	umount_fs
	[ "$(remote_count)" = 1 ]
	grep -q 'cannot finish the upload of n.txt: a newer version' "$BATS_TEST_TMPDIR/fs.log"
	grep -q 'cannot finish the upload of b.txt: its spool file is not' "$BATS_TEST_TMPDIR/fs.log"
	[ "$(cat "$CACHE/lost+found/s1")" = older ]
	[ "$(cat "$CACHE/lost+found/s3")" = damaged ]
	[ -z "$(ls "$CACHE/journal")" ]
	[ -z "$(ls "$CACHE/spool")" ]
	# reported once: the next mount says nothing
	: >"$BATS_TEST_TMPDIR/fs.log"
	mount_fs
	umount_fs
	! grep -qE 'error|warning' "$BATS_TEST_TMPDIR/fs.log"
}

@test "a copy from outside brings its attributes: mv, cp -a and rsync -X print nothing, the purpose set mid-upload wins" {
	fs_setup
	mount_fs -o part_size=1M
	local f="$BATS_TEST_TMPDIR/src" want
	want=$(md5_of "$f")
	# as a file moved out of the mount earlier carries them
	setfattr -n user.purpose -v batch "$f"
	setfattr -n user.mime_type -v application/jsonl "$f"
	setfattr -n user.upload.status -v completed "$f"
	setfattr -n user.upload.id -v upload_from_elsewhere "$f"
	cp -a "$f" "$BATS_TEST_TMPDIR/src2"
	cp -a "$f" "$BATS_TEST_TMPDIR/src3"
	run mv "$f" "$MNT/moved.jsonl"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run cp -a --preserve=xattr "$BATS_TEST_TMPDIR/src2" "$MNT/copied.jsonl"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run rsync -aX "$BATS_TEST_TMPDIR/src3" "$MNT/synced.jsonl"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	local n
	for n in moved.jsonl copied.jsonl synced.jsonl; do
		[ "$(remote_md5 $n)" = "$want" ]
		[ "$(remote_json $n | jq -r .purpose)" = batch ]
		[ "$(xattr "$MNT/$n" user.purpose)" = batch ]
		[ "$(xattr "$MNT/$n" user.mime_type)" = application/jsonl ]
		[ "$(xattr "$MNT/$n" user.upload.status)" = completed ]
		[[ "$(xattr "$MNT/$n" user.upload.id)" == upload_* ]]
		[ "$(xattr "$MNT/$n" user.upload.id)" != upload_from_elsewhere ]
	done
	# once closed, they are read-only again, and the purpose too
	run setfattr -n user.upload.status -v failed "$MNT/moved.jsonl"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Operation not permitted"* ]]
	run setfattr -n user.purpose -v assistants "$MNT/moved.jsonl"
	[ "$status" -ne 0 ]
	no_pending_on_server
	FS_ALLOW='is read-only|cannot change once'
}
