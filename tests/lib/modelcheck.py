#!/usr/bin/env python3
"""A randomized model check of an uploadfs mount (python3, stdlib only).

    modelcheck.py run    --mount MNT --ref DIR --src DIR --seed N [--ops 150] [--part-size B]
    modelcheck.py verify --ref DIR --base URL

`run` applies one random sequence of operations, made from SEED, to the mount and to a
reference directory on a normal filesystem. The rule: an operation on the mount either has
its POSIX effect, or fails with an errno and has no effect. When it succeeds on the mount it
is applied to the reference; when it fails it is not (and the log says so). Every failure
must have the errno POSIX gives for that case: a completed file is edited, appended to,
truncated, mapped and renamed like a local one (a new upload under the name, then the delete
of the old file: docs/SEMANTICS.md), so any other errno on an operation the mount promises
(a create, write and close on a healthy server, a read, a change or a rename of a completed
file, an unlink, a rename of a directory...) is reported as UNDOCUMENTED and fails the run.
Read-backs are compared with the reference as they happen, and the mount's tree (names,
kinds, sizes, then every file's bytes) is compared with the reference every few operations
and at the end.

`verify` runs after the unmount: the server's files, the newest of each name (highest
created_at, then creation order), must be exactly the reference's regular files (relative
paths with '/'), byte for byte. A name listed more than once is a replaced file that was not
deleted (the mount shows it as NAME~FILEID): reported and failed too.

Both print a clear diff and exit 1 on a mismatch. Replay: the same SEED gives the same
operations (`MODEL_SEEDS=N bats tests/reliability/model.bats`) as long as the mount answers
the same. `--skip` (MODEL_SKIP in the bats file) leaves kinds of operations out, to tell one
bug from another.
"""
import argparse
import errno
import json
import mmap
import os
import random
import stat
import sys
import time
import urllib.request

KiB = 1024
MiB = 1024 * KiB
FILE_NAMES = ["a.bin", "b.txt", "c.jsonl", "d.dat", "e.bin", "f.csv", "g", "h.bin"]
DIR_NAMES = ["d0", "d1", "d2", "sub"]


def ename(e):
    return errno.errorcode.get(e, str(e)) if e is not None else "ok"


class Failure(Exception):
    pass


