/*
 * test_index.c - record format 3: tags and producer on append and on
 * every read path, their input checks, idempotent retries, and the
 * upgrade of a format 2 store (built here through raw LMDB: format key 2,
 * version 1 records, no "index" sub-database), read-only refusal included.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kit_store.h"
#include "tu_lmdb.h"

static int tags_are(const evs_event *ev, size_t n, ...)
{
	va_list ap;
	int ok = ev->ntags == n;

	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		const char *t = va_arg(ap, const char *);
		if (ok && !tu_str_eq(ev->tags[i], t))
			ok = 0;
	}
	va_end(ap);
	return ok;
}

START_TEST(test_tags_round_trip)
{
	evs_store *st = tu_open(kit_dir, NULL);
	const char *tags[] = {"course:c1", "account:42", "b"};
	evs_event_in in[2];
	memset(in, 0, sizeof in);
	in[0].type = "Enrolled";
	in[0].tags = tags;
	in[0].ntags = 3;
	in[0].producer = "enrolment-service";
	in[1].type = "Plain";
	tu_id(in[0].id, 0x7a, 1);
	tu_id(in[1].id, 0x7a, 2);
	evs_append_result res;
	tu_ok(st, evs_append(st, "student-1", EVS_ANY, in, 2, &res));

	evs_iter *it;
	evs_event ev;
	tu_ok(st, evs_read_all(st, 0, EVS_FORWARD, NULL, 0, &it));
	tu_ok(st, evs_iter_next(it, &ev));
	ck_assert(tags_are(&ev, 3, "account:42", "b", "course:c1"));
	ck_assert(tu_str_eq(ev.producer, "enrolment-service"));
	tu_ok(st, evs_iter_next(it, &ev));
	ck_assert_uint_eq(ev.ntags, 0);
	ck_assert_uint_eq(ev.producer.len, 0);
	evs_iter_free(it);

	tu_ok(st, evs_read_stream(st, "student-1", 1, EVS_FORWARD, 1, &it));
	tu_ok(st, evs_iter_next(it, &ev));
	ck_assert(tags_are(&ev, 3, "account:42", "b", "course:c1"));
	evs_iter_free(it);

	evs_sub *sub;
	tu_ok(st, evs_subscribe(st, 0, NULL, &sub));
	tu_ok(st, evs_sub_next(sub, &ev, 5000));
	ck_assert(tags_are(&ev, 3, "account:42", "b", "course:c1"));
	ck_assert(tu_str_eq(ev.producer, "enrolment-service"));
	evs_sub_close(sub);

	/* an exact retry is idempotent (tag order does not matter) ... */
	const char *again[] = {"b", "course:c1", "account:42"};
	in[0].tags = again;
	evs_append_result r2;
	tu_ok(st, evs_append(st, "student-1", EVS_ANY, in, 2, &r2));
	ck_assert_int_eq(r2.idempotent, 1);
	/* ... other tags or another producer are other content */
	in[0].ntags = 2;
	tu_assert_rc(st, evs_append(st, "student-1", EVS_ANY, in, 2, &r2), EVS_ID_CONFLICT);
	in[0].ntags = 3;
	in[0].producer = "other";
	tu_assert_rc(st, evs_append(st, "student-1", EVS_ANY, in, 2, &r2), EVS_ID_CONFLICT);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

