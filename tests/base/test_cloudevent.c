/*
 * test_cloudevent.c - the CloudEvents 1.0 envelope (store/base/cloudevent.h)
 * checked against the spec's JSON format: the exact text of a full event
 * and of a minimal one, valid JSON (read back by the base's reader), every
 * attribute name lowercase alphanumeric of at most 20 characters and never
 * "data" besides the data member, the required attributes present, the
 * product's number policy inside data, and refusals that leave the buffer
 * as it was.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <check.h>
#include <msgpack.h>

#include "cloudevent.h"
#include "mpjson.h"

static int buf_write(void *data, const char *p, size_t n)
{
	evs__buf_putn(data, p, n);
	return 0;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/* {"amount": 1.0, "big": 18446744073709551615, "name": "Zoë \"q\""} */
static void payload(evs__buf *mp)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, mp, buf_write);
	msgpack_pack_map(&pk, 3);
	pack_str(&pk, "amount");
	msgpack_pack_double(&pk, 1.0);
	pack_str(&pk, "big");
	msgpack_pack_uint64(&pk, UINT64_MAX);
	pack_str(&pk, "name");
	pack_str(&pk, "Zo\xc3\xab \"q\"");
}

/* sorted by bytes, as the store hands them out: a comma and a quote
 * inside a tag, and a multibyte one */
static const evs_str full_tags[] = {{"account:42", 10}, {"note:\"a,b\"", 10}, {"z\xc3\xbcrich", 7}};

static void full_event(evs_event *ev, evs__buf *mp)
{
	memset(ev, 0, sizeof *ev);
	payload(mp);
	ev->position = 4294967296ULL; /* past the spec's 32-bit Integer */
	ev->version = 7;
	ev->stream = (evs_str){"account-1", 9};
	ev->type = (evs_str){"deposited", 9};
	ev->type_version = 2;
	for (int i = 0; i < 16; i++) {
		ev->id[i] = (uint8_t)(0x01 + i * 0x11);
		ev->correlation_id[i] = (uint8_t)(0xa0 + i);
		ev->causation_id[i] = (uint8_t)i;
	}
	ev->recorded_at = 1714566896000000123LL; /* 2024-05-01T12:34:56.000000123Z */
	ev->occurred_at = 1714566000000000000LL;
	ev->data = mp->ptr;
	ev->data_len = mp->len;
	ev->producer = (evs_str){"billing", 7};
	ev->tags = full_tags;
	ev->ntags = 3;
}

static const char full_text[] =
	"{\"specversion\":\"1.0\",\"id\":\"01122334-4556-6778-899a-abbccddeef00\","
	"\"source\":\"urn:evstore:/var/lib/bank\",\"type\":\"deposited\","
	"\"subject\":\"account-1\",\"time\":\"2024-05-01T12:34:56.000000123Z\","
	"\"datacontenttype\":\"application/json\",\"position\":\"4294967296\","
	"\"streamversion\":\"7\",\"typeversion\":\"2\","
	"\"correlationid\":\"a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf\","
	"\"causationid\":\"00010203-0405-0607-0809-0a0b0c0d0e0f\","
	"\"occurredat\":\"2024-05-01T12:20:00.000000000Z\","
	"\"producer\":\"billing\","
	"\"tags\":\"[\\\"account:42\\\",\\\"note:\\\\\\\"a,b\\\\\\\"\\\",\\\"z\xc3\xbcrich\\\"]\","
	"\"data\":{\"amount\":1.0,\"big\":18446744073709551615,\"name\":\"Zo\xc3\xab \\\"q\\\"\"}}";

START_TEST(full)
{
	evs__buf mp = {0}, out = {0};
	evs_event ev;

	full_event(&ev, &mp);
	evs__buf_puts(&out, "data: "); /* appends after what is there */
	ck_assert_int_eq(evs__cloudevent_json(&ev, "urn:evstore:/var/lib/bank", &out), EVS_OK);
	ck_assert(evs__buf_cstr(&out));
	ck_assert_str_eq(out.ptr + 6, full_text);
	ck_assert(strncmp(out.ptr, "data: ", 6) == 0);
	evs__buf_free(&out);
	evs__buf_free(&mp);
}
END_TEST

START_TEST(minimal)
{
	evs_event ev;
	evs__buf out = {0};
	static const char empty_map[] = {(char)0x80};

	memset(&ev, 0, sizeof ev);
	ev.position = 1;
	ev.version = 1;
	ev.stream = (evs_str){"s", 1};
	ev.type = (evs_str){"t", 1};
	ev.type_version = 1;
	ev.id[15] = 1;
	ev.recorded_at = 1;
	ev.data = empty_map;
	ev.data_len = 1;
	ck_assert_int_eq(evs__cloudevent_json(&ev, "/x", &out), EVS_OK);
	ck_assert(evs__buf_cstr(&out));
	ck_assert_str_eq(out.ptr,
			 "{\"specversion\":\"1.0\",\"id\":\"00000000-0000-0000-0000-000000000001\","
			 "\"source\":\"/x\",\"type\":\"t\",\"subject\":\"s\","
			 "\"time\":\"1970-01-01T00:00:00.000000001Z\","
			 "\"datacontenttype\":\"application/json\",\"position\":\"1\","
			 "\"streamversion\":\"1\",\"typeversion\":\"1\",\"data\":{}}");
	evs__buf_free(&out);
}
END_TEST

