/*
 * test_concurrency.c - optimistic concurrency under contention, from
 * threads sharing one handle (group commit) and from processes each with
 * their own handle: exactly one appender wins each version, no version is
 * skipped or doubled, losers see EVS_WRONG_VERSION with the actual version.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "kit_store.h"

#define ROUNDS 60

/* What one contender saw. */
typedef struct contender {
	evs_store *st;
	const char *stream;
	int id;
	int rounds;
	uint64_t won[ROUNDS];
	size_t nwon;
	size_t lost;
	/* first unexpected thing, reported by the main thread */
	int bad_rc;
	char bad[256];
} contender;

/* One round: read the head, append with exactly that version. */
static void contend(contender *c, int round)
{
	evs_stream_info h;
	int rc = evs_stream_head(c->st, c->stream, &h);
	if (rc != EVS_OK && rc != EVS_NOT_FOUND) {
		c->bad_rc = rc;
		snprintf(c->bad, sizeof c->bad, "evs_stream_head: %s", evs_errmsg(c->st));
		return;
	}
	tu_mp meta;
	tu_mp_init(&meta);
	tu_mp_map_ints(&meta, 2, "c", (long long)c->id, "r", (long long)round);
	evs_event_in ev;
	tu_event(&ev, "Claimed", NULL, &meta);
	evs_append_result r;
	rc = evs_append(c->st, c->stream, h.version, &ev, 1, &r);
	tu_mp_destroy(&meta);
	if (rc == EVS_OK) {
		if (r.version != h.version + 1 || r.first_position != r.last_position ||
		    r.idempotent) {
			c->bad_rc = -1;
			snprintf(
				c->bad, sizeof c->bad,
				"won with expected %llu but result version %llu (positions %llu..%llu)",
				(unsigned long long)h.version, (unsigned long long)r.version,
				(unsigned long long)r.first_position,
				(unsigned long long)r.last_position);
			return;
		}
		c->won[c->nwon++] = r.version;
	} else if (rc == EVS_WRONG_VERSION) {
		if (r.version <= h.version) {
			c->bad_rc = -1;
			snprintf(c->bad, sizeof c->bad,
				 "lost with expected %llu but actual version reported as %llu",
				 (unsigned long long)h.version, (unsigned long long)r.version);
			return;
		}
		c->lost++;
	} else {
		c->bad_rc = rc;
		snprintf(c->bad, sizeof c->bad, "evs_append: %s: %s", evs_code_name(rc),
			 evs_errmsg(c->st));
	}
}

