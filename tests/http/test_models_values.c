/*
 * test_models_values.c - what is appended reads back the same through
 * /models, and malformed paths and parameters are refused alike on every
 * route (issue 10, value fidelity; "every input checked"):
 *
 * - models_values_round_trip: random events (seed printed) set every
 *   column of a declared temporal table (text, bigint, double precision,
 *   numeric, timestamptz, jsonb, boolean); projected in batches of 7 (one
 *   event at a time) and then of 1,000 (set-based); every key now, at
 *   every position (history, across the batches), its /history pages and
 *   the listing answer each row byte for byte as the product writes
 *   values: strings escaped as the base does, integers and numeric
 *   digits as appended, doubles by the base's number policy, times in
 *   RFC 3339 UTC with the microseconds and Z, jsonb compact with its
 *   doubles by the policy.
 * - models_nul_and_params: %00 in the path of every route is 400 (decoded,
 *   the path would end there: /models/m/t/key%00x would be key "key"),
 *   and every route refuses a parameter given twice, empty where a value
 *   is needed, with %00, and out-of-range times and positions.
 * - query_store_only: --store without --dsn serves the store's routes;
 *   the database's answer 404 no_database; /health, /ready, /metrics
 *   say what there is.
 */
#include <math.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <check.h>

#include "kit_http.h"
#include "evsproj.h"
#include "model.h"
#include "kit_pg.h"
#include "mpjson.h"
#include "rfc3339.h"

#define KEYS   6
#define EVENTS 240 /* per half */

static const char rules_text[] =
	"projection rt\nschema rt\ntables vals\n\n"
	"on ValueSet\n"
	"INSERT INTO vals (id, s, n, d, x, t, j, b) VALUES (:stream, :data.s, :data.n, :data.d,"
	" :data.x, :data.t, :data.j, :data.b)\n"
	" ON CONFLICT (id) DO UPDATE SET s = EXCLUDED.s, n = EXCLUDED.n, d = EXCLUDED.d,"
	" x = EXCLUDED.x, t = EXCLUDED.t, j = EXCLUDED.j, b = EXCLUDED.b;\n";

/* The row each event leaves, as the service must write it. */
static char *expected[2 * EVENTS + 1]; /* by position */
static int key_of[2 * EVENTS + 1];
static int64_t recorded_us[2 * EVENTS + 1]; /* recorded_at, floored to us */

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double pick_double(uint64_t *rng)
{
	static const double special[] = {0.1, 1e300, 5e-324, -1e19, 1.0 / 3, -0.0, 2.5, 1e15};
	double d;
	uint64_t u;

	if (next(rng) % 2)
		return special[next(rng) % 8];
	do {
		u = next(rng);
		memcpy(&d, &u, 8);
	} while (!isfinite(d));
	return d;
}

static void pick_string(uint64_t *rng, char *out, size_t n)
{
	static const char *const parts[] = {"a", "\"", "\\", "\n",   "\t", "é", "日本",
					    "/", " ",  "x",  "\x01", "😀",  "{", "1e5"};
	size_t len = 0;
	int k = (int)(next(rng) % 8);

	out[0] = '\0';
	while (k-- > 0) {
		const char *p = parts[next(rng) % (sizeof parts / sizeof parts[0])];

		if (len + strlen(p) + 1 >= n)
			break;
		strcpy(out + len, p);
		len += strlen(p);
	}
}

/* One event on stream key: appended as JSON (the base's reader makes its
 * msgpack: doubles stay doubles), the row it leaves written by the base's
 * JSON writers. */
