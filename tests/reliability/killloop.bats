#!/usr/bin/env bats
# kill -9 of the daemon, 20 times, at random moments while cp copies files into the mount
# (sizes 1.5-5.3 MiB, never a multiple of part_size; some over a completed name; some
# rounds with -o async, some with size_hint=off), each followed by fusermount3 -u and a
# remount on the same cache_dir. At the end, once the uploads have settled: every file
# whose cp returned 0 is on the server under its name, byte for byte (or a later copy over
# it that the journal finished), nothing is in flight or failed, the journal and the spool
# are empty, and no part the server acknowledged was sent again in its session beyond the
# parts in flight at each kill.
#
# Replay the same choices (names, sizes, options, kill delays; not the bytes, nor the
# timing of the uploads): KILLLOOP_SEED=N.
# $KILLLOOP_ROUNDS: how many kills (20).

load ../lib/mount

teardown() {
	fs_teardown
}

MiB=1048576

# rnd N: sets R to a random number in [0, N) from bash's seeded generator (30 bits); not
# in a $(subshell), which would draw from a generator of its own
rnd() {
	R=$((((RANDOM << 15) | RANDOM) % $1))
}

# settle: until the mount's status attribute shows nothing in flight (pending, uploading)
settle() {
	local i st
	for i in $(seq 1200); do
		st=$(getfattr --only-values -n user.uploadfs.status "$MNT" 2>/dev/null) || st=
		if [ -n "$st" ] && jq -e '.pending == 0 and .uploading == 0 and
			([.uploads[] | select(.status == "pending" or .status == "uploading")] |
			length == 0)' <<<"$st" >/dev/null; then
			echo "$st"
			return 0
		fi
		sleep 0.1
	done
	echo "uploads still in flight after 120 s: $st"
	return 1
}

