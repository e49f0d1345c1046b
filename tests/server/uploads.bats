#!/usr/bin/env bats
# The Uploads API of uploadfs-server: create, parts, complete, cancel, expiry.

load ../lib/common

setup() {
	start_server --log-requests "$BATS_TEST_TMPDIR/req.log"
	head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/a"
	head -c 200001 /dev/urandom >"$BATS_TEST_TMPDIR/b"
	cat "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b" >"$BATS_TEST_TMPDIR/ab"
}

teardown() {
	server_teardown
}

# hashed_early UPLOAD: the bytes of UPLOAD's last complete that were hashed as its parts
# arrived, before the complete (the request log says; its line follows the answer).
hashed_early() {
	local i v
	for i in $(seq 100); do
		v=$(jq -r --arg p "/v1/uploads/$1/complete" 'select(.path == $p) | .hashed_early' \
			"$BATS_TEST_TMPDIR/req.log" | tail -1)
		[ -n "$v" ] && { echo "$v"; return 0; }
		sleep 0.05
	done
	return 1
}

@test "create answers a pending Upload with every field" {
	api POST /uploads -H "$J" -d '{"bytes":500001,"filename":"train.jsonl","mime_type":"text/jsonl","purpose":"fine-tune"}'
	[ "$code" = 200 ]
	[ "$(jq -r .object <<<"$body")" = upload ]
	[ "$(jq -r .status <<<"$body")" = pending ]
	[ "$(jq -r .bytes <<<"$body")" = 500001 ]
	[ "$(jq -r .filename <<<"$body")" = train.jsonl ]
	[ "$(jq -r .purpose <<<"$body")" = fine-tune ]
	[[ "$(jq -r .id <<<"$body")" == upload_* ]]
	jq -e '.file == null' <<<"$body"
	created=$(jq .created_at <<<"$body")
	[ "$(jq .expires_at <<<"$body")" = $((created + 3600)) ]
	now=$(date +%s)
	[ $((now - created)) -le 5 ]
}

@test "every purpose of the SDKs is accepted, others are 400 with param purpose" {
	for p in assistants batch fine-tune vision user_data evals; do
		new_upload 1 "$p" >/dev/null
	done
	api POST /uploads -H "$J" -d '{"bytes":1,"filename":"x","mime_type":"x","purpose":"answers"}'
	assert_error 400 purpose
}

@test "create rejects missing, mistyped and unknown fields" {
	api POST /uploads -H "$J" -d '{"filename":"x","mime_type":"x","purpose":"batch"}'
	assert_error 400 bytes
	api POST /uploads -H "$J" -d '{"bytes":"10","filename":"x","mime_type":"x","purpose":"batch"}'
	assert_error 400 bytes
	api POST /uploads -H "$J" -d '{"bytes":-1,"filename":"x","mime_type":"x","purpose":"batch"}'
	assert_error 400 bytes
	api POST /uploads -H "$J" -d '{"bytes":1,"mime_type":"x","purpose":"batch"}'
	assert_error 400 filename
	api POST /uploads -H "$J" -d '{"bytes":1,"filename":"x","purpose":"batch"}'
	assert_error 400 mime_type
	api POST /uploads -H "$J" -d '{"bytes":1,"filename":"x","mime_type":"x"}'
	assert_error 400 purpose
	api POST /uploads -H "$J" -d '{"bytes":1,"filename":"x","mime_type":"x","purpose":"batch","colour":"red"}'
	assert_error 400 colour
	api POST /uploads -H "$J" -d '[1,2]'
	assert_error 400
}

@test "create rejects more than the maximum upload size at create time" {
	api POST /uploads -H "$J" -d '{"bytes":8589934593,"filename":"x","mime_type":"x","purpose":"batch"}'
	assert_error 400 bytes
	api POST /uploads -H "$J" -d '{"bytes":8589934592,"filename":"x","mime_type":"x","purpose":"batch"}'
	[ "$code" = 200 ]
}