static void *contend_thread(void *arg)
{
	contender *c = arg;
	for (int i = 0; i < c->rounds && c->bad_rc == 0; i++)
		contend(c, i);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The wins of all contenders are exactly versions 1..V of the stream, and
 * the event at each version is the winner's. */
static void check_wins(evs_store *st, const char *stream, contender *cs, size_t ncs)
{
	size_t total = 0, lost = 0, attempts = 0;
	for (size_t i = 0; i < ncs; i++) {
		ck_assert_msg(cs[i].bad_rc == 0, "contender %d: %s", cs[i].id, cs[i].bad);
		total += cs[i].nwon;
		lost += cs[i].lost;
		attempts += (size_t)cs[i].rounds;
		for (size_t j = 1; j < cs[i].nwon; j++)
			ck_assert_uint_gt(cs[i].won[j], cs[i].won[j - 1]);
	}
	ck_assert_uint_eq(total + lost, attempts);
	uint64_t *all = malloc((total ? total : 1) * sizeof *all);
	int *owner = malloc((total + 1) * sizeof *owner);
	ck_assert(all != NULL && owner != NULL);
	size_t k = 0;
	for (size_t i = 0; i < ncs; i++)
		for (size_t j = 0; j < cs[i].nwon; j++) {
			all[k++] = cs[i].won[j];
			ck_assert_uint_le(cs[i].won[j], total);
			owner[cs[i].won[j]] = cs[i].id;
		}
	qsort(all, total, sizeof *all, cmp_u64);
	for (size_t i = 0; i < total; i++)
		ck_assert_msg(all[i] == i + 1, "versions won: [%zu] = %llu (doubled or skipped)", i,
			      (unsigned long long)all[i]);

	evs_stream_info h;
	tu_ok(st, evs_stream_head(st, stream, &h));
	ck_assert_uint_eq(h.version, total);

	evs_iter *it;
	tu_ok(st, evs_read_stream(st, stream, 1, EVS_FORWARD, 0, &it));
	tu_ev *evs;
	size_t n = tu_drain(st, it, &evs);
	ck_assert_uint_eq(n, total);
	for (size_t i = 0; i < n; i++) {
		int64_t c = -1;
		ck_assert_uint_eq(evs[i].ev.version, i + 1);
		ck_assert_int_eq(tu_mp_get_int(evs[i].ev.metadata, evs[i].ev.metadata_len, "c", &c),
				 0);
		ck_assert_msg(c == owner[i + 1], "version %zu written by %lld, won by %d", i + 1,
			      (long long)c, owner[i + 1]);
	}
	tu_evs_free(evs, n);
	fprintf(stderr, "%s: %zu attempts, %zu won, %zu lost\n", stream, attempts, total, lost);
	free(all);
	free(owner);
}

START_TEST(test_threads_exact_version)
{
	evs_store *st = tu_open(kit_dir, NULL);
	enum { T = 8 };
	contender cs[T];
	pthread_t th[T];
	memset(cs, 0, sizeof cs);
	for (int i = 0; i < T; i++) {
		cs[i].st = st;
		cs[i].stream = "contested";
		cs[i].id = i;
		cs[i].rounds = ROUNDS;
		ck_assert_int_eq(pthread_create(&th[i], NULL, contend_thread, &cs[i]), 0);
	}
	for (int i = 0; i < T; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	check_wins(st, "contested", cs, T);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

/*
 * Processes: each child waits for the start signal (EOF on `go`), opens its
 * own handle, runs its contenders (threads_per_child threads), and writes
 * its contenders' records to `out`.
 */
static void child_contend(int go, int out, int child, int threads_per_child)
{
	char b;
	while (read(go, &b, 1) < 0 && errno == EINTR)
		;
	evs_store *st = NULL;
	int rc = evs_open(kit_dir, NULL, &st);
	kit_child_check(rc == EVS_OK, "evs_open: %s", evs_open_errmsg());
	contender cs[8];
	pthread_t th[8];
	memset(cs, 0, sizeof cs);
	for (int i = 0; i < threads_per_child; i++) {
		cs[i].st = st;
		cs[i].stream = "contested";
		cs[i].id = child * 100 + i;
		cs[i].rounds = ROUNDS;
		kit_child_check(pthread_create(&th[i], NULL, contend_thread, &cs[i]) == 0,
				"thread");
	}
	for (int i = 0; i < threads_per_child; i++)
		pthread_join(th[i], NULL);
	evs_close(st);
	for (int i = 0; i < threads_per_child; i++)
		cs[i].st = NULL;
	kit_child_check(tu_write_full(out, cs, (size_t)threads_per_child * sizeof cs[0]) == 0,
			"write");
	_exit(0);
}

static void run_processes(int nproc, int threads_per_child)
{
	/* create the store first so that children race on appends only */
	evs_close(tu_open(kit_dir, NULL));
	int go[2];
	ck_assert_int_eq(pipe(go), 0);
	pid_t pids[8];
	int outs[8];
	for (int p = 0; p < nproc; p++) {
		int out[2];
		ck_assert_int_eq(pipe(out), 0);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(go[1]);
			close(out[0]);
			child_contend(go[0], out[1], p, threads_per_child);
		}
		close(out[1]);
		pids[p] = pid;
		outs[p] = out[0];
	}
	close(go[0]);
	close(go[1]); /* start */

	size_t ncs = (size_t)nproc * (size_t)threads_per_child;
	contender *cs = calloc(ncs, sizeof *cs);
	ck_assert_ptr_nonnull(cs);
	for (int p = 0; p < nproc; p++) {
		int rc = tu_read_full(outs[p], cs + (size_t)p * (size_t)threads_per_child,
				      (size_t)threads_per_child * sizeof *cs, 300000);
		close(outs[p]);
		if (rc != 0) {
			for (int q = 0; q < nproc; q++)
				kill(pids[q], SIGKILL);
		}
		kit_wait_child(pids[p], 300000, 1);
		ck_assert_msg(rc == 0, "child %d sent no results", p);
	}
	evs_store *st = tu_open(kit_dir, NULL);
	check_wins(st, "contested", cs, ncs);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
	free(cs);
}

START_TEST(test_processes_exact_version)
{
	run_processes(4, 1);
}
END_TEST

START_TEST(test_processes_with_threads_exact_version)
{
	run_processes(2, 4);
}
END_TEST

/* ---- group commit sanity ----------------------------------------------- */

#define GC_THREADS 16
#define GC_EVENTS  40

typedef struct gc_worker {
	evs_store *st;
	int id;
	evs_append_result res[GC_EVENTS];
	int rc;
	char msg[256];
} gc_worker;

static void *gc_thread(void *arg)
{
	gc_worker *w = arg;
	char stream[32];
	snprintf(stream, sizeof stream, "g-%d", w->id);
	for (int i = 0; i < GC_EVENTS; i++) {
		tu_mp data;
		tu_mp_init(&data);
		tu_mp_map_ints(&data, 2, "w", (long long)w->id, "i", (long long)i);
		evs_event_in ev;
		tu_event(&ev, "Tick", &data, NULL);
		int rc = evs_append(w->st, stream, EVS_ANY, &ev, 1, &w->res[i]);
		tu_mp_destroy(&data);
		if (rc != EVS_OK) {
			w->rc = rc;
			snprintf(w->msg, sizeof w->msg, "%s", evs_errmsg(w->st));
			return NULL;
		}
	}
	return NULL;
}

START_TEST(test_group_commit_distinct_streams)
{
	/* a small map: groups also meet map growth */
	evs_options o;
	evs_options_init(&o);
	o.map_size = 1 << 20;
	evs_store *st = tu_open(kit_dir, &o);
	gc_worker ws[GC_THREADS];
	pthread_t th[GC_THREADS];
	memset(ws, 0, sizeof ws);
	for (int i = 0; i < GC_THREADS; i++) {
		ws[i].st = st;
		ws[i].id = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, gc_thread, &ws[i]), 0);
	}
	for (int i = 0; i < GC_THREADS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);

	const uint64_t total = GC_THREADS * GC_EVENTS;
	uint8_t *seen = calloc(total + 1, 1);
	ck_assert_ptr_nonnull(seen);
	for (int i = 0; i < GC_THREADS; i++) {
		ck_assert_msg(ws[i].rc == 0, "worker %d: %s: %s", i, evs_code_name(ws[i].rc),
			      ws[i].msg);
		for (int j = 0; j < GC_EVENTS; j++) {
			const evs_append_result *r = &ws[i].res[j];
			ck_assert_uint_eq(r->first_position, r->last_position);
			ck_assert_uint_ge(r->first_position, 1);
			ck_assert_uint_le(r->first_position, total);
			ck_assert_msg(!seen[r->first_position], "position %llu given twice",
				      (unsigned long long)r->first_position);
			seen[r->first_position] = 1;
			ck_assert_uint_eq(r->version, (uint64_t)j + 1);
			ck_assert_int_eq(r->idempotent, 0);
			if (j > 0)
				ck_assert_uint_gt(r->first_position,
						  ws[i].res[j - 1].first_position);
		}
	}
	free(seen);
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, total);
	ck_assert_uint_eq(h.streams, GC_THREADS);

	/* the log agrees with the results; count commits by recorded_at */
	tu_ev *evs;
	size_t n = tu_read_all(st, &evs);
	ck_assert_uint_eq(n, total);
	size_t commits = 1;
	for (size_t i = 0; i < n; i++) {
		int64_t w = -1, k = -1;
		ck_assert_int_eq(tu_mp_get_int(evs[i].ev.data, evs[i].ev.data_len, "w", &w), 0);
		ck_assert_int_eq(tu_mp_get_int(evs[i].ev.data, evs[i].ev.data_len, "i", &k), 0);
		ck_assert_uint_eq(ws[w].res[k].first_position, evs[i].ev.position);
		ck_assert_uint_eq(evs[i].ev.version, (uint64_t)k + 1);
		if (i > 0 && evs[i].ev.recorded_at != evs[i - 1].ev.recorded_at)
			commits++;
	}
	tu_evs_free(evs, n);
	fprintf(stderr, "group commit: %llu single-event appends from %d threads in %zu commits\n",
		(unsigned long long)total, GC_THREADS, commits);
	/* with 16 durable appenders, some commits must have carried several */
	ck_assert_uint_lt(commits, total);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