/* The object's member names, walking the msgpack read back from the
 * JSON text: valid JSON, the required attributes present, every name
 * [a-z0-9]{1,20}, data only as the data member. */
START_TEST(spec_rules)
{
	evs__buf mp = {0}, out = {0}, back = {0};
	msgpack_unpacked u;
	evs_event ev;
	bool seen_id = false, seen_source = false, seen_spec = false, seen_type = false;
	char err[200];

	full_event(&ev, &mp);
	ck_assert_int_eq(evs__cloudevent_json(&ev, "urn:evstore:x", &out), EVS_OK);
	ck_assert_int_eq(
		evs__json_to_msgpack(out.ptr, out.len, &back, EVS__JSON_STRICT, err, sizeof err),
		0);
	msgpack_unpacked_init(&u);
	ck_assert(msgpack_unpack_next(&u, back.ptr, back.len, NULL) == MSGPACK_UNPACK_SUCCESS);
	ck_assert_int_eq(u.data.type, MSGPACK_OBJECT_MAP);
	for (uint32_t i = 0; i < u.data.via.map.size; i++) {
		msgpack_object k = u.data.via.map.ptr[i].key;
		msgpack_object v = u.data.via.map.ptr[i].val;
		char name[64];

		ck_assert_int_eq(k.type, MSGPACK_OBJECT_STR);
		ck_assert(k.via.str.size >= 1 && k.via.str.size <= 20);
		memcpy(name, k.via.str.ptr, k.via.str.size);
		name[k.via.str.size] = '\0';
		for (size_t j = 0; name[j]; j++)
			ck_assert_msg(islower((unsigned char)name[j]) ||
					      isdigit((unsigned char)name[j]),
				      "attribute name \"%s\"", name);
		if (strcmp(name, "data") == 0) {
			ck_assert_int_eq(v.type, MSGPACK_OBJECT_MAP);
			continue;
		}
		/* every context attribute is a string here (no Integer
		 * outside 32 bits, no native type to guess) */
		ck_assert_msg(v.type == MSGPACK_OBJECT_STR, "attribute \"%s\"", name);
		ck_assert(v.via.str.size > 0);
		seen_id |= strcmp(name, "id") == 0;
		seen_source |= strcmp(name, "source") == 0;
		seen_type |= strcmp(name, "type") == 0;
		if (strcmp(name, "specversion") == 0) {
			seen_spec = true;
			ck_assert(v.via.str.size == 3 && memcmp(v.via.str.ptr, "1.0", 3) == 0);
		}
	}
	ck_assert(seen_id && seen_source && seen_spec && seen_type);
	msgpack_unpacked_destroy(&u);
	evs__buf_free(&back);
	evs__buf_free(&out);
	evs__buf_free(&mp);
}
END_TEST

START_TEST(refusals)
{
	evs__buf mp = {0}, out = {0};
	evs_event ev;
	static const char broken[] = {(char)0x82, (char)0xa1, 'a'}; /* truncated map */

	full_event(&ev, &mp);
	evs__buf_puts(&out, "keep");
	ck_assert_int_eq(evs__cloudevent_json(NULL, "s", &out), EVS_INVALID);
	ck_assert_int_eq(evs__cloudevent_json(&ev, NULL, &out), EVS_INVALID);
	ck_assert_int_eq(evs__cloudevent_json(&ev, "", &out), EVS_INVALID);
	ck_assert_int_eq(evs__cloudevent_json(&ev, "bad\xff", &out), EVS_INVALID);
	ck_assert_int_eq(evs__cloudevent_json(&ev, "s", NULL), EVS_INVALID);
	ck_assert_uint_eq(out.len, 4);
	ev.data = broken;
	ev.data_len = sizeof broken;
	ck_assert_int_eq(evs__cloudevent_json(&ev, "s", &out), EVS_BAD_DATA);
	ck_assert_uint_eq(out.len, 4);
	ck_assert(!out.oom);
	/* a limit too small: NOMEM, the buffer as it was, usable again */
	ev.data = mp.ptr;
	ev.data_len = mp.len;
	out.limit = 64;
	ck_assert_int_eq(evs__cloudevent_json(&ev, "s", &out), EVS_NOMEM);
	ck_assert_uint_eq(out.len, 4);
	ck_assert(!out.oom);
	evs__buf_puts(&out, "!");
	ck_assert(evs__buf_cstr(&out));
	ck_assert_str_eq(out.ptr, "keep!");
	evs__buf_free(&out);
	evs__buf_free(&mp);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("base");
	TCase *tc = tcase_create("cloudevent");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, full);
	tcase_add_test(tc, minimal);
	tcase_add_test(tc, spec_rules);
	tcase_add_test(tc, refusals);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
