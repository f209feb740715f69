/*
 * test_dcb.c - evs_append_ex() (contract K4 of issue 12): several streams
 * in one atomic request, checkpoint writes in the same transaction (and in
 * the journal: they survive SIGKILL between the journal sync and the LMDB
 * commit exactly like events), and the append condition's outcomes on a
 * single thread. The concurrent DCB cases are in test_dcb_race.c.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kit_store.h"

static evs_store *open_store(size_t max_batch)
{
	char dir[4096];
	evs_options o;

	tu_path(dir, sizeof dir, "store");
	evs_options_init(&o);
	o.max_batch = max_batch;
	return tu_open(dir, &o);
}

static uint64_t last_position(evs_store *st)
{
	evs_store_info info;

	tu_ok(st, evs_head(st, &info));
	return info.last_position;
}

/* n events of `type` with ids tu_id(tag, first..) */
static void events(evs_event_in *ev, size_t n, const char *type, uint64_t tag, uint64_t first)
{
	for (size_t i = 0; i < n; i++) {
		memset(&ev[i], 0, sizeof ev[i]);
		ev[i].type = type;
		if (tag)
			tu_id(ev[i].id, tag, first + i);
	}
}

static uint64_t version_of(evs_store *st, const char *stream)
{
	evs_stream_info h;
	int rc = evs_stream_head(st, stream, &h);

	ck_assert(rc == EVS_OK || rc == EVS_NOT_FOUND);
	return h.version;
}

START_TEST(test_two_streams_atomically)
{
	evs_store *st = open_store(0);
	evs_event_in a[2], b[3];
	evs_append_result res[2];
	tu_ev *all;

	events(a, 2, "Debited", 0, 0);
	events(b, 3, "Credited", 0, 0);
	evs_append_part parts[2] = {{"account-1", EVS_NO_STREAM, a, 2},
				    {"account-2", EVS_NO_STREAM, b, 3}};
	tu_ok(st, evs_append_ex(st, parts, 2, NULL, 0, NULL, res, NULL));
	tu_check_u64_eq(res[0].first_position, 1);
	tu_check_u64_eq(res[0].last_position, 2);
	tu_check_u64_eq(res[0].version, 2);
	tu_check_u64_eq(res[1].first_position, 3);
	tu_check_u64_eq(res[1].last_position, 5);
	tu_check_u64_eq(res[1].version, 3);
	ck_assert_int_eq(res[0].idempotent, 0);
	size_t n = tu_read_all(st, &all);
	ck_assert_uint_eq(n, 5);
	ck_assert(tu_str_eq(all[0].ev.stream, "account-1"));
	ck_assert(tu_str_eq(all[4].ev.stream, "account-2"));
	tu_check_u64_eq(all[4].ev.version, 3);
	ck_assert_int_eq(all[0].ev.recorded_at, all[4].ev.recorded_at);
	tu_evs_free(all, n);
	/* expected versions per part: both exact */
	parts[0].expected = 2;
	parts[1].expected = 3;
	parts[0].n = 1;
	parts[1].n = 1;
	tu_ok(st, evs_append_ex(st, parts, 2, NULL, 0, NULL, res, NULL));
	tu_check_u64_eq(res[0].version, 3);
	tu_check_u64_eq(res[1].version, 4);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

/* One part refused: nothing of any part (nor a checkpoint write) lands. */
START_TEST(test_one_bad_part_writes_nothing)
{
	evs_store *st = open_store(0);
	evs_event_in a[1], b[2];
	evs_append_result res[2];
	evs_checkpoint_write ck = {"pm/x", 7, 0};
	uint64_t v;

	tu_ok(st, tu_append_simple(st, "b", EVS_ANY, "E", 4, 0, 0, NULL));
	events(a, 1, "E", 0, 0);
	events(b, 2, "E", 0, 0);
	evs_append_part parts[2] = {{"a", EVS_NO_STREAM, a, 1}, {"b", 3, b, 2}};
	tu_assert_rc(st, evs_append_ex(st, parts, 2, &ck, 1, NULL, res, NULL), EVS_WRONG_VERSION);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "part 1"));
	tu_check_u64_eq(res[1].version, 4);
	tu_check_u64_eq(res[0].version, 0);
	tu_check_u64_eq(last_position(st), 4);
	tu_check_u64_eq(version_of(st, "a"), 0);
	tu_assert_rc(st, evs_checkpoint_get(st, "pm/x", &v), EVS_NOT_FOUND);

	/* bad input in part 1 */
	parts[1].expected = 4;
	b[1].type = "";
	tu_assert_rc(st, evs_append_ex(st, parts, 2, NULL, 0, NULL, res, NULL), EVS_BAD_TYPE);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "part 1: event 1"));
	b[1].type = "E";
	/* EVS_STREAM_EXISTS on a stream that does not exist */
	parts[0].expected = EVS_STREAM_EXISTS;
	tu_assert_rc(st, evs_append_ex(st, parts, 2, NULL, 0, NULL, res, NULL), EVS_WRONG_VERSION);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "part 0"));
	tu_check_u64_eq(last_position(st), 4);
	/* now it goes through */
	parts[0].expected = EVS_NO_STREAM;
	tu_ok(st, evs_append_ex(st, parts, 2, &ck, 1, NULL, res, NULL));
	tu_check_u64_eq(res[1].version, 6);
	tu_ok(st, evs_checkpoint_get(st, "pm/x", &v));
	tu_check_u64_eq(v, 7);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

