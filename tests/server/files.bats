#!/usr/bin/env bats
# The Files API of uploadfs-server: list and its pages, create, retrieve, content, delete.

load ../lib/common

setup() {
	start_server
	head -c 12345 /dev/urandom >"$BATS_TEST_TMPDIR/small"
}

teardown() {
	server_teardown
}

@test "an empty list has every field, with null ids" {
	api GET /files
	[ "$code" = 200 ]
	jq -e '.object == "list" and .data == [] and .first_id == null and .last_id == null and .has_more == false' <<<"$body"
}

@test "list pages with limit and after, newest first, and has_more is right" {
	ids=()
	for i in 1 2 3 4 5 6 7; do
		ids+=("$(upload_file "$BATS_TEST_TMPDIR/small" batch "f$i")")
	done
	api GET '/files?limit=3'
	[ "$code" = 200 ]
	[ "$(jq -r '[.data[].filename] | join(",")' <<<"$body")" = f7,f6,f5 ]
	jq -e '.has_more == true' <<<"$body"
	[ "$(jq -r .first_id <<<"$body")" = "${ids[6]}" ]
	[ "$(jq -r .last_id <<<"$body")" = "${ids[4]}" ]
	api GET "/files?limit=3&after=${ids[4]}"
	[ "$(jq -r '[.data[].filename] | join(",")' <<<"$body")" = f4,f3,f2 ]
	jq -e '.has_more == true' <<<"$body"
	api GET "/files?limit=3&after=${ids[1]}"
	[ "$(jq -r '[.data[].filename] | join(",")' <<<"$body")" = f1 ]
	jq -e '.has_more == false' <<<"$body"
	# exactly a full last page: has_more is false
	api GET "/files?limit=2&after=${ids[2]}"
	[ "$(jq -r '[.data[].filename] | join(",")' <<<"$body")" = f2,f1 ]
	jq -e '.has_more == false' <<<"$body"
}

@test "list in ascending order, filtered by purpose, and after a deleted cursor" {
	a=$(upload_file "$BATS_TEST_TMPDIR/small" batch a)
	b=$(upload_file "$BATS_TEST_TMPDIR/small" vision b)
	c=$(upload_file "$BATS_TEST_TMPDIR/small" batch c)
	d=$(upload_file "$BATS_TEST_TMPDIR/small" batch d)
	api GET '/files?order=asc'
	[ "$(jq -r '[.data[].filename] | join(",")' <<<"$body")" = a,b,c,d ]
	api GET '/files?purpose=batch&limit=2&order=asc'
	[ "$(jq -r '[.data[].filename] | join(",")' <<<"$body")" = a,c ]
	jq -e '.has_more == true' <<<"$body"
	api GET "/files?purpose=batch&order=asc&after=$c"
	[ "$(jq -r '[.data[].filename] | join(",")' <<<"$body")" = d ]
	api GET '/files?purpose=vision'
	[ "$(jq -r '[.data[].id] | join(",")' <<<"$body")" = "$b" ]
	# the cursor's file is deleted between two pages: the walk goes on
	api DELETE "/files/$b"
	api GET "/files?order=asc&after=$b"
	[ "$(jq -r '[.data[].filename] | join(",")' <<<"$body")" = c,d ]
	api GET "/files?after=$b"
	[ "$(jq -r '[.data[].filename] | join(",")' <<<"$body")" = a ]
}

@test "list rejects a bad limit, order or cursor" {
	for q in limit=0 limit=10001 limit=x limit=-1 order=up after=nonsense; do
		api GET "/files?$q"
		assert_error 400
	done
	api GET '/files?limit=10000'
	[ "$code" = 200 ]
}

@test "a listing of 2500 files pages through every one exactly once" {
	# Made through the files API, which is the quickest way to have many.
	for i in $(seq 2500); do echo "$i"; done | xargs -P 8 -I{} \
		curl -sS -o /dev/null "$BASE/files" -F purpose=batch -F "file=@$BATS_TEST_TMPDIR/small;filename=n{}"
	seen=0 after= pages=0
	: >"$BATS_TEST_TMPDIR/names"
	while :; do
		api GET "/files?limit=1000${after:+&after=$after}"
		[ "$code" = 200 ]
		jq -r '.data[].filename' <<<"$body" >>"$BATS_TEST_TMPDIR/names"
		pages=$((pages + 1))
		[ "$(jq -r .has_more <<<"$body")" = true ] || break
		after=$(jq -r .last_id <<<"$body")
	done
	[ "$pages" = 3 ]
	[ "$(wc -l <"$BATS_TEST_TMPDIR/names")" = 2500 ]
	[ "$(sort -u "$BATS_TEST_TMPDIR/names" | wc -l)" = 2500 ]
}

