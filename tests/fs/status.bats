#!/usr/bin/env bats
# `uploadfs status MOUNTPOINT`: the uploads in flight or failed, as JSON for scripts and as
# a table with progress bars, rate and ETA on a terminal; --watch refreshes.

load ../lib/mount

setup() {
	# slow parts (1 MiB each, one body at a time, 400 ms per answer) keep an upload in
	# flight: with parallel=1, two requests are open at most (one sending, one awaiting its
	# answer), so 20 parts take 4 s
	fs_setup --latency-ms 400 --max-upload-bytes 30M
	FS_ALLOW='upload of big.bin failed'
	head -c 40M /dev/urandom >"$BATS_TEST_TMPDIR/big.bin"
	head -c 20M /dev/urandom >"$BATS_TEST_TMPDIR/mid.bin"
}

teardown() {
	[ -z "${CP_PID:-}" ] || wait "$CP_PID" || true
	fs_teardown
}

status_json() { "$UPLOADFS" status --json "$MNT"; }

# wait_in_flight [written]: waits until mid.bin is on its way up with some bytes
# acknowledged (and with "written", all its bytes written: cp has closed it)
wait_in_flight() {
	local i all=0
	[ "${1:-}" != written ] || all=20971520
	for i in $(seq 100); do
		status_json | jq -e --argjson all "$all" '.uploads[] | select(.name == "mid.bin" and .status == "uploading" and .bytes >= $all and .bytes_sent > 0)' >/dev/null && return 0
		sleep 0.1
	done
	return 1
}

@test "status --json: an upload in flight with its progress, a failed one with its error" {
	mount_fs -o part_size=1M,parallel=1
	run cp "$BATS_TEST_TMPDIR/big.bin" "$MNT/"
	[ "$status" != 0 ]
	cp "$BATS_TEST_TMPDIR/mid.bin" "$MNT/" &
	CP_PID=$!
	wait_in_flight
	run status_json
	[ "$status" = 0 ]
	jq -e --arg m "$MNT" --arg b "$BASE" '.mount == $m and .server == $b and .uploading == 1 and .failed == 1 and .more == 0' <<<"$output"
	jq -e '.uploads[] | select(.name == "mid.bin") | .bytes == 20971520 and .bytes_sent > 0 and .bytes_sent < .bytes and (.upload_id | startswith("upload_")) and .seconds > 0' <<<"$output"
	jq -e '.uploads[] | select(.name == "big.bin") | .status == "failed" and (.error | contains("maximum upload size"))' <<<"$output"
	# in-flight entries come first
	[ "$(jq -r '.uploads[0].name' <<<"$output")" = mid.bin ]
	wait "$CP_PID"
	CP_PID=
	# done: only the failed one is left
	run status_json
	[ "$(jq -c '[.uploads[].name]' <<<"$output")" = '["big.bin"]' ]
}

