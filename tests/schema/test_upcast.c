/*
 * test_upcast.c - events read in their type's latest version: a chain
 * v1 -> v2 -> v3 of declarative steps, a C hook for v3 -> v4, reads with
 * evs_iter_upcast(), and the stored bytes unchanged.
 */
#include <string.h>

#include "kit.h"
#include "kit_store.h"

static const char *docs[] = {
	"{\"type\":\"Paid\",\"version\":1,\"schema\":{\"type\":\"object\",\"required\":[\"amt\"],"
	"\"properties\":{\"amt\":{\"type\":\"integer\"},\"note\":{\"type\":\"string\"}}}}",
	/* v2: amt -> euros, currency added, note removed */
	"{\"type\":\"Paid\",\"version\":2,\"schema\":{\"type\":\"object\","
	"\"required\":[\"euros\",\"currency\"],\"additionalProperties\":false,"
	"\"properties\":{\"euros\":{\"type\":\"integer\"},\"currency\":{\"type\":\"string\"}}},"
	"\"upcast\":[{\"op\":\"rename\",\"from\":\"amt\",\"to\":\"euros\"},"
	"{\"op\":\"add\",\"field\":\"currency\",\"value\":\"EUR\"},"
	"{\"op\":\"remove\",\"field\":\"note\"}]}",
	/* v3: euros -> cents (x100), ref converted to a string */
	"{\"type\":\"Paid\",\"version\":3,\"schema\":{\"type\":\"object\","
	"\"required\":[\"cents\",\"currency\"],\"additionalProperties\":false,"
	"\"properties\":{\"cents\":{\"type\":\"integer\"},\"currency\":{\"type\":\"string\"},"
	"\"ref\":{\"type\":\"string\"}}},"
	"\"upcast\":[{\"op\":\"convert\",\"field\":\"euros\",\"rule\":{\"multiply\":100}},"
	"{\"op\":\"rename\",\"from\":\"euros\",\"to\":\"cents\"},"
	"{\"op\":\"convert\",\"field\":\"ref\",\"rule\":\"to-string\"}]}",
};

static evs_store *setup(int versions)
{
	evs_options o;
	tu_options(&o, EVS_SYNC_NONE);
	evs_store *st = tu_open(kit_dir, &o);
	for (int i = 0; i < versions; i++)
		tu_ok(st, evs_schema_add(st, docs[i], strlen(docs[i])));
	return st;
}

static void append_json(evs_store *st, uint32_t version, const char *json)
{
	msgpack_sbuffer sb;
	evs_event_in ev = {.type = "Paid", .type_version = version};
	kit_json_to_mp(&sb, json);
	ev.data = sb.data;
	ev.data_len = sb.size;
	tu_ok(st, evs_append(st, "p", EVS_ANY, &ev, 1, NULL));
	msgpack_sbuffer_destroy(&sb);
}

/* Read stream "p" (upcast or not) as "v<version> <json>" lines. */
static void read_all(evs_store *st, int upcast, char out[][256], size_t *n)
{
	evs_iter *it;
	evs_event e;
	int rc;

	*n = 0;
	tu_ok(st, evs_read_stream(st, "p", 1, EVS_FORWARD, 0, &it));
	if (upcast)
		tu_ok(st, evs_iter_upcast(it, 1));
	while ((rc = evs_iter_next(it, &e)) == EVS_OK) {
		char *t = kit_mp_text(e.data, e.data_len);
		snprintf(out[(*n)++], 256, "v%u %s", e.type_version, t);
		free(t);
	}
	ck_assert_msg(rc == EVS_END, "%s", evs_errmsg(st));
	evs_iter_free(it);
}

