/*
 * test_follow.c - subscriptions catch up, then receive new commits from
 * other threads and from other processes promptly; evs_wait.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "kit_store.h"

/* Wake-ups must come from the commit, not from the periodic re-check:
 * the wake-up tests stretch the re-check past their own bound
 * (EVS_TEST_RECHECK_MS), so a wake-up at all is the notification's. No
 * timed assert: the latencies are printed, not compared. */
#define NO_RECHECK "600000"

typedef struct bg_append {
	evs_store *st;
	const char *stream;
	const char *type;
	size_t batches, per_batch;
	int rc;
	char msg[256];
	int64_t done_ms[16];     /* CLOCK_MONOTONIC after each append */
	pthread_barrier_t *step; /* NULL: run freely; else wait before and after */
} bg_append;

static void *bg_thread(void *arg)
{
	bg_append *a = arg;
	for (size_t b = 0; b < a->batches; b++) {
		if (a->step)
			pthread_barrier_wait(a->step);
		int rc = tu_append_simple(a->st, a->stream, EVS_ANY, a->type, a->per_batch, 0,
					  1000 + b * a->per_batch, NULL);
		if (b < 16)
			a->done_ms[b] = kit_mono_ms();
		if (a->step)
			pthread_barrier_wait(a->step); /* done_ms[b] is written */
		if (rc != EVS_OK) {
			a->rc = rc;
			snprintf(a->msg, sizeof a->msg, "%s", evs_errmsg(a->st));
			return NULL;
		}
	}
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

START_TEST(test_catch_up_then_live)
{
	evs_store *st = tu_open(kit_dir, NULL);
	tu_ok(st, tu_append_simple(st, "a", EVS_ANY, "A", 3, 0, 0, NULL));
	tu_ok(st, tu_append_simple(st, "b", EVS_ANY, "B", 2, 0, 0, NULL));

	evs_sub *sub = NULL;
	tu_ok(st, evs_subscribe(st, 0, NULL, &sub));
	ck_assert_uint_eq(evs_sub_position(sub), 0);
	evs_event ev;
	for (uint64_t p = 1; p <= 5; p++) {
		tu_ok(st, evs_sub_next(sub, &ev, 0)); /* caught-up events need no wait */
		ck_assert_uint_eq(ev.position, p);
		ck_assert(tu_str_eq(ev.stream, p <= 3 ? "a" : "b"));
		ck_assert_uint_eq(evs_sub_position(sub), p);
	}
	tu_assert_rc(st, evs_sub_next(sub, &ev, 0), EVS_TIMEOUT);
	int64_t t0 = kit_mono_ms();
	tu_assert_rc(st, evs_sub_next(sub, &ev, 60), EVS_TIMEOUT);
	ck_assert_int_ge(kit_mono_ms() - t0, 50);
	ck_assert_uint_eq(evs_sub_position(sub), 5);

	/* live: a thread appends one batch of 3 and then two single events */
	bg_append a;
	memset(&a, 0, sizeof a);
	a.st = st;
	a.stream = "c";
	a.type = "C";
	a.batches = 3;
	a.per_batch = 1;
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, bg_thread, &a), 0);
	for (uint64_t p = 6; p <= 8; p++) {
		tu_ok(st, evs_sub_next(sub, &ev, 30000));
		ck_assert_uint_eq(ev.position, p);
		ck_assert(tu_str_eq(ev.stream, "c"));
		ck_assert(tu_str_eq(ev.type, "C"));
		ck_assert_uint_eq(ev.version, p - 5);
		int64_t n = -1;
		ck_assert_int_eq(tu_mp_get_int(ev.data, ev.data_len, "n", &n), 0);
		ck_assert_int_eq(n, 1000 + (int64_t)p - 6);
	}
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(a.rc == 0, "appender: %s", a.msg);
	tu_assert_rc(st, evs_sub_next(sub, &ev, 0), EVS_TIMEOUT);

	/* waiting forever (-1) returns as soon as an event comes */
	a.batches = 1;
	a.per_batch = 2;
	ck_assert_int_eq(pthread_create(&th, NULL, bg_thread, &a), 0);
	tu_ok(st, evs_sub_next(sub, &ev, -1));
	ck_assert_uint_eq(ev.position, 9);
	tu_ok(st, evs_sub_next(sub, &ev, -1));
	ck_assert_uint_eq(ev.position, 10);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(a.rc == 0, "appender: %s", a.msg);
	evs_sub_close(sub);
	evs_close(st);
}
END_TEST