START_TEST(test_bad_requests_refused)
{
	evs_store *st = open_store(10);
	evs_event_in a[6], b[6];
	evs_append_result res[3];
	evs_checkpoint_write ck[2] = {{"c", 1, 0}, {"c", 2, 0}};

	events(a, 6, "E", 1, 0);
	events(b, 6, "E", 2, 0);
	/* the same stream twice */
	evs_append_part parts[3] = {
		{"s", EVS_ANY, a, 1}, {"t", EVS_ANY, b, 1}, {"s", EVS_ANY, b + 1, 1}};
	tu_assert_rc(st, evs_append_ex(st, parts, 3, NULL, 0, NULL, res, NULL), EVS_INVALID);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "\"s\" appears twice"));
	/* the same id in two parts */
	memcpy(b[0].id, a[0].id, 16);
	tu_assert_rc(st, evs_append_ex(st, parts, 2, NULL, 0, NULL, res, NULL), EVS_ID_CONFLICT);
	tu_id(b[0].id, 2, 0);
	/* max_batch counts every part: 6 + 5 > 10, 5 + 5 fits */
	parts[0].n = 6;
	parts[1].n = 5;
	tu_assert_rc(st, evs_append_ex(st, parts, 2, NULL, 0, NULL, res, NULL),
		     EVS_BATCH_TOO_LARGE);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "part 1"));
	/* an empty part, no parts at all, NULL arrays */
	parts[0].n = 0;
	tu_assert_rc(st, evs_append_ex(st, parts, 2, NULL, 0, NULL, res, NULL), EVS_EMPTY_BATCH);
	tu_assert_rc(st, evs_append_ex(st, NULL, 0, NULL, 0, NULL, NULL, NULL), EVS_EMPTY_BATCH);
	tu_assert_rc(st, evs_append_ex(st, NULL, 2, NULL, 0, NULL, NULL, NULL), EVS_INVALID);
	tu_assert_rc(st, evs_append_ex(st, NULL, 0, NULL, 1, NULL, NULL, NULL), EVS_INVALID);
	/* checkpoint writes: a name twice, a bad name, remove not 0/1 */
	parts[0].n = 5;
	tu_assert_rc(st, evs_append_ex(st, parts, 2, ck, 2, NULL, res, NULL), EVS_INVALID);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "\"c\" appears twice"));
	ck[1].name = "";
	tu_assert_rc(st, evs_append_ex(st, parts, 2, ck, 2, NULL, res, NULL), EVS_INVALID);
	ck[1].name = "d";
	ck[1].remove = 2;
	tu_assert_rc(st, evs_append_ex(st, parts, 2, ck, 2, NULL, res, NULL), EVS_INVALID);
	ck[1].remove = 0;
	/* conditions: no query, a NULL array with a count, an empty tag */
	evs_condition cond = {NULL, 0};
	tu_assert_rc(st, evs_append_ex(st, parts, 2, NULL, 0, &cond, res, NULL), EVS_INVALID);
	evs_query_item item = {NULL, 1, NULL, 0};
	evs_query q = {&item, 1};
	cond.fail_if = &q;
	tu_assert_rc(st, evs_append_ex(st, parts, 2, NULL, 0, &cond, res, NULL), EVS_INVALID);
	const char *tags[] = {""};
	item.ntypes = 0;
	item.tags = tags;
	item.ntags = 1;
	tu_assert_rc(st, evs_append_ex(st, parts, 2, NULL, 0, &cond, res, NULL), EVS_INVALID);
	tu_check_u64_eq(last_position(st), 0);
	/* all of it right: it goes through */
	tu_ok(st, evs_append_ex(st, parts, 2, ck, 2, NULL, res, NULL));
	tu_check_u64_eq(last_position(st), 10);
	evs_close(st);
}
END_TEST