@test "kill -9 loop: every file whose cp returned 0 survives 20 crashes and remounts" {
	# a file still being written at a kill is cancelled at the remount, with this line
	FS_ALLOW='still being written when uploadfs stopped'
	# the server sees clients vanish mid-request
	ALLOW_LOG=$CUT_REQUEST_LOG
	local seed=${KILLLOOP_SEED:-$(((RANDOM << 15 | RANDOM) % 1000000))}
	RANDOM=$seed
	local rounds=${KILLLOOP_ROUNDS:-20}
	local R latency
	rnd 101
	latency=$((50 + R))
	echo "killloop seed $seed, latency $latency ms, $rounds rounds" \
		"(replay: KILLLOOP_SEED=$seed bats $BATS_TEST_FILENAME)"
	echo "killloop seed $seed" >&3
	local req="$BATS_TEST_TMPDIR/req.log" ledger="$BATS_TEST_TMPDIR/ledger"
	: >"$ledger"
	fs_setup --latency-ms "$latency" --log-requests "$req"
	local names=(k0.bin k1.bin k2.jsonl k3.bin k4.txt k5.bin k6.bin k7.dat)
	local round i n size name src delay async par hint opts copier
	for round in $(seq "$rounds"); do
		rnd 3
		async=$((R == 0))
		rnd 3
		par=$((1 << R))
		rnd 3
		hint=auto
		[ "$R" != 0 ] || hint=off
		opts="part_size=1M,parallel=$par,size_hint=$hint"
		[ "$async" = 0 ] || opts+=",async"
		mount_fs -o "$opts"
		# the copies of this round: new names, or cp over a name copied before
		rnd 3
		n=$((2 + R))
		: >"$BATS_TEST_TMPDIR/plan"
		for i in $(seq "$n"); do
			rnd $((53 * MiB / 10 - 3 * MiB / 2))
			size=$((3 * MiB / 2 + R))
			[ $((size % MiB)) != 0 ] || size=$((size + 1))
			rnd ${#names[@]}
			name=${names[$R]}
			src="$BATS_TEST_TMPDIR/src.$round.$i"
			head -c "$size" /dev/urandom >"$src"
			echo "$name $src $(md5_of "$src") $size" >>"$BATS_TEST_TMPDIR/plan"
		done
		# mostly within the first second (mid-copy), sometimes later (mid-close, or idle
		# while -o async uploads go on)
		rnd 950
		delay=$(printf '0.%03d' $((50 + R)))
		rnd 4
		if [ "$R" = 0 ]; then
			rnd 20
			delay=$((1 + R / 10)).$((R % 10))
		fi
		echo "round $round: -o $opts; kill after ${delay}s; copies: $(cut -d' ' -f1,4 \
			"$BATS_TEST_TMPDIR/plan" | tr '\n' ',')"
		(
			while read -r name src md5 size; do
				existed=new
				[ ! -e "$MNT/$name" ] || existed=over
				rc=0
				cp "$src" "$MNT/$name" 2>/dev/null || rc=$?
				echo "$round $name $md5 $rc $async $existed $size" >>"$ledger"
				[ "$rc" = 0 ] || break # the daemon is gone (or the name is busy)
			done <"$BATS_TEST_TMPDIR/plan"
		) &
		copier=$!
		sleep "$delay"
		# a marker in the server's request log: what follows came after this kill
		echo "{\"kill\":$round,\"parallel\":$par}" >>"$req"
		kill -9 "$FS_PID"
		wait "$FS_PID" 2>/dev/null || true
		FS_PID=
		wait "$copier" || true
		fusermount3 -u "$MNT"
		rm -f "$BATS_TEST_TMPDIR"/src.*
	done
	echo "ledger (round name md5 cp-status async new/over size):"
	cat "$ledger"

	# a last mount, never killed: what the journal holds is finished, then it settles
	mount_fs -o part_size=1M
	local lost=0
	run settle
	echo "status after the last remount: $output"
	if [ "$status" != 0 ]; then
		echo "FAIL: the uploads did not settle"
		lost=1
	elif ! jq -e '.failed == 0 and (.uploads | length == 0)' <<<"$output" >/dev/null; then
		echo "FAIL: uploads failed after the remounts: $(jq -c .uploads <<<"$output")"
		lost=1
	fi
	if compgen -G "$CACHE/journal/*.json" >/dev/null; then
		echo "FAIL: journal records left once settled: $(ls "$CACHE/journal")"
		lost=1
	fi
	if [ -n "$(ls -A "$CACHE/spool")" ]; then
		echo "FAIL: spool files left once settled: $(ls -A "$CACHE/spool")"
		lost=1
	fi
	curl -sS "$BASE/files?limit=10000&order=asc" >"$BATS_TEST_TMPDIR/list.json"
	umount_fs
	stop_server
	echo "the server's upload sessions: $(cat "$SRV_DATA"/uploads/*.json | jq -s -c \
		'group_by(.status) | map({(.[0].status): length}) | add')"

	local verdict="$BATS_TEST_TMPDIR/verdict" list="$BATS_TEST_TMPDIR/list.json"
	python3 - "$ledger" "$list" "$SRV_DATA" "$req" >"$verdict" <<'PY' || lost=1
import hashlib, json, os, re, sys
ledger, listing, data, reqlog = sys.argv[1:]
MiB = 1 << 20
fail = False

# what each name may hold: the md5 of its last cp that returned 0, or of a later cp over it
# that did not return 0 (the daemon died in its close: the journal may have finished it)
hist = {}
for line in open(ledger):
    rnd, name, md5, rc, asyn, existed, size = line.split()
    hist.setdefault(name, []).append((int(rnd), md5, int(rc), asyn == "1", existed, int(size)))
files = json.load(open(listing))["data"]
newest, count = {}, {}
for f in files:  # creation order: the last of a name is the newest
    count[f["filename"]] = count.get(f["filename"], 0) + 1
    if f["filename"] not in newest or f["created_at"] >= newest[f["filename"]]["created_at"]:
        newest[f["filename"]] = f

def content_md5(f):
    # one file, or a directory of the upload's parts in order (docs/SERVER.md)
    path = os.path.join(data, "content", f["id"])
    pieces = [os.path.join(path, p) for p in sorted(os.listdir(path))] if os.path.isdir(path) else [path]
    md5 = hashlib.md5()
    for p in pieces:
        with open(p, "rb") as fh:
            md5.update(fh.read())
    return md5.hexdigest()

acked = 0
for name in sorted(set(hist) | set(newest)):
    h = hist.get(name, [])
    last_ok = max((i for i, e in enumerate(h) if e[2] == 0), default=None)
    allowed = {e[1] for e in h[(last_ok or 0):]}
    got = content_md5(newest[name]) if name in newest else None
    story = "; ".join("round %d %s%s %s %d bytes: cp %s" % (
        r, "async " if a else "", ex, m[:8], s, "ok" if rc == 0 else "failed(%d)" % rc)
        for r, m, rc, a, ex, s in h)
    if last_ok is not None:
        acked += 1
        if got is None:
            print("LOST: %s: cp returned 0 (round %d, md5 %s), and the server has no %s; "
                  "history: %s" % (name, h[last_ok][0], h[last_ok][1][:8], name, story))
            fail = True
        elif got not in allowed:
            print("WRONG: %s: the server's newest %s (%s, %d bytes) has md5 %s, expected %s; "
                  "history: %s" % (name, name, newest[name]["id"], newest[name]["bytes"],
                                   got[:8], " or ".join(sorted(m[:8] for m in allowed)),
                                   story))
            fail = True
    elif got is not None and got not in allowed:
        print("UNEXPECTED: %s on the server (md5 %s) matches no copy; history: %s"
              % (name, got[:8], story or "never copied"))
        fail = True
    dup = " (listed %d times: replaced files not deleted)" % count[name] \
        if count.get(name, 0) > 1 else ""
    print("%s: server %s%s" % (name, got[:8] if got else "none", dup))
print("%d names had a cp that returned 0" % acked)

# no acknowledged part sent again in its session: per completed session, the parts the
# server answered 200 beyond the file's part count are at most the parts in flight at the
# kills that came while the session lived: twice the parallel of each killed mount (its
# parallel part bodies being sent, and as many parts awaiting their answer)
events = []
for line in open(reqlog):
    try:
        events.append(json.loads(line))
    except ValueError:
        pass
span, acks = {}, {}
for i, e in enumerate(events):
    m = re.match(r"^/v1/uploads/([^/]+)(/|$)", e.get("path", ""))
    if not m:
        continue
    up = m.group(1)
    span.setdefault(up, [i, i])[1] = i
    if e["path"].endswith("/parts") and e.get("status") == 200 and not e.get("dropped"):
        acks[up] = acks.get(up, 0) + 1
kills = [(i, 2 * e["parallel"]) for i, e in enumerate(events) if "kill" in e]
checked = crossed = resent = 0
for rec in sorted(os.listdir(os.path.join(data, "uploads"))):
    # the server's record of every upload session, completed ones (and their files) too
    with open(os.path.join(data, "uploads", rec)) as fh:
        f = json.load(fh)
    up = f["id"]
    if f["status"] != "completed" or up not in span:
        continue
    nparts = max(1, -(-f["bytes"] // MiB))
    lo, hi = span[up]
    # the log has a request when it ends: parts in flight at a kill (the session's first
    # ones, if its create came just before) are written after the kill's marker, so a kill
    # at most a few lines (its parallel, and the creates and completes of the fs threads)
    # before the session's first line counts too
    inflight = sum(p for i, p in kills if lo - (p + 8) <= i < hi)
    extra = acks.get(up, 0) - nparts
    checked += 1
    crossed += inflight > 0
    resent += max(extra, 0)
    if extra > inflight:
        print("RESENT: %s (%s, %d parts): the server acknowledged %d parts in its session, %d "
              "more than the file has, with %d kill(s) and at most %d parts in flight meanwhile"
              % (f["filename"], up, nparts, acks.get(up, 0), extra,
                 sum(1 for i, p in kills if lo - (p + 8) <= i < hi), inflight))
        fail = True
print("%d completed sessions checked for re-sent parts, %d of them lived through a kill; "
      "%d part(s) sent again in all" % (checked, crossed, resent))

# nothing left pending on the server that the mount knew of: a session it sent a part,
# complete or cancel to ends completed or cancelled (the journal names it from its creation
# on). One whose create was answered as the daemon died is never heard of again: tolerated.
orphans = 0
for rec in sorted(os.listdir(os.path.join(data, "uploads"))):
    with open(os.path.join(data, "uploads", rec)) as fh:
        u = json.load(fh)
    if u["status"] != "pending":
        continue
    if u["id"] not in span:
        orphans += 1
        continue
    print("PENDING: %s (%s, %d bytes) is still pending on the server, after %d request(s) "
          "of the mount to it" % (u["id"], u["filename"], u["bytes"],
                                  sum(1 for e in events if u["id"] in e.get("path", ""))))
    fail = True
print("%d session(s) pending that no request named after their create (a kill during the "
      "create), with %d kills" % (orphans, len(kills)))
sys.exit(1 if fail else 0)
PY
	cat "$verdict"
	grep -E '^[0-9]+ (names|completed|session)' "$verdict" | sed 's/^/# /' >&3
	[ "$lost" = 0 ]
}
