/*
 * test_asof.c - the store and a stream as of a time and as of a position:
 * at an event's exact recorded_at, between two commits, before the first
 * and after the last; fixed cases and a randomized model check.
 */
#include <string.h>

#include "kit_store.h"

typedef struct clock_ctx {
	int64_t after;
} clock_ctx;

static int clock_past(void *arg)
{
	return kit_now_ns() > ((clock_ctx *)arg)->after;
}

/* Wait (bounded) until the wall clock is at least `gap` ns past `t`, so the
 * next commit's recorded_at leaves room for times strictly in between. */
static void clock_beyond(int64_t t, int64_t gap)
{
	clock_ctx c = {t + gap};
	tu_check(tu_wait_for(clock_past, &c, 30000), "the clock does not advance");
}

/* A commit in the model. */
typedef struct commit {
	int64_t at;    /* recorded_at */
	uint64_t last; /* last position */
} commit;

static int64_t last_recorded_at(evs_store *st)
{
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	return h.last_recorded_at;
}

static uint64_t pos_at(evs_store *st, int64_t t)
{
	uint64_t p = 777;
	tu_ok(st, evs_position_at(st, t, &p));
	return p;
}

static void expect_version_at(evs_store *st, const char *stream, int64_t t, uint64_t version,
			      uint64_t position)
{
	uint64_t v = 777, p = 777;
	tu_ok(st, evs_stream_version_at(st, stream, t, &v, &p));
	tu_check(v == version && p == position,
		 "stream_version_at(%s, %lld) = (%llu, %llu), want (%llu, %llu)", stream,
		 (long long)t, (unsigned long long)v, (unsigned long long)p,
		 (unsigned long long)version, (unsigned long long)position);
}

static void expect_version_at_pos(evs_store *st, const char *stream, uint64_t at, uint64_t version,
				  uint64_t position)
{
	uint64_t v = 777, p = 777;
	tu_ok(st, evs_stream_version_at_position(st, stream, at, &v, &p));
	tu_check(v == version && p == position,
		 "stream_version_at_position(%s, %llu) = (%llu, %llu), want (%llu, %llu)", stream,
		 (unsigned long long)at, (unsigned long long)v, (unsigned long long)p,
		 (unsigned long long)version, (unsigned long long)position);
}

/*
 * Commits: c0 a:1 (pos 1)   c1 b:2 (pos 2-3)   c2 a:1 (pos 4)
 *          c3 a:3 (pos 5-7) c4 b:1 (pos 8)
 */
