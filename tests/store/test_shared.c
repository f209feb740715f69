/*
 * test_shared.c - one LMDB environment per store per process: every
 * evs_open() of a store already open in the process shares its environment
 * (found by data.mdb's device and inode, whatever the path spelling), with
 * one group-commit queue and one map lock; the last evs_close() closes it.
 * Incompatible opens are refused; a forked child opens afresh.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kit_store.h"

/* Three spellings of one store: absolute, through a symlink, relative to
 * the working directory (with a "./" and a doubled slash for good
 * measure). */
typedef struct spellings {
	char abs[PATH_MAX];
	char link[PATH_MAX];
	char rel[PATH_MAX];
} spellings;

static void make_spellings(spellings *sp)
{
	char cwd[PATH_MAX], real[PATH_MAX];

	tu_path(sp->abs, sizeof sp->abs, "store");
	ck_assert_int_eq(mkdir(sp->abs, 0755), 0);
	tu_path(sp->link, sizeof sp->link, "link");
	ck_assert_int_eq(symlink(sp->abs, sp->link), 0);
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
	ck_assert_ptr_nonnull(realpath(sp->abs, real));
	/* up to / from the working directory, then down to the store */
	size_t n = 0;
	sp->rel[0] = 0;
	strcat(sp->rel, ".");
	for (const char *p = cwd; *p; p++)
		if (*p == '/' && p[1] != 0)
			n++;
	for (size_t i = 0; i < n + (strcmp(cwd, "/") != 0); i++)
		strcat(sp->rel, "/..");
	ck_assert_uint_lt(strlen(sp->rel) + strlen(real) + 2, sizeof sp->rel);
	strcat(sp->rel, "/");
	strcat(sp->rel, real);
	ck_assert_msg(sp->rel[0] != '/', "relative spelling %s", sp->rel);
}

static uint64_t last_position(evs_store *st)
{
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	return h.last_position;
}

/* The event at position p, read through st at once. */
static void expect_event_at(evs_store *st, uint64_t p, const char *stream)
{
	evs_iter *it;
	evs_event ev;
	tu_ok(st, evs_read_all(st, p, EVS_FORWARD, NULL, 1, &it));
	tu_ok(st, evs_iter_next(it, &ev));
	tu_check_u64_eq(ev.position, p);
	ck_assert(tu_str_eq(ev.stream, stream));
	tu_assert_rc(st, evs_iter_next(it, &ev), EVS_END);
	evs_iter_free(it);
}

START_TEST(test_spellings_share_one_environment)
{
	spellings sp;
	make_spellings(&sp);
	evs_store *a = tu_open(sp.abs, NULL);
	int fds = kit_count_fds();
	evs_store *b = tu_open(sp.link, NULL);
	evs_store *c = tu_open(sp.rel, NULL);
	/* shared: the second and third opens took no file descriptor */
	ck_assert_int_eq(kit_count_fds(), fds);

	evs_sub *sub;
	tu_ok(c, evs_subscribe(c, 0, NULL, &sub));
	evs_store *hs[3] = {a, b, c};
	char stream[32];
	for (uint64_t i = 0; i < 30; i++) {
		evs_store *w = hs[i % 3], *r = hs[(i + 1) % 3];
		evs_append_result res;
		snprintf(stream, sizeof stream, "s-%llu", (unsigned long long)(i % 3));
		tu_ok(w, tu_append_simple(w, stream, EVS_ANY, "T", 1, 1, i, &res));
		tu_check_u64_eq(res.first_position, i + 1);
		/* seen at once through another handle: head, then the log */
		tu_check_u64_eq(last_position(r), i + 1);
		expect_event_at(r, i + 1, stream);
		evs_stream_info sh;
		tu_ok(r, evs_stream_head(r, stream, &sh));
		tu_check_u64_eq(sh.last_position, i + 1);
		/* and a follower on the third wakes */
		evs_event ev;
		tu_ok(c, evs_sub_next(sub, &ev, 30000));
		tu_check_u64_eq(ev.position, i + 1);
	}
	evs_sub_close(sub);
	ck_assert_uint_eq(tu_verify(b), 0);
	evs_close(a);
	evs_close(b);
	evs_close(c);
	/* the last close closed the environment */
	ck_assert_int_lt(kit_count_fds(), fds);
}
END_TEST

