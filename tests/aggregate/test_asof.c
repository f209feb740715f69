/*
 * test_asof.c - aggregates as of a time and as of a position: before the
 * first event, between events (of this stream, and at another stream's
 * event), exactly at an event's time or position (a commit of several
 * events counts whole), and after the last. Snapshots exist at later
 * versions than most targets and must not leak into their answers; the
 * domain aggregate (ledger), the generic merge-patch state and the bank
 * example are all checked against an independent fold.
 */
#include <string.h>

#include "bank.h"
#include "ledger.h"
#include "kit_store.h"

#define MAXEV 64

typedef struct evinfo {
	uint64_t version, position;
	int64_t recorded_at;
} evinfo;

typedef struct world {
	evs_store *st;
	evs_aggregate *snap, *pure;
	evinfo ev[MAXEV];
	size_t n;
	int64_t other_times[MAXEV];
	uint64_t other_pos[MAXEV];
	size_t nother;
} world;

static void other_event(world *w)
{
	evs_append_result r;
	evs_iter *it;
	evs_event ev;

	tu_ok(w->st, tu_append_simple(w->st, "other", EVS_ANY, "Noise", 1, 0, 0, &r));
	tu_ok(w->st, evs_read_all(w->st, r.first_position, EVS_FORWARD, NULL, 1, &it));
	tu_ok(w->st, evs_iter_next(it, &ev));
	w->other_times[w->nother] = ev.recorded_at;
	w->other_pos[w->nother++] = ev.position;
	evs_iter_free(it);
}

/* Build: ledger commands on "acct" (one with three events in one commit),
 * another stream's events in between, generic patches on "acct" too
 * (every ledger event's data is a map). */
static void build(world *w)
{
	evs_options o;
	evs_aggregate_def def;

	tu_options(&o, EVS_SYNC_NONE);
	w->st = tu_open(kit_dir, &o);
	ledger_def(&def, 2, 1);
	tu_ok(w->st, evs_aggregate_new(w->st, &def, &w->snap));
	ledger_def(&def, 0, 0);
	tu_ok(w->st, evs_aggregate_new(w->st, &def, &w->pure));

	for (uint64_t i = 1; i <= 12; i++) {
		ledger_cmd c = {.id = i, .delta = (int64_t)(i * 10), .notes = i == 5 ? 2 : 0};
		tu_ok(w->st, evs_execute(w->snap, "acct", &c, NULL));
		if (i % 3 == 0)
			other_event(w);
	}
	tu_ok(w->st, evs_state_snapshot(w->st, "acct")); /* generic, at the head */
	tu_ok(w->st, evs_snapshot_take(w->snap, "acct", NULL));

	evs_iter *it;
	evs_event ev;
	tu_ok(w->st, evs_read_stream(w->st, "acct", 1, EVS_FORWARD, 0, &it));
	while (evs_iter_next(it, &ev) == EVS_OK) {
		ck_assert_uint_lt(w->n, MAXEV);
		w->ev[w->n++] = (evinfo){ev.version, ev.position, ev.recorded_at};
	}
	evs_iter_free(it);
	ck_assert_uint_eq(w->n, 14);
}

/* Expected (version, position) of "acct" as of a time or position, from
 * the events themselves. */
static void expect(const world *w, const evs_at *at, uint64_t *version, uint64_t *position)
{
	*version = *position = 0;
	for (size_t i = 0; i < w->n; i++) {
		bool in = at->kind == EVS_AT_TIME ? w->ev[i].recorded_at <= at->time
						  : w->ev[i].position <= at->position;
		if (in) {
			*version = w->ev[i].version;
			*position = w->ev[i].position;
		}
	}
}

