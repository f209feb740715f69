/*
 * test_index_k3.c - the internal index API of contract K3 (store/index.h)
 * that condition checks and query reads build on: evs__ix_next is the
 * first position > after with the key (kind, name), evs__ix_prev the last
 * < before, each equal to a model over the whole log, for random keys and
 * bounds, in the same read transaction; and inside a write transaction an
 * append's entries are visible to the next check. White-box: linked with
 * the library's objects, like test_nomem.
 */
#include <string.h>

#include "index.h"
#include "kit_store.h"

static const char *types[] = {"A", "B", "Rare"};
static const char *tags[] = {"t:1", "t:2", "t:3"};

START_TEST(test_next_prev_equal_the_log)
{
	uint64_t rng = kit_seed("test_next_prev_equal_the_log");
	evs_store *st = tu_open(kit_dir, NULL);
	uint8_t corr[2][16] = {{1}, {2, 0xff}};
	for (int c = 0; c < 120; c++) {
		evs_event_in in[3];
		const char *tv[3][2];
		size_t k = kit_rand_range(&rng, 1, 3);
		memset(in, 0, sizeof in);
		for (size_t i = 0; i < k; i++) {
			in[i].type = types[kit_rand_range(&rng, 0, 2)];
			size_t nt = kit_rand_range(&rng, 0, 2), b = kit_rand_range(&rng, 0, 2);
			for (size_t j = 0; j < nt; j++)
				tv[i][j] = tags[(b + j) % 3];
			in[i].tags = tv[i];
			in[i].ntags = nt;
			size_t ci = kit_rand_range(&rng, 0, 2);
			if (ci < 2)
				memcpy(in[i].correlation_id, corr[ci], 16);
		}
		const char *stream = kit_rand_range(&rng, 0, 1) ? "x-1" : "y-2";
		tu_ok(st, evs_append(st, stream, EVS_ANY, in, k, NULL));
	}
	tu_ev *log;
	size_t n = tu_read_all(st, &log);
	MDB_txn *txn;
	tu_ok(st, evs__read_begin(st, &txn));
	for (int round = 0; round < 3000; round++) {
		int which = (int)kit_rand_range(&rng, 0, 3);
		int kind = which == 0   ? EVS__IX_TYPE
			   : which == 1 ? EVS__IX_TAG
			   : which == 2 ? EVS__IX_CORRELATION
					: EVS__IX_CATEGORY;
		const void *name;
		size_t len;
		if (kind == EVS__IX_TYPE)
			name = types[kit_rand_range(&rng, 0, 2)];
		else if (kind == EVS__IX_TAG)
			name = tags[kit_rand_range(&rng, 0, 2)];
		else if (kind == EVS__IX_CATEGORY)
			name = kit_rand_range(&rng, 0, 1) ? "x" : "y";
		else
			name = corr[kit_rand_range(&rng, 0, 1)];
		len = kind == EVS__IX_CORRELATION ? 16 : strlen(name);
		uint64_t at = kit_rand_range(&rng, 0, n + 2), want_next = 0, want_prev = 0;
		for (size_t i = 0; i < n; i++) {
			const evs_event *ev = &log[i].ev;
			bool has = false;
			if (kind == EVS__IX_TYPE)
				has = tu_str_eq(ev->type, name);
			else if (kind == EVS__IX_CATEGORY)
				has = ev->stream.ptr[0] == *(const char *)name;
			else if (kind == EVS__IX_CORRELATION)
				has = memcmp(ev->correlation_id, name, 16) == 0;
			else
				for (size_t j = 0; j < ev->ntags; j++)
					has |= tu_str_eq(ev->tags[j], name);
			if (has && ev->position > at && want_next == 0)
				want_next = ev->position;
			if (has && ev->position < at)
				want_prev = ev->position;
		}
		uint64_t got = 99;
		int rc = evs__ix_next(st, txn, kind, name, len, at, &got);
		ck_assert_int_eq(rc, want_next ? EVS_OK : EVS_NOT_FOUND);
		ck_assert_uint_eq(got, want_next);
		rc = evs__ix_prev(st, txn, kind, name, len, at, &got);
		ck_assert_int_eq(rc, want_prev ? EVS_OK : EVS_NOT_FOUND);
		ck_assert_uint_eq(got, want_prev);
	}
	/* the bounds: nothing after the largest position, before the first */
	uint64_t got;
	ck_assert_int_eq(evs__ix_next(st, txn, EVS__IX_TYPE, "A", 1, UINT64_MAX, &got),
			 EVS_NOT_FOUND);
	ck_assert_int_eq(evs__ix_prev(st, txn, EVS__IX_TYPE, "A", 1, 0, &got), EVS_NOT_FOUND);
	ck_assert_int_eq(evs__ix_next(st, txn, EVS__IX_TYPE, "nope", 4, 0, &got), EVS_NOT_FOUND);
	evs__read_end(st, txn);

	/* in a write transaction: entries written are seen at once */
	tu_ok(st, evs__write_begin(st, &txn));
	evs_event ev = log[0].ev;
	ev.type = (evs_str){"Fresh", 5};
	ck_assert_int_eq(evs__ix_add(st, txn, n + 1, &ev), 0);
	ck_assert_int_eq(evs__ix_next(st, txn, EVS__IX_TYPE, "Fresh", 5, 0, &got), EVS_OK);
	ck_assert_uint_eq(got, n + 1);
	evs__read_end(st, txn); /* aborted: nothing kept */
	tu_evs_free(log, n);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_next_prev_equal_the_log,
		NULL,
	};

	return kit_main("store-index-k3", 600, tests);
}