@test "create rejects bad JSON, a wrong content type and an empty body" {
	api POST /uploads -H "$J" -d '{"bytes":1,'
	assert_error 400
	api POST /uploads -H "$J" -d '{"bytes":1} trailing'
	assert_error 400
	api POST /uploads -H 'Content-Type: text/plain' -d '{"bytes":1,"filename":"x","mime_type":"x","purpose":"batch"}'
	assert_error 400
	api POST /uploads -H "$J"
	assert_error 400
	printf '{"bytes":1,"filename":"\xff\xfe","mime_type":"x","purpose":"batch"}' >"$BATS_TEST_TMPDIR/bad.json"
	api POST /uploads -H "$J" --data-binary @"$BATS_TEST_TMPDIR/bad.json"
	assert_error 400
}

@test "parts are multipart/form-data with any boundary, by length or chunked" {
	up=$(new_upload 500001)
	api POST "/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/a"
	[ "$code" = 200 ]
	[ "$(jq -r .object <<<"$body")" = upload.part ]
	[ "$(jq -r .upload_id <<<"$body")" = "$up" ]
	[[ "$(jq -r .id <<<"$body")" == part_* ]]
	jq -e '.created_at | type == "number"' <<<"$body"
	p1=$(jq -r .id <<<"$body")
	# A hand-made body: odd boundary, no filename, chunked transfer.
	{
		printf -- '--odd.Boundary_42\r\nContent-Disposition: form-data; name="data"\r\n\r\n'
		cat "$BATS_TEST_TMPDIR/b"
		printf -- '\r\n--odd.Boundary_42--\r\n'
	} >"$BATS_TEST_TMPDIR/body"
	api POST "/uploads/$up/parts" -H 'Content-Type: multipart/form-data; boundary=odd.Boundary_42' \
		-H 'Transfer-Encoding: chunked' --data-binary @"$BATS_TEST_TMPDIR/body"
	[ "$code" = 200 ]
	p2=$(jq -r .id <<<"$body")
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/ab")" "$p1" "$p2"
	[ "$code" = 200 ]
	fid=$(jq -r .file.id <<<"$body")
	curl -sS "$BASE/files/$fid/content" -o "$BATS_TEST_TMPDIR/got"
	cmp "$BATS_TEST_TMPDIR/got" "$BATS_TEST_TMPDIR/ab"
}

@test "part order is decided at complete, not by arrival" {
	up=$(new_upload 500001)
	pb=$(add_part "$up" "$BATS_TEST_TMPDIR/b")
	pa=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/ab")" "$pa" "$pb"
	[ "$code" = 200 ]
	[ "$(jq -r .status <<<"$body")" = completed ]
	jq -e '.file.object == "file" and .file.bytes == 500001 and .file.filename == "f.bin"' <<<"$body"
	fid=$(jq -r .file.id <<<"$body")
	curl -sS "$BASE/files/$fid/content" | cmp - "$BATS_TEST_TMPDIR/ab"
}

@test "parts to an unknown upload are 404, bad bodies are 400 and store nothing" {
	api POST /uploads/upload_nope/parts -F "data=@$BATS_TEST_TMPDIR/a"
	assert_error 404
	up=$(new_upload 300000)
	api POST "/uploads/$up/parts" -H 'Content-Type: application/octet-stream' --data-binary @"$BATS_TEST_TMPDIR/a"
	assert_error 400
	api POST "/uploads/$up/parts" -F "other=@$BATS_TEST_TMPDIR/a"
	assert_error 400 other
	api POST "/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/a" -F "data=@$BATS_TEST_TMPDIR/b"
	assert_error 400 data
	api POST "/uploads/$up/parts" -H 'Content-Type: multipart/form-data'
	assert_error 400
	# truncated: the closing boundary never comes
	{
		printf -- '--XX\r\nContent-Disposition: form-data; name="data"; filename="x"\r\n\r\n'
		cat "$BATS_TEST_TMPDIR/a"
	} >"$BATS_TEST_TMPDIR/trunc"
	api POST "/uploads/$up/parts" -H 'Content-Type: multipart/form-data; boundary=XX' --data-binary @"$BATS_TEST_TMPDIR/trunc"
	assert_error 400
	# nothing above left a part or a temporary file behind
	[ -z "$(find "$SRV_DATA/parts" -type f)" ]
	# and the upload still completes normally
	p=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
	complete "$up" "" "$p"
	[ "$code" = 200 ]
}

