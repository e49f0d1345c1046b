#!/usr/bin/env bash
# Try uploadfs offline: build it, start the local uploadfs-server on a free loopback port,
# upload a file through the Uploads API in two parts with curl, and list it back.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null

work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
build/server/uploadfs-server --listen 127.0.0.1:0 --data "$work/data" >"$work/out" &
server=$!
until base=$(sed -n 's/^listening on //p' "$work/out") && [ -n "$base" ]; do sleep 0.05; done
echo "uploadfs-server: $base"

head -c 12000000 /dev/urandom >"$work/sample.bin"
split -b 8M "$work/sample.bin" "$work/part."
size=$(stat -c %s "$work/sample.bin")
md5=$(md5sum "$work/sample.bin" | cut -d' ' -f1)

upload=$(curl -sSf "$base/uploads" -H 'Content-Type: application/json' \
	-d "{\"bytes\":$size,\"filename\":\"sample.bin\",\"mime_type\":\"application/octet-stream\",\"purpose\":\"batch\"}" | jq -r .id)
echo "created $upload ($size bytes)"
ids=()
for p in "$work"/part.*; do
	ids+=("$(curl -sSf "$base/uploads/$upload/parts" -F "data=@$p" | jq -r .id)")
	echo "  part ${ids[-1]}: $(stat -c %s "$p") bytes"
done
curl -sSf "$base/uploads/$upload/complete" -H 'Content-Type: application/json' \
	-d "$(jq -nc --arg md5 "$md5" '{part_ids: $ARGS.positional, md5: $md5}' --args "${ids[@]}")" |
	jq '{id, status, file: {id: .file.id, bytes: .file.bytes, filename: .file.filename}}'
echo "files on the server:"
curl -sSf "$base/files" | jq -r '.data[] | "  \(.id)  \(.bytes) bytes  \(.filename)"'
fid=$(curl -sSf "$base/files" | jq -r '.data[0].id')
[ "$(curl -sSf "$base/files/$fid/content" | md5sum | cut -d' ' -f1)" = "$md5" ] &&
	echo "downloaded copy matches md5 $md5"