@test "status on a terminal: a progress bar, rate and ETA; plain lines otherwise" {
	mount_fs -o part_size=1M,parallel=1
	cp "$BATS_TEST_TMPDIR/mid.bin" "$MNT/" &
	CP_PID=$!
	wait_in_flight written
	run script -qec "'$UPLOADFS' status '$MNT'" /dev/null
	[ "$status" = 0 ]
	[[ "$output" == *"1 uploading, 0 being written, 0 failed"* ]]
	line=$(grep '^mid.bin' <<<"$output")
	[[ "$line" =~ \[#*-*\]\ +[0-9]+%\ +[0-9.]+\ MiB\ /\ 20\.0\ MiB\ +[0-9.]+\ [KM]?i?B/s\ +ETA\ [0-9]+:[0-9]{2} ]]
	# not a terminal: the same facts, no bar
	run "$UPLOADFS" status "$MNT"
	[ "$status" = 0 ]
	[[ "$output" =~ mid\.bin\ +uploading\ +[0-9.]+\ [KM]?i?B\ of\ 20\.0\ MiB ]]
	[[ "$output" != *"["* ]]
	wait "$CP_PID"
	CP_PID=
	run "$UPLOADFS" status "$MNT"
	[[ "$output" == *"no uploads in flight or failed"* ]]
}

@test "status --watch refreshes until interrupted; --json gives one object per refresh" {
	mount_fs -o part_size=1M,parallel=1
	cp "$BATS_TEST_TMPDIR/mid.bin" "$MNT/" &
	CP_PID=$!
	wait_in_flight
	run timeout 2.5 "$UPLOADFS" status --watch --json --interval 0.5 "$MNT"
	[ "$status" = 124 ] # still watching when timeout stopped it
	[ "$(wc -l <<<"$output")" -ge 4 ]
	# bytes_sent of mid.bin never goes back, and moves
	sent=$(jq -r '.uploads[] | select(.name == "mid.bin") | .bytes_sent' <<<"$output")
	[ "$(sort -n <<<"$sent")" = "$sent" ]
	[ "$(head -n1 <<<"$sent")" != "$(tail -n1 <<<"$sent")" ]
	run timeout 1.5 "$UPLOADFS" status --watch --interval 0.5 "$MNT"
	[ "$(grep -c 'being written' <<<"$output")" -ge 2 ]
}

@test "status refuses what is not an uploadfs mount, and bad arguments" {
	run "$UPLOADFS" status "$BATS_TEST_TMPDIR"
	[ "$status" = 1 ]
	[[ "$output" == *"is not an uploadfs mount"* ]]
	run "$UPLOADFS" status
	[ "$status" = 2 ]
	run "$UPLOADFS" status --interval 0 /
	[ "$status" = 2 ]
	[[ "$output" == *"--interval"* ]]
	# the status attribute is not listed: rsync -X and getfattr -d do not copy it
	mount_fs
	! getfattr -d -m - "$MNT" 2>/dev/null | grep -q uploadfs.status
}

# to_bytes NUMBER UNIT: bytes of a size as status shows it ("12.5" "MiB")
to_bytes() { awk -v n="$1" -v u="$2" 'BEGIN { m = u == "KiB" ? 1024 : u == "MiB" ? 1048576 : u == "GiB" ? 1073741824 : 1; printf "%d\n", n * m }'; }

@test "status --watch in an 80-column terminal: every line fits, progress only goes forward, the total is the file's size, an ETA" {
	mount_fs -o part_size=1M,parallel=1
	long=a-file-name-far-too-long-for-the-name-column-of-an-eighty-column-screen.bin
	# a writer that copies mid.bin in 1 MiB steps: the file is being written while its
	# parts go up (its size announced by the source it copies from, as cp's is)
	python3 - "$BATS_TEST_TMPDIR/mid.bin" "$MNT/$long" <<'PY' &
import sys, time
src = open(sys.argv[1], "rb")
with open(sys.argv[2], "wb") as dst:
    while True:
        b = src.read(1 << 20)
        if not b:
            break
        dst.write(b)
        dst.flush()
        time.sleep(0.15)
PY
	CP_PID=$!
	export LC_ALL=C.UTF-8
	TMUX_SOCK=uf-status-$$
	tmux -L "$TMUX_SOCK" -u new-session -d -s ufstatus -x 80 -y 24 \
		"COLUMNS=200 '$UPLOADFS' status --watch --interval 0.3 '$MNT'; sleep 30"
	local i n=0 writing_seen=0
	for i in $(seq 120); do
		sleep 0.25
		tmux -L "$TMUX_SOCK" capture-pane -p -t ufstatus >"$BATS_TEST_TMPDIR/cap.$i"
		grep -q "…" "$BATS_TEST_TMPDIR/cap.$i" && n=$i
		# the JSON says the same while the file is being written: the total is the
		# announced size, not the bytes written so far
		if [ "$writing_seen" = 0 ] && status_json | jq -e '.uploads[] | select(.writing and .bytes_sent > 0) | .bytes == 20971520 and .size_known and .bytes_written < .bytes' >/dev/null; then
			writing_seen=1
		fi
		if ! kill -0 "$CP_PID" 2>/dev/null && status_json | jq -e '.uploads == []' >/dev/null; then
			break
		fi
	done
	tmux -L "$TMUX_SOCK" kill-session -t ufstatus
	wait "$CP_PID"
	CP_PID=
	[ "$writing_seen" = 1 ]
	local prev_pct=-1 prev_sent=-1 moving=0 writing_rows=0
	for i in $(seq "$n"); do
		f=$BATS_TEST_TMPDIR/cap.$i
		[ -s "$f" ] || continue
		# every line fits the 80 columns (the terminal's width, not $COLUMNS)
		while IFS= read -r l; do
			[ "${#l}" -le 80 ] || { echo "too wide (${#l}): $l" >&2; return 1; }
		done <"$f"
		row=$(grep '^a-file-name' "$f" || true)
		[ -n "$row" ] || continue
		cat "$f" >&2
		# the long name is cut with an ellipsis
		[[ "$row" == *"…"* ]]
		[[ "$row" != *"$long"* ]]
		# the header's counts are the rows': one upload, writing or uploading as its row
		if [[ "$row" == *writing ]]; then
			grep -q '0 uploading, 1 being written, 0 failed' "$f"
			writing_rows=$((writing_rows + 1))
		else
			grep -q '1 uploading, 0 being written, 0 failed' "$f"
		fi
		overall=$(grep -E '^1 file: ' "$f")
		read -r num unit <<<"$(sed -E 's/^1 file: ([0-9.]+) ([KMG]?i?B) .*/\1 \2/' <<<"$overall")"
		sent=$(to_bytes "$num" "$unit")
		pct=$(grep -oE ' [0-9]+%' <<<"$row" | tr -d ' %')
		# never backwards
		[ "$sent" -ge "$prev_sent" ] || { echo "sent went back: $prev_sent -> $sent" >&2; return 1; }
		[ "$pct" -ge "$prev_pct" ] || { echo "percentage went back: $prev_pct -> $pct" >&2; return 1; }
		prev_sent=$sent prev_pct=$pct
		# the total is the file's size from the start (announced), never the bytes
		# written so far
		[[ "$overall" == *" / 20.0 MiB  "* ]]
		[[ "$row" == *" / 20.0 MiB "* ]]
		# once bytes move: a rate and an ETA
		if [ "$sent" -gt 0 ]; then
			moving=$((moving + 1))
			[[ "$overall" =~ ETA\ [0-9]+:[0-9]{2}\ +elapsed\ [0-9]+:[0-9]{2} ]]
			[[ "$row" =~ ETA\ [0-9]+:[0-9]{2} ]]
			[[ "$row" != *"--:--"* ]]
		fi
	done
	[ "$moving" -ge 3 ]
	[ "$writing_rows" -ge 1 ]
	[ "$(remote_md5 "$long")" = "$(md5_of "$BATS_TEST_TMPDIR/mid.bin")" ]
}
