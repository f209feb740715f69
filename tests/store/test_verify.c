/*
 * test_verify.c - evs_verify finds nothing wrong with a healthy store and
 * finds every index damaged behind the library's back (with liblmdb).
 */
#include <string.h>

#include "kit_store.h"
#include "tu_lmdb.h"

#define EVENTS 40

/* 40 events: streams a, b, c in 12 commits (some multi-event). */
static void build(void)
{
	evs_store *st = tu_open(kit_dir, NULL);
	const char *streams[3] = {"a", "b", "c"};
	size_t n = 0;
	for (int i = 0; n < EVENTS; i++) {
		size_t k = (size_t)(i % 4) + 1;
		if (k > EVENTS - n)
			k = EVENTS - n;
		tu_ok(st, tu_append_simple(st, streams[i % 3], EVS_ANY, "T", k, 0x7a, n, NULL));
		n += k;
	}
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}

typedef struct seen {
	uint64_t calls;
	int nonempty;
} seen;

static void on_problem(void *ctx, const char *problem)
{
	seen *s = ctx;
	s->calls++;
	s->nonempty &= problem != NULL && *problem != '\0';
	fprintf(stderr, "verify found: %s\n", problem);
}

/* Reopen and verify; returns the count, asserting the callback saw them. */
static uint64_t reverify(void)
{
	evs_store *st = tu_open(kit_dir, NULL);
	seen s = {0, 1};
	uint64_t problems = 0;
	tu_ok(st, evs_verify(st, on_problem, &s, &problems));
	ck_assert_uint_eq(s.calls, problems);
	ck_assert(s.nonempty);
	/* a NULL callback counts the same */
	uint64_t again = 0;
	tu_ok(st, evs_verify(st, NULL, NULL, &again));
	ck_assert_uint_eq(again, problems);
	evs_close(st);
	return problems;
}