/* Fold "acct" up to version v by hand (ledger and generic). */
static void fold_to(world *w, uint64_t v, ledger *l, evs_state *g)
{
	evs_iter *it;
	evs_event ev;

	memset(l, 0, sizeof *l);
	g->data = malloc(1);
	((uint8_t *)g->data)[0] = 0x80;
	g->len = 1;
	tu_ok(w->st, evs_read_stream(w->st, "acct", 1, EVS_FORWARD, (size_t)v, &it));
	while (v && evs_iter_next(it, &ev) == EVS_OK) {
		evs_state next;
		tu_ok(w->st, ledger_fold(l, &ev));
		tu_ok(w->st, evs_merge_patch(g->data, g->len, ev.data, ev.data_len, &next));
		free(g->data);
		*g = next;
	}
	evs_iter_free(it);
}

static int used_older_snapshot;

static void check_at(world *w, const evs_at *at, const char *what)
{
	uint64_t v, p;
	ledger got, pure, want;
	evs_state gs, gwant;
	evs_loaded li, lp;
	char a[128], b[128];

	expect(w, at, &v, &p);
	tu_ok(w->st, evs_aggregate_load(w->snap, "acct", at, &got, &li));
	tu_ok(w->st, evs_aggregate_load(w->pure, "acct", at, &pure, &lp));
	fold_to(w, v, &want, &gwant);
	ck_assert_msg(li.version == v && li.position == p,
		      "%s: version/position %llu/%llu, "
		      "want %llu/%llu",
		      what, (unsigned long long)li.version, (unsigned long long)li.position,
		      (unsigned long long)v, (unsigned long long)p);
	ck_assert_uint_eq(lp.version, v);
	ck_assert_uint_le(li.snapshot_version, v);
	if (li.snapshot_version && li.snapshot_version < w->ev[w->n - 1].version)
		used_older_snapshot++;
	ck_assert_msg(ledger_equal(&got, &want) && ledger_equal(&pure, &want),
		      "%s: got %s, want %s", what, ledger_str(&got, a, sizeof a),
		      ledger_str(&want, b, sizeof b));

	tu_ok(w->st, evs_state_load(w->st, "acct", at, &gs));
	ck_assert_msg(gs.version == v && gs.position == p && gs.len == gwant.len &&
			      memcmp(gs.data, gwant.data, gs.len) == 0,
		      "%s: generic state at version %llu, want %llu", what,
		      (unsigned long long)gs.version, (unsigned long long)v);
	evs_state_free(&gs);
	evs_state_free(&gwant);
	ledger_free(&want);
	evs_aggregate_release(w->snap, &got);
	evs_aggregate_release(w->pure, &pure);
}

static void teardown(world *w)
{
	evs_aggregate_free(w->snap);
	evs_aggregate_free(w->pure);
	evs_close(w->st);
}

START_TEST(test_as_of_time)
{
	world w = {0};
	char what[128];
	evs_at at = {.kind = EVS_AT_TIME};
	int between = 0;

	build(&w);
	used_older_snapshot = 0;
	/* before the first event */
	int64_t before[] = {INT64_MIN, -1, 0, w.ev[0].recorded_at - 1};
	for (size_t i = 0; i < 4; i++) {
		at.time = before[i];
		snprintf(what, sizeof what, "before the first event (t = %lld)",
			 (long long)at.time);
		check_at(&w, &at, what);
	}
	for (size_t i = 0; i < w.n; i++) {
		/* exactly at an event's time: it and its whole commit count */
		at.time = w.ev[i].recorded_at;
		snprintf(what, sizeof what, "at the time of version %llu",
			 (unsigned long long)w.ev[i].version);
		check_at(&w, &at, what);
		/* strictly between this commit and the next */
		if (i + 1 < w.n && w.ev[i + 1].recorded_at - w.ev[i].recorded_at >= 2) {
			at.time = w.ev[i].recorded_at +
				  (w.ev[i + 1].recorded_at - w.ev[i].recorded_at) / 2;
			snprintf(what, sizeof what, "between versions %llu and %llu",
				 (unsigned long long)w.ev[i].version,
				 (unsigned long long)w.ev[i + 1].version);
			check_at(&w, &at, what);
			between++;
		}
	}
	/* at another stream's events, which lie between this one's */
	for (size_t i = 0; i < w.nother; i++) {
		at.time = w.other_times[i];
		check_at(&w, &at, "at another stream's event");
	}
	/* after the last */
	int64_t after[] = {w.ev[w.n - 1].recorded_at + 1, kit_now_ns() + 1000000000LL, INT64_MAX};
	for (size_t i = 0; i < 3; i++) {
		at.time = after[i];
		check_at(&w, &at, "after the last event");
	}
	ck_assert_int_gt(between, 5);
	ck_assert_int_gt(used_older_snapshot, 5); /* snapshots were in play */
	teardown(&w);
}
END_TEST