static void append_one(evs_store *store, uint64_t *rng, int pos)
{
	evs__buf in = {0}, mp = {0}, row = {0}, dtext = {0};
	char s[64], key[16], t[40], x[48], err[256];
	long long n = (long long)next(rng);
	double d = pick_double(rng);
	bool b = next(rng) % 2;
	int k = (int)(next(rng) % KEYS);
	evs_event_in ev;
	evs_append_result res;
	/* jsonb keeps numbers as numeric, which has no -0 */
	double inner = pick_double(rng) + 0.0;

	snprintf(key, sizeof key, "rt-%d", k);
	pick_string(rng, s, sizeof s);
	/* microseconds, any year PostgreSQL and RFC 3339 share */
	snprintf(t, sizeof t, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", 1 + (int)(next(rng) % 9999),
		 1 + (int)(next(rng) % 12), 1 + (int)(next(rng) % 28), (int)(next(rng) % 24),
		 (int)(next(rng) % 60), (int)(next(rng) % 60), (int)(next(rng) % 1000000));
	/* numeric digits as a string (a numeric is not a double) */
	snprintf(x, sizeof x, "%s%lld.%02d", next(rng) % 2 ? "-" : "",
		 (long long)(next(rng) % 100000000000000LL), (int)(next(rng) % 100));
	ck_assert_int_eq(evs__json_double(&dtext, d), 0);
	evs__buf_cstr(&dtext);
	evs__buf_puts(&in, "{\"s\":");
	evs__json_str(&in, s, strlen(s));
	evs__buf_printf(&in, ",\"n\":%lld,\"d\":%s,\"x\":\"%s\",\"t\":\"%s\",\"j\":", n, dtext.ptr,
			x, t);
	/* jsonb's key order (shorter first), compact */
	evs__buf_puts(&in, "{\"a\":[1,");
	ck_assert_int_eq(evs__json_double(&in, inner), 0);
	evs__buf_puts(&in, ",\"x\"],\"bb\":{\"c\":null,\"d\":true}}");
	evs__buf_printf(&in, ",\"b\":%s}", b ? "true" : "false");
	evs__buf_cstr(&in);
	ck_assert_msg(evs__json_to_msgpack(in.ptr, in.len, &mp, 0, err, sizeof err) == 0, "%s: %s",
		      in.ptr, err);

	evs__buf_printf(&row, "{\"id\":\"%s\",\"s\":", key);
	evs__json_str(&row, s, strlen(s));
	evs__buf_printf(&row, ",\"n\":%lld,\"d\":%s,\"x\":%s,\"t\":\"%s\",\"j\":{\"a\":[1,", n,
			dtext.ptr, x, t);
	evs__json_double(&row, inner);
	evs__buf_printf(&row, ",\"x\"],\"bb\":{\"c\":null,\"d\":true}},\"b\":%s}",
			b ? "true" : "false");
	evs__buf_cstr(&row);
	expected[pos] = strdup(row.ptr);
	key_of[pos] = k;

	memset(&ev, 0, sizeof ev);
	ev.type = "ValueSet";
	ev.data = (const unsigned char *)mp.ptr;
	ev.data_len = mp.len;
	ck_assert_int_eq(evs_append(store, key, EVS_ANY, &ev, 1, &res), EVS_OK);
	ck_assert_int_eq((int)res.last_position, pos);
	evs__buf_free(&in);
	evs__buf_free(&mp);
	evs__buf_free(&row);
	evs__buf_free(&dtext);
}

/* The raw text of the answer's "row" (the last member). */
static char *row_of(const http_answer *a)
{
	const char *p = strstr(a->body, ",\"row\":");
	size_t n;

	ck_assert_msg(p != NULL, "no row in %s", a->body);
	p += 7;
	n = strlen(p);
	ck_assert(n >= 2 && !strcmp(p + n - 2, "}\n"));
	return strndup(p, n - 2);
}

/* The row of key k as of a time (us): after the last event recorded by
 * then (PostgreSQL keeps microseconds). */
static const char *row_as_of(int k, int64_t us)
{
	int p;

	for (p = 2 * EVENTS; p >= 1; p--)
		if (key_of[p] == k && recorded_us[p] <= us)
			return expected[p];
	return NULL;
}