@test "a part over --max-part-bytes is 400, whether announced or chunked" {
	stop_server
	start_server --max-part-bytes 100K
	up=$(new_upload 300000)
	api POST "/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/a"
	assert_error 400 data
	api POST "/uploads/$up/parts" -H 'Transfer-Encoding: chunked' -F "data=@$BATS_TEST_TMPDIR/a"
	assert_error 400 data
	head -c 102400 /dev/urandom >"$BATS_TEST_TMPDIR/max"
	add_part "$up" "$BATS_TEST_TMPDIR/max"
	[ -z "$(find "$SRV_DATA/parts" -name '.tmp-*')" ]
}

@test "parts past --max-upload-bytes in total are 400" {
	stop_server
	start_server --max-upload-bytes 400000
	up=$(new_upload 300000)
	add_part "$up" "$BATS_TEST_TMPDIR/a"
	api POST "/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/a"
	assert_error 400 data
}

@test "complete checks the byte count against the listed parts only" {
	up=$(new_upload 300000)
	pa=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
	pb=$(add_part "$up" "$BATS_TEST_TMPDIR/b")
	complete "$up" "" "$pa" "$pb"
	assert_error 400 bytes
	# the unlisted part is ignored
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/a")" "$pa"
	[ "$code" = 200 ]
	fid=$(jq -r .file.id <<<"$body")
	curl -sS "$BASE/files/$fid/content" | cmp - "$BATS_TEST_TMPDIR/a"
}

@test "complete rejects unknown, foreign and duplicate part ids" {
	up=$(new_upload 600000)
	other=$(new_upload 300000)
	pa=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
	px=$(add_part "$other" "$BATS_TEST_TMPDIR/a")
	complete "$up" "" "$pa" part_doesnotexist
	assert_error 400 part_ids
	complete "$up" "" "$pa" "$px"
	assert_error 400 part_ids
	complete "$up" "" "$pa" "$pa"
	assert_error 400 part_ids
	api POST "/uploads/$up/complete" -H "$J" -d '{"part_ids":"nope"}'
	assert_error 400 part_ids
	api POST "/uploads/$up/complete" -H "$J" -d '{}'
	assert_error 400 part_ids
	api POST "/uploads/$up/complete" -H "$J" -d "{\"part_ids\":[\"$pa\"],\"sha\":\"x\"}"
	assert_error 400 sha
}

@test "an md5 mismatch is 400 and leaves the upload pending" {
	up=$(new_upload 300000)
	pa=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
	complete "$up" 00000000000000000000000000000000 "$pa"
	assert_error 400 md5
	complete "$up" not-hex "$pa"
	assert_error 400 md5
	[ "$(api GET /files; jq '.data | length' <<<"$body")" = 0 ]
	# still pending: uppercase hex of the right md5 completes it
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/a" | tr a-f A-F)" "$pa"
	[ "$code" = 200 ]
	[ "$(jq -r .status <<<"$body")" = completed ]
}

@test "parts are hashed as they arrive: a refused complete, more parts, then the right one" {
	# parts in start order are hashed as they arrive; complete hashes only the rest. A
	# refused complete keeps the upload (and that work) going.
	cat "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b" "$BATS_TEST_TMPDIR/a" >"$BATS_TEST_TMPDIR/aba"
	up=$(new_upload 800001)
	pa=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
	pb=$(add_part "$up" "$BATS_TEST_TMPDIR/b")
	complete "$up" 00000000000000000000000000000000 "$pa" "$pb"
	assert_error 400 bytes
	pa2=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
	complete "$up" 00000000000000000000000000000000 "$pa" "$pb" "$pa2"
	assert_error 400 md5
	[ "$(hashed_early "$up")" = 800001 ]
	: >"$BATS_TEST_TMPDIR/req.log"
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/aba")" "$pa" "$pb" "$pa2"
	[ "$code" = 200 ]
	[ "$(hashed_early "$up")" = 800001 ]
	fid=$(jq -r .file.id <<<"$body")
	curl -sS "$BASE/files/$fid/content" | cmp - "$BATS_TEST_TMPDIR/aba"
	# no copy: the content is the parts themselves, linked in order
	[ "$(ls "$SRV_DATA/content/$fid")" = "$(printf '%s\n' 0000000000 0000000001 0000000002)" ]
	cmp "$SRV_DATA/content/$fid/0000000001" "$BATS_TEST_TMPDIR/b"
	# a cancelled upload leaves nothing behind
	up2=$(new_upload 300000)
	add_part "$up2" "$BATS_TEST_TMPDIR/a" >/dev/null
	api POST "/uploads/$up2/cancel"
	[ "$code" = 200 ]
	[ -z "$(ls -A "$SRV_DATA/content" | grep -v "^$fid\$")" ]
	[ -z "$(ls -A "$SRV_DATA/parts")" ]
}