/* An exact retry is answered as the original, before the condition (which
 * its own events would fail); a partial one conflicts. */
START_TEST(test_idempotent_retry)
{
	evs_store *st = open_store(0);
	evs_event_in a[2], b[2], c[1];
	evs_append_result res[2], again[2];
	evs_query q = {NULL, 0}; /* every event */
	evs_condition cond = {&q, 0};
	uint64_t conflict = 0;

	events(a, 2, "E", 1, 0);
	events(b, 2, "E", 2, 0);
	events(c, 1, "E", 3, 0);
	evs_append_part parts[2] = {{"a", EVS_NO_STREAM, a, 2}, {"b", EVS_NO_STREAM, b, 2}};
	tu_ok(st, evs_append_ex(st, parts, 2, NULL, 0, &cond, res, &conflict));
	tu_check_u64_eq(conflict, 0);
	tu_ok(st, evs_append_ex(st, parts, 2, NULL, 0, &cond, again, &conflict));
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(again[i].idempotent, 1);
		tu_check_u64_eq(again[i].first_position, res[i].first_position);
		tu_check_u64_eq(again[i].last_position, res[i].last_position);
		tu_check_u64_eq(again[i].version, res[i].version);
	}
	tu_check_u64_eq(last_position(st), 4);
	/* the same events in other parts: a conflict */
	evs_append_part swapped[2] = {{"b", EVS_ANY, b, 2}, {"a", EVS_ANY, a, 2}};
	tu_assert_rc(st, evs_append_ex(st, swapped, 2, NULL, 0, NULL, again, NULL),
		     EVS_ID_CONFLICT);
	/* a new part beside stored ones: a conflict */
	evs_append_part more[2] = {{"a", EVS_ANY, a, 2}, {"c", EVS_ANY, c, 1}};
	tu_assert_rc(st, evs_append_ex(st, more, 2, NULL, 0, NULL, again, NULL), EVS_ID_CONFLICT);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "part 1, event 0"));
	/* with the condition and new events, it fails at position 1 */
	evs_append_part cp = {"c", EVS_ANY, c, 1};
	tu_assert_rc(st, evs_append_ex(st, &cp, 1, NULL, 0, &cond, again, &conflict),
		     EVS_CONDITION_FAILED);
	tu_check_u64_eq(conflict, 1);
	tu_check_u64_eq(last_position(st), 4);
	/* evs_append's own retry still works beside them */
	tu_ok(st, tu_append_simple(st, "d", EVS_NO_STREAM, "E", 3, 9, 0, NULL));
	tu_ok(st, tu_append_simple(st, "d", EVS_NO_STREAM, "E", 3, 9, 0, &res[0]));
	ck_assert_int_eq(res[0].idempotent, 1);
	tu_check_u64_eq(res[0].first_position, 5);
	evs_close(st);
}
END_TEST

