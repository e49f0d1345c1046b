#!/usr/bin/env bats
# The write path: what cp, dd, the shell and pipelines write arrives whole, with its md5
# checked on the server's copy; close fails when the upload does.

load ../lib/mount

setup() {
	fs_setup
	mount_fs -o part_size=1M
}

teardown() {
	fs_teardown
}

# put SIZE NAME: a random file of SIZE bytes copied in with cp; checks the server's copy.
put() {
	head -c "$1" /dev/urandom >"$BATS_TEST_TMPDIR/$2"
	cp "$BATS_TEST_TMPDIR/$2" "$MNT/$2"
	[ "$(remote_md5 "$2")" = "$(md5_of "$BATS_TEST_TMPDIR/$2")" ]
	[ "$(remote_json "$2" | jq .bytes)" = "$1" ]
	[ "$(xattr "$MNT/$2" user.upload.md5)" = "$(md5_of "$BATS_TEST_TMPDIR/$2")" ]
	[ "$(xattr "$MNT/$2" user.upload.status)" = completed ]
}

@test "an empty file is uploaded" {
	put 0 empty
	[ "$(xattr "$MNT/empty" user.upload.md5)" = d41d8cd98f00b204e9800998ecf8427e ]
}

@test "a 1-byte file" {
	put 1 one
}

@test "part_size - 1, part_size, part_size + 1 and exact multiples" {
	put 1048575 below
	put 1048576 exact
	put 1048577 above
	put 3145728 three
}

@test "a file of many parts, and the parts it was sent in" {
	put 10000000 ten
	# 10 parts: 9 of 1 MiB and the rest
	up=$(xattr "$MNT/ten" user.upload.id)
	[[ "$up" == upload_* ]]
	[ "$(xattr "$MNT/ten" user.upload.bytes_sent)" = 10000000 ]
	[ "$(xattr "$MNT/ten" user.upload.file_id)" = "$(remote_json ten | jq -r .id)" ]
}

@test "ls -l shows what was written, with its size" {
	put 123456 sized
	run stat -c '%s %F' "$MNT/sized"
	[ "$output" = "123456 regular file" ]
	ls -l "$MNT" | grep -q ' sized$'
}

@test "dd with odd block sizes" {
	head -c 2500000 /dev/urandom >"$BATS_TEST_TMPDIR/src"
	dd if="$BATS_TEST_TMPDIR/src" of="$MNT/dd.bin" bs=7919 status=none
	[ "$(remote_md5 dd.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/src")" ]
	dd if="$BATS_TEST_TMPDIR/src" of="$MNT/dd-big.bin" bs=4M status=none
	[ "$(remote_md5 dd-big.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/src")" ]
}

@test "shell redirections: > and >> in one open, echo > f" {
	echo hello >"$MNT/greeting.txt"
	[ "$(curl -sS "$BASE/files/$(remote_json greeting.txt | jq -r .id)/content")" = hello ]
	{
		echo one
		echo two
	} >>"$MNT/appended.txt"
	[ "$(remote_md5 appended.txt)" = "$(printf 'one\ntwo\n' | md5sum | cut -d' ' -f1)" ]
	[ "$(remote_json greeting.txt | jq -r .purpose)" = assistants ]
	[ "$(remote_json greeting.txt | jq -r .filename)" = greeting.txt ]
}

@test ">> onto a completed file: a new version with both lines, the old file deleted after" {
	echo first >"$MNT/log.txt"
	old=$(remote_json log.txt | jq -r .id)
	echo second >>"$MNT/log.txt"
	[ "$(remote_count)" = 1 ]
	[ "$(remote_md5 log.txt)" = "$(printf 'first\nsecond\n' | md5sum | cut -d' ' -f1)" ]
	[ "$(remote_json log.txt | jq -r .id)" != "$old" ]
	[ "$(cat "$MNT/log.txt")" = "$(printf 'first\nsecond')" ]
}

@test "> onto a completed file replaces it: the old one is deleted once the new one is complete" {
	echo old >"$MNT/r.txt"
	old=$(remote_json r.txt | jq -r .id)
	echo new >"$MNT/r.txt"
	[ "$(remote_count)" = 1 ]
	new=$(remote_json r.txt | jq -r .id)
	[ "$new" != "$old" ]
	[ "$(remote_md5 r.txt)" = "$(echo new | md5sum | cut -d' ' -f1)" ]
	[ "$(xattr "$MNT/r.txt" user.upload.file_id)" = "$new" ]
}

@test "pipelines" {
	seq 1 200000 | gzip -1 >"$MNT/seq.gz"
	[ "$(remote_md5 seq.gz)" = "$(seq 1 200000 | gzip -1 | md5sum | cut -d' ' -f1)" ]
	seq 1 1000 | tee "$MNT/tee.txt" >/dev/null
	[ "$(remote_md5 tee.txt)" = "$(seq 1 1000 | md5sum | cut -d' ' -f1)" ]
}