/* Clients asking as_of at once (so the batcher answers several in one
 * statement): each answer the row of that key then. */
struct client {
	unsigned port;
	uint64_t rng;
	int bad;
	char why[1024];
};

static void *client_main(void *arg)
{
	struct client *cl = arg;
	int i;

	for (i = 0; i < 150; i++) {
		int k = (int)(next(&cl->rng) % KEYS),
		    pos = 1 + (int)(next(&cl->rng) % (2 * EVENTS));
		int64_t us = recorded_us[pos] + (int64_t)(next(&cl->rng) % 3) - 1;
		char target[128], t[EVS__TIME_LEN];
		const char *want = row_as_of(k, us);
		http_answer a;

		evs__time_format(us * 1000 + 999, t); /* cut to the us by the service */
		snprintf(target, sizeof target, "/models/rt/vals/rt-%d?as_of=%s", k, t);
		http_get(cl->port, target, NULL, &a);
		if (want ? a.status != 200 || !strstr(a.body, want) : a.status != 404) {
			cl->bad++;
			snprintf(cl->why, sizeof cl->why, "%s: %ld %s (want %s)", target, a.status,
				 a.body, want ? want : "404");
		}
		http_answer_free(&a);
	}
	return NULL;
}

/* The row of key k after position pos (NULL: none yet). */
static const char *row_at(int k, int pos)
{
	int p;

	for (p = pos; p >= 1; p--)
		if (key_of[p] == k)
			return expected[p];
	return NULL;
}

static char *write_rules(char **dir)
{
	char *path;
	FILE *f;

	*dir = kit_tmpdir("rt-rules");
	ck_assert_int_gt(asprintf(&path, "%s/rt.projection", *dir), 0);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(rules_text, f);
	fclose(f);
	return path;
}