START_TEST(test_as_of_position)
{
	world w = {0};
	char what[128];
	evs_at at = {.kind = EVS_AT_POSITION};

	build(&w);
	at.position = 0;
	check_at(&w, &at, "position 0");
	for (size_t i = 0; i < w.n; i++) {
		at.position = w.ev[i].position;
		snprintf(what, sizeof what, "at position %llu", (unsigned long long)at.position);
		check_at(&w, &at, what);
	}
	for (size_t i = 0; i < w.nother; i++) {
		at.position = w.other_pos[i];
		check_at(&w, &at, "at another stream's position");
	}
	at.position = w.ev[w.n - 1].position + 100;
	check_at(&w, &at, "past the end");
	at.position = UINT64_MAX;
	check_at(&w, &at, "UINT64_MAX");

	/* a stream that does not exist, as of anything */
	ledger l;
	evs_loaded li;
	tu_ok(w.st, evs_aggregate_load(w.snap, "nobody", &at, &l, &li));
	ck_assert_uint_eq(li.version, 0);
	ck_assert_int_eq(l.balance, 0);
	evs_aggregate_release(w.snap, &l);
	evs_state s;
	tu_ok(w.st, evs_state_load(w.st, "nobody", &at, &s));
	ck_assert_uint_eq(s.version, 0);
	ck_assert_uint_eq(s.len, 1);
	ck_assert_uint_eq(((uint8_t *)s.data)[0], 0x80);
	evs_state_free(&s);
	teardown(&w);
}
END_TEST

/* The bank example: an auditor's view of an account before a transfer. */
START_TEST(test_bank_as_of)
{
	evs_options o;
	tu_options(&o, EVS_SYNC_NONE);
	evs_store *st = tu_open(kit_dir, &o);
	bank b;
	tu_ok(st, bank_open_handle(&b, st, 2));
	tu_ok(st, bank_open(&b, "a", "Ann"));
	tu_ok(st, bank_open(&b, "b", "Ben"));
	tu_ok(st, bank_deposit(&b, "a", 1000));
	evs_stream_info h;
	tu_ok(st, evs_stream_head(st, "a", &h));
	uint64_t mark = h.last_position;
	tu_ok(st, bank_transfer(&b, "a", "b", 300, NULL));
	tu_ok(st, bank_withdraw(&b, "a", 100));

	bank_account acc;
	evs_loaded li;
	evs_at at = {.kind = EVS_AT_POSITION, .position = mark};
	tu_ok(st, bank_load(&b, "a", &at, &acc, &li));
	ck_assert_int_eq(acc.balance, 1000);
	ck_assert_uint_eq(li.version, 2);
	tu_ok(st, bank_load(&b, "b", &at, &acc, &li));
	ck_assert_int_eq(acc.balance, 0);
	tu_ok(st, bank_load(&b, "a", NULL, &acc, &li));
	ck_assert_int_eq(acc.balance, 600);
	ck_assert_uint_eq(li.snapshot_version, 4);
	tu_ok(st, bank_load(&b, "b", NULL, &acc, &li));
	ck_assert_int_eq(acc.balance, 300);
	bank_close_handle(&b);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_as_of_time,
		test_as_of_position,
		test_bank_as_of,
		NULL,
	};

	return kit_main("aggregate-asof", 600, tests);
}
