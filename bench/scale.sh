#!/usr/bin/env bash
# The namespace at scale: N remote files (every tenth under a nested directory), put on a
# local uploadfs-server through the API, then the mount's answers. For each N: mount
# ready, ls -l of the root and of the nested directory, stat (warm, after idle), find,
# one cp and 100 cps, the daemon's RSS per remote file, requests per minute at idle, and
# the worst stat while whole listings run. Baseline in the same run: the API's own whole
# listing (curl, every page), which mount ready and a sweep cannot beat.
#
#   bash bench/scale.sh                  # N = 1000 10000 100000
#   NS="1000 10000" bash bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
NS=${NS:-1000 10000 100000}
. bench/lib.sh
ms() { local s; s=$(date +%s%N); "$@" >/dev/null 2>&1; echo $((($(date +%s%N) - s) / 1000000)); }

# the daemon's RSS over an empty server: what the files cost is measured above it
server
"$UPLOADFS" -f -o "api_base=$base,cache_dir=$work/cache" "$mnt" 2>>"$work/fs.log" &
fs_pid=$!
until grep -q " $mnt fuse.uploadfs" /proc/mounts; do sleep 0.01; done
ls -l "$mnt" >/dev/null
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$fs_pid/status")
fusermount3 -u "$mnt"
wait "$fs_pid" 2>/dev/null || true
fs_pid=
echo "RSS of a mount over no files: $rss0 KiB"
echo
echo "| N | mount ready | API whole listing (curl) | ls -l / | ls -l nested | stat warm | stat after idle | find \| wc -l | 1 cp | 100 cps | RSS/file above an empty mount | requests/min idle | worst stat during sweeps |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for n in $NS; do
	rm -rf "$work/cache"
	server --log-requests "$work/req.log"
	python3 tests/lib/populate.py "$base" "$n"
	api=$(ms bash -c "after=; while :; do r=\$(curl -sS \"$base/files?limit=10000\${after:+&after=\$after}\"); after=\$(jq -r '.data[-1].id' <<<\"\$r\"); [ \"\$(jq -r .has_more <<<\"\$r\")\" = true ] || break; done")
	s=$(date +%s%N)
	"$UPLOADFS" -f -o "api_base=$base,cache_dir=$work/cache" "$mnt" 2>>"$work/fs.log" &
	fs_pid=$!
	until grep -q " $mnt fuse.uploadfs" /proc/mounts; do sleep 0.01; done
	ready=$((($(date +%s%N) - s) / 1000000))
	ls_root=$(ms ls -l "$mnt")
	ls_nested=$(ms ls -l "$mnt/fdir")
	stat_warm=$(ms stat "$mnt/f1.txt")
	sleep 2.5
	stat_idle=$(ms stat "$mnt/f3.txt")
	find_t=$(ms bash -c "find '$mnt' | wc -l")
	echo x >"$work/one"
	one=$(ms cp "$work/one" "$mnt/one.txt")
	many=$(ms bash -c "for i in \$(seq 100); do cp '$work/one' '$mnt/c\$i.txt'; done")
	rss=$(awk '/VmRSS/ {print $2}' "/proc/$fs_pid/status")
	per=$(((rss - rss0) * 1024 / n))
	before=$(wc -l <"$work/req.log")
	sleep 30
	idle=$((($(wc -l <"$work/req.log") - before) * 2))
	fusermount3 -u "$mnt"
	wait "$fs_pid" 2>/dev/null || true
	# whole listings every second: the worst stat of a known name meanwhile
	"$UPLOADFS" -f -o "api_base=$base,cache_dir=$work/cache,sweep_interval=1" "$mnt" 2>>"$work/fs.log" &
	fs_pid=$!
	until grep -q " $mnt fuse.uploadfs" /proc/mounts; do sleep 0.01; done
	worst=0
	for i in $(seq 40); do
		t=$(ms stat "$mnt/f$((i * 13 + 1)).txt")
		[ "$t" -le "$worst" ] || worst=$t
		sleep 0.15
	done
	fusermount3 -u "$mnt"
	wait "$fs_pid" 2>/dev/null || true
	fs_pid=
	echo "| $n | $ready ms | $api ms | $ls_root ms | $ls_nested ms | $stat_warm ms | $stat_idle ms | $find_t ms | $one ms | $many ms | $per B | $idle | $worst ms |"
done
