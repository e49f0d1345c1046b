# Helpers shared by the benchmarks (sourced): a work directory cleaned at exit, a fresh
# uploadfs-server, a mount, and the API calls of the curl baselines. The caller sets
# `top` (the repository) and may set BENCH_DIR (where the work directory goes).
[ -f "$top/build/build.ninja" ] || meson setup "$top/build" --buildtype=release >/dev/null
meson compile -C "$top/build" >/dev/null
SERVER=$top/build/server/uploadfs-server
UPLOADFS=$top/build/fs/uploadfs
LINKEM=$top/build/tests/linkem

work=$(mktemp -d "${BENCH_DIR:-/tmp}/uploadfs-bench.XXXXXX")
mnt=$work/mnt
mkdir -p "$mnt"
srv_pid= fs_pid= link_pid=
cleanup() {
	grep -q " $mnt fuse.uploadfs" /proc/mounts && fusermount3 -u "$mnt"
	[ -z "$fs_pid" ] || wait "$fs_pid" 2>/dev/null || true
	[ -z "$link_pid" ] || { kill "$link_pid"; wait "$link_pid" 2>/dev/null || true; }
	[ -z "$srv_pid" ] || { kill -CONT "$srv_pid" 2>/dev/null; kill "$srv_pid"; wait "$srv_pid" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT

bytes() { numfmt --from=iec "$1"; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {printf "%.3f\n", (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mib() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }

# server: a fresh one with an empty data directory; sets base (http://127.0.0.1:PORT/v1).
server() {
	[ -z "$srv_pid" ] || { kill "$srv_pid"; wait "$srv_pid" 2>/dev/null || true; }
	rm -rf "$work/data" "$work/srv.out" # never read the last server's address
	"$SERVER" --listen 127.0.0.1:0 --data "$work/data" "$@" >"$work/srv.out" 2>>"$work/srv.err" &
	srv_pid=$!
	until base=$(sed -n 's/^listening on //p' "$work/srv.out" 2>/dev/null) && [ -n "$base" ]; do sleep 0.05; done
}

# link MS RATE: a far link (tests/lib/linkem) in front of the server, MS round trip and
# RATE bytes/s per connection; sets lbase, its base URL.
link() {
	[ -z "$link_pid" ] || { kill "$link_pid"; wait "$link_pid" 2>/dev/null || true; }
	rm -f "$work/link.out"
	local port=${base##*:}
	port=${port%%/*}
	"$LINKEM" --upstream "$port" --delay-ms "$(awk -v r="$1" 'BEGIN { print r / 2 }')" \
		--rate "$2" >"$work/link.out" 2>>"$work/link.err" &
	link_pid=$!
	until lbase=$(sed -n 's|^listening on \(.*\)|http://\1/v1|p' "$work/link.out" 2>/dev/null) && [ -n "$lbase" ]; do sleep 0.05; done
}

# mount_fs [OPTIONS...]: the mount on $MOUNT_API (default $base).
mount_fs() {
	rm -rf "$work/cache"
	"$UPLOADFS" -f -o "api_base=${MOUNT_API:-$base},cache_dir=$work/cache" "$@" "$mnt" 2>>"$work/fs.log" &
	fs_pid=$!
	until grep -q " $mnt fuse.uploadfs" /proc/mounts; do
		kill -0 "$fs_pid" 2>/dev/null || { tail -3 "$work/fs.log" >&2; exit 1; }
		sleep 0.05
	done
}

umount_fs() {
	fusermount3 -u "$mnt"
	wait "$fs_pid" 2>/dev/null || true
	fs_pid=
}

create() { # BYTES NAME [BASE]: prints an upload id
	curl -sSf "${3:-$base}/uploads" -H 'Content-Type: application/json' \
		-d "{\"bytes\":$1,\"filename\":\"$2\",\"mime_type\":\"application/octet-stream\",\"purpose\":\"batch\"}" | jq -r .id
}

complete() { # UPLOAD MD5 IDS_FILE [BASE]
	curl -sSf -o /dev/null "${4:-$base}/uploads/$1/complete" -H 'Content-Type: application/json' \
		-d "{\"part_ids\":$(jq -R . <"$3" | jq -sc .),\"md5\":\"$2\"}"
}