/* ---- concurrent appends on several handles ----------------------------- */

enum { PER_THREAD = 40 };

typedef struct appender {
	evs_store *st;
	int id;
	uint64_t seed;
	uint64_t first[PER_THREAD], last[PER_THREAD];
	size_t n; /* batches appended */
	uint64_t events;
	uint64_t own_events; /* in its own stream */
	int bad_rc;
	char bad[300];
} appender;

static void *append_main(void *arg)
{
	appender *a = arg;
	uint64_t rng;
	rng = a->seed;
	char own[32];
	snprintf(own, sizeof own, "own-%d", a->id);
	enum { MAXB = 8 };
	evs_event_in evs[MAXB];
	tu_mp mps[MAXB];
	for (int i = 0; i < MAXB; i++)
		tu_mp_init(&mps[i]);
	for (size_t b = 0; b < PER_THREAD; b++) {
		size_t n = (size_t)kit_rand_range(&rng, 1, MAXB);
		/* 2 KiB blobs: the small map must grow while both handles append */
		size_t blob = kit_rand_range(&rng, 0, 3) == 0 ? 2048 : 16;
		for (size_t i = 0; i < n; i++) {
			tu_mp_reset(&mps[i]);
			tu_mp_blob_map(&mps[i], blob, a->seed + b * MAXB + i);
			tu_event(&evs[i], "Blob", &mps[i], NULL);
		}
		bool mine = kit_rand_range(&rng, 0, 1) == 1;
		evs_append_result r;
		int rc = evs_append(a->st, mine ? own : "shared", mine ? a->own_events : EVS_ANY,
				    evs, n, &r);
		if (rc != EVS_OK || r.last_position != r.first_position + n - 1 || r.idempotent) {
			a->bad_rc = rc ? rc : -1;
			snprintf(a->bad, sizeof a->bad, "append %zu: %s (%s)", b, evs_code_name(rc),
				 evs_errmsg(a->st));
			break;
		}
		a->first[a->n] = r.first_position;
		a->last[a->n] = r.last_position;
		a->n++;
		a->events += n;
		if (mine)
			a->own_events += n;
	}
	for (int i = 0; i < MAXB; i++)
		tu_mp_destroy(&mps[i]);
	return NULL;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

START_TEST(test_concurrent_appends_on_two_handles)
{
	uint64_t rng;
	uint64_t seed = rng = kit_seed("test_concurrent_appends_on_two_handles");
	spellings sp;
	make_spellings(&sp);
	evs_options o;
	evs_options_init(&o);
	o.sync = EVS_SYNC_NONE;
	o.map_size = (size_t)256 << 10; /* grows many times below */
	evs_store *hs[2];
	hs[0] = tu_open(sp.abs, &o);
	o.map_size = 0;
	hs[1] = tu_open(sp.link, &o);
	size_t before = 0;
	{
		evs_store_info h;
		tu_ok(hs[0], evs_head(hs[0], &h));
		before = h.map_size;
	}

	enum { THREADS = 8 };
	appender as[THREADS];
	pthread_t th[THREADS];
	memset(as, 0, sizeof as);
	for (int i = 0; i < THREADS; i++) {
		as[i].st = hs[i % 2];
		as[i].id = i;
		as[i].seed = seed ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull);
		ck_assert_int_eq(pthread_create(&th[i], NULL, append_main, &as[i]), 0);
	}
	uint64_t total = 0;
	size_t nbatches = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(as[i].bad_rc == 0, "seed %llu thread %d: %s",
			      (unsigned long long)seed, i, as[i].bad);
		total += as[i].events;
		nbatches += as[i].n;
	}

	/* every batch committed, the ranges tile 1..total without gap */
	uint64_t(*ranges)[2] = calloc(nbatches, sizeof *ranges);
	ck_assert_ptr_nonnull(ranges);
	size_t k = 0;
	for (int i = 0; i < THREADS; i++)
		for (size_t b = 0; b < as[i].n; b++) {
			ranges[k][0] = as[i].first[b];
			ranges[k][1] = as[i].last[b];
			k++;
		}
	qsort(ranges, nbatches, sizeof *ranges, cmp_u64);
	uint64_t next = 1;
	for (size_t i = 0; i < nbatches; i++) {
		tu_check_u64_eq(ranges[i][0], next);
		next = ranges[i][1] + 1;
	}
	tu_check_u64_eq(next - 1, total);
	free(ranges);

	for (int h = 0; h < 2; h++) {
		evs_store_info info;
		tu_ok(hs[h], evs_head(hs[h], &info));
		tu_check_u64_eq(info.last_position, total);
		ck_assert_uint_gt(info.map_size, before); /* grew, once for both */
		tu_ev *evs;
		size_t n = tu_read_all(hs[h], &evs);
		tu_check_u64_eq(n, total);
		for (size_t i = 0; i < n; i++)
			tu_check_u64_eq(evs[i].ev.position, i + 1);
		tu_evs_free(evs, n);
		/* each own stream holds exactly its thread's events */
		for (int i = 0; i < THREADS; i++) {
			char own[32];
			evs_stream_info sh;
			snprintf(own, sizeof own, "own-%d", i);
			int rc = evs_stream_head(hs[h], own, &sh);
			ck_assert(rc == EVS_OK || (rc == EVS_NOT_FOUND && as[i].own_events == 0));
			tu_check_u64_eq(sh.version, as[i].own_events);
		}
	}
	ck_assert_uint_eq(tu_verify(hs[1]), 0);
	evs_close(hs[0]);
	evs_close(hs[1]);
}
END_TEST

