/*
 * test_replay.c - randomized: loading with snapshots equals pure replay.
 *
 * Each history is a random mix, on a few streams, of executes (ledger
 * aggregate, snapshot every 1..12 events), foreign events appended
 * directly, merge-patch events, snapshots taken by three definitions
 * (the ledger at format 1, the same name at format 2, the generic
 * merge-patch one, all sharing keys), prunes and clears. At random points
 * and at the end every stream is loaded, latest and as of random positions
 * and times, with snapshots and by pure replay, and the generic state is
 * compared with an independent fold (evs_merge_patch over the events the
 * as-of bound admits, read without the as-of index). Finally every
 * snapshot is deleted and every answer must stay the same.
 *
 * History i uses seed base + i; a failure names it and how to replay just
 * that history: EVS_TEST_SEED=<seed> EVS_TEST_ITERS=1.
 * EVS_TEST_ITERS (default 200) sets the number of histories.
 */
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "kit_store.h"

#define NLEDGER  3
#define NGENERIC 2

/* tu_ok with the history's seed in the message */
#define h_ok(h, call)                                                             \
	do {                                                                      \
		int h_rc_ = (call);                                               \
		ck_assert_msg(h_rc_ == EVS_OK, "%s: %s: %s: %s", (h)->ctx, #call, \
			      evs_code_name(h_rc_), evs_errmsg((h)->st));         \
	} while (0)

static const char *const lnames[NLEDGER] = {"L0", "L1", "L2"};
static const char *const gnames[NGENERIC] = {"G0", "G1"};

typedef struct hist {
	uint64_t seed;
	uint64_t r;
	evs_store *st;
	evs_aggregate *snap, *v2, *pure;
	uint64_t next_cmd;
	uint64_t loads, from_snapshot, asof_from_snapshot;
	char ctx[160];
} hist;

/* ---- random merge patches ----------------------------------------------- */

static void rand_value(hist *h, msgpack_packer *pk, int depth);

static void rand_map(hist *h, msgpack_packer *pk, int depth)
{
	static const char *const keys[] = {"a", "b", "c", "d", "e"};
	uint64_t n = kit_rand_range(&h->r, 0, 4);

	msgpack_pack_map(pk, n);
	for (uint64_t i = 0; i < n; i++) {
		const char *k = keys[kit_rand_range(&h->r, 0, 4)];
		msgpack_pack_str(pk, 1);
		msgpack_pack_str_body(pk, k, 1);
		rand_value(h, pk, depth + 1);
	}
}

static void rand_value(hist *h, msgpack_packer *pk, int depth)
{
	uint64_t kind = kit_rand_range(&h->r, 0, 9);

	if (kind < 2) {
		msgpack_pack_nil(pk);
	} else if (kind < 4) {
		msgpack_pack_int64(pk, (int64_t)kit_rand_range(&h->r, 0, 2000) - 1000);
	} else if (kind < 5) {
		char s[8];
		int n = (int)kit_rand_range(&h->r, 0, 6);
		for (int i = 0; i < n; i++)
			s[i] = (char)('p' + kit_rand_range(&h->r, 0, 9));
		msgpack_pack_str(pk, (size_t)n);
		msgpack_pack_str_body(pk, s, (size_t)n);
	} else if (kind < 6) {
		msgpack_pack_array(pk, 2);
		msgpack_pack_true(pk);
		msgpack_pack_int64(pk, (int64_t)kit_rand_range(&h->r, 0, 9));
	} else if (depth < 3) {
		rand_map(h, pk, depth);
	} else {
		msgpack_pack_false(pk);
	}
}

static void append_patch(hist *h, const char *stream)
{
	tu_mp m;
	evs_event_in ev;

	tu_mp_init(&m);
	rand_map(h, &m.pk, 0);
	tu_event(&ev, "Patched", &m, NULL);
	h_ok(h, evs_append(h->st, stream, EVS_ANY, &ev, 1, NULL));
	tu_mp_destroy(&m);
}

/* ---- reference folds ---------------------------------------------------- */

/* Does an event fall within `at` (NULL = latest)? By its own fields, not
 * the as-of index. */