/* ---- many fast appenders: hand-offs between group leaders ---------------- */

#define FAST_THREADS 8
#define FAST_EVENTS  2000

typedef struct fast_worker {
	evs_store *st;
	int rc;
	uint64_t last_pos;
	char msg[256];
} fast_worker;

static void *fast_thread(void *arg)
{
	fast_worker *w = arg;
	evs_event_in ev;
	tu_event(&ev, "Fast", NULL, NULL);
	for (int i = 0; i < FAST_EVENTS; i++) {
		evs_append_result r;
		int rc = evs_append(w->st, "fast", EVS_ANY, &ev, 1, &r);
		if (rc != EVS_OK || r.first_position <= w->last_pos) {
			w->rc = rc != EVS_OK ? rc : -1;
			snprintf(w->msg, sizeof w->msg, "%s", evs_errmsg(w->st));
			return NULL;
		}
		w->last_pos = r.first_position;
	}
	return NULL;
}

START_TEST(test_group_commit_stress_nosync)
{
	/* without syncs, commits are short and leadership changes hands
	 * thousands of times a second */
	evs_options o;
	tu_options(&o, EVS_SYNC_NONE);
	evs_store *st = tu_open(kit_dir, &o);
	fast_worker ws[FAST_THREADS];
	pthread_t th[FAST_THREADS];
	memset(ws, 0, sizeof ws);
	for (int i = 0; i < FAST_THREADS; i++) {
		ws[i].st = st;
		ck_assert_int_eq(pthread_create(&th[i], NULL, fast_thread, &ws[i]), 0);
	}
	for (int i = 0; i < FAST_THREADS; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_msg(ws[i].rc == 0, "worker %d: %s: %s", i, evs_code_name(ws[i].rc),
			      ws[i].msg);
	}
	evs_stream_info h;
	tu_ok(st, evs_stream_head(st, "fast", &h));
	ck_assert_uint_eq(h.version, FAST_THREADS * FAST_EVENTS);
	ck_assert_uint_eq(h.last_position, FAST_THREADS * FAST_EVENTS);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

/* ---- the same batch retried concurrently -------------------------------- */

typedef struct retrier {
	evs_store *st;
	pthread_barrier_t *bar;
	int rc;
	evs_append_result r;
} retrier;

static void *retry_thread(void *arg)
{
	retrier *t = arg;
	evs_event_in evs[3];
	tu_mp data[3];
	for (int i = 0; i < 3; i++) {
		tu_mp_init(&data[i]);
		tu_mp_map_ints(&data[i], 1, "i", (long long)i);
		tu_event(&evs[i], "Same", &data[i], NULL);
		tu_id(evs[i].id, 0x5a, (uint64_t)i);
	}
	pthread_barrier_wait(t->bar);
	t->rc = evs_append(t->st, "same", EVS_NO_STREAM, evs, 3, &t->r);
	for (int i = 0; i < 3; i++)
		tu_mp_destroy(&data[i]);
	return NULL;
}

START_TEST(test_concurrent_identical_retries)
{
	evs_store *st = tu_open(kit_dir, NULL);
	enum { T = 8 };
	for (int round = 0; round < 5; round++) {
		char dir[PATH_MAX];
		if (round > 0) {
			/* a fresh store per round */
			evs_close(st);
			char name[16];
			snprintf(name, sizeof name, "r%d", round);
			tu_path(dir, sizeof dir, name);
			st = tu_open(dir, NULL);
		}
		pthread_barrier_t bar;
		pthread_barrier_init(&bar, NULL, T);
		retrier ts[T];
		pthread_t th[T];
		for (int i = 0; i < T; i++) {
			ts[i].st = st;
			ts[i].bar = &bar;
			ck_assert_int_eq(pthread_create(&th[i], NULL, retry_thread, &ts[i]), 0);
		}
		int fresh = 0;
		for (int i = 0; i < T; i++) {
			ck_assert_int_eq(pthread_join(th[i], NULL), 0);
			tu_assert_rc(st, ts[i].rc, EVS_OK);
			ck_assert_uint_eq(ts[i].r.first_position, 1);
			ck_assert_uint_eq(ts[i].r.last_position, 3);
			ck_assert_uint_eq(ts[i].r.version, 3);
			fresh += !ts[i].r.idempotent;
		}
		pthread_barrier_destroy(&bar);
		ck_assert_int_eq(fresh, 1);
		evs_store_info h;
		tu_ok(st, evs_head(st, &h));
		ck_assert_uint_eq(h.last_position, 3);
	}
	evs_close(st);
}
END_TEST

/* ---- big batches: more than one group's worth of bytes queued ---------- */

#define BIG_EVENTS 24
#define BIG_BYTES  1000000

typedef struct big_worker {
	evs_store *st;
	pthread_barrier_t *bar;
	int id;
	int rc;
	evs_append_result r;
} big_worker;

static void *big_thread(void *arg)
{
	big_worker *w = arg;
	evs_event_in *evs = calloc(BIG_EVENTS, sizeof *evs);
	tu_mp *mps = calloc(BIG_EVENTS, sizeof *mps);
	if (evs == NULL || mps == NULL) {
		w->rc = EVS_NOMEM;
		free(evs);
		free(mps);
		pthread_barrier_wait(w->bar);
		return NULL;
	}
	for (int i = 0; i < BIG_EVENTS; i++) {
		tu_mp_init(&mps[i]);
		tu_mp_blob_map(&mps[i], BIG_BYTES, (uint64_t)w->id * 1000 + (uint64_t)i);
		tu_event(&evs[i], "Big", &mps[i], NULL);
	}
	char stream[16];
	snprintf(stream, sizeof stream, "big-%d", w->id);
	pthread_barrier_wait(w->bar);
	w->rc = evs_append(w->st, stream, EVS_NO_STREAM, evs, BIG_EVENTS, &w->r);
	for (int i = 0; i < BIG_EVENTS; i++)
		tu_mp_destroy(&mps[i]);
	free(mps);
	free(evs);
	return NULL;
}

START_TEST(test_big_batches_from_threads)
{
	evs_store *st = tu_open(kit_dir, NULL);
	enum { T = 4 };
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, T);
	big_worker ws[T];
	pthread_t th[T];
	for (int i = 0; i < T; i++) {
		memset(&ws[i], 0, sizeof ws[i]);
		ws[i].st = st;
		ws[i].bar = &bar;
		ws[i].id = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, big_thread, &ws[i]), 0);
	}
	uint8_t used[T * BIG_EVENTS + 1];
	memset(used, 0, sizeof used);
	for (int i = 0; i < T; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		tu_assert_rc(st, ws[i].rc, EVS_OK);
		ck_assert_uint_eq(ws[i].r.last_position - ws[i].r.first_position + 1, BIG_EVENTS);
		ck_assert_uint_eq(ws[i].r.version, BIG_EVENTS);
		for (uint64_t p = ws[i].r.first_position; p <= ws[i].r.last_position; p++) {
			ck_assert_uint_le(p, T * BIG_EVENTS);
			ck_assert(!used[p]);
			used[p] = 1;
		}
	}
	pthread_barrier_destroy(&bar);
	/* each batch is where its result says, with its own payloads */
	tu_mp want;
	tu_mp_init(&want);
	for (int i = 0; i < T; i++) {
		evs_iter *it;
		tu_ok(st,
		      evs_read_all(st, ws[i].r.first_position, EVS_FORWARD, NULL, BIG_EVENTS, &it));
		evs_event ev;
		for (int j = 0; j < BIG_EVENTS; j++) {
			tu_ok(st, evs_iter_next(it, &ev));
			tu_mp_reset(&want);
			tu_mp_blob_map(&want, BIG_BYTES, (uint64_t)i * 1000 + (uint64_t)j);
			ck_assert_uint_eq(ev.data_len, want.sb.size);
			ck_assert(memcmp(ev.data, want.sb.data, ev.data_len) == 0);
			ck_assert_uint_eq(ev.version, (uint64_t)j + 1);
		}
		evs_iter_free(it);
	}
	tu_mp_destroy(&want);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_threads_exact_version,
		test_processes_exact_version,
		test_processes_with_threads_exact_version,
		test_group_commit_distinct_streams,
		test_group_commit_stress_nosync,
		test_concurrent_identical_retries,
		test_big_batches_from_threads,
		NULL,
	};

	return kit_main("store-concurrency", 600, tests);
}
