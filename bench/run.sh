#!/usr/bin/env bash
# uploadfs benchmarks: each uploadfs figure next to its baseline, measured in the same run
# on loopback (the machine is shared and noisy: read the ratios). Not part of CI.
#
#   bash bench/run.sh                 # the full run (2 GiB, 1 GiB, 1000 files, 4 GiB)
#   LARGE=512M STREAM=256M SMALL=200 MEM=1G RUNS=1 bash bench/run.sh    # a quick one
#   ONLY=1,4 bash bench/run.sh        # only benchmarks 1 and 4
#   LARGE=1G ONLY=7 bash bench/run.sh # the server's complete alone
#
# Prints one markdown table; each figure is the median of RUNS runs.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
LARGE=${LARGE:-2G}
STREAM=${STREAM:-1G}
SMALL=${SMALL:-1000}
MEM=${MEM:-4G}
RUNS=${RUNS:-3}
RATE=${RATE:-100} # MiB/s of the slow streaming writer
. bench/lib.sh

echo "| benchmark | uploadfs | baseline | ratio |"
echo "| --- | --- | --- | --- |"

# ---- inputs ----
large=$(bytes "$LARGE")
head -c "$large" /dev/urandom >"$work/large"
large_md5=$(md5sum <"$work/large" | cut -d' ' -f1)
mkdir -p "$work/parts8" "$work/parts64"
split -b 8M -d -a 5 "$work/large" "$work/parts8/p"
split -b 64M -d -a 5 "$work/large" "$work/parts64/p"
sync # the inputs' writeback must not run during the timed copies

# cached_only FILES...: of the inputs, these and only these are in the page cache. Each
# sender of row 1 starts from the same state: on the VM of results.md, filling new page
# cache got slower the more was cached already, and the inputs are three times LARGE.
cached_only() {
	local f
	for f in "$work/large" "$work"/parts8/p*[0-9] "$work"/parts64/p*[0-9]; do
		dd if="$f" iflag=nocache count=0 status=none
	done
	cat "$@" >/dev/null
}