START_TEST(models_values_round_trip)
{
	uint64_t rng = kit_seed("models_values_round_trip");
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db(), *rdir, *rules = write_rules(&rdir);
	char *opt, target[256];
	const char *settings[2];
	evs_store *store = model_open(dir);
	PGconn *c = pgh_connect(dsn);
	evsq_server *srv;
	http_answer a;
	const char *m;
	int pos, k;

	pgh_exec(c, "CREATE SCHEMA rt");
	pgh_exec(c, "CREATE TABLE rt.vals (id text PRIMARY KEY, s text NOT NULL, n bigint,"
		    " d double precision, x numeric, t timestamptz, j jsonb, b boolean)");
	for (pos = 1; pos <= EVENTS; pos++)
		append_one(store, &rng, pos);
	pgh_project_once(dir, dsn, rules, 7);
	for (; pos <= 2 * EVENTS; pos++)
		append_one(store, &rng, pos);
	pgh_project_once(dir, dsn, rules, 1000);
	ck_assert_int_gt(asprintf(&opt, "rules=%s", rules), 0);
	settings[0] = opt;
	settings[1] = NULL;
	srv = http_server(dsn, settings);

	for (k = 0; k < KEYS; k++) {
		const char *want = row_at(k, 2 * EVENTS);
		char *got;

		snprintf(target, sizeof target, "/models/rt/vals/rt-%d", k);
		if (!want) {
			http_expect_error(evsq_server_port(srv), target, 404, "not_found");
			continue;
		}
		http_get_ok(evsq_server_port(srv), target, &a);
		got = row_of(&a);
		ck_assert_msg(!strcmp(got, want), "%s:\n got  %s\n want %s", target, got, want);
		free(got);
		http_answer_free(&a);
	}
	/* every key at every position: the history, across both batch sizes */
	for (pos = 1; pos <= 2 * EVENTS; pos += 1 + (int)(next(&rng) % 3)) {
		k = (int)(next(&rng) % KEYS);
		const char *want = row_at(k, pos);

		snprintf(target, sizeof target, "/models/rt/vals/rt-%d?at_position=%d", k, pos);
		if (!want) {
			http_expect_error(evsq_server_port(srv), target, 404, "not_found");
			continue;
		}
		http_get_ok(evsq_server_port(srv), target, &a);
		{
			char *got = row_of(&a);

			ck_assert_msg(!strcmp(got, want), "%s:\n got  %s\n want %s", target, got,
				      want);
			free(got);
		}
		http_answer_free(&a);
	}
	/* /history pages: each version's row, in position order */
	for (k = 0; k < KEYS; k++) {
		long long after = 0;
		int p = 1;

		for (;;) {
			json_object *versions, *na;
			size_t i;

			snprintf(target, sizeof target,
				 "/models/rt/vals/rt-%d/history?limit=3&after=%lld", k, after);
			http_get(evsq_server_port(srv), target, NULL, &a);
			if (a.status == 404) {
				ck_assert_ptr_null(row_at(k, 2 * EVENTS));
				http_answer_free(&a);
				break;
			}
			ck_assert_int_eq(a.status, 200);
			ck_assert(json_object_object_get_ex(a.json, "versions", &versions));
			for (i = 0; i < json_object_array_length(versions); i++) {
				json_object *v = json_object_array_get_idx(versions, i), *r, *from;
				char needle[1024];

				ck_assert(
					json_object_object_get_ex(v, "valid_from_position", &from));
				ck_assert(json_object_object_get_ex(v, "row", &r));
				while (p <= 2 * EVENTS && key_of[p] != k)
					p++;
				ck_assert_int_eq(json_object_get_int64(from), p);
				snprintf(needle, sizeof needle, "\"row\":%s}", expected[p]);
				ck_assert_msg(strstr(a.body, needle), "%s: version %d: %s", target,
					      p, a.body);
				p++;
			}
			ck_assert(json_object_object_get_ex(a.json, "next_after", &na));
			if (!na) {
				http_answer_free(&a);
				break;
			}
			after = json_object_get_int64(na);
			http_answer_free(&a);
		}
	}
	/* as of times, 8 clients at once: answered by the batcher (one
	 * statement for the lookups that arrive together), the first of a
	 * table by a worker (it reads the catalog) */
	{
		evs_iter *it;
		evs_event ev;
		struct client cl[8];
		pthread_t th[8];
		int i;

		ck_assert_int_eq(evs_read_all(store, 1, EVS_FORWARD, NULL, 0, &it), EVS_OK);
		while (evs_iter_next(it, &ev) == EVS_OK)
			recorded_us[ev.position] = ev.recorded_at / 1000;
		evs_iter_free(it);
		for (i = 0; i < 8; i++) {
			memset(&cl[i], 0, sizeof cl[i]);
			cl[i].port = evsq_server_port(srv);
			cl[i].rng = rng + (uint64_t)i * 7919 + 1;
			ck_assert_int_eq(pthread_create(&th[i], NULL, client_main, &cl[i]), 0);
		}
		for (i = 0; i < 8; i++) {
			ck_assert_int_eq(pthread_join(th[i], NULL), 0);
			ck_assert_msg(cl[i].bad == 0, "client %d: %d bad, last %s", i, cl[i].bad,
				      cl[i].why);
		}
		http_get(evsq_server_port(srv), "/metrics", NULL, &a);
		ck_assert_int_eq(a.status, 200);
		m = strstr(a.body, "\nevsq_batch_lookups_total ");
		ck_assert_msg(m && atol(m + 26) > 1000, "%s", m ? m : a.body);
		http_answer_free(&a);
	}
	/* the listing: every row in key order */
	{
		evs__buf want = {0};
		const char *p;

		evs__buf_puts(&want, ",\"rows\":[");
		for (k = 0, pos = 0; k < KEYS; k++)
			if (row_at(k, 2 * EVENTS))
				evs__buf_printf(&want, "%s%s", pos++ ? "," : "",
						row_at(k, 2 * EVENTS));
		evs__buf_puts(&want, "],\"next_after\":null}\n");
		evs__buf_cstr(&want);
		http_get_ok(evsq_server_port(srv), "/models/rt/vals?limit=100", &a);
		p = strstr(a.body, ",\"rows\":[");
		ck_assert_msg(p && !strcmp(p, want.ptr), "listing:\n got  %s\n want %s", a.body,
			      want.ptr);
		http_answer_free(&a);
		evs__buf_free(&want);
	}
	evsq_server_stop(srv);
	for (pos = 1; pos <= 2 * EVENTS; pos++)
		free(expected[pos]);
	free(opt);
	free(rules);
	kit_rmrf(rdir);
	free(rdir);
	pgh_release(c, store, dir, dsn);
}
END_TEST