@test "fork and dup: a child's close does not complete early" {
	exec 7>"$MNT/forked.txt"
	echo parent >&7
	(echo child >&7)
	bash -c 'echo grandchild >&7'
	echo parent-again >&7
	[ "$(xattr "$MNT/forked.txt" user.upload.status)" = pending ]
	exec 7>&-
	[ "$(remote_md5 forked.txt)" = "$(printf 'parent\nchild\ngrandchild\nparent-again\n' | md5sum | cut -d' ' -f1)" ]
}

@test "a file renamed before it is closed is uploaded under its new name" {
	exec 7>"$MNT/before.tmp"
	echo data >&7
	mv "$MNT/before.tmp" "$MNT/after.txt"
	exec 7>&-
	[ "$(remote_json after.txt | jq -r .bytes)" = 5 ]
	[ "$(remote_json before.tmp)" = null ]
	[ "$(remote_count)" = 1 ]
}

@test "a file unlinked while open is never uploaded" {
	exec 7>"$MNT/gone.txt"
	echo data >&7
	rm "$MNT/gone.txt"
	echo more >&7
	exec 7>&-
	[ "$(remote_count)" = 0 ]
	[ ! -e "$MNT/gone.txt" ]
}

@test "writes out of order are assembled right (hashed again from the spool)" {
	python3 - "$MNT/ooo.bin" "$BATS_TEST_TMPDIR/ooo.bin" <<'PY'
import os, random, sys
random.seed(5)
data = bytearray(os.urandom(3_300_000))
for path in sys.argv[1:]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    chunks = [(off, 65536) for off in range(0, len(data), 65536)]
    random.shuffle(chunks)
    for off, n in chunks:
        os.pwrite(fd, data[off:off + n], off)
    # and an overwrite of bytes already written
    os.pwrite(fd, b"patched", 1000)
    os.close(fd)
PY
	[ "$(remote_md5 ooo.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/ooo.bin")" ]
}

@test "the file's MD5 on its hashing thread: past 1 MiB, a truncate to 0, a late overwrite" {
	# in order past 1 MiB (the hasher thread takes over), truncated to 0 while open and
	# written again, then an overwrite of hashed bytes: the md5 is always the content's
	python3 - "$MNT/h.bin" "$BATS_TEST_TMPDIR/h.bin" <<'PY'
import os, sys
first, second = os.urandom(3_000_000), bytearray(os.urandom(2_500_001))
for path in sys.argv[1:]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    for off in range(0, len(first), 99_999):
        os.write(fd, first[off:off + 99_999])
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    for off in range(0, len(second), 777_777):
        os.write(fd, second[off:off + 777_777])
    os.pwrite(fd, b"late", 2_000_000)
    os.close(fd)
PY
	[ "$(remote_md5 h.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/h.bin")" ]
	[ "$(xattr "$MNT/h.bin" user.upload.md5)" = "$(md5_of "$BATS_TEST_TMPDIR/h.bin")" ]
	put 7000001 h2.bin
}

# cached PATH MODE: writes 4 MiB to a new file through a wronly or rdwr handle while a
# reader holds it mapped; prints how many of those pages the kernel's page cache holds.
cached() {
	python3 - "$1" "$2" <<'PY'
import ctypes, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
path, mode = sys.argv[1], sys.argv[2]
size, page = 4 << 20, mmap.PAGESIZE
w = os.open(path, (os.O_WRONLY if mode == "wronly" else os.O_RDWR) | os.O_CREAT | os.O_EXCL,
            0o644)
os.write(w, b"x" * page)
# the reader opens before the writes (an open drops the cache) and maps 4 MiB
r = os.open(path, os.O_RDONLY)
addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, r, 0)
assert addr not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
block = os.urandom(1 << 20)
for off in range(0, size, len(block)):
    os.pwrite(w, block, off)
vec = ctypes.create_string_buffer(size // page)
assert libc.mincore(addr, size, vec) == 0, os.strerror(ctypes.get_errno())
print(sum(b & 1 for b in vec.raw))
os.close(w)
os.close(r)
PY
}

@test "a write-only handle (cp, rsync, tar, >) bypasses the page cache; a read-write one does not" {
	# the bytes go to the daemon in one copy and are not kept in memory a second time
	[ "$(cached "$MNT/wronly.bin" wronly)" = 0 ]
	# a read-write handle can mmap, so its writes go through the cache (the control)
	[ "$(cached "$MNT/rdwr.bin" rdwr)" = 1024 ]
	# both files went up whole, and read back
	for f in wronly.bin rdwr.bin; do
		[ "$(xattr "$MNT/$f" user.upload.status)" = completed ]
		[ "$(remote_json "$f" | jq .bytes)" = 4194304 ]
		cmp <(cat "$MNT/$f") <(curl -sS "$BASE/files/$(remote_json "$f" | jq -r .id)/content")
	done
}

