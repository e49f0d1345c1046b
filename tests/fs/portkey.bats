#!/usr/bin/env bats
# Portkey through the mount: with PORTKEY_* set, every request the server sees carries the
# x-portkey-* headers (keys redacted in its log), and no Authorization header when there
# is no OpenAI key; PORTKEY_BASE_URL is the default base.

load ../lib/mount

setup() {
	fs_setup --allow-downloads --log-requests "$BATS_TEST_TMPDIR/req.log"
	unset OPENAI_API_KEY OPENAI_BASE_URL
}

teardown() {
	fs_teardown
}

# every request uploadfs made (the test's own curl calls aside) satisfies the jq filter $1
all_requests() {
	local mine='select(.headers["user-agent"] | startswith("uploadfs/"))'
	[ "$(jq -c "$mine" "$BATS_TEST_TMPDIR/req.log" | wc -l)" -gt 3 ]
	[ "$(jq -c "$mine | select(($1) | not)" "$BATS_TEST_TMPDIR/req.log" | wc -l)" = 0 ] || {
		jq -c "$mine | select(($1) | not)" "$BATS_TEST_TMPDIR/req.log" | head -n 3 >&2
		return 1
	}
}

@test "PORTKEY_* from the environment: the headers on every request, no Authorization" {
	export PORTKEY_API_KEY=pk-mount-secret-1 PORTKEY_VIRTUAL_KEY=vk-mount-secret-2
	export PORTKEY_PROVIDER=openai PORTKEY_CONFIG=pc-config-7 PORTKEY_CUSTOM_HOST=https://llm.example.internal/v1
	export PORTKEY_BASE_URL=$BASE
	# no api_base: PORTKEY_BASE_URL is the default
	MNT=$BATS_TEST_TMPDIR/mnt
	mkdir -p "$MNT"
	"$UPLOADFS" -f -o "cache_dir=$BATS_TEST_TMPDIR/cache,part_size=1M" "$MNT" >>"$BATS_TEST_TMPDIR/fs.log" 2>&1 &
	FS_PID=$!
	for i in $(seq 100); do grep -q " $MNT fuse.uploadfs" /proc/mounts && break; sleep 0.05; done
	head -c 3000000 /dev/urandom >"$BATS_TEST_TMPDIR/a.bin"
	cp "$BATS_TEST_TMPDIR/a.bin" "$MNT/"
	[ "$(remote_md5 a.bin)" = "$(md5sum <"$BATS_TEST_TMPDIR/a.bin" | cut -d' ' -f1)" ]
	ls -l "$MNT" >/dev/null
	rm "$MNT/a.bin"
	umount_fs
	stop_server
	# list, create, parts, complete, delete: each one through the gateway's headers
	for p in /v1/files /v1/uploads; do
		jq -r .path "$BATS_TEST_TMPDIR/req.log" | grep -qx "$p"
	done
	[ "$(jq -r 'select(.path | endswith("/parts")) | .path' "$BATS_TEST_TMPDIR/req.log" | wc -l)" = 3 ]
	all_requests '.headers["x-portkey-api-key"] == "[REDACTED]" and .headers["x-portkey-virtual-key"] == "[REDACTED]"'
	all_requests '.headers["x-portkey-provider"] == "openai" and .headers["x-portkey-config"] == "pc-config-7"'
	all_requests '.headers["x-portkey-custom-host"] == "https://llm.example.internal/v1"'
	all_requests '.headers | has("authorization") | not'
	# the keys are in no log
	! grep -q 'secret' "$BATS_TEST_TMPDIR/req.log" "$BATS_TEST_TMPDIR/fs.log"
}

@test "the Portkey key from -o api_key_file, and an OpenAI key beside it as Bearer" {
	printf 'pk-from-file-3\n' >"$BATS_TEST_TMPDIR/pk"
	chmod 600 "$BATS_TEST_TMPDIR/pk"
	export PORTKEY_PROVIDER=openai
	mount_fs -o "api_key_file=$BATS_TEST_TMPDIR/pk"
	echo one >"$MNT/one.txt"
	umount_fs
	all_requests '.headers["x-portkey-api-key"] == "[REDACTED]" and .headers["x-portkey-provider"] == "openai"'
	all_requests '.headers | has("authorization") | not'
	# with both keys: the OpenAI key as Bearer (for the provider), the Portkey one in its header
	: >"$BATS_TEST_TMPDIR/req.log"
	export OPENAI_API_KEY=sk-openai-4 PORTKEY_API_KEY=pk-env-5
	mount_fs
	echo two >"$MNT/two.txt"
	umount_fs
	all_requests '.headers.authorization == "[REDACTED]" and .headers["x-portkey-api-key"] == "[REDACTED]"'
	! grep -qE 'pk-from-file|sk-openai|pk-env' "$BATS_TEST_TMPDIR/req.log" "$BATS_TEST_TMPDIR/fs.log"
}
