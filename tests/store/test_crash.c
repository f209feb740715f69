/*
 * test_crash.c - SIGKILL of appending processes at random moments loses no
 * acknowledged event and leaves no partial batch.
 *
 * Each round forks one or two children (processes sharing the store) that
 * open it and append batches of 1..20 events from 1..3 threads each (so
 * kills also land inside group commits, in commits of several processes,
 * and with a tiny map inside map growth). Every event's metadata
 * carries its batch number, the batch size and its index in the batch.
 * After evs_append returns EVS_OK the child writes (batch, first, last,
 * size) to a pipe: the acknowledgement. The parent kills the children after
 * a random delay (microseconds, from the seeded PRNG), collects the
 * acknowledgements, reopens the store and checks it; after all rounds it
 * checks everything: every acknowledged batch is present at its positions,
 * every batch present is complete, positions are gap-free and evs_verify
 * (the event indexes too: appends carry tags and correlation ids)
 * finds no problem.
 *
 * Kills: EVS_CRASH_KILLS (default 200, the CI run; a soak by hand:
 *   EVS_CRASH_KILLS=1000 meson test -C build store-crash --print-errorlogs
 * or the binary itself, whose last line counts kills and events).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "kit_store.h"

#define DEFAULT_KILLS    200
#define NSTREAMS         8
#define MAX_BATCH_EVENTS 20

enum { REC_READY = 1, REC_ACK = 2, REC_ERROR = 3 };

/* One pipe record (32 bytes, written with one write(): atomic). */
typedef struct rec {
	uint64_t batch, first, last;
	uint32_t size, kind;
} rec;

typedef struct child_thread {
	evs_store *st;
	int out;
	uint64_t seed, base;
} child_thread;

static void send_rec(int fd, rec r)
{
	ssize_t k;
	while ((k = write(fd, &r, sizeof r)) < 0 && errno == EINTR)
		;
	if (k != (ssize_t)sizeof r)
		_exit(4);
}

static void *child_appender(void *arg)
{
	child_thread *t = arg;
	uint64_t r;
	r = t->seed;
	tu_mp data[MAX_BATCH_EVENTS], meta[MAX_BATCH_EVENTS];
	evs_event_in evs[MAX_BATCH_EVENTS];
	for (int i = 0; i < MAX_BATCH_EVENTS; i++) {
		tu_mp_init(&data[i]);
		tu_mp_init(&meta[i]);
	}
	for (uint64_t j = 0;; j++) {
		uint64_t batch = t->base + j;
		size_t k = kit_rand_range(&r, 1, MAX_BATCH_EVENTS);
		char stream[16];
		snprintf(stream, sizeof stream, "crash-%d",
			 (int)kit_rand_range(&r, 0, NSTREAMS - 1));
		for (size_t i = 0; i < k; i++) {
			tu_mp_reset(&data[i]);
			tu_mp_reset(&meta[i]);
			tu_mp_blob_map(&data[i], kit_rand_range(&r, 0, 1500), kit_rand(&r));
			tu_mp_map_ints(&meta[i], 3, "b", (long long)batch, "k", (long long)k, "i",
				       (long long)i);
			tu_event(&evs[i], kit_rand_range(&r, 0, 9) ? "Crash" : "Rare", &data[i],
				 &meta[i]);
			/* tags and correlation ids: the event indexes (index.c)
			 * are written in the commits this test kills */
			static const char *const pool[] = {"t:0", "t:1", "t:2", "t:3", "t:4"};
			size_t nt = kit_rand_range(&r, 0, 3), at = kit_rand_range(&r, 0, 4);
			evs[i].tags = pool + (at + nt > 5 ? 5 - nt : at);
			evs[i].ntags = nt;
			if (kit_rand_range(&r, 0, 1))
				evs_uuid_v7(evs[i].correlation_id);
		}
		uint64_t expected = EVS_ANY;
		if (kit_rand_range(&r, 0, 3) == 0) {
			evs_stream_info h;
			int rc = evs_stream_head(t->st, stream, &h);
			if (rc != EVS_OK && rc != EVS_NOT_FOUND) {
				send_rec(t->out, (rec){(uint64_t)rc, 0, 0, 0, REC_ERROR});
				_exit(2);
			}
			expected = h.version;
		}
		evs_append_result res;
		int rc = evs_append(t->st, stream, expected, evs, k, &res);
		if (rc == EVS_OK) {
			send_rec(t->out, (rec){batch, res.first_position, res.last_position,
					       (uint32_t)k, REC_ACK});
		} else if (rc != EVS_WRONG_VERSION || expected == EVS_ANY) {
			fprintf(stderr, "crash child: evs_append: %s: %s\n", evs_code_name(rc),
				evs_errmsg(t->st));
			send_rec(t->out, (rec){(uint64_t)rc, 0, 0, 0, REC_ERROR});
			_exit(2);
		}
	}
	return NULL;
}

