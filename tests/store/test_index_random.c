/*
 * test_index_random.c - reads through the event indexes equal a filter
 * over the whole log: random histories (streams of several categories,
 * types, tag sets, correlation ids, producers), then random filters
 * (types, categories, tags, correlation, stream prefixes, mixed),
 * forward and backward, from random positions, with limits, random
 * evs_read_query queries, and subscriptions (catch-up, then live). The
 * seed is printed; EVS_TEST_SEED=<n> replays it.
 */
#include <stdlib.h>
#include <string.h>

#include "kit_store.h"

static const char *streams[] = {"acc-1", "acc-2", "acc-3", "ord-1", "ord-2",
				"plain", "-lead", "a-b-c", "acc"};
static const char *cats[] = {"acc", "ord", "plain", "a", "none"};
static const char *types[] = {"Opened", "Deposited", "Withdrawn", "Placed", "Shipped", "Rare"};
static const char *tags[] = {"account:1",  "account:2", "course:c1", "course:c2", "x",
			     "user:alice", "user:bob",  "t",         "g:1",       "g:2"};
#define NSTREAMS (sizeof streams / sizeof streams[0])
#define NCATS    (sizeof cats / sizeof cats[0])
#define NTYPES   (sizeof types / sizeof types[0])
#define NTAGS    (sizeof tags / sizeof tags[0])
#define NCORR    4

static uint64_t rng;

static size_t pick(size_t n)
{
	return (size_t)kit_rand_range(&rng, 0, n - 1);
}

static void corr_id(uint8_t out[16], size_t i)
{
	/* random-looking bytes, stable per i */
	for (int b = 0; b < 16; b++)
		out[b] = (uint8_t)(0x9e3779b9u * (unsigned)(i + 1) >> (b % 4 * 8)) ^
			 (uint8_t)(b * 31);
}

/* Append `n` events in random batches. */
static void history(evs_store *st, size_t n)
{
	size_t done = 0;
	while (done < n) {
		evs_event_in in[4];
		const char *tagv[4][4];
		size_t k = 1 + pick(4);
		if (k > n - done)
			k = n - done;
		memset(in, 0, sizeof in);
		for (size_t i = 0; i < k; i++) {
			/* "Rare" is about 1 in 50 */
			in[i].type = pick(50) == 0 ? "Rare" : types[pick(NTYPES - 1)];
			size_t nt = pick(4), base = pick(NTAGS);
			for (size_t j = 0; j < nt; j++)
				tagv[i][j] = tags[(base + j * 3) % NTAGS]; /* distinct */
			in[i].tags = tagv[i];
			in[i].ntags = nt;
			if (pick(3) == 0)
				corr_id(in[i].correlation_id, pick(NCORR));
			if (pick(4) == 0)
				in[i].producer = "svc";
		}
		tu_ok(st, evs_append(st, streams[pick(NSTREAMS)], EVS_ANY, in, k, NULL));
		done += k;
	}
}

typedef struct rfilter {
	const char *types[3], *cats[3], *tags[3], *prefixes[2];
	uint8_t corr[16];
	evs_filter f;
} rfilter;

/* Distinct random picks from pool. */
static size_t picks(const char **out, size_t max, const char *const *pool, size_t n)
{
	size_t k = pick(max + 1), got = 0;
	for (size_t i = 0; i < k; i++) {
		const char *c = pool[pick(n)];
		bool dup = false;
		for (size_t j = 0; j < got; j++)
			dup |= strcmp(out[j], c) == 0;
		if (!dup)
			out[got++] = c;
	}
	return got;
}

static void random_filter(rfilter *r)
{
	memset(r, 0, sizeof *r);
	r->f.types = r->types;
	r->f.ntypes = picks(r->types, 2, types, NTYPES);
	r->f.categories = r->cats;
	r->f.ncategories = picks(r->cats, 2, cats, NCATS);
	r->f.tags = r->tags;
	r->f.ntags = picks(r->tags, 2, tags, NTAGS);
	if (pick(4) == 0) {
		corr_id(r->corr, pick(NCORR + 1)); /* one more: matches nothing */
		r->f.correlation_id = r->corr;
	}
	if (pick(5) == 0) {
		r->prefixes[0] = streams[pick(NSTREAMS)];
		r->f.stream_prefixes = r->prefixes;
		r->f.nprefixes = 1;
	}
}

static bool str_in(evs_str s, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (tu_str_eq(s, v[i]))
			return true;
	return false;
}

static bool has_tag(const evs_event *ev, const char *t)
{
	for (size_t i = 0; i < ev->ntags; i++)
		if (tu_str_eq(ev->tags[i], t))
			return true;
	return false;
}

