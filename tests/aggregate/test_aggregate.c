/*
 * test_aggregate.c - evs_execute and snapshots, case by case: results,
 * rejections, bounded retries, idempotent re-execution, definitions,
 * snapshot selection (format version, other definitions, damaged or stale
 * snapshots), prune and clear, read-only stores.
 */
#include <string.h>

#include "ledger.h"
#include "kit_store.h"
#include "tu_lmdb.h"

static evs_store *open_store(int sync)
{
	evs_options o;

	tu_options(&o, sync);
	return tu_open(kit_dir, &o);
}

static evs_aggregate *new_agg(evs_store *st, uint64_t every, uint32_t fmt)
{
	evs_aggregate_def def;
	evs_aggregate *a = NULL;

	ledger_def(&def, every, fmt);
	tu_ok(st, evs_aggregate_new(st, &def, &a));
	return a;
}

static int exec_add(evs_aggregate *a, const char *stream, uint64_t id, int64_t delta,
		    evs_execute_result *r)
{
	ledger_cmd c = {.id = id, .delta = delta};
	return evs_execute(a, stream, &c, r);
}

static void load(evs_store *st, evs_aggregate *a, const char *stream, const evs_at *at, ledger *out,
		 evs_loaded *info)
{
	tu_ok(st, evs_aggregate_load(a, stream, at, out, info));
}

/* The state by replay only (a definition without snapshot functions). */
static void load_pure(evs_store *st, const char *stream, ledger *out)
{
	evs_aggregate *p = new_agg(st, 0, 0);
	evs_loaded li;
	load(st, p, stream, NULL, out, &li);
	ck_assert_uint_eq(li.snapshot_version, 0);
	evs_aggregate_free(p);
}

static void assert_same(const ledger *got, const ledger *want, const char *what)
{
	char a[128], b[128];
	ck_assert_msg(ledger_equal(got, want), "%s: got %s, want %s", what,
		      ledger_str(got, a, sizeof a), ledger_str(want, b, sizeof b));
}

/* ---- definitions -------------------------------------------------------- */

START_TEST(test_definition_checks)
{
	evs_store *st = open_store(EVS_SYNC_NONE);
	evs_aggregate_def def;
	evs_aggregate *a = (evs_aggregate *)1;

	ledger_def(&def, 0, 1);
	def.name = "";
	tu_assert_rc(st, evs_aggregate_new(st, &def, &a), EVS_INVALID);
	ck_assert_ptr_null(a);
	ledger_def(&def, 0, 1);
	def.state_size = 0;
	tu_assert_rc(st, evs_aggregate_new(st, &def, &a), EVS_INVALID);
	ck_assert(strstr(evs_errmsg(st), "state_size") != NULL);
	ledger_def(&def, 0, 1);
	def.apply = NULL;
	tu_assert_rc(st, evs_aggregate_new(st, &def, &a), EVS_INVALID);
	ledger_def(&def, 0, 1);
	def.snapshot_decode = NULL;
	tu_assert_rc(st, evs_aggregate_new(st, &def, &a), EVS_INVALID);
	ledger_def(&def, 0, 1);
	def.snapshot_version = 0;
	tu_assert_rc(st, evs_aggregate_new(st, &def, &a), EVS_INVALID);
	ledger_def(&def, 10, 0);
	def.snapshot_encode = NULL;
	def.snapshot_decode = NULL;
	tu_assert_rc(st, evs_aggregate_new(st, &def, &a), EVS_INVALID);
	tu_assert_rc(st, evs_aggregate_new(st, NULL, &a), EVS_INVALID);

	/* the name is copied */
	char name[] = "copied.name";
	ledger_def(&def, 0, 0);
	def.name = name;
	tu_ok(st, evs_aggregate_new(st, &def, &a));
	memset(name, 'x', sizeof name - 1);
	ledger l;
	tu_ok(st, evs_aggregate_load(a, "s", NULL, &l, NULL));
	evs_aggregate_release(a, &l);

	/* load-only: no decide */
	evs_aggregate_free(a);
	ledger_def(&def, 0, 0);
	def.decide = NULL;
	tu_ok(st, evs_aggregate_new(st, &def, &a));
	tu_assert_rc(st, exec_add(a, "s", 1, 1, NULL), EVS_INVALID);
	tu_assert_rc(st, evs_snapshot_take(a, "s", NULL), EVS_INVALID);
	evs_aggregate_free(a);
	evs_aggregate_free(NULL);
	evs_aggregate_release(NULL, NULL);
	evs_close(st);
}
END_TEST

