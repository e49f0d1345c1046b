#!/usr/bin/env bats
# A randomized model check (tests/lib/modelcheck.py): random sequences of creates, writes,
# pwrites past the end, appends, ftruncates, mmap writes, renames (replace-by-rename too),
# unlinks, mkdir/rmdir/rename of directories and read-backs, applied to the mount and to a
# reference directory. An operation either has its POSIX effect or fails with a documented
# errno and has none; after the unmount the server's newest file of each name must be the
# reference's file, byte for byte.
#
# Seeds: $MODEL_SEEDS (e.g. "7" or "7 8 9"), else 4 random ones; every seed is printed.
# Replay one: MODEL_SEEDS=N bats tests/reliability/model.bats
# Odd seeds merge a whole listing every second while they run (-o sweep_interval=1).
# $MODEL_OPS: operations per seed (150). $MODEL_SKIP: kinds of operations to leave out, for
# triage (see modelcheck.py run --help); never set in CI.

load ../lib/mount

MODELCHECK="$BATS_TEST_DIRNAME/../lib/modelcheck.py"

teardown() {
	fs_teardown
}

# model_seed SEED: one sequence on a fresh server and mount; returns 1 on any mismatch.
model_seed() {
	local seed=$1 dir="$BATS_TEST_TMPDIR/seed-$1" ok=0
	# whole listings merged while the operations run: every second on odd seeds
	local sweep=$((seed % 2 ? 1 : 30))
	mkdir -p "$dir"
	SRV_DATA=$dir/data MNT=$dir/mnt CACHE=$dir/cache
	fs_setup --log-requests "$dir/req.log"
	mount_fs -o "part_size=1M,sweep_interval=$sweep"
	echo "=== seed $seed: server $BASE, mount $MNT, sweep_interval $sweep"
	python3 "$MODELCHECK" run --mount "$MNT" --ref "$dir/ref" --src "$dir/src" \
		--seed "$seed" --ops "${MODEL_OPS:-150}" --part-size 1048576 \
		--skip "${MODEL_SKIP:-}" --log "$dir/ops.log" || ok=1
	if ! kill -0 "$FS_PID" 2>/dev/null; then
		echo "seed $seed: the uploadfs daemon died during the run"
		ok=1
	fi
	umount_fs
	if grep -q " $MNT fuse.uploadfs" /proc/mounts; then
		echo "seed $seed: the mount did not go away"
		ok=1
	fi
	python3 "$MODELCHECK" verify --ref "$dir/ref" --base "$BASE" || ok=1
	# every close returned, so no record is left in the journal (a parts log whose record
	# is gone may stay: the next mount removes it)
	if compgen -G "$CACHE/journal/*.json" >/dev/null; then
		echo "seed $seed: journal records left after the unmount:"
		ls -l "$CACHE/journal"
		head -c 2000 "$CACHE"/journal/*.json
		echo
		ok=1
	fi
	stop_server
	if grep -q '"dropped":true' "$dir/req.log"; then
		echo "seed $seed: requests the mount abandoned before their end:"
		grep '"dropped":true' "$dir/req.log" | cut -c1-200
	fi
	if [ "$ok" != 0 ]; then
		echo "--- seed $seed: the last operations ($dir/ops.log):"
		tail -n 40 "$dir/ops.log"
		echo "--- seed $seed FAILED; replay: MODEL_SEEDS=$seed bats tests/reliability/model.bats"
	else
		echo "--- seed $seed passed"
	fi
	return "$ok"
}

@test "model check: random operations on the mount match a reference directory and the server" {
	# an early part whose bytes changed under it (a truncate, a wrong size guess) is
	# abandoned mid-request, and its session redone at close
	ALLOW_LOG=$CUT_REQUEST_LOG
	local seeds failed=
	seeds=${MODEL_SEEDS:-}
	seeds=${seeds//,/ }
	if [ -z "$seeds" ]; then
		for _ in 1 2 3 4; do
			seeds+=" $(((RANDOM << 15 | RANDOM) % 1000000))"
		done
	fi
	echo "model check seeds:$seeds (replay one: MODEL_SEEDS=N bats $BATS_TEST_FILENAME)"
	echo "model check seeds:$seeds" >&3
	for seed in $seeds; do
		model_seed "$seed" || failed+=" $seed"
	done
	if [ -n "$failed" ]; then
		echo "failed seeds:$failed"
		return 1
	fi
}