START_TEST(test_fixed)
{
	evs_store *st = tu_open(kit_dir, NULL);
	const char *streams[5] = {"a", "b", "a", "a", "b"};
	const size_t sizes[5] = {1, 2, 1, 3, 1};
	commit c[5];
	uint64_t pos = 0;
	for (int i = 0; i < 5; i++) {
		if (i > 0)
			clock_beyond(c[i - 1].at, 2000);
		tu_ok(st, tu_append_simple(st, streams[i], EVS_ANY, "T", sizes[i], 0, 0, NULL));
		pos += sizes[i];
		c[i].at = last_recorded_at(st);
		c[i].last = pos;
		if (i > 0)
			ck_assert_int_gt(c[i].at, c[i - 1].at + 1);
	}
	/* recorded_at as the events carry it */
	tu_ev *evs;
	size_t n = tu_read_all(st, &evs);
	tu_check_u64_eq(n, 8);
	const int commit_of[8] = {0, 1, 1, 2, 3, 3, 3, 4};
	for (size_t i = 0; i < n; i++)
		tu_check_i64_eq(evs[i].ev.recorded_at, c[commit_of[i]].at);
	tu_evs_free(evs, n);

	/* exact times, one past, between, one before the next */
	for (int i = 0; i < 5; i++) {
		tu_check_u64_eq(pos_at(st, c[i].at), c[i].last);
		tu_check_u64_eq(pos_at(st, c[i].at + 1), c[i].last);
		tu_check_u64_eq(pos_at(st, c[i].at - 1), i ? c[i - 1].last : 0);
		if (i < 4) {
			tu_check_u64_eq(pos_at(st, c[i].at + (c[i + 1].at - c[i].at) / 2),
					c[i].last);
			tu_check_u64_eq(pos_at(st, c[i + 1].at - 1), c[i].last);
		}
	}
	/* before the first */
	tu_check_u64_eq(pos_at(st, c[0].at - 1000000000), 0);
	tu_check_u64_eq(pos_at(st, 0), 0);
	tu_check_u64_eq(pos_at(st, 1), 0);
	tu_check_u64_eq(pos_at(st, -1), 0);
	tu_check_u64_eq(pos_at(st, INT64_MIN), 0);
	/* after the last */
	tu_check_u64_eq(pos_at(st, c[4].at + 1000000000), 8);
	tu_check_u64_eq(pos_at(st, kit_now_ns() + 3600ll * 1000000000), 8);
	tu_check_u64_eq(pos_at(st, INT64_MAX), 8);
	tu_check_u64_eq(pos_at(st, INT64_MAX - 1), 8);

	/* stream "a": v1@1 (c0), v2@4 (c2), v3..5@5..7 (c3) */
	expect_version_at(st, "a", c[0].at - 1, 0, 0);
	expect_version_at(st, "a", c[0].at, 1, 1);
	expect_version_at(st, "a", c[1].at, 1, 1);
	expect_version_at(st, "a", c[2].at - 1, 1, 1);
	expect_version_at(st, "a", c[2].at, 2, 4);
	expect_version_at(st, "a", c[3].at, 5, 7);
	expect_version_at(st, "a", c[3].at + 1, 5, 7);
	expect_version_at(st, "a", INT64_MAX, 5, 7);
	expect_version_at(st, "a", 0, 0, 0);
	/* stream "b": v1..2@2..3 (c1), v3@8 (c4) */
	expect_version_at(st, "b", c[0].at, 0, 0);
	expect_version_at(st, "b", c[1].at - 1, 0, 0);
	expect_version_at(st, "b", c[1].at, 2, 3);
	expect_version_at(st, "b", c[3].at, 2, 3);
	expect_version_at(st, "b", c[4].at - 1, 2, 3);
	expect_version_at(st, "b", c[4].at, 3, 8);
	expect_version_at(st, "b", c[4].at + 1000000000, 3, 8);
	/* no such stream */
	expect_version_at(st, "nobody", c[4].at, 0, 0);
	expect_version_at(st, "a-", INT64_MAX, 0, 0);

	/* by position */
	const uint64_t a_v[10] = {0, 1, 1, 1, 2, 3, 4, 5, 5, 5};
	const uint64_t a_p[10] = {0, 1, 1, 1, 4, 5, 6, 7, 7, 7};
	const uint64_t b_v[10] = {0, 0, 1, 2, 2, 2, 2, 2, 3, 3};
	const uint64_t b_p[10] = {0, 0, 2, 3, 3, 3, 3, 3, 8, 8};
	for (uint64_t p = 0; p < 10; p++) {
		expect_version_at_pos(st, "a", p, a_v[p], a_p[p]);
		expect_version_at_pos(st, "b", p, b_v[p], b_p[p]);
		expect_version_at_pos(st, "c", p, 0, 0);
	}
	expect_version_at_pos(st, "a", UINT64_MAX, 5, 7);

	/* bad stream ids */
	uint64_t v, p;
	tu_assert_rc(st, evs_stream_version_at(st, "", 1, &v, &p), EVS_BAD_STREAM);
	tu_assert_rc(st, evs_stream_version_at_position(st, "\xff", 1, &v, &p), EVS_BAD_STREAM);
	evs_close(st);
}
END_TEST

START_TEST(test_empty_store)
{
	evs_store *st = tu_open(kit_dir, NULL);
	tu_check_u64_eq(pos_at(st, 0), 0);
	tu_check_u64_eq(pos_at(st, kit_now_ns()), 0);
	tu_check_u64_eq(pos_at(st, INT64_MAX), 0);
	expect_version_at(st, "a", INT64_MAX, 0, 0);
	expect_version_at_pos(st, "a", 5, 0, 0);
	evs_close(st);
}
END_TEST