@test "a sparse file (seek past the end) uploads its holes as zeros" {
	python3 - "$MNT/sparse.bin" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.pwrite(fd, b"end", 2_000_000)
os.close(fd)
PY
	[ "$(remote_md5 sparse.bin)" = "$( (head -c 2000000 /dev/zero; printf end) | md5sum | cut -d' ' -f1)" ]
}

@test "10 concurrent writers" {
	for i in $(seq 10); do head -c $((300000 * i)) /dev/urandom >"$BATS_TEST_TMPDIR/c$i"; done
	pids=()
	for i in $(seq 10); do
		cp "$BATS_TEST_TMPDIR/c$i" "$MNT/c$i" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	for i in $(seq 10); do
		[ "$(remote_md5 "c$i")" = "$(md5_of "$BATS_TEST_TMPDIR/c$i")" ]
	done
	[ "$(remote_count)" = 10 ]
}

@test "closes that wait on a slow server leave the mount free for other requests" {
	# Each close below waits about 6 s for its upload (three requests, 2 s each). Other
	# requests must be answered meanwhile: the mount runs a worker thread per blocked
	# request, up to 64. (A loop configuration of the wrong libfuse API version once
	# capped them at 10, and started and ended a thread per request.)
	umount_fs
	stop_server
	start_server --allow-downloads --latency-ms 2000
	mount_fs -o parallel=16
	ls "$MNT" >/dev/null # the remote listing, fetched once
	pids=()
	for i in $(seq 14); do
		(echo "$i" >"$MNT/slow$i") &
		pids+=($!)
	done
	sleep 1 # every writer is in close by now, waiting on the server
	# getxattr is never answered from the kernel's cache: this reaches the daemon
	[ "$(xattr "$MNT/slow1" user.upload.status)" = uploading ]
	for p in "${pids[@]}"; do kill -0 "$p"; done # answered while every close still waits
	for p in "${pids[@]}"; do wait "$p"; done
	for i in $(seq 14); do [ "$(xattr "$MNT/slow$i" user.upload.status)" = completed ]; done
	[ "$(remote_count)" = 14 ]
}

@test "the size announced with ftruncate starts the upload while the file is written" {
	python3 - "$MNT/announced.bin" <<'PY'
import os, sys
path = sys.argv[1]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.ftruncate(fd, 5 * 1024 * 1024)
block = b"x" * (1024 * 1024)
for i in range(3):
    os.write(fd, block)
os.fsync(fd)  # waits for the parts in flight
status = os.getxattr(path, "user.upload.status").decode()
sent = int(os.getxattr(path, "user.upload.bytes_sent"))
assert status == "uploading", status
assert sent == 3 * 1024 * 1024, sent
os.write(fd, block)
os.write(fd, block)
os.close(fd)
assert os.getxattr(path, "user.upload.status") == b"completed"
PY
	[ "$(remote_md5 announced.bin)" = "$(head -c 5242880 /dev/zero | tr '\0' x | md5sum | cut -d' ' -f1)" ]
}

@test "an announced size that turns out wrong falls back to a fresh upload" {
	python3 - "$MNT/wrong.bin" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.posix_fallocate(fd, 0, 3 * 1024 * 1024)
os.write(fd, b"y" * (2 * 1024 * 1024 + 5))
os.ftruncate(fd, 2 * 1024 * 1024 + 5)
os.close(fd)
PY
	[ "$(remote_md5 wrong.bin)" = "$(head -c 2097157 /dev/zero | tr '\0' y | md5sum | cut -d' ' -f1)" ]
	[ "$(remote_count)" = 1 ]
}