/* A small store of ValueSet events, projected into rt.vals: the fixture
 * of the input checks. */
struct small {
	char *dir, *dsn, *rdir, *rules;
	evs_store *store;
	PGconn *c;
};

static void small_setup(struct small *f, const char *test)
{
	uint64_t rng = kit_seed(test);
	int pos;

	f->dir = kit_tmpdir("store");
	f->dsn = pgh_new_db();
	f->rules = write_rules(&f->rdir);
	f->store = model_open(f->dir);
	f->c = pgh_connect(f->dsn);
	pgh_exec(f->c, "CREATE SCHEMA rt");
	pgh_exec(f->c, "CREATE TABLE rt.vals (id text PRIMARY KEY, s text NOT NULL, n bigint,"
		       " d double precision, x numeric, t timestamptz, j jsonb, b boolean)");
	for (pos = 1; pos <= 20; pos++)
		append_one(f->store, &rng, pos);
	pgh_project_once(f->dir, f->dsn, f->rules, 0);
	for (pos = 1; pos <= 20; pos++)
		free(expected[pos]);
}

static void small_teardown(struct small *f)
{
	free(f->rules);
	kit_rmrf(f->rdir);
	free(f->rdir);
	pgh_release(f->c, f->store, f->dir, f->dsn);
}

static void expect(unsigned port, const char *target, const char *token, long status,
		   const char *code)
{
	http_answer a;

	http_get(port, target, token, &a);
	ck_assert_msg(a.status == status && a.json && !strcmp(http_str(&a, "error"), code),
		      "%s: %ld %s (want %ld %s)", target, a.status, a.body, status, code);
	http_answer_free(&a);
}

/* Every route: a %00 in the path is 400 (never the answer for the path
 * cut at the zero byte), with or without a token where one is needed;
 * duplicated, empty, zero-byte and out-of-range parameters are 400. */
