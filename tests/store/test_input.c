/*
 * test_input.c - bad input is refused with its own code, a message naming
 * the event's index, and nothing written; boundaries are accepted.
 */
#include <string.h>

#include "kit_store.h"

#define BATCH  10
#define BAD_AT 5

/* Store state that a refused append must leave unchanged. */
typedef struct snapshot {
	uint64_t last_position;
	uint64_t streams;
	uint64_t version; /* of "victim" */
} snapshot;

static snapshot take(evs_store *st)
{
	snapshot s;
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	s.last_position = h.last_position;
	s.streams = h.streams;
	evs_stream_info sh;
	int rc = evs_stream_head(st, "victim", &sh);
	ck_assert(rc == EVS_OK || rc == EVS_NOT_FOUND);
	s.version = sh.version;
	return s;
}

static void same(evs_store *st, snapshot a)
{
	snapshot b = take(st);
	ck_assert_uint_eq(a.last_position, b.last_position);
	ck_assert_uint_eq(a.streams, b.streams);
	ck_assert_uint_eq(a.version, b.version);
	tu_ev *evs;
	size_t n = tu_read_all(st, &evs);
	ck_assert_uint_eq(n, a.last_position);
	tu_evs_free(evs, n);
}

/* 10 valid events (ids tu_id(tag, i)), data {"i": i}, metadata {"m": i}. */
typedef struct batch {
	evs_event_in ev[BATCH];
	tu_mp data[BATCH], meta[BATCH];
} batch;

static void batch_init(batch *b, uint64_t tag)
{
	for (size_t i = 0; i < BATCH; i++) {
		tu_mp_init(&b->data[i]);
		tu_mp_init(&b->meta[i]);
		tu_mp_map_ints(&b->data[i], 1, "i", (long long)i);
		tu_mp_map_ints(&b->meta[i], 1, "m", (long long)i);
		tu_event(&b->ev[i], "Valid", &b->data[i], &b->meta[i]);
		tu_id(b->ev[i].id, tag, i);
	}
}

static void batch_destroy(batch *b)
{
	for (size_t i = 0; i < BATCH; i++) {
		tu_mp_destroy(&b->data[i]);
		tu_mp_destroy(&b->meta[i]);
	}
}

static void ids_absent(evs_store *st, uint64_t tag)
{
	for (size_t i = 0; i < BATCH; i++) {
		uint8_t id[16];
		uint64_t pos;
		tu_id(id, tag, i);
		tu_assert_rc(st, evs_find_id(st, id, &pos), EVS_NOT_FOUND);
	}
}

static char long_name[EVS_MAX_NAME + 2];
static char max_name[EVS_MAX_NAME + 1];