@test "a size set is a change: ftruncate or fallocate of a file opened without O_TRUNC uploads it" {
	# model check seed 610602: open(O_CREAT|O_APPEND), ftruncate 10000 (an early upload
	# started), ftruncate 20000, close returned 0 and nothing was ever uploaded
	python3 - "$MNT" <<'PY'
import os, sys
mnt = sys.argv[1]
fd = os.open(mnt + "/grown.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.ftruncate(fd, 10000)
os.ftruncate(fd, 20000)
os.close(fd)
fd = os.open(mnt + "/falloc.bin", os.O_RDWR | os.O_CREAT, 0o644)
os.posix_fallocate(fd, 0, 4096)
os.close(fd)
PY
	[ "$(remote_md5 grown.bin)" = "$(head -c 20000 /dev/zero | md5sum | cut -d' ' -f1)" ]
	[ "$(remote_md5 falloc.bin)" = "$(head -c 4096 /dev/zero | md5sum | cut -d' ' -f1)" ]
	# truncate(2) of a touched file, no handle open: no close will come, it goes up now
	touch "$MNT/touched"
	[ "$(xattr "$MNT/touched" user.upload.status)" = pending ]
	truncate -s 300 "$MNT/touched"
	[ "$(xattr "$MNT/touched" user.upload.status)" = completed ]
	[ "$(remote_json touched | jq .bytes)" = 300 ]
	[ "$(remote_count)" = 3 ]
}

@test "the server stopped: cp exits nonzero and the file says failed" {
	FS_ALLOW='upload of .* failed|listing the remote files failed|retry|server is away'
	umount_fs
	mount_fs -o part_size=1M,retry_window=2
	stop_server
	head -c 100000 /dev/urandom >"$BATS_TEST_TMPDIR/x"
	run cp "$BATS_TEST_TMPDIR/x" "$MNT/x"
	[ "$status" != 0 ]
	[ "$(xattr "$MNT/x" user.upload.status)" = failed ]
	[ -n "$(xattr "$MNT/x" user.upload.error)" ]
	grep -q 'upload of x failed' "$BATS_TEST_TMPDIR/fs.log"
}

@test "a server error is retried, a lasting one fails close with EIO" {
	FS_ALLOW='upload of .* failed|retry'
	umount_fs
	stop_server
	start_server --allow-downloads --fail-first 2 --fail-kind 500
	mount_fs -o part_size=1M,retries=3
	head -c 1500000 /dev/urandom >"$BATS_TEST_TMPDIR/r"
	cp "$BATS_TEST_TMPDIR/r" "$MNT/r"
	[ "$(remote_md5 r)" = "$(md5_of "$BATS_TEST_TMPDIR/r")" ]
	umount_fs
	stop_server
	start_server --allow-downloads --fail-first 1000 --fail-kind 500
	mount_fs -o part_size=1M,retries=1
	run cp "$BATS_TEST_TMPDIR/r" "$MNT/r2"
	[ "$status" != 0 ]
	[[ "$output" == *"Input/output error"* ]]
	[ "$(xattr "$MNT/r2" user.upload.status)" = failed ]
}

@test "-o async: close returns at once; the uploads complete, and unmount waits for them" {
	umount_fs
	stop_server
	start_server --allow-downloads --latency-ms 200
	mount_fs -o async,part_size=1M
	mkdir -p "$BATS_TEST_TMPDIR/many"
	for i in $(seq 20); do echo "file $i" >"$BATS_TEST_TMPDIR/many/f$i.txt"; done
	cp -r "$BATS_TEST_TMPDIR/many" "$MNT/"
	# cp is back, and the last file's upload (three requests of 200 ms) is still going
	[ "$(xattr "$MNT/many/f20.txt" user.upload.status)" = uploading ]
	umount_fs
	[ "$(remote_count)" = 20 ]
	for i in 1 7 20; do
		[ "$(remote_md5 "many/f$i.txt")" = "$(md5_of "$BATS_TEST_TMPDIR/many/f$i.txt")" ]
	done
}

@test "a failed file: other writes are EIO, opening it with O_TRUNC uploads it again" {
	FS_ALLOW='upload of .* failed'
	umount_fs
	stop_server
	start_server --allow-downloads --fail-first 1 --fail-kind 500
	mount_fs -o retries=0
	echo first >"$BATS_TEST_TMPDIR/v1"
	run cp "$BATS_TEST_TMPDIR/v1" "$MNT/f.txt"
	[ "$status" != 0 ]
	[ "$(xattr "$MNT/f.txt" user.upload.status)" = failed ]
	run bash -c "echo more >>'$MNT/f.txt'"
	[[ "$output" == *"Input/output error"* ]]
	echo second >"$MNT/f.txt"
	[ "$(xattr "$MNT/f.txt" user.upload.status)" = completed ]
	[ "$(remote_md5 f.txt)" = "$(echo second | md5sum | cut -d' ' -f1)" ]
	[ "$(remote_count)" = 1 ]
}

@test "rsync --preallocate: fallocate(KEEP_SIZE) is only a hint, the file goes up once, whole" {
	mkdir -p "$BATS_TEST_TMPDIR/pre"
	head -c 3000000 /dev/urandom >"$BATS_TEST_TMPDIR/pre/p.bin"
	rsync -a --preallocate "$BATS_TEST_TMPDIR/pre/" "$MNT/"
	[ "$(remote_md5 p.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/pre/p.bin")" ]
	[ "$(remote_count)" = 1 ]
}

@test "RENAME_EXCHANGE is EINVAL" {
	echo a >"$MNT/a.txt"
	touch "$MNT/b.txt"
	run python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
r = libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), 2)
sys.exit(0 if r == -1 and ctypes.get_errno() == 22 else 1)' "$MNT/a.txt" "$MNT/b.txt"
	[ "$status" = 0 ]
}
