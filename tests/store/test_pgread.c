/*
 * test_pgread.c - records read straight from LMDB's pages (store/pgread.c)
 * are the ones mdb_get finds: every position of a random store (a tree
 * three or more levels deep, records of random sizes, some on overflow
 * pages), visited forward, backward and in a random order, with lookups
 * in flight the way the reader keeps them; positions the tree does not
 * hold are refused. And reads by an index through the library equal a
 * filter over the whole log on such a store, forward and backward, from
 * random positions, with limits, and so do stream reads.
 *
 * White-box: links the static library for evs__pg_*. The seed is printed.
 */
#include <lmdb.h>
#include <string.h>

#include "kit_store.h"
#include "pgread.h"

enum { N = 20000, TYPES = 6 };

static const char *const type_names[TYPES] = {"Rare", "A", "B", "C", "D", "E"};

/* A store of N events in random batches over 40 streams: sizes mostly
 * small, some large enough for overflow pages; type "Rare" about 1%. */
static void build(const char *dir, uint64_t *rng)
{
	evs_options o;
	tu_mp data[8];
	evs_event_in batch[50];
	uint64_t n = 0;

	tu_options(&o, EVS_SYNC_NONE);
	evs_store *st = tu_open(dir, &o);
	for (int i = 0; i < 8; i++) {
		static const size_t sizes[8] = {12, 40, 90, 180, 300, 900, 2500, 7000};
		tu_mp_init(&data[i]);
		tu_mp_blob_map(&data[i], sizes[i], (uint64_t)i);
	}
	while (n < N) {
		size_t k = (size_t)kit_rand_range(rng, 1, 50);
		char stream[32];

		if (k > N - n)
			k = (size_t)(N - n);
		for (size_t i = 0; i < k; i++) {
			uint64_t r = kit_rand_range(rng, 0, 99);
			const char *type = r == 0 ? type_names[0] : type_names[1 + r % (TYPES - 1)];
			uint64_t sz = kit_rand_range(rng, 0, 99);
			int d = sz < 60   ? (int)(sz % 4)
				: sz < 95 ? 4 + (int)(sz % 2)
					  : 6 + (int)(sz % 2);
			tu_event(&batch[i], type, &data[d], NULL);
		}
		snprintf(stream, sizeof stream, "acct-%02d", (int)kit_rand_range(rng, 0, 39));
		tu_ok(st, evs_append(st, stream, EVS_ANY, batch, k, NULL));
		n += k;
	}
	evs_close(st);
	for (int i = 0; i < 8; i++)
		tu_mp_destroy(&data[i]);
}

static void key_of(uint8_t key[8], uint64_t pos)
{
	for (int b = 0; b < 8; b++)
		key[7 - b] = (uint8_t)(pos >> (8 * b));
}

/* Look up positions pos[0..n) through pgread with up to `ahead` lookups in
 * flight (find, then near halfway, then get) and compare each with mdb_get. */
static void compare_order(MDB_txn *txn, MDB_dbi dbi, evs__pgtree *t, const uint64_t *pos, size_t n,
			  size_t ahead, const char *what)
{
	evs__pgslot ring[16];

	ck_assert(ahead >= 1 && ahead <= 16);
	for (size_t i = 0; i < n + ahead; i++) {
		if (i < n) {
			ring[i % 16].pos = pos[i];
			evs__pg_find(t, &ring[i % 16]);
			if (i >= ahead / 2)
				evs__pg_near(t, &ring[(i - ahead / 2) % 16]);
		}
		if (i < ahead || i - ahead >= n)
			continue;
		const evs__pgslot *s = &ring[(i - ahead) % 16];
		uint8_t key[8];
		MDB_val k = {8, key}, want, got;
		key_of(key, s->pos);
		int rc = mdb_get(txn, dbi, &k, &want);
		bool ok = evs__pg_get(t, s, &got);
		if (rc == MDB_NOTFOUND) {
			ck_assert_msg(!ok, "%s: position %llu is not in the tree, pgread found it",
				      what, (unsigned long long)s->pos);
			continue;
		}
		ck_assert_int_eq(rc, 0);
		ck_assert_msg(ok, "%s: pgread did not find position %llu", what,
			      (unsigned long long)s->pos);
		ck_assert_msg(got.mv_data == want.mv_data && got.mv_size == want.mv_size,
			      "%s: position %llu: pgread %p/%zu, mdb_get %p/%zu", what,
			      (unsigned long long)s->pos, got.mv_data, got.mv_size, want.mv_data,
			      want.mv_size);
	}
}

