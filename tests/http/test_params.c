/*
 * test_params.c - evs-query's query parameters and access log over real
 * HTTP on 127.0.0.1 against a throwaway PostgreSQL (tests/kit/kit_pg.h)
 * holding a random store projected by the projector library (issue 16):
 *
 * - source=store agrees with the read model for as_of times from 0001 to
 *   9999, far outside the store's int64 nanoseconds (1677..2262);
 * - every stream endpoint refuses a parameter given twice, without a
 *   value, empty, or carrying a zero byte (%00), with the same 400 as
 *   /models (one parser);
 * - one access line per request at info level.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <curl/curl.h>

#include "kit_http.h"
#include "evsproj.h"
#include "model.h"
#include "kit_pg.h"

struct fixture {
	char *dir, *dsn;
	PGconn *c;
	evsq_server *srv;
	unsigned port;
	char *streams[3]; /* escaped ids of streams with a state */
};

/* The access log: lines the server logged at info level. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char *log_lines[4096];
static int nlog;

static void on_log(void *ctx, int level, const char *message)
{
	(void)ctx;
	if (level != EVS_LOG_INFO)
		return;
	pthread_mutex_lock(&log_mu);
	if (nlog < (int)(sizeof log_lines / sizeof log_lines[0]))
		log_lines[nlog++] = strdup(message);
	pthread_mutex_unlock(&log_mu);
}

static void project(struct fixture *f)
{
	evp_config cfg;
	evp_stats st;
	char err[2048];

	evp_config_init(&cfg);
	cfg.store_path = f->dir;
	cfg.dsn = f->dsn;
	cfg.migrations_dir = pgh_migrations_dir();
	cfg.once = true;
	ck_assert_msg(evp_run(&cfg, &st, err, sizeof err) == EVP_OK, "evp_run: %s", err);
}

/* msgpack float64 */
static size_t put_double(unsigned char *p, double d)
{
	uint64_t u;
	int i;

	memcpy(&u, &d, 8);
	p[0] = 0xcb;
	for (i = 0; i < 8; i++)
		p[1 + i] = (unsigned char)(u >> (56 - 8 * i));
	return 9;
}

/* Stream "numbers": one event {"w":-1e19,"x":1e300,"y":0.1,"z":5e-324}
 * (keys in jsonb's order, so both sources print them alike). */
static const double numbers[] = {-1e19, 1e300, 0.1, 5e-324};

static void append_numbers(evs_store *store)
{
	unsigned char data[64];
	size_t n = 0, i;
	evs_event_in ev;
	evs_append_result res;

	data[n++] = 0x84;
	for (i = 0; i < 4; i++) {
		data[n++] = 0xa1;
		data[n++] = (unsigned char)('w' + i);
		n += put_double(data + n, numbers[i]);
	}
	memset(&ev, 0, sizeof ev);
	ev.type = "Numbers";
	ev.data = data;
	ev.data_len = n;
	ck_assert_int_eq(evs_append(store, "numbers", EVS_ANY, &ev, 1, &res), EVS_OK);
}

/* A random store, projected, then served with --store (the server opens
 * the store: one LMDB environment per process) and the access log. */
static void setup(struct fixture *f, const char *test)
{
	uint64_t rng = kit_seed(test);
	evs_store *store;
	evsq_config cfg;
	char err[1024];
	PGresult *r;
	int i;

	memset(f, 0, sizeof *f);
	f->dir = kit_tmpdir("store");
	f->dsn = pgh_new_db();
	store = model_open(f->dir);
	model_generate(store, &rng, 300);
	append_numbers(store);
	evs_close(store);
	project(f);
	f->c = pgh_connect(f->dsn);
	r = PQexec(f->c, "SELECT stream FROM evs.state ORDER BY version DESC, stream LIMIT 3");
	ck_assert_int_eq(PQntuples(r), 3);
	for (i = 0; i < 3; i++)
		f->streams[i] = http_escape(PQgetvalue(r, i, 0));
	PQclear(r);
	ck_assert_int_eq(evsq_config_init(&cfg), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "port", "0", err, sizeof err), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "dsn", f->dsn, err, sizeof err), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "store", f->dir, err, sizeof err), EVSQ_OK);
	ck_assert_msg(evsq_server_start(&cfg, on_log, NULL, &f->srv, err, sizeof err) == EVSQ_OK,
		      "%s", err);
	evsq_config_free(&cfg);
	f->port = evsq_server_port(f->srv);
}

