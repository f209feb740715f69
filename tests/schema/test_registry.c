/*
 * test_registry.c - the registry inside the store and validation on
 * append: add/check/get/list, versions and compatibility, a refused batch
 * naming the event's index, path and rule and writing nothing, the
 * store's setting for unknown types, and a schema added through one
 * handle seen by another.
 */
#include <pthread.h>
#include <string.h>

#include "kit.h"
#include "kit_store.h"

#define DEP_V1                                                                   \
	"{\"type\":\"Deposited\",\"version\":1,\"schema\":{\"type\":\"object\"," \
	"\"required\":[\"amount\"],\"additionalProperties\":false,"              \
	"\"properties\":{\"amount\":{\"type\":\"integer\",\"minimum\":1}}}}"
/* compatible: adds an optional property to a closed object */
#define DEP_V2                                                                   \
	"{\"type\":\"Deposited\",\"version\":2,\"schema\":{\"type\":\"object\"," \
	"\"required\":[\"amount\"],\"additionalProperties\":false,"              \
	"\"properties\":{\"amount\":{\"type\":\"integer\",\"minimum\":1},"       \
	"\"memo\":{\"type\":\"string\"}}}}"
/* incompatible: memo becomes required */
#define DEP_V3_BAD                                                               \
	"{\"type\":\"Deposited\",\"version\":3,\"schema\":{\"type\":\"object\"," \
	"\"required\":[\"amount\",\"memo\"],\"additionalProperties\":false,"     \
	"\"properties\":{\"amount\":{\"type\":\"integer\",\"minimum\":1},"       \
	"\"memo\":{\"type\":\"string\"}}}}"
/* the same with an upcaster is accepted */
#define DEP_V3                                                                   \
	"{\"type\":\"Deposited\",\"version\":3,\"schema\":{\"type\":\"object\"," \
	"\"required\":[\"amount\",\"memo\"],\"additionalProperties\":false,"     \
	"\"properties\":{\"amount\":{\"type\":\"integer\",\"minimum\":1},"       \
	"\"memo\":{\"type\":\"string\"}}},"                                      \
	"\"upcast\":[{\"op\":\"add\",\"field\":\"memo\",\"value\":\"\"}]}"

static evs_store *open_store(void)
{
	evs_options o;
	tu_options(&o, EVS_SYNC_NONE);
	return tu_open(kit_dir, &o);
}

static int add(evs_store *st, const char *doc)
{
	return evs_schema_add(st, doc, strlen(doc));
}

static int append_json(evs_store *st, const char *stream, const char *type, uint32_t version,
		       const char *json)
{
	msgpack_sbuffer sb;
	evs_event_in ev = {.type = type, .type_version = version};
	kit_json_to_mp(&sb, json);
	ev.data = sb.data;
	ev.data_len = sb.size;
	int rc = evs_append(st, stream, EVS_ANY, &ev, 1, NULL);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static uint64_t last_position(evs_store *st)
{
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	return h.last_position;
}

START_TEST(test_versions)
{
	evs_store *st = open_store();
	char *json;
	size_t len;

	tu_assert_rc(st, evs_schema_get(st, "Deposited", 0, &json, &len), EVS_NOT_FOUND);
	tu_assert_rc(st, add(st, DEP_V2), EVS_SCHEMA_INCOMPATIBLE);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "skips version 1"));
	tu_ok(st, evs_schema_check(st, DEP_V1, strlen(DEP_V1)));
	tu_ok(st, add(st, DEP_V1));
	tu_ok(st, add(st, DEP_V1)); /* the same document again */
	tu_assert_rc(st, add(st, DEP_V3), EVS_SCHEMA_INCOMPATIBLE);
	tu_ok(st, add(st, DEP_V2));
	tu_assert_rc(st, evs_schema_check(st, DEP_V3_BAD, strlen(DEP_V3_BAD)),
		     EVS_SCHEMA_INCOMPATIBLE);
	tu_assert_rc(st, add(st, DEP_V3_BAD), EVS_SCHEMA_INCOMPATIBLE);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "property \"memo\" became required"));
	tu_ok(st, add(st, DEP_V3));
	/* version 2 again but different */
	tu_assert_rc(st, add(st, DEP_V3_BAD "x"), EVS_BAD_SCHEMA);
	const char *other = "{\"type\":\"Deposited\",\"version\":2,\"schema\":{}}";
	tu_assert_rc(st, add(st, other), EVS_SCHEMA_EXISTS);

	tu_ok(st, evs_schema_get(st, "Deposited", 0, &json, &len));
	ck_assert_ptr_nonnull(strstr(json, "\"version\":3"));
	ck_assert_uint_eq(strlen(json), len);
	evs_schema_text_free(json);
	tu_ok(st, evs_schema_get(st, "Deposited", 1, &json, &len));
	ck_assert_ptr_nonnull(strstr(json, "\"version\":1"));
	evs_schema_text_free(json);
	tu_assert_rc(st, evs_schema_get(st, "Deposited", 4, &json, &len), EVS_NOT_FOUND);
	evs_close(st);
}
END_TEST

