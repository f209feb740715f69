/*
 * test_numbers.c - a number never changes kind or value on its way through
 * PostgreSQL (issue 16, "Numbers change on their way to PostgreSQL").
 *
 * Events are appended with the C API (payloads packed with msgpack-c, so
 * the kinds are explicit), projected into the built-in models in two
 * batches so that the second folds onto the state read back from jsonb,
 * and evs.state, evs.state_history, evs.state_at() and evs.events are
 * checked as PostgreSQL's text and, through the projector's reading path
 * (evp_json_to_msgpack), as msgpack kinds and values. The query service's
 * pass over jsonb text (evsq__json_numbers) must give doubles back in the
 * text evs read prints. Random doubles print their seed; EVS_TEST_SEED
 * replays.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <msgpack.h>

#include "evsproj.h"
#include "../../query/internal.h" /* evsq__json_numbers (store/ has an internal.h too) */
#include "model.h"
#include "kit_pg.h"

static void run_once(const char *store_dir, const char *dsn)
{
	evp_config cfg;
	evp_stats st;
	char err[2048];

	evp_config_init(&cfg);
	cfg.store_path = store_dir;
	cfg.dsn = dsn;
	cfg.migrations_dir = pgh_migrations_dir();
	cfg.once = true;
	ck_assert_msg(evp_run(&cfg, &st, err, sizeof err) == EVP_OK, "evp_run: %s", err);
}

static int buf_write(void *data, const char *p, size_t n)
{
	evs__buf_putn(data, p, n);
	return 0;
}

static void append(evs_store *s, const char *stream, const evs__buf *data)
{
	evs_event_in ev;
	evs_append_result r;

	memset(&ev, 0, sizeof ev);
	ev.type = "Set";
	ev.data = data->ptr;
	ev.data_len = data->len;
	ck_assert_int_eq(evs_append(s, stream, EVS_ANY, &ev, 1, &r), EVS_OK);
}

static void key(msgpack_packer *pk, const char *k)
{
	msgpack_pack_str_with_body(pk, k, strlen(k));
}

/* An event whose data is {k: v}: v an unsigned integer, or a double. */
static void append_one(evs_store *s, const char *stream, const char *k, bool dbl, double d,
		       uint64_t u)
{
	evs__buf data = {0};
	msgpack_packer pk;

	msgpack_packer_init(&pk, &data, buf_write);
	msgpack_pack_map(&pk, 1);
	key(&pk, k);
	if (dbl)
		msgpack_pack_double(&pk, d);
	else
		msgpack_pack_uint64(&pk, u);
	append(s, stream, &data);
	evs__buf_free(&data);
}

/* The msgpack of a jsonb text, read the way the projector reads stored
 * state back. */
static void read_back(const char *text, msgpack_zone *z, msgpack_object *o, evs__buf *mp)
{
	size_t off = 0;

	mp->len = 0;
	ck_assert_msg(evs__json_to_msgpack(text, strlen(text), mp, 0, NULL, 0) == 0,
		      "could not read %s", text);
	ck_assert_int_eq(msgpack_unpack(mp->ptr, mp->len, &off, z, o), MSGPACK_UNPACK_SUCCESS);
}

static const msgpack_object *member(const msgpack_object *map, const char *k)
{
	ck_assert_int_eq(map->type, MSGPACK_OBJECT_MAP);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(k) &&
		    memcmp(kv->key.via.str.ptr, k, strlen(k)) == 0)
			return &kv->val;
	}
	ck_abort_msg("no member \"%s\"", k);
	return NULL;
}

static void expect_double(const msgpack_object *map, const char *k, double want)
{
	const msgpack_object *v = member(map, k);

	ck_assert_msg(v->type == MSGPACK_OBJECT_FLOAT64,
		      "\"%s\" is of msgpack type %d, not a double", k, v->type);
	ck_assert_msg(v->via.f64 == want, "\"%s\" is %.17g, not %.17g", k, v->via.f64, want);
}

static void expect_text(PGconn *c, const char *sql, const char *want)
{
	char *got = pgh_value(c, sql);

	ck_assert_msg(got != NULL, "%s: NULL", sql);
	ck_assert_msg(strcmp(got, want) == 0, "%s:\n got  %.400s\n want %.400s", sql, got, want);
	free(got);
}

