/*
 * test_read.c - reading a stream forward and backward from a version with
 * a limit; reading all events from a position with type and stream-prefix
 * filters in both directions; snapshots; a randomized model check.
 */
#include <pthread.h>
#include <string.h>

#include "kit_store.h"

/* Versions (or positions) an iterator yields, as an array. */
static size_t collect(evs_store *st, evs_iter *it, uint64_t *out, size_t cap, int positions)
{
	tu_ev *evs;
	size_t n = tu_drain(st, it, &evs);
	ck_assert_uint_le(n, cap);
	for (size_t i = 0; i < n; i++)
		out[i] = positions ? evs[i].ev.position : evs[i].ev.version;
	tu_evs_free(evs, n);
	return n;
}

static void expect_stream(evs_store *st, const char *stream, uint64_t from, int dir, size_t limit,
			  const uint64_t *want, size_t nwant)
{
	evs_iter *it = NULL;
	uint64_t got[64];
	tu_ok(st, evs_read_stream(st, stream, from, dir, limit, &it));
	size_t n = collect(st, it, got, 64, 0);
	tu_check(n == nwant, "read_stream(%s, from %llu, %s, limit %zu): %zu events, want %zu",
		 stream, (unsigned long long)from, dir ? "backward" : "forward", limit, n, nwant);
	for (size_t i = 0; i < n; i++)
		tu_check(
			got[i] == want[i],
			"read_stream(%s, from %llu, %s, limit %zu): [%zu] = version %llu, want %llu",
			stream, (unsigned long long)from, dir ? "backward" : "forward", limit, i,
			(unsigned long long)got[i], (unsigned long long)want[i]);
}

static void expect_all(evs_store *st, uint64_t from, int dir, const evs_filter *f, size_t limit,
		       const uint64_t *want, size_t nwant)
{
	evs_iter *it = NULL;
	uint64_t got[64];
	tu_ok(st, evs_read_all(st, from, dir, f, limit, &it));
	size_t n = collect(st, it, got, 64, 1);
	tu_check(n == nwant, "read_all(from %llu, %s, limit %zu): %zu events, want %zu",
		 (unsigned long long)from, dir ? "backward" : "forward", limit, n, nwant);
	for (size_t i = 0; i < n; i++)
		tu_check(got[i] == want[i],
			 "read_all(from %llu, %s, limit %zu): [%zu] = position %llu, want %llu",
			 (unsigned long long)from, dir ? "backward" : "forward", limit, i,
			 (unsigned long long)got[i], (unsigned long long)want[i]);
}

/*
 * Layout used by the fixed tests (position: stream/type):
 *   1-3  s/A   4 s2/B   5-6 s-x/A   7-9 s/B   10 r/C   11-13 s/C  14 order-1/A
 *   15 order-2/B  16 cust-1/A  17 s/A
 * Stream "s": versions 1..10 at positions 1,2,3,7,8,9,11,12,13,17.
 */
static evs_store *fixed_store(void)
{
	evs_store *st = tu_open(kit_dir, NULL);
	tu_ok(st, tu_append_simple(st, "s", EVS_ANY, "A", 3, 0, 0, NULL));
	tu_ok(st, tu_append_simple(st, "s2", EVS_ANY, "B", 1, 0, 0, NULL));
	tu_ok(st, tu_append_simple(st, "s-x", EVS_ANY, "A", 2, 0, 0, NULL));
	tu_ok(st, tu_append_simple(st, "s", EVS_ANY, "B", 3, 0, 3, NULL));
	tu_ok(st, tu_append_simple(st, "r", EVS_ANY, "C", 1, 0, 0, NULL));
	tu_ok(st, tu_append_simple(st, "s", EVS_ANY, "C", 3, 0, 6, NULL));
	tu_ok(st, tu_append_simple(st, "order-1", EVS_ANY, "A", 1, 0, 0, NULL));
	tu_ok(st, tu_append_simple(st, "order-2", EVS_ANY, "B", 1, 0, 0, NULL));
	tu_ok(st, tu_append_simple(st, "cust-1", EVS_ANY, "A", 1, 0, 0, NULL));
	tu_ok(st, tu_append_simple(st, "s", EVS_ANY, "A", 1, 0, 9, NULL));
	return st;
}