/* ---- execute ------------------------------------------------------------ */

START_TEST(test_execute_results)
{
	evs_store *st = open_store(EVS_SYNC_FULL);
	evs_aggregate *a = new_agg(st, 0, 0);
	evs_execute_result r;
	evs_stream_info h;

	/* a fresh stream loads as the initial state */
	ledger l;
	evs_loaded li;
	load(st, a, "acct", NULL, &l, &li);
	ck_assert_int_eq(l.balance, 0);
	ck_assert_uint_eq(li.version, 0);
	ck_assert_uint_eq(li.position, 0);
	evs_aggregate_release(a, &l);

	tu_ok(st, exec_add(a, "acct", 1, 50, &r));
	ck_assert_uint_eq(r.version, 1);
	ck_assert_uint_eq(r.first_position, 1);
	ck_assert_uint_eq(r.last_position, 1);
	ck_assert_uint_eq(r.events, 1);
	ck_assert_uint_eq(r.attempts, 1);
	ck_assert_int_eq(r.idempotent, 0);

	/* a decision of several events is one atomic append */
	ledger_cmd c = {.id = 2, .delta = -20, .notes = 2};
	tu_ok(st, evs_execute(a, "acct", &c, &r));
	ck_assert_uint_eq(r.version, 4);
	ck_assert_uint_eq(r.first_position, 2);
	ck_assert_uint_eq(r.last_position, 4);
	ck_assert_uint_eq(r.events, 3);

	/* rejection: the message is decide's, nothing is written */
	tu_assert_rc(st, exec_add(a, "acct", 3, -31, &r), EVS_REJECTED);
	ck_assert_str_eq(evs_errmsg(st), "insufficient balance 30 for -31");
	ck_assert_uint_eq(r.version, 4);
	ck_assert_uint_eq(r.events, 0);
	ck_assert_uint_eq(r.first_position, 0);
	tu_ok(st, evs_stream_head(st, "acct", &h));
	ck_assert_uint_eq(h.version, 4);
	ck_assert_str_eq(evs_strerror(EVS_REJECTED), "command rejected");
	ck_assert_str_eq(evs_code_name(EVS_REJECTED), "REJECTED");

	/* nothing to do: OK, no events */
	c = (ledger_cmd){.id = 4};
	tu_ok(st, evs_execute(a, "acct", &c, &r));
	ck_assert_uint_eq(r.events, 0);
	ck_assert_uint_eq(r.version, 4);

	/* decide's own failure code comes back, nothing written */
	c = (ledger_cmd){.id = 5, .delta = 1, .fail = EVS_NOMEM};
	tu_assert_rc(st, evs_execute(a, "acct", &c, &r), EVS_NOMEM);
	ck_assert(strstr(evs_errmsg(st), "decide failed") != NULL);

	/* an emitted event larger than the store allows */
	c = (ledger_cmd){.id = 6, .delta = 1, .big = EVS_DEFAULT_MAX_EVENT + 1};
	tu_assert_rc(st, evs_execute(a, "acct", &c, &r), EVS_EVENT_TOO_LARGE);
	ck_assert(strstr(evs_errmsg(st), "decided event 0") != NULL);

	/* bad stream ids */
	tu_assert_rc(st, exec_add(a, "", 7, 1, &r), EVS_BAD_STREAM);
	tu_assert_rc(st, exec_add(a, NULL, 7, 1, &r), EVS_BAD_STREAM);
	tu_ok(st, evs_stream_head(st, "acct", &h));
	ck_assert_uint_eq(h.version, 4);

	load(st, a, "acct", NULL, &l, &li);
	ck_assert_int_eq(l.balance, 30);
	ck_assert_uint_eq(l.count, 4);
	ck_assert_uint_eq(li.version, 4);
	ck_assert_uint_eq(li.position, 4);
	evs_aggregate_release(a, &l);
	evs_aggregate_free(a);
	evs_close(st);
}
END_TEST