@test "POST /v1/files stores a file in one request" {
	api POST /files -F purpose=batch -F "file=@$BATS_TEST_TMPDIR/small;filename=data.jsonl"
	[ "$code" = 200 ]
	jq -e '.object == "file" and .bytes == 12345 and .filename == "data.jsonl" and .purpose == "batch" and .status == "processed" and .status_details == null' <<<"$body"
	[[ "$(jq -r .id <<<"$body")" == file-* ]]
	fid=$(jq -r .id <<<"$body")
	curl -sS "$BASE/files/$fid/content" | cmp - "$BATS_TEST_TMPDIR/small"
	api POST /files -F purpose=vision -F "file=@$BATS_TEST_TMPDIR/small" -F 'expires_after[anchor]=created_at' -F 'expires_after[seconds]=3600'
	[ "$code" = 200 ]
	[ "$(jq '.expires_at - .created_at' <<<"$body")" = 3600 ]
}

@test "POST /v1/files rejects a missing file or purpose, a bad purpose and unknown fields" {
	api POST /files -F "file=@$BATS_TEST_TMPDIR/small"
	assert_error 400 purpose
	api POST /files -F purpose=batch
	assert_error 400 file
	api POST /files -F purpose=answers -F "file=@$BATS_TEST_TMPDIR/small"
	assert_error 400 purpose
	api POST /files -F purpose=batch -F colour=red -F "file=@$BATS_TEST_TMPDIR/small"
	assert_error 400 colour
	api POST /files -H "$J" -d '{"purpose":"batch"}'
	assert_error 400
	[ -z "$(find "$SRV_DATA/content" -type f)" ]
}

@test "POST /v1/files over --max-file-bytes is 400 File is too large" {
	stop_server
	start_server --max-file-bytes 10000
	api POST /files -F purpose=batch -F "file=@$BATS_TEST_TMPDIR/small"
	assert_error 400 file
	[[ "$(jq -r .error.message <<<"$body")" == *"too large"* ]]
	api POST /files -F purpose=batch -H 'Transfer-Encoding: chunked' -F "file=@$BATS_TEST_TMPDIR/small"
	assert_error 400 file
	[ -z "$(find "$SRV_DATA/content" -type f)" ]
}

@test "retrieve a file, and 404 for an unknown one" {
	fid=$(upload_file "$BATS_TEST_TMPDIR/small" batch x.jsonl)
	api GET "/files/$fid"
	[ "$code" = 200 ]
	jq -e --arg id "$fid" '.id == $id and .object == "file" and .bytes == 12345 and .filename == "x.jsonl" and (.created_at|type) == "number"' <<<"$body"
	api GET /files/file-doesnotexist
	assert_error 404
	last=${fid: -1}
	[ "$last" = X ] && other=Y || other=X
	api GET "/files/${fid%?}$other"
	assert_error 404
}

@test "delete answers the deleted object, and the file is gone" {
	fid=$(upload_file "$BATS_TEST_TMPDIR/small" batch)
	api DELETE "/files/$fid"
	[ "$code" = 200 ]
	jq -e --arg id "$fid" '. == {"id": $id, "object": "file", "deleted": true}' <<<"$body"
	api GET "/files/$fid"
	assert_error 404
	api GET "/files/$fid/content"
	assert_error 404
	api DELETE "/files/$fid"
	assert_error 404
	[ ! -e "$SRV_DATA/content/$fid" ]
}

@test "content is application/octet-stream and byte-exact" {
	fid=$(upload_file "$BATS_TEST_TMPDIR/small" batch)
	ct=$(curl -sS -o "$BATS_TEST_TMPDIR/got" -w '%{content_type}' "$BASE/files/$fid/content")
	[ "$ct" = application/octet-stream ]
	cmp "$BATS_TEST_TMPDIR/got" "$BATS_TEST_TMPDIR/small"
}

