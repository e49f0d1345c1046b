#!/usr/bin/env bash
# Try uploadfs offline: build it, start the local uploadfs-server on a free loopback port,
# mount it, copy a file in with cp, and show what the mount and the server say about it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null

work=$(mktemp -d)
mnt=$work/mnt
mkdir -p "$mnt"
server= fs=
cleanup() {
	if grep -q " $mnt fuse.uploadfs" /proc/mounts; then fusermount3 -u "$mnt"; fi
	[ -z "$fs" ] || wait "$fs" 2>/dev/null || true
	[ -z "$server" ] || { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT

build/server/uploadfs-server --listen 127.0.0.1:0 --data "$work/data" >"$work/server.out" &
server=$!
until base=$(sed -n 's/^listening on //p' "$work/server.out") && [ -n "$base" ]; do sleep 0.05; done
echo "uploadfs-server: $base"

build/fs/uploadfs -f -o "api_base=$base,cache_dir=$work/cache" "$mnt" 2>"$work/uploadfs.log" &
fs=$!
until grep -q " $mnt fuse.uploadfs" /proc/mounts; do sleep 0.05; done
echo "mounted on $mnt"

head -c 20000000 /dev/urandom >"$work/sample.bin"
echo "\$ cp sample.bin $mnt/"
cp "$work/sample.bin" "$mnt/"
echo "\$ ls -l $mnt"
ls -l "$mnt"
echo "\$ getfattr -d -m - $mnt/sample.bin"
getfattr -d -m - "$mnt/sample.bin" 2>/dev/null
echo "md5 of the local file: $(md5sum <"$work/sample.bin" | cut -d' ' -f1)"
echo "files on the server:"
curl -sSf "$base/files" | jq -r '.data[] | "  \(.id)  \(.bytes) bytes  \(.filename)  \(.purpose)"'
echo "uploadfs log:"
sed 's/^/  /' "$work/uploadfs.log"
