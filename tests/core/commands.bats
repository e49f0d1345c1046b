#!/usr/bin/env bats
# uploadfs put|ls|rm|get|cancel: the library's upload without FUSE, against the local server.

load ../lib/common

UPLOADFS="$UPLOADFS_BUILD/fs/uploadfs"

setup() {
	REQ="$BATS_TEST_TMPDIR/req.log"
	export XDG_CACHE_HOME="$BATS_TEST_TMPDIR/xdg" HOME="$BATS_TEST_TMPDIR"
	CACHE="$BATS_TEST_TMPDIR/cache"
	head -c 5500000 /dev/urandom >"$BATS_TEST_TMPDIR/train.jsonl"
	SRC="$BATS_TEST_TMPDIR/train.jsonl"
}

teardown() {
	[ -z "${PUT_PID:-}" ] || kill -9 "$PUT_PID" 2>/dev/null || true
	server_teardown
}

# up ARGS...: the command against the test's server, its resume records under $CACHE
up() { OPENAI_BASE_URL=$BASE "$UPLOADFS" "$@" --cache-dir "$CACHE"; }

# paths_logged RE: how many requests the server logged whose path matches RE
paths_logged() { { [ -f "$REQ" ] && jq -r .path "$REQ"; } | grep -cE "$1" || true; }
parts_logged() { paths_logged '^/v1/uploads/[^/]+/parts$'; }
# wait_parts N: until the server has logged N parts (10 s at most)
wait_parts() {
	local i
	for i in $(seq 200); do
		[ "$(parts_logged)" -ge "$1" ] && return 0
		sleep 0.05
	done
}