static bool admitted(const evs_at *at, const evs_event *ev)
{
	if (at == NULL)
		return true;
	if (at->kind == EVS_AT_POSITION)
		return ev->position <= at->position;
	return ev->recorded_at <= at->time;
}

/* The generic state by folding evs_merge_patch over the stream. */
static void reference_state(hist *h, const char *stream, const evs_at *at, evs_state *out)
{
	evs_iter *it;
	evs_event ev;
	evs_state cur = {0};
	uint64_t version = 0, position = 0;
	int rc;

	cur.data = malloc(1);
	ck_assert_ptr_nonnull(cur.data);
	((uint8_t *)cur.data)[0] = 0x80; /* {} */
	cur.len = 1;
	h_ok(h, evs_read_stream(h->st, stream, 1, EVS_FORWARD, 0, &it));
	while ((rc = evs_iter_next(it, &ev)) == EVS_OK && admitted(at, &ev)) {
		evs_state next;
		h_ok(h, evs_merge_patch(cur.data, cur.len, ev.data, ev.data_len, &next));
		evs_state_free(&cur);
		cur = next;
		version = ev.version;
		position = ev.position;
	}
	ck_assert(rc == EVS_OK || rc == EVS_END);
	evs_iter_free(it);
	*out = cur;
	out->version = version;
	out->position = position;
}

/* ---- checks ------------------------------------------------------------- */

/* A random as-of bound near the stream's events, or NULL. */
static bool pick_at(hist *h, const char *stream, evs_at *at)
{
	evs_store_info info;
	h_ok(h, evs_head(h->st, &info));
	uint64_t k = kit_rand_range(&h->r, 0, 2);

	if (k == 0)
		return false;
	if (k == 1) {
		at->kind = EVS_AT_POSITION;
		at->position = kit_rand_range(&h->r, 0, info.last_position + 1);
		return true;
	}
	/* a time equal to, just before or just after an event's */
	evs_stream_info sh;
	int rc = evs_stream_head(h->st, stream, &sh);
	at->kind = EVS_AT_TIME;
	if (rc == EVS_NOT_FOUND) {
		at->time = kit_now_ns();
		return true;
	}
	h_ok(h, rc);
	evs_iter *it;
	evs_event ev;
	h_ok(h, evs_read_stream(h->st, stream, kit_rand_range(&h->r, 1, sh.version), EVS_FORWARD, 1,
				&it));
	h_ok(h, evs_iter_next(it, &ev));
	at->time = ev.recorded_at + (int64_t)kit_rand_range(&h->r, 0, 2) - 1;
	evs_iter_free(it);
	return true;
}

static void check_ledger(hist *h, const char *stream, const evs_at *at, ledger *keep)
{
	ledger a, b;
	evs_loaded la, lb;
	char x[128], y[128];

	h_ok(h, evs_aggregate_load(h->snap, stream, at, &a, &la));
	h_ok(h, evs_aggregate_load(h->pure, stream, at, &b, &lb));
	ck_assert_msg(ledger_equal(&a, &b),
		      "%s: stream %s as of %d/%lld/%llu: with snapshots %s, "
		      "replay %s",
		      h->ctx, stream, at ? at->kind : 0, at ? (long long)at->time : 0LL,
		      at ? (unsigned long long)at->position : 0ULL, ledger_str(&a, x, sizeof x),
		      ledger_str(&b, y, sizeof y));
	ck_assert_msg(la.version == lb.version && la.position == lb.position,
		      "%s: stream %s: version/position %llu/%llu vs %llu/%llu", h->ctx, stream,
		      (unsigned long long)la.version, (unsigned long long)la.position,
		      (unsigned long long)lb.version, (unsigned long long)lb.position);
	ck_assert_uint_le(la.snapshot_version, la.version);
	ck_assert_uint_eq(la.snapshot_version + la.replayed, la.version);
	ck_assert_uint_eq(lb.replayed, lb.version);
	h->loads++;
	if (la.snapshot_version) {
		h->from_snapshot++;
		if (at)
			h->asof_from_snapshot++;
	}
	evs_aggregate_release(h->pure, &b);
	if (keep)
		*keep = a;
	else
		evs_aggregate_release(h->snap, &a);
}