static void crash_child(int out, int round, int proc, uint64_t seed, int threads, int sync,
			size_t map)
{
	evs_options o;
	evs_options_init(&o);
	o.sync = sync;
	o.map_size = map;
	evs_store *st = NULL;
	int rc = evs_open(kit_dir, &o, &st);
	if (rc != EVS_OK) {
		fprintf(stderr, "crash child: evs_open: %s\n", evs_open_errmsg());
		send_rec(out, (rec){(uint64_t)rc, 0, 0, 0, REC_ERROR});
		_exit(2);
	}
	send_rec(out, (rec){0, 0, 0, 0, REC_READY});
	child_thread ts[3];
	pthread_t th[3];
	for (int i = 0; i < threads; i++) {
		ts[i].st = st;
		ts[i].out = out;
		ts[i].seed =
			seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(round * 8 + proc * 4 + i + 1));
		ts[i].base =
			(uint64_t)(round + 1) * 10000000ull + (uint64_t)(proc * 3 + i) * 1000000ull;
		if (i > 0)
			pthread_create(&th[i], NULL, child_appender, &ts[i]);
	}
	child_appender(&ts[0]); /* never returns */
	_exit(5);
}

typedef struct acks {
	rec *a;
	size_t n, cap;
} acks;

static void add_rec(acks *acc, const rec *r, int *ready, int round)
{
	if (r->kind == REC_READY) {
		*ready = 1;
		return;
	}
	tu_check(r->kind == REC_ACK, "round %d: the child failed with %s", round,
		 r->kind == REC_ERROR ? evs_code_name((int)r->batch) : "a bad record");
	tu_check_u64_eq(r->last - r->first + 1, r->size);
	if (acc->n == acc->cap) {
		acc->cap = acc->cap ? acc->cap * 2 : 1024;
		acc->a = realloc(acc->a, acc->cap * sizeof *acc->a);
		ck_assert_ptr_nonnull(acc->a);
	}
	acc->a[acc->n++] = *r;
}

/* One child's pipe and its partial record. */
typedef struct chan {
	int fd, eof, ready;
	size_t have;
	char buf[64 * 1024];
} chan;

/* Read whole records from the pipes until the deadline (or until every
 * pipe is at EOF when deadline < 0). */
