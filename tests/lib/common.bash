# Shared by every bats file: where the build is, a server per test, and small API helpers.
# Tests only ever talk to 127.0.0.1.

UPLOADFS_BUILD=${UPLOADFS_BUILD:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)/build}
SERVER="$UPLOADFS_BUILD/server/uploadfs-server"
J='Content-Type: application/json'

# start_server [flags...]: a fresh server on a free port; sets BASE, SRV_PID, SRV_DATA.
start_server() {
	SRV_DATA=${SRV_DATA:-$BATS_TEST_TMPDIR/data}
	"$SERVER" --listen 127.0.0.1:0 --data "$SRV_DATA" "$@" \
		>"$BATS_TEST_TMPDIR/srv.out" 2>>"$BATS_TEST_TMPDIR/srv.err" &
	SRV_PID=$!
	local i
	for i in $(seq 100); do
		BASE=$(sed -n 's/^listening on //p' "$BATS_TEST_TMPDIR/srv.out")
		[ -n "$BASE" ] && return 0
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "server did not start:" >&2
	cat "$BATS_TEST_TMPDIR/srv.err" >&2
	return 1
}

# server_content FILE_ID: the bytes the server keeps for a file, read from its data
# directory (one file, or the upload's parts in their order: docs/SERVER.md).
server_content() {
	local c=$SRV_DATA/content/$1
	if [ -d "$c" ]; then cat "$c"/*; else cat "$c"; fi
}

# make_tls DIR: test certificates (tests/lib/make-tls.sh says which).
make_tls() {
	bash "$BATS_TEST_DIRNAME/../lib/make-tls.sh" "$1"
}

stop_server() {
	[ -n "${SRV_PID:-}" ] || return 0
	kill "$SRV_PID" 2>/dev/null || true
	wait "$SRV_PID" 2>/dev/null || true
	SRV_PID=
}

# restart_server [flags...]: a server again on the port and data of the one stopped.
restart_server() {
	local port=${BASE##*:}
	port=${port%/v1}
	"$SERVER" --listen "127.0.0.1:$port" --data "$SRV_DATA" "$@" \
		>"$BATS_TEST_TMPDIR/srv2.out" 2>>"$BATS_TEST_TMPDIR/srv.err" &
	SRV_PID=$!
	local i
	for i in $(seq 100); do
		grep -q listening "$BATS_TEST_TMPDIR/srv2.out" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

kill9_server() {
	kill -9 "$SRV_PID"
	wait "$SRV_PID" 2>/dev/null || true
	SRV_PID=
}

# What the server logs of a client that went away mid-request (kill -9, an abandoned
# part): libmicrohttpd says one or the other depending on where the request was cut.
CUT_REQUEST_LOG='incomplete request|Socket has been disconnected'

# The server's stderr must hold only lines the test expected (ALLOW_LOG, an ERE).
check_server_log() {
	local f="$BATS_TEST_TMPDIR/srv.err"
	[ -f "$f" ] || return 0
	local bad
	bad=$(grep -vE "${ALLOW_LOG:-^$}" "$f" || true)
	if [ -n "$bad" ]; then
		echo "unexpected server log lines:" >&2
		echo "$bad" >&2
		return 1
	fi
}

server_teardown() {
	stop_server
	check_server_log
}

# api METHOD PATH [curl args...]: sets $code (HTTP status) and $body.
api() {
	local m=$1 p=$2 out
	shift 2
	out=$(curl -sS -X "$m" -w '\n%{http_code}' "$BASE$p" "$@") || true
	code=${out##*$'\n'}
	body=${out%$'\n'*}
}

# new_upload BYTES [PURPOSE] [FILENAME]: prints the upload id.
new_upload() {
	api POST /uploads -H "$J" \
		-d "{\"bytes\":$1,\"filename\":\"${3:-f.bin}\",\"mime_type\":\"application/octet-stream\",\"purpose\":\"${2:-batch}\"}"
	[ "$code" = 200 ] || { echo "create failed: $code $body" >&2; return 1; }
	jq -r .id <<<"$body"
}

# add_part UPLOAD FILE: prints the part id.
add_part() {
	api POST "/uploads/$1/parts" -F "data=@$2"
	[ "$code" = 200 ] || { echo "part failed: $code $body" >&2; return 1; }
	jq -r .id <<<"$body"
}

# complete UPLOAD MD5 PART...: sets code/body.
complete() {
	local up=$1 md5=$2 ids
	shift 2
	ids=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
	[ $# -gt 0 ] || ids='[]'
	if [ -n "$md5" ]; then
		api POST "/uploads/$up/complete" -H "$J" -d "{\"part_ids\":$ids,\"md5\":\"$md5\"}"
	else
		api POST "/uploads/$up/complete" -H "$J" -d "{\"part_ids\":$ids}"
	fi
}

md5_of() { md5sum "$1" | cut -d' ' -f1; }

# upload_file PATH PURPOSE [NAME]: one-part upload through the Uploads API; prints file id.
upload_file() {
	local size up part
	size=$(stat -c %s "$1")
	up=$(new_upload "$size" "$2" "${3:-$(basename "$1")}") || return 1
	part=$(add_part "$up" "$1") || return 1
	complete "$up" "$(md5_of "$1")" "$part"
	[ "$code" = 200 ] || { echo "complete failed: $code $body" >&2; return 1; }
	jq -r .file.id <<<"$body"
}

# assert_error STATUS [PARAM]: the last response is an OpenAI error envelope.
assert_error() {
	[ "$code" = "$1" ] || { echo "expected $1, got $code: $body" >&2; return 1; }
	jq -e '.error | has("message") and has("type") and has("param") and has("code")' \
		<<<"$body" >/dev/null || { echo "not an error envelope: $body" >&2; return 1; }
	jq -e '.error.message | length > 0' <<<"$body" >/dev/null
	if [ -n "${2:-}" ]; then
		[ "$(jq -r .error.param <<<"$body")" = "$2" ] ||
			{ echo "expected param $2: $body" >&2; return 1; }
	fi
}