/* A competing writer inside decide: appends one event per call while
 * `left` > 0, so the command's append conflicts. */
typedef struct rival {
	evs_store *st;
	const char *stream;
	int left;
	unsigned calls;
	int64_t seen_balance[64];
} rival;

static int rival_hook(void *ctx, const ledger *seen)
{
	rival *r = ctx;
	if (r->calls < 64)
		r->seen_balance[r->calls] = seen->balance;
	r->calls++;
	if (r->left-- > 0) {
		tu_mp m;
		evs_event_in ev;
		tu_mp_init(&m);
		tu_mp_map_ints(&m, 2, "c", 1000LL + r->calls, "d", 100LL);
		tu_event(&ev, "Added", &m, NULL);
		int rc = evs_append(r->st, r->stream, EVS_ANY, &ev, 1, NULL);
		tu_mp_destroy(&m);
		return rc;
	}
	return 0;
}

START_TEST(test_execute_retries)
{
	evs_store *st = open_store(EVS_SYNC_NONE);
	evs_aggregate_def def;
	evs_aggregate *a;
	evs_execute_result r;

	ledger_def(&def, 0, 0);
	def.max_attempts = 5;
	tu_ok(st, evs_aggregate_new(st, &def, &a));

	/* two conflicts, then it goes through on the third round, deciding on
	 * a state that includes the rivals' events */
	rival rv = {.st = st, .stream = "s", .left = 2};
	ledger_cmd c = {.id = 1, .delta = 1, .hook = rival_hook, .hook_ctx = &rv};
	tu_ok(st, evs_execute(a, "s", &c, &r));
	ck_assert_uint_eq(r.attempts, 3);
	ck_assert_uint_eq(r.version, 3);
	ck_assert_uint_eq(rv.calls, 3);
	ck_assert_int_eq(rv.seen_balance[0], 0);
	ck_assert_int_eq(rv.seen_balance[1], 100);
	ck_assert_int_eq(rv.seen_balance[2], 200);

	/* a conflict on every round: gives up after max_attempts, writes
	 * nothing of its own */
	rival forever = {.st = st, .stream = "s", .left = 1000};
	c = (ledger_cmd){.id = 2, .delta = 1, .hook = rival_hook, .hook_ctx = &forever};
	tu_assert_rc(st, evs_execute(a, "s", &c, &r), EVS_WRONG_VERSION);
	ck_assert_uint_eq(r.attempts, 5);
	ck_assert_uint_eq(forever.calls, 5);
	ck_assert_uint_eq(r.version, 8);
	ck_assert(strstr(evs_errmsg(st), "after 5 attempts") != NULL);
	ledger l;
	load(st, a, "s", NULL, &l, NULL);
	for (size_t i = 0; i < l.ncmds; i++)
		ck_assert_uint_ne(l.cmds[i], 2);
	ck_assert_int_eq(l.balance, 200 + 1 + 500);
	evs_aggregate_release(a, &l);
	evs_aggregate_free(a);
	evs_close(st);
}
END_TEST

