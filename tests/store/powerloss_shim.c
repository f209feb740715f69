/*
 * powerloss_shim.c - an LD_PRELOAD layer that keeps a copy of a directory
 * holding only what was synced: what would survive a power loss.
 *
 *   EVS_PL_DIR=/abs/store EVS_PL_SHADOW=/abs/shadow LD_PRELOAD=.../powerloss_shim.so prog
 *
 * The shadow starts as a copy of the store directory made by the test. For
 * every file opened under EVS_PL_DIR the shim tracks which 4 KiB pages were
 * written (write, writev, pwrite, pwritev, pwritev2) since that file was
 * last synced, in a bitmap file EVS_PL_SHADOW/.pl/<name>.dirty mapped
 * MAP_SHARED, so it outlives a SIGKILL of the process. A sync copies the
 * file's dirty pages from the real file into the shadow copy and clears
 * their bits:
 *   fsync, fdatasync, syncfs, sync   all dirty pages of the file (all files)
 *   a write on an O_SYNC/O_DSYNC descriptor, or pwritev2 with RWF_SYNC/
 *   RWF_DSYNC                        the pages that write touched
 *   msync(MS_SYNC)                   the pages of that range of a mapping
 * A file mapped MAP_SHARED with PROT_WRITE is written behind the shim's
 * back, so its fsync copies the whole file. A sync also sets the shadow
 * file's size to the real file's. A page is copied with the real file's
 * content at the moment of the copy: what a disk holds after a sync that
 * raced later writes is one of the outcomes a real disk allows. A process
 * killed during a sync leaves part of it in the shadow: also allowed.
 *
 * After the kill, the shadow (without .pl/) is the store after a power
 * loss. The adversarial variant (the test's side) additionally copies a
 * random subset of the pages whose dirty bit is still set, from the real
 * files: writes a disk may have made durable on its own, in any order.
 *
 * Simplifications, on the lenient side: a new file exists in the shadow
 * from its first sync on (no directory fsync needed); rename and unlink
 * act on the shadow at once. sync_file_range promises nothing and does
 * nothing here. Only files under EVS_PL_DIR are tracked; without the two
 * variables the shim passes everything through. Writes the shim cannot see
 * (io_uring, copy_file_range, sendfile) never reach the shadow: a test
 * then reports data lost, never a false pass.
 */
/* Both the plain and the 64 names are defined here, so the headers must
 * not rename the plain ones (64-bit off_t is the only kind on LP64). */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define PG          4096
#define MAX_FILES   64
#define MAX_FDS     4096
#define MAX_MAPS    64
#define BITMAP_SIZE ((size_t)1 << 20) /* bits for 8 Mi pages: 32 GiB */

struct file {
	char name[256]; /* relative to the store directory */
	_Atomic(uint64_t) *dirty;
	atomic_int mapped; /* mapped shared and writable at some time */
};

struct map {
	char *addr;
	size_t len;
	off_t off;
	int file;
};