@test "parts that finish out of the order they started are hashed in start order" {
	# a slow first part and a fast second one: the second is stored first and waits;
	# once the first is stored both are hashed, in the order the requests started
	up=$(new_upload 500001)
	curl -sS --limit-rate 150K "$BASE/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/a" >"$BATS_TEST_TMPDIR/slow" &
	slow=$!
	sleep 0.5
	pb=$(add_part "$up" "$BATS_TEST_TMPDIR/b")
	wait "$slow"
	pa=$(jq -r .id "$BATS_TEST_TMPDIR/slow")
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/ab")" "$pa" "$pb"
	[ "$code" = 200 ]
	[ "$(hashed_early "$up")" = 500001 ]
	curl -sS "$BASE/files/$(jq -r .file.id <<<"$body")/content" | cmp - "$BATS_TEST_TMPDIR/ab"
	# listed in another order than they started: hashed from the parts at complete
	up=$(new_upload 500001)
	pa=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
	pb=$(add_part "$up" "$BATS_TEST_TMPDIR/b")
	cat "$BATS_TEST_TMPDIR/b" "$BATS_TEST_TMPDIR/a" >"$BATS_TEST_TMPDIR/ba"
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/ba")" "$pb" "$pa"
	[ "$code" = 200 ]
	[ "$(hashed_early "$up")" = 0 ]
	curl -sS "$BASE/files/$(jq -r .file.id <<<"$body")/content" | cmp - "$BATS_TEST_TMPDIR/ba"
}

@test "parts placed by the client (part@OFFSET) are hashed in the file's order whatever order they arrive in" {
	head -c 100000 /dev/urandom >"$BATS_TEST_TMPDIR/c"
	cat "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b" "$BATS_TEST_TMPDIR/c" >"$BATS_TEST_TMPDIR/abc"
	up=$(new_upload 600001)
	# the last part first, then the first, then the middle one
	api POST "/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/c;filename=part@500001"
	pc=$(jq -r .id <<<"$body")
	api POST "/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/a;filename=part@0"
	pa=$(jq -r .id <<<"$body")
	api POST "/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/b;filename=part@300000"
	pb=$(jq -r .id <<<"$body")
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/abc")" "$pa" "$pb" "$pc"
	[ "$code" = 200 ]
	[ "$(hashed_early "$up")" = 600001 ]
	curl -sS "$BASE/files/$(jq -r .file.id <<<"$body")/content" | cmp - "$BATS_TEST_TMPDIR/abc"
	# a place that is wrong only costs the early work: complete hashes the parts itself
	up=$(new_upload 500001)
	api POST "/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/a;filename=part@7"
	pa=$(jq -r .id <<<"$body")
	api POST "/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/b;filename=part@300000"
	pb=$(jq -r .id <<<"$body")
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/ab")" "$pa" "$pb"
	[ "$code" = 200 ]
	[ "$(hashed_early "$up")" = 0 ]
	curl -sS "$BASE/files/$(jq -r .file.id <<<"$body")/content" | cmp - "$BATS_TEST_TMPDIR/ab"
}

@test "a part request in flight holds the early hash back; one that fails leaves a gap it steps over" {
	ALLOW_LOG='closed by remote side with incomplete request'
	for when in during after; do
		up=$(new_upload 500001)
		pa=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
		# the second request starts, then its client goes away in the middle of the body
		curl -sS --limit-rate 50K "$BASE/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/a" >/dev/null 2>&1 &
		dead=$!
		sleep 0.5
		# the third finishes while the second is still in flight: it waits behind it
		pb=$(add_part "$up" "$BATS_TEST_TMPDIR/b")
		if [ "$when" = after ]; then
			kill "$dead"
			wait "$dead" || true
			want=500001
		else
			want=300000 # only the part before the one in flight
		fi
		complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/ab")" "$pa" "$pb"
		[ "$code" = 200 ]
		[ "$(hashed_early "$up")" = "$want" ]
		curl -sS "$BASE/files/$(jq -r .file.id <<<"$body")/content" | cmp - "$BATS_TEST_TMPDIR/ab"
		kill "$dead" 2>/dev/null || true
		wait "$dead" || true
	done
}