# ---- 1. large file ----
want() { [ -z "${ONLY:-}" ] || [[ ",$ONLY," == *",$1,"* ]]; }
if want 1; then
t_cp=() t_par=() t_parts=() t_seq=()
for r in $(seq "$RUNS"); do
	server
	mount_fs
	cached_only "$work/large"
	sync
	s=$(now); cp "$work/large" "$mnt/large"; t_cp+=("$(echo "$(now) - $s" | bc)")
	umount_fs

	server
	cached_only "$work"/parts8/p*[0-9]
	sync
	s=$(now)
	up=$(create "$large" large)
	# one curl process, 4 transfers at a time on reused connections: no process per part
	args=()
	for p in "$work"/parts8/p*[0-9]; do
		[ ${#args[@]} -eq 0 ] || args+=(--next)
		args+=(-sSf --url "$base/uploads/$up/parts" -F "data=@$p" -o "$p.json")
	done
	curl --parallel --parallel-max 4 --no-progress-meter "${args[@]}"
	t_parts+=("$(echo "$(now) - $s" | bc)") # create and parts, before complete
	for p in "$work"/parts8/p*[0-9]; do jq -r .id "$p.json"; done >"$work/ids"
	complete "$up" "$large_md5" "$work/ids"
	t_par+=("$(echo "$(now) - $s" | bc)")
	rm -f "$work"/parts8/*.json

	server
	cached_only "$work"/parts64/p*[0-9]
	sync
	s=$(now)
	# the seed's flow: the md5 of the file first (on the clock), then the parts in turn
	seq_md5=$(cat "$work"/parts64/p*[0-9] | md5sum | cut -d' ' -f1)
	up=$(create "$large" large)
	: >"$work/ids"
	for p in "$work"/parts64/p*[0-9]; do
		curl -sSf "$base/uploads/$up/parts" -F "data=@$p" | jq -r .id >>"$work/ids"
	done
	complete "$up" "$seq_md5" "$work/ids"
	t_seq+=("$(echo "$(now) - $s" | bc)")
done
cp_s=$(printf '%s\n' "${t_cp[@]}" | median)
par_s=$(printf '%s\n' "${t_par[@]}" | median)
parts_s=$(printf '%s\n' "${t_parts[@]}" | median)
seq_s=$(printf '%s\n' "${t_seq[@]}" | median)
echo "| 1. cp of $LARGE until it returns (file completed) | $cp_s s ($(mib "$large" "$cp_s") MiB/s) | curl, 8 MiB parts x4 + complete: $par_s s ($(mib "$large" "$par_s") MiB/s) | $(ratio "$par_s" "$cp_s")x of the parallel-curl limit |"
echo "| | | of which create and parts (curl starts 4 at once and says nothing of the order, so the server's complete hashes the file): $parts_s s | $(ratio "$parts_s" "$cp_s")x the parts alone |"
echo "| | | sequential 64 MiB loop (upload_file_chunked), its md5 pass included: $seq_s s | $(ratio "$seq_s" "$cp_s")x the sequential loop |"
fi

# ---- 7. the server's complete, parts sent 4 at a time in random order ----
if want 7; then
t_c=() t_md5=() w_per=()
wbytes() { awk '/^write_bytes/ {print $2}' "/proc/$srv_pid/io"; }
for r in $(seq "$RUNS"); do
	server
	up=$(create "$large" alone)
	w0=$(wbytes)
	ls "$work"/parts8/p*[0-9] | shuf | xargs -P 4 -I{} sh -c \
		'curl -sSf "$0/uploads/$1/parts" -F "data=@$2" -o "$2.json"' "$base" "$up" {}
	for p in "$work"/parts8/p*[0-9]; do jq -r .id "$p.json"; done >"$work/ids"
	s=$(now)
	complete "$up" "$large_md5" "$work/ids"
	t_c+=("$(echo "$(now) - $s" | bc)")
	w_per+=("$(awk -v a="$w0" -v b="$(wbytes)" -v n="$large" 'BEGIN { printf "%.3f", (b - a) / n }')")
	rm -f "$work"/parts8/*.json
	cat "$work/large" >/dev/null # in the page cache, as the server's parts are
	s=$(now)
	md5sum <"$work/large" >/dev/null
	t_md5+=("$(echo "$(now) - $s" | bc)")
done
c_s=$(printf '%s\n' "${t_c[@]}" | median)
md5_s=$(printf '%s\n' "${t_md5[@]}" | median)
echo "| 7. the server's complete of $LARGE sent as 8 MiB parts, 4 at a time, in random order | $c_s s | md5sum of the file: $md5_s s | $(ratio "$c_s" "$md5_s")x |"
echo "| 7. bytes the server wrote to disk per byte uploaded (/proc/PID/io) | $(printf '%s\n' "${w_per[@]}" | median) | | |"
fi
rm -rf "$work/parts8" "$work/parts64"

# ---- 2. streaming: the size announced, written slowly ----
if want 2; then
stream=$(bytes "$STREAM")
t_tail=() t_one=()
for r in $(seq "$RUNS"); do
	server
	mount_fs
	t_tail+=("$(python3 - "$mnt/stream" "$stream" "$RATE" <<'PY'
import os, sys, time
path, size, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) * 1048576
block = os.urandom(1 << 20)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.posix_fallocate(fd, 0, size)
start = time.monotonic()
for i in range(size >> 20):
    os.write(fd, block)
    lag = start + (i + 1) * len(block) / rate - time.monotonic()
    if lag > 0:
        time.sleep(lag)
last = time.monotonic()
os.close(fd)
print(f"{time.monotonic() - last:.3f}")
PY
)")
	umount_fs
	# what the floor allows: one part upload and a complete
	head -c 8388608 /dev/urandom >"$work/one"
	s=$(now)
	up=$(create 8388608 one)
	curl -sSf "$base/uploads/$up/parts" -F "data=@$work/one" | jq -r .id >"$work/ids"
	complete "$up" "$(md5sum <"$work/one" | cut -d' ' -f1)" "$work/ids"
	t_one+=("$(echo "$(now) - $s" | bc)")
done
tail_s=$(printf '%s\n' "${t_tail[@]}" | median)
one_s=$(printf '%s\n' "${t_one[@]}" | median)
echo "| 2. streaming $STREAM, size announced, written at $RATE MiB/s: last write to close | $tail_s s | one 8 MiB part + complete: $one_s s | $(ratio "$tail_s" "$one_s")x |"
fi

# ---- 3. many small files ----
if want 3; then
mkdir -p "$work/small"
for i in $(seq "$SMALL"); do head -c 4096 /dev/urandom >"$work/small/f$i"; done
t_small=() t_async=() t_loop=()
for r in $(seq "$RUNS"); do
	server
	mount_fs
	s=$(now); cp -r "$work/small" "$mnt/"; t_small+=("$(echo "$(now) - $s" | bc)")
	umount_fs
	server
	mount_fs -o async
	s=$(now); cp -r "$work/small" "$mnt/"; umount_fs # unmount waits for every upload
	t_async+=("$(echo "$(now) - $s" | bc)")
	server
	s=$(now)
	for f in "$work"/small/*; do
		up=$(create 4096 "$(basename "$f")")
		curl -sSf "$base/uploads/$up/parts" -F "data=@$f" | jq -r .id >"$work/ids"
		complete "$up" "$(md5sum <"$f" | cut -d' ' -f1)" "$work/ids"
	done
	t_loop+=("$(echo "$(now) - $s" | bc)")
done
small_s=$(printf '%s\n' "${t_small[@]}" | median)
async_s=$(printf '%s\n' "${t_async[@]}" | median)
loop_s=$(printf '%s\n' "${t_loop[@]}" | median)
echo "| 3. cp -r of $SMALL x 4 KiB, default | $small_s s | sequential curl create/part/complete: $loop_s s | $(ratio "$loop_s" "$small_s")x faster |"
echo "| 3. the same, -o async (until unmount: every upload complete) | $async_s s | | $(ratio "$loop_s" "$async_s")x faster |"
rm -rf "$work/small"
fi

# ---- 4. memory ----
if want 4; then
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
mem=$(bytes "$MEM")
server
mount_fs
head -c "$mem" /dev/zero | tr '\0' 'x' >"$mnt/big"
hwm_big=$(hwm "$fs_pid")
umount_fs
server
mount_fs
head -c 268435456 /dev/urandom >"$work/w"
pids=()
for i in 1 2 3 4 5 6 7 8; do cp "$work/w" "$mnt/w$i" & pids+=($!); done
wait "${pids[@]}"
hwm_par=$(hwm "$fs_pid")
umount_fs
echo "| 4. peak RSS (VmHWM), a $MEM copy | $((hwm_big / 1024)) MiB | | |"
echo "| 4. peak RSS, 8 parallel writers of 256 MiB | $((hwm_par / 1024)) MiB | | |"
fi

# ---- 6. completed files changed: a new version, a rename (each a new upload) ----
if want 6; then
EDIT=${EDIT:-256M}
head -c "$(bytes "$EDIT")" /dev/urandom >"$work/e"
mkdir -p "$work/edir"
for i in $(seq 200); do head -c 4096 /dev/urandom >"$work/edir/f$i"; done
t_cp=() t_app=() t_mv=() t_dl=() t_cpd=() t_mvd=()
for r in $(seq "$RUNS"); do
	server
	mount_fs
	s=$(now); cp "$work/e" "$mnt/e"; t_cp+=("$(echo "$(now) - $s" | bc)")
	s=$(now); echo line >>"$mnt/e"; t_app+=("$(echo "$(now) - $s" | bc)")
	s=$(now); mv "$mnt/e" "$mnt/e2"; t_mv+=("$(echo "$(now) - $s" | bc)")
	s=$(now); cp -r "$work/edir" "$mnt/d"; t_cpd+=("$(echo "$(now) - $s" | bc)")
	s=$(now); mv "$mnt/d" "$mnt/d2"; t_mvd+=("$(echo "$(now) - $s" | bc)")
	umount_fs
	# the same append with nothing cached: the bytes are downloaded first
	kill "$srv_pid"; wait "$srv_pid" 2>/dev/null || true; srv_pid=
	rm -rf "$work/data" "$work/srv.out"
	"$SERVER" --listen 127.0.0.1:0 --data "$work/data" --allow-downloads >"$work/srv.out" 2>>"$work/srv.err" &
	srv_pid=$!
	until base=$(sed -n 's/^listening on //p' "$work/srv.out" 2>/dev/null) && [ -n "$base" ]; do sleep 0.05; done
	mount_fs -o cache_size=0
	cp "$work/e" "$mnt/e"
	s=$(now); echo line >>"$mnt/e"; t_dl+=("$(echo "$(now) - $s" | bc)")
	umount_fs
done
cp_s=$(printf '%s\n' "${t_cp[@]}" | median)
app_s=$(printf '%s\n' "${t_app[@]}" | median)
mv_s=$(printf '%s\n' "${t_mv[@]}" | median)
dl_s=$(printf '%s\n' "${t_dl[@]}" | median)
echo "| 6. echo >> a completed $EDIT file (cached: copy, MD5, upload) | $app_s s | cp of the $EDIT file: $cp_s s | $(ratio "$app_s" "$cp_s")x |"
echo "| 6. mv of a completed $EDIT file (upload again, delete) | $mv_s s | cp: $cp_s s | $(ratio "$mv_s" "$cp_s")x |"
echo "| 6. echo >> with cache_size=0 (download first) | $dl_s s | cp: $cp_s s | $(ratio "$dl_s" "$cp_s")x |"
cpd_s=$(printf '%s\n' "${t_cpd[@]}" | median)
mvd_s=$(printf '%s\n' "${t_mvd[@]}" | median)
echo "| 6. mv of a directory of 200 completed 4 KiB files | $mvd_s s | cp -r of it: $cpd_s s | $(ratio "$mvd_s" "$cpd_s")x |"
rm -rf "$work/e" "$work/edir"
fi

# ---- 5. the server alone: 256 MiB in 64 MiB parts, 4 at a time, no FUSE ----
want 5 || exit 0
server
head -c 268435456 /dev/urandom >"$work/part"
mkdir -p "$work/p64"
split -b 64M -d "$work/part" "$work/p64/p"
s=$(now)
up=$(create 268435456 alone)
ls "$work/p64" | xargs -P 4 -I{} curl -sSf -o /dev/null "$base/uploads/$up/parts" -F "data=@$work/p64/{}"
srv_in=$(echo "$(now) - $s" | bc)
disk=$( { /usr/bin/time -f %e dd if="$work/part" of="$work/data/ddtest" bs=8M conv=fsync status=none; } 2>&1)
rm -f "$work/data/ddtest"
echo "| 5. the server alone: 256 MiB as 4 parallel 64 MiB parts | $(mib 268435456 "$srv_in") MiB/s | disk write (dd, fsync): $(mib 268435456 "$disk") MiB/s | |"
