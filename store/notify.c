/*
 * notify.c - waking followers in any process when a commit lands.
 *
 * <store>/evs-notify is a 4096-byte file mapped MAP_SHARED by every process
 * that opens the store. Its first 4 bytes (native endian) are a commit
 * counter: a writer increments it after each commit and wakes the futex
 * waiters on it; a follower reads the counter, checks the store, and sleeps
 * on the futex while the counter is unchanged. A shared (non-private) futex
 * on a file mapping works across processes. Waits are bounded by the
 * caller's timeout, and followers re-check the store after every wake, so a
 * lost wake-up costs at most one timeout, never an event.
 *
 * The counter wraps; only equality matters. The file holds no data: it may
 * be deleted while no process has the store open, and any opener, read-only
 * ones included, creates it again. A reader that cannot (a read-only copy
 * of a store) waits on a private word and relies on the re-check.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define NOTIFY_SIZE 4096

int evs__notify_open(evs__notify *n, const char *dir, bool create, char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	void *map;
	int fd;

	n->fd = -1;
	n->word = NULL;
	snprintf(path, sizeof path, "%s/evs-notify", dir);
	/* Creating the file is harmless even for a read-only opener: it holds
	 * no data. */
	(void)create;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM))
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM || errno == ENOENT))
		goto private_word;
	if (fd < 0) {
		snprintf(err, errlen, "could not open \"%s\": %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && st.st_size < NOTIFY_SIZE && ftruncate(fd, NOTIFY_SIZE) != 0) {
		close(fd); /* too short and read-only: mapping it would fault */
		goto private_word;
	}
	map = mmap(NULL, NOTIFY_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		map = mmap(NULL, NOTIFY_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		snprintf(err, errlen, "could not map \"%s\": %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	n->fd = fd;
	n->word = map;
	return 0;

private_word:
	/* A read-only opener that can neither create nor map the file (a
	 * read-only copy of a store) follows by the periodic re-check alone:
	 * no other process can wake it, its own commits are none. */
	map = mmap(NULL, NOTIFY_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED) {
		snprintf(err, errlen, "could not map a page: %s", strerror(errno));
		return -1;
	}
	n->fd = -1;
	n->word = map;
	return 0;
}

void evs__notify_close(evs__notify *n)
{
	if (n->word)
		munmap((void *)n->word, NOTIFY_SIZE);
	if (n->fd >= 0)
		close(n->fd);
	n->word = NULL;
	n->fd = -1;
}

uint32_t evs__notify_seq(const evs__notify *n)
{
	return __atomic_load_n(n->word, __ATOMIC_ACQUIRE);
}

void evs__notify_wake(evs__notify *n)
{
	__atomic_add_fetch(n->word, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, n->word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void evs__notify_wait(const evs__notify *n, uint32_t seq, int timeout_ms)
{
	struct timespec ts, *tp = NULL;

	if (timeout_ms == 0)
		return;
	if (timeout_ms > 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000;
		tp = &ts;
	}
	/* EAGAIN: the counter moved already; EINTR/ETIMEDOUT: caller re-checks */
	syscall(SYS_futex, n->word, FUTEX_WAIT, seq, tp, NULL, 0);
}