START_TEST(test_execute_idempotent)
{
	evs_store *st = open_store(EVS_SYNC_NONE);
	evs_aggregate *a = new_agg(st, 0, 0);
	evs_execute_result r1, r2;

	ledger_cmd c = {.id = 9, .delta = 5, .notes = 1, .fixed_ids = true};
	tu_ok(st, evs_execute(a, "s", &c, &r1));
	ck_assert_int_eq(r1.idempotent, 0);
	/* the same command again: the same event ids, answered as a retry */
	tu_ok(st, evs_execute(a, "s", &c, &r2));
	ck_assert_int_eq(r2.idempotent, 1);
	ck_assert_uint_eq(r2.first_position, r1.first_position);
	ck_assert_uint_eq(r2.last_position, r1.last_position);
	ck_assert_uint_eq(r2.version, r1.version);
	evs_stream_info h;
	tu_ok(st, evs_stream_head(st, "s", &h));
	ck_assert_uint_eq(h.version, 2);
	evs_aggregate_free(a);
	evs_close(st);
}
END_TEST

/* ---- snapshots ---------------------------------------------------------- */

static void run_adds(evs_aggregate *a, evs_store *st, const char *stream, uint64_t first,
		     uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		tu_ok(st, exec_add(a, stream, first + i, 1, NULL));
}

START_TEST(test_snapshot_every)
{
	evs_store *st = open_store(EVS_SYNC_NONE);
	evs_aggregate *a = new_agg(st, 10, 1);
	ledger l, p;
	evs_loaded li;
	evs_execute_result r;

	run_adds(a, st, "s", 1, 25);
	load(st, a, "s", NULL, &l, &li);
	ck_assert_uint_eq(li.snapshot_version, 20);
	ck_assert_uint_eq(li.replayed, 5);
	ck_assert_uint_eq(li.version, 25);
	ck_assert_uint_eq(li.position, 25);
	load_pure(st, "s", &p);
	assert_same(&l, &p, "snapshot + replay vs replay");
	evs_aggregate_release(a, &l);
	ledger_free(&p);

	/* a decision crossing a multiple snapshots at its last version */
	ledger_cmd c = {.id = 100, .delta = 1, .notes = 6};
	tu_ok(st, evs_execute(a, "s", &c, &r));
	ck_assert_uint_eq(r.version, 32);
	load(st, a, "s", NULL, &l, &li);
	ck_assert_uint_eq(li.snapshot_version, 32);
	ck_assert_uint_eq(li.replayed, 0);
	evs_aggregate_release(a, &l);

	/* take: a snapshot now, at the head */
	run_adds(a, st, "s", 200, 3);
	evs_loaded ti;
	tu_ok(st, evs_snapshot_take(a, "s", &ti));
	ck_assert_uint_eq(ti.version, 35);
	ck_assert_uint_eq(ti.snapshot_version, 32);
	load(st, a, "s", NULL, &l, &li);
	ck_assert_uint_eq(li.snapshot_version, 35);
	load_pure(st, "s", &p);
	assert_same(&l, &p, "after take");
	evs_aggregate_release(a, &l);
	ledger_free(&p);

	/* events appended outside execute are folded after the snapshot */
	tu_ok(st, tu_append_simple(st, "s", EVS_ANY, "Foreign", 4, 0, 0, NULL));
	load(st, a, "s", NULL, &l, &li);
	ck_assert_uint_eq(li.snapshot_version, 35);
	ck_assert_uint_eq(li.replayed, 4);
	load_pure(st, "s", &p);
	assert_same(&l, &p, "foreign events after the snapshot");
	evs_aggregate_release(a, &l);
	ledger_free(&p);
	evs_aggregate_free(a);
	evs_close(st);
}
END_TEST