START_TEST(test_checkpoint_writes)
{
	evs_store *st = open_store(0);
	evs_event_in a[1];
	evs_append_result res;
	uint64_t v;

	tu_ok(st, evs_checkpoint_set(st, "old", 3));
	events(a, 1, "E", 0, 0);
	evs_append_part part = {"s", EVS_ANY, a, 1};
	evs_checkpoint_write ck[3] = {{"pm/m", 1, 0}, {"old", 0, 1}, {"gone", 0, 1}};
	tu_ok(st, evs_append_ex(st, &part, 1, ck, 3, NULL, &res, NULL));
	tu_ok(st, evs_checkpoint_get(st, "pm/m", &v));
	tu_check_u64_eq(v, 1);
	tu_assert_rc(st, evs_checkpoint_get(st, "old", &v), EVS_NOT_FOUND);
	/* checkpoint writes alone (no part) commit too */
	ck[0].position = UINT64_MAX;
	tu_ok(st, evs_append_ex(st, NULL, 0, ck, 1, NULL, NULL, NULL));
	tu_ok(st, evs_checkpoint_get(st, "pm/m", &v));
	tu_check_u64_eq(v, UINT64_MAX);
	tu_check_u64_eq(last_position(st), 1);
	/* a failed condition writes no checkpoint */
	evs_query q = {NULL, 0};
	evs_condition cond = {&q, 0};
	ck[0].position = 5;
	tu_assert_rc(st, evs_append_ex(st, NULL, 0, ck, 1, &cond, NULL, &v), EVS_CONDITION_FAILED);
	tu_check_u64_eq(v, 1);
	tu_ok(st, evs_checkpoint_get(st, "pm/m", &v));
	tu_check_u64_eq(v, UINT64_MAX);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

/*
 * A child appends with checkpoint writes and is killed after the journal
 * sync, before LMDB's commit (EVS_TEST_KILL_AFTER_JOURNAL): only the
 * journal has them. The next open replays the record: events and
 * checkpoint writes both. Then the same with a request of checkpoint
 * writes alone (a record of no events).
 */
static void kill_child(int round)
{
	char dir[4096];
	evs_event_in a[2];
	evs_store *cs;
	int rc;

	tu_path(dir, sizeof dir, "store");
	if (evs_open(dir, NULL, &cs) != EVS_OK)
		_exit(2);
	setenv("EVS_TEST_KILL_AFTER_JOURNAL", "1", 1);
	events(a, 2, "E", 0, 0);
	evs_append_part parts[2] = {{"s1", EVS_ANY, a, 1}, {"s2", EVS_ANY, a + 1, 1}};
	evs_checkpoint_write ck[2] = {{"pm/a", 41, 0}, {"pm/b", 0, 1}};
	if (round == 0)
		rc = evs_append_ex(cs, parts, 2, ck, 2, NULL, NULL, NULL);
	else {
		ck[0].position = 42;
		ck[1].remove = 0;
		ck[1].position = 43;
		rc = evs_append_ex(cs, NULL, 0, ck, 2, NULL, NULL, NULL);
	}
	kit_child_check(0, "the kill hook did not fire: %d %s", rc, evs_errmsg(cs));
}

START_TEST(test_checkpoint_writes_survive_sigkill)
{
	char dir[4096];
	evs_store *st;
	uint64_t v;
	int status;

	tu_path(dir, sizeof dir, "store");
	st = tu_open(dir, NULL);
	tu_ok(st, evs_checkpoint_set(st, "pm/b", 9));
	evs_close(st);
	for (int round = 0; round < 2; round++) {
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			kill_child(round);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d",
			      status);
		st = tu_open(dir, NULL);
		tu_ok(st, evs_checkpoint_get(st, "pm/a", &v));
		tu_check_u64_eq(v, round == 0 ? 41 : 42);
		if (round == 0) {
			tu_assert_rc(st, evs_checkpoint_get(st, "pm/b", &v), EVS_NOT_FOUND);
		} else {
			tu_ok(st, evs_checkpoint_get(st, "pm/b", &v));
			tu_check_u64_eq(v, 43);
		}
		tu_check_u64_eq(last_position(st), 2);
		tu_check_u64_eq(version_of(st, "s2"), 1);
		ck_assert_uint_eq(tu_verify(st), 0);
		evs_close(st);
	}
}
END_TEST