START_TEST(models_nul_and_params)
{
	static const char *const nul_paths[] = {
		"/health%00",
		"/ready%00",
		"/metrics%00",
		"/streams/rt-1%00x/state",
		"/streams/rt-1/state%00",
		"/streams/rt-1%00/history",
		"/models%00",
		"/models/rt%00/vals",
		"/models/rt/vals%00",
		"/models/rt/vals/rt-1%00x",
		"/models/rt/vals/rt-1%00x?as_of=2030-01-01T00:00:00Z",
		"/models/rt/vals/rt-1%00/history",
		"/models/rt/vals/rt-1/history%00",
		"/events%00?correlation=x",
		"/events/stream%00",
		"/streams%00?prefix=a",
		"/%00",
		"/assets/app.js%00.html",
		"/nothing%00",
	};
	static const char *const bad_params[] = {
		"/health?a=1",
		"/health?a=1&a=1",
		"/ready?x",
		"/ready?x=1&x=1",
		"/metrics?x=%00",
		"/streams/rt-1/state?as_of=2030-01-01T00:00:00Z&as_of=2030-01-01T00:00:00Z",
		"/streams/rt-1/state?as_of=",
		"/streams/rt-1/state?as_of=0000-12-31T23:59:59Z",
		"/streams/rt-1/state?as_of=10000-01-01T00:00:00Z",
		"/streams/rt-1/state?as_of=2030-13-01T00:00:00Z",
		"/streams/rt-1/state?at_position=-1",
		"/streams/rt-1/state?at_position=99999999999999999999",
		"/streams/rt-1/history?limit=1&limit=1",
		"/streams/rt-1/events?after_version=%00",
		"/models?min_position=1&min_position=1",
		"/models/rt?x",
		"/models/rt/vals/rt-1?as_of=2030-01-01T00:00:00Z&as_of=2030-01-01T00:00:00Z",
		"/models/rt/vals/rt-1?as_of=",
		"/models/rt/vals/rt-1?as_of=0000-01-01T00:00:00Z",
		"/models/rt/vals/rt-1?as_of=10000-01-01T00:00:00Z",
		"/models/rt/vals/rt-1?as_of=2030-02-30T00:00:00Z",
		"/models/rt/vals/rt-1?as_of=2030-01-01T00:00:00Z%00",
		"/models/rt/vals/rt-1?at_position=",
		"/models/rt/vals/rt-1?at_position=-1",
		"/models/rt/vals/rt-1?at_position=99999999999999999999",
		"/models/rt/vals/rt-1?at_position=1&as_of=2030-01-01T00:00:00Z",
		"/models/rt/vals/rt-1?min_position=",
		"/models/rt/vals?limit=0",
		"/models/rt/vals?limit=",
		"/models/rt/vals?limit=1&limit=1",
		"/models/rt/vals?after=",
		"/models/rt/vals?s=a&s=a",
		"/models/rt/vals?s%00=a",
		"/models/rt/vals?nosuchcolumn=1",
		"/models/rt/vals/rt-1/history?after=1&after=2",
		"/models/rt/vals/rt-1/history?after=",
		"/models/rt/vals/rt-1/history?limit=0",
		"/models/rt/vals/rt-1/history?as_of=2030-01-01T00:00:00Z",
		"/events?correlation=a&correlation=a",
		"/events?correlation=%00",
		"/streams?prefix=a&prefix=a",
		"/streams?prefix=%00",
		"/events/stream?after=1&after=1",
		"/events/stream?after=%00",
	};
	const char *settings[4];
	struct small f;
	evsq_server *srv;
	char *rules_opt, *store_opt;
	unsigned port;
	size_t i;

	small_setup(&f, "models_nul_and_params");
	ck_assert_int_gt(asprintf(&rules_opt, "rules=%s", f.rules), 0);
	ck_assert_int_gt(asprintf(&store_opt, "store=%s", f.dir), 0);
	settings[0] = rules_opt;
	settings[1] = store_opt;
	settings[2] = "token=tok";
	settings[3] = NULL;
	evs_close(f.store);
	f.store = NULL;
	srv = http_server(f.dsn, settings);
	port = evsq_server_port(srv);
	for (i = 0; i < sizeof nul_paths / sizeof nul_paths[0]; i++)
		expect(port, nul_paths[i], "tok", 400, "bad_request");
	/* a route that needs the token says so first */
	expect(port, "/models/rt/vals/rt-1%00x", NULL, 401, "unauthorized");
	expect(port, "/health%00", NULL, 400, "bad_request");
	for (i = 0; i < sizeof bad_params / sizeof bad_params[0]; i++)
		expect(port, bad_params[i], "tok", 400, "bad_request");
	/* the same routes well formed */
	{
		static const char *const good[] = {
			"/health",
			"/models/rt/vals/rt-1?as_of=9999-12-31T23:59:59.999999999Z",
			"/models/rt/vals/rt-1?as_of=0001-01-01T00:00:00Z",
			"/models/rt/vals?s=",
			"/streams/rt-1/state?as_of=0001-01-01T00:00:00Z&source=store",
		};
		for (i = 0; i < sizeof good / sizeof good[0]; i++) {
			http_answer a;

			http_get(port, good[i], "tok", &a);
			ck_assert_msg(a.status == 200 || a.status == 404, "%s: %ld %s", good[i],
				      a.status, a.body);
			if (a.status == 404)
				ck_assert_str_eq(http_str(&a, "error"), "not_found");
			http_answer_free(&a);
		}
	}
	evsq_server_stop(srv);
	free(rules_opt);
	free(store_opt);
	small_teardown(&f);
}
END_TEST