START_TEST(test_chain)
{
	evs_store *st = setup(1);
	char got[8][256];
	size_t n;

	append_json(st, 0, "{\"amt\":12,\"note\":\"hi\",\"ref\":7}");
	tu_ok(st, evs_schema_add(st, docs[1], strlen(docs[1])));
	append_json(st, 0, "{\"euros\":3,\"currency\":\"SEK\"}");
	tu_ok(st, evs_schema_add(st, docs[2], strlen(docs[2])));
	append_json(st, 0, "{\"cents\":99,\"currency\":\"EUR\",\"ref\":\"r1\"}");

	read_all(st, 1, got, &n);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(got[0], "v3 {\"cents\"=>1200, \"ref\"=>\"7\", \"currency\"=>\"EUR\"}");
	ck_assert_str_eq(got[1], "v3 {\"cents\"=>300, \"currency\"=>\"SEK\"}");
	ck_assert_str_eq(got[2], "v3 {\"cents\"=>99, \"currency\"=>\"EUR\", \"ref\"=>\"r1\"}");

	/* the stored bytes are unchanged */
	read_all(st, 0, got, &n);
	ck_assert_str_eq(got[0], "v1 {\"amt\"=>12, \"note\"=>\"hi\", \"ref\"=>7}");
	ck_assert_str_eq(got[1], "v2 {\"euros\"=>3, \"currency\"=>\"SEK\"}");
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

static int v4_hook(void *ctx, const evs_event *ev, evs_sink *out)
{
	msgpack_packer pk;
	int *calls = ctx;
	(*calls)++;
	ck_assert_uint_eq(ev->type_version, 3);
	/* v4: {"total": {"cents": .., "currency": ..}} from the v3 map */
	msgpack_packer_init(&pk, out, evs_sink_write);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "total", 5);
	if (evs_sink_write(out, ev->data, ev->data_len) != 0)
		return EVS_NOMEM;
	return EVS_OK;
}

START_TEST(test_hook)
{
	evs_store *st = setup(3);
	const char *v4 = "{\"type\":\"Paid\",\"version\":4,\"schema\":{\"type\":\"object\"},"
			 "\"upcast\":\"hook\"}";
	char got[8][256];
	size_t n;
	int calls = 0;

	append_json(st, 1, "{\"amt\":1}");
	tu_ok(st, evs_schema_add(st, v4, strlen(v4)));

	/* no hook registered: the read fails and says why */
	evs_iter *it;
	evs_event e;
	tu_ok(st, evs_read_stream(st, "p", 1, EVS_FORWARD, 0, &it));
	tu_ok(st, evs_iter_upcast(it, 1));
	tu_assert_rc(st, evs_iter_next(it, &e), EVS_UNKNOWN_TYPE);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "needs a C upcaster from version 3"));
	evs_iter_free(it);

	tu_ok(st, evs_upcaster_register(st, "Paid", 3, v4_hook, &calls));
	read_all(st, 1, got, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(got[0], "v4 {\"total\"=>{\"cents\"=>100, \"currency\"=>\"EUR\"}}");
	ck_assert_int_eq(calls, 1);

	/* evs_upcast directly, as an aggregate's apply() would */
	evs_upcaster *u;
	tu_ok(st, evs_upcaster_new(st, &u));
	tu_ok(st, evs_read_stream(st, "p", 1, EVS_FORWARD, 0, &it));
	tu_ok(st, evs_iter_next(it, &e));
	evs_event up;
	tu_ok(st, evs_upcast(u, &e, &up));
	ck_assert_uint_eq(up.type_version, 4);
	ck_assert_uint_eq(up.position, e.position);
	/* already latest: unchanged */
	evs_event again;
	tu_ok(st, evs_upcast(u, &up, &again));
	ck_assert_ptr_eq(again.data, up.data);
	evs_iter_free(it);
	evs_upcaster_free(u);
	evs_close(st);
}
END_TEST