static bool model_pass(const evs_filter *f, const evs_event *ev)
{
	if (f->ntypes && !str_in(ev->type, f->types, f->ntypes))
		return false;
	if (f->nprefixes &&
	    !(ev->stream.len >= strlen(f->stream_prefixes[0]) &&
	      !memcmp(ev->stream.ptr, f->stream_prefixes[0], strlen(f->stream_prefixes[0]))))
		return false;
	if (f->ncategories) {
		const char *sep = memchr(ev->stream.ptr, '-', ev->stream.len);
		evs_str c = {ev->stream.ptr, sep ? (size_t)(sep - ev->stream.ptr) : ev->stream.len};
		if (!str_in(c, f->categories, f->ncategories))
			return false;
	}
	for (size_t i = 0; i < f->ntags; i++)
		if (!has_tag(ev, f->tags[i]))
			return false;
	return !f->correlation_id || !memcmp(f->correlation_id, ev->correlation_id, 16);
}

static bool model_query(const evs_query *q, const evs_event *ev)
{
	if (q->nitems == 0)
		return true;
	for (size_t i = 0; i < q->nitems; i++) {
		const evs_query_item *it = &q->items[i];
		bool ok = it->ntypes == 0 || str_in(ev->type, it->types, it->ntypes);
		for (size_t j = 0; ok && j < it->ntags; j++)
			ok = has_tag(ev, it->tags[j]);
		if (ok)
			return true;
	}
	return false;
}

/* Expected positions: the model over the whole log. */
static size_t expect(const tu_ev *log, size_t n, const evs_filter *f, const evs_query *q,
		     uint64_t from, int dir, size_t limit, uint64_t *out)
{
	size_t k = 0;
	for (size_t j = 0; j < n; j++) {
		size_t i = dir == EVS_FORWARD ? j : n - 1 - j;
		const evs_event *ev = &log[i].ev;
		if (dir == EVS_FORWARD ? ev->position < from : ev->position > from)
			continue;
		if (f ? !model_pass(f, ev) : !model_query(q, ev))
			continue;
		if (limit && k == limit)
			break;
		out[k++] = ev->position;
	}
	return k;
}

static void compare(evs_store *st, evs_iter *it, const uint64_t *want, size_t nwant,
		    const char *what, size_t round)
{
	tu_ev *got;
	size_t n = tu_drain(st, it, &got);
	ck_assert_msg(n == nwant, "%s round %zu: %zu events, expected %zu", what, round, n, nwant);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(got[i].ev.position == want[i],
			      "%s round %zu: event %zu at position %llu, expected %llu", what,
			      round, i, (unsigned long long)got[i].ev.position,
			      (unsigned long long)want[i]);
	tu_evs_free(got, n);
}

static uint64_t random_from(size_t n, int dir)
{
	switch (pick(4)) {
	case 0: return dir == EVS_FORWARD ? 0 : EVS_ANY;
	case 1: return n + 1 + pick(3);
	default: return 1 + pick(n);
	}
}

#define EVENTS 1500