no_pending() {
	local n
	n=$(grep -l '"status":"pending"' "$SRV_DATA"/uploads/*.json 2>/dev/null | wc -l)
	[ "$n" = 0 ] || { echo "$n sessions left pending" >&2; return 1; }
}

@test "put uploads a file in parallel parts: prints its id; --json is the File object" {
	start_server --allow-downloads --log-requests "$REQ"
	run up put "$SRC" --part-size 1M --purpose fine-tune
	[ "$status" = 0 ]
	[[ "$output" =~ ^file-[A-Za-z0-9]+$ ]]
	[ "$(server_content "$output" | md5sum | cut -d' ' -f1)" = "$(md5_of "$SRC")" ]
	[ "$(parts_logged)" = 6 ]
	# the MD5 went with the complete, and the name's MIME type with the create
	[ "$(paths_logged '/complete$')" = 1 ]
	jq -r .mime_type "$SRV_DATA"/uploads/*.json | grep -qx application/jsonl
	run up put "$SRC" --filename other.jsonl --purpose batch --mime-type text/plain --json -q
	[ "$status" = 0 ]
	[ "$(jq -r .object <<<"$output")" = file ]
	[ "$(jq -r .filename <<<"$output")" = other.jsonl ]
	[ "$(jq -r .purpose <<<"$output")" = batch ]
	[ "$(jq -r .bytes <<<"$output")" = 5500000 ]
	[[ "$(jq -r .id <<<"$output")" == file-* ]]
	no_pending
	# nothing left to resume
	[ -z "$(ls "$CACHE/put" 2>/dev/null)" ]
}

@test "put - reads stdin: streamed with --bytes, spooled without; a wrong count fails and leaves nothing" {
	start_server --allow-downloads --log-requests "$REQ"
	run bash -c "cat '$SRC' | OPENAI_BASE_URL=$BASE '$UPLOADFS' put - --bytes 5500000 --filename s1.jsonl --part-size 1M"
	[ "$status" = 0 ]
	[ "$(server_content "$output" | md5sum | cut -d' ' -f1)" = "$(md5_of "$SRC")" ]
	run bash -c "cat '$SRC' | OPENAI_BASE_URL=$BASE '$UPLOADFS' put - --filename s2.jsonl --cache-dir '$CACHE'"
	[ "$status" = 0 ]
	[ "$(server_content "$output" | md5sum | cut -d' ' -f1)" = "$(md5_of "$SRC")" ]
	# the spool is gone with the command
	[ -z "$(ls "$CACHE/put")" ]
	run bash -c "cat '$SRC' | OPENAI_BASE_URL=$BASE '$UPLOADFS' put - --bytes 6000000 --filename short.jsonl --part-size 1M"
	[ "$status" = 1 ]
	[[ "$output" == *"ended at byte 5500000"* ]]
	run bash -c "cat '$SRC' | OPENAI_BASE_URL=$BASE '$UPLOADFS' put - --bytes 5000000 --filename long.jsonl --part-size 1M"
	[ "$status" = 1 ]
	[[ "$output" == *"more than the 5000000 bytes"* ]]
	run up put - <"$SRC"
	[ "$status" = 2 ]
	[[ "$output" == *"--filename is required for stdin"* ]]
	no_pending
	[ "$(curl -sS "$BASE/files" | jq '[.data[].filename] | sort | join(",")' -r)" = s1.jsonl,s2.jsonl ]
}

@test "a failed put says why and exits 1: a wrong MD5, a refused key, a bad option" {
	start_server --api-key sk-right
	printf 'sk-wrong\n' >"$BATS_TEST_TMPDIR/key"
	chmod 600 "$BATS_TEST_TMPDIR/key"
	run up put "$SRC" --api-key-file "$BATS_TEST_TMPDIR/key"
	[ "$status" = 1 ]
	[[ "$output" == *"HTTP 401"* ]]
	[[ "$output" != *sk-wrong* ]]
	chmod 644 "$BATS_TEST_TMPDIR/key"
	run up put "$SRC" --api-key-file "$BATS_TEST_TMPDIR/key"
	[ "$status" = 1 ]
	[[ "$output" == *"0600"* ]]
	printf 'sk-right\n' >"$BATS_TEST_TMPDIR/key"
	chmod 600 "$BATS_TEST_TMPDIR/key"
	run up put "$SRC" --api-key-file "$BATS_TEST_TMPDIR/key" --md5 0123456789abcdef0123456789abcdef --part-size 1M
	[ "$status" = 1 ]
	[[ "$output" == *"not the expected 0123456789abcdef0123456789abcdef"* ]]
	run up put "$SRC" --purpose nonsense
	[ "$status" = 2 ]
	[[ "$output" == *"assistants, batch, fine-tune"* ]]
	[[ "$output" == *"--help"* ]]
	run up put "$SRC" --bogus
	[ "$status" = 2 ]
	[[ "$output" == *"uploadfs put --help"* ]]
	run "$UPLOADFS" put --help
	[ "$status" = 0 ]
	[[ "$output" == *"usage: uploadfs put FILE|-"* ]]
	# the wrong MD5 left no session and no file
	no_pending
	[ "$(curl -sS -H 'Authorization: Bearer sk-right' "$BASE/files" | jq '.data | length')" = 0 ]
}

@test "put killed mid-way resumes: the same command sends only the missing parts, in the same session" {
	start_server --allow-downloads --log-requests "$REQ" --latency-ms 300
	head -c 8400000 /dev/urandom >"$SRC"
	# the binary itself in the background (a function would run in a subshell: kill
	# would end the shell and leave the put running)
	OPENAI_BASE_URL=$BASE "$UPLOADFS" put "$SRC" --part-size 1M --parallel 1 -q \
		--cache-dir "$CACHE" >"$BATS_TEST_TMPDIR/put.out" 2>&1 &
	PUT_PID=$!
	wait_parts 3
	kill -9 "$PUT_PID"
	wait "$PUT_PID" 2>/dev/null || true
	PUT_PID=
	local before
	before=$(parts_logged)
	[ "$before" -ge 3 ]
	[ "$(ls "$CACHE/put" | grep -c '\.json$')" = 1 ]
	run up put "$SRC" --part-size 1M --parallel 1
	[ "$status" = 0 ]
	[ "$(server_content "$output" | md5sum | cut -d' ' -f1)" = "$(md5_of "$SRC")" ]
	# one session in all, and at most the parts in flight at the kill sent twice
	[ "$(paths_logged '^/v1/uploads$')" = 1 ]
	[ "$(parts_logged)" -le $((9 + 2)) ]
	[ "$(parts_logged)" -ge 9 ]
	[ -z "$(ls "$CACHE/put")" ]
	no_pending
}

@test "a resumed put whose file changed meanwhile starts a new session; the server has the new bytes" {
	start_server --allow-downloads --log-requests "$REQ" --latency-ms 300
	head -c 6300000 /dev/urandom >"$SRC"
	OPENAI_BASE_URL=$BASE "$UPLOADFS" put "$SRC" --part-size 1M --parallel 1 -q \
		--cache-dir "$CACHE" >/dev/null 2>&1 &
	PUT_PID=$!
	wait_parts 2
	kill -9 "$PUT_PID"
	wait "$PUT_PID" 2>/dev/null || true
	PUT_PID=
	# the first MiB changes, the size does not
	head -c 1048576 /dev/urandom | dd of="$SRC" conv=notrunc status=none
	run up put "$SRC" --part-size 1M --parallel 1
	[ "$status" = 0 ]
	[ "$(server_content "$output" | md5sum | cut -d' ' -f1)" = "$(md5_of "$SRC")" ]
	[ "$(paths_logged '^/v1/uploads$')" = 2 ]
	no_pending
}

@test "ls lists the remote files (--purpose, --json); rm deletes them; a wrong id exits 1" {
	start_server --allow-downloads
	local a b
	a=$(up put "$SRC" --filename a.jsonl --purpose batch -q)
	b=$(up put "$SRC" --filename b.jsonl --purpose fine-tune -q)
	run up ls
	[ "$status" = 0 ]
	[ "${#lines[@]}" = 2 ]
	[[ "$output" == *"$a"*"5500000"*"batch"*"a.jsonl"* ]] || [[ "$output" == *"$b"*"fine-tune"*"b.jsonl"* ]]
	run up ls --json
	[ "$(jq length <<<"$output")" = 2 ]
	[ "$(jq -r '[.[].filename] | sort | join(",")' <<<"$output")" = a.jsonl,b.jsonl ]
	run up ls --purpose batch --json
	[ "$(jq -r '.[].id' <<<"$output")" = "$a" ]
	run up rm "$a"
	[ "$status" = 0 ]
	run up ls --json
	[ "$(jq -r '.[].id' <<<"$output")" = "$b" ]
	run up rm "$a"
	[ "$status" = 1 ]
	[[ "$output" == *"$a"*"HTTP 404"* ]]
}

@test "get downloads to stdout or to a file; a .part left by an interrupted get is resumed with a Range" {
	start_server --allow-downloads --log-requests "$REQ"
	local id
	id=$(up put "$SRC" -q)
	up get "$id" | cmp - "$SRC"
	run up get "$id" -o "$BATS_TEST_TMPDIR/out"
	[ "$status" = 0 ]
	cmp "$BATS_TEST_TMPDIR/out" "$SRC"
	[ ! -e "$BATS_TEST_TMPDIR/out.part" ]
	# an interrupted get left the first 2000000 bytes
	head -c 2000000 "$SRC" >"$BATS_TEST_TMPDIR/again.part"
	run up get "$id" -o "$BATS_TEST_TMPDIR/again"
	[ "$status" = 0 ]
	[[ "$output" == *"resuming"*"at byte 2000000"* ]]
	cmp "$BATS_TEST_TMPDIR/again" "$SRC"
	[ "$(jq -r 'select(.path | endswith("/content")) | .headers.range' "$REQ" | tail -n 1)" = bytes=2000000- ]
	run up get file-doesnotexist -o "$BATS_TEST_TMPDIR/none"
	[ "$status" = 1 ]
	[[ "$output" == *"HTTP 404"* ]]
}

@test "cancel cancels an upload session; --json is the Upload object" {
	start_server
	local u1 u2
	u1=$(new_upload 10)
	u2=$(new_upload 10)
	run up cancel "$u1"
	[ "$status" = 0 ]
	[ "$output" = "$u1 cancelled" ]
	run up cancel "$u2" --json
	[ "$(jq -r .status <<<"$output")" = cancelled ]
	[ "$(jq -r .id <<<"$output")" = "$u2" ]
	run up cancel upload_doesnotexist
	[ "$status" = 1 ]
	[[ "$output" == *"upload_doesnotexist"*"HTTP 404"* ]]
	run up cancel
	[ "$status" = 2 ]
	no_pending
}

@test "a word that is no command and no directory says so (uploadfs upload FILE)" {
	cd "$BATS_TEST_TMPDIR"
	run "$UPLOADFS" upload "$SRC"
	[ "$status" = 2 ]
	[[ "$output" == *"'upload' is not a command"*"put, ls, rm, get, cancel"* ]]
}

@test "a put that fails for want of the server keeps its session, and the same command finishes it" {
	start_server --allow-downloads --log-requests "$REQ" --latency-ms 300
	head -c 8400000 /dev/urandom >"$SRC"
	OPENAI_BASE_URL=$BASE "$UPLOADFS" put "$SRC" --part-size 1M --parallel 1 --retries 1 \
		--retry-window 1 --cache-dir "$CACHE" >"$BATS_TEST_TMPDIR/put.out" 2>&1 &
	PUT_PID=$!
	wait_parts 3
	kill9_server
	local st=0
	wait "$PUT_PID" || st=$?
	PUT_PID=
	[ "$st" = 1 ]
	grep -q "run the same command again" "$BATS_TEST_TMPDIR/put.out"
	# the session was not cancelled: its record is there, and so are its parts
	[ "$(ls "$CACHE/put" | grep -c '\.json$')" = 1 ]
	restart_server --allow-downloads --log-requests "$REQ"
	run up put "$SRC" --part-size 1M --parallel 1
	[ "$status" = 0 ]
	[ "$(server_content "$output" | md5sum | cut -d' ' -f1)" = "$(md5_of "$SRC")" ]
	[ "$(paths_logged '^/v1/uploads$')" = 1 ]
	[ "$(paths_logged '/cancel$')" = 0 ]
	no_pending
}

@test "put draws a progress bar on a terminal: at most 80 columns, bytes, rate and ETA; none when piped" {
	start_server --allow-downloads --latency-ms 200
	head -c 8400000 /dev/urandom >"$SRC"
	local sock="ufput$$" i
	tmux -L "$sock" -u new-session -d -s put -x 80 -y 10 \
		"OPENAI_BASE_URL=$BASE '$UPLOADFS' put '$SRC' --part-size 1M --parallel 1 --cache-dir '$CACHE' >'$BATS_TEST_TMPDIR/id'; sleep 30"
	for i in $(seq 100); do
		[ -s "$BATS_TEST_TMPDIR/id" ] && break
		tmux -L "$sock" capture-pane -p -t put >>"$BATS_TEST_TMPDIR/cap"
		sleep 0.1
	done
	tmux -L "$sock" kill-session -t put
	# the bar went to the terminal (stderr), the id alone to the file
	[[ "$(cat "$BATS_TEST_TMPDIR/id")" =~ ^file-[A-Za-z0-9]+$ ]]
	grep -qE '^train\.jsonl +\[#*\.*\] +[0-9]+% .*MiB/s +[0-9]+:[0-9]{2}' "$BATS_TEST_TMPDIR/cap"
	! awk 'length($0) > 80' "$BATS_TEST_TMPDIR/cap" | grep -q .
	# piped: no bar, no control characters
	run up put "$SRC" --part-size 1M --filename piped.bin
	[ "$status" = 0 ]
	[[ "$output" =~ ^file-[A-Za-z0-9]+$ ]]
}
