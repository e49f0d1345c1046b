#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

pid_t uf_proc_tgid(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	pid_t tgid = pid;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	if (f)
		fclose(f);
	return tgid;
}

/* The offset, open flags and mount of a descriptor, from /proc/PID/fdinfo/FD. */
static int fd_info(int fdinfo_dir, const char *fd, unsigned long long *pos, unsigned *flags,
		   long *mnt_id)
{
	int f = openat(fdinfo_dir, fd, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -errno;
	char buf[512];
	ssize_t n = read(f, buf, sizeof buf - 1);
	close(f);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	char *p = strstr(buf, "pos:"), *fl = strstr(buf, "flags:"), *mi = strstr(buf, "mnt_id:");
	if (!p || !fl || !mi || sscanf(p, "pos: %llu", pos) != 1 || sscanf(fl, "flags: %o", flags) != 1 ||
	    sscanf(mi, "mnt_id: %ld", mnt_id) != 1)
		return -EIO;
	return 0;
}

/* Whether one of tgid's descriptors is open for writing on path. */
static bool fd_writes(pid_t tgid, const char *path)
{
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)tgid);
	DIR *d = opendir(dir);
	snprintf(dir, sizeof dir, "/proc/%d/fdinfo", (int)tgid);
	int info = d ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	bool found = false;
	struct dirent *de;
	char link[PATH_MAX + 1];
	while (info >= 0 && !found && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		ssize_t n = readlinkat(dirfd(d), de->d_name, link, sizeof link - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		unsigned long long pos;
		unsigned flags;
		long mnt_id;
		found = strcmp(link, path) == 0 &&
			(fd_info(info, de->d_name, &pos, &flags, &mnt_id) < 0 ||
			 (flags & O_ACCMODE) != O_RDONLY);
	}
	if (info >= 0)
		close(info);
	if (d)
		closedir(d);
	return found;
}

/* Whether tgid maps path shared and writable: its stores reach the file after a close. */
static bool maps_writable(pid_t tgid, const char *path)
{
	char name[64];
	snprintf(name, sizeof name, "/proc/%d/maps", (int)tgid);
	FILE *f = fopen(name, "re");
	if (!f)
		return false;
	bool found = false;
	char *line = NULL;
	size_t cap = 0;
	size_t plen = strlen(path);
	while (!found && getline(&line, &cap, f) > 0) {
		/* "START-END PERMS OFFSET DEV INODE   PATH" */
		char perms[8];
		int at = 0;
		if (sscanf(line, "%*s %7s %*s %*s %*s %n", perms, &at) != 1 || at == 0)
			continue;
		const char *p = line + at;
		while (*p == ' ')
			p++;
		found = perms[1] == 'w' && perms[3] == 's' && strncmp(p, path, plen) == 0 &&
			(p[plen] == '\n' || p[plen] == '\0');
	}
	free(line);
	fclose(f);
	return found;
}

/* At most this many processes are looked at below one: a descriptor is shared by fork,
 * so whoever else holds the opener's file is almost always its child or grandchild. */
#define DESCENDANTS_MAX 256

/* Calls fn for each child of process pid (every thread's children); stops when fn says. */
static bool any_child(pid_t pid, bool (*fn)(pid_t child, void *ud), void *ud)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return false;
	bool hit = false;
	struct dirent *de;
	while (!hit && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char name[96];
		snprintf(name, sizeof name, "/proc/%d/task/%.20s/children", (int)pid, de->d_name);
		FILE *f = fopen(name, "re");
		int child;
		while (f && !hit && fscanf(f, "%d", &child) == 1)
			hit = fn((pid_t)child, ud);
		if (f)
			fclose(f);
	}
	closedir(d);
	return hit;
}

struct walk {
	const char *path;
	unsigned seen;
};

static bool child_writes(pid_t child, void *ud)
{
	struct walk *wk = ud;
	if (++wk->seen > DESCENDANTS_MAX)
		return false;
	return fd_writes(child, wk->path) || maps_writable(child, wk->path) ||
	       any_child(child, child_writes, wk);
}

bool uf_proc_can_write(pid_t tgid, const char *path)
{
	struct walk wk = {.path = path};
	return fd_writes(tgid, path) || maps_writable(tgid, path) ||
	       any_child(tgid, child_writes, &wk);
}

bool uf_proc_is(pid_t pid, const char *comm)
{
	char path[64], buf[32];
	snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return strcmp(buf, comm) == 0;
}

/* Filesystems whose stat answers from the local kernel: no FUSE (this mount is one), no
 * network filesystem that could hang the operation that asked. */
static bool local_fstype(const char *t)
{
	static const char *const ok[] = {"ext2",  "ext3",	"ext4",	   "xfs",     "btrfs",
					 "tmpfs", "ramfs",	"f2fs",	   "vfat",    "exfat",
					 "ntfs3", "zfs",	"bcachefs", "overlay", "squashfs",
					 "iso9660", "udf",	"jfs",	   "nilfs2"};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (strcmp(t, ok[i]) == 0)
			return true;
	return false;
}

/* Whether mount mnt_id of pid's mount namespace holds a local filesystem. */
static bool local_mount(pid_t pid, long mnt_id)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mountinfo", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool local = false;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		char *end;
		long id = strtol(line, &end, 10);
		if (end == line || id != mnt_id)
			continue;
		/* "ID PARENT MAJ:MIN ROOT POINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPER" */
		char *sep = strstr(line, " - ");
		char fstype[64];
		local = sep && sscanf(sep + 3, "%63s", fstype) == 1 && local_fstype(fstype);
		break;
	}
	free(line);
	fclose(f);
	return local;
}

int uf_proc_source_size(pid_t pid, const char *name, uint64_t min, uint64_t *size)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	snprintf(path, sizeof path, "/proc/%d/fdinfo", (int)pid);
	int info = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (info < 0) {
		int rc = -errno;
		closedir(d);
		return rc;
	}
	unsigned candidates = 0;
	uint64_t only = 0;
	bool named = false;
	struct dirent *de;
	char link[PATH_MAX + 1];
	while (!named && (de = readdir(d))) {
		unsigned long long pos;
		unsigned flags;
		long mnt_id;
		if (de->d_name[0] == '.' || fd_info(info, de->d_name, &pos, &flags, &mnt_id) < 0)
			continue;
		if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_PATH) || pos != 0)
			continue;
		ssize_t n = readlinkat(dirfd(d), de->d_name, link, sizeof link - 1);
		if (n <= 0 || link[0] != '/')
			continue; /* a pipe, a socket, an anonymous inode */
		link[n] = '\0';
		struct stat st;
		if (!local_mount(pid, mnt_id) || fstatat(dirfd(d), de->d_name, &st, 0) < 0 ||
		    !S_ISREG(st.st_mode) || (uint64_t)st.st_size <= min)
			continue;
		const char *base = strrchr(link, '/') + 1;
		if (strcmp(base, name) == 0) {
			named = true;
			only = (uint64_t)st.st_size;
		} else if (candidates++ == 0) {
			only = (uint64_t)st.st_size;
		}
	}
	close(info);
	closedir(d);
	if (!named && candidates != 1)
		return -ENOENT;
	*size = only;
	return 0;
}
