#!/usr/bin/env bash
# The mount on a far link: SIZE uploaded through tests/lib/linkem (each connection delayed
# by half the round trip each way and paced to RATE bytes/s, as a long path caps one TCP
# connection), at each RTT, three ways in the same run:
#   cp into the mount (default options: parallel=4, part_size=8M), until cp returns;
#   the seed flow (upload_file_chunked): an md5 pass, then 64 MiB parts one after another;
#   raw curl: PAR parts of 8 MiB at a time, then complete;
# and the link's capacity, SIZE / (PAR x RATE), the time PAR connections busy all along take
# (the mount sends PAR part bodies at once and keeps parts awaiting their answer open beside
# them: the kernel takes several MiB of each body before it is on the wire, so more than PAR
# connections may carry bytes at once, and the ratio can pass 1; the column "most parts
# open at once" says how many);
# then the same cp over HTTPS (uploadfs-server --tls-cert, the mount with ca_file): the
# cost of TLS.
#
#   bash bench/wan.sh                              # 256M at RTT 20, 100, 200 ms, 25 MB/s
#   RTTS=100 SIZE=64M bash bench/wan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
SIZE=${SIZE:-256M}
RTTS=${RTTS:-20 100 200}
RATE=${RATE:-25000000}
PAR=${PAR:-4}
. bench/lib.sh

size=$(bytes "$SIZE")
head -c "$size" /dev/urandom >"$work/in.bin"
(cd "$work" && split -b 64M -d in.bin seq. && split -b 8M -d -a 4 in.bin par.)
bash tests/lib/make-tls.sh "$work/tls"
server --log-requests "$work/req.log"

most_at_once() { # the most part requests the server had open at once (request log)
	jq -r 'select(.path | endswith("/parts")) | "\(.start) 1\n\(.end) -1"' "$work/req.log" |
		sort -g | awk '{n += $2; if (n > m) m = n} END {print m + 0}'
}

seed_flow() { # the seed's upload_file_chunked: md5 pass, then sequential 64 MiB parts
	local md5 id
	md5=$(md5sum <"$work/in.bin" | cut -d' ' -f1)
	id=$(create "$size" seed.bin "$lbase")
	: >"$work/ids"
	for p in "$work"/seq.*; do
		curl -sSf "$lbase/uploads/$id/parts" -F "data=@$p" | jq -r .id >>"$work/ids"
	done
	complete "$id" "$md5" "$work/ids" "$lbase"
}

par_curl() { # PAR parts of 8 MiB in flight, then complete (the md5 is known beforehand)
	local id
	id=$(create "$size" par.bin "$lbase")
	ls "$work"/par.* | xargs -P "$PAR" -I{} sh -c \
		'curl -sSf "$0/uploads/$1/parts" -F "data=@$2" | jq -r .id >"$2.id"' "$lbase" "$id" {}
	for p in "$work"/par.*[0-9]; do cat "$p.id"; done >"$work/ids"
	complete "$id" "$(md5sum <"$work/in.bin" | cut -d' ' -f1)" "$work/ids" "$lbase"
}

echo "$SIZE, $PAR connections of $RATE B/s each"
echo
echo "| RTT | cp into the mount | seed flow (md5 + sequential 64 MiB parts) | curl, $PAR x 8 MiB parts | capacity ($PAR x rate) | capacity / cp | cp: most parts open at once | cp vs seed flow | cp over https | https / http |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for rtt in $RTTS; do
	link "$rtt" "$RATE"
	MOUNT_API=$lbase mount_fs
	: >"$work/req.log"
	t0=$(now)
	cp "$work/in.bin" "$mnt/in.bin"
	t_cp=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
	umount_fs
	most=$(most_at_once)
	t0=$(now)
	seed_flow
	t_seed=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
	t0=$(now)
	par_curl
	t_par=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
	cap=$(awk -v s="$size" -v p="$PAR" -v r="$RATE" 'BEGIN { printf "%.2f", s / (p * r) }')
	server --tls-cert "$work/tls/srv.pem" --tls-key "$work/tls/srv.key"
	link "$rtt" "$RATE"
	MOUNT_API=${lbase/http:/https:} mount_fs -o "ca_file=$work/tls/ca.pem"
	t0=$(now)
	cp "$work/in.bin" "$mnt/in.bin"
	t_tls=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
	umount_fs
	server --log-requests "$work/req.log"
	echo "| $rtt ms | $t_cp s | $t_seed s | $t_par s | $cap s | $(ratio "$cap" "$t_cp")x | $most | $(ratio "$t_seed" "$t_cp")x faster | $t_tls s | $(ratio "$t_tls" "$t_cp")x |"
done