static char dir[PATH_MAX], shadow[PATH_MAX];
static size_t dir_len;
static int enabled;
static struct file files[MAX_FILES];
static int nfiles;
static int fd_file[MAX_FDS];  /* file index + 1, 0 = not tracked */
static int fd_flags[MAX_FDS]; /* open flags */
static struct map maps[MAX_MAPS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* the real functions */
static int (*r_open)(const char *, int, ...);
static int (*r_openat)(int, const char *, int, ...);
static ssize_t (*r_write)(int, const void *, size_t);
static ssize_t (*r_writev)(int, const struct iovec *, int);
static ssize_t (*r_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*r_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*r_pwritev2)(int, const struct iovec *, int, off_t, int);
static int (*r_fsync)(int);
static int (*r_fdatasync)(int);
static int (*r_close)(int);
static int (*r_msync)(void *, size_t, int);
static void *(*r_mmap)(void *, size_t, int, int, int, off_t);
static int (*r_munmap)(void *, size_t);
static int (*r_rename)(const char *, const char *);
static int (*r_unlink)(const char *);
static int (*r_syncfs)(int);
static void (*r_sync)(void);

#define REAL(name) r_##name = (__typeof__(r_##name))dlsym(RTLD_NEXT, #name)

/* The real functions, found on first use: a sanitizer's runtime (or any
 * library's constructor) may call in before this library's constructor. */
static void resolve(void)
{
	static atomic_int done;
	if (atomic_load(&done))
		return;
	REAL(open);
	REAL(openat);
	REAL(write);
	REAL(writev);
	REAL(pwrite);
	REAL(pwritev);
	REAL(pwritev2);
	REAL(fsync);
	REAL(fdatasync);
	REAL(close);
	REAL(msync);
	REAL(mmap);
	REAL(munmap);
	REAL(rename);
	REAL(unlink);
	REAL(syncfs);
	REAL(sync);
	atomic_store(&done, 1);
}

#define RESOLVE(name)              \
	do {                       \
		if (!r_##name)     \
			resolve(); \
	} while (0)

__attribute__((constructor)) static void pl_init(void)
{
	resolve();
	const char *d = getenv("EVS_PL_DIR"), *s = getenv("EVS_PL_SHADOW");
	if (!d || !s || !*d || !*s || strlen(d) >= sizeof dir - 1 || strlen(s) >= sizeof shadow)
		return;
	if (!realpath(d, dir) || !realpath(s, shadow))
		return;
	dir_len = strlen(dir);
	char p[PATH_MAX + 8];
	snprintf(p, sizeof p, "%s/.pl", shadow);
	mkdir(p, 0755);
	enabled = 1;
}

static void die(const char *what)
{
	char m[512];
	int n = snprintf(m, sizeof m, "powerloss_shim: %s: %s\n", what, strerror(errno));
	if (r_write)
		(void)!r_write(2, m, (size_t)n);
	_exit(99);
}

/* The name under the store directory of path (opened relative to dirfd),
 * or NULL. */
static const char *rel_name(int dirfd, const char *path, char buf[PATH_MAX])
{
	char base[PATH_MAX];
	if (path[0] == '/') {
		snprintf(buf, PATH_MAX, "%s", path);
	} else {
		if (dirfd == AT_FDCWD) {
			if (!getcwd(base, sizeof base))
				return NULL;
		} else {
			char link[64];
			snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
			ssize_t k = readlink(link, base, sizeof base - 1);
			if (k < 0)
				return NULL;
			base[k] = '\0';
		}
		if ((size_t)snprintf(buf, PATH_MAX, "%s/%s", base, path) >= PATH_MAX)
			return NULL;
	}
	if (strncmp(buf, dir, dir_len) != 0 || buf[dir_len] != '/')
		return NULL;
	const char *r = buf + dir_len + 1;
	while (r[0] == '.' && r[1] == '/')
		r += 2;
	return *r ? r : NULL;
}

static void shadow_path(char out[PATH_MAX + 300], const char *name)
{
	snprintf(out, PATH_MAX + 300, "%s/%s", shadow, name);
}

/* The tracked file of that name (made on first sight); -1 when full. */
static int file_of(const char *name)
{
	for (int i = 0; i < nfiles; i++)
		if (strcmp(files[i].name, name) == 0)
			return i;
	if (nfiles == MAX_FILES || strlen(name) >= sizeof files[0].name)
		return -1;
	struct file *f = &files[nfiles];
	snprintf(f->name, sizeof f->name, "%s", name);
	char p[PATH_MAX + 300];
	snprintf(p, sizeof p, "%s/.pl/", shadow);
	size_t k = strlen(p);
	for (const char *c = name; *c && k < sizeof p - 8; c++)
		p[k++] = *c == '/' ? '%' : *c;
	snprintf(p + k, sizeof p - k, ".dirty");
	int fd = r_open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)BITMAP_SIZE) != 0)
		die("dirty bitmap");
	void *m = r_mmap(NULL, BITMAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap of a dirty bitmap");
	r_close(fd);
	f->dirty = m;
	return nfiles++;
}

static void track(int fd, int dirfd, const char *path, int flags)
{
	char buf[PATH_MAX];
	if (!enabled || fd < 0 || fd >= MAX_FDS)
		return;
	fd_file[fd] = 0; /* a number reused after a close the shim missed */
	const char *name = rel_name(dirfd, path, buf);
	if (!name)
		return;
	pthread_mutex_lock(&lock);
	int i = file_of(name);
	if (i >= 0) {
		fd_file[fd] = i + 1;
		fd_flags[fd] = flags;
	}
	pthread_mutex_unlock(&lock);
}

static int tracked(int fd)
{
	if (!enabled || fd < 0 || fd >= MAX_FDS)
		return -1;
	return fd_file[fd] - 1;
}

static void mark(int f, off_t off, size_t len)
{
	if (len == 0)
		return;
	uint64_t p0 = (uint64_t)off / PG, p1 = ((uint64_t)off + len - 1) / PG;
	for (uint64_t p = p0; p <= p1 && p / 64 < BITMAP_SIZE / 8; p++)
		atomic_fetch_or(&files[f].dirty[p / 64], (uint64_t)1 << (p % 64));
}