/* ---- closing one handle ------------------------------------------------ */

START_TEST(test_close_one_keeps_the_other)
{
	spellings sp;
	make_spellings(&sp);
	int fds = kit_count_fds();
	evs_store *a = tu_open(sp.abs, NULL);
	evs_store *b = tu_open(sp.rel, NULL);
	evs_append_result r;
	tu_ok(a, tu_append_simple(a, "x", EVS_NO_STREAM, "T", 3, 1, 0, &r));
	evs_sub *sub;
	tu_ok(b, evs_subscribe(b, 0, NULL, &sub));
	/* b has an iterator open while a goes away */
	evs_iter *it;
	tu_ok(b, evs_read_stream(b, "x", 1, EVS_FORWARD, 0, &it));
	evs_close(a);
	evs_event ev;
	tu_ok(b, evs_iter_next(it, &ev));
	tu_check_u64_eq(ev.version, 1);
	evs_iter_free(it);
	tu_ok(b, tu_append_simple(b, "x", 3, "T", 2, 1, 3, &r));
	tu_check_u64_eq(r.last_position, 5);
	for (uint64_t p = 1; p <= 5; p++) {
		tu_ok(b, evs_sub_next(sub, &ev, 30000));
		tu_check_u64_eq(ev.position, p);
	}
	evs_sub_close(sub);

	/* a new handle joins b's environment; then b goes */
	a = tu_open(sp.link, NULL);
	tu_check_u64_eq(last_position(a), 5);
	evs_close(b);
	tu_ok(a, tu_append_simple(a, "x", 5, "T", 1, 1, 5, &r));
	tu_check_u64_eq(r.last_position, 6);
	ck_assert_uint_eq(tu_verify(a), 0);
	evs_close(a);
	ck_assert_int_eq(kit_count_fds(), fds);

	/* and the store opens afresh after the last close */
	a = tu_open(sp.abs, NULL);
	tu_check_u64_eq(last_position(a), 6);
	evs_close(a);
	ck_assert_int_eq(kit_count_fds(), fds);
}
END_TEST

/* ---- a joining open with a map_size while another handle grows ------- */