START_TEST(test_snapshot_format_version)
{
	evs_store *st = open_store(EVS_SYNC_NONE);
	evs_aggregate *v1 = new_agg(st, 10, 1), *v2 = new_agg(st, 10, 2);
	ledger l, p;
	evs_loaded li;
	uint64_t removed = 99;

	run_adds(v1, st, "s", 1, 25); /* v1 snapshots at 10 and 20 */
	load(st, v2, "s", NULL, &l, &li);
	ck_assert_uint_eq(li.snapshot_version, 0); /* v1's are not v2's */
	ck_assert_uint_eq(li.replayed, 25);
	load_pure(st, "s", &p);
	assert_same(&l, &p, "format 2 ignoring format 1 snapshots");
	evs_aggregate_release(v2, &l);

	/* v2 prunes what it cannot use */
	tu_ok(st, evs_snapshot_prune(v2, "s", 5, &removed));
	ck_assert_uint_eq(removed, 2);
	load(st, v1, "s", NULL, &l, &li);
	ck_assert_uint_eq(li.snapshot_version, 0);
	assert_same(&l, &p, "after prune");
	evs_aggregate_release(v1, &l);

	/* v2 takes its own; v1 ignores it */
	tu_ok(st, evs_snapshot_take(v2, "s", NULL));
	load(st, v2, "s", NULL, &l, &li);
	ck_assert_uint_eq(li.snapshot_version, 25);
	evs_aggregate_release(v2, &l);
	load(st, v1, "s", NULL, &l, &li);
	ck_assert_uint_eq(li.snapshot_version, 0);
	assert_same(&l, &p, "format 1 ignoring a format 2 snapshot");
	evs_aggregate_release(v1, &l);
	ledger_free(&p);
	evs_aggregate_free(v1);
	evs_aggregate_free(v2);
	evs_close(st);
}
END_TEST

START_TEST(test_snapshot_prune_keep_and_clear)
{
	evs_store *st = open_store(EVS_SYNC_NONE);
	evs_aggregate *a = new_agg(st, 1, 1); /* a snapshot per event */
	uint64_t removed;
	ledger l, p;
	evs_loaded li;

	run_adds(a, st, "a", 1, 12);
	run_adds(a, st, "b", 100, 7);
	run_adds(a, st, "c", 200, 3);
	tu_ok(st, evs_state_snapshot(st, "c")); /* another definition's */

	tu_ok(st, evs_snapshot_prune(a, "a", 2, &removed));
	ck_assert_uint_eq(removed, 10);
	load(st, a, "a", NULL, &l, &li);
	ck_assert_uint_eq(li.snapshot_version, 12);
	evs_aggregate_release(a, &l);

	/* every stream, keep 1; "c"'s generic snapshot at 3 replaced the
	 * ledger's at 3 (same key), so "c" keeps the ledger's at 2 */
	tu_ok(st, evs_snapshot_prune(a, NULL, 1, &removed));
	ck_assert_uint_eq(removed, 1 + 6 + 1);
	load(st, a, "c", NULL, &l, &li);
	ck_assert_uint_eq(li.snapshot_version, 2);
	load_pure(st, "c", &p);
	assert_same(&l, &p, "stream c");
	evs_aggregate_release(a, &l);
	ledger_free(&p);

	/* clear one stream, then everything (the generic one included) */
	tu_ok(st, evs_snapshot_clear(st, "a", &removed));
	ck_assert_uint_eq(removed, 1);
	tu_ok(st, evs_snapshot_clear(st, NULL, &removed));
	ck_assert_uint_eq(removed, 3);
	tu_ok(st, evs_snapshot_clear(st, NULL, &removed));
	ck_assert_uint_eq(removed, 0);
	const char *names[] = {"a", "b", "c"};
	for (int i = 0; i < 3; i++) {
		load(st, a, names[i], NULL, &l, &li);
		ck_assert_uint_eq(li.snapshot_version, 0);
		load_pure(st, names[i], &p);
		assert_same(&l, &p, names[i]);
		evs_aggregate_release(a, &l);
		ledger_free(&p);
	}
	tu_assert_rc(st, evs_snapshot_clear(st, "", &removed), EVS_BAD_STREAM);
	evs_aggregate_free(a);
	evs_close(st);
}
END_TEST