/* Copy pages [p0, p1] of file f from the real file to the shadow. */
static void copy_pages(int f, uint64_t p0, uint64_t p1, int only_dirty)
{
	char rp[PATH_MAX + 300], sp[PATH_MAX + 300];
	snprintf(rp, sizeof rp, "%s/%s", dir, files[f].name);
	shadow_path(sp, files[f].name);
	int rfd = r_open(rp, O_RDONLY | O_CLOEXEC);
	if (rfd < 0)
		return; /* unlinked meanwhile */
	int sfd = r_open(sp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (sfd < 0)
		die("open of a shadow file");
	struct stat st;
	if (fstat(rfd, &st) != 0)
		die("fstat");
	uint64_t npages = ((uint64_t)st.st_size + PG - 1) / PG;
	char page[PG];
	for (uint64_t p = p0; p <= p1 && p < npages && p / 64 < BITMAP_SIZE / 8; p++) {
		uint64_t bit = (uint64_t)1 << (p % 64);
		uint64_t was = atomic_fetch_and(&files[f].dirty[p / 64], ~bit);
		if (only_dirty && !(was & bit)) {
			/* skip a clean word at once */
			if (p % 64 == 0 && atomic_load(&files[f].dirty[p / 64]) == 0)
				p += 63;
			continue;
		}
		ssize_t k = pread(rfd, page, PG, (off_t)(p * PG));
		if (k < 0)
			die("pread");
		if (k > 0 && r_pwrite(sfd, page, (size_t)k, (off_t)(p * PG)) != k)
			die("pwrite to a shadow file");
	}
	r_close(rfd);
	r_close(sfd);
}

/* A sync of the whole file: its size, then every dirty page. */
static void sync_file(int f)
{
	char rp[PATH_MAX + 300], sp[PATH_MAX + 300];
	struct stat st;
	snprintf(rp, sizeof rp, "%s/%s", dir, files[f].name);
	if (stat(rp, &st) != 0)
		return;
	shadow_path(sp, files[f].name);
	int sfd = r_open(sp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (sfd < 0 || ftruncate(sfd, st.st_size) != 0)
		die("size of a shadow file");
	r_close(sfd);
	copy_pages(f, 0, UINT64_MAX - 1, !atomic_load(&files[f].mapped));
}

static void after_write(int fd, off_t off, ssize_t n, int sync_flags)
{
	int f = tracked(fd);
	if (f < 0 || n <= 0)
		return;
	mark(f, off, (size_t)n);
	if ((fd_flags[fd] & (O_SYNC | O_DSYNC)) || sync_flags)
		copy_pages(f, (uint64_t)off / PG, ((uint64_t)off + (uint64_t)n - 1) / PG, 0);
}

/* ---- the interposed calls ------------------------------------------------ */

#define MODE_ARG(flags, mode)                        \
	mode_t mode = 0;                             \
	if ((flags) & (O_CREAT | __O_TMPFILE)) {     \
		va_list ap;                          \
		va_start(ap, flags);                 \
		mode = (mode_t)va_arg(ap, unsigned); \
		va_end(ap);                          \
	}

int open(const char *path, int flags, ...);
int open(const char *path, int flags, ...)
{
	RESOLVE(open);
	MODE_ARG(flags, mode);
	int fd = r_open(path, flags, mode);
	track(fd, AT_FDCWD, path, flags);
	return fd;
}

int open64(const char *path, int flags, ...);
int open64(const char *path, int flags, ...)
{
	RESOLVE(open);
	MODE_ARG(flags, mode);
	int fd = r_open(path, flags, mode);
	track(fd, AT_FDCWD, path, flags);
	return fd;
}

int openat(int dirfd, const char *path, int flags, ...);
int openat(int dirfd, const char *path, int flags, ...)
{
	RESOLVE(openat);
	MODE_ARG(flags, mode);
	int fd = r_openat(dirfd, path, flags, mode);
	track(fd, dirfd, path, flags);
	return fd;
}

int openat64(int dirfd, const char *path, int flags, ...);
int openat64(int dirfd, const char *path, int flags, ...)
{
	RESOLVE(openat);
	MODE_ARG(flags, mode);
	int fd = r_openat(dirfd, path, flags, mode);
	track(fd, dirfd, path, flags);
	return fd;
}

int __open_2(const char *path, int flags);
int __open_2(const char *path, int flags)
{
	return open(path, flags);
}

int __open64_2(const char *path, int flags);
int __open64_2(const char *path, int flags)
{
	return open(path, flags);
}

int creat(const char *path, mode_t mode);
int creat(const char *path, mode_t mode)
{
	return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int close(int fd)
{
	RESOLVE(close);
	if (fd >= 0 && fd < MAX_FDS)
		fd_file[fd] = 0;
	return r_close(fd);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	RESOLVE(write);
	ssize_t k = r_write(fd, buf, n);
	if (k > 0 && tracked(fd) >= 0)
		after_write(fd, lseek(fd, 0, SEEK_CUR) - k, k, 0);
	return k;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	RESOLVE(writev);
	ssize_t k = r_writev(fd, iov, cnt);
	if (k > 0 && tracked(fd) >= 0)
		after_write(fd, lseek(fd, 0, SEEK_CUR) - k, k, 0);
	return k;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	RESOLVE(pwrite);
	ssize_t k = r_pwrite(fd, buf, n, off);
	after_write(fd, off, k, 0);
	return k;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off);
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	RESOLVE(pwritev);
	ssize_t k = r_pwritev(fd, iov, cnt, off);
	after_write(fd, off, k, 0);
	return k;
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off);
ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pwritev(fd, iov, cnt, off);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	RESOLVE(pwritev2);
	ssize_t k = r_pwritev2(fd, iov, cnt, off, flags);
	if (k > 0 && tracked(fd) >= 0)
		after_write(fd, off == -1 ? lseek(fd, 0, SEEK_CUR) - k : off, k,
			    flags & (RWF_SYNC | RWF_DSYNC));
	return k;
}

ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags);
ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	return pwritev2(fd, iov, cnt, off, flags);
}