static void check_generic(hist *h, const char *stream, const evs_at *at, evs_state *keep)
{
	evs_state got, want;

	h_ok(h, evs_state_load(h->st, stream, at, &got));
	reference_state(h, stream, at, &want);
	ck_assert_msg(got.len == want.len && memcmp(got.data, want.data, got.len) == 0 &&
			      got.version == want.version && got.position == want.position,
		      "%s: generic state of %s as of %d differs (version %llu vs %llu, %zu vs "
		      "%zu bytes)",
		      h->ctx, stream, at ? at->kind : 0, (unsigned long long)got.version,
		      (unsigned long long)want.version, got.len, want.len);
	evs_state_free(&want);
	if (keep)
		*keep = got;
	else
		evs_state_free(&got);
}

static void check_random(hist *h)
{
	evs_at at;
	uint64_t k = kit_rand_range(&h->r, 0, NLEDGER + NGENERIC - 1);
	const char *stream = k < NLEDGER ? lnames[k] : gnames[k - NLEDGER];
	bool has_at = pick_at(h, stream, &at);

	if (k < NLEDGER)
		check_ledger(h, stream, has_at ? &at : NULL, NULL);
	else
		check_generic(h, stream, has_at ? &at : NULL, NULL);
}

/* ---- one history -------------------------------------------------------- */

static evs_aggregate *agg(evs_store *st, uint64_t every, uint32_t fmt)
{
	evs_aggregate_def def;
	evs_aggregate *a;

	ledger_def(&def, every, fmt);
	tu_ok(st, evs_aggregate_new(st, &def, &a));
	return a;
}

static void execute_random(hist *h)
{
	const char *stream = lnames[kit_rand_range(&h->r, 0, NLEDGER - 1)];
	ledger_cmd c = {.id = ++h->next_cmd};
	evs_execute_result res;

	c.delta = (int64_t)kit_rand_range(&h->r, 0, 18) - 8;
	c.notes = kit_rand_range(&h->r, 0, 9) < 2 ? (unsigned)kit_rand_range(&h->r, 1, 3) : 0;
	int rc = evs_execute(h->snap, stream, &c, &res);
	ck_assert_msg(rc == EVS_OK || rc == EVS_REJECTED, "%s: execute: %s: %s", h->ctx,
		      evs_code_name(rc), evs_errmsg(h->st));
}

/* Across all histories: loads did start from snapshots, latest and as of. */
static uint64_t total_loads, total_from_snapshot, total_asof_from_snapshot;

