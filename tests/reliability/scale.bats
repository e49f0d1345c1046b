#!/usr/bin/env bats
# The namespace beside its listing: operations answer from the tree while listings run,
# while the server is stalled, and over many remote files.

load ../lib/mount

teardown() {
	[ -z "${SRV_PID:-}" ] || kill -CONT "$SRV_PID" 2>/dev/null || true
	fs_teardown
}

# ms CMD...: milliseconds CMD took
ms() {
	local s e
	s=$(date +%s%N)
	"$@" >/dev/null
	e=$(date +%s%N)
	echo $(((e - s) / 1000000))
}

@test "a stalled server (SIGSTOP) blocks no stat, ls or mkdir of the mount" {
	fs_setup
	echo known >"$BATS_TEST_TMPDIR/k"
	curl -sS -o /dev/null "$BASE/files" -F purpose=batch -F "file=@$BATS_TEST_TMPDIR/k;filename=known.txt"
	mount_fs -o list_interval=1,sweep_interval=2,timeout=30
	mkdir "$MNT/local"
	kill -STOP "$SRV_PID"
	sleep 2.5 # a poll and a sweep are now stuck on the server
	for i in 1 2 3; do
		[ "$(ms stat "$MNT/known.txt")" -lt 1000 ]
		[ "$(ms stat "$MNT/local")" -lt 1000 ]
		[ "$(ms ls -l "$MNT")" -lt 1000 ]
		sleep 1.1 # past the kernel's attribute cache
	done
	[ "$(ms mkdir "$MNT/local2")" -lt 1000 ]
	kill -CONT "$SRV_PID"
	[ "$(cat "$MNT/known.txt")" = known ]
}

@test "20k remote files: mount, ls -l, stat during whole listings, nested names, one cp" {
	fs_setup
	python3 "$BATS_TEST_DIRNAME/../lib/populate.py" "$BASE" 20000
	s=$(date +%s%N)
	mount_fs -o sweep_interval=1,list_interval=1
	echo "mount ready: $((($(date +%s%N) - s) / 1000000)) ms" >&3
	[ "$(ls "$MNT" | wc -l)" = 18001 ] # 18000 files and fdir/
	[ "$(ls "$MNT/fdir" | wc -l)" = 2000 ]
	echo "ls -l: $(ms ls -l "$MNT") ms" >&3
	# whole listings run every second: stat of known names never waits long for them
	worst=0
	for i in $(seq 30); do
		t=$(ms stat "$MNT/f$((i * 7 + 1)).txt")
		[ "$t" -le "$worst" ] || worst=$t
		sleep 0.13
	done
	echo "worst stat during listings: $worst ms" >&3
	[ "$worst" -lt "${SCALE_STAT_MS:-1000}" ]
	echo new >"$BATS_TEST_TMPDIR/new"
	cp "$BATS_TEST_TMPDIR/new" "$MNT/new.txt"
	[ "$(remote_json new.txt | jq -r .bytes)" = 4 ]
	[ "$(cat "$MNT/fdir/f10.txt")" = 10 ]
}