static int count_entry(void *ctx, const evs_schema_entry *e)
{
	int *n = ctx;
	ck_assert(tu_str_eq(e->type, "Deposited"));
	ck_assert_uint_eq(e->version, (uint32_t)*n + 1);
	ck_assert_int_eq(e->upcast, e->version == 3 ? 1 : 0);
	(*n)++;
	return 0;
}

START_TEST(test_list)
{
	evs_store *st = open_store();
	int n = 0;
	tu_ok(st, add(st, DEP_V1));
	tu_ok(st, add(st, DEP_V2));
	tu_ok(st, add(st, DEP_V3));
	tu_ok(st, evs_schema_list(st, count_entry, &n));
	ck_assert_int_eq(n, 3);
	evs_close(st);
}
END_TEST

START_TEST(test_append_validation)
{
	evs_store *st = open_store();
	msgpack_sbuffer sb[3];
	evs_event_in ev[3];
	tu_ev *evs;

	tu_ok(st, add(st, DEP_V1));
	tu_ok(st, append_json(st, "a", "Deposited", 0, "{\"amount\":5}"));
	tu_ok(st, append_json(st, "a", "Other", 0, "{\"anything\":true}"));

	/* a batch of three whose event 2 breaks the minimum: nothing written */
	const char *data[3] = {"{\"amount\":1}", "{\"amount\":2}", "{\"amount\":-5}"};
	for (int i = 0; i < 3; i++) {
		kit_json_to_mp(&sb[i], data[i]);
		memset(&ev[i], 0, sizeof ev[i]);
		ev[i].type = "Deposited";
		ev[i].data = sb[i].data;
		ev[i].data_len = sb[i].size;
	}
	tu_assert_rc(st, evs_append(st, "a", EVS_ANY, ev, 3, NULL), EVS_SCHEMA_VIOLATION);
	ck_assert_str_eq(evs_errmsg(st),
			 "event 2: data at \"$.amount\" breaks rule \"minimum\" of schema "
			 "\"Deposited\" version 1: -5 is less than 1");
	ck_assert_uint_eq(last_position(st), 2);
	for (int i = 0; i < 3; i++)
		msgpack_sbuffer_destroy(&sb[i]);

	/* missing data is the empty map: "amount" is required */
	evs_event_in none = {.type = "Deposited"};
	tu_assert_rc(st, evs_append(st, "a", EVS_ANY, &none, 1, NULL), EVS_SCHEMA_VIOLATION);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "rule \"required\""));

	/* a stated version that does not exist */
	tu_assert_rc(st, append_json(st, "a", "Deposited", 2, "{\"amount\":5}"), EVS_UNKNOWN_TYPE);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "has no schema version 2"));

	/* version 2 (memo allowed); a version-1 event is checked against v1 */
	tu_ok(st, add(st, DEP_V2));
	tu_ok(st, append_json(st, "a", "Deposited", 0, "{\"amount\":5,\"memo\":\"x\"}"));
	tu_assert_rc(st, append_json(st, "a", "Deposited", 1, "{\"amount\":5,\"memo\":\"x\"}"),
		     EVS_SCHEMA_VIOLATION);
	ck_assert_ptr_nonnull(
		strstr(evs_errmsg(st), "at \"$.memo\" breaks rule \"additionalProperties\""));
	tu_ok(st, append_json(st, "a", "Deposited", 1, "{\"amount\":6}"));

	/* stored versions: 0 became the latest at the time */
	size_t n = tu_read_all(st, &evs);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(evs[0].ev.type_version, 1);
	ck_assert_uint_eq(evs[1].ev.type_version, 1); /* Other: no schema, as stated */
	ck_assert_uint_eq(evs[2].ev.type_version, 2);
	ck_assert_uint_eq(evs[3].ev.type_version, 1);
	tu_evs_free(evs, n);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

START_TEST(test_unknown_types)
{
	evs_store *st = open_store();
	int policy = -1;

	tu_ok(st, evs_schema_get_unknown(st, &policy));
	ck_assert_int_eq(policy, EVS_UNKNOWN_ACCEPT);
	tu_ok(st, append_json(st, "a", "Anything", 0, "{}"));
	tu_ok(st, evs_schema_set_unknown(st, EVS_UNKNOWN_REFUSE));
	tu_assert_rc(st, append_json(st, "a", "Anything", 0, "{}"), EVS_UNKNOWN_TYPE);
	ck_assert_str_eq(evs_errmsg(st), "event 0: type \"Anything\" has no schema and the store "
					 "refuses types without one");
	tu_ok(st, add(st, DEP_V1));
	tu_ok(st, append_json(st, "a", "Deposited", 0, "{\"amount\":1}"));
	tu_assert_rc(st, evs_schema_set_unknown(st, 7), EVS_INVALID);
	evs_close(st);

	/* the setting is kept in the store */
	st = open_store();
	tu_ok(st, evs_schema_get_unknown(st, &policy));
	ck_assert_int_eq(policy, EVS_UNKNOWN_REFUSE);
	tu_assert_rc(st, append_json(st, "a", "Anything", 0, "{}"), EVS_UNKNOWN_TYPE);
	ck_assert_uint_eq(last_position(st), 2);
	evs_close(st);
}
END_TEST