/* The condition on one thread: a type-only query, after a position, and
 * combined with an expected version. */
START_TEST(test_condition_outcomes)
{
	evs_store *st = open_store(0);
	evs_event_in a[1];
	evs_append_result res;
	const char *types[] = {"UsernameClaimed"};
	evs_query_item item = {types, 1, NULL, 0};
	evs_query q = {&item, 1};
	evs_condition cond = {&q, 0};
	uint64_t conflict;

	events(a, 1, "UsernameClaimed", 0, 0);
	evs_append_part part = {"user-1", EVS_NO_STREAM, a, 1};
	tu_ok(st, tu_append_simple(st, "other", EVS_ANY, "Other", 3, 0, 0, NULL));
	tu_ok(st, evs_append_ex(st, &part, 1, NULL, 0, &cond, &res, &conflict));
	tu_check_u64_eq(res.first_position, 4);
	tu_check_u64_eq(conflict, 0);
	part.stream = "user-2";
	tu_assert_rc(st, evs_append_ex(st, &part, 1, NULL, 0, &cond, &res, &conflict),
		     EVS_CONDITION_FAILED);
	tu_check_u64_eq(conflict, 4);
	ck_assert(tu_has_number(evs_errmsg(st), 4));
	tu_check_u64_eq(res.first_position, 0);
	/* after the conflicting position: it holds */
	cond.after = 4;
	tu_ok(st, evs_append_ex(st, &part, 1, NULL, 0, &cond, &res, &conflict));
	tu_check_u64_eq(res.first_position, 5);
	/* expected version and condition: the version is checked first */
	part.stream = "user-3";
	part.expected = 7;
	tu_assert_rc(st, evs_append_ex(st, &part, 1, NULL, 0, &cond, &res, &conflict),
		     EVS_WRONG_VERSION);
	tu_check_u64_eq(res.version, 0);
	tu_check_u64_eq(conflict, 0);
	part.expected = EVS_NO_STREAM;
	tu_assert_rc(st, evs_append_ex(st, &part, 1, NULL, 0, &cond, &res, &conflict),
		     EVS_CONDITION_FAILED);
	tu_check_u64_eq(conflict, 5);
	cond.after = 5;
	tu_ok(st, evs_append_ex(st, &part, 1, NULL, 0, &cond, &res, &conflict));
	/* a query no event matches, far back */
	const char *none[] = {"Nothing", "Neither"};
	item.types = none;
	item.ntypes = 2;
	cond.after = 0;
	part.expected = EVS_ANY;
	tu_ok(st, evs_append_ex(st, &part, 1, NULL, 0, &cond, &res, &conflict));
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

/*
 * Random histories and random conditions against a model: the first
 * conflicting position a condition reports (or none) is the first event
 * after `after` matching the query, found by brute force over the model
 * of the log. Conditions far back use the indexes (leapfrog over tags,
 * type positions), near the end a scan: both are covered.
 */
#define R_TYPES 3
#define R_TAGS  6
static const char *r_types[R_TYPES] = {"A", "B", "C"};
static const char *r_tags[R_TAGS] = {"k:0", "k:1", "k:2", "k:3", "k:4", "k:5"};

typedef struct r_item {
	unsigned types, tags; /* masks; 0 types = any */
} r_item;

static bool r_match(const r_item *items, size_t n, int type, unsigned tags)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if ((items[i].types == 0 || (items[i].types >> type & 1)) &&
		    (tags & items[i].tags) == items[i].tags)
			return true;
	return false;
}