/* --store without --dsn: the store's routes are served, the database's
 * answer 404 no_database, /health and /ready say what there is; the
 * daemon starts that way; neither --dsn nor --store is refused. */
START_TEST(query_store_only)
{
	static const char *const no_db[] = {
		"/streams/rt-1/state",
		"/streams/rt-1/state?as_of=2030-01-01T00:00:00Z",
		"/streams/rt-1/state?source=store&min_position=1",
		"/streams/rt-1/history",
		"/streams/rt-1/events",
		"/models",
		"/models/rt/vals/rt-1",
		"/models/rt/vals/rt-1?as_of=2030-01-01T00:00:00Z",
		"/streams?prefix=rt",
	};
	const char *settings[2];
	const char *args[5];
	struct small f;
	evsq_server *srv;
	evsq_config cfg;
	http_answer a;
	char *store_opt, err[512];
	unsigned port;
	size_t i;
	pid_t pid;
	int st;

	small_setup(&f, "query_store_only");
	evs_close(f.store);
	f.store = NULL;
	ck_assert_int_gt(asprintf(&store_opt, "store=%s", f.dir), 0);
	settings[0] = store_opt;
	settings[1] = NULL;
	srv = http_server("", settings);
	port = evsq_server_port(srv);
	http_get_ok(port, "/health", &a);
	http_answer_free(&a);
	http_get_ok(port, "/ready", &a);
	ck_assert_str_eq(http_str(&a, "status"), "ready");
	ck_assert_int_eq(http_int(&a, "store_head"), 20);
	http_answer_free(&a);
	http_get(port, "/metrics", NULL, &a);
	ck_assert_int_eq(a.status, 200);
	ck_assert_msg(strstr(a.body, "\nevsq_store_head_position 20\n") &&
			      !strstr(a.body, "evsq_postgres_up"),
		      "%s", a.body);
	http_answer_free(&a);
	http_get_ok(port, "/streams/rt-1/state?source=store", &a);
	ck_assert_str_eq(http_str(&a, "source"), "store");
	http_answer_free(&a);
	/* /events reads the store's indexes: served without a database */
	http_get_ok(port, "/events?category=rt&limit=5", &a);
	ck_assert_msg(strstr(a.body, "\"events\":[{"), "%s", a.body);
	http_answer_free(&a);
	for (i = 0; i < sizeof no_db / sizeof no_db[0]; i++)
		expect(port, no_db[i], NULL, 404, "no_database");
	evsq_server_stop(srv);
	/* neither: refused at start */
	ck_assert_int_eq(evsq_config_init(&cfg), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "port", "0", err, sizeof err), EVSQ_OK);
	ck_assert_int_eq(evsq_server_start(&cfg, NULL, NULL, &srv, err, sizeof err), EVSQ_INVALID);
	ck_assert_msg(strstr(err, "nothing to serve"), "%s", err);
	evsq_config_free(&cfg);
	/* the daemon: --store alone */
	args[0] = "--store";
	args[1] = f.dir;
	args[2] = NULL;
	pid = http_query_spawn(args, &port);
	http_get_ok(port, "/ready", &a);
	http_answer_free(&a);
	expect(port, "/models", NULL, 404, "no_database");
	kill(pid, SIGTERM);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "evs-query: status %d", st);
	free(store_opt);
	small_teardown(&f);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {models_values_round_trip, models_nul_and_params, query_store_only,
				NULL};

	return http_main("http-models-values", 600, tests);
}