@test "content of assistants, user_data, fine-tune and evals files is refused as OpenAI does" {
	for p in assistants user_data fine-tune evals; do
		fid=$(upload_file "$BATS_TEST_TMPDIR/small" "$p")
		api GET "/files/$fid/content"
		assert_error 400
		[ "$(jq -r .error.message <<<"$body")" = "Not allowed to download files of purpose: $p" ]
	done
	for p in batch vision; do
		fid=$(upload_file "$BATS_TEST_TMPDIR/small" "$p")
		api GET "/files/$fid/content"
		[ "$code" = 200 ]
	done
}

@test "--allow-downloads serves every purpose" {
	stop_server
	start_server --allow-downloads
	fid=$(upload_file "$BATS_TEST_TMPDIR/small" assistants)
	curl -sSf "$BASE/files/$fid/content" | cmp - "$BATS_TEST_TMPDIR/small"
}

@test "a file deleted while it is downloaded still arrives whole" {
	head -c 50000000 /dev/urandom >"$BATS_TEST_TMPDIR/big"
	fid=$(upload_file "$BATS_TEST_TMPDIR/big" batch)
	curl -sS --limit-rate 20M "$BASE/files/$fid/content" -o "$BATS_TEST_TMPDIR/got" &
	dl=$!
	sleep 0.5
	api DELETE "/files/$fid"
	[ "$code" = 200 ]
	wait "$dl"
	cmp "$BATS_TEST_TMPDIR/got" "$BATS_TEST_TMPDIR/big"
}

@test "Range on content: a single range is 206 with Content-Range, a suffix, an open end, past the end 416, several ranges the whole" {
	fid=$(upload_file "$BATS_TEST_TMPDIR/small" batch)
	range() { curl -sS -r "$1" -D "$BATS_TEST_TMPDIR/h" -o "$BATS_TEST_TMPDIR/got" -w '%{http_code}' "$BASE/files/$fid/content"; }
	[ "$(range 100-199)" = 206 ]
	cmp "$BATS_TEST_TMPDIR/got" <(tail -c +101 "$BATS_TEST_TMPDIR/small" | head -c 100)
	grep -qi '^content-range: bytes 100-199/12345' "$BATS_TEST_TMPDIR/h"
	[ "$(range -45)" = 206 ]
	cmp "$BATS_TEST_TMPDIR/got" <(tail -c 45 "$BATS_TEST_TMPDIR/small")
	[ "$(range 12000-)" = 206 ]
	cmp "$BATS_TEST_TMPDIR/got" <(tail -c +12001 "$BATS_TEST_TMPDIR/small")
	[ "$(range 12000-99999)" = 206 ] # an end past the file is the file's end
	grep -qi '^content-range: bytes 12000-12344/12345' "$BATS_TEST_TMPDIR/h"
	[ "$(range 12345-)" = 416 ]
	grep -qi '^content-range: bytes \*/12345' "$BATS_TEST_TMPDIR/h"
	[ "$(range 0-9,20-29)" = 200 ]
	cmp "$BATS_TEST_TMPDIR/got" "$BATS_TEST_TMPDIR/small"
	grep -qi '^accept-ranges: bytes' "$BATS_TEST_TMPDIR/h"
}

@test "Range across the parts of a completed upload's content" {
	head -c 3000000 /dev/urandom >"$BATS_TEST_TMPDIR/big"
	split -b 1000000 -a 1 "$BATS_TEST_TMPDIR/big" "$BATS_TEST_TMPDIR/piece."
	up=$(new_upload 3000000)
	ids=()
	for p in "$BATS_TEST_TMPDIR"/piece.*; do ids+=("$(add_part "$up" "$p")"); done
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/big")" "${ids[@]}"
	fid=$(jq -r .file.id <<<"$body")
	# from the middle of the first part to the middle of the third
	curl -sS -r 999000-2000999 "$BASE/files/$fid/content" | cmp - <(tail -c +999001 "$BATS_TEST_TMPDIR/big" | head -c 1002000)
	curl -sS -r 2000000- "$BASE/files/$fid/content" | cmp - "$BATS_TEST_TMPDIR/piece.c"
}
