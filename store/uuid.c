/*
 * uuid.c - UUIDv7 event ids (RFC 9562 section 5.7).
 *
 * Debian 12's libuuid (2.38) predates UUIDv7, so the 16 bytes are laid out
 * here: 48-bit Unix time in milliseconds, version 7, then in rand_a (12
 * bits) the fraction of the millisecond (RFC 9562 section 6.2, method 3),
 * and 62 bits from getrandom(). Time-ordered ids keep inserts into the id
 * index local; within a thread the 60 time bits strictly increase (a
 * repeated or earlier time takes the last one + 1), so a batch's ids are in
 * key order and fill the index's last leaf whole (LMDB splits a leaf in
 * the middle for keys that land inside it).
 *
 * The random bits come from a per-thread pool filled by one getrandom()
 * for 32 ids: a getrandom() per event was 8% of the CPU of a 100-event
 * append (the kernel's per-call crng state setup). A forked child must not
 * hand out its parent's unused bytes again, so a fork (pthread_atfork)
 * moves a generation counter and a pool of an older generation is refilled.
 */
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

#define POOL 256 /* 32 ids of 8 random bytes */

static unsigned fork_gen; /* moved in the child of every fork */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
	__atomic_add_fetch(&fork_gen, 1, __ATOMIC_RELAXED);
}

static void register_atfork(void)
{
	(void)pthread_atfork(NULL, NULL, on_fork_child);
}

static _Thread_local struct {
	uint8_t b[POOL];
	size_t used; /* == POOL: empty */
	unsigned gen;
	bool init;
	uint64_t last; /* the last id's 60 time bits */
} pool;

static void random8(uint8_t *out)
{
	unsigned gen;

	pthread_once(&atfork_once, register_atfork);
	gen = __atomic_load_n(&fork_gen, __ATOMIC_RELAXED);
	if (!pool.init || pool.gen != gen || pool.used + 8 > POOL) {
		size_t got = 0;
		while (got < POOL) {
			ssize_t n = getrandom(pool.b + got, POOL - got, 0);
			if (n > 0)
				got += (size_t)n;
		}
		pool.used = 0;
		pool.gen = gen;
		pool.init = true;
	}
	memcpy(out, pool.b + pool.used, 8);
	memset(pool.b + pool.used, 0, 8); /* handed out once */
	pool.used += 8;
}

void evs_uuid_v7(uint8_t out[16])
{
	struct timespec ts;
	uint64_t ms, t;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	/* 48 bits of milliseconds, 12 of the millisecond's fraction */
	t = (ms & ((UINT64_C(1) << 48) - 1)) << 12 |
	    (uint64_t)(ts.tv_nsec % 1000000) * 4096 / 1000000;
	random8(out + 8);
	if (t <= pool.last) /* the pool is this thread's: so is last */
		t = pool.last + 1;
	pool.last = t;
	ms = t >> 12;
	for (int i = 5; i >= 0; i--, ms >>= 8)
		out[i] = (uint8_t)ms;
	out[6] = (uint8_t)(0x70 | ((t >> 8) & 0x0f));
	out[7] = (uint8_t)t;
	out[8] = (uint8_t)(0x80 | (out[8] & 0x3f));
}

void evs__uuid_text(const uint8_t id[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	int j = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[id[i] >> 4];
		out[j++] = hex[id[i] & 15];
	}
	out[j] = 0;
}