START_TEST(fold_across_batches)
{
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db();
	evs_store *s = model_open(dir);
	evs__buf data = {0}, mp = {0}, q = {0};
	msgpack_packer pk;
	msgpack_zone z;
	msgpack_object o;
	char x[400], want[600];
	const char *sql[] = {
		"SELECT data::text FROM evs.state WHERE stream = 'n-1'",
		"SELECT evs.state_at('n-1', now())::text",
		"SELECT data::text FROM evs.state_history WHERE stream = 'n-1' AND version = 2",
	};
	PGconn *c;

	msgpack_packer_init(&pk, &data, buf_write);
	msgpack_pack_map(&pk, 4);
	key(&pk, "x");
	msgpack_pack_double(&pk, 1e300);
	key(&pk, "w");
	msgpack_pack_double(&pk, 1e19);
	key(&pk, "v");
	msgpack_pack_double(&pk, -1e19);
	key(&pk, "y");
	msgpack_pack_double(&pk, 1.5);
	append(s, "n-1", &data);
	append_one(s, "n-2", "x", true, 0.1, 0);
	run_once(dir, dsn);
	append_one(s, "n-1", "y", false, 0, 1);
	append_one(s, "n-2", "z", false, 0, 1);
	run_once(dir, dsn);

	c = pgh_connect(dsn);
	/* jsonb prints 1e300 in full; the ".0" of 1e19 says "double" */
	memset(x, '0', 301);
	x[0] = '1';
	x[301] = '\0';
	snprintf(want, sizeof want,
		 "{\"v\": -10000000000000000000.0, \"w\": 10000000000000000000.0, \"x\": %s, "
		 "\"y\": 1}",
		 x);
	msgpack_zone_init(&z, 1024);
	for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
		char *text;

		expect_text(c, sql[i], want);
		text = pgh_value(c, sql[i]);
		read_back(text, &z, &o, &mp);
		expect_double(&o, "v", -1e19);
		expect_double(&o, "w", 1e19);
		expect_double(&o, "x", 1e300);
		ck_assert_int_eq(member(&o, "y")->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
		ck_assert_uint_eq(member(&o, "y")->via.u64, 1);
		/* the query service's pass: the text evs read prints */
		q.len = 0;
		evsq__json_numbers(&q, text, strlen(text));
		ck_assert(evs__buf_cstr(&q));
		ck_assert_str_eq(q.ptr, "{\"v\": -10000000000000000000.0, \"w\": "
					"10000000000000000000.0, \"x\": 1e+300, \"y\": 1}");
		free(text);
	}
	/* 0.1 is 0.1 everywhere, and still a double after the fold */
	expect_text(c, "SELECT data::text FROM evs.state WHERE stream = 'n-2'",
		    "{\"x\": 0.1, \"z\": 1}");
	expect_text(c, "SELECT evs.state_at('n-2', now())::text", "{\"x\": 0.1, \"z\": 1}");
	expect_text(c,
		    "SELECT data::text FROM evs.state_history WHERE stream = 'n-2' AND version = 1",
		    "{\"x\": 0.1}");
	expect_text(c, "SELECT data::text FROM evs.events WHERE stream = 'n-2' AND version = 1",
		    "{\"x\": 0.1}");
	{
		char *text = pgh_value(c, "SELECT data::text FROM evs.state WHERE stream = 'n-2'");

		read_back(text, &z, &o, &mp);
		expect_double(&o, "x", 0.1);
		free(text);
	}
	msgpack_zone_destroy(&z);
	PQfinish(c);
	evs__buf_free(&data);
	evs__buf_free(&mp);
	evs__buf_free(&q);
	evs_close(s);
	kit_rmrf(dir);
	free(dir);
	free(dsn);
}
END_TEST