#define W(...) \
	(const uint64_t[]){__VA_ARGS__}, sizeof((const uint64_t[]){__VA_ARGS__}) / sizeof(uint64_t)
#define NONE NULL, 0

START_TEST(test_read_stream)
{
	evs_store *st = fixed_store();
	expect_stream(st, "s", 1, EVS_FORWARD, 0, W(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
	expect_stream(st, "s", 0, EVS_FORWARD, 0, W(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
	expect_stream(st, "s", 4, EVS_FORWARD, 3, W(4, 5, 6));
	expect_stream(st, "s", 3, EVS_FORWARD, 1, W(3));
	expect_stream(st, "s", 8, EVS_FORWARD, 100, W(8, 9, 10));
	expect_stream(st, "s", 10, EVS_FORWARD, 0, W(10));
	expect_stream(st, "s", 11, EVS_FORWARD, 0, NONE);
	expect_stream(st, "s", 1000, EVS_FORWARD, 0, NONE);
	expect_stream(st, "s", EVS_ANY, EVS_BACKWARD, 0, W(10, 9, 8, 7, 6, 5, 4, 3, 2, 1));
	expect_stream(st, "s", EVS_ANY, EVS_BACKWARD, 2, W(10, 9));
	expect_stream(st, "s", 5, EVS_BACKWARD, 2, W(5, 4));
	expect_stream(st, "s", 5, EVS_BACKWARD, 0, W(5, 4, 3, 2, 1));
	expect_stream(st, "s", 1, EVS_BACKWARD, 0, W(1));
	expect_stream(st, "s", 10, EVS_BACKWARD, 1, W(10));
	expect_stream(st, "s", 11, EVS_BACKWARD, 3, W(10, 9, 8));
	expect_stream(st, "s", 1000, EVS_BACKWARD, 0, W(10, 9, 8, 7, 6, 5, 4, 3, 2, 1));
	expect_stream(st, "s", 0, EVS_BACKWARD, 0, NONE);
	/* neighbours by prefix are other streams */
	expect_stream(st, "s2", 1, EVS_FORWARD, 0, W(1));
	expect_stream(st, "s2", EVS_ANY, EVS_BACKWARD, 0, W(1));
	expect_stream(st, "s-x", 0, EVS_FORWARD, 0, W(1, 2));
	expect_stream(st, "s-x", EVS_ANY, EVS_BACKWARD, 0, W(2, 1));
	/* streams that do not exist: EVS_END at once */
	expect_stream(st, "t", 1, EVS_FORWARD, 0, NONE);
	expect_stream(st, "t", EVS_ANY, EVS_BACKWARD, 0, NONE);
	expect_stream(st, "s-", 1, EVS_FORWARD, 0, NONE);
	expect_stream(st, "a", EVS_ANY, EVS_BACKWARD, 0, NONE);   /* before every key */
	expect_stream(st, "zzz", EVS_ANY, EVS_BACKWARD, 0, NONE); /* after every key */
	expect_stream(st, "zzz", 1, EVS_FORWARD, 0, NONE);

	/* the events' fields and positions */
	evs_iter *it;
	tu_ok(st, evs_read_stream(st, "s", 4, EVS_FORWARD, 4, &it));
	tu_ev *evs;
	size_t n = tu_drain(st, it, &evs);
	const uint64_t pos[4] = {7, 8, 9, 11};
	tu_check_u64_eq(n, 4);
	for (size_t i = 0; i < n; i++) {
		ck_assert(tu_str_eq(evs[i].ev.stream, "s"));
		tu_check_u64_eq(evs[i].ev.position, pos[i]);
		ck_assert(tu_str_eq(evs[i].ev.type, i < 3 ? "B" : "C"));
		int64_t v;
		tu_check_i64_eq(tu_mp_get_int(evs[i].ev.data, evs[i].ev.data_len, "n", &v), 0);
		tu_check_i64_eq(v, 3 + (int64_t)i);
	}
	tu_evs_free(evs, n);

	/* bad arguments */
	it = (evs_iter *)st;
	tu_assert_rc(st, evs_read_stream(st, "", 1, EVS_FORWARD, 0, &it), EVS_BAD_STREAM);
	ck_assert_ptr_null(it);
	tu_assert_rc(st, evs_read_stream(st, "\xff", 1, EVS_FORWARD, 0, &it), EVS_BAD_STREAM);
	tu_assert_rc(st, evs_read_stream(st, "s", 1, 7, 0, &it), EVS_INVALID);
	ck_assert_ptr_null(it);
	evs_close(st);
}
END_TEST

/*
 * Streams longer than a "heads" entry holds (stream_index.c: versions move
 * to "streams" 16 at a time once 32 are there): every read by version,
 * forward and backward, from every version, crosses the split the same
 * way as a short stream; interleaved with a second stream and one event
 * per commit, then batches that straddle a move.
 */
START_TEST(test_read_long_stream)
{
	evs_store *st = tu_open(kit_dir, NULL);
	uint64_t want[64], pos_of[101] = {0};
	evs_append_result res;
	size_t n = 0;

	for (int i = 0; i < 70; i++) {
		tu_ok(st, tu_append_simple(st, "long", EVS_ANY, "A", 1, 0, 0, &res));
		pos_of[++n] = res.last_position;
		tu_ok(st, tu_append_simple(st, "long-2", EVS_ANY, "B", 1, 0, 0, NULL));
	}
	for (int i = 0; i < 3; i++) {
		tu_ok(st, tu_append_simple(st, "long", n, "A", 10, 0, 0, &res));
		for (uint64_t p = res.first_position; p <= res.last_position; p++)
			pos_of[++n] = p;
	}
	ck_assert_uint_eq(n, 100);
	for (uint64_t from = 0; from <= 102; from++) {
		size_t k = 0;
		for (uint64_t v = from ? from : 1; v <= 100 && k < 64; v++)
			want[k++] = v;
		expect_stream(st, "long", from, EVS_FORWARD, 64, want, k);
		k = 0;
		for (uint64_t v = from > 100 ? 100 : from; v >= 1 && k < 64; v--)
			want[k++] = v;
		expect_stream(st, "long", from, EVS_BACKWARD, 64, want, k);
	}
	evs_stream_info h;
	tu_ok(st, evs_stream_head(st, "long", &h));
	ck_assert_uint_eq(h.version, 100);
	ck_assert_uint_eq(h.last_position, pos_of[100]);
	for (uint64_t v = 1; v <= 100; v++) {
		evs_iter *it;
		evs_event ev;
		tu_ok(st, evs_read_stream(st, "long", v, EVS_FORWARD, 1, &it));
		tu_ok(st, evs_iter_next(it, &ev));
		ck_assert_uint_eq(ev.position, pos_of[v]);
		ck_assert_uint_eq(ev.version, v);
		evs_iter_free(it);
	}
	/* as of a position: the bisection over both parts */
	for (uint64_t p = 1; p <= pos_of[100] + 1; p++) {
		uint64_t v = 0, at = 0, expect = 0;
		while (expect < 100 && pos_of[expect + 1] <= p)
			expect++;
		tu_ok(st, evs_stream_version_at_position(st, "long", p, &v, &at));
		ck_assert_uint_eq(v, expect);
		ck_assert_uint_eq(at, expect ? pos_of[expect] : 0);
	}
	tu_assert_rc(st, tu_append_simple(st, "long", 99, "A", 1, 0, 0, NULL), EVS_WRONG_VERSION);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

START_TEST(test_read_all)
{
	evs_store *st = fixed_store();
	expect_all(st, 1, EVS_FORWARD, NULL, 0,
		   W(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17));
	expect_all(st, 0, EVS_FORWARD, NULL, 3, W(1, 2, 3));
	expect_all(st, 15, EVS_FORWARD, NULL, 0, W(15, 16, 17));
	expect_all(st, 16, EVS_FORWARD, NULL, 1, W(16));
	expect_all(st, 18, EVS_FORWARD, NULL, 0, NONE);
	expect_all(st, EVS_ANY, EVS_BACKWARD, NULL, 3, W(17, 16, 15));
	expect_all(st, 4, EVS_BACKWARD, NULL, 0, W(4, 3, 2, 1));
	expect_all(st, 100, EVS_BACKWARD, NULL, 2, W(17, 16));
	expect_all(st, 1, EVS_BACKWARD, NULL, 0, W(1));
	expect_all(st, 0, EVS_BACKWARD, NULL, 0, NONE);

	const char *types_bc[] = {"B", "C"};
	evs_filter f = {.types = types_bc, .ntypes = 2};
	expect_all(st, 1, EVS_FORWARD, &f, 0, W(4, 7, 8, 9, 10, 11, 12, 13, 15));
	expect_all(st, 9, EVS_FORWARD, &f, 3, W(9, 10, 11));
	expect_all(st, EVS_ANY, EVS_BACKWARD, &f, 0, W(15, 13, 12, 11, 10, 9, 8, 7, 4));
	expect_all(st, 10, EVS_BACKWARD, &f, 2, W(10, 9));
	expect_all(st, 14, EVS_BACKWARD, &f, 2, W(13, 12));

	const char *pre[] = {"order-", "cust-"};
	evs_filter p = {.stream_prefixes = pre, .nprefixes = 2};
	expect_all(st, 1, EVS_FORWARD, &p, 0, W(14, 15, 16));
	expect_all(st, EVS_ANY, EVS_BACKWARD, &p, 0, W(16, 15, 14));
	expect_all(st, 15, EVS_FORWARD, &p, 0, W(15, 16));
	expect_all(st, 15, EVS_BACKWARD, &p, 1, W(15));

	/* "s" as a prefix matches s, s2 and s-x, not r */
	const char *pre_s[] = {"s"};
	evs_filter ps = {.stream_prefixes = pre_s, .nprefixes = 1};
	expect_all(st, 1, EVS_FORWARD, &ps, 0, W(1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 17));

	/* both: type AND prefix */
	const char *types_a[] = {"A"};
	evs_filter both = {.types = types_a, .ntypes = 1, .stream_prefixes = pre, .nprefixes = 2};
	expect_all(st, 1, EVS_FORWARD, &both, 0, W(14, 16));
	expect_all(st, EVS_ANY, EVS_BACKWARD, &both, 1, W(16));
	const char *pre_s2[] = {"s-", "r"};
	evs_filter both2 = {
		.types = types_bc, .ntypes = 2, .stream_prefixes = pre_s2, .nprefixes = 2};
	expect_all(st, 1, EVS_FORWARD, &both2, 0, W(10));

	/* a type is matched whole, not as a prefix */
	const char *types_none[] = {"", "AB", "a", "Bx"};
	evs_filter nomatch = {.types = types_none, .ntypes = 4};
	expect_all(st, 1, EVS_FORWARD, &nomatch, 0, NONE);
	expect_all(st, EVS_ANY, EVS_BACKWARD, &nomatch, 0, NONE);

	/* a zeroed filter passes everything */
	evs_filter zero;
	memset(&zero, 0, sizeof zero);
	expect_all(st, 16, EVS_FORWARD, &zero, 0, W(16, 17));

	/* the filter's arrays are copied */
	char t1[4] = "C", p1[8] = "r";
	const char *tv[1] = {t1}, *pv[1] = {p1};
	evs_filter cf = {.types = tv, .ntypes = 1, .stream_prefixes = pv, .nprefixes = 1};
	evs_iter *it;
	tu_ok(st, evs_read_all(st, 1, EVS_FORWARD, &cf, 0, &it));
	strcpy(t1, "A");
	strcpy(p1, "s");
	tv[0] = "B";
	pv[0] = "order-";
	uint64_t got[64];
	size_t n = collect(st, it, got, 64, 1);
	tu_check_u64_eq(n, 1);
	tu_check_u64_eq(got[0], 10);

	it = (evs_iter *)st;
	tu_assert_rc(st, evs_read_all(st, 1, 5, NULL, 0, &it), EVS_INVALID);
	ck_assert_ptr_null(it);
	evs_close(st);
}
END_TEST

START_TEST(test_empty_store)
{
	evs_store *st = tu_open(kit_dir, NULL);
	expect_all(st, 0, EVS_FORWARD, NULL, 0, NONE);
	expect_all(st, 1, EVS_FORWARD, NULL, 0, NONE);
	expect_all(st, EVS_ANY, EVS_BACKWARD, NULL, 0, NONE);
	expect_stream(st, "s", 1, EVS_FORWARD, 0, NONE);
	expect_stream(st, "s", EVS_ANY, EVS_BACKWARD, 0, NONE);
	evs_close(st);
}
END_TEST

typedef struct appender {
	evs_store *st;
	int rc;
} appender;

static void *append_five(void *arg)
{
	appender *a = arg;
	a->rc = tu_append_simple(a->st, "s", EVS_ANY, "Later", 5, 0, 100, NULL);
	return NULL;
}

START_TEST(test_iterator_snapshot)
{
	evs_store *st = fixed_store();
	evs_iter *all, *one;
	tu_ok(st, evs_read_all(st, 1, EVS_FORWARD, NULL, 0, &all));
	tu_ok(st, evs_read_stream(st, "s", 1, EVS_FORWARD, 0, &one));
	evs_event ev;
	tu_ok(st, evs_iter_next(all, &ev));
	tu_check_u64_eq(ev.position, 1);

	/* another thread appends while the iterators are open */
	appender a = {st, -1};
	pthread_t th;
	tu_check_i64_eq(pthread_create(&th, NULL, append_five, &a), 0);
	tu_check_i64_eq(pthread_join(th, NULL), 0);
	tu_ok(st, a.rc);

	/* the iterators still see their snapshot */
	uint64_t got[64];
	size_t n = collect(st, all, got, 64, 1);
	tu_check_u64_eq(n, 16);
	tu_check_u64_eq(got[15], 17);
	n = collect(st, one, got, 64, 0);
	tu_check_u64_eq(n, 10);

	/* a new iterator sees the new events */
	tu_ok(st, evs_read_stream(st, "s", EVS_ANY, EVS_BACKWARD, 1, &one));
	n = collect(st, one, got, 64, 0);
	tu_check_u64_eq(n, 1);
	tu_check_u64_eq(got[0], 15);
	evs_close(st);
}
END_TEST

START_TEST(test_many_open_iterators)
{
	evs_store *st = fixed_store();
	enum { K = 50 };
	evs_iter *its[K];
	for (int i = 0; i < K; i++)
		tu_ok(st, evs_read_all(st, (uint64_t)i % 17 + 1, EVS_FORWARD, NULL, 0, &its[i]));
	for (int i = 0; i < K; i++) {
		evs_event ev;
		tu_ok(st, evs_iter_next(its[i], &ev));
		tu_check_u64_eq(ev.position, (uint64_t)i % 17 + 1);
	}
	for (int i = 0; i < K; i++)
		evs_iter_free(its[i]);
	/* an iterator abandoned midway is freed without draining */
	evs_iter *it;
	tu_ok(st, evs_read_stream(st, "s", 1, EVS_FORWARD, 0, &it));
	evs_event ev;
	tu_ok(st, evs_iter_next(it, &ev));
	evs_iter_free(it);
	evs_close(st);
}
END_TEST

/* ---- randomized model check -------------------------------------------- */

#define NSTREAMS 8
#define NTYPES   4
static const char *const r_streams[NSTREAMS] = {
	"order-1", "order-10", "order-2", "order", "cust-1", "cust-2", "o", "x",
};
static const char *const r_types[NTYPES] = {"A", "B", "Aa", "C"};
static const char *const r_prefixes[] = {"order", "order-1", "cust-", "o", "x", "none", "c"};
#define NPREFIXES (sizeof r_prefixes / sizeof r_prefixes[0])

typedef struct model_ev {
	int stream, type;
	uint64_t version;
} model_ev;

static int has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

START_TEST(test_random_model)
{
	uint64_t r;
	r = kit_seed("test_random_model");
	evs_store *st = tu_open(kit_dir, NULL);
	enum { NEV = 700 };
	model_ev *m = calloc(NEV + 32, sizeof *m);
	ck_assert_ptr_nonnull(m);
	uint64_t ver[NSTREAMS] = {0};
	size_t n = 0;
	while (n < NEV) {
		int s = (int)kit_rand_range(&r, 0, NSTREAMS - 1);
		size_t k = kit_rand_range(&r, 1, 8);
		evs_event_in evs[8];
		for (size_t i = 0; i < k; i++) {
			int t = (int)kit_rand_range(&r, 0, NTYPES - 1);
			tu_event(&evs[i], r_types[t], NULL, NULL);
			m[n + i].stream = s;
			m[n + i].type = t;
			m[n + i].version = ver[s] + i + 1;
		}
		uint64_t expected = kit_rand_range(&r, 0, 1) ? ver[s] : EVS_ANY;
		evs_append_result res;
		tu_ok(st, evs_append(st, r_streams[s], expected, evs, k, &res));
		tu_check_u64_eq(res.first_position, n + 1);
		tu_check_u64_eq(res.version, ver[s] + k);
		ver[s] += k;
		n += k;
	}

	for (int q = 0; q < 300; q++) {
		int dir = (int)kit_rand_range(&r, 0, 1);
		size_t limit = kit_rand_range(&r, 0, 3) == 0 ? 0 : kit_rand_range(&r, 1, 20);
		uint64_t want[64];
		size_t nwant = 0;
		if (q % 2 == 0) {
			/* one stream */
			int s = (int)kit_rand_range(&r, 0, NSTREAMS - 1);
			uint64_t from = kit_rand_range(&r, 0, 8) == 0
						? EVS_ANY
						: kit_rand_range(&r, 0, ver[s] + 3);
			if (limit == 0 || limit > 60)
				limit = 60;
			uint64_t v = from;
			if (dir == EVS_FORWARD) {
				if (v == 0)
					v = 1;
				for (; v <= ver[s] && nwant < limit; v++)
					want[nwant++] = v;
			} else {
				if (v > ver[s])
					v = ver[s];
				for (; v >= 1 && nwant < limit; v--)
					want[nwant++] = v;
			}
			if (from == EVS_ANY && dir == EVS_FORWARD)
				nwant = 0;
			expect_stream(st, r_streams[s], from, dir, limit, want, nwant);
		} else {
			/* all, with a random filter */
			const char *types[NTYPES], *prefixes[3];
			evs_filter f;
			memset(&f, 0, sizeof f);
			for (int t = 0; t < NTYPES; t++)
				if (kit_rand_range(&r, 0, 2) == 0)
					types[f.ntypes++] = r_types[t];
			size_t np = kit_rand_range(&r, 0, 2);
			for (size_t i = 0; i < np; i++)
				prefixes[f.nprefixes++] =
					r_prefixes[kit_rand_range(&r, 0, NPREFIXES - 1)];
			f.types = types;
			f.stream_prefixes = prefixes;
			uint64_t from = kit_rand_range(&r, 0, 8) == 0
						? EVS_ANY
						: kit_rand_range(&r, 0, n + 3);
			if (limit == 0 || limit > 60)
				limit = 60;
			for (size_t i = 0; i < n && nwant < limit; i++) {
				size_t idx = dir == EVS_FORWARD ? i : n - 1 - i;
				uint64_t p = idx + 1;
				if (dir == EVS_FORWARD && from != 0 && p < from)
					continue;
				if (dir == EVS_BACKWARD && from != EVS_ANY && p > from)
					continue;
				int ok = f.ntypes == 0;
				for (size_t t = 0; t < f.ntypes; t++)
					ok |= strcmp(types[t], r_types[m[idx].type]) == 0;
				int okp = f.nprefixes == 0;
				for (size_t t = 0; t < f.nprefixes; t++)
					okp |= has_prefix(r_streams[m[idx].stream], prefixes[t]);
				if (ok && okp)
					want[nwant++] = p;
			}
			if (from == EVS_ANY && dir == EVS_FORWARD)
				nwant = 0;
			expect_all(st, from, dir, &f, limit, want, nwant);
		}
	}

	/* heads agree with the model */
	for (int s = 0; s < NSTREAMS; s++) {
		evs_stream_info h;
		if (ver[s] == 0) {
			tu_assert_rc(st, evs_stream_head(st, r_streams[s], &h), EVS_NOT_FOUND);
			continue;
		}
		tu_ok(st, evs_stream_head(st, r_streams[s], &h));
		tu_check_u64_eq(h.version, ver[s]);
		uint64_t last = 0;
		for (size_t i = 0; i < n; i++)
			if (m[i].stream == s)
				last = i + 1;
		tu_check_u64_eq(h.last_position, last);
	}
	free(m);
	tu_check_u64_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_read_stream,       test_read_long_stream,
		test_read_all,          test_empty_store,
		test_iterator_snapshot, test_many_open_iterators,
		test_random_model,      NULL,
	};

	return kit_main("store-read", 600, tests);
}