START_TEST(test_pages_equal_mdb_get)
{
	uint64_t rng = kit_seed("store-pgread pages"), *pos = malloc((N + 8) * sizeof *pos);
	char dir[4096];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi, main_db;
	MDB_stat st;
	evs__pgtree t;
	int major, minor;

	ck_assert_ptr_nonnull(pos);
	tu_path(dir, sizeof dir, "pages");
	build(dir, &rng);
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 32), 0);
	ck_assert_int_eq(mdb_env_open(env, dir, MDB_RDONLY, 0), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "events", 0, &dbi), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, NULL, 0, &main_db), 0);
	ck_assert_int_eq(mdb_stat(txn, dbi, &st), 0);
	ck_assert_uint_ge(st.ms_depth, 3);
	ck_assert_uint_gt(st.ms_overflow_pages, 0);
	mdb_version(&major, &minor, NULL);
	/* pgread reads LMDB 0.9's pages only, and says so */
	ck_assert_int_eq(evs__pg_open(&t, txn, main_db, "events"), major == 0 && minor == 9);
	ck_assert(!evs__pg_open(&t, txn, main_db, "no-such-tree"));
	if (major == 0 && minor == 9) {
		for (size_t ahead = 1; ahead <= 16; ahead *= 4) {
			for (uint64_t i = 0; i < N; i++)
				pos[i] = i + 1;
			compare_order(txn, dbi, &t, pos, N, ahead, "forward");
			for (uint64_t i = 0; i < N; i++)
				pos[i] = N - i;
			compare_order(txn, dbi, &t, pos, N, ahead, "backward");
			for (uint64_t i = 0; i < N; i++)
				pos[i] = kit_rand_range(&rng, 1, N);
			compare_order(txn, dbi, &t, pos, N, ahead, "random");
			/* every hundredth, forward then backward: far apart */
			size_t m = 0;
			for (uint64_t p = kit_rand_range(&rng, 1, 100); p <= N; p += 100)
				pos[m++] = p;
			for (uint64_t p = N - kit_rand_range(&rng, 0, 99); p >= 1 && p <= N;
			     p -= 100)
				pos[m++] = p;
			compare_order(txn, dbi, &t, pos, m, ahead, "sparse");
		}
		/* positions the tree does not hold */
		const uint64_t absent[] = {0, N + 1, N + 2, N + 1000, UINT64_MAX - 1, UINT64_MAX};
		compare_order(txn, dbi, &t, absent, sizeof absent / sizeof *absent, 4, "absent");
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	free(pos);
}
END_TEST

/* The events a read hands out: positions and a checksum of their data. */
static size_t drain(evs_store *st, evs_iter *it, uint64_t *pos, uint64_t *sum)
{
	evs_event ev;
	size_t n = 0;
	int rc;

	*sum = 0;
	while ((rc = evs_iter_next(it, &ev)) == EVS_OK) {
		pos[n++] = ev.position;
		for (size_t i = 0; i < ev.data_len; i++)
			*sum = *sum * 31 + ((const uint8_t *)ev.data)[i];
	}
	tu_assert_rc(st, rc, EVS_END);
	evs_iter_free(it);
	return n;
}