START_TEST(test_convert_rules)
{
	evs_store *st = setup(1);
	const char *v2 = "{\"type\":\"Paid\",\"version\":2,\"schema\":{\"type\":\"object\"},"
			 "\"upcast\":[{\"op\":\"convert\",\"field\":\"a\",\"rule\":\"to-integer\"},"
			 "{\"op\":\"convert\",\"field\":\"b\",\"rule\":\"to-number\"},"
			 "{\"op\":\"convert\",\"field\":\"c\",\"rule\":\"to-string\"}]}";
	char got[8][256];
	size_t n;

	append_json(st, 1, "{\"amt\":1,\"a\":\"42\",\"b\":3,\"c\":true}");
	append_json(st, 1, "{\"amt\":1,\"a\":\"x\"}");
	append_json(st, 1, "{\"amt\":1,\"c\":0.1}");
	tu_ok(st, evs_schema_add(st, v2, strlen(v2)));
	evs_iter *it;
	evs_event e;
	tu_ok(st, evs_read_stream(st, "p", 1, EVS_FORWARD, 0, &it));
	tu_ok(st, evs_iter_upcast(it, 1));
	tu_ok(st, evs_iter_next(it, &e));
	char *t = kit_mp_text(e.data, e.data_len);
	ck_assert_str_eq(t, "{\"amt\"=>1, \"a\"=>42, \"b\"=>3.000000, \"c\"=>\"true\"}");
	free(t);
	/* a step that does not fit the data is an error naming the event */
	tu_assert_rc(st, evs_iter_next(it, &e), EVS_CORRUPT);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "position 2"));
	evs_iter_free(it);
	/* a double becomes its shortest text: "0.1", not "0.10000000000000001" */
	tu_ok(st, evs_read_stream(st, "p", 3, EVS_FORWARD, 0, &it));
	tu_ok(st, evs_iter_upcast(it, 1));
	tu_ok(st, evs_iter_next(it, &e));
	t = kit_mp_text(e.data, e.data_len);
	ck_assert_str_eq(t, "{\"amt\"=>1, \"c\"=>\"0.1\"}");
	free(t);
	evs_iter_free(it);
	(void)got;
	(void)n;
	evs_close(st);
}
END_TEST

/* An aggregate whose apply() folds events upcast to the latest version:
 * the sum of "cents" over a stream written in versions 1, 2 and 3. */
typedef struct sum_ctx {
	evs_store *st;
	evs_upcaster *u;
} sum_ctx;

static int sum_apply(void *ctx, void *state, const evs_event *ev)
{
	sum_ctx *c = ctx;
	evs_event up;
	int rc = evs_upcast(c->u, ev, &up);
	msgpack_unpacked m;

	if (rc != EVS_OK)
		return rc;
	ck_assert_uint_eq(up.type_version, 3);
	msgpack_unpacked_init(&m);
	ck_assert(msgpack_unpack_next(&m, up.data, up.data_len, NULL) == MSGPACK_UNPACK_SUCCESS);
	for (uint32_t i = 0; i < m.data.via.map.size; i++) {
		msgpack_object_kv *kv = &m.data.via.map.ptr[i];
		if (kv->key.via.str.size == 5 && memcmp(kv->key.via.str.ptr, "cents", 5) == 0)
			*(int64_t *)state += kv->val.via.i64;
	}
	msgpack_unpacked_destroy(&m);
	return EVS_OK;
}

START_TEST(test_aggregate)
{
	evs_store *st = setup(1);
	sum_ctx c = {.st = st};
	evs_aggregate_def def = {
		.name = "paid-sum", .state_size = sizeof(int64_t), .ctx = &c, .apply = sum_apply};
	evs_aggregate *agg;
	int64_t sum = 0;

	append_json(st, 0, "{\"amt\":2}");
	tu_ok(st, evs_schema_add(st, docs[1], strlen(docs[1])));
	append_json(st, 0, "{\"euros\":3,\"currency\":\"EUR\"}");
	tu_ok(st, evs_schema_add(st, docs[2], strlen(docs[2])));
	append_json(st, 0, "{\"cents\":7,\"currency\":\"EUR\"}");
	tu_ok(st, evs_upcaster_new(st, &c.u));
	tu_ok(st, evs_aggregate_new(st, &def, &agg));
	tu_ok(st, evs_aggregate_load(agg, "p", NULL, &sum, NULL));
	ck_assert_int_eq(sum, 507);
	evs_aggregate_release(agg, &sum);
	evs_aggregate_free(agg);
	evs_upcaster_free(c.u);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_chain, test_hook, test_convert_rules, test_aggregate, NULL,
	};

	return kit_main("schema-upcast", 600, tests);
}