int fsync(int fd)
{
	RESOLVE(fsync);
	int rc = r_fsync(fd);
	int f = tracked(fd);
	if (rc == 0 && f >= 0)
		sync_file(f);
	return rc;
}

int fdatasync(int fd)
{
	RESOLVE(fdatasync);
	int rc = r_fdatasync(fd);
	int f = tracked(fd);
	if (rc == 0 && f >= 0)
		sync_file(f);
	return rc;
}

static void sync_all(void)
{
	pthread_mutex_lock(&lock);
	int n = nfiles;
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < n; i++)
		sync_file(i);
}

int syncfs(int fd)
{
	RESOLVE(syncfs);
	int rc = r_syncfs(fd);
	if (rc == 0 && enabled)
		sync_all();
	return rc;
}

void sync(void)
{
	RESOLVE(sync);
	r_sync();
	if (enabled)
		sync_all();
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	RESOLVE(mmap);
	void *m = r_mmap(addr, len, prot, flags, fd, off);
	int f = tracked(fd);
	if (m != MAP_FAILED && f >= 0 && (prot & PROT_WRITE) && (flags & MAP_SHARED)) {
		atomic_store(&files[f].mapped, 1);
		pthread_mutex_lock(&lock);
		for (int i = 0; i < MAX_MAPS; i++)
			if (!maps[i].addr) {
				maps[i] = (struct map){m, len, off, f};
				break;
			}
		pthread_mutex_unlock(&lock);
	}
	return m;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len)
{
	RESOLVE(munmap);
	if (enabled) {
		pthread_mutex_lock(&lock);
		for (int i = 0; i < MAX_MAPS; i++)
			if (maps[i].addr == addr)
				maps[i].addr = NULL;
		pthread_mutex_unlock(&lock);
	}
	return r_munmap(addr, len);
}

int msync(void *addr, size_t len, int flags)
{
	RESOLVE(msync);
	int rc = r_msync(addr, len, flags);
	if (rc != 0 || !enabled || !(flags & MS_SYNC))
		return rc;
	char *a = addr;
	pthread_mutex_lock(&lock);
	struct map found = {NULL, 0, 0, -1};
	for (int i = 0; i < MAX_MAPS; i++)
		if (maps[i].addr && a >= maps[i].addr && a < maps[i].addr + maps[i].len)
			found = maps[i];
	pthread_mutex_unlock(&lock);
	if (found.addr && len > 0) {
		uint64_t from = (uint64_t)(found.off + (a - found.addr));
		copy_pages(found.file, from / PG, (from + len - 1) / PG, 0);
	}
	return rc;
}

int rename(const char *from, const char *to)
{
	RESOLVE(rename);
	int rc = r_rename(from, to);
	char b1[PATH_MAX], b2[PATH_MAX];
	const char *n1, *n2;
	if (rc == 0 && enabled && (n1 = rel_name(AT_FDCWD, from, b1)) &&
	    (n2 = rel_name(AT_FDCWD, to, b2))) {
		char s1[PATH_MAX + 300], s2[PATH_MAX + 300];
		shadow_path(s1, n1);
		shadow_path(s2, n2);
		r_rename(s1, s2);
		pthread_mutex_lock(&lock);
		for (int i = 0; i < nfiles; i++)
			if (strcmp(files[i].name, n1) == 0 && strlen(n2) < sizeof files[i].name)
				snprintf(files[i].name, sizeof files[i].name, "%s", n2);
		pthread_mutex_unlock(&lock);
	}
	return rc;
}

int unlink(const char *path)
{
	RESOLVE(unlink);
	int rc = r_unlink(path);
	char b[PATH_MAX];
	const char *n;
	if (rc == 0 && enabled && (n = rel_name(AT_FDCWD, path, b))) {
		char s[PATH_MAX + 300];
		shadow_path(s, n);
		r_unlink(s);
	}
	return rc;
}