START_TEST(test_index_reads_equal_the_log)
{
	uint64_t rng = kit_seed("store-pgread index"), *want = malloc(N * sizeof *want),
		 *got = malloc(N * sizeof *got);
	char dir[4096];

	ck_assert(want && got);
	tu_path(dir, sizeof dir, "index");
	build(dir, &rng);
	evs_store *st = tu_open(dir, NULL);
	for (int round = 0; round < 60; round++) {
		const char *types[] = {type_names[kit_rand_range(&rng, 0, TYPES - 1)]};
		evs_filter by_type = {.types = types, .ntypes = 1};
		const char *all[] = {""};
		evs_filter scan = {.stream_prefixes = all, .nprefixes = 1};
		int dir_ = kit_rand_range(&rng, 0, 1) ? EVS_FORWARD : EVS_BACKWARD;
		uint64_t from = kit_rand_range(&rng, 0, 2) == 0
					? (dir_ == EVS_FORWARD ? 0 : EVS_ANY)
					: kit_rand_range(&rng, 1, N);
		size_t limit =
			kit_rand_range(&rng, 0, 2) == 0 ? (size_t)kit_rand_range(&rng, 1, 40) : 0;
		evs_iter *it;
		evs_event ev;
		uint64_t wsum = 0, gsum;
		size_t nw = 0, ng;
		int rc;

		/* the log's filter: a scan (a stream prefix is not indexed) */
		tu_ok(st, evs_read_all(st, from, dir_, &scan, 0, &it));
		while ((rc = evs_iter_next(it, &ev)) == EVS_OK && (!limit || nw < limit)) {
			if (strlen(types[0]) != ev.type.len ||
			    memcmp(ev.type.ptr, types[0], ev.type.len) != 0)
				continue;
			want[nw++] = ev.position;
			for (size_t i = 0; i < ev.data_len; i++)
				wsum = wsum * 31 + ((const uint8_t *)ev.data)[i];
		}
		ck_assert(rc == EVS_OK || rc == EVS_END);
		evs_iter_free(it);
		tu_ok(st, evs_read_all(st, from, dir_, &by_type, limit, &it));
		ng = drain(st, it, got, &gsum);
		ck_assert_msg(ng == nw && memcmp(got, want, nw * sizeof *want) == 0 && gsum == wsum,
			      "round %d: type %s from %llu %s limit %zu: %zu events by the index, "
			      "%zu by the scan",
			      round, types[0], (unsigned long long)from,
			      dir_ == EVS_FORWARD ? "forward" : "backward", limit, ng, nw);
	}
	/* stream reads: the stream's events in the log, by version */
	for (int round = 0; round < 60; round++) {
		char stream[32];
		int dir_ = kit_rand_range(&rng, 0, 1) ? EVS_FORWARD : EVS_BACKWARD;
		uint64_t from = kit_rand_range(&rng, 0, 2) == 0
					? (dir_ == EVS_FORWARD ? 0 : EVS_ANY)
					: kit_rand_range(&rng, 1, 600);
		size_t limit =
			kit_rand_range(&rng, 0, 2) == 0 ? (size_t)kit_rand_range(&rng, 1, 40) : 0;
		evs_iter *it;
		evs_event ev;
		uint64_t gsum, first = dir_ == EVS_FORWARD ? (from ? from : 1) : from;
		size_t nw = 0, ng, all = 0;
		int rc;

		snprintf(stream, sizeof stream, "acct-%02d", (int)kit_rand_range(&rng, 0, 39));
		tu_ok(st, evs_read_all(st, 0, EVS_FORWARD, NULL, 0, &it));
		while ((rc = evs_iter_next(it, &ev)) == EVS_OK)
			if (tu_str_eq(ev.stream, stream))
				want[all++] = ev.position;
		tu_assert_rc(st, rc, EVS_END);
		evs_iter_free(it);
		/* versions are 1..all in position order: pick the expected run */
		for (size_t i = 0; i < all; i++) {
			size_t j = dir_ == EVS_FORWARD ? i : all - 1 - i;
			if ((dir_ == EVS_FORWARD ? j + 1 < first : j + 1 > first) ||
			    (limit && nw == limit))
				continue;
			got[nw++] = want[j];
		}
		memcpy(want, got, nw * sizeof *want);
		tu_ok(st, evs_read_stream(st, stream, from, dir_, limit, &it));
		ng = drain(st, it, got, &gsum);
		ck_assert_msg(ng == nw && memcmp(got, want, nw * sizeof *want) == 0,
			      "stream round %d: %s from %llu %s limit %zu: %zu events read, %zu in "
			      "the log",
			      round, stream, (unsigned long long)from,
			      dir_ == EVS_FORWARD ? "forward" : "backward", limit, ng, nw);
	}
	evs_close(st);
	free(want);
	free(got);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_pages_equal_mdb_get,
		test_index_reads_equal_the_log,
		NULL,
	};

	return kit_main("store-pgread", 600, tests);
}