START_TEST(test_condition_random)
{
	evs_store *st = open_store(0);
	uint64_t seed = kit_seed("dcb condition"), r = seed;
	size_t n = 0, cap = 4096;
	int *types = calloc(cap, sizeof *types);
	unsigned *tags = calloc(cap, sizeof *tags);
	size_t failed = 0, held = 0;

	ck_assert(types && tags);
	/* a history: 400 events in batches, random type and tag subset */
	while (n < 400) {
		evs_event_in ev[8];
		const char *tv[8][R_TAGS];
		size_t k = kit_rand_range(&r, 1, 8);
		for (size_t i = 0; i < k; i++) {
			int t = (int)kit_rand_range(&r, 0, R_TYPES - 1);
			unsigned m = (unsigned)kit_rand(&r) & (unsigned)kit_rand(&r) & 63;
			memset(&ev[i], 0, sizeof ev[i]);
			ev[i].type = r_types[t];
			ev[i].tags = tv[i];
			for (int g = 0; g < R_TAGS; g++)
				if (m >> g & 1)
					tv[i][ev[i].ntags++] = r_tags[g];
			types[n + 1 + i] = t;
			tags[n + 1 + i] = m;
		}
		tu_ok(st, evs_append(st, "hist", EVS_ANY, ev, k, NULL));
		n += k;
	}
	for (int round = 0; round < 600; round++) {
		r_item items[3];
		evs_query_item qi[3];
		const char *qt[3][R_TYPES], *qg[3][R_TAGS];
		size_t ni = kit_rand_range(&r, 0, 3);
		if (kit_rand_range(&r, 0, 9) > 0 && ni == 0)
			ni = 1;
		for (size_t i = 0; i < ni; i++) {
			items[i].types =
				kit_rand_range(&r, 0, 1) ? (unsigned)kit_rand_range(&r, 0, 7) : 0;
			items[i].tags = (unsigned)kit_rand(&r) & (unsigned)kit_rand(&r) & 63;
			memset(&qi[i], 0, sizeof qi[i]);
			qi[i].types = qt[i];
			qi[i].tags = qg[i];
			for (int t = 0; t < R_TYPES; t++)
				if (items[i].types >> t & 1)
					qt[i][qi[i].ntypes++] = r_types[t];
			for (int g = 0; g < R_TAGS; g++)
				if (items[i].tags >> g & 1)
					qg[i][qi[i].ntags++] = r_tags[g];
		}
		evs_query q = {qi, ni};
		/* near the end (a scan) or anywhere (the indexes) */
		uint64_t after = kit_rand_range(&r, 0, 1)
					 ? kit_rand_range(&r, 0, n)
					 : n - kit_rand_range(&r, 0, n < 20 ? n : 20);
		evs_condition cond = {&q, after};
		uint64_t want = 0, conflict = 99;
		for (uint64_t p = after + 1; p <= n && !want; p++)
			if (r_match(items, ni, types[p], tags[p]))
				want = p;
		/* the probe: type C, no tags */
		evs_event_in probe;
		memset(&probe, 0, sizeof probe);
		probe.type = "C";
		evs_append_part part = {"probe", EVS_ANY, &probe, 1};
		int rc = evs_append_ex(st, &part, 1, NULL, 0, &cond, NULL, &conflict);
		if (want) {
			tu_check(rc == EVS_CONDITION_FAILED && conflict == want,
				 "round %d: after %llu: got %s at %llu, want a conflict at %llu",
				 round, (unsigned long long)after, evs_code_name(rc),
				 (unsigned long long)conflict, (unsigned long long)want);
			failed++;
		} else {
			tu_check(rc == EVS_OK && conflict == 0, "round %d: after %llu: got %s (%s)",
				 round, (unsigned long long)after, evs_code_name(rc),
				 evs_errmsg(st));
			held++;
			if (++n >= cap) {
				cap *= 2;
				types = realloc(types, cap * sizeof *types);
				tags = realloc(tags, cap * sizeof *tags);
				ck_assert(types && tags);
			}
			types[n] = 2;
			tags[n] = 0;
		}
	}
	printf("dcb condition: %zu held, %zu failed\n", held, failed);
	ck_assert_uint_gt(held, 0);
	ck_assert_uint_gt(failed, 0);
	ck_assert_uint_eq(tu_verify(st), 0);
	free(types);
	free(tags);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_two_streams_atomically,
		test_one_bad_part_writes_nothing,
		test_bad_requests_refused,
		test_idempotent_retry,
		test_checkpoint_writes,
		test_checkpoint_writes_survive_sigkill,
		test_condition_outcomes,
		test_condition_random,
		NULL,
	};

	return kit_main("store-dcb", 600, tests);
}