class Model:
    def __init__(self, mnt, ref, src, seed, nops, part_size, log, skip=()):
        self.mnt, self.ref, self.src = mnt, ref, src
        self.skip = set(skip)
        self.rng = random.Random(seed)
        self.seed, self.nops, self.ps = seed, nops, part_size
        self.log = log
        self.problems = []  # (kind, text)
        self.skipped = 0
        self.opno = 0
        self.stats = {}

    # ---- output ----

    def say(self, msg):
        line = "[%d/%d] %s" % (self.opno, self.nops, msg)
        print(line, file=self.log, flush=True)

    def problem(self, kind, msg):
        self.problems.append((kind, "op %d: %s" % (self.opno, msg)))
        self.say("!! %s: %s" % (kind, msg))

    def count(self, key):
        self.stats[key] = self.stats.get(key, 0) + 1

    # ---- the reference ----

    def m(self, rel):
        return os.path.join(self.mnt, rel)

    def r(self, rel):
        return os.path.join(self.ref, rel)

    def ref_tree(self):
        """(files {rel: size}, dirs set) of the reference."""
        files, dirs = {}, set()
        for root, dnames, fnames in os.walk(self.ref):
            relroot = os.path.relpath(root, self.ref)
            for d in dnames:
                dirs.add(d if relroot == "." else relroot + "/" + d)
            for f in fnames:
                rel = f if relroot == "." else relroot + "/" + f
                files[rel] = os.path.getsize(os.path.join(root, f))
        return files, dirs

    def ref_files(self):
        return sorted(self.ref_tree()[0])

    def ref_dirs(self):
        return sorted(self.ref_tree()[1])

    def ref_bytes(self, rel):
        with open(self.r(rel), "rb") as f:
            return f.read()

    def ref_write(self, rel, data):
        with open(self.r(rel), "wb") as f:
            f.write(data)

    def any_dir(self):
        """'' (the root) or an existing directory."""
        return self.rng.choice([""] + self.ref_dirs())

    def join(self, d, name):
        return d + "/" + name if d else name

    def new_file_path(self):
        for _ in range(20):
            p = self.join(self.any_dir(), self.rng.choice(FILE_NAMES))
            if not os.path.lexists(self.r(p)):
                return p
        return None

    def new_dir_path(self):
        for _ in range(20):
            d = self.any_dir()
            if d.count("/") >= 1:
                continue  # two levels at most
            p = self.join(d, self.rng.choice(DIR_NAMES))
            if not os.path.lexists(self.r(p)):
                return p
        return None

    # ---- data ----

    def data(self, n):
        return self.rng.randbytes(n)

    def small(self):
        return self.rng.choice([0, 1, 17, 4095, 4096, 4097, 65536]) if self.rng.random() < 0.2 \
            else self.rng.randrange(0, 300 * KiB)

    # ---- POSIX predictions for namespace operations ----

    def predict_unlink(self, p):
        rp = self.r(p)
        if not os.path.isdir(os.path.dirname(rp) or self.ref):
            return errno.ENOENT
        if not os.path.lexists(rp):
            return errno.ENOENT
        if os.path.isdir(rp):
            return errno.EISDIR
        return None

    def predict_mkdir(self, p):
        rp = self.r(p)
        if os.path.lexists(rp):
            return errno.EEXIST
        if not os.path.isdir(os.path.dirname(rp)):
            return errno.ENOENT
        return None

    def predict_rmdir(self, p):
        rp = self.r(p)
        if not os.path.lexists(rp):
            return errno.ENOENT
        if not os.path.isdir(rp):
            return errno.ENOTDIR
        if os.listdir(rp):
            return errno.ENOTEMPTY
        return None

    def predict_rename(self, a, b):
        ra, rb = self.r(a), self.r(b)
        if not os.path.lexists(ra) or not os.path.isdir(os.path.dirname(rb)):
            return errno.ENOENT
        if a == b:
            return None
        a_dir = os.path.isdir(ra)
        if a_dir and (b + "/").startswith(a + "/"):
            return errno.EINVAL
        if os.path.lexists(rb):
            b_dir = os.path.isdir(rb)
            if a_dir and not b_dir:
                return errno.ENOTDIR
            if not a_dir and b_dir:
                return errno.EISDIR
            if a_dir and os.listdir(rb):
                return errno.ENOTEMPTY
        return None

    # ---- one operation: the mount first, then the reference ----

    def outcome(self, what, err, predicted, documented=()):
        """Judges a namespace operation. Returns True when it is to be applied to the
        reference (it succeeded on the mount and POSIX agrees)."""
        if err is None and predicted is None:
            self.say("%s: ok" % what)
            return True
        if err is None:
            self.problem("DIVERGENCE", "%s succeeded on the mount; POSIX refuses it with %s"
                         % (what, ename(predicted)))
            return False
        self.skipped += 1
        if predicted is not None:
            note = "" if err == predicted else " (POSIX says %s)" % ename(predicted)
            self.say("%s: failed %s as POSIX does%s; not applied" % (what, ename(err), note))
        elif err in documented:
            self.say("%s: failed %s (documented); not applied" % (what, ename(err)))
            self.count("documented " + ename(err))
        else:
            self.problem("UNDOCUMENTED", "%s failed with %s (%s); POSIX and "
                         "docs/SEMANTICS.md say it succeeds; not applied"
                         % (what, ename(err), os.strerror(err)))
        return False

    def try_(self, fn, *args):
        try:
            return fn(*args), None
        except OSError as e:
            return None, e.errno

    def op_unlink(self, missing=False):
        files = self.ref_files()
        if missing or not files:
            p = self.join(self.any_dir(), "nosuch-" + self.rng.choice(FILE_NAMES))
        else:
            p = self.rng.choice(files)
        pred = self.predict_unlink(p)
        _, err = self.try_(os.unlink, self.m(p))
        if self.outcome("unlink %s" % p, err, pred):
            os.unlink(self.r(p))

    def op_mkdir(self):
        dirs = self.ref_dirs()
        p = self.rng.choice(dirs) if dirs and self.rng.random() < 0.15 else self.new_dir_path()
        if p is None:
            return
        pred = self.predict_mkdir(p)
        _, err = self.try_(os.mkdir, self.m(p))
        if self.outcome("mkdir %s" % p, err, pred):
            os.mkdir(self.r(p))

    def op_rmdir(self):
        dirs = self.ref_dirs()
        if not dirs:
            return self.op_mkdir()
        p = self.rng.choice(dirs)
        pred = self.predict_rmdir(p)
        _, err = self.try_(os.rmdir, self.m(p))
        if self.outcome("rmdir %s" % p, err, pred):
            os.rmdir(self.r(p))

    def op_rename_dir(self):
        dirs = self.ref_dirs()
        if not dirs:
            return self.op_mkdir()
        a = self.rng.choice(dirs)
        b = None
        for _ in range(20):
            d = self.any_dir()
            if d.count("/") >= 1 or (d + "/").startswith(a + "/"):
                continue
            cand = self.join(d, self.rng.choice(DIR_NAMES))
            if not os.path.lexists(self.r(cand)):
                b = cand
                break
        if b is None:
            return
        pred = self.predict_rename(a, b)
        nonempty = bool(os.listdir(self.r(a)))
        _, err = self.try_(os.rename, self.m(a), self.m(b))
        # the completed files below go up again under their new paths
        if self.outcome("rename dir %s -> %s%s" % (a, b, " (non-empty)" if nonempty else ""),
                        err, pred):
            os.rename(self.r(a), self.r(b))

    def op_rename_completed(self):
        files = self.ref_files()
        if not files:
            return
        a = self.rng.choice(files)
        if self.rng.random() < 0.5 and len(files) > 1:
            b = self.rng.choice([f for f in files if f != a])
        else:
            b = self.new_file_path()
        if b is None:
            return
        pred = self.predict_rename(a, b)
        _, err = self.try_(os.rename, self.m(a), self.m(b))
        # the API has no rename: uploaded again under the new name, the old one deleted
        if self.outcome("rename completed %s -> %s" % (a, b), err, pred):
            os.rename(self.r(a), self.r(b))

    def op_read(self, rel=None):
        files = self.ref_files()
        if not files:
            return
        rel = rel or self.rng.choice(files)
        want = self.ref_bytes(rel)
        try:
            with open(self.m(rel), "rb") as f:
                if want and self.rng.random() < 0.3:
                    off = self.rng.randrange(len(want))
                    n = self.rng.randrange(1, 200 * KiB)
                    got = os.pread(f.fileno(), n, off)
                    exp = want[off:off + n]
                    what = "pread %s [%d, +%d)" % (rel, off, n)
                else:
                    got, exp, what = f.read(), want, "read %s" % rel
        except OSError as e:
            self.problem("UNDOCUMENTED", "reading completed %s failed with %s"
                         % (rel, ename(e.errno)))
            return
        if got != exp:
            self.problem("DIVERGENCE", "%s: %s" % (what, describe_diff(exp, got)))
        else:
            self.say("%s: %d bytes ok" % (what, len(got)))

    def op_stat(self):
        files = self.ref_files()
        if not files:
            return
        rel = self.rng.choice(files)
        want = os.path.getsize(self.r(rel))
        try:
            st = os.stat(self.m(rel))
        except OSError as e:
            self.problem("DIVERGENCE", "stat %s failed with %s; the reference has it"
                         % (rel, ename(e.errno)))
            return
        if not stat.S_ISREG(st.st_mode) or st.st_size != want:
            self.problem("DIVERGENCE", "stat %s: mode %o size %d, the reference's size is %d"
                         % (rel, st.st_mode, st.st_size, want))
        else:
            self.say("stat %s: size %d ok" % (rel, want))

    def op_modify_completed(self):
        """Writes to a completed file without O_TRUNC: a new version holding its bytes
        takes them, and goes up at the last close (the old file deleted after)."""
        files = self.ref_files()
        if not files:
            return
        rel = self.rng.choice(files)
        kind = self.rng.choice(["append", "pwrite", "truncate", "mmap"])
        old = self.ref_bytes(rel)
        data = self.data(self.rng.randrange(1, 8 * KiB))
        new = bytearray(old)
        if kind == "append":
            flags, what = os.O_WRONLY | os.O_APPEND, "append to completed %s" % rel
            new += data
        elif kind == "pwrite":
            off = self.rng.randrange(len(old) + 4 * KiB)
            flags, what = os.O_WRONLY, "pwrite in place to completed %s at %d" % (rel, off)
            put(new, off, data)
        elif kind == "mmap":
            flags, what = os.O_RDWR, "open O_RDWR (for mmap) of completed %s" % rel
        else:
            size = self.rng.randrange(len(old) + 4 * KiB)
            what = "truncate completed %s to %d" % (rel, size)
            _, err = self.try_(os.truncate, self.m(rel), size)
            resize(new, size)
            if self.outcome(what, err, None):
                self.ref_write(rel, bytes(new))
            return
        fd, err = self.try_(os.open, self.m(rel), flags)
        if err is not None:
            self.outcome(what, err, None)
            return
        try:
            if kind == "append":
                os.write(fd, data)
            elif kind == "pwrite":
                os.pwrite(fd, data, off)
            elif old:
                # a shared writable map of the old bytes, changed in place
                mm = mmap.mmap(fd, len(old), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
                off = self.rng.randrange(len(old))
                chunk = data[:len(old) - off]
                mm[off:off + len(chunk)] = chunk
                mm.flush()
                mm.close()
                put(new, off, chunk)
        except OSError as e:
            self.problem("UNDOCUMENTED", "%s: the write failed %s" % (what, ename(e.errno)))
            new = bytearray(old)
        try:
            os.close(fd)
        except OSError as e:
            self.problem("UNDOCUMENTED", "%s: close failed %s" % (what, ename(e.errno)))
            return
        self.say("%s: succeeded; applied" % what)
        self.ref_write(rel, bytes(new))

    # ---- a write session: open, sub-operations on the open file, close ----

    def op_session(self):
        files = self.ref_files()
        replace = bool(files) and self.rng.random() < 0.35
        path = self.rng.choice(files) if replace else self.new_file_path()
        if path is None:
            return
        exists = os.path.exists(self.r(path))
        mode = self.rng.choices(["trunc", "excl", "rdwr", "append"], [4, 2, 3, 2])[0]
        if exists and mode == "excl" and self.rng.random() < 0.7:
            mode = "trunc"
        if exists and mode == "append" and self.rng.random() < 0.7:
            mode = "rdwr"
        flags = {"trunc": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                 "excl": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                 "rdwr": os.O_RDWR | os.O_CREAT | os.O_TRUNC,
                 "append": os.O_WRONLY | os.O_CREAT | os.O_APPEND}[mode]
        big = self.rng.random() < 0.15
        target = self.rng.randrange(1 * MiB, 3 * MiB + 1) if big else self.small()

        # like cp: a local source file of the final size, opened first, so the daemon takes
        # the size from it (size_hint=auto) and sends parts while we write; sometimes the
        # guess is wrong (more or fewer bytes are written)
        src_fd = None
        if self.rng.random() < 0.3 and mode != "append":
            guess = target if self.rng.random() < 0.7 else \
                self.rng.randrange(self.ps + 1, 3 * MiB + 1)
            if guess > self.ps:
                sp = os.path.join(self.src, os.path.basename(path))
                with open(sp, "wb") as f:
                    f.truncate(guess)
                src_fd = os.open(sp, os.O_RDONLY)

        what = "session %s %s%s%s" % (mode, path, " (replacing)" if exists else "",
                                      " cp-like" if src_fd is not None else "")
        fd, err = self.try_(os.open, self.m(path), flags, 0o644)
        if err is not None:
            if src_fd is not None:
                os.close(src_fd)
            pred = errno.EEXIST if exists and mode == "excl" else None
            self.outcome(what + ": open", err, pred)
            return
        if exists and mode == "excl":
            self.problem("DIVERGENCE", "%s: O_EXCL open of an existing file succeeded" % what)
        if exists and mode == "append":
            self.say("%s: O_APPEND open of a completed file succeeded" % what)
        self.say("%s: open ok" % what)
        self.count("session " + mode)

        content = bytearray(self.ref_bytes(path)) if exists and mode == "append" else bytearray()
        pos = 0
        cur = path           # its name now (renames while open)
        unlinked = False     # removed while open: nothing is committed at close
        written = 0
        nsub = self.rng.randrange(1, 7)
        steps = []
        # enough sequential writes to reach the target size, mixed with the others
        while written < target:
            n = min(target - written, self.rng.choice([4 * KiB, 64 * KiB, 128 * KiB, 1 * MiB,
                                                       self.rng.randrange(1, 300 * KiB)]))
            steps.append(("write", n))
            written += n
        subs = [("pwrite", 5), ("ftruncate", 4), ("mmap", 4 if mode == "rdwr" else 0),
                ("pread", 3 if mode == "rdwr" else 0), ("append2", 3), ("rename", 3),
                ("unlink", 1), ("fstat", 2), ("fsync", 1)]
        subs = [(k, w) for k, w in subs if k not in self.skip]
        for _ in range(nsub):
            steps.insert(self.rng.randrange(len(steps) + 1), (self.rng.choices(
                [k for k, _ in subs], [w for _, w in subs])[0], None))
        for kind, arg in steps:
            try:
                if kind == "write":
                    data = self.data(arg)
                    n = os.write(fd, data)
                    at = len(content) if mode == "append" else pos
                    put(content, at, data[:n])
                    pos = at + n
                    self.say("  write %d at %d -> %d" % (len(data), at, n))
                elif kind == "pwrite":
                    if mode == "append":
                        continue  # Linux appends a pwrite on an O_APPEND descriptor
                    off = self.rng.randrange(len(content) + 64 * KiB + 1)
                    data = self.data(self.rng.randrange(1, 96 * KiB))
                    n = os.pwrite(fd, data, off)
                    put(content, off, data[:n])
                    self.say("  pwrite %d at %d (size %d) -> %d" % (len(data), off,
                                                                  len(content), n))
                elif kind == "ftruncate":
                    size = self.rng.choice([0, len(content) // 2, len(content) + 10000,
                                            self.rng.randrange(len(content) + 200 * KiB + 1)])
                    os.ftruncate(fd, size)
                    resize(content, size)
                    self.say("  ftruncate %d" % size)
                elif kind == "mmap":
                    if not content:
                        continue
                    size = os.fstat(fd).st_size
                    if size != len(content):
                        self.problem("DIVERGENCE", "%s: fstat size %d before mmap, model %d"
                                     % (cur, size, len(content)))
                        continue
                    off = self.rng.randrange(len(content))
                    data = self.data(min(len(content) - off, self.rng.randrange(1, 64 * KiB)))
                    mm = mmap.mmap(fd, len(content), mmap.MAP_SHARED,
                                   mmap.PROT_READ | mmap.PROT_WRITE)
                    mm[off:off + len(data)] = data
                    mm.flush()
                    mm.close()
                    put(content, off, data)
                    self.say("  mmap write %d at %d" % (len(data), off))
                elif kind == "pread":
                    if not content:
                        continue
                    off = self.rng.randrange(len(content))
                    got = os.pread(fd, 128 * KiB, off)
                    exp = bytes(content[off:off + 128 * KiB])
                    if got != exp:
                        self.problem("DIVERGENCE", "%s: pread of the open file at %d: %s"
                                     % (cur, off, describe_diff(exp, got)))
                    else:
                        self.say("  pread %d at %d ok" % (len(got), off))
                elif kind == "append2":
                    if unlinked:
                        continue
                    # a second descriptor, O_APPEND, of the file still being written: its
                    # close is not the completing one (this process holds another)
                    data = self.data(self.rng.randrange(1, 64 * KiB))
                    fd2, err = self.try_(os.open, self.m(cur), os.O_WRONLY | os.O_APPEND)
                    if err is not None:
                        self.problem("UNDOCUMENTED", "%s: a second O_APPEND open of the file "
                                     "being written failed %s" % (cur, ename(err)))
                        continue
                    try:
                        n = os.write(fd2, data)
                        put(content, len(content), data[:n])
                        self.say("  append %d via a second descriptor -> %d" % (len(data), n))
                    finally:
                        try:
                            os.close(fd2)
                        except OSError as e:
                            self.problem("UNDOCUMENTED", "%s: close of the second descriptor"
                                         " failed %s" % (cur, ename(e.errno)))
                elif kind == "rename":
                    if unlinked:
                        continue
                    onto = [f for f in self.ref_files() if f != cur]
                    if onto and self.rng.random() < 0.5:
                        dst = self.rng.choice(onto)  # replace-by-rename
                    else:
                        dst = self.new_file_path()
                    if dst is None:
                        continue
                    pred = self.predict_rename_open(cur, dst)
                    _, err = self.try_(os.rename, self.m(cur), self.m(dst))
                    replacing = os.path.exists(self.r(dst))
                    if self.outcome("  rename open %s -> %s%s" % (cur, dst, " (replacing)"
                                    if replacing else ""), err, pred):
                        # the open file's old bytes (O_TRUNC) and dst's are gone, now
                        for p in (cur, dst):
                            if os.path.exists(self.r(p)):
                                os.unlink(self.r(p))
                        cur = dst
                        self.count("rename open file" + (" onto a file" if replacing else ""))
                elif kind == "unlink":
                    if unlinked:
                        continue
                    _, err = self.try_(os.unlink, self.m(cur))
                    if self.outcome("  unlink the open %s" % cur, err, None):
                        if os.path.exists(self.r(cur)):
                            os.unlink(self.r(cur))
                        unlinked = True
                        self.count("unlink open file")
                elif kind == "fstat":
                    size = os.fstat(fd).st_size
                    if size != len(content):
                        self.problem("DIVERGENCE", "%s: fstat of the open file says %d bytes,"
                                     " the model %d" % (cur, size, len(content)))
                    else:
                        self.say("  fstat %d ok" % size)
                elif kind == "fsync":
                    os.fsync(fd)
                    self.say("  fsync ok")
            except OSError as e:
                self.problem("UNDOCUMENTED", "%s: %s on the open file failed %s (%s)"
                             % (cur, kind, ename(e.errno), os.strerror(e.errno)))
        try:
            os.close(fd)
            cerr = None
        except OSError as e:
            cerr = e.errno
        if src_fd is not None:
            os.close(src_fd)
        if cerr is not None:
            self.problem("UNDOCUMENTED", "close of %s (%d bytes) failed with %s (%s): the "
                         "upload failed on a healthy server" % (cur, len(content),
                                                                ename(cerr), os.strerror(cerr)))
            return
        if unlinked:
            self.say("close %s: ok (removed while open: nothing uploaded)" % cur)
            return
        self.ref_write(cur, bytes(content))
        self.say("close %s: ok, %d bytes committed" % (cur, len(content)))
        if self.rng.random() < 0.3:
            self.op_read(cur)

    def predict_rename_open(self, a, b):
        # the open file is in the reference only if it replaced one (its old bytes)
        rb = self.r(b)
        if not os.path.isdir(os.path.dirname(rb)):
            return errno.ENOENT
        if os.path.isdir(rb):
            return errno.EISDIR
        return None

    # ---- the whole tree, through the mount ----

    def check_tree(self, contents):
        files, dirs = self.ref_tree()
        mfiles, mdirs = {}, set()
        for root, dnames, fnames in os.walk(self.mnt):
            relroot = os.path.relpath(root, self.mnt)
            for d in dnames:
                mdirs.add(d if relroot == "." else relroot + "/" + d)
            for f in fnames:
                rel = f if relroot == "." else relroot + "/" + f
                try:
                    st = os.lstat(os.path.join(root, f))
                    mfiles[rel] = st.st_size
                except OSError as e:
                    mfiles[rel] = "stat failed: %s" % ename(e.errno)
        bad = []
        for p in sorted(set(files) - set(mfiles)):
            bad.append("missing in the mount: %s (%d bytes)" % (p, files[p]))
        for p in sorted(set(mfiles) - set(files)):
            bad.append("extra in the mount: %s (%s bytes)" % (p, mfiles[p]))
        for p in sorted(set(files) & set(mfiles)):
            if files[p] != mfiles[p]:
                bad.append("size of %s: mount %s, reference %d" % (p, mfiles[p], files[p]))
        for p in sorted(dirs - mdirs):
            bad.append("directory missing in the mount: %s" % p)
        for p in sorted(mdirs - dirs):
            bad.append("extra directory in the mount: %s" % p)
        if contents:
            for p in sorted(set(files) & set(mfiles)):
                try:
                    with open(self.m(p), "rb") as f:
                        got = f.read()
                except OSError as e:
                    bad.append("reading %s through the mount failed: %s" % (p, ename(e.errno)))
                    continue
                exp = self.ref_bytes(p)
                if got != exp:
                    bad.append("content of %s through the mount: %s"
                               % (p, describe_diff(exp, got)))
        for b in bad:
            self.problem("DIVERGENCE", "tree: " + b)
        if not bad:
            self.say("tree check%s: %d files, %d directories ok"
                     % (" with contents" if contents else "", len(files), len(dirs)))

    def run(self):
        ops = [("session", self.op_session, 40), ("read", self.op_read, 8),
               ("stat", self.op_stat, 4), ("unlink", self.op_unlink, 8),
               ("unlink-missing", lambda: self.op_unlink(missing=True), 1),
               ("rename-completed", self.op_rename_completed, 4), ("mkdir", self.op_mkdir, 7),
               ("rmdir", self.op_rmdir, 5), ("rename-dir", self.op_rename_dir, 5),
               ("modify-completed", self.op_modify_completed, 8)]
        _, fns, weights = zip(*[o for o in ops if o[0] not in self.skip])
        for self.opno in range(1, self.nops + 1):
            self.rng.choices(fns, weights)[0]()
            if not os.path.ismount(self.mnt):
                self.problem("ERROR", "the mount is gone (ENOTCONN: the daemon died?)")
                return
            if self.opno % 25 == 0 and self.opno != self.nops:
                self.check_tree(contents=False)
        self.opno = self.nops
        # past the listing's TTL (2 s), so the mount shows what the server lists too
        time.sleep(2.2)
        self.check_tree(contents=True)


def put(buf, off, data):
    if off > len(buf):
        buf.extend(b"\0" * (off - len(buf)))
    buf[off:off + len(data)] = data


def resize(buf, size):
    if size < len(buf):
        del buf[size:]
    else:
        buf.extend(b"\0" * (size - len(buf)))


def describe_diff(exp, got):
    if len(exp) != len(got):
        head = "expected %d bytes, got %d" % (len(exp), len(got))
    else:
        head = "%d bytes as expected" % len(exp)
    n = min(len(exp), len(got))
    first = next((i for i in range(n) if exp[i] != got[i]), None) if exp[:n] != got[:n] \
        else None
    if first is None:
        return head + (", the common prefix is equal" if len(exp) != len(got) else "")
    return "%s, first difference at offset %d (expected %s..., got %s...)" % (
        head, first, exp[first:first + 8].hex(), got[first:first + 8].hex())


def cmd_run(a):
    os.makedirs(a.ref, exist_ok=True)
    os.makedirs(a.src, exist_ok=True)
    log = open(a.log, "a") if a.log else sys.stdout
    print("modelcheck: seed %d, %d operations, part_size %d" % (a.seed, a.ops, a.part_size),
          flush=True)
    skip = [k for k in a.skip.replace(",", " ").split() if k]
    if skip:
        print("modelcheck: leaving out %s" % ", ".join(skip), flush=True)
    m = Model(a.mount, a.ref, a.src, a.seed, a.ops, a.part_size, log, skip)
    try:
        m.run()
    except Exception as e:  # a crash of the checker (or of the mount: ENOTCONN)
        m.problem("ERROR", "%s: %s" % (type(e).__name__, e))
    files, dirs = m.ref_tree()
    print("modelcheck: seed %d done: %d files (%d bytes) and %d directories in the reference;"
          " %d operations failed on the mount and were not applied; %s"
          % (a.seed, len(files), sum(files.values()), len(dirs), m.skipped,
             ", ".join("%s %d" % kv for kv in sorted(m.stats.items()))), flush=True)
    if m.problems:
        print("modelcheck: seed %d: %d problem(s):" % (a.seed, len(m.problems)))
        for kind, text in m.problems[:30]:
            print("  %s: %s" % (kind, text))
        if len(m.problems) > 30:
            print("  ... and %d more (the operation log has them all)" % (len(m.problems) - 30))
        print("replay: MODEL_SEEDS=%d bats tests/reliability/model.bats" % a.seed)
        return 1
    return 0


def get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def cmd_verify(a):
    listing = json.loads(get(a.base + "/files?limit=10000&order=asc"))
    if listing.get("has_more"):
        print("verify: the listing has more than one page")
        return 1
    byname, count = {}, {}
    for f in listing["data"]:  # creation order: the last of a name, at its highest
        n = f["filename"]       # created_at, is the newest
        count[n] = count.get(n, 0) + 1
        if n not in byname or f["created_at"] >= byname[n]["created_at"]:
            byname[n] = f
    ref = {}
    for root, _, fnames in os.walk(a.ref):
        for fn in fnames:
            p = os.path.join(root, fn)
            ref[os.path.relpath(p, a.ref).replace(os.sep, "/")] = p
    bad = []
    for n in sorted(set(ref) - set(byname)):
        bad.append("missing on the server: %s (%d bytes)" % (n, os.path.getsize(ref[n])))
    for n in sorted(set(byname) - set(ref)):
        bad.append("on the server, not in the reference: %s (%s, %d bytes)"
                   % (n, byname[n]["id"], byname[n]["bytes"]))
    for n in sorted(set(ref) & set(byname)):
        with open(ref[n], "rb") as f:
            exp = f.read()
        got = get(a.base + "/files/%s/content" % byname[n]["id"])
        if got != exp:
            bad.append("content of %s (%s): %s" % (n, byname[n]["id"], describe_diff(exp, got)))
    for n in sorted(count):
        if count[n] > 1:
            olds = [f["id"] for f in listing["data"] if f["filename"] == n
                    and f["id"] != byname[n]["id"]]
            bad.append("%s is on the server %d times: the replaced %s not deleted (the mount "
                       "shows it as %s~ID)" % (n, count[n], ", ".join(olds), n))
    print("verify: %d files in the reference, %d names on the server (%d files)"
          % (len(ref), len(byname), len(listing["data"])))
    if bad:
        print("verify: the server differs from the reference:")
        for b in bad:
            print("  " + b)
        return 1
    print("verify: the server matches the reference")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--mount", required=True)
    r.add_argument("--ref", required=True)
    r.add_argument("--src", required=True)
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--ops", type=int, default=150)
    r.add_argument("--part-size", type=int, default=1 * MiB)
    r.add_argument("--log", help="the operation log (default stdout)")
    r.add_argument("--skip", default="", help="operations to leave out, for triage: any of "
                   "session read stat unlink unlink-missing rename-completed mkdir rmdir "
                   "rename-dir modify-completed, and within a session pwrite ftruncate mmap "
                   "pread append2 rename unlink fstat fsync (the same seed then makes "
                   "another sequence)")
    v = sub.add_parser("verify")
    v.add_argument("--ref", required=True)
    v.add_argument("--base", required=True)
    a = p.parse_args()
    sys.exit(cmd_run(a) if a.cmd == "run" else cmd_verify(a))


if __name__ == "__main__":
    main()