struct grow_arg {
	const char *dir;
	atomic_int *done;
	atomic_int opens;
	atomic_int *other_opens; /* the grower starts once the other opened */
};

static void *grower(void *p)
{
	struct grow_arg *g = p;
	size_t size = (size_t)8 << 20;
	time_t deadline = time(NULL) + 60;

	while (atomic_load(g->other_opens) == 0 && time(NULL) < deadline)
		sched_yield();
	for (int i = 0; i < 300; i++, size += 16 * 4096) {
		evs_options o;
		evs_store *s;

		evs_options_init(&o);
		o.map_size = size;
		if (evs_open(g->dir, &o, &s) == EVS_OK) {
			atomic_fetch_add(&g->opens, 1);
			evs_close(s);
		}
	}
	atomic_store(g->done, 1);
	return NULL;
}

static void *small_opener(void *p)
{
	struct grow_arg *g = p;

	while (!atomic_load(g->done)) {
		evs_options o;
		evs_store *s;

		evs_options_init(&o);
		o.map_size = 4096; /* smaller than the map: only compared */
		if (evs_open(g->dir, &o, &s) == EVS_OK) {
			atomic_fetch_add(&g->opens, 1);
			evs_close(s);
		}
	}
	return NULL;
}

/* An open that compares its map_size with the shared map must not read
 * the map while another open remaps it (a crash in 4 runs of 4 before the
 * comparison took the map lock). */