START_TEST(test_two_handles)
{
	evs_store *a = open_store(), *b = open_store();

	tu_ok(a, append_json(a, "s", "Deposited", 0, "{\"amount\":-1}")); /* no schema yet */
	tu_ok(b, add(b, DEP_V1));
	tu_assert_rc(a, append_json(a, "s", "Deposited", 0, "{\"amount\":-1}"),
		     EVS_SCHEMA_VIOLATION);
	tu_ok(a, append_json(a, "s", "Deposited", 0, "{\"amount\":1}"));
	tu_ok(b, evs_schema_set_unknown(b, EVS_UNKNOWN_REFUSE));
	tu_assert_rc(a, append_json(a, "s", "X", 0, "{}"), EVS_UNKNOWN_TYPE);
	evs_close(a);
	evs_close(b);
}
END_TEST

START_TEST(test_read_only)
{
	evs_store *st = open_store();
	tu_ok(st, add(st, DEP_V1));
	evs_close(st);
	evs_options o;
	tu_options(&o, EVS_SYNC_NONE);
	o.read_only = 1;
	st = tu_open(kit_dir, &o);
	tu_assert_rc(st, add(st, DEP_V2), EVS_READONLY);
	tu_ok(st, evs_schema_check(st, DEP_V2, strlen(DEP_V2)));
	char *json;
	tu_ok(st, evs_schema_get(st, "Deposited", 1, &json, NULL));
	evs_schema_text_free(json);
	evs_close(st);
}
END_TEST

/* Appending threads while another handle keeps adding versions: every
 * append validates against a registry that changes under it (the cache
 * is swapped while other threads hold references). */
typedef struct worker {
	evs_store *st;
	int id, ok;
} worker;

static void *append_loop(void *arg)
{
	worker *w = arg;
	char stream[32];
	msgpack_sbuffer sb;

	snprintf(stream, sizeof stream, "w-%d", w->id);
	kit_json_to_mp(&sb, "{\"amount\":5}");
	for (int i = 0; i < 150; i++) {
		evs_event_in ev = {.type = "Deposited",
				   .type_version = 1,
				   .data = sb.data,
				   .data_len = sb.size};
		if (evs_append(w->st, stream, EVS_ANY, &ev, 1, NULL) == EVS_OK)
			w->ok++;
	}
	msgpack_sbuffer_destroy(&sb);
	return NULL;
}

START_TEST(test_concurrent_changes)
{
	evs_store *st = open_store(), *admin = open_store();
	pthread_t th[4];
	worker w[4];
	char doc[1024];

	tu_ok(st, add(st, DEP_V1));
	for (int i = 0; i < 4; i++) {
		w[i] = (worker){.st = st, .id = i};
		ck_assert_int_eq(pthread_create(&th[i], NULL, append_loop, &w[i]), 0);
	}
	for (int v = 2; v <= 20; v++) {
		snprintf(doc, sizeof doc,
			 "{\"type\":\"Deposited\",\"version\":%d,\"schema\":{\"type\":\"object\"},"
			 "\"upcast\":[{\"op\":\"add\",\"field\":\"v%d\",\"value\":%d}]}",
			 v, v, v);
		tu_ok(admin, add(admin, doc));
		if (v % 5 == 0)
			tu_ok(admin, evs_schema_set_unknown(admin, v % 10 ? EVS_UNKNOWN_REFUSE
									  : EVS_UNKNOWN_ACCEPT));
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(w[i].ok, 150);
	}
	/* a read upcasts the oldest event through 19 steps */
	evs_iter *it;
	evs_event e;
	tu_ok(st, evs_read_stream(st, "w-0", 1, EVS_FORWARD, 1, &it));
	tu_ok(st, evs_iter_upcast(it, 1));
	tu_ok(st, evs_iter_next(it, &e));
	ck_assert_uint_eq(e.type_version, 20);
	char *t = kit_mp_text(e.data, e.data_len);
	ck_assert_ptr_nonnull(strstr(t, "\"v20\"=>20"));
	free(t);
	evs_iter_free(it);
	evs_close(admin);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_versions,    test_list,      test_append_validation,  test_unknown_types,
		test_two_handles, test_read_only, test_concurrent_changes, NULL,
	};

	return kit_main("schema-registry", 600, tests);
}