/* Same kind and value (jsonb has no -0.0: it comes back as 0.0). */
static void expect_same(const msgpack_object *got, const msgpack_object *want, size_t i)
{
	ck_assert_msg(got->type == want->type, "element %zu: type %d became %d", i, want->type,
		      got->type);
	if (want->type == MSGPACK_OBJECT_FLOAT64)
		ck_assert_msg(got->via.f64 == want->via.f64 &&
				      (want->via.f64 != 0 || got->via.f64 == 0),
			      "element %zu: %.17g became %.17g", i, want->via.f64, got->via.f64);
	else
		ck_assert_msg(got->via.u64 == want->via.u64, "element %zu: %llu became %llu", i,
			      (unsigned long long)want->via.u64, (unsigned long long)got->via.u64);
}

static uint64_t pack_random(msgpack_packer *pk, uint64_t *rng, size_t n)
{
	static const double fixed[] = {0.1,
				       1e300,
				       5e-324,
				       -0.0,
				       1e19,
				       -1e19,
				       1e15,
				       1.5,
				       1e-7,
				       2.5e-5,
				       1e23,
				       1.7976931348623157e308,
				       18446744073709551616.0,
				       9223372036854775808.0};
	size_t i;

	msgpack_pack_array(pk, n);
	for (i = 0; i < n; i++) {
		uint64_t bits = kit_rand(rng);
		double d;

		if (i < sizeof fixed / sizeof fixed[0]) {
			msgpack_pack_double(pk, fixed[i]);
			continue;
		}
		switch (i % 6) {
		case 0: msgpack_pack_int64(pk, i == 18 ? INT64_MIN : (int64_t)bits); break;
		case 1:
			msgpack_pack_uint64(pk,
					    i == 19 ? UINT64_MAX : 9007199254740993ULL + bits % 9);
			break;
		case 2:
			d = ldexp((double)(bits >> 11), (int)(kit_rand(rng) % 30));
			msgpack_pack_double(pk, d);
			break;
		case 3: msgpack_pack_double(pk, (double)(int64_t)(bits % 2000000) / 100.0); break;
		default:
			memcpy(&d, &bits, sizeof d);
			msgpack_pack_double(pk, isfinite(d) ? d : 0.5);
		}
	}
	return n;
}

START_TEST(random_through_jsonb)
{
	uint64_t rng = kit_seed("random_through_jsonb");
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db();
	evs_store *s = model_open(dir);
	evs__buf data = {0}, arr = {0}, mp = {0};
	msgpack_packer pk;
	msgpack_zone z;
	msgpack_object want, got;
	size_t off = 0, n = 3000;
	char *text;
	PGconn *c;

	/* {"a": [random numbers]}, then {"b": 1}: the second batch rewrites
	 * "a" from what the first stored in jsonb */
	msgpack_packer_init(&pk, &arr, buf_write);
	pack_random(&pk, &rng, n);
	msgpack_packer_init(&pk, &data, buf_write);
	msgpack_pack_map(&pk, 1);
	key(&pk, "a");
	evs__buf_putn(&data, arr.ptr, arr.len);
	append(s, "r-1", &data);
	run_once(dir, dsn);
	append_one(s, "r-1", "b", false, 0, 1);
	run_once(dir, dsn);

	c = pgh_connect(dsn);
	text = pgh_value(c, "SELECT (data->'a')::text FROM evs.state WHERE stream = 'r-1'");
	msgpack_zone_init(&z, 1 << 16);
	ck_assert_int_eq(msgpack_unpack(arr.ptr, arr.len, &off, &z, &want), MSGPACK_UNPACK_SUCCESS);
	read_back(text, &z, &got, &mp);
	ck_assert_int_eq(got.type, MSGPACK_OBJECT_ARRAY);
	ck_assert_uint_eq(got.via.array.size, n);
	for (size_t i = 0; i < n; i++)
		expect_same(&got.via.array.ptr[i], &want.via.array.ptr[i], i);
	free(text);
	msgpack_zone_destroy(&z);
	PQfinish(c);
	evs__buf_free(&data);
	evs__buf_free(&arr);
	evs__buf_free(&mp);
	evs_close(s);
	kit_rmrf(dir);
	free(dir);
	free(dsn);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		fold_across_batches,
		random_through_jsonb,
		NULL,
	};

	return pgh_main("pg-numbers", 600, tests);
}