START_TEST(test_after_and_filter)
{
	evs_store *st = tu_open(kit_dir, NULL);
	tu_ok(st, tu_append_simple(st, "order-1", EVS_ANY, "A", 2, 0, 0, NULL)); /* 1-2 */
	tu_ok(st, tu_append_simple(st, "order-2", EVS_ANY, "B", 2, 0, 0, NULL)); /* 3-4 */
	tu_ok(st, tu_append_simple(st, "cust-1", EVS_ANY, "B", 2, 0, 0, NULL));  /* 5-6 */

	/* after = 3: from position 4 on */
	evs_sub *sub;
	evs_event ev;
	tu_ok(st, evs_subscribe(st, 3, NULL, &sub));
	ck_assert_uint_eq(evs_sub_position(sub), 3);
	tu_ok(st, evs_sub_next(sub, &ev, 0));
	ck_assert_uint_eq(ev.position, 4);
	evs_sub_close(sub);

	/* after the last: nothing until something new */
	tu_ok(st, evs_subscribe(st, 6, NULL, &sub));
	tu_assert_rc(st, evs_sub_next(sub, &ev, 0), EVS_TIMEOUT);
	evs_sub_close(sub);

	/* after the largest position there is nothing (position + 1 wrapped
	 * to 0 and replayed the whole log) */
	tu_ok(st, evs_subscribe(st, UINT64_MAX, NULL, &sub));
	tu_assert_rc(st, evs_sub_next(sub, &ev, 0), EVS_TIMEOUT);
	evs_sub_close(sub);

	/* type B, streams "order-": only position 3, 4, then live matches */
	const char *types[] = {"B"}, *prefixes[] = {"order-"};
	evs_filter f = {.types = types, .ntypes = 1, .stream_prefixes = prefixes, .nprefixes = 1};
	tu_ok(st, evs_subscribe(st, 0, &f, &sub));
	types[0] = "A"; /* the filter was copied */
	tu_ok(st, evs_sub_next(sub, &ev, 0));
	ck_assert_uint_eq(ev.position, 3);
	tu_ok(st, evs_sub_next(sub, &ev, 0));
	ck_assert_uint_eq(ev.position, 4);
	tu_assert_rc(st, evs_sub_next(sub, &ev, 0), EVS_TIMEOUT);

	bg_append a;
	memset(&a, 0, sizeof a);
	a.st = st;
	a.stream = "order-3";
	a.type = "A"; /* filtered out */
	a.batches = 1;
	a.per_batch = 2;
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, bg_thread, &a), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	a.type = "B";
	ck_assert_int_eq(pthread_create(&th, NULL, bg_thread, &a), 0);
	tu_ok(st, evs_sub_next(sub, &ev, 30000));
	ck_assert_uint_eq(ev.position, 9);
	ck_assert(tu_str_eq(ev.type, "B"));
	tu_ok(st, evs_sub_next(sub, &ev, 30000));
	ck_assert_uint_eq(ev.position, 10);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	tu_assert_rc(st, evs_sub_next(sub, &ev, 0), EVS_TIMEOUT);
	evs_sub_close(sub);
	evs_close(st);
}
END_TEST