/* More snapshots than one delete transaction handles. */
START_TEST(test_snapshot_prune_chunks)
{
	evs_store *st = open_store(EVS_SYNC_NONE);
	evs_aggregate *a = new_agg(st, 1, 1);
	uint64_t removed;
	ledger l, p;
	evs_loaded li;

	/* 4,500 events in one stream and 600 in another, a snapshot each */
	for (uint64_t i = 1; i <= 4500; i++)
		tu_ok(st, exec_add(a, "big", i, 1, NULL));
	for (uint64_t i = 1; i <= 600; i++)
		tu_ok(st, exec_add(a, "small", 10000 + i, 1, NULL));
	tu_ok(st, evs_snapshot_prune(a, NULL, 3, &removed));
	ck_assert_uint_eq(removed, 4497 + 597);
	load(st, a, "big", NULL, &l, &li);
	ck_assert_uint_eq(li.snapshot_version, 4500);
	evs_aggregate_release(a, &l);
	tu_ok(st, evs_snapshot_clear(st, NULL, &removed));
	ck_assert_uint_eq(removed, 6);
	load(st, a, "big", NULL, &l, &li);
	ck_assert_uint_eq(li.snapshot_version, 0);
	load_pure(st, "big", &p);
	assert_same(&l, &p, "big");
	ck_assert_int_eq(l.balance, 4500);
	evs_aggregate_release(a, &l);
	ledger_free(&p);
	evs_aggregate_free(a);
	evs_close(st);
}
END_TEST

/* Snapshot value: format u32 | position u64 | name_len u8 | name | state */
static size_t snap_value(uint8_t *buf, uint32_t fmt, uint64_t pos, const char *name,
			 const void *state, size_t slen)
{
	size_t n = strlen(name);
	tu_put_u64(buf + 4, pos);
	buf[0] = (uint8_t)(fmt >> 24);
	buf[1] = (uint8_t)(fmt >> 16);
	buf[2] = (uint8_t)(fmt >> 8);
	buf[3] = (uint8_t)fmt;
	buf[12] = (uint8_t)n;
	memcpy(buf + 13, name, n);
	memcpy(buf + 13 + n, state, slen);
	return 13 + n + slen;
}

static size_t snap_key(uint8_t *key, const char *stream, uint64_t version)
{
	size_t n = strlen(stream);
	memcpy(key, stream, n);
	key[n] = 0;
	tu_put_u64(key + n + 1, version);
	return n + 9;
}

static int warnings;

static void count_warnings(void *ctx, int level, const char *msg)
{
	(void)ctx;
	(void)msg;
	if (level == EVS_LOG_WARNING)
		warnings++;
}

START_TEST(test_snapshot_damaged_or_stale)
{
	evs_store *st = open_store(EVS_SYNC_NONE);
	evs_aggregate *a = new_agg(st, 10, 1);
	ledger l, p;
	evs_loaded li;
	uint8_t key[64], val[256];

	run_adds(a, st, "s", 1, 27); /* snapshots at 10 and 20 */
	evs_aggregate_free(a);
	evs_close(st);

	/* at 25: the right position but a state the decoder refuses;
	 * at 24: a decodable state with a position that is not version 24's;
	 * at 23: too short to be a snapshot at all;
	 * at 22: another definition's name */
	size_t n;
	n = snap_value(val, 1, 25, "test.ledger", "\xc1garbage", 8);
	tu_mdb_put(kit_dir, "snapshots", key, snap_key(key, "s", 25), val, n);
	n = snap_value(val, 1, 99, "test.ledger", "\x94\x00\x00\x00\x90", 5);
	tu_mdb_put(kit_dir, "snapshots", key, snap_key(key, "s", 24), val, n);
	tu_mdb_put(kit_dir, "snapshots", key, snap_key(key, "s", 23), "\x00\x01", 2);
	n = snap_value(val, 1, 22, "other.def", "\x94\x00\x00\x00\x90", 5);
	tu_mdb_put(kit_dir, "snapshots", key, snap_key(key, "s", 22), val, n);

	evs_options o;
	tu_options(&o, EVS_SYNC_NONE);
	o.log = count_warnings;
	st = tu_open(kit_dir, &o);
	a = new_agg(st, 10, 1);
	warnings = 0;
	load(st, a, "s", NULL, &l, &li);
	ck_assert_uint_eq(li.snapshot_version, 20);
	ck_assert_uint_eq(li.replayed, 7);
	ck_assert_int_eq(warnings, 1); /* the refused decode is logged */
	load_pure(st, "s", &p);
	assert_same(&l, &p, "after skipping damaged snapshots");
	evs_aggregate_release(a, &l);
	ledger_free(&p);

	/* prune removes the unusable ones of this definition only */
	uint64_t removed;
	tu_ok(st, evs_snapshot_prune(a, "s", 10, &removed));
	ck_assert_uint_eq(removed, 2); /* 24: stale position; 23: no snapshot */
	/* (25 decodes badly but matches: prune does not decode; 22 is another
	 * definition's) */
	tu_ok(st, evs_snapshot_clear(st, "s", &removed));
	ck_assert_uint_eq(removed, 4);
	evs_aggregate_free(a);
	evs_close(st);
}
END_TEST