@test "content in parts: a download reads across them, and a delete meanwhile does not cut it" {
	head -c 30000000 /dev/urandom >"$BATS_TEST_TMPDIR/big"
	split -b 7000000 -a 1 "$BATS_TEST_TMPDIR/big" "$BATS_TEST_TMPDIR/piece."
	up=$(new_upload 30000000)
	ids=()
	for p in "$BATS_TEST_TMPDIR"/piece.*; do ids+=("$(add_part "$up" "$p")"); done
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/big")" "${ids[@]}"
	[ "$code" = 200 ]
	fid=$(jq -r .file.id <<<"$body")
	[ "$(ls "$SRV_DATA/content/$fid" | wc -l)" = 5 ]
	curl -sS --limit-rate 15M "$BASE/files/$fid/content" -o "$BATS_TEST_TMPDIR/got" &
	dl=$!
	sleep 0.5
	api DELETE "/files/$fid"
	[ "$code" = 200 ]
	wait "$dl"
	cmp "$BATS_TEST_TMPDIR/got" "$BATS_TEST_TMPDIR/big"
	# the last reader gone, the content is freed
	for i in $(seq 50); do [ -z "$(ls -A "$SRV_DATA/content")" ] && break; sleep 0.1; done
	[ -z "$(ls -A "$SRV_DATA/content")" ]
}

@test "a repeated complete gets the same answer, a different one is 400" {
	up=$(new_upload 300000)
	pa=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/a")" "$pa"
	[ "$code" = 200 ]
	first=$body
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/a")" "$pa"
	[ "$code" = 200 ]
	[ "$(jq -r .file.id <<<"$body")" = "$(jq -r .file.id <<<"$first")" ]
	api GET /files
	[ "$(jq '.data | length' <<<"$body")" = 1 ]
	complete "$up" "" "$pa"
	assert_error 400
}

@test "no parts and no cancel after complete" {
	up=$(new_upload 300000)
	pa=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
	complete "$up" "" "$pa"
	[ "$code" = 200 ]
	api POST "/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/a"
	assert_error 400
	api POST "/uploads/$up/cancel"
	assert_error 400
	# its parts are gone from disk once the file exists
	[ ! -e "$SRV_DATA/parts/$up" ]
}

@test "the parts of a completed upload are freed after the answer, and at restart if need be" {
	up=$(new_upload 500001)
	pa=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
	pb=$(add_part "$up" "$BATS_TEST_TMPDIR/b")
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/ab")" "$pa" "$pb"
	[ "$code" = 200 ]
	for i in $(seq 100); do
		[ -z "$(find "$SRV_DATA/parts" -type f)" ] && break
		sleep 0.05
	done
	[ -z "$(find "$SRV_DATA/parts" -mindepth 1)" ]
	# a crash between the answer and the removal leaves a .gone- directory: startup removes it
	stop_server
	mkdir "$SRV_DATA/parts/.gone-$up"
	cp "$BATS_TEST_TMPDIR/a" "$SRV_DATA/parts/.gone-$up/$pa"
	start_server
	[ -z "$(find "$SRV_DATA/parts" -mindepth 1)" ]
	curl -sS "$BASE/files/$(jq -r .file.id <<<"$body")" | jq -e '.bytes == 500001'
}

@test "an empty upload completes with no parts" {
	up=$(new_upload 0 batch empty.txt)
	complete "$up" d41d8cd98f00b204e9800998ecf8427e
	[ "$code" = 200 ]
	fid=$(jq -r .file.id <<<"$body")
	[ "$(jq -r .file.bytes <<<"$body")" = 0 ]
	[ "$(curl -sS "$BASE/files/$fid/content" | wc -c)" = 0 ]
}