START_TEST(test_wake_latency_threads)
{
	setenv("EVS_TEST_RECHECK_MS", NO_RECHECK, 1);
	evs_store *st = tu_open(kit_dir, NULL);
	evs_sub *sub;
	tu_ok(st, evs_subscribe(st, 0, NULL, &sub));
	enum { ROUNDS = 7 };
	pthread_barrier_t step;
	pthread_barrier_init(&step, NULL, 2);
	bg_append a;
	memset(&a, 0, sizeof a);
	a.st = st;
	a.stream = "w";
	a.type = "W";
	a.batches = ROUNDS;
	a.per_batch = 1;
	a.step = &step;
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, bg_thread, &a), 0);
	int64_t lat[ROUNDS];
	for (int i = 0; i < ROUNDS; i++) {
		evs_event ev;
		/* nothing pending: the subscriber is (about to be) asleep */
		tu_assert_rc(st, evs_sub_next(sub, &ev, 0), EVS_TIMEOUT);
		pthread_barrier_wait(&step);
		tu_ok(st, evs_sub_next(sub, &ev, 30000));
		int64_t woke = kit_mono_ms();
		ck_assert_uint_eq(ev.position, (uint64_t)i + 1);
		pthread_barrier_wait(&step);
		lat[i] = woke - a.done_ms[i];
	}
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	pthread_barrier_destroy(&step);
	ck_assert_msg(a.rc == 0, "appender: %s", a.msg);
	qsort(lat, ROUNDS, sizeof lat[0], cmp_i64);
	fprintf(stderr, "thread wake-up latency: median %lld ms, max %lld ms\n",
		(long long)lat[ROUNDS / 2], (long long)lat[ROUNDS - 1]);
	unsetenv("EVS_TEST_RECHECK_MS");
	evs_sub_close(sub);
	evs_close(st);
}
END_TEST

/*
 * Another process appends: the child opens its own handle after fork, then
 * for each byte read from `go` appends one event and writes the monotonic
 * time at which evs_append returned to `done`. EOF on `go` ends it.
 */
static void appender_child(int go, int done)
{
	evs_store *st = NULL;
	int rc = evs_open(kit_dir, NULL, &st);
	kit_child_check(rc == EVS_OK, "evs_open: %s", evs_open_errmsg());
	int64_t ready = -1;
	kit_child_check(tu_write_full(done, &ready, sizeof ready) == 0, "write");
	for (uint64_t i = 0;; i++) {
		char b;
		ssize_t k;
		while ((k = read(go, &b, 1)) < 0 && errno == EINTR)
			;
		if (k <= 0)
			break;
		tu_mp data;
		tu_mp_init(&data);
		tu_mp_map_ints(&data, 2, "pid", (long long)getpid(), "i", (long long)i);
		evs_event_in ev;
		tu_event(&ev, "FromChild", &data, NULL);
		evs_append_result r;
		rc = evs_append(st, "child", EVS_ANY, &ev, 1, &r);
		tu_mp_destroy(&data);
		kit_child_check(rc == EVS_OK, "evs_append: %s", evs_errmsg(st));
		int64_t t = kit_mono_ms();
		kit_child_check(tu_write_full(done, &t, sizeof t) == 0, "write");
	}
	evs_close(st);
	_exit(0);
}

typedef struct child {
	pid_t pid;
	int go, done;
} child;

static child spawn_appender(void)
{
	int go[2], done[2];
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(done), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(go[1]);
		close(done[0]);
		appender_child(go[0], done[1]);
	}
	close(go[0]);
	close(done[1]);
	child c = {pid, go[1], done[0]};
	int64_t ready;
	if (tu_read_full(c.done, &ready, sizeof ready, 30000) != 0) {
		kill(pid, SIGKILL);
		kit_wait_child(pid, 30000, 0);
		ck_abort_msg("appender child did not start");
	}
	return c;
}

static void finish_child(child *c)
{
	close(c->go);
	kit_wait_child(c->pid, 60000, 1);
	close(c->done);
}