/* Every bad tag set is refused, the message names the event and the tag. */
START_TEST(test_tags_refused)
{
	evs_store *st = tu_open(kit_dir, NULL);
	char longtag[EVS_MAX_TAG + 2];
	memset(longtag, 'x', sizeof longtag - 1);
	longtag[sizeof longtag - 1] = 0;
	const char *many[EVS_MAX_TAGS + 1];
	char names[EVS_MAX_TAGS + 1][8];
	for (int i = 0; i <= EVS_MAX_TAGS; i++) {
		snprintf(names[i], sizeof names[i], "t%d", i);
		many[i] = names[i];
	}
	const struct {
		const char *tags[3];
		size_t n;
		const char *want;
	} cases[] = {
		{{"a", ""}, 2, "event 1: tag 1 is empty"},
		{{"a", longtag}, 2, "event 1: tag 1 is longer than 255 bytes"},
		{{"\xff\xfe"}, 1, "event 1: tag 0 is not valid UTF-8"},
		{{"a", "b", "a"}, 3, "event 1: tag 2 \"a\" repeats tag 0"},
		{{"a", NULL}, 2, "event 1: tag 1 is NULL"},
	};
	evs_event_in in[2];
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		memset(in, 0, sizeof in);
		in[0].type = in[1].type = "T";
		in[1].tags = cases[c].tags;
		in[1].ntags = cases[c].n;
		tu_assert_rc(st, evs_append(st, "s", EVS_ANY, in, 2, NULL), EVS_INVALID);
		ck_assert_msg(strstr(evs_errmsg(st), cases[c].want) != NULL, "%s: got \"%s\"",
			      cases[c].want, evs_errmsg(st));
	}
	/* exactly the limit passes, one more does not */
	memset(in, 0, sizeof in);
	in[0].type = "T";
	in[0].tags = many;
	in[0].ntags = EVS_MAX_TAGS;
	tu_ok(st, evs_append(st, "s", EVS_ANY, in, 1, NULL));
	in[0].ntags = EVS_MAX_TAGS + 1;
	tu_assert_rc(st, evs_append(st, "s", EVS_ANY, in, 1, NULL), EVS_INVALID);
	ck_assert_msg(strstr(evs_errmsg(st), "event 0: 17 tags, the limit is 16"), "%s",
		      evs_errmsg(st));
	in[0].ntags = 1;
	in[0].tags = NULL;
	tu_assert_rc(st, evs_append(st, "s", EVS_ANY, in, 1, NULL), EVS_INVALID);
	in[0].ntags = 0;
	in[0].producer = "";
	tu_assert_rc(st, evs_append(st, "s", EVS_ANY, in, 1, NULL), EVS_INVALID);
	ck_assert_msg(strstr(evs_errmsg(st), "event 0: producer is empty"), "%s", evs_errmsg(st));
	in[0].producer = longtag;
	tu_assert_rc(st, evs_append(st, "s", EVS_ANY, in, 1, NULL), EVS_INVALID);
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 1);
	evs_close(st);
}
END_TEST

/* Turn the store in kit_dir into a format 2 store: version 1 records
 * (untagged events only), format 2, no index, no separator. */
static void make_format2(uint64_t events)
{
	for (uint64_t p = 1; p <= events; p++) {
		uint8_t k[8];
		size_t n;
		tu_put_u64(k, p);
		uint8_t *v = tu_mdb_get(kit_dir, "events", k, 8, &n);
		ck_assert_ptr_nonnull(v);
		/* version 2 ends with an empty tag array and a nil producer */
		ck_assert(v[0] == 0x9e && v[1] == 2 && v[n - 2] == 0x90 && v[n - 1] == 0xc0);
		v[0] = 0x9c;
		v[1] = 1;
		tu_mdb_put(kit_dir, "events", k, 8, v, n - 2);
		free(v);
	}
	const uint8_t v2[4] = {0, 0, 0, 2};
	tu_mdb_put(kit_dir, "meta", "format", 6, v2, 4);
	tu_mdb_del(kit_dir, "meta", "category_separator", 18);
	tu_mdb_drop(kit_dir, "index");
}

static size_t count_type(evs_store *st, const char *type)
{
	const char *types[] = {type};
	evs_filter f = {.types = types, .ntypes = 1};
	evs_iter *it;
	tu_ev *evs;
	tu_ok(st, evs_read_all(st, 0, EVS_FORWARD, &f, 0, &it));
	size_t n = tu_drain(st, it, &evs);
	tu_evs_free(evs, n);
	return n;
}