static void teardown(struct fixture *f)
{
	int i;

	evsq_server_stop(f->srv);
	PQfinish(f->c);
	kit_rmrf(f->dir);
	for (i = 0; i < 3; i++)
		free(f->streams[i]);
	free(f->dir);
	free(f->dsn);
	pthread_mutex_lock(&log_mu);
	while (nlog)
		free(log_lines[--nlog]);
	pthread_mutex_unlock(&log_mu);
}

/* Member of the answer as JSON text ("" when absent). */
static const char *member(const http_answer *a, const char *key)
{
	json_object *v;

	if (!a->json || !json_object_object_get_ex(a->json, key, &v))
		return "";
	return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
}

/* Both sources answer alike: the same status, and on 200 the same
 * version, event and state (compared as jsonb by PostgreSQL). */
static void agree(struct fixture *f, const char *stream, const char *as_of)
{
	char *p1, *p2;
	http_answer a, b;

	ck_assert_int_gt(asprintf(&p1, "/streams/%s/state?as_of=%s", stream, as_of), 0);
	ck_assert_int_gt(asprintf(&p2, "/streams/%s/state?as_of=%s&source=store", stream, as_of),
			 0);
	http_get(f->port, p1, NULL, &a);
	http_get(f->port, p2, NULL, &b);
	ck_assert_msg(a.status == b.status, "%s: read model %ld %s, store %ld %s", as_of, a.status,
		      a.body, b.status, b.body);
	ck_assert_msg(a.status == 200 || a.status == 404, "%s: %ld %s", as_of, a.status, a.body);
	if (a.status == 200) {
		const char *vals[2] = {member(&a, "data"), NULL};
		PGresult *r;
		char *d = strdup(vals[0]);

		vals[0] = d;
		vals[1] = member(&b, "data");
		ck_assert_str_eq(member(&a, "version"), member(&b, "version"));
		ck_assert_str_eq(member(&a, "event_position"), member(&b, "event_position"));
		r = PQexecParams(f->c, "SELECT $1::jsonb = $2::jsonb", 2, NULL, vals, NULL, NULL,
				 0);
		ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK &&
				      !strcmp(PQgetvalue(r, 0, 0), "t"),
			      "%s: read model %s, store %s", as_of, vals[0], vals[1]);
		PQclear(r);
		free(d);
	} else {
		ck_assert_str_eq(http_str(&a, "error"), "not_found");
		ck_assert_str_eq(http_str(&b, "error"), "not_found");
	}
	http_answer_free(&a);
	http_answer_free(&b);
	free(p1);
	free(p2);
}

/* The store keeps int64 nanoseconds since the epoch (1677-09-21 to
 * 2262-04-11); as_of takes any RFC 3339 time. Before the fix, source=store
 * multiplied microseconds by 1000 with an overflow: 9999-12-31 was 404
 * and 1000-01-01 the current state. */
START_TEST(params_store_far_times)
{
	static const char *const times[] = {
		"0001-01-01T00:00:00Z",        "0001-01-01T00:00:00%2B23:59", /* year 0 in UTC */
		"1000-01-01T00:00:00Z",        "1677-09-21T00:12:43.145224Z",
		"1677-09-21T00:12:43.145225Z", "1677-09-21T00:12:44Z",
		"1969-12-31T23:59:59.999999Z", "1970-01-01T00:00:00Z",
		"2262-04-11T23:47:16.854774Z", "2262-04-11T23:47:16.854775Z",
		"2262-04-11T23:47:16.854776Z", "2262-04-12T00:00:00Z",
		"3000-01-01T00:00:00Z",        "5000-06-15T12:30:00.5-07:00",
		"9999-12-31T23:59:59Z",        "9999-12-31T23:59:59.999999999Z",
		"9999-12-31T23:59:60-23:59", /* year 10000 in UTC */
	};
	struct fixture f;
	size_t i;
	int s, found = 0;

	setup(&f, "params_store_far_times");
	for (s = 0; s < 3; s++) {
		PGresult *r;
		char *raw = curl_unescape(f.streams[s], 0);
		const char *v[1] = {raw};

		for (i = 0; i < sizeof times / sizeof times[0]; i++)
			agree(&f, f.streams[s], times[i]);
		/* and the stream's own times: its first state, and between */
		r = PQexecParams(f.c,
				 "SELECT to_char(valid_from AT TIME ZONE 'UTC',"
				 " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
				 " FROM evs.state_history WHERE stream = $1 ORDER BY version",
				 1, NULL, v, NULL, NULL, 0);
		ck_assert_int_gt(PQntuples(r), 0);
		for (i = 0; i < (size_t)PQntuples(r); i++) {
			agree(&f, f.streams[s], PQgetvalue(r, (int)i, 0));
			found++;
		}
		PQclear(r);
		curl_free(raw);
	}
	fprintf(stderr, "params_store_far_times: %zu far times and %d event times agree\n",
		sizeof times / sizeof times[0], found);
	teardown(&f);
}
END_TEST

