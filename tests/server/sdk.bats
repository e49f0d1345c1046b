#!/usr/bin/env bats
# The official Node SDK (npm "openai", pinned) over the whole Uploads + Files flow against
# uploadfs-server: tiny and large parts, buffered and streamed, a wrong md5, cancel, a
# listing of several pages, content, retrieve, delete (tests/lib/sdkflow.mjs).

load ../lib/common

SDK_VERSION=6.30.1

setup_file() {
	command -v npm >/dev/null && command -v node >/dev/null || return 0
	# installed once per build directory, from the npm registry
	SDK_DIR=$UPLOADFS_BUILD/node-sdk
	if [ ! -f "$SDK_DIR/node_modules/openai/package.json" ] ||
		[ "$(jq -r .version "$SDK_DIR/node_modules/openai/package.json")" != "$SDK_VERSION" ]; then
		mkdir -p "$SDK_DIR"
		echo '{"private": true}' >"$SDK_DIR/package.json"
		npm install --prefix "$SDK_DIR" --no-audit --no-fund --silent "openai@$SDK_VERSION" >&3
	fi
}

setup() {
	command -v npm >/dev/null && command -v node >/dev/null ||
		skip "node and npm are not installed: the official SDK cannot run here"
	start_server --log-requests "$BATS_TEST_TMPDIR/req.log"
}

teardown() {
	server_teardown
}

@test "openai-node $SDK_VERSION: the whole Uploads and Files flow" {
	run node "$BATS_TEST_DIRNAME/../lib/sdkflow.mjs" "$BASE" "$UPLOADFS_BUILD/node-sdk" "$BATS_TEST_TMPDIR"
	echo "$output"
	[ "$status" = 0 ]
	[ "$(grep -c '^ok ' <<<"$output")" = 18 ]
	# it did speak as the SDK does: its user agent on every request
	[ "$(jq -r '.headers["user-agent"]' "$BATS_TEST_TMPDIR/req.log" | grep -vc '^OpenAI/JS')" = 0 ]
}