START_TEST(test_healthy)
{
	build();
	ck_assert_uint_eq(reverify(), 0);
	/* an empty store is healthy too */
	char dir[PATH_MAX];
	tu_path(dir, sizeof dir, "empty");
	evs_store *st = tu_open(dir, NULL);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

START_TEST(test_event_id_deleted)
{
	build();
	ck_assert_uint_eq(tu_mdb_count(kit_dir, "event_ids"), EVENTS);
	uint8_t id[16];
	ck_assert_uint_eq(tu_mdb_del_nth(kit_dir, "event_ids", 17, id, sizeof id), 16);
	ck_assert_uint_gt(reverify(), 0);
	/* and the id is gone for the API as well */
	evs_store *st = tu_open(kit_dir, NULL);
	uint64_t p;
	tu_assert_rc(st, evs_find_id(st, id, &p), EVS_NOT_FOUND);
	evs_close(st);
}
END_TEST

START_TEST(test_event_id_repointed)
{
	build();
	/* the id of position 10 now says position 11 */
	evs_store *st = tu_open(kit_dir, NULL);
	tu_ev *evs;
	size_t n = tu_read_all(st, &evs);
	ck_assert_uint_eq(n, EVENTS);
	uint8_t id[16];
	memcpy(id, evs[9].ev.id, 16);
	tu_evs_free(evs, n);
	evs_close(st);
	uint8_t pos[8];
	tu_put_u64(pos, 11);
	tu_mdb_put(kit_dir, "event_ids", id, 16, pos, 8);
	ck_assert_uint_gt(reverify(), 0);
}
END_TEST

START_TEST(test_stream_entry_deleted)
{
	build();
	ck_assert_uint_eq(tu_mdb_count(kit_dir, "streams"), EVENTS);
	tu_mdb_del_nth(kit_dir, "streams", 5, NULL, 0);
	ck_assert_uint_gt(reverify(), 0);
}
END_TEST

START_TEST(test_stream_last_entry_deleted)
{
	build();
	tu_mdb_del_nth(kit_dir, "streams", EVENTS - 1, NULL, 0);
	ck_assert_uint_gt(reverify(), 0);
}
END_TEST

START_TEST(test_time_entry_deleted)
{
	build();
	size_t n = tu_mdb_count(kit_dir, "time");
	ck_assert_uint_ge(n, 2);
	ck_assert_uint_le(n, EVENTS);
	tu_mdb_del_nth(kit_dir, "time", n / 2, NULL, 0);
	ck_assert_uint_gt(reverify(), 0);
}
END_TEST

/* The event index (index.c), both ways: an entry missing, an entry that
 * no event calls for. */
START_TEST(test_index_entry_deleted)
{
	uint8_t key[300];
	build();
	size_t n = tu_mdb_count(kit_dir, "index");
	ck_assert_uint_eq(n, 2 * EVENTS); /* a type and a category each */
	size_t len = tu_mdb_del_nth(kit_dir, "index", n / 3, key, sizeof key);
	ck_assert_uint_eq(reverify(), 2); /* the event's, and the count */
	/* back, and one more: a tag no event has */
	tu_mdb_put(kit_dir, "index", key, len, "", 0);
	ck_assert_uint_eq(reverify(), 0);
	uint8_t extra[12] = {'g', 'x', 0};
	tu_put_u64(extra + 3, 7);
	tu_mdb_put(kit_dir, "index", extra, 11, "", 0);
	ck_assert_uint_eq(reverify(), 2);
	/* and one that points past the log */
	tu_mdb_del(kit_dir, "index", extra, 11);
	key[len - 1] = 99;
	tu_mdb_put(kit_dir, "index", key, len, "", 0);
	ck_assert_uint_eq(reverify(), 2);
}
END_TEST

START_TEST(test_time_last_entry_deleted)
{
	build();
	size_t n = tu_mdb_count(kit_dir, "time");
	tu_mdb_del_nth(kit_dir, "time", n - 1, NULL, 0);
	ck_assert_uint_gt(reverify(), 0);
}
END_TEST

START_TEST(test_record_garbled)
{
	build();
	uint8_t key[8];
	tu_put_u64(key, 20);
	size_t n = 0;
	uint8_t *rec = tu_mdb_get(kit_dir, "events", key, 8, &n);
	ck_assert_ptr_nonnull(rec);
	ck_assert_uint_gt(n, 20);
	/* keep the head, cut the tail short */
	tu_mdb_put(kit_dir, "events", key, 8, rec, n - 3);
	ck_assert_uint_gt(reverify(), 0);

	/* reading over it reports corruption rather than garbage */
	evs_store *st = tu_open(kit_dir, NULL);
	evs_iter *it;
	tu_ok(st, evs_read_all(st, 19, EVS_FORWARD, NULL, 0, &it));
	evs_event ev;
	tu_ok(st, evs_iter_next(it, &ev));
	ck_assert_uint_eq(ev.position, 19);
	tu_assert_rc(st, evs_iter_next(it, &ev), EVS_CORRUPT);
	evs_iter_free(it);
	evs_close(st);

	/* pure garbage */
	memset(rec, 0xc1, n);
	tu_mdb_put(kit_dir, "events", key, 8, rec, n);
	ck_assert_uint_gt(reverify(), 0);
	free(rec);
}
END_TEST

START_TEST(test_record_deleted)
{
	build();
	uint8_t key[8];
	tu_put_u64(key, EVENTS);
	/* the last event: every index still points at it */
	tu_mdb_del_nth(kit_dir, "events", EVENTS - 1, key, sizeof key);
	ck_assert_uint_eq(tu_get_u64(key), EVENTS);
	ck_assert_uint_gt(reverify(), 0);
}
END_TEST

START_TEST(test_record_in_the_middle_deleted)
{
	build();
	tu_mdb_del_nth(kit_dir, "events", 10, NULL, 0);
	ck_assert_uint_gt(reverify(), 0);
}
END_TEST

START_TEST(test_stream_count_wrong)
{
	build();
	uint8_t v[8];
	tu_put_u64(v, 7);
	tu_mdb_put(kit_dir, "meta", "streams", 7, v, 8);
	ck_assert_uint_gt(reverify(), 0);
}
END_TEST

typedef struct progress {
	uint64_t calls, done, total;
	int monotonic;
} progress;

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	progress *p = ctx;

	if (p->calls > 0 && (done <= p->done || total != p->total))
		p->monotonic = 0;
	ck_assert_uint_le(done, total);
	p->calls++;
	p->done = done;
	p->total = total;
}