static const uint8_t bad_c1[] = {0xc1};
static const uint8_t arr[] = {0x92, 0x01, 0x02};
static const uint8_t scalar[] = {0x2a};
static const uint8_t nil[] = {0xc0};
static const uint8_t str[] = {0xa1, 'x'};
static const uint8_t trunc_pairs[] = {0x82, 0xa1, 'a', 0x01};    /* 2 pairs, 1 given */
static const uint8_t trunc_str[] = {0x81, 0xa5, 'a', 'b', 0x01}; /* str of 5, 2 given */
static const uint8_t trunc_key[] = {0x81, 0xa1};                 /* key body missing */
static const uint8_t trunc_head[] = {0xde, 0x00};                /* map16, length cut */
static const uint8_t trunc_bin32[] = {0x81, 0xa1, 'a', 0xc6, 0xff, 0xff, 0xff, 0xff, 0x00};
static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a'}; /* 4G pairs */
static const uint8_t huge_arr[] = {0x81, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
static const uint8_t trailing[] = {0x81, 0xa1, 'a', 0x01, 0x01};
static const uint8_t two_maps[] = {0x80, 0x80};
static const uint8_t c1_inside[] = {0x81, 0xa1, 'a', 0xc1};
/* strings must be valid UTF-8 without NUL, keys and values alike */
static const uint8_t nul_value[] = {0x81, 0xa1, 'a', 0xa3, 'x', 0x00, 'y'};
static const uint8_t bad_utf8_value[] = {0x81, 0xa1, 'a', 0xa1, 0xff};
static const uint8_t bad_utf8_key[] = {0x81, 0xa2, 0xc0, 0xaf, 0x01}; /* overlong '/' */
static const uint8_t surrogate_str8[] = {0x81, 0xa1, 'a', 0xd9, 0x03, 0xed, 0xa0, 0x80};
static const uint8_t cut_utf8[] = {0x81, 0xa1, 'a', 0xa2, 0xe2, 0x82}; /* 3-byte char cut */

typedef struct payload_case {
	const char *name;
	const uint8_t *bytes;
	size_t len;
} payload_case;

/* clang-format off */
#define PC(n) {#n, n, sizeof n}
/* clang-format on */
static const payload_case bad_payloads[] = {
	PC(bad_c1),
	PC(arr),
	PC(scalar),
	PC(nil),
	PC(str),
	PC(trunc_pairs),
	PC(trunc_str),
	PC(trunc_key),
	PC(trunc_head),
	PC(trunc_bin32),
	PC(huge_map),
	PC(huge_arr),
	PC(trailing),
	PC(two_maps),
	PC(c1_inside),
	PC(nul_value),
	PC(bad_utf8_value),
	PC(bad_utf8_key),
	PC(surrogate_str8),
	PC(cut_utf8),
};
#define NBAD (sizeof bad_payloads / sizeof bad_payloads[0])

static void setup_names(void)
{
	memset(long_name, 'n', EVS_MAX_NAME + 1);
	long_name[EVS_MAX_NAME + 1] = 0;
	memset(max_name, 'n', EVS_MAX_NAME);
	max_name[EVS_MAX_NAME] = 0;
}

/* Check one refused append: code, message names the index, nothing
 * written, none of the batch's ids stored. */
static void refused(evs_store *st, const char *stream, batch *b, size_t n, int code, long bad_index,
		    uint64_t tag, const char *what)
{
	snapshot s = take(st);
	evs_append_result r;
	memset(&r, 0x55, sizeof r);
	int rc = evs_append(st, stream, EVS_ANY, b->ev, n, &r);
	ck_assert_msg(rc == code, "%s: got %s, want %s (%s)", what, evs_code_name(rc),
		      evs_code_name(code), evs_errmsg(st));
	const char *msg = evs_errmsg(st);
	ck_assert_msg(msg != NULL && *msg != '\0', "%s: no message", what);
	if (bad_index >= 0)
		ck_assert_msg(tu_has_number(msg, (unsigned long long)bad_index),
			      "%s: message does not name event %ld: \"%s\"", what, bad_index, msg);
	same(st, s);
	ids_absent(st, tag);
}

static void prefill(evs_store *st)
{
	tu_ok(st, tu_append_simple(st, "victim", EVS_NO_STREAM, "Before", 3, 0, 0, NULL));
}

START_TEST(test_bad_stream_ids)
{
	setup_names();
	evs_store *st = tu_open(kit_dir, NULL);
	prefill(st);
	batch b;
	batch_init(&b, 0xb1);

	char utf_long[EVS_MAX_NAME + 2];
	memset(utf_long, 'u', EVS_MAX_NAME - 1);
	memcpy(utf_long + EVS_MAX_NAME - 1, "\xc3\xa9", 3); /* 256 bytes, ends in é */

	const char *bad[] = {
		"",
		long_name,
		utf_long,
		"\xff",
		"ab\xc3",           /* truncated sequence */
		"\xc0\xaf",         /* overlong '/' */
		"\xe0\x80\xaf",     /* overlong, 3 bytes */
		"\xed\xa0\x80",     /* UTF-16 surrogate */
		"\xf4\x90\x80\x80", /* beyond U+10FFFF */
		"a\x80z",           /* lone continuation */
		"\xf8\x88\x80\x80\x80",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char what[32];
		snprintf(what, sizeof what, "stream case %zu", i);
		refused(st, bad[i], &b, BATCH, EVS_BAD_STREAM, -1, 0xb1, what);
		refused(st, bad[i], &b, 1, EVS_BAD_STREAM, -1, 0xb1, what);
	}
	/* NULL stream */
	snapshot s = take(st);
	evs_append_result r;
	int rc = evs_append(st, NULL, EVS_ANY, b.ev, 1, &r);
	ck_assert_msg(rc == EVS_BAD_STREAM || rc == EVS_INVALID, "NULL stream: %s",
		      evs_code_name(rc));
	same(st, s);

	/* the boundaries are accepted */
	char utf_max[EVS_MAX_NAME + 1];
	memset(utf_max, 'u', EVS_MAX_NAME - 2);
	memcpy(utf_max + EVS_MAX_NAME - 2, "\xc3\xa9", 3); /* 255 bytes */
	const char *good[] = {max_name, utf_max, "a", "\xf0\x9f\x98\x80 emoji", "\xef\xbf\xbf"};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		tu_ok(st, evs_append(st, good[i], EVS_NO_STREAM, b.ev + i, 1, &r));
		ck_assert_uint_eq(r.version, 1);
		tu_ev *evs;
		evs_iter *it;
		tu_ok(st, evs_read_stream(st, good[i], 1, EVS_FORWARD, 0, &it));
		size_t n = tu_drain(st, it, &evs);
		ck_assert_uint_eq(n, 1);
		ck_assert(tu_str_eq(evs[0].ev.stream, good[i]));
		tu_evs_free(evs, n);
	}
	batch_destroy(&b);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

START_TEST(test_bad_types)
{
	setup_names();
	evs_store *st = tu_open(kit_dir, NULL);
	prefill(st);
	batch b;
	batch_init(&b, 0xb2);
	const char *bad[] = {"", long_name, "\xff", "T\xc0\xaf", "\xed\xa0\x80"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char what[32];
		snprintf(what, sizeof what, "type case %zu", i);
		b.ev[BAD_AT].type = bad[i];
		refused(st, "victim", &b, BATCH, EVS_BAD_TYPE, BAD_AT, 0xb2, what);
		/* on a new stream too */
		refused(st, "fresh", &b, BATCH, EVS_BAD_TYPE, BAD_AT, 0xb2, what);
	}
	b.ev[BAD_AT].type = NULL;
	refused(st, "victim", &b, BATCH, EVS_BAD_TYPE, BAD_AT, 0xb2, "NULL type");
	/* first and last event too */
	b.ev[BAD_AT].type = "Valid";
	b.ev[0].type = "";
	refused(st, "victim", &b, BATCH, EVS_BAD_TYPE, 0, 0xb2, "first");
	b.ev[0].type = "Valid";
	b.ev[BATCH - 1].type = "";
	refused(st, "victim", &b, BATCH, EVS_BAD_TYPE, BATCH - 1, 0xb2, "last");

	/* a 255-byte type is fine */
	b.ev[BATCH - 1].type = max_name;
	evs_append_result r;
	tu_ok(st, evs_append(st, "victim", 3, b.ev, BATCH, &r));
	ck_assert_uint_eq(r.first_position, 4);
	ck_assert_uint_eq(r.version, 3 + BATCH);
	batch_destroy(&b);
	evs_close(st);
}
END_TEST

START_TEST(test_bad_data_and_metadata)
{
	evs_store *st = tu_open(kit_dir, NULL);
	prefill(st);
	batch b;
	batch_init(&b, 0xb3);
	for (size_t i = 0; i < NBAD; i++) {
		char what[64];
		const payload_case *pc = &bad_payloads[i];

		snprintf(what, sizeof what, "data %s", pc->name);
		b.ev[BAD_AT].data = pc->bytes;
		b.ev[BAD_AT].data_len = pc->len;
		refused(st, "victim", &b, BATCH, EVS_BAD_DATA, BAD_AT, 0xb3, what);
		b.ev[BAD_AT].data = b.data[BAD_AT].sb.data;
		b.ev[BAD_AT].data_len = b.data[BAD_AT].sb.size;

		snprintf(what, sizeof what, "metadata %s", pc->name);
		b.ev[BAD_AT].metadata = pc->bytes;
		b.ev[BAD_AT].metadata_len = pc->len;
		refused(st, "victim", &b, BATCH, EVS_BAD_METADATA, BAD_AT, 0xb3, what);
		b.ev[BAD_AT].metadata = b.meta[BAD_AT].sb.data;
		b.ev[BAD_AT].metadata_len = b.meta[BAD_AT].sb.size;
	}
	/* a non-NULL pointer with 0 bytes is no map */
	b.ev[2].data_len = 0;
	refused(st, "victim", &b, BATCH, EVS_BAD_DATA, 2, 0xb3, "empty data");
	b.ev[2].data_len = b.data[2].sb.size;
	b.ev[7].metadata_len = 0;
	refused(st, "victim", &b, BATCH, EVS_BAD_METADATA, 7, 0xb3, "empty metadata");
	b.ev[7].metadata_len = b.meta[7].sb.size;
	/* a valid map cut short by a length smaller than the buffer */
	b.ev[BAD_AT].data_len = b.data[BAD_AT].sb.size - 1;
	refused(st, "victim", &b, BATCH, EVS_BAD_DATA, BAD_AT, 0xb3, "short data_len");
	b.ev[BAD_AT].data_len = b.data[BAD_AT].sb.size;

	/* the batch as it is now is valid */
	evs_append_result r;
	tu_ok(st, evs_append(st, "victim", 3, b.ev, BATCH, &r));
	ck_assert_uint_eq(r.first_position, 4);
	batch_destroy(&b);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

/* A map nesting `levels` maps in total: {"k": {"k": ... {}}}. */
static void nested(tu_mp *m, int levels)
{
	for (int i = 1; i < levels; i++) {
		msgpack_pack_map(&m->pk, 1);
		tu_mp_str(m, "k");
	}
	msgpack_pack_map(&m->pk, 0);
}

START_TEST(test_nesting_depth)
{
	evs_store *st = tu_open(kit_dir, NULL);
	evs_event_in ev;
	tu_mp m;
	evs_append_result r;

	tu_mp_init(&m);
	nested(&m, EVS_MAX_DEPTH);
	tu_event(&ev, "Deep", &m, NULL);
	tu_ok(st, evs_append(st, "deep", EVS_ANY, &ev, 1, &r));
	tu_event(&ev, "Deep", NULL, &m);
	tu_ok(st, evs_append(st, "deep", EVS_ANY, &ev, 1, &r));

	tu_mp_reset(&m);
	nested(&m, EVS_MAX_DEPTH + 1);
	tu_event(&ev, "Deep", &m, NULL);
	tu_assert_rc(st, evs_append(st, "deep", EVS_ANY, &ev, 1, &r), EVS_BAD_DATA);
	tu_event(&ev, "Deep", NULL, &m);
	tu_assert_rc(st, evs_append(st, "deep", EVS_ANY, &ev, 1, &r), EVS_BAD_METADATA);

	/* a nesting bomb of arrays (no stack overflow, just a refusal) */
	tu_mp_reset(&m);
	msgpack_pack_map(&m.pk, 1);
	tu_mp_str(&m, "a");
	for (int i = 0; i < 100000; i++)
		msgpack_pack_array(&m.pk, 1);
	msgpack_pack_nil(&m.pk);
	tu_event(&ev, "Deep", &m, NULL);
	tu_assert_rc(st, evs_append(st, "deep", EVS_ANY, &ev, 1, &r), EVS_BAD_DATA);

	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 2);
	tu_mp_destroy(&m);
	evs_close(st);
}
END_TEST

START_TEST(test_every_msgpack_type_accepted)
{
	evs_store *st = tu_open(kit_dir, NULL);
	tu_mp m;
	tu_mp_init(&m);
	msgpack_pack_map(&m.pk, 14);
	tu_mp_str(&m, "nil");
	msgpack_pack_nil(&m.pk);
	tu_mp_str(&m, "t");
	msgpack_pack_true(&m.pk);
	tu_mp_str(&m, "neg");
	msgpack_pack_int64(&m.pk, INT64_MIN);
	tu_mp_str(&m, "big");
	msgpack_pack_uint64(&m.pk, UINT64_MAX);
	tu_mp_str(&m, "f32");
	msgpack_pack_float(&m.pk, 1.25f);
	tu_mp_str(&m, "f64");
	msgpack_pack_double(&m.pk, -2.5);
	tu_mp_str(&m, "bin");
	msgpack_pack_bin(&m.pk, 3);
	msgpack_pack_bin_body(&m.pk, "\0\1\2", 3);
	tu_mp_str(&m, "ext");
	msgpack_pack_ext(&m.pk, 4, 7);
	msgpack_pack_ext_body(&m.pk, "abcd", 4);
	tu_mp_str(&m, "fixext1");
	msgpack_pack_ext(&m.pk, 1, -1);
	msgpack_pack_ext_body(&m.pk, "z", 1);
	tu_mp_str(&m, "ext300");
	{
		char body[300];
		memset(body, 'e', sizeof body);
		msgpack_pack_ext(&m.pk, sizeof body, 3);
		msgpack_pack_ext_body(&m.pk, body, sizeof body);
	}
	tu_mp_str(&m, "arr");
	msgpack_pack_array(&m.pk, 2);
	msgpack_pack_int(&m.pk, 1);
	tu_mp_str(&m, "x");
	tu_mp_str(&m, "map");
	tu_mp_map_ints(&m, 1, "y", 2LL);
	msgpack_pack_int(&m.pk, 5);
	msgpack_pack_int(&m.pk, 6); /* non-string key */
	tu_mp_str(&m, "str300");
	{
		char s[301];
		memset(s, 's', 300);
		s[300] = 0;
		tu_mp_str(&m, s);
	}
	evs_event_in ev;
	tu_event(&ev, "AllTypes", &m, &m);
	evs_append_result r;
	tu_ok(st, evs_append(st, "types", EVS_ANY, &ev, 1, &r));
	tu_ev *evs;
	size_t n = tu_read_all(st, &evs);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(evs[0].ev.data_len, m.sb.size);
	ck_assert_mem_eq(evs[0].ev.data, m.sb.data, m.sb.size);
	ck_assert_mem_eq(evs[0].ev.metadata, m.sb.data, m.sb.size);
	tu_evs_free(evs, n);

	/* map16 and map32 headers for small maps are valid msgpack too */
	static const uint8_t map16[] = {0xde, 0x00, 0x01, 0xa1, 'a', 0x01};
	static const uint8_t map32[] = {0xdf, 0x00, 0x00, 0x00, 0x00};
	ev.data = map16;
	ev.data_len = sizeof map16;
	ev.metadata = map32;
	ev.metadata_len = sizeof map32;
	tu_ok(st, evs_append(st, "types", EVS_ANY, &ev, 1, &r));
	tu_mp_destroy(&m);
	evs_close(st);
}
END_TEST

START_TEST(test_event_size_limit)
{
	evs_options o;
	evs_options_init(&o);
	o.max_event_size = 1024;
	evs_store *st = tu_open(kit_dir, &o);
	prefill(st);
	batch b;
	batch_init(&b, 0xb4);
	static const uint8_t empty[] = {0x80};
	tu_mp big;
	tu_mp_init(&big);

	/* data + metadata = 1025 bytes: one too many */
	tu_mp_blob_map(&big, 1024 - 9, 1); /* 1 + 5 + 3 + n bytes */
	ck_assert_uint_eq(big.sb.size, 1024);
	b.ev[BAD_AT].data = big.sb.data;
	b.ev[BAD_AT].data_len = big.sb.size;
	b.ev[BAD_AT].metadata = empty;
	b.ev[BAD_AT].metadata_len = 1;
	refused(st, "victim", &b, BATCH, EVS_EVENT_TOO_LARGE, BAD_AT, 0xb4, "1025 bytes");
	/* the other way round */
	b.ev[BAD_AT].data = empty;
	b.ev[BAD_AT].data_len = 1;
	b.ev[BAD_AT].metadata = big.sb.data;
	b.ev[BAD_AT].metadata_len = big.sb.size;
	refused(st, "victim", &b, BATCH, EVS_EVENT_TOO_LARGE, BAD_AT, 0xb4, "1025 bytes (meta)");

	/* 1024 bytes: fits exactly */
	tu_mp_reset(&big);
	tu_mp_blob_map(&big, 1023 - 9, 2);
	ck_assert_uint_eq(big.sb.size, 1023);
	b.ev[BAD_AT].data = big.sb.data;
	b.ev[BAD_AT].data_len = big.sb.size;
	b.ev[BAD_AT].metadata = empty;
	b.ev[BAD_AT].metadata_len = 1;
	evs_append_result r;
	tu_ok(st, evs_append(st, "victim", 3, b.ev, BATCH, &r));
	ck_assert_uint_eq(r.first_position, 4);
	tu_ev *evs;
	size_t n = tu_read_all(st, &evs);
	ck_assert_uint_eq(n, 3 + BATCH);
	ck_assert_uint_eq(evs[3 + BAD_AT].ev.data_len, 1023);
	ck_assert_mem_eq(evs[3 + BAD_AT].ev.data, big.sb.data, 1023);
	tu_evs_free(evs, n);
	tu_mp_destroy(&big);
	batch_destroy(&b);
	evs_close(st);
}
END_TEST

START_TEST(test_event_size_default_limit)
{
	evs_store *st = tu_open(kit_dir, NULL);
	tu_mp big;
	tu_mp_init(&big);
	/* 1 (fixmap) + 5 ("blob") + 5 (bin32 header) + n bytes */
	tu_mp_blob_map(&big, EVS_DEFAULT_MAX_EVENT + 1 - 11, 3);
	ck_assert_uint_eq(big.sb.size, EVS_DEFAULT_MAX_EVENT + 1);
	evs_event_in ev;
	tu_event(&ev, "Big", &big, NULL);
	evs_append_result r;
	tu_assert_rc(st, evs_append(st, "big", EVS_ANY, &ev, 1, &r), EVS_EVENT_TOO_LARGE);
	tu_mp_reset(&big);
	tu_mp_blob_map(&big, EVS_DEFAULT_MAX_EVENT - 1 - 11, 4);
	ck_assert_uint_eq(big.sb.size, EVS_DEFAULT_MAX_EVENT - 1);
	ev.data = big.sb.data;
	ev.data_len = big.sb.size;
	tu_ok(st, evs_append(st, "big", EVS_ANY, &ev, 1, &r));
	ck_assert_uint_eq(r.first_position, 1);
	tu_mp_destroy(&big);
	evs_close(st);
}
END_TEST

START_TEST(test_batch_limits)
{
	evs_options o;
	evs_options_init(&o);
	o.max_batch = BATCH - 1;
	evs_store *st = tu_open(kit_dir, &o);
	prefill(st);
	batch b;
	batch_init(&b, 0xb5);
	refused(st, "victim", &b, BATCH, EVS_BATCH_TOO_LARGE, -1, 0xb5, "max_batch + 1");
	refused(st, "victim", &b, 0, EVS_EMPTY_BATCH, -1, 0xb5, "n = 0");
	snapshot s = take(st);
	evs_append_result r;
	tu_assert_rc(st, evs_append(st, "victim", EVS_ANY, NULL, 0, &r), EVS_EMPTY_BATCH);
	tu_assert_rc(st, evs_append(st, "victim", EVS_ANY, NULL, 3, &r), EVS_INVALID);
	same(st, s);
	tu_ok(st, evs_append(st, "victim", 3, b.ev, BATCH - 1, &r));
	ck_assert_uint_eq(r.last_position, 3 + BATCH - 1);
	batch_destroy(&b);
	evs_close(st);
}
END_TEST

START_TEST(test_default_batch_limit)
{
	evs_store *st = tu_open(kit_dir, NULL);
	size_t n = EVS_DEFAULT_MAX_BATCH + 1;
	evs_event_in *evs = calloc(n, sizeof *evs);
	ck_assert_ptr_nonnull(evs);
	for (size_t i = 0; i < n; i++)
		evs[i].type = "Many";
	evs_append_result r;
	tu_assert_rc(st, evs_append(st, "many", EVS_ANY, evs, n, &r), EVS_BATCH_TOO_LARGE);
	tu_ok(st, evs_append(st, "many", EVS_NO_STREAM, evs, n - 1, &r));
	ck_assert_uint_eq(r.first_position, 1);
	ck_assert_uint_eq(r.last_position, EVS_DEFAULT_MAX_BATCH);
	ck_assert_uint_eq(r.version, EVS_DEFAULT_MAX_BATCH);
	free(evs);
	evs_close(st);
}
END_TEST

START_TEST(test_refusals_burn_nothing)
{
	/* after many refusals of every kind, positions still start at 1 */
	evs_store *st = tu_open(kit_dir, NULL);
	batch b;
	batch_init(&b, 0xb6);
	evs_append_result r;
	b.ev[3].type = "";
	tu_assert_rc(st, evs_append(st, "s", EVS_ANY, b.ev, BATCH, &r), EVS_BAD_TYPE);
	b.ev[3].type = "Valid";
	b.ev[4].data = bad_c1;
	b.ev[4].data_len = 1;
	tu_assert_rc(st, evs_append(st, "s", EVS_ANY, b.ev, BATCH, &r), EVS_BAD_DATA);
	b.ev[4].data = b.data[4].sb.data;
	b.ev[4].data_len = b.data[4].sb.size;
	tu_assert_rc(st, evs_append(st, "s", 4, b.ev, BATCH, &r), EVS_WRONG_VERSION);
	memcpy(b.ev[9].id, b.ev[1].id, 16);
	tu_assert_rc(st, evs_append(st, "s", EVS_ANY, b.ev, BATCH, &r), EVS_ID_CONFLICT);
	tu_id(b.ev[9].id, 0xb6, 9);
	tu_ok(st, evs_append(st, "s", EVS_NO_STREAM, b.ev, BATCH, &r));
	ck_assert_uint_eq(r.first_position, 1);
	ck_assert_uint_eq(r.last_position, BATCH);
	ck_assert_uint_eq(r.version, BATCH);
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.streams, 1);
	batch_destroy(&b);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_bad_stream_ids,
		test_bad_types,
		test_bad_data_and_metadata,
		test_nesting_depth,
		test_every_msgpack_type_accepted,
		test_event_size_limit,
		test_event_size_default_limit,
		test_batch_limits,
		test_default_batch_limit,
		test_refusals_burn_nothing,
		NULL,
	};

	return kit_main("store-input", 600, tests);
}