/* ---- randomized ---------------------------------------------------------- */

#define R_STREAMS 5

typedef struct r_event {
	int stream;
	uint64_t version;
	int commit;
} r_event;

START_TEST(test_random_model)
{
	uint64_t r;
	r = kit_seed("asof test_random_model");
	evs_options o;
	tu_options(&o, EVS_SYNC_NONE);
	evs_store *st = tu_open(kit_dir, &o);
	const char *names[R_STREAMS] = {"s0", "s1", "s2", "long", "x"};
	enum { COMMITS = 1500, MAXEV = COMMITS * 4 };
	commit *c = calloc(COMMITS, sizeof *c);
	r_event *e = calloc(MAXEV + 1, sizeof *e);
	ck_assert(c != NULL && e != NULL);
	uint64_t ver[R_STREAMS] = {0};
	uint64_t n = 0;
	for (int i = 0; i < COMMITS; i++) {
		int s = kit_rand_range(&r, 0, 1) ? 3 : (int)kit_rand_range(&r, 0, R_STREAMS - 1);
		size_t k = kit_rand_range(&r, 1, 4);
		/* sometimes leave a gap in time, sometimes commit back to back */
		if (i > 0 && kit_rand_range(&r, 0, 9) == 0)
			clock_beyond(c[i - 1].at, (int64_t)kit_rand_range(&r, 1000, 100000));
		tu_ok(st, tu_append_simple(st, names[s], EVS_ANY, "T", k, 0, 0, NULL));
		for (size_t j = 0; j < k; j++) {
			n++;
			e[n].stream = s;
			e[n].version = ++ver[s];
			e[n].commit = i;
		}
		c[i].last = n;
		c[i].at = last_recorded_at(st);
		if (i > 0)
			ck_assert_int_gt(c[i].at, c[i - 1].at);
	}

	/* position_at: every commit's exact time and the nanosecond before */
	for (int i = 0; i < COMMITS; i++) {
		tu_check_u64_eq(pos_at(st, c[i].at), c[i].last);
		tu_check_u64_eq(pos_at(st, c[i].at - 1), i ? c[i - 1].last : 0);
	}
	/* random times, checked against a bisection of the model */
	for (int q = 0; q < 2000; q++) {
		int64_t lo = c[0].at - 1000, hi = c[COMMITS - 1].at + 1000;
		int64_t t = lo + (int64_t)kit_rand_range(&r, 0, (uint64_t)(hi - lo));
		uint64_t want = 0;
		int a = 0, b = COMMITS; /* first commit with at > t */
		while (a < b) {
			int m = a + (b - a) / 2;
			if (c[m].at <= t)
				a = m + 1;
			else
				b = m;
		}
		if (a > 0)
			want = c[a - 1].last;
		tu_check(pos_at(st, t) == want, "position_at(%lld) want %llu", (long long)t,
			 (unsigned long long)want);
		/* and a stream's version then */
		int s = (int)kit_rand_range(&r, 0, R_STREAMS - 1);
		uint64_t v = 0, p = 0;
		for (uint64_t i = want; i >= 1; i--)
			if (e[i].stream == s) {
				v = e[i].version;
				p = i;
				break;
			}
		expect_version_at(st, names[s], t, v, p);
	}
	/* by position: every position for every stream */
	for (int s = 0; s < R_STREAMS; s++) {
		uint64_t v = 0, p = 0;
		for (uint64_t i = 0; i <= n + 1; i++) {
			if (i >= 1 && i <= n && e[i].stream == s) {
				v = e[i].version;
				p = i;
			}
			expect_version_at_pos(st, names[s], i, v, p);
		}
	}
	free(c);
	free(e);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_fixed,
		test_empty_store,
		test_random_model,
		NULL,
	};

	return kit_main("store-asof", 600, tests);
}