static void drain(chan *cs, int n, acks *acc, int64_t deadline_us, int round)
{
	for (;;) {
		struct pollfd p[2];
		int np = 0, map[2];
		for (int i = 0; i < n; i++)
			if (!cs[i].eof) {
				p[np] = (struct pollfd){.fd = cs[i].fd, .events = POLLIN};
				map[np++] = i;
			}
		if (np == 0)
			return;
		int timeout = -1;
		if (deadline_us >= 0) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			int64_t now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
			if (now >= deadline_us)
				return;
			timeout = (int)((deadline_us - now + 999) / 1000);
		} else {
			timeout = 30000;
		}
		int r = poll(p, (nfds_t)np, timeout);
		if (r < 0 && errno == EINTR)
			continue;
		ck_assert_int_ge(r, 0);
		if (r == 0) {
			tu_check(deadline_us >= 0, "round %d: no EOF from a dead child", round);
			continue;
		}
		for (int j = 0; j < np; j++) {
			if (!(p[j].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			chan *c = &cs[map[j]];
			ssize_t k = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
			if (k < 0 && errno == EINTR)
				continue;
			ck_assert_int_ge(k, 0);
			if (k == 0) {
				tu_check_u64_eq(c->have, 0); /* records are written whole */
				c->eof = 1;
				continue;
			}
			c->have += (size_t)k;
			size_t off = 0;
			for (; c->have - off >= sizeof(rec); off += sizeof(rec)) {
				rec rr;
				memcpy(&rr, c->buf + off, sizeof rr);
				add_rec(acc, &rr, &c->ready, round);
			}
			memmove(c->buf, c->buf + off, c->have - off);
			c->have -= off;
		}
	}
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* An event as the final check sees it. */
typedef struct seen {
	uint64_t batch, size, index, position, version;
	char name[16];
} seen;

static int cmp_seen(const void *a, const void *b)
{
	const seen *x = a, *y = b;
	if (x->batch != y->batch)
		return x->batch < y->batch ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static int cmp_batch_key(const void *key, const void *elem)
{
	uint64_t b = *(const uint64_t *)key;
	const seen *s = elem;
	return b < s->batch ? -1 : b > s->batch;
}

/* Check the acknowledged batches in [from, to) against the open store. */
static void check_acks_quick(evs_store *st, const acks *acc, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		const rec *a = &acc->a[i];
		evs_iter *it;
		tu_ok(st, evs_read_all(st, a->first, EVS_FORWARD, NULL, a->size, &it));
		tu_ev *evs;
		size_t n = tu_drain(st, it, &evs);
		tu_check(n == a->size, "acknowledged batch %llu: %zu of %u events",
			 (unsigned long long)a->batch, n, a->size);
		for (size_t j = 0; j < n; j++) {
			int64_t b = -1, idx = -1;
			tu_check_u64_eq(evs[j].ev.position, a->first + j);
			tu_check_i64_eq(
				tu_mp_get_int(evs[j].ev.metadata, evs[j].ev.metadata_len, "b", &b),
				0);
			tu_check_i64_eq(tu_mp_get_int(evs[j].ev.metadata, evs[j].ev.metadata_len,
						      "i", &idx),
					0);
			tu_check(
				(uint64_t)b == a->batch && (uint64_t)idx == j,
				"acknowledged batch %llu: position %llu holds batch %lld event %lld",
				(unsigned long long)a->batch,
				(unsigned long long)evs[j].ev.position, (long long)b,
				(long long)idx);
		}
		tu_evs_free(evs, n);
	}
}

/* EVS_CRASH_KILLS, else DEFAULT_KILLS. */
static unsigned kill_count(void)
{
	const char *v = getenv("EVS_CRASH_KILLS");
	if (!v || !*v)
		return DEFAULT_KILLS;
	char *end;
	unsigned long k = strtoul(v, &end, 10);
	ck_assert_msg(*end == '\0' && k > 0 && k < 1000000, "EVS_CRASH_KILLS=%s: want a count", v);
	return (unsigned)k;
}

START_TEST(test_sigkill_appenders)
{
	uint64_t r;
	uint64_t seed = r = kit_seed("test_sigkill_appenders");
	evs_close(tu_open(kit_dir, NULL));

	acks acc = {NULL, 0, 0};
	unsigned kills = 0, during_open = 0, rounds = 0, restarts = 0;
	unsigned want = kill_count();
	uint64_t last_seen = 0;
	chan *cs = calloc(2, sizeof *cs);
	ck_assert_ptr_nonnull(cs);
	for (int round = 0; kills < want; round++, rounds++) {
		int procs = (int)kit_rand_range(&r, 1, 2);
		int threads = (int)kit_rand_range(&r, 1, 3);
		int sync = kit_rand_range(&r, 0, 2) == 0 ? EVS_SYNC_NONE : EVS_SYNC_FULL;
		size_t map = kit_rand_range(&r, 0, 3) == 0 ? ((size_t)1 << 20) : 0;
		int wait_ready = kit_rand_range(&r, 0, 4) != 0;
		int64_t delay_us = (int64_t)kit_rand_range(&r, 0, wait_ready ? 80000 : 3000);

		size_t before = acc.n;
		pid_t pid[2];
		for (int p = 0; p < procs; p++) {
			int fds[2];
			tu_check_i64_eq(pipe(fds), 0);
			fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);
			pid[p] = fork();
			ck_assert_int_ge(pid[p], 0);
			if (pid[p] == 0) {
				close(fds[0]);
				for (int q = 0; q < p; q++)
					close(cs[q].fd);
				crash_child(fds[1], round, p, seed, threads, sync, map);
			}
			close(fds[1]);
			memset(&cs[p], 0, offsetof(chan, buf));
			cs[p].fd = fds[0];
		}
		if (wait_ready) {
			int64_t limit = mono_us() + 30000000;
			for (int p = 0; p < procs; p++) {
				while (!cs[p].ready && mono_us() < limit)
					drain(cs, procs, &acc, mono_us() + 1000, round);
				tu_check(cs[p].ready, "round %d: child %d did not open the store",
					 round, p);
			}
		}
		/* the random moment: keep draining until it comes */
		drain(cs, procs, &acc, mono_us() + delay_us, round);
		for (int p = 0; p < procs; p++)
			kill(pid[p], SIGKILL);
		for (int p = 0; p < procs; p++) {
			int status = kit_wait_child(pid[p], 60000, 0);
			tu_check(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
				 "round %d: child %d ended by itself (%s %d)", round, p,
				 WIFSIGNALED(status) ? "signal" : "exit status",
				 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			kills++;
		}
		drain(cs, procs, &acc, -1, round);
		for (int p = 0; p < procs; p++) {
			close(cs[p].fd);
			during_open += !cs[p].ready;
		}

		/*
		 * One round in three also simulates a system restart (a new
		 * boot id, for a store that tells a restart by it): recovery
		 * may put back the meta pages of the last checkpoint, so every
		 * batch acknowledged since must come back from what was synced
		 * (the children inherit the id). Not after EVS_SYNC_NONE,
		 * which promises nothing past the process (its commits reach
		 * the disk with the next checkpoint).
		 */
		int restarted = 0;
		if (kit_rand_range(&r, 0, 2) == 0 && sync == EVS_SYNC_FULL) {
			restarted = 1;
			char boot[64];
			snprintf(boot, sizeof boot, "test-crash-boot-%d", round);
			setenv("EVS_BOOT_ID", boot, 1);
			restarts++;
		}

		/* reopen: the acknowledged batches of this round are all there */
		evs_store *st = tu_open(kit_dir, NULL);
		evs_store_info h;
		tu_ok(st, evs_head(st, &h));
		ck_assert_uint_ge(h.last_position, last_seen);
		for (size_t i = before; i < acc.n; i++)
			tu_check(acc.a[i].last <= h.last_position,
				 "round %d (%d processes, %d threads, %s, map %zu, %s): "
				 "acknowledged position %llu is gone (head %llu)",
				 round, procs, threads,
				 sync == EVS_SYNC_FULL ? "full sync" : "no sync", map,
				 restarted ? "restart" : "no restart",
				 (unsigned long long)acc.a[i].last,
				 (unsigned long long)h.last_position);
		last_seen = h.last_position;
		check_acks_quick(st, &acc, before, acc.n);
		if (round % 10 == 9)
			tu_check_u64_eq(tu_verify(st), 0);
		evs_close(st);
	}
	free(cs);

	/* the final check of everything */
	evs_store *st = tu_open(kit_dir, NULL);
	/* one pass over the log, keeping only what the check needs (a soak's
	 * log is too large to copy whole) */
	evs_store_info head;
	tu_ok(st, evs_head(st, &head));
	size_t n = 0;
	seen *s = calloc(head.last_position ? head.last_position : 1, sizeof *s);
	ck_assert_ptr_nonnull(s);
	evs_iter *it;
	tu_ok(st, evs_read_all(st, 1, EVS_FORWARD, NULL, 0, &it));
	evs_event ev;
	int rc;
	while ((rc = evs_iter_next(it, &ev)) == EVS_OK) {
		const evs_event *e = &ev;
		size_t i = n++;
		tu_check(i < head.last_position, "more events than the head says");
		tu_check(e->position == i + 1, "position %llu where %zu was expected",
			 (unsigned long long)e->position, i + 1);
		int64_t b = -1, k = -1, idx = -1;
		tu_check_i64_eq(tu_mp_get_int(e->metadata, e->metadata_len, "b", &b), 0);
		tu_check_i64_eq(tu_mp_get_int(e->metadata, e->metadata_len, "k", &k), 0);
		tu_check_i64_eq(tu_mp_get_int(e->metadata, e->metadata_len, "i", &idx), 0);
		tu_check(b > 0 && k >= 1 && k <= MAX_BATCH_EVENTS && idx >= 0 && idx < k,
			 "position %zu: bad metadata (batch %lld, size %lld, index %lld)", i + 1,
			 (long long)b, (long long)k, (long long)idx);
		s[i].batch = (uint64_t)b;
		s[i].size = (uint64_t)k;
		s[i].index = (uint64_t)idx;
		s[i].position = e->position;
		s[i].version = e->version;
		tu_check(e->stream.len < sizeof s[i].name, "stream name too long");
		memcpy(s[i].name, e->stream.ptr, e->stream.len);
	}
	tu_check(rc == EVS_END, "reading the log: %s", evs_code_name(rc));
	evs_iter_free(it);
	tu_check_u64_eq(n, head.last_position);
	qsort(s, n, sizeof *s, cmp_seen);
	size_t batches = 0;
	for (size_t i = 0; i < n;) {
		/* one batch: exactly its size, indexes 0..k-1, contiguous */
		size_t k = s[i].size;
		tu_check(i + k <= n, "batch %llu is partial: index %llu at the end",
			 (unsigned long long)s[i].batch, (unsigned long long)s[i].index);
		for (size_t j = 0; j < k; j++) {
			const seen *x = &s[i + j];
			tu_check(x->batch == s[i].batch && x->index == j && x->size == k,
				 "batch %llu is partial or doubled (at index %zu: batch %llu "
				 "index %llu of %llu)",
				 (unsigned long long)s[i].batch, j, (unsigned long long)x->batch,
				 (unsigned long long)x->index, (unsigned long long)x->size);
			tu_check_u64_eq(x->position, s[i].position + j);
			tu_check_u64_eq(x->version, s[i].version + j);
			tu_check(strcmp(x->name, s[i].name) == 0,
				 "batch %llu spans streams %s and %s",
				 (unsigned long long)s[i].batch, s[i].name, x->name);
		}
		tu_check(i + k == n || s[i + k].batch != s[i].batch,
			 "batch %llu has more than %zu events", (unsigned long long)s[i].batch, k);
		batches++;
		i += k;
	}
	for (size_t i = 0; i < acc.n; i++) {
		const rec *a = &acc.a[i];
		const seen *x = bsearch(&a->batch, s, n, sizeof *s, cmp_batch_key);
		tu_check(x != NULL, "acknowledged batch %llu is lost",
			 (unsigned long long)a->batch);
		while (x > s && x[-1].batch == a->batch)
			x--;
		tu_check_u64_eq(x->position, a->first);
		tu_check_u64_eq(x->size, a->size);
	}
	tu_check_u64_eq(tu_verify(st), 0);
	fprintf(stderr,
		"crash: %u kills in %u rounds (%u while opening, %u rounds followed by a "
		"simulated restart), %zu events in %zu batches, %zu acknowledged, %zu committed "
		"but unacknowledged\n",
		kills, rounds, during_open, restarts, n, batches, acc.n, batches - acc.n);
	ck_assert_uint_ge(kills, want);
	ck_assert_uint_gt(acc.n, rounds);
	unsetenv("EVS_BOOT_ID");
	free(s);
	free(acc.a);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_sigkill_appenders,
		NULL,
	};

	/* about 0.1 s a kill, with a generous margin */
	const char *v = getenv("EVS_CRASH_KILLS");
	unsigned long k = v && *v ? strtoul(v, NULL, 10) : DEFAULT_KILLS;
	return kit_main("store-crash", 600 + (int)(k < 100000 ? k : 100000), tests);
}