/* A time with more than six fractional digits is cut to the microsecond,
 * never rounded up: 0.9 us before a state's first microsecond is still
 * before it (rounding the 7th digit answered the later state). */
START_TEST(params_subsecond_digits)
{
	struct fixture f;
	int s, checked = 0;

	setup(&f, "params_subsecond_digits");
	for (s = 0; s < 3; s++) {
		char *raw = curl_unescape(f.streams[s], 0);
		const char *v[1] = {raw};
		PGresult *r = PQexecParams(
			f.c,
			"SELECT version, to_char((valid_from - interval '1 microsecond')"
			" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '9Z'"
			" FROM evs.state_history WHERE stream = $1 ORDER BY version",
			1, NULL, v, NULL, NULL, 0);

		ck_assert_int_gt(PQntuples(r), 0);
		for (int i = 0; i < PQntuples(r); i++) {
			long long version = atoll(PQgetvalue(r, i, 0));
			const char *t = PQgetvalue(r, i, 1);
			char *path;
			http_answer a;

			agree(&f, f.streams[s], t);
			ck_assert_int_gt(
				asprintf(&path, "/streams/%s/state?as_of=%s", f.streams[s], t), 0);
			http_get(f.port, path, NULL, &a);
			if (a.status == 200)
				ck_assert_msg(http_int(&a, "version") < version,
					      "as of %s: version %lld, want before %lld", t,
					      http_int(&a, "version"), version);
			else
				ck_assert_msg(a.status == 404, "as of %s: %ld %s", t, a.status,
					      a.body);
			http_answer_free(&a);
			free(path);
			checked++;
		}
		PQclear(r);
		curl_free(raw);
	}
	fprintf(stderr, "params_subsecond_digits: %d state times\n", checked);
	teardown(&f);
}
END_TEST

/* The "data" member's text in an answer (malloc'd), spaces dropped
 * (jsonb prints ": " and ", "; no string here holds a space). */
static char *data_text(const http_answer *a)
{
	const char *p = strstr(a->body, "\"data\":");
	char *out, *o;

	ck_assert_msg(p != NULL, "%s", a->body);
	p += 7;
	out = o = malloc(strlen(p) + 1);
	for (; *p && *p != '}'; p++)
		if (*p != ' ')
			*o++ = *p;
	*o++ = '}';
	*o = '\0';
	return out;
}

/* Doubles reach HTTP as the store prints them: PostgreSQL's jsonb
 * prints 1e300 as 301 digits, which the read model's answers must not
 * show (current state through the batcher and a worker, as_of, history,
 * events), and source=store answers the same text. */
