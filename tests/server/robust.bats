#!/usr/bin/env bats
# uploadfs-server under stress: auth, restarts and crashes, faults, bad input, names,
# many connections, flags.

load ../lib/common

setup() {
	head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/a"
}

teardown() {
	server_teardown
}

@test "the listening line is printed once it accepts, on the port it chose" {
	start_server
	[[ "$BASE" =~ ^http://127\.0\.0\.1:[0-9]+/v1$ ]]
	port=${BASE##*:}
	port=${port%/v1}
	[ "$port" -gt 0 ]
	api GET /files
	[ "$code" = 200 ]
}

@test "bad flags are refused with one clear line and exit 2" {
	for args in "--listen nohost" "--listen 127.0.0.1:99999" "--fail-rate 2" "--fail-rate x" \
		"--max-part-bytes 8Q" "--expire-seconds 0" "--latency-ms -1" "--fail-kind sometimes" \
		"--bogus" "stray"; do
		run "$SERVER" $args --data "$BATS_TEST_TMPDIR/d"
		[ "$status" = 2 ]
		[ -n "$output" ]
	done
	run "$SERVER" --version
	[ "$status" = 0 ]
	[[ "$output" == "uploadfs-server "* ]]
	run "$SERVER" --help
	[ "$status" = 0 ]
	[[ "$output" == *--fail-rate* ]]
}

@test "--api-key: no key and a wrong key are 401, the right key passes" {
	start_server --api-key sk-test-123
	api GET /files
	assert_error 401
	api GET /files -H 'Authorization: Bearer sk-test-124'
	assert_error 401
	[ "$(jq -r .error.code <<<"$body")" = invalid_api_key ]
	[[ "$body" != *sk-test* ]]
	api GET /files -H 'Authorization: Bearer sk-test-12'
	assert_error 401
	api GET /files -H 'Authorization: Bearer sk-test-123'
	[ "$code" = 200 ]
	# a part with a wrong key is refused and stores nothing
	api POST /uploads/upload_x/parts -F "data=@$BATS_TEST_TMPDIR/a"
	assert_error 401
}

@test "--api-key-file needs mode 0600 or 0400" {
	printf 'sk-file-key\n' >"$BATS_TEST_TMPDIR/key"
	chmod 644 "$BATS_TEST_TMPDIR/key"
	run "$SERVER" --api-key-file "$BATS_TEST_TMPDIR/key" --data "$BATS_TEST_TMPDIR/d"
	[ "$status" = 2 ]
	[[ "$output" == *"0600"* ]]
	[[ "$output" != *sk-file-key* ]]
	chmod 400 "$BATS_TEST_TMPDIR/key"
	start_server --api-key-file "$BATS_TEST_TMPDIR/key"
	api GET /files -H 'Authorization: Bearer sk-file-key'
	[ "$code" = 200 ]
	api GET /files -H 'Authorization: Bearer sk-file-key2'
	assert_error 401
}

@test "uploads, parts and files survive a restart" {
	start_server
	head -c 200000 /dev/urandom >"$BATS_TEST_TMPDIR/b"
	cat "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b" >"$BATS_TEST_TMPDIR/ab"
	fid=$(upload_file "$BATS_TEST_TMPDIR/a" batch kept)
	up=$(new_upload 500000)
	pa=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
	cancelled=$(new_upload 1)
	api POST "/uploads/$cancelled/cancel"
	stop_server
	start_server
	pb=$(add_part "$up" "$BATS_TEST_TMPDIR/b")
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/ab")" "$pa" "$pb"
	[ "$code" = 200 ]
	api GET "/files/$fid"
	[ "$code" = 200 ]
	[ "$(jq -r .filename <<<"$body")" = kept ]
	curl -sS "$BASE/files/$fid/content" | cmp - "$BATS_TEST_TMPDIR/a"
	api POST "/uploads/$cancelled/parts" -F "data=@$BATS_TEST_TMPDIR/a"
	assert_error 400
	# a completed upload stays completed: a retried complete gets the same file
	first=$(jq -r .file.id <<<"$body")
	stop_server
	start_server
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/ab")" "$pa" "$pb"
	[ "$code" = 200 ]
	api GET /files
	[ "$(jq '.data | length' <<<"$body")" = 2 ]
}

@test "kill -9 in the middle of a part leaves no part and no temporary file" {
	start_server
	head -c 30000000 /dev/urandom >"$BATS_TEST_TMPDIR/big"
	up=$(new_upload 30000000)
	curl -sS --limit-rate 5M "$BASE/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/big" >/dev/null 2>&1 &
	cpid=$!
	sleep 1
	[ -n "$(find "$SRV_DATA/parts/$up" -name '.tmp-*')" ]
	kill9_server
	wait "$cpid" || true
	start_server
	[ -z "$(find "$SRV_DATA" -name '.tmp-*' -o -name '*.tmp')" ]
	# the upload is still pending and takes the part again
	p=$(add_part "$up" "$BATS_TEST_TMPDIR/big")
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/big")" "$p"
	[ "$code" = 200 ]
}

@test "kill -9 during complete, at any moment: the file is absent and the complete can be retried, or it is whole" {
	start_server
	head -c 120000000 /dev/urandom >"$BATS_TEST_TMPDIR/big"
	split -b 30000000 -d "$BATS_TEST_TMPDIR/big" "$BATS_TEST_TMPDIR/chunk"
	# listed in the reverse of their arrival: complete hashes every byte, then links
	cat $(ls -r "$BATS_TEST_TMPDIR"/chunk*) >"$BATS_TEST_TMPDIR/want"
	md5=$(md5_of "$BATS_TEST_TMPDIR/want")
	local n=0 delay
	for delay in 0.02 0.08 0.15 0.25 0.4; do
		up=$(new_upload 120000000)
		ids=()
		for c in "$BATS_TEST_TMPDIR"/chunk*; do ids=("$(add_part "$up" "$c")" "${ids[@]}"); done
		complete "$up" "$md5" "${ids[@]}" &
		cpid=$!
		sleep "$delay"
		kill9_server
		wait "$cpid" || true
		start_server
		[ -z "$(find "$SRV_DATA" -name '.tmp-*' -o -name '*.tmp' -o -name '.gone-*')" ]
		api GET /files
		got=$(jq '.data | length' <<<"$body")
		if [ "$got" = $((n + 1)) ]; then
			# it got through before the kill: then the file must be whole
			fid=$(jq -r '.data[0].id' <<<"$body")
			[ "$(curl -sS "$BASE/files/$fid/content" | md5sum | cut -d' ' -f1)" = "$md5" ]
		else
			[ "$got" = "$n" ]
		fi
		# either way a (re)tried complete ends with exactly one whole file more
		complete "$up" "$md5" "${ids[@]}"
		[ "$code" = 200 ]
		n=$((n + 1))
		api GET /files
		[ "$(jq '.data | length' <<<"$body")" = "$n" ]
		fid=$(jq -r '.data[0].id' <<<"$body")
		[ "$(curl -sS "$BASE/files/$fid/content" | md5sum | cut -d' ' -f1)" = "$md5" ]
	done
}

@test "a torn or foreign record in the data directory does not stop the server" {
	start_server
	fid=$(upload_file "$BATS_TEST_TMPDIR/a" batch)
	stop_server
	printf '{"id":"upload_x", "bytes":' >"$SRV_DATA/uploads/upload_torn.json"
	printf 'garbage' >"$SRV_DATA/files/file-garbage.json"
	printf 'half' >"$SRV_DATA/files/$fid.json.tmp"
	ALLOW_LOG='ignoring unreadable record'
	start_server
	api GET "/files/$fid"
	[ "$code" = 200 ]
	[ ! -e "$SRV_DATA/files/$fid.json.tmp" ]
	grep -q 'ignoring unreadable record' "$BATS_TEST_TMPDIR/srv.err"
}

@test "a file record whose content is gone is dropped, orphan content removed" {
	start_server
	f1=$(upload_file "$BATS_TEST_TMPDIR/a" batch one)
	f2=$(upload_file "$BATS_TEST_TMPDIR/a" batch two)
	stop_server
	rm -r "$SRV_DATA/content/$f1"
	rm "$SRV_DATA/files/$f2.json"
	ALLOW_LOG='its content is missing'
	start_server
	api GET /files
	[ "$(jq '.data | length' <<<"$body")" = 0 ]
	[ ! -e "$SRV_DATA/content/$f2" ]
}

@test "two servers cannot share one --data directory" {
	start_server
	run "$SERVER" --listen 127.0.0.1:0 --data "$SRV_DATA"
	[ "$status" = 1 ]
	[[ "$output" == *"in use"* ]]
}

@test "file names are data: ../, /, long and odd names never become paths" {
	start_server
	for name in '../escape' '/etc/passwd' '..' 'a/b/c.jsonl' 'spaces and ünïcödé.txt' "$(head -c 4096 /dev/zero | tr '\0' n)"; do
		up=$(new_upload 0 batch "$name")
		complete "$up" ""
		[ "$code" = 200 ]
		[ "$(jq -r .file.filename <<<"$body")" = "$name" ]
	done
	# only the store's own layout exists under --data, and nothing appeared outside it
	[ -z "$(find "$SRV_DATA" -mindepth 1 -maxdepth 1 ! -name uploads ! -name parts ! -name files ! -name content ! -name LOCK)" ]
	[ ! -e "$BATS_TEST_TMPDIR/escape" ]
	[ ! -e "$(dirname "$SRV_DATA")/escape" ]
	for f in "$SRV_DATA"/content/*; do [[ "$(basename "$f")" == file-* ]]; done
	# rejected: a NUL, control characters, more than 4 KiB, empty
	api POST /uploads -H "$J" -d '{"bytes":0,"filename":"a\u0000b","mime_type":"x","purpose":"batch"}'
	assert_error 400 filename
	api POST /uploads -H "$J" -d '{"bytes":0,"filename":"a\nb","mime_type":"x","purpose":"batch"}'
	assert_error 400 filename
	long=$(head -c 4097 /dev/zero | tr '\0' n)
	api POST /uploads -H "$J" -d "{\"bytes\":0,\"filename\":\"$long\",\"mime_type\":\"x\",\"purpose\":\"batch\"}"
	assert_error 400 filename
	api POST /uploads -H "$J" -d '{"bytes":0,"filename":"","mime_type":"x","purpose":"batch"}'
	assert_error 400 filename
	api POST /files -F purpose=batch -F "file=@$BATS_TEST_TMPDIR/a;filename=../../up"
	[ "$code" = 200 ]
	[ "$(jq -r .filename <<<"$body")" = ../../up ]
}

@test "ids in paths are checked: traversal and junk are 404" {
	start_server
	for p in '/files/..%2f..%2fLOCK' '/files/../files' '/files/file-%00' '/uploads/../uploads/x/parts' '/files/a/b/c'; do
		api GET "$p" --path-as-is
		[ "$code" = 404 ]
	done
	api POST '/uploads/..%2Fx/cancel'
	assert_error 404
}

@test "malformed input: huge headers, oversized JSON, junk methods; the server lives on" {
	ALLOW_LOG='HTTP response code is 431|header was too big'
	start_server
	printf 'X-Big: %s\n' "$(head -c 300000 /dev/zero | tr '\0' x)" >"$BATS_TEST_TMPDIR/hdr"
	api GET /files -H @"$BATS_TEST_TMPDIR/hdr"
	[ "$code" -ge 400 ] && [ "$code" -lt 500 ]
	head -c 9000000 /dev/zero | tr '\0' ' ' >"$BATS_TEST_TMPDIR/pad"
	{ printf '{"bytes":1,'; cat "$BATS_TEST_TMPDIR/pad"; printf '}'; } >"$BATS_TEST_TMPDIR/huge.json"
	api POST /uploads -H "$J" --data-binary @"$BATS_TEST_TMPDIR/huge.json"
	assert_error 400
	api PUT /files
	assert_error 404
	api PATCH /uploads
	assert_error 404
	api GET /uploads
	assert_error 404
	api POST /files/file-x/content
	assert_error 404
	# a raw, broken request line and a connection that says nothing
	port=${BASE##*:}; port=${port%/v1}
	printf 'GARBAGE\r\n\r\n' | timeout 5 bash -c "cat >/dev/tcp/127.0.0.1/$port" || true
	timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; sleep 1" || true
	api GET /files
	[ "$code" = 200 ]
}

@test "a body on a route that takes none is 400" {
	start_server
	fid=$(upload_file "$BATS_TEST_TMPDIR/a" batch)
	api DELETE "/files/$fid" -H "$J" -d '{"x":1}'
	assert_error 400
	api GET "/files/$fid"
	[ "$code" = 200 ]
}

@test "200 concurrent connections are all answered" {
	start_server
	fid=$(upload_file "$BATS_TEST_TMPDIR/a" batch)
	seq 200 | xargs -P 200 -I{} curl -sS -o /dev/null -w '%{http_code}\n' "$BASE/files/$fid/content" >"$BATS_TEST_TMPDIR/codes"
	[ "$(grep -c '^200$' "$BATS_TEST_TMPDIR/codes")" = 200 ]
}

@test "--fail-rate injects 500s, 429s with Retry-After, and dropped connections" {
	start_server --fail-rate 0.5 --seed 7
	up=$(new_upload 1)
	printf x >"$BATS_TEST_TMPDIR/one"
	: >"$BATS_TEST_TMPDIR/codes"
	for i in $(seq 60); do
		curl -sS -D "$BATS_TEST_TMPDIR/h$i" -o /dev/null -w '%{http_code}\n' "$BASE/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/one" >>"$BATS_TEST_TMPDIR/codes" 2>/dev/null || echo drop >>"$BATS_TEST_TMPDIR/codes"
	done
	grep -q '^200$' "$BATS_TEST_TMPDIR/codes"
	grep -q '^500$' "$BATS_TEST_TMPDIR/codes"
	grep -q '^429$' "$BATS_TEST_TMPDIR/codes"
	grep -qE '^(drop|000)$' "$BATS_TEST_TMPDIR/codes"
	ok=$(grep -c '^200$' "$BATS_TEST_TMPDIR/codes")
	[ "$ok" -gt 15 ] && [ "$ok" -lt 45 ]
	for i in $(seq 60); do
		if grep -q '^HTTP/1.1 429' "$BATS_TEST_TMPDIR/h$i"; then
			grep -qi '^retry-after: 1' "$BATS_TEST_TMPDIR/h$i"
			grep -qi '^retry-after-ms: ' "$BATS_TEST_TMPDIR/h$i"
		fi
	done
	# reads are never failed
	for i in $(seq 20); do api GET /files; [ "$code" = 200 ]; done
}

@test "--seed makes the fault sequence repeatable" {
	printf x >"$BATS_TEST_TMPDIR/one"
	for run in 1 2; do
		SRV_DATA=$BATS_TEST_TMPDIR/data$run
		start_server --fail-rate 0.4 --seed 42 --fail-kind 500
		up=$(new_upload 1)
		for i in $(seq 30); do
			curl -sS -o /dev/null -w '%{http_code}\n' "$BASE/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/one"
		done >"$BATS_TEST_TMPDIR/seq$run"
		stop_server
	done
	cmp "$BATS_TEST_TMPDIR/seq1" "$BATS_TEST_TMPDIR/seq2"
	grep -q 500 "$BATS_TEST_TMPDIR/seq1"
}

@test "--fail-first with --fail-kind 429 fails exactly the first requests" {
	start_server --fail-first 2 --fail-kind 429
	up=$(new_upload 300000)
	api POST "/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/a"
	assert_error 429
	api POST "/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/a"
	assert_error 429
	p=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
	complete "$up" "" "$p"
	[ "$code" = 200 ]
}

@test "--fail-kind drop-after stores the part and loses the answer" {
	start_server --fail-first 1 --fail-kind drop-after
	up=$(new_upload 300000)
	run curl -sS "$BASE/uploads/$up/parts" -F "data=@$BATS_TEST_TMPDIR/a"
	[ "$status" != 0 ]
	[ "$(find "$SRV_DATA/parts/$up" -name 'part_*' | wc -l)" = 1 ]
	# the client re-sends; the orphan is ignored at complete
	p=$(add_part "$up" "$BATS_TEST_TMPDIR/a")
	complete "$up" "$(md5_of "$BATS_TEST_TMPDIR/a")" "$p"
	[ "$code" = 200 ]
}

@test "--latency-ms delays every response" {
	start_server --latency-ms 400
	t=$(curl -sS -o /dev/null -w '%{time_total}' "$BASE/files")
	awk -v t="$t" 'BEGIN { exit !(t >= 0.4) }'
}

@test "--no-uploads answers /v1/uploads with 404 and keeps the Files API" {
	start_server --no-uploads
	api POST /uploads -H "$J" -d '{"bytes":1,"filename":"x","mime_type":"x","purpose":"batch"}'
	assert_error 404
	api POST /uploads/upload_x/parts -F "data=@$BATS_TEST_TMPDIR/a"
	assert_error 404
	api POST /files -F purpose=batch -F "file=@$BATS_TEST_TMPDIR/a"
	[ "$code" = 200 ]
}

@test "--log-requests writes one line per request with keys redacted" {
	start_server --api-key sk-secret-abc --log-requests "$BATS_TEST_TMPDIR/req.log"
	api GET /files -H 'Authorization: Bearer sk-secret-abc' -H 'x-portkey-api-key: pk-secret-def' -H 'x-portkey-provider: openai'
	api GET /files/file-nope -H 'Authorization: Bearer sk-secret-abc'
	stop_server
	[ "$(wc -l <"$BATS_TEST_TMPDIR/req.log")" = 2 ]
	! grep -q 'sk-secret-abc' "$BATS_TEST_TMPDIR/req.log"
	! grep -q 'pk-secret-def' "$BATS_TEST_TMPDIR/req.log"
	first=$(head -n1 "$BATS_TEST_TMPDIR/req.log")
	jq -e '.method == "GET" and .path == "/v1/files" and .status == 200' <<<"$first"
	jq -e '.headers.authorization == "[REDACTED]" and .headers["x-portkey-api-key"] == "[REDACTED]" and .headers["x-portkey-provider"] == "openai"' <<<"$first"
	[ "$(tail -n1 "$BATS_TEST_TMPDIR/req.log" | jq .status)" = 404 ]
}

@test "a multipart field without a name is 400, not a crash (found by fuzz_server_http)" {
	start_server
	up=$(new_upload 5)
	for path in /files "/uploads/$up/parts"; do
		printf -- '--XY\r\nContent-Disposition: form-data; filename="a"\r\n\r\nhello\r\n--XY--\r\n' >"$BATS_TEST_TMPDIR/body"
		api POST "$path" -H 'Content-Type: multipart/form-data; boundary=XY' --data-binary @"$BATS_TEST_TMPDIR/body"
		assert_error 400
	done
	api GET /files
	[ "$code" = 200 ]
}
