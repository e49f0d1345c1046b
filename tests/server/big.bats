#!/usr/bin/env bats
# A 1 GiB upload through uploadfs-server: 64 MiB parts, four in flight, md5 checked by the
# server at complete and again on the downloaded copy.

load ../lib/common

setup() {
	start_server
}

teardown() {
	server_teardown
}

@test "a 1 GiB upload in 64 MiB parts, 4 in flight, is verified end to end" {
	f=$BATS_TEST_TMPDIR/big
	head -c 1073741824 /dev/urandom >"$f"
	md5=$(md5_of "$f")
	up=$(new_upload 1073741824 batch big.bin)
	# each part is a byte range of the file, sent straight from it
	for i in $(seq 0 15); do echo "$i"; done | xargs -P 4 -I{} sh -c \
		'dd if="$1" bs=64M skip="$2" count=1 status=none | curl -sS -f -o "$3.{}" "$4/uploads/$5/parts" -F "data=@-;filename=p"' \
		_ "$f" {} "$BATS_TEST_TMPDIR/part" "$BASE" "$up"
	ids=()
	for i in $(seq 0 15); do ids+=("$(jq -r .id "$BATS_TEST_TMPDIR/part.$i")"); done
	# a wrong md5 is refused first: the server really hashed the bytes
	complete "$up" "$(printf '%s' "$md5" | tr 0-9a-f 1-9a-f0)" "${ids[@]}"
	assert_error 400 md5
	complete "$up" "$md5" "${ids[@]}"
	[ "$code" = 200 ]
	[ "$(jq -r .file.bytes <<<"$body")" = 1073741824 ]
	fid=$(jq -r .file.id <<<"$body")
	[ "$(curl -sS "$BASE/files/$fid/content" | md5sum | cut -d' ' -f1)" = "$md5" ]
	rm -f "$f"
}