START_TEST(params_numbers)
{
	static const char *const paths[] = {
		"/streams/numbers/state",
		"/streams/numbers/state?as_of=9999-01-01T00:00:00Z",
		"/streams/numbers/state?min_position=1",
		"/streams/numbers/state?at_position=999999999&min_position=0",
		"/streams/numbers/history",
		"/streams/numbers/events",
	};
	struct fixture f;
	http_answer st, a;
	char *want, *got;
	size_t i, k;

	setup(&f, "params_numbers");
	http_get(f.port, "/streams/numbers/state?source=store", NULL, &st);
	ck_assert_int_eq(st.status, 200);
	want = data_text(&st);
	for (k = 0; k < 4; k++) {
		json_object *d, *v;
		char key[2] = {(char)('w' + k), 0};

		ck_assert(json_object_object_get_ex(st.json, "data", &d));
		ck_assert(json_object_object_get_ex(d, key, &v));
		ck_assert_msg(json_object_get_double(v) == numbers[k], "%s: %s", key, want);
	}
	for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		http_get(f.port, paths[i], NULL, &a);
		ck_assert_msg(a.status == 200 || (i == 3 && a.status == 409), "%s: %ld %s",
			      paths[i], a.status, a.body);
		ck_assert_msg(!strstr(a.body, "000000000000000000000000000000"), "%s: %s", paths[i],
			      a.body);
		if (i < 3) {
			got = data_text(&a);
			ck_assert_msg(!strcmp(got, want), "%s: %s, store %s", paths[i], got, want);
			free(got);
		} else if (a.status == 200) {
			ck_assert_msg(strstr(a.body, "1e+300") || strstr(a.body, "1e300"), "%s: %s",
				      paths[i], a.body);
		}
		http_answer_free(&a);
	}
	free(want);
	http_answer_free(&st);
	teardown(&f);
}
END_TEST

/* Query strings every endpoint must refuse as malformed, whatever its
 * parameters (the name's own meaning does not matter). */
static const char *const malformed[] = {
	"as_of&as_of=2000-01-01T00:00:00Z",
	"as_of=2000-01-01T00:00:00Z&as_of",
	"min_position=1&min_position=999999",
	"min_position",
	"as_of",
	"at_position",
	"source",
	"limit",
	"after_version",
	"at_position=12%00x",
	"as_of=2000-01-01T00:00:00Z%00garbage",
	"source=store%00x",
	"source=read_model%00",
	"limit=5%00",
	"min_position=0%001",
	"as%00of=2000-01-01T00:00:00Z",
	"limit=1&limit=2",
	"after_version=0&after_version=0",
};

/* Values each stream endpoint refuses (empty, or not its syntax). */
static const char *const state_bad[] = {
	"as_of=",          "at_position=",    "min_position=",
	"source=",         "source=%20store", "as_of=2000-01-01T00:00:00Z&at_position=1",
	"asof=2000-01-01", "limit=1",
};
static const char *const page_bad[] = {
	"limit=", "after_version=", "min_position=", "limit=0", "as_of=2000-01-01T00:00:00Z",
};

static void expect_400(unsigned port, const char *path, http_answer *a)
{
	http_get(port, path, NULL, a);
	ck_assert_msg(a->status == 400, "%s: %ld %s", path, a->status, a->body);
	ck_assert_str_eq(http_str(a, "error"), "bad_request");
}

START_TEST(params_malformed)
{
	static const char *const ends[] = {"state", "history", "events"};
	struct fixture f;
	size_t i, e;
	char path[512];

	setup(&f, "params_malformed");
	for (e = 0; e < 3; e++) {
		for (i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
			http_answer a, m;

			/* the answer /models gives, from the same parser */
			snprintf(path, sizeof path, "/models?%s", malformed[i]);
			expect_400(f.port, path, &m);
			snprintf(path, sizeof path, "/streams/%s/%s?%s", f.streams[0], ends[e],
				 malformed[i]);
			expect_400(f.port, path, &a);
			ck_assert_msg(!strcmp(a.body, m.body), "%s: %s, /models: %s", path, a.body,
				      m.body);
			http_answer_free(&a);
			http_answer_free(&m);
		}
	}
	for (i = 0; i < sizeof state_bad / sizeof state_bad[0]; i++) {
		http_answer a;

		snprintf(path, sizeof path, "/streams/%s/state?%s", f.streams[1], state_bad[i]);
		expect_400(f.port, path, &a);
		http_answer_free(&a);
	}
	for (e = 1; e < 3; e++)
		for (i = 0; i < sizeof page_bad / sizeof page_bad[0]; i++) {
			http_answer a;

			snprintf(path, sizeof path, "/streams/%s/%s?%s", f.streams[2], ends[e],
				 page_bad[i]);
			expect_400(f.port, path, &a);
			http_answer_free(&a);
		}
	/* the same parameters well formed are served */
	{
		static const char *const good[] = {
			"state?as_of=2000-01-01T00:00:00Z&source=read_model",
			"state?as_of=9999-01-01T00:00:00Z&min_position=0",
			"state?at_position=0&source=store",
			"state?source=store",
			"state",
			"history?limit=2&after_version=0&min_position=1",
			"events?limit=1",
		};
		for (i = 0; i < sizeof good / sizeof good[0]; i++) {
			http_answer a;

			snprintf(path, sizeof path, "/streams/%s/%s", f.streams[0], good[i]);
			http_get(f.port, path, NULL, &a);
			ck_assert_msg(a.status == 200 || a.status == 404, "%s: %ld %s", path,
				      a.status, a.body);
			http_answer_free(&a);
		}
	}
	teardown(&f);
}
END_TEST