START_TEST(test_read_only)
{
	evs_store *st = open_store(EVS_SYNC_NONE);
	evs_aggregate *a = new_agg(st, 5, 1);
	run_adds(a, st, "s", 1, 12);
	evs_aggregate_free(a);
	evs_close(st);

	evs_options o;
	tu_options(&o, EVS_SYNC_NONE);
	o.read_only = 1;
	o.create = 0;
	st = tu_open(kit_dir, &o);
	a = new_agg(st, 5, 1);
	ledger l;
	evs_loaded li;
	load(st, a, "s", NULL, &l, &li);
	ck_assert_uint_eq(li.snapshot_version, 10);
	ck_assert_int_eq(l.balance, 12);
	evs_aggregate_release(a, &l);
	tu_assert_rc(st, exec_add(a, "s", 99, 1, NULL), EVS_READONLY);
	tu_assert_rc(st, evs_snapshot_take(a, "s", NULL), EVS_READONLY);
	tu_assert_rc(st, evs_snapshot_prune(a, "s", 0, NULL), EVS_READONLY);
	tu_assert_rc(st, evs_snapshot_clear(st, NULL, NULL), EVS_READONLY);
	evs_state s;
	tu_ok(st, evs_state_load(st, "s", NULL, &s));
	ck_assert_uint_eq(s.version, 12);
	evs_state_free(&s);
	evs_aggregate_free(a);
	evs_close(st);
}
END_TEST

START_TEST(test_apply_failure)
{
	evs_store *st = open_store(EVS_SYNC_NONE);
	evs_aggregate *a = new_agg(st, 0, 0);
	ledger l;
	evs_loaded li;

	run_adds(a, st, "s", 1, 3);
	tu_ok(st, tu_append_simple(st, "s", EVS_ANY, "Poison", 1, 0, 0, NULL));
	tu_assert_rc(st, evs_aggregate_load(a, "s", NULL, &l, &li), EVS_CORRUPT);
	ck_assert(strstr(evs_errmsg(st), "version 4") != NULL);
	ck_assert(strstr(evs_errmsg(st), "Poison") != NULL);
	ck_assert_uint_eq(li.version, 0);
	/* as of before the poison it loads */
	evs_at at = {.kind = EVS_AT_POSITION, .position = 3};
	tu_ok(st, evs_aggregate_load(a, "s", &at, &l, &li));
	ck_assert_uint_eq(li.version, 3);
	evs_aggregate_release(a, &l);
	tu_assert_rc(st, exec_add(a, "s", 9, 1, NULL), EVS_CORRUPT);
	at.kind = 7;
	tu_assert_rc(st, evs_aggregate_load(a, "s", &at, &l, &li), EVS_INVALID);
	tu_assert_rc(st, evs_aggregate_load(a, "", NULL, &l, &li), EVS_BAD_STREAM);
	evs_aggregate_free(a);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_definition_checks,
		test_execute_results,
		test_execute_retries,
		test_execute_idempotent,
		test_snapshot_every,
		test_snapshot_format_version,
		test_snapshot_prune_keep_and_clear,
		test_snapshot_prune_chunks,
		test_snapshot_damaged_or_stale,
		test_read_only,
		test_apply_failure,
		NULL,
	};

	return kit_main("aggregate", 600, tests);
}