START_TEST(test_open_with_map_size_while_growing)
{
	spellings sp;
	make_spellings(&sp);
	evs_store *base = tu_open(sp.abs, NULL);
	atomic_int done = 0;
	struct grow_arg g1 = {sp.abs, &done, 0, NULL}, g2 = {sp.link, &done, 0, NULL};
	pthread_t t1, t2;

	g1.other_opens = &g2.opens;
	ck_assert_int_eq(pthread_create(&t1, NULL, grower, &g1), 0);
	ck_assert_int_eq(pthread_create(&t2, NULL, small_opener, &g2), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	ck_assert_int_eq(atomic_load(&g1.opens), 300);
	ck_assert_int_gt(atomic_load(&g2.opens), 0);
	ck_assert_uint_eq(tu_verify(base), 0);
	evs_close(base);
}
END_TEST

/* ---- what may share and what is refused -------------------------------- */

START_TEST(test_incompatible_opens_refused)
{
	spellings sp;
	make_spellings(&sp);
	evs_options ro, rw, other;
	evs_options_init(&ro);
	ro.read_only = 1;
	ro.create = 0;
	tu_options(&rw, EVS_SYNC_FULL);
	evs_close(tu_open(sp.abs, &rw)); /* create it */

	/* read-only first: a read-write open is refused, read-only ones share */
	evs_store *r1 = tu_open(sp.abs, &ro), *st = NULL;
	tu_assert_rc(NULL, evs_open(sp.link, &rw, &st), EVS_BUSY);
	ck_assert_ptr_null(st);
	ck_assert_msg(strstr(evs_open_errmsg(), "read-only") != NULL, "%s", evs_open_errmsg());
	ck_assert_msg(strstr(evs_open_errmsg(), sp.link) != NULL, "%s", evs_open_errmsg());
	evs_store *r2 = tu_open(sp.rel, &ro);
	evs_close(r1);
	tu_assert_rc(NULL, evs_open(sp.abs, &rw, &st), EVS_BUSY);
	evs_close(r2);

	/* read-write first: read-only opens share it and see its appends */
	evs_store *w = tu_open(sp.abs, &rw);
	r1 = tu_open(sp.link, &ro);
	evs_append_result r;
	tu_ok(w, tu_append_simple(w, "s", EVS_ANY, "T", 2, 1, 0, &r));
	tu_check_u64_eq(last_position(r1), 2);
	tu_assert_rc(r1, tu_append_simple(r1, "s", EVS_ANY, "T", 1, 1, 9, &r), EVS_READONLY);
	/* a read-only handle's sync mode does not matter */
	other = ro;
	other.sync = EVS_SYNC_NONE;
	r2 = tu_open(sp.rel, &other);
	evs_close(r2);

	/* another sync mode for a writer: refused, naming both modes */
	other = rw;
	other.sync = EVS_SYNC_NONE;
	tu_assert_rc(NULL, evs_open(sp.rel, &other, &st), EVS_INVALID);
	ck_assert_ptr_null(st);
	ck_assert_msg(strstr(evs_open_errmsg(), "\"none\"") != NULL &&
			      strstr(evs_open_errmsg(), "\"full\"") != NULL,
		      "%s", evs_open_errmsg());

	/* more reader slots than the environment has: refused; fewer: fine */
	other = rw;
	other.max_readers = 100000;
	tu_assert_rc(NULL, evs_open(sp.rel, &other, &st), EVS_INVALID);
	ck_assert_msg(strstr(evs_open_errmsg(), "max_readers") != NULL, "%s", evs_open_errmsg());
	other.max_readers = 16;
	evs_store *w2 = tu_open(sp.rel, &other);

	/* a larger map: the shared environment grows to it */
	evs_store_info h;
	tu_ok(w, evs_head(w, &h));
	other = rw;
	other.map_size = h.map_size * 2;
	evs_store *w3 = tu_open(sp.link, &other);
	tu_ok(w, evs_head(w, &h));
	ck_assert_uint_ge(h.map_size, other.map_size);
	tu_ok(w3, tu_append_simple(w3, "s", 2, "T", 1, 1, 2, &r));
	tu_check_u64_eq(r.last_position, 3);
	tu_check_u64_eq(last_position(w2), 3);
	tu_check_u64_eq(last_position(r1), 3);

	/* other per-handle options stay per handle */
	other = rw;
	other.max_batch = 1;
	evs_store *w4 = tu_open(sp.abs, &other);
	tu_assert_rc(w4, tu_append_simple(w4, "s", EVS_ANY, "T", 2, 0, 0, &r), EVS_BATCH_TOO_LARGE);
	tu_ok(w, tu_append_simple(w, "s", EVS_ANY, "T", 2, 0, 0, &r));

	evs_close(w4);
	evs_close(w3);
	evs_close(w2);
	evs_close(r1);
	evs_close(w);
}
END_TEST

/* An iterator pins the environment's map: it counts on every handle. */
START_TEST(test_iterator_counts_for_every_handle)
{
	spellings sp;
	make_spellings(&sp);
	evs_store *a = tu_open(sp.abs, NULL), *b = tu_open(sp.link, NULL);
	evs_append_result r;
	tu_ok(a, tu_append_simple(a, "s", EVS_ANY, "T", 2, 1, 0, &r));
	evs_iter *it;
	tu_ok(a, evs_read_all(a, 1, EVS_FORWARD, NULL, 0, &it));
	tu_assert_rc(b, tu_append_simple(b, "s", EVS_ANY, "T", 1, 1, 2, &r), EVS_BUSY);
	ck_assert_msg(strstr(evs_errmsg(b), "iterator") != NULL, "%s", evs_errmsg(b));
	/* reads on the other handle meanwhile are fine */
	tu_check_u64_eq(last_position(b), 2);
	evs_iter_free(it);
	tu_ok(b, tu_append_simple(b, "s", EVS_ANY, "T", 1, 1, 2, &r));
	evs_close(a);
	evs_close(b);
}
END_TEST

/* The schema registry lives in the store; each handle caches it and sees
 * a schema added through another handle at its next append. */
START_TEST(test_schema_added_through_other_handle)
{
	static const char doc[] = "{\"type\":\"Deposited\",\"version\":1,\"schema\":{"
				  "\"type\":\"object\",\"required\":[\"amount\"],"
				  "\"properties\":{\"amount\":{\"type\":\"integer\","
				  "\"minimum\":1}}}}";
	spellings sp;
	make_spellings(&sp);
	evs_store *a = tu_open(sp.abs, NULL), *b = tu_open(sp.link, NULL);
	tu_mp zero, five;
	tu_mp_init(&zero);
	tu_mp_init(&five);
	tu_mp_map_ints(&zero, 1, "amount", 0LL);
	tu_mp_map_ints(&five, 1, "amount", 5LL);
	evs_event_in ev;
	evs_append_result r;
	tu_event(&ev, "Deposited", &zero, NULL);
	tu_ok(b, evs_append(b, "acct", EVS_ANY, &ev, 1, &r)); /* no schema yet */
	tu_ok(a, evs_schema_add(a, doc, strlen(doc)));
	tu_assert_rc(b, evs_append(b, "acct", EVS_ANY, &ev, 1, &r), EVS_SCHEMA_VIOLATION);
	tu_event(&ev, "Deposited", &five, NULL);
	tu_ok(b, evs_append(b, "acct", EVS_ANY, &ev, 1, &r));
	tu_check_u64_eq(r.last_position, 2);
	tu_mp_destroy(&zero);
	tu_mp_destroy(&five);
	evs_close(a);
	evs_close(b);
}
END_TEST

/* ---- open/close storms ------------------------------------------------- */

enum { STORM_THREADS = 6, STORM_ROUNDS = 120 };

typedef struct stormer {
	const spellings *sp;
	uint64_t seed;
	int id;
	uint64_t appended; /* events acknowledged */
	unsigned ro_opens, rw_opens, busy;
	int bad_rc;
	char bad[400];
} stormer;

static void *storm_main(void *arg)
{
	stormer *t = arg;
	uint64_t rng;
	rng = t->seed;
	const char *paths[3] = {t->sp->abs, t->sp->link, t->sp->rel};
	evs_store *held[2] = {NULL, NULL};
	char stream[32];
	snprintf(stream, sizeof stream, "storm-%d", t->id);

	for (int round = 0; round < STORM_ROUNDS && t->bad_rc == 0; round++) {
		int slot = (int)kit_rand_range(&rng, 0, 1);
		if (held[slot]) {
			evs_close(held[slot]);
			held[slot] = NULL;
			continue;
		}
		evs_options o;
		evs_options_init(&o);
		o.sync = EVS_SYNC_NONE;
		o.create = 0;
		o.read_only = kit_rand_range(&rng, 0, 3) == 0;
		evs_store *st = NULL;
		int rc = evs_open(paths[kit_rand_range(&rng, 0, 2)], &o, &st);
		if (rc == EVS_BUSY && !o.read_only) {
			/* only when another thread holds it read-only only */
			if (strstr(evs_open_errmsg(), "read-only") == NULL) {
				t->bad_rc = rc;
				snprintf(t->bad, sizeof t->bad, "round %d: busy: %s", round,
					 evs_open_errmsg());
			}
			t->busy++;
			continue;
		}
		if (rc != EVS_OK) {
			t->bad_rc = rc;
			snprintf(t->bad, sizeof t->bad, "round %d: evs_open (%s): %s: %s", round,
				 o.read_only ? "read-only" : "read-write", evs_code_name(rc),
				 evs_open_errmsg());
			break;
		}
		if (o.read_only) {
			t->ro_opens++;
			evs_store_info h;
			if ((rc = evs_head(st, &h)) != EVS_OK) {
				t->bad_rc = rc;
				snprintf(t->bad, sizeof t->bad, "round %d: evs_head: %s", round,
					 evs_errmsg(st));
			}
		} else {
			t->rw_opens++;
			size_t n = (size_t)kit_rand_range(&rng, 1, 3);
			evs_append_result r;
			rc = tu_append_simple(st, stream, t->appended, "Storm", n, 100 + t->id,
					      t->appended, &r);
			if (rc != EVS_OK) {
				t->bad_rc = rc;
				snprintf(t->bad, sizeof t->bad, "round %d: append: %s", round,
					 evs_errmsg(st));
			} else {
				t->appended += n;
			}
		}
		held[slot] = st;
	}
	evs_close(held[0]);
	evs_close(held[1]);
	return NULL;
}

START_TEST(test_open_close_storm)
{
	uint64_t rng;
	uint64_t seed = rng = kit_seed("test_open_close_storm");
	spellings sp;
	make_spellings(&sp);
	evs_options o;
	tu_options(&o, EVS_SYNC_NONE);
	evs_close(tu_open(sp.abs, &o));
	int fds = kit_count_fds();

	stormer ts[STORM_THREADS];
	pthread_t th[STORM_THREADS];
	memset(ts, 0, sizeof ts);
	for (int i = 0; i < STORM_THREADS; i++) {
		ts[i].sp = &sp;
		ts[i].id = i;
		ts[i].seed = kit_rand(&rng);
		ck_assert_int_eq(pthread_create(&th[i], NULL, storm_main, &ts[i]), 0);
	}
	uint64_t total = 0;
	unsigned ro = 0, rw = 0, busy = 0;
	for (int i = 0; i < STORM_THREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(ts[i].bad_rc == 0, "seed %llu thread %d: %s",
			      (unsigned long long)seed, i, ts[i].bad);
		total += ts[i].appended;
		ro += ts[i].ro_opens;
		rw += ts[i].rw_opens;
		busy += ts[i].busy;
	}
	fprintf(stderr, "open_close_storm: %u read-only opens, %u read-write, %u refused busy\n",
		ro, rw, busy);
	ck_assert_uint_gt(rw, 0);
	/* every environment was closed */
	ck_assert_int_eq(kit_count_fds(), fds);

	evs_store *st = tu_open(sp.abs, &o);
	tu_check_u64_eq(last_position(st), total);
	for (int i = 0; i < STORM_THREADS; i++) {
		char stream[32];
		evs_stream_info sh;
		snprintf(stream, sizeof stream, "storm-%d", i);
		int rc = evs_stream_head(st, stream, &sh);
		ck_assert(rc == EVS_OK || (rc == EVS_NOT_FOUND && ts[i].appended == 0));
		tu_check_u64_eq(sh.version, ts[i].appended);
	}
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

/* ---- fork -------------------------------------------------------------- */

START_TEST(test_forked_child_opens_afresh)
{
	spellings sp;
	make_spellings(&sp);
	evs_store *st = tu_open(sp.abs, NULL);
	evs_append_result r;
	tu_ok(st, tu_append_simple(st, "parent", EVS_ANY, "T", 1, 1, 0, &r));
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* the inherited handle: freed without touching the parent's
		 * environment */
		evs_close(st);
		evs_store *cs = NULL;
		int rc = evs_open(sp.link, NULL, &cs);
		kit_child_check(rc == EVS_OK, "evs_open: %s", evs_open_errmsg());
		evs_store *cs2 = NULL;
		rc = evs_open(sp.rel, NULL, &cs2);
		kit_child_check(rc == EVS_OK, "evs_open: %s", evs_open_errmsg());
		rc = tu_append_simple(cs, "child", EVS_ANY, "T", 2, 2, 0, &r);
		kit_child_check(rc == EVS_OK, "append: %s", evs_errmsg(cs));
		evs_store_info h;
		rc = evs_head(cs2, &h);
		kit_child_check(rc == EVS_OK && h.last_position == 3, "head %d %llu", rc,
				(unsigned long long)h.last_position);
		evs_close(cs2);
		evs_close(cs);
		_exit(0);
	}
	tu_ok(st, evs_wait(st, 2, 60000));
	kit_wait_child(pid, 60000, 1);
	tu_check_u64_eq(last_position(st), 3);
	/* the parent's environment is intact: it still appends */
	tu_ok(st, tu_append_simple(st, "parent", EVS_ANY, "T", 1, 1, 1, &r));
	tu_check_u64_eq(r.last_position, 4);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_spellings_share_one_environment,
		test_concurrent_appends_on_two_handles,
		test_close_one_keeps_the_other,
		test_incompatible_opens_refused,
		test_iterator_counts_for_every_handle,
		test_schema_added_through_other_handle,
		test_open_close_storm,
		test_forked_child_opens_afresh,
		test_open_with_map_size_while_growing,
		NULL,
	};

	return kit_main("store-shared", 600, tests);
}