START_TEST(test_format2_upgraded)
{
	evs_store *st = tu_open(kit_dir, NULL);
	tu_ok(st, tu_append_simple(st, "acc-1", EVS_ANY, "Opened", 3, 0x11, 0, NULL));
	tu_ok(st, tu_append_simple(st, "acc-2", EVS_ANY, "Closed", 4, 0x12, 0, NULL));
	tu_ok(st, evs_checkpoint_set(st, "x", 1)); /* a journal checkpoint at the end */
	evs_close(st);
	make_format2(7);

	/* read-only: refused, the message says how to upgrade */
	evs_options o;
	evs_options_init(&o);
	o.read_only = 1;
	tu_assert_rc(NULL, evs_open(kit_dir, &o, &st), EVS_FORMAT);
	const char *msg = evs_open_errmsg();
	ck_assert_msg(strstr(msg, "format version 2") && strstr(msg, "no event indexes") &&
			      strstr(msg, "open it read-write once to upgrade it to version 3"),
		      "%s", msg);

	/* an interrupted build (stopped after two transactions of 2 events)
	 * resumes on the next open */
	setenv("EVS_INDEX_BUILD_BATCH", "2", 1);
	setenv("EVS_TEST_INDEX_BUILD_STOP", "2", 1);
	ck_assert_int_ne(evs_open(kit_dir, NULL, &st), EVS_OK);
	unsetenv("EVS_TEST_INDEX_BUILD_STOP");
	size_t n;
	uint8_t *built = tu_mdb_get(kit_dir, "meta", "index_built", 11, &n);
	ck_assert_ptr_nonnull(built);
	ck_assert_uint_eq(tu_get_u64(built), 4);
	free(built);
	uint8_t *fmt = tu_mdb_get(kit_dir, "meta", "format", 6, &n);
	ck_assert_uint_eq(fmt[3], 2);
	free(fmt);

	st = tu_open(kit_dir, NULL);
	unsetenv("EVS_INDEX_BUILD_BATCH");
	ck_assert_uint_eq(tu_verify(st), 0);
	ck_assert_uint_eq(count_type(st, "Opened"), 3);
	ck_assert_uint_eq(count_type(st, "Closed"), 4);
	/* old records read with no tags and no producer */
	tu_ev *evs;
	n = tu_read_all(st, &evs);
	ck_assert_uint_eq(n, 7);
	for (size_t i = 0; i < n; i++)
		ck_assert(evs[i].ev.ntags == 0 && evs[i].ev.producer.len == 0);
	tu_evs_free(evs, n);
	/* a retry of an event stored in format 2 is still idempotent */
	evs_append_result r;
	tu_ok(st, tu_append_simple(st, "acc-1", EVS_ANY, "Opened", 3, 0x11, 0, &r));
	ck_assert_int_eq(r.idempotent, 1);
	evs_close(st);
	fmt = tu_mdb_get(kit_dir, "meta", "format", 6, &n);
	ck_assert_uint_eq(fmt[3], 3);
	free(fmt);
	ck_assert_ptr_null(tu_mdb_get(kit_dir, "meta", "index_built", 11, &n));

	/* and now read-only opens work */
	tu_ok(NULL, evs_open(kit_dir, &o, &st));
	ck_assert_uint_eq(count_type(st, "Closed"), 4);
	evs_close(st);
}
END_TEST

/* evs_restore writes tags, producer and index entries back as stored. */
START_TEST(test_restore_tags)
{
	char other[8192];
	evs_store *st = tu_open(kit_dir, NULL);
	const char *tags[] = {"z", "a"};
	evs_event_in in = {.type = "T", .tags = tags, .ntags = 2, .producer = "p"};
	tu_ok(st, evs_append(st, "c-1", EVS_ANY, &in, 1, NULL));
	tu_ev *evs;
	size_t n = tu_read_all(st, &evs);
	evs_close(st);

	tu_path(other, sizeof other, "copy");
	st = tu_open(other, NULL);
	tu_ok(st, evs_restore(st, &evs[0].ev, 1));
	const char *want[] = {"a"};
	evs_filter f = {.tags = want, .ntags = 1};
	evs_iter *it;
	tu_ok(st, evs_read_all(st, 0, EVS_FORWARD, &f, 0, &it));
	tu_ev *got;
	ck_assert_uint_eq(tu_drain(st, it, &got), 1);
	ck_assert(tags_are(&got[0].ev, 2, "a", "z"));
	ck_assert(tu_str_eq(got[0].ev.producer, "p"));
	tu_evs_free(got, 1);
	ck_assert_uint_eq(tu_verify(st), 0);
	/* a repeated tag is refused there too */
	evs_str dup[2] = {{"a", 1}, {"a", 1}};
	evs[0].ev.tags = dup;
	evs[0].ev.position = 2;
	evs[0].ev.version = 2;
	evs[0].ev.id[15] ^= 1;
	tu_assert_rc(st, evs_restore(st, &evs[0].ev, 1), EVS_INVALID);
	ck_assert_msg(strstr(evs_errmsg(st), "event 0: tag 1 repeats tag 0"), "%s", evs_errmsg(st));
	evs_close(st);
	tu_evs_free(evs, n);
}
END_TEST

START_TEST(test_category_separator)
{
	evs_options o;
	evs_options_init(&o);
	o.category_separator = ':';
	evs_store *st = tu_open(kit_dir, &o);
	evs_close(st);
	/* 0 takes the store's; another is refused */
	st = tu_open(kit_dir, NULL);
	evs_close(st);
	o.category_separator = '-';
	tu_assert_rc(NULL, evs_open(kit_dir, &o, &st), EVS_INVALID);
	ck_assert_msg(strstr(evs_open_errmsg(), "category separator is ':'"), "%s",
		      evs_open_errmsg());
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_tags_round_trip,    test_tags_refused, test_format2_upgraded,
		test_category_separator, test_restore_tags, NULL,
	};

	return kit_main("store-index", 600, tests);
}