static void one_history(uint64_t seed, int iter)
{
	hist h;
	char dir[PATH_MAX];
	evs_options o;
	uint64_t every, ops;

	memset(&h, 0, sizeof h);
	h.seed = seed;
	h.r = seed;
	snprintf(h.ctx, sizeof h.ctx,
		 "history %d, seed %llu (replay: EVS_TEST_SEED=%llu "
		 "EVS_TEST_ITERS=1)",
		 iter, (unsigned long long)seed, (unsigned long long)seed);
	char leaf[32];
	snprintf(leaf, sizeof leaf, "h%d", iter);
	tu_path(dir, sizeof dir, leaf);
	tu_options(&o, EVS_SYNC_NONE);
	h.st = tu_open(dir, &o);
	every = kit_rand_range(&h.r, 1, 12);
	h.snap = agg(h.st, every, 1);
	h.v2 = agg(h.st, every, 2);
	h.pure = agg(h.st, 0, 0);
	ops = kit_rand_range(&h.r, 60, 220);

	for (uint64_t i = 0; i < ops; i++) {
		uint64_t op = kit_rand_range(&h.r, 0, 99);
		const char *ls = lnames[kit_rand_range(&h.r, 0, NLEDGER - 1)];
		const char *gs = gnames[kit_rand_range(&h.r, 0, NGENERIC - 1)];
		uint64_t keep = kit_rand_range(&h.r, 0, 3);
		bool all = kit_rand_range(&h.r, 0, 3) == 0;

		if (op < 50)
			execute_random(&h);
		else if (op < 56)
			h_ok(&h, tu_append_simple(h.st, ls, EVS_ANY, "Foreign",
						  (size_t)kit_rand_range(&h.r, 1, 3), 0, 0, NULL));
		else if (op < 66)
			append_patch(&h, gs);
		else if (op < 69)
			h_ok(&h, evs_state_snapshot(h.st, gs));
		else if (op < 72)
			h_ok(&h, evs_snapshot_take(h.snap, ls, NULL));
		else if (op < 74)
			h_ok(&h, evs_snapshot_take(h.v2, ls, NULL));
		else if (op < 76)
			h_ok(&h, evs_state_snapshot(h.st, ls));
		else if (op < 78)
			h_ok(&h, evs_snapshot_prune(keep & 1 ? h.v2 : h.snap, all ? NULL : ls, keep,
						    NULL));
		else if (op < 79)
			h_ok(&h, evs_snapshot_clear(h.st, all ? NULL : ls, NULL));
		else
			check_random(&h);
	}

	/* every stream, latest and as of a few moments; then again without
	 * any snapshot */
	ledger before[NLEDGER];
	evs_state gbefore[NGENERIC];
	for (int s = 0; s < NLEDGER; s++) {
		check_ledger(&h, lnames[s], NULL, &before[s]);
		for (int k = 0; k < 3; k++) {
			evs_at at;
			if (pick_at(&h, lnames[s], &at))
				check_ledger(&h, lnames[s], &at, NULL);
		}
	}
	for (int s = 0; s < NGENERIC; s++) {
		check_generic(&h, gnames[s], NULL, &gbefore[s]);
		for (int k = 0; k < 3; k++) {
			evs_at at;
			if (pick_at(&h, gnames[s], &at))
				check_generic(&h, gnames[s], &at, NULL);
		}
	}
	h_ok(&h, evs_snapshot_clear(h.st, NULL, NULL));
	for (int s = 0; s < NLEDGER; s++) {
		ledger after;
		evs_loaded li;
		h_ok(&h, evs_aggregate_load(h.snap, lnames[s], NULL, &after, &li));
		ck_assert_uint_eq(li.snapshot_version, 0);
		ck_assert_msg(ledger_equal(&after, &before[s]),
			      "%s: %s changed when the snapshots "
			      "were deleted",
			      h.ctx, lnames[s]);
		evs_aggregate_release(h.snap, &after);
		evs_aggregate_release(h.snap, &before[s]);
	}
	for (int s = 0; s < NGENERIC; s++) {
		evs_state after;
		h_ok(&h, evs_state_load(h.st, gnames[s], NULL, &after));
		ck_assert_msg(after.len == gbefore[s].len &&
				      memcmp(after.data, gbefore[s].data, after.len) == 0 &&
				      after.version == gbefore[s].version,
			      "%s: %s changed when the snapshots were deleted", h.ctx, gnames[s]);
		evs_state_free(&after);
		evs_state_free(&gbefore[s]);
	}

	evs_aggregate_free(h.snap);
	evs_aggregate_free(h.v2);
	evs_aggregate_free(h.pure);
	evs_close(h.st);
	kit_rmrf(dir);
	total_loads += h.loads;
	total_from_snapshot += h.from_snapshot;
	total_asof_from_snapshot += h.asof_from_snapshot;
}

START_TEST(test_replay_equals_snapshot_then_replay)
{
	uint64_t r;
	uint64_t base = r = kit_seed("replay vs snapshot");
	const char *env = getenv("EVS_TEST_ITERS");
	int iters = env && *env ? atoi(env) : 200;

	for (int i = 0; i < iters; i++)
		one_history(base + (uint64_t)i, i);
	fprintf(stderr,
		"%d histories: %llu ledger loads, %llu from a snapshot (%llu of them "
		"as of)\n",
		iters, (unsigned long long)total_loads, (unsigned long long)total_from_snapshot,
		(unsigned long long)total_asof_from_snapshot);
	if (iters >= 10) {
		ck_assert_uint_gt(total_from_snapshot, 0);
		ck_assert_uint_gt(total_asof_from_snapshot, 0);
	}
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_replay_equals_snapshot_then_replay,
		NULL,
	};

	return kit_main("aggregate-replay", 600, tests);
}