/* evs_verify_ex with progress every `every` records; returns the problems. */
static uint64_t verify_progress(const char *dir, uint64_t every, progress *p)
{
	evs_store *st = tu_open(dir, NULL);
	evs_verify_opts opts = {.on_progress = on_progress, .ctx = p, .progress_every = every};
	uint64_t problems = 99;

	*p = (progress){0, 0, 0, 1};
	tu_ok(st, evs_verify_ex(st, &opts, &problems));
	evs_close(st);
	return problems;
}

/* The progress callback sees a rising count that ends at the total: every
 * record of the log and of the three indexes, known from the start. */
START_TEST(test_progress)
{
	progress p;
	char dir[PATH_MAX];
	uint64_t records;

	build();
	/* a record, a stream entry and an id per event; a time entry per
	 * commit; the event index's entries */
	records = 3 * EVENTS + tu_mdb_count(kit_dir, "time") + tu_mdb_count(kit_dir, "index");
	ck_assert_uint_eq(verify_progress(kit_dir, 5, &p), 0);
	ck_assert(p.monotonic);
	ck_assert_uint_eq(p.total, records);
	ck_assert_uint_eq(p.done, records);
	ck_assert_uint_eq(p.calls, (records + 4) / 5); /* every 5th, then the rest */
	/* every 1: a call per record */
	ck_assert_uint_eq(verify_progress(kit_dir, 1, &p), 0);
	ck_assert(p.monotonic);
	ck_assert_uint_eq(p.calls, records);
	ck_assert_uint_eq(p.done, records);
	/* the default (65536): one call, at the end */
	ck_assert_uint_eq(verify_progress(kit_dir, 0, &p), 0);
	ck_assert_uint_eq(p.calls, 1);
	ck_assert_uint_eq(p.done, records);
	/* a damaged store: problems still counted, progress still ends at the
	 * total (one time entry fewer) */
	tu_mdb_del_nth(kit_dir, "time", 5, NULL, 0);
	ck_assert_uint_gt(verify_progress(kit_dir, 7, &p), 0);
	ck_assert(p.monotonic);
	ck_assert_uint_eq(p.total, records - 1);
	ck_assert_uint_eq(p.done, records - 1);
	/* an empty store: one call, 0 of 0 */
	tu_path(dir, sizeof dir, "empty");
	evs_close(tu_open(dir, NULL));
	ck_assert_uint_eq(verify_progress(dir, 5, &p), 0);
	ck_assert_uint_eq(p.calls, 1);
	ck_assert_uint_eq(p.done, 0);
	ck_assert_uint_eq(p.total, 0);
	/* NULL options: evs_verify's behaviour */
	evs_store *st = tu_open(kit_dir, NULL);
	uint64_t problems = 0;
	tu_ok(st, evs_verify_ex(st, NULL, &problems));
	ck_assert_uint_gt(problems, 0);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_healthy,
		test_event_id_deleted,
		test_event_id_repointed,
		test_stream_entry_deleted,
		test_stream_last_entry_deleted,
		test_time_entry_deleted,
		test_time_last_entry_deleted,
		test_index_entry_deleted,
		test_record_garbled,
		test_record_deleted,
		test_record_in_the_middle_deleted,
		test_stream_count_wrong,
		test_progress,
		NULL,
	};

	return kit_main("store-verify", 600, tests);
}