START_TEST(test_cross_process_subscriber)
{
	setenv("EVS_TEST_RECHECK_MS", NO_RECHECK, 1);
	evs_store *st = tu_open(kit_dir, NULL);
	tu_ok(st, tu_append_simple(st, "parent", EVS_ANY, "P", 1, 0, 0, NULL));
	evs_sub *sub;
	tu_ok(st, evs_subscribe(st, 1, NULL, &sub));
	evs_event ev;
	tu_assert_rc(st, evs_sub_next(sub, &ev, 0), EVS_TIMEOUT);

	child c = spawn_appender();
	enum { ROUNDS = 5 };
	int64_t lat[ROUNDS];
	for (int i = 0; i < ROUNDS; i++) {
		tu_assert_rc(st, evs_sub_next(sub, &ev, 20), EVS_TIMEOUT);
		ck_assert_int_eq(write(c.go, "x", 1), 1);
		int rc = evs_sub_next(sub, &ev, 30000);
		int64_t woke = kit_mono_ms();
		if (rc != EVS_OK) {
			kill(c.pid, SIGKILL);
			tu_assert_rc(st, rc, EVS_OK);
		}
		int64_t appended;
		ck_assert_int_eq(tu_read_full(c.done, &appended, sizeof appended, 30000), 0);
		ck_assert_uint_eq(ev.position, (uint64_t)i + 2);
		ck_assert(tu_str_eq(ev.stream, "child"));
		int64_t pid = 0, k = -1;
		ck_assert_int_eq(tu_mp_get_int(ev.data, ev.data_len, "pid", &pid), 0);
		ck_assert_int_eq(tu_mp_get_int(ev.data, ev.data_len, "i", &k), 0);
		ck_assert_int_eq(pid, c.pid);
		ck_assert_int_eq(k, i);
		lat[i] = woke - appended;
	}
	finish_child(&c);
	qsort(lat, ROUNDS, sizeof lat[0], cmp_i64);
	fprintf(stderr, "cross-process wake-up latency: median %lld ms, max %lld ms\n",
		(long long)lat[ROUNDS / 2], (long long)lat[ROUNDS - 1]);
	unsetenv("EVS_TEST_RECHECK_MS");
	tu_assert_rc(st, evs_sub_next(sub, &ev, 0), EVS_TIMEOUT);
	evs_sub_close(sub);
	evs_close(st);
}
END_TEST

START_TEST(test_cross_process_wait)
{
	evs_store *st = tu_open(kit_dir, NULL);
	child c = spawn_appender();
	tu_assert_rc(st, evs_wait(st, 0, 0), EVS_TIMEOUT);
	tu_assert_rc(st, evs_wait(st, 0, 30), EVS_TIMEOUT);
	ck_assert_int_eq(write(c.go, "x", 1), 1);
	int rc = evs_wait(st, 0, 30000);
	if (rc != EVS_OK)
		kill(c.pid, SIGKILL);
	tu_assert_rc(st, rc, EVS_OK);
	int64_t appended;
	ck_assert_int_eq(tu_read_full(c.done, &appended, sizeof appended, 30000), 0);
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 1);
	finish_child(&c);
	evs_close(st);
}
END_TEST

START_TEST(test_wait)
{
	evs_store *st = tu_open(kit_dir, NULL);
	tu_assert_rc(st, evs_wait(st, 0, 0), EVS_TIMEOUT);
	int64_t t0 = kit_mono_ms();
	tu_assert_rc(st, evs_wait(st, 0, 50), EVS_TIMEOUT);
	ck_assert_int_ge(kit_mono_ms() - t0, 40);
	tu_ok(st, tu_append_simple(st, "s", EVS_ANY, "T", 3, 0, 0, NULL));
	/* already past: at once, even with no time to wait */
	tu_ok(st, evs_wait(st, 0, 0));
	tu_ok(st, evs_wait(st, 2, 0));
	tu_assert_rc(st, evs_wait(st, 3, 0), EVS_TIMEOUT);
	tu_assert_rc(st, evs_wait(st, 3, 20), EVS_TIMEOUT);

	bg_append a;
	memset(&a, 0, sizeof a);
	a.st = st;
	a.stream = "s";
	a.type = "T";
	a.batches = 1;
	a.per_batch = 1;
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, bg_thread, &a), 0);
	tu_ok(st, evs_wait(st, 3, 30000));
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	tu_ok(st, evs_wait(st, 3, 0));
	tu_assert_rc(st, evs_wait(st, 4, 0), EVS_TIMEOUT);
	evs_close(st);
}
END_TEST

/* ---- long catch-up racing a writer; several subscribers ----------------- */

typedef struct follower {
	evs_store *st;
	uint64_t want;
	uint64_t got;
	int rc;
	char msg[256];
} follower;

static void *follow_thread(void *arg)
{
	follower *f = arg;
	evs_sub *sub;
	if ((f->rc = evs_subscribe(f->st, 0, NULL, &sub)) != EVS_OK)
		return NULL;
	while (f->got < f->want) {
		evs_event ev;
		int rc = evs_sub_next(sub, &ev, 30000);
		if (rc != EVS_OK || ev.position != f->got + 1) {
			f->rc = rc != EVS_OK ? rc : -1;
			snprintf(f->msg, sizeof f->msg, "after %llu: %s, position %llu",
				 (unsigned long long)f->got, evs_code_name(rc),
				 (unsigned long long)ev.position);
			break;
		}
		f->got++;
	}
	evs_sub_close(sub);
	return NULL;
}