@test "cancel takes an empty body, {} and no content type, and is final" {
	up1=$(new_upload 10)
	api POST "/uploads/$up1/cancel"
	[ "$code" = 200 ]
	[ "$(jq -r .status <<<"$body")" = cancelled ]
	[ "$(jq -r .object <<<"$body")" = upload ]
	up2=$(new_upload 10)
	api POST "/uploads/$up2/cancel" -H "$J" -d '{}'
	[ "$code" = 200 ]
	up3=$(new_upload 10)
	api POST "/uploads/$up3/cancel" -H "$J"
	[ "$code" = 200 ]
	api POST "/uploads/$up3/cancel" -H "$J" -d 'not json'
	assert_error 400
	# a repeated cancel answers the same; parts and complete are refused
	api POST "/uploads/$up1/cancel"
	[ "$code" = 200 ]
	[ "$(jq -r .status <<<"$body")" = cancelled ]
	api POST "/uploads/$up1/parts" -F "data=@$BATS_TEST_TMPDIR/a"
	assert_error 400
	complete "$up1" ""
	assert_error 400
	api POST /uploads/upload_unknown/cancel
	assert_error 404
}

@test "cancel removes the parts already stored" {
	up=$(new_upload 500001)
	add_part "$up" "$BATS_TEST_TMPDIR/a"
	[ -n "$(find "$SRV_DATA/parts/$up" -type f)" ]
	api POST "/uploads/$up/cancel"
	[ "$code" = 200 ]
	[ ! -e "$SRV_DATA/parts/$up" ]
}

@test "an upload expires after --expire-seconds: no parts, no complete" {
	stop_server
	start_server --expire-seconds 3
	up=$(new_upload 300000)
	pa=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
	api POST /uploads -H "$J" -d '{"bytes":1,"filename":"x","mime_type":"x","purpose":"batch"}'
	[ "$(jq '.expires_at - .created_at' <<<"$body")" = 3 ]
	expires=$(jq .expires_at <<<"$body") # created after $up: expires no sooner
	while [ "$(date +%s)" -le "$expires" ]; do sleep 0.2; done
	api POST "/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/a"
	assert_error 400
	[[ "$(jq -r .error.message <<<"$body")" == *expired* ]]
	complete "$up" "" "$pa"
	assert_error 400
	[[ "$(jq -r .error.message <<<"$body")" == *expired* ]]
	[ ! -e "$SRV_DATA/parts/$up" ]
}

@test "expires_after sets the File's expiry; batch files default to 30 days" {
	api POST /uploads -H "$J" -d '{"bytes":0,"filename":"x","mime_type":"x","purpose":"vision","expires_after":{"anchor":"created_at","seconds":7200}}'
	[ "$code" = 200 ]
	up=$(jq -r .id <<<"$body")
	complete "$up" ""
	[ "$(jq '.file.expires_at - .file.created_at' <<<"$body")" = 7200 ]
	up=$(new_upload 0 batch)
	complete "$up" ""
	[ "$(jq '.file.expires_at - .file.created_at' <<<"$body")" = 2592000 ]
	up=$(new_upload 0 assistants)
	complete "$up" ""
	jq -e '.file.expires_at == null' <<<"$body"
	api POST /uploads -H "$J" -d '{"bytes":0,"filename":"x","mime_type":"x","purpose":"vision","expires_after":{"anchor":"created_at","seconds":60}}'
	assert_error 400 expires_after.seconds
}

@test "parts go up in parallel" {
	for i in 0 1 2 3 4 5 6 7; do
		head -c $((100000 + i)) /dev/urandom >"$BATS_TEST_TMPDIR/p$i"
	done
	cat "$BATS_TEST_TMPDIR"/p{0..7} >"$BATS_TEST_TMPDIR/all"
	up=$(new_upload "$(stat -c %s "$BATS_TEST_TMPDIR/all")")
	pids=()
	for i in 0 1 2 3 4 5 6 7; do
		curl -sS "$BASE/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/p$i" >"$BATS_TEST_TMPDIR/r$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
	ids=()
	for i in 0 1 2 3 4 5 6 7; do
		ids+=("$(jq -r .id "$BATS_TEST_TMPDIR/r$i")")
	done
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/all")" "${ids[@]}"
	[ "$code" = 200 ]
	fid=$(jq -r .file.id <<<"$body")
	curl -sS "$BASE/files/$fid/content" | cmp - "$BATS_TEST_TMPDIR/all"
}