/* The access line of a request that matches prefix, waited for (the
 * line is written as the answer is queued). */
static bool logged(const char *prefix, char *out, size_t n)
{
	int tries, i;

	for (tries = 0; tries < 30000; tries++) { /* 30 s: a loaded machine */
		struct timespec ts = {0, 1000000};

		pthread_mutex_lock(&log_mu);
		for (i = 0; i < nlog; i++)
			if (!strncmp(log_lines[i], prefix, strlen(prefix))) {
				snprintf(out, n, "%s", log_lines[i]);
				pthread_mutex_unlock(&log_mu);
				return true;
			}
		pthread_mutex_unlock(&log_mu);
		nanosleep(&ts, NULL);
	}
	return false;
}

/* "<method> <path> <status> <bytes> bytes <us> us" */
static void check_line(const char *line, const char *prefix, size_t bytes)
{
	unsigned long long b, us;
	char tail[8];

	ck_assert_msg(sscanf(line + strlen(prefix), " %llu bytes %llu %7s", &b, &us, tail) == 3,
		      "%s", line);
	ck_assert_str_eq(tail, "us");
	ck_assert_msg(b == bytes, "%s: %zu bytes sent", line, bytes);
	ck_assert_msg(us < 60000000ull, "%s", line);
}

START_TEST(params_access_log)
{
	struct fixture f;
	char path[512], want[600], line[1024];
	http_answer a;

	setup(&f, "params_access_log");
	http_get(f.port, "/health", NULL, &a);
	ck_assert_int_eq(a.status, 200);
	ck_assert_msg(logged("GET /health 200", line, sizeof line), "no access line for /health");
	check_line(line, "GET /health 200", strlen(a.body));
	http_answer_free(&a);

	snprintf(path, sizeof path, "/streams/%s/state?as_of=3000-01-01T00:00:00Z", f.streams[0]);
	http_get(f.port, path, NULL, &a);
	ck_assert_int_eq(a.status, 200);
	{
		/* logged with the decoded path, '%' escaped again */
		char *raw = curl_unescape(f.streams[0], 0), *p;
		char esc[400];
		size_t n = 0;

		for (p = raw; *p && n + 4 < sizeof esc; p++) {
			unsigned char c = (unsigned char)*p;

			if (c <= ' ' || c == 0x7f || c == '%')
				n += (size_t)snprintf(esc + n, sizeof esc - n, "%%%02X", c);
			else
				esc[n++] = (char)c;
		}
		esc[n] = '\0';
		snprintf(want, sizeof want, "GET /streams/%s/state 200", esc);
		curl_free(raw);
	}
	ck_assert_msg(logged(want, line, sizeof line), "no access line \"%s\"", want);
	check_line(line, want, strlen(a.body));
	http_answer_free(&a);

	/* a path that would split the log line */
	http_get(f.port, "/no%0Asuch%20thing", NULL, &a);
	ck_assert_int_eq(a.status, 404);
	ck_assert_msg(logged("GET /no%0Asuch%20thing 404", line, sizeof line),
		      "no escaped access line");
	check_line(line, "GET /no%0Asuch%20thing 404", strlen(a.body));
	http_answer_free(&a);

	http_request(f.port, "DELETE", "/health", NULL, &a);
	ck_assert_int_eq(a.status, 405);
	ck_assert_msg(logged("DELETE /health 405", line, sizeof line), "no access line for 405");
	http_answer_free(&a);
	teardown(&f);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		params_store_far_times, params_subsecond_digits, params_malformed,
		params_access_log,      params_numbers,          NULL,
	};

	return http_main("http-params", 300, tests);
}