/* A thread that follows the log may append (a process manager): the
 * subscription holds no read snapshot between calls, so even appends that
 * must grow the map go through. */
START_TEST(test_follow_and_append_same_thread)
{
	evs_options o;
	evs_options_init(&o);
	o.map_size = 1 << 20;
	evs_store *st = tu_open(kit_dir, &o);
	static uint8_t big[64 * 1024];
	big[0] = 0x81, big[1] = 0xa1, big[2] = 'b', big[3] = 0xc6; /* {"b": bin32} */
	uint32_t blen = sizeof big - 8;
	big[4] = (uint8_t)(blen >> 24), big[5] = (uint8_t)(blen >> 16);
	big[6] = (uint8_t)(blen >> 8), big[7] = (uint8_t)blen;
	evs_event_in in = {.type = "Big", .data = big, .data_len = sizeof big};
	evs_append_result r;
	tu_ok(st, evs_append(st, "pm", EVS_ANY, &in, 1, &r));

	evs_sub *sub;
	tu_ok(st, evs_subscribe(st, 0, NULL, &sub));
	evs_event ev;
	for (uint64_t i = 1; i <= 100; i++) {
		tu_ok(st, evs_sub_next(sub, &ev, 30000));
		ck_assert_uint_eq(ev.position, i);
		/* every event handled causes the next: 100 x 64 KiB, far past 1 MiB */
		tu_ok(st, evs_append(st, "pm", EVS_ANY, &in, 1, &r));
		ck_assert_uint_eq(ev.data_len, sizeof big); /* the view outlives the append */
	}
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 101);
	ck_assert_uint_gt(h.map_size, (size_t)4 << 20);
	evs_sub_close(sub);

	/* an iterator is a read snapshot: appending while holding one is
	 * refused every time, not just when the map would have to grow */
	evs_iter *it;
	tu_ok(st, evs_read_stream(st, "pm", 1, EVS_FORWARD, 0, &it));
	tu_ok(st, evs_iter_next(it, &ev));
	tu_assert_rc(st, evs_append(st, "pm", EVS_ANY, &in, 1, &r), EVS_BUSY);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "holds an open iterator"));
	evs_iter_free(it);
	tu_ok(st, evs_append(st, "pm", EVS_ANY, &in, 1, &r));
	ck_assert_uint_eq(r.last_position, 102);
	evs_close(st);
}
END_TEST

START_TEST(test_followers_race_writer)
{
	evs_store *st = tu_open(kit_dir, NULL);
	/* more than one read-snapshot chunk to catch up on */
	for (int i = 0; i < 30; i++)
		tu_ok(st, tu_append_simple(st, "bulk", EVS_ANY, "Bulk", 100, 0, 0, NULL));
	enum { F = 4 };
	const uint64_t total = 3000 + 50 * 10;
	follower fs[F];
	pthread_t fth[F];
	memset(fs, 0, sizeof fs);
	for (int i = 0; i < F; i++) {
		fs[i].st = st;
		fs[i].want = total;
		ck_assert_int_eq(pthread_create(&fth[i], NULL, follow_thread, &fs[i]), 0);
	}
	bg_append a;
	memset(&a, 0, sizeof a);
	a.st = st;
	a.stream = "live";
	a.type = "Live";
	a.batches = 50;
	a.per_batch = 10;
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, bg_thread, &a), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(a.rc == 0, "appender: %s", a.msg);
	for (int i = 0; i < F; i++) {
		ck_assert_int_eq(pthread_join(fth[i], NULL), 0);
		ck_assert_msg(fs[i].rc == 0, "follower %d: %s", i, fs[i].msg);
		ck_assert_uint_eq(fs[i].got, total);
	}
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_catch_up_then_live,
		test_after_and_filter,
		test_wake_latency_threads,
		test_cross_process_subscriber,
		test_cross_process_wait,
		test_wait,
		test_followers_race_writer,
		test_follow_and_append_same_thread,
		NULL,
	};

	return kit_main("store-follow", 600, tests);
}
