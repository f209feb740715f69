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
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
	const TTest *tests[] = {models_values_round_trip, NULL};

	return http_main("http-models-values", 600, tests);
}