START_TEST(test_filters_equal_the_log)
{
	rng = kit_seed("test_filters_equal_the_log");
	evs_store *st = tu_open(kit_dir, NULL);
	history(st, EVENTS);
	tu_ev *log;
	size_t n = tu_read_all(st, &log);
	ck_assert_uint_eq(n, EVENTS);
	uint64_t *want = malloc(EVENTS * sizeof *want);
	size_t nonempty = 0, qnonempty = 0;

	for (size_t round = 0; round < 400; round++) {
		rfilter r;
		random_filter(&r);
		int dir = pick(2) ? EVS_FORWARD : EVS_BACKWARD;
		uint64_t from = random_from(n, dir);
		size_t limit = pick(3) == 0 ? 1 + pick(20) : 0;
		size_t k = expect(log, n, &r.f, NULL, from, dir, limit, want);
		nonempty += k > 0;
		evs_iter *it;
		tu_ok(st, evs_read_all(st, from, dir, &r.f, limit, &it));
		compare(st, it, want, k, "evs_read_all", round);
	}

	for (size_t round = 0; round < 400; round++) {
		const char *qt[3][3], *qg[3][3];
		evs_query_item items[3];
		evs_query q = {items, pick(4)};
		for (size_t i = 0; i < q.nitems; i++) {
			items[i].types = qt[i];
			items[i].ntypes = picks(qt[i], 2, types, NTYPES);
			items[i].tags = qg[i];
			items[i].ntags = picks(qg[i], 2, tags, NTAGS);
			if (items[i].ntypes + items[i].ntags == 0 && pick(3)) {
				qg[i][0] = tags[pick(NTAGS)];
				items[i].ntags = 1;
			}
		}
		int dir = pick(2) ? EVS_FORWARD : EVS_BACKWARD;
		uint64_t from = random_from(n, dir);
		size_t limit = pick(3) == 0 ? 1 + pick(20) : 0;
		size_t k = expect(log, n, NULL, &q, from, dir, limit, want);
		qnonempty += k > 0;
		evs_iter *it;
		tu_ok(st, evs_read_query(st, &q, from, dir, limit, &it));
		compare(st, it, want, k, "evs_read_query", round);
	}
	/* the rounds test something: many find events */
	fprintf(stderr, "filters with events: %zu of 400, queries: %zu of 400\n", nonempty,
		qnonempty);
	ck_assert_uint_ge(nonempty, 100);
	ck_assert_uint_ge(qnonempty, 100);
	free(want);
	tu_evs_free(log, n);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

/* A subscription with an indexed filter: catch-up, then live, then its
 * position says everything up to the log's end was looked at. */
START_TEST(test_subscriptions_equal_the_log)
{
	rng = kit_seed("test_subscriptions_equal_the_log");
	evs_store *st = tu_open(kit_dir, NULL);
	history(st, 800);
	uint64_t *want = malloc(2000 * sizeof *want);

	for (size_t round = 0; round < 30; round++) {
		rfilter r;
		random_filter(&r);
		uint64_t after = pick(3) ? 0 : pick(800);
		evs_sub *sub;
		tu_ok(st, evs_subscribe(st, after, &r.f, &sub));
		size_t got = 0;
		uint64_t *seen = malloc(2000 * sizeof *seen);
		for (int phase = 0; phase < 2; phase++) {
			evs_event ev;
			int rc;
			while ((rc = evs_sub_next(sub, &ev, 0)) == EVS_OK)
				seen[got++] = ev.position;
			ck_assert_int_eq(rc, EVS_TIMEOUT);
			if (phase == 0)
				history(st, 20); /* live */
		}
		tu_ev *log;
		size_t n = tu_read_all(st, &log);
		ck_assert_uint_eq(evs_sub_position(sub), n);
		size_t k = expect(log, n, &r.f, NULL, after + 1, EVS_FORWARD, 0, want);
		ck_assert_msg(got == k, "round %zu: %zu events, expected %zu", round, got, k);
		for (size_t i = 0; i < k; i++)
			ck_assert_uint_eq(seen[i], want[i]);
		free(seen);
		tu_evs_free(log, n);
		evs_sub_close(sub);
	}
	free(want);
	evs_close(st);
}
END_TEST

/* Bad filters and queries are refused with a message, never narrowed. */
START_TEST(test_bad_filters)
{
	evs_store *st = tu_open(kit_dir, NULL);
	evs_iter *it = NULL;
	const char *dup[] = {"a", "a"}, *empty[] = {""}, *null[] = {NULL};
	evs_filter f = {.tags = dup, .ntags = 2};
	tu_assert_rc(st, evs_read_all(st, 0, EVS_FORWARD, &f, 0, &it), EVS_INVALID);
	ck_assert_msg(strstr(evs_errmsg(st), "tag 1 \"a\" repeats tag 0"), "%s", evs_errmsg(st));
	f = (evs_filter){.categories = empty, .ncategories = 1};
	tu_assert_rc(st, evs_read_all(st, 0, EVS_FORWARD, &f, 0, &it), EVS_INVALID);
	ck_assert_msg(strstr(evs_errmsg(st), "category 0 is empty"), "%s", evs_errmsg(st));
	f = (evs_filter){.tags = null, .ntags = 1};
	evs_sub *sub = NULL;
	tu_assert_rc(st, evs_subscribe(st, 0, &f, &sub), EVS_INVALID);
	ck_assert_ptr_null(sub);
	evs_query_item item = {.tags = dup, .ntags = 2};
	evs_query q = {&item, 1};
	tu_assert_rc(st, evs_read_query(st, &q, 0, EVS_FORWARD, 0, &it), EVS_INVALID);
	ck_assert_msg(strstr(evs_errmsg(st), "query item 0: tag 1 \"a\" repeats tag 0"), "%s",
		      evs_errmsg(st));
	uint8_t zero[16] = {0};
	f = (evs_filter){.correlation_id = zero};
	tu_assert_rc(st, evs_read_all(st, 0, EVS_FORWARD, &f, 0, &it), EVS_INVALID);
	ck_assert_msg(strstr(evs_errmsg(st), "correlation_id is all zero"), "%s", evs_errmsg(st));
	q.items = NULL;
	tu_assert_rc(st, evs_read_query(st, &q, 0, EVS_FORWARD, 0, &it), EVS_INVALID);
	tu_assert_rc(st, evs_read_query(st, NULL, 0, EVS_FORWARD, 0, &it), EVS_INVALID);
	ck_assert_ptr_null(it);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_filters_equal_the_log,
		test_subscriptions_equal_the_log,
		test_bad_filters,
		NULL,
	};

	return kit_main("store-index-random", 600, tests);
}
