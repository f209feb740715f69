/*
 * test_merge_patch.c - the generic aggregate's RFC 7386 merge patch on
 * msgpack: the RFC's own examples (Appendix A), random targets and patches
 * against an independent implementation on json-c objects, folds long
 * enough to compact the state's memory, and bad input.
 */
#include <json-c/json.h>
#include <string.h>

#include "kit_store.h"

/* ---- JSON <-> msgpack ---------------------------------------------------- */

static void to_mp(tu_mp *m, json_object *v)
{
	tu_mp_init(m);
	kit_pack_json(&m->pk, v);
}

static json_object *from_obj(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: return NULL;
	case MSGPACK_OBJECT_BOOLEAN: return json_object_new_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER: return json_object_new_int64((int64_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_object_new_int64(o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: return json_object_new_double(o->via.f64);
	case MSGPACK_OBJECT_STR:
		return json_object_new_string_len(o->via.str.ptr, (int)o->via.str.size);
	case MSGPACK_OBJECT_ARRAY: {
		json_object *a = json_object_new_array();
		for (uint32_t i = 0; i < o->via.array.size; i++)
			json_object_array_add(a, from_obj(&o->via.array.ptr[i]));
		return a;
	}
	case MSGPACK_OBJECT_MAP: {
		json_object *m = json_object_new_object();
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			ck_assert_int_eq(kv->key.type, MSGPACK_OBJECT_STR);
			char key[64];
			ck_assert_uint_lt(kv->key.via.str.size, sizeof key);
			memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
			key[kv->key.via.str.size] = 0;
			/* a duplicate key in the output would be a bug */
			ck_assert_msg(!json_object_object_get_ex(m, key, NULL), "duplicate key %s",
				      key);
			json_object_object_add(m, key, from_obj(&kv->val));
		}
		return m;
	}
	default: ck_abort_msg("unexpected msgpack type %d", o->type);
	}
	return NULL;
}

static json_object *from_mp(const void *p, size_t n)
{
	msgpack_unpacked u;
	size_t off = 0;

	msgpack_unpacked_init(&u);
	ck_assert_int_eq(msgpack_unpack_next(&u, p, n, &off), MSGPACK_UNPACK_SUCCESS);
	ck_assert_uint_eq(off, n);
	json_object *j = from_obj(&u.data);
	msgpack_unpacked_destroy(&u);
	return j;
}

static json_object *parse(const char *text)
{
	enum json_tokener_error err;
	json_object *v = json_tokener_parse_verbose(text, &err);
	ck_assert_msg(v != NULL || strcmp(text, "null") == 0, "bad JSON in the test: %s", text);
	return v;
}

/* JSON null is NULL in json-c; equal handles it. */
static bool same(json_object *a, json_object *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return json_object_equal(a, b);
}

static const char *text(json_object *v)
{
	return v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "null";
}

/* ---- the oracle: RFC 7386 section 2 on json-c ---------------------------- */

static json_object *copy(json_object *v)
{
	json_object *c = NULL;
	if (v == NULL)
		return NULL;
	ck_assert_int_eq(json_object_deep_copy(v, &c, NULL), 0);
	return c;
}

static json_object *oracle(json_object *target, json_object *patch)
{
	if (!json_object_is_type(patch, json_type_object) || patch == NULL)
		return copy(patch);
	json_object *res = target && json_object_is_type(target, json_type_object)
				   ? copy(target)
				   : json_object_new_object();
	json_object_object_foreach(patch, k, v)
	{
		if (v == NULL) {
			json_object_object_del(res, k);
		} else {
			json_object *cur = NULL;
			json_object_object_get_ex(res, k, &cur);
			json_object_object_add(res, k, oracle(cur, v));
		}
	}
	return res;
}

/* ---- RFC 7386 Appendix A ------------------------------------------------- */

static const char *const rfc[][3] = {
	{"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
	{"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
	{"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
	{"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
	{"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
	{"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
	{"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
	{"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
	{"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
	{"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
	{"{\"a\":\"foo\"}", "null", "null"},
	{"{\"a\":\"foo\"}", "\"bar\"", "\"bar\""},
	{"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
	{"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
	{"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
	/* and the section 1 example */
	{"{\"title\":\"Goodbye!\",\"author\":{\"givenName\":\"John\",\"familyName\":\"Doe\"},"
	 "\"tags\":[\"example\",\"sample\"],\"content\":\"This will be unchanged\"}",
	 "{\"title\":\"Hello!\",\"phoneNumber\":\"+01-123-456-7890\",\"author\":{"
	 "\"familyName\":null},\"tags\":[\"example\"]}",
	 "{\"title\":\"Hello!\",\"author\":{\"givenName\":\"John\"},\"tags\":[\"example\"],"
	 "\"content\":\"This will be unchanged\",\"phoneNumber\":\"+01-123-456-7890\"}"},
};

START_TEST(test_rfc_examples)
{
	for (size_t i = 0; i < sizeof rfc / sizeof rfc[0]; i++) {
		json_object *t = parse(rfc[i][0]), *p = parse(rfc[i][1]), *want = parse(rfc[i][2]);
		tu_mp tm, pm;
		evs_state out;

		to_mp(&tm, t);
		to_mp(&pm, p);
		ck_assert_int_eq(
			evs_merge_patch(tm.sb.data, tm.sb.size, pm.sb.data, pm.sb.size, &out),
			EVS_OK);
		json_object *got = from_mp(out.data, out.len);
		ck_assert_msg(same(got, want), "example %zu: %s + %s = %s, want %s", i, rfc[i][0],
			      rfc[i][1], text(got), rfc[i][2]);
		json_object *o = oracle(t, p);
		ck_assert_msg(same(o, want), "the oracle fails example %zu", i);
		/* kept keys keep their place, new ones follow */
		if (i == 12)
			ck_assert_mem_eq(out.data,
					 "\x82\xa1"
					 "e"
					 "\xc0\xa1"
					 "a"
					 "\x01",
					 7);
		json_object_put(o);
		json_object_put(got);
		evs_state_free(&out);
		tu_mp_destroy(&tm);
		tu_mp_destroy(&pm);
		json_object_put(t);
		json_object_put(p);
		json_object_put(want);
	}
}
END_TEST

/* ---- random --------------------------------------------------------------- */

static json_object *rand_json(uint64_t *r, int depth, bool want_object)
{
	static const char *const keys[] = {"a", "b", "c", "d", "e", "f"};
	uint64_t k = want_object ? 9 : kit_rand_range(r, 0, 9);

	if (k < 2)
		return NULL;
	if (k < 3)
		return json_object_new_boolean(kit_rand_range(r, 0, 1) != 0);
	if (k < 5)
		return json_object_new_int64((int64_t)kit_rand_range(r, 0, 200) - 100);
	if (k < 6) {
		char s[4] = {(char)('x' + kit_rand_range(r, 0, 2)), 0};
		return json_object_new_string(s);
	}
	if (k < 7 || depth >= 4) {
		json_object *a = json_object_new_array();
		uint64_t n = kit_rand_range(r, 0, 2);
		for (uint64_t i = 0; i < n; i++)
			json_object_array_add(a, json_object_new_int64((int64_t)i));
		return a;
	}
	json_object *o = json_object_new_object();
	uint64_t n = kit_rand_range(r, 0, 4);
	for (uint64_t i = 0; i < n; i++)
		json_object_object_add(o, keys[kit_rand_range(r, 0, 5)],
				       rand_json(r, depth + 1, false));
	return o;
}

START_TEST(test_random_against_oracle)
{
	uint64_t r;
	uint64_t seed = r = kit_seed("merge patch vs oracle");

	for (int i = 0; i < 3000; i++) {
		json_object *t =
			kit_rand_range(&r, 0, 9) ? rand_json(&r, 0, true) : rand_json(&r, 0, false);
		json_object *p = rand_json(&r, 0, kit_rand_range(&r, 0, 4) != 0);
		tu_mp tm, pm;
		evs_state out;

		to_mp(&tm, t);
		to_mp(&pm, p);
		ck_assert_int_eq(
			evs_merge_patch(tm.sb.data, tm.sb.size, pm.sb.data, pm.sb.size, &out),
			EVS_OK);
		json_object *got = from_mp(out.data, out.len), *want = oracle(t, p);
		ck_assert_msg(same(got, want), "seed %llu case %d: %s + %s = %s, oracle %s",
			      (unsigned long long)seed, i, text(t), text(p), text(got), text(want));
		/* no target at all: like an absent member */
		evs_state_free(&out);
		ck_assert_int_eq(evs_merge_patch(NULL, 0, pm.sb.data, pm.sb.size, &out), EVS_OK);
		json_object_put(got);
		json_object_put(want);
		got = from_mp(out.data, out.len);
		want = oracle(NULL, p);
		ck_assert_msg(same(got, want), "seed %llu case %d: (none) + %s = %s, oracle %s",
			      (unsigned long long)seed, i, text(p), text(got), text(want));
		json_object_put(got);
		json_object_put(want);
		evs_state_free(&out);
		tu_mp_destroy(&tm);
		tu_mp_destroy(&pm);
		json_object_put(t);
		json_object_put(p);
	}
}
END_TEST

/* A stream's generic state is the oracle's fold of its data maps. */
START_TEST(test_stream_fold)
{
	uint64_t r;
	uint64_t seed = r = kit_seed("stream fold vs oracle");
	evs_options o;
	tu_options(&o, EVS_SYNC_NONE);
	evs_store *st = tu_open(kit_dir, &o);
	json_object *want = json_object_new_object();

	for (int i = 0; i < 400; i++) {
		json_object *p = rand_json(&r, 0, true);
		tu_mp pm;
		evs_event_in ev;
		to_mp(&pm, p);
		tu_event(&ev, "Patched", &pm, NULL);
		tu_ok(st, evs_append(st, "doc", EVS_ANY, &ev, 1, NULL));
		json_object *next = oracle(want, p);
		json_object_put(want);
		want = next;
		tu_mp_destroy(&pm);
		json_object_put(p);
		if (i % 50 == 0)
			tu_ok(st, evs_state_snapshot(st, "doc"));
		if (i % 7 == 0) {
			evs_state s;
			tu_ok(st, evs_state_load(st, "doc", NULL, &s));
			ck_assert_uint_eq(s.version, (uint64_t)i + 1);
			json_object *got = from_mp(s.data, s.len);
			ck_assert_msg(same(got, want), "seed %llu after %d events: %s, oracle %s",
				      (unsigned long long)seed, i + 1, text(got), text(want));
			json_object_put(got);
			evs_state_free(&s);
		}
	}
	json_object_put(want);
	evs_close(st);
}
END_TEST

/* Thousands of large replacements: the state's zone is compacted many
 * times; the result must be the last values (ASan checks the rest). */
START_TEST(test_long_fold_compacts)
{
	evs_options o;
	tu_options(&o, EVS_SYNC_NONE);
	evs_store *st = tu_open(kit_dir, &o);
	char big[2048];
	const int n = 3000;

	for (int i = 0; i < n; i++) {
		tu_mp m;
		evs_event_in ev;
		memset(big, 'a' + i % 26, sizeof big);
		tu_mp_init(&m);
		msgpack_pack_map(&m.pk, 3);
		tu_mp_str(&m, "big");
		msgpack_pack_str(&m.pk, sizeof big);
		msgpack_pack_str_body(&m.pk, big, sizeof big);
		tu_mp_str(&m, "n");
		tu_mp_int(&m, i);
		char key[16];
		snprintf(key, sizeof key, "k%d", i % 300); /* a 300-key map too */
		tu_mp_str(&m, key);
		tu_mp_int(&m, i);
		tu_event(&ev, "Patched", &m, NULL);
		tu_ok(st, evs_append(st, "long", EVS_ANY, &ev, 1, NULL));
		tu_mp_destroy(&m);
	}
	evs_state s;
	tu_ok(st, evs_state_load(st, "long", NULL, &s));
	ck_assert_uint_eq(s.version, (uint64_t)n);
	json_object *got = from_mp(s.data, s.len), *v;
	ck_assert_int_eq(json_object_object_length(got), 302);
	ck_assert(json_object_object_get_ex(got, "n", &v));
	ck_assert_int_eq(json_object_get_int64(v), n - 1);
	ck_assert(json_object_object_get_ex(got, "big", &v));
	ck_assert_int_eq(json_object_get_string_len(v), (int)sizeof big);
	ck_assert_int_eq(json_object_get_string(v)[0], 'a' + (n - 1) % 26);
	ck_assert(json_object_object_get_ex(got, "k7", &v));
	ck_assert_int_eq(json_object_get_int64(v), n - 300 + 7);
	json_object_put(got);
	evs_state_free(&s);

	/* as of the middle, from a snapshot taken at the end: not used */
	tu_ok(st, evs_state_snapshot(st, "long"));
	evs_at at = {.kind = EVS_AT_POSITION, .position = 1500};
	tu_ok(st, evs_state_load(st, "long", &at, &s));
	ck_assert_uint_eq(s.version, 1500);
	got = from_mp(s.data, s.len);
	ck_assert(json_object_object_get_ex(got, "n", &v));
	ck_assert_int_eq(json_object_get_int64(v), 1499);
	json_object_put(got);
	evs_state_free(&s);
	evs_state_free(NULL);
	evs_close(st);
}
END_TEST

START_TEST(test_bad_input)
{
	evs_state out;
	const uint8_t map[] = {0x81, 0xa1, 'a', 0x01};

	ck_assert_int_eq(evs_merge_patch(map, sizeof map, "\xc1", 1, &out), EVS_BAD_DATA);
	ck_assert_ptr_null(out.data);
	ck_assert_int_eq(evs_merge_patch("\x81\xa1", 2, map, sizeof map, &out), EVS_BAD_DATA);
	ck_assert_int_eq(evs_merge_patch(map, sizeof map, "\x80\x80", 2, &out), EVS_BAD_DATA);
	ck_assert_int_eq(evs_merge_patch(NULL, 3, map, sizeof map, &out), EVS_INVALID);
	ck_assert_int_eq(evs_merge_patch(map, sizeof map, NULL, 0, &out), EVS_INVALID);
	ck_assert_int_eq(evs_merge_patch(map, sizeof map, map, sizeof map, NULL), EVS_INVALID);
	/* non-JSON msgpack is fine: bin values, integer keys */
	const uint8_t t[] = {0x81, 0x01, 0xc4, 0x01, 0xff};
	const uint8_t p[] = {0x82, 0x01, 0xc0, 0x02, 0xc4, 0x00};
	ck_assert_int_eq(evs_merge_patch(t, sizeof t, p, sizeof p, &out), EVS_OK);
	ck_assert_uint_eq(out.len, 4);
	ck_assert_mem_eq(out.data, "\x81\x02\xc4\x00", 4);
	evs_state_free(&out);

	evs_options o;
	tu_options(&o, EVS_SYNC_NONE);
	evs_store *st = tu_open(kit_dir, &o);
	tu_assert_rc(st, evs_state_load(st, "", NULL, &out), EVS_BAD_STREAM);
	tu_assert_rc(st, evs_state_load(st, "x", NULL, NULL), EVS_INVALID);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_rfc_examples, test_random_against_oracle,
		test_stream_fold,  test_long_fold_compacts,
		test_bad_input,    NULL,
	};

	return kit_main("aggregate-merge-patch", 600, tests);
}
