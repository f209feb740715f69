/*
 * test_http.c - evs-query over real HTTP (libcurl, raw sockets) on
 * 127.0.0.1 against a throwaway PostgreSQL (tests/kit/kit_pg.h) holding
 * a random store projected by the projector library. Answers are checked
 * against the store itself (evs_state_load), not against the SQL the
 * service runs.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>

extern char **environ;

#include "kit_http.h"
#include "evsproj.h"
#include "model.h"
#include "kit_pg.h"

struct fixture {
	char *dir, *dsn;
	evs_store *store;
	evsq_server *srv;
	unsigned port;
	PGconn *c;
	uint64_t head;
};

static void setup(struct fixture *f, uint64_t *rng, int events, const char *const *settings)
{
	evs_store_info h;

	memset(f, 0, sizeof *f);
	f->dir = kit_tmpdir("store");
	f->dsn = pgh_new_db();
	f->store = model_open(f->dir);
	model_generate(f->store, rng, events);
	pgh_project_once(f->dir, f->dsn, NULL, 0);
	ck_assert_int_eq(evs_head(f->store, &h), EVS_OK);
	f->head = h.last_position;
	f->c = pgh_connect(f->dsn);
	f->srv = http_server(f->dsn, settings);
	f->port = evsq_server_port(f->srv);
}

static void teardown(struct fixture *f)
{
	evsq_server_stop(f->srv);
	pgh_release(f->c, f->store, f->dir, f->dsn);
}

/* The store's fold as JSON text (malloc'd); *version set. */
static char *store_state(evs_store *s, const char *stream, const evs_at *at, uint64_t *version,
			 uint64_t *position)
{
	evs_state st;
	evs__buf b = {0};

	ck_assert_int_eq(evs_state_load(s, stream, at, &st), EVS_OK);
	ck_assert_int_eq(evs__msgpack_to_json(&b, st.data, st.len, 0), 0);
	evs__buf_cstr(&b);
	*version = st.version;
	if (position)
		*position = st.position;
	evs_state_free(&st);
	return b.ptr;
}

/* The "data" member of an answer equals the JSON text want (compared as
 * jsonb by PostgreSQL, so key order and number spelling do not matter). */
static void expect_data(PGconn *c, const http_answer *a, const char *want)
{
	json_object *d;
	const char *vals[2];
	PGresult *r;

	ck_assert_msg(a->json && json_object_object_get_ex(a->json, "data", &d), "%s", a->body);
	vals[0] = json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN);
	vals[1] = want;
	r = PQexecParams(c, "SELECT $1::jsonb = $2::jsonb", 2, NULL, vals, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && !strcmp(PQgetvalue(r, 0, 0), "t"),
		      "data %s, want %s", vals[0], want);
	PQclear(r);
}

static char *state_path(const char *stream, const char *query)
{
	char *e = http_escape(stream), *p;

	ck_assert_int_gt(asprintf(&p, "/streams/%s/state%s", e, query), 0);
	free(e);
	return p;
}

/* Every stream's current state, as of times and at positions, against the
 * store's own fold. */
START_TEST(http_state_matches_store)
{
	uint64_t rng = kit_seed("http_state_matches_store");
	struct fixture f;
	PGresult *r;
	int i, n;

	setup(&f, &rng, 600, NULL);
	r = PQexec(f.c, "SELECT stream FROM evs.state ORDER BY stream");
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	n = PQntuples(r);
	ck_assert_int_gt(n, 5);
	for (i = 0; i < n; i++) {
		const char *stream = PQgetvalue(r, i, 0);
		char *path = state_path(stream, ""), *want;
		uint64_t version, position;
		http_answer a;

		http_get(f.port, path, NULL, &a);
		ck_assert_msg(a.status == 200, "%s: %ld %s", path, a.status, a.body);
		want = store_state(f.store, stream, NULL, &version, &position);
		ck_assert_int_eq(http_int(&a, "version"), (long long)version);
		ck_assert_int_eq(http_int(&a, "event_position"), (long long)position);
		ck_assert_int_eq(http_int(&a, "position"), (long long)f.head);
		ck_assert_str_eq(http_str(&a, "stream"), stream);
		expect_data(f.c, &a, want);
		free(want);
		http_answer_free(&a);
		free(path);
	}
	PQclear(r);

	/* as of times and positions: random events of the log */
	for (i = 0; i < 200; i++) {
		uint64_t p = 1 + kit_rand(&rng) % f.head, version, position;
		evs_iter *it;
		evs_event ev;
		char q[128], ts[64], *path, *want, *stream;
		struct tm tm;
		time_t sec;
		int64_t us;
		http_answer a;

		ck_assert_int_eq(evs_read_all(f.store, p, EVS_FORWARD, NULL, 1, &it), EVS_OK);
		ck_assert_int_eq(evs_iter_next(it, &ev), EVS_OK);
		stream = strndup(ev.stream.ptr, ev.stream.len);
		us = ev.recorded_at / 1000;
		evs_iter_free(it);

		/* as_of at that event's microsecond (the store: its last ns) */
		sec = (time_t)(us / 1000000);
		gmtime_r(&sec, &tm);
		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(q, sizeof q, "?as_of=%s.%06lldZ", ts, (long long)(us % 1000000));
		path = state_path(stream, q);
		http_get(f.port, path, NULL, &a);
		ck_assert_msg(a.status == 200, "%s: %ld %s", path, a.status, a.body);
		{
			evs_at at = {.kind = EVS_AT_TIME, .time = us * 1000 + 999};

			want = store_state(f.store, stream, &at, &version, &position);
		}
		ck_assert_int_eq(http_int(&a, "version"), (long long)version);
		ck_assert_int_eq(http_int(&a, "event_position"), (long long)position);
		ck_assert_int_eq(http_int(&a, "position"), (long long)f.head);
		expect_data(f.c, &a, want);
		free(want);
		http_answer_free(&a);
		free(path);

		/* the same instant with an offset (+01:00, '+' escaped) */
		sec += 3600;
		gmtime_r(&sec, &tm);
		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(q, sizeof q, "?as_of=%s.%06lld%%2B01:00", ts, (long long)(us % 1000000));
		path = state_path(stream, q);
		http_get(f.port, path, NULL, &a);
		ck_assert_msg(a.status == 200, "%s: %ld %s", path, a.status, a.body);
		ck_assert_int_eq(http_int(&a, "version"), (long long)version);
		http_answer_free(&a);
		free(path);

		/* at_position: a random position at or after the event */
		{
			uint64_t at_p = p + kit_rand(&rng) % (f.head - p + 1);
			evs_at at = {.kind = EVS_AT_POSITION, .position = at_p};

			snprintf(q, sizeof q, "?at_position=%llu", (unsigned long long)at_p);
			path = state_path(stream, q);
			http_get(f.port, path, NULL, &a);
			ck_assert_msg(a.status == 200, "%s: %ld %s", path, a.status, a.body);
			want = store_state(f.store, stream, &at, &version, &position);
			ck_assert_int_eq(http_int(&a, "version"), (long long)version);
			ck_assert_int_eq(http_int(&a, "event_position"), (long long)position);
			ck_assert_uint_le(position, at_p);
			expect_data(f.c, &a, want);
			free(want);
			http_answer_free(&a);
			free(path);
		}
		free(stream);
	}
	teardown(&f);
}
END_TEST

START_TEST(http_errors)
{
	static const char *const bad_times[] = {
		"yesterday",
		"2024-13-01T00:00:00Z",
		"2024-02-30T00:00:00Z",
		"2024-01-01",
		"2024-01-01T25:00:00Z",
		"2024-01-01T00:00:00",
		"2024-01-01T00:00:00.Z",
		"2024-01-01T00:00:00+1:00",
		"0000-01-01T00:00:00Z",
		"2024-01-01T00:00:00Z%27%3B%20DROP%20TABLE%20evs.state%3B--",
	};
	uint64_t rng = kit_seed("http_errors");
	const char *settings[] = {"min_position_wait_ms=200", NULL};
	struct fixture f;
	char target[256];
	http_answer a;
	size_t i;

	setup(&f, &rng, 50, settings);
	http_expect_error(f.port, "/streams/no-such-stream/state", 404, "not_found");
	http_expect_error(f.port, "/streams/no-such-stream/state?as_of=2024-01-01T00:00:00Z", 404,
			  "not_found");
	http_expect_error(f.port, "/streams/no-such-stream/history", 404, "not_found");
	http_expect_error(f.port, "/streams/no-such-stream/events", 404, "not_found");
	http_expect_error(f.port, "/streams/entity-1/nothing", 404, "not_found");
	http_expect_error(f.port, "/streams//state", 404, "not_found");
	http_expect_error(f.port, "/", 404, "not_found");
	http_expect_error(f.port, "/nope", 404, "not_found");
	for (i = 0; i < sizeof bad_times / sizeof bad_times[0]; i++) {
		snprintf(target, sizeof target, "/streams/entity-1/state?as_of=%s", bad_times[i]);
		http_expect_error(f.port, target, 400, "bad_request");
	}
	/* before the first event: known stream, no state then */
	{
		PGresult *r = PQexec(f.c, "SELECT stream FROM evs.state ORDER BY stream LIMIT 1");
		char *p;

		ck_assert_int_eq(PQntuples(r), 1);
		p = state_path(PQgetvalue(r, 0, 0), "?as_of=1970-01-01T00:00:00Z");
		http_expect_error(f.port, p, 404, "not_found");
		free(p);
		p = state_path(PQgetvalue(r, 0, 0), "?at_position=0");
		http_expect_error(f.port, p, 404, "not_found");
		free(p);
		PQclear(r);
	}
	http_expect_error(f.port, "/streams/entity-1/state?at_position=-1", 400, "bad_request");
	http_expect_error(f.port, "/streams/entity-1/state?at_position=1x", 400, "bad_request");
	http_expect_error(f.port, "/streams/entity-1/state?at_position=99999999999999999999", 400,
			  "bad_request");
	http_expect_error(f.port,
			  "/streams/entity-1/state?at_position=1&as_of=2024-01-01T00:00:00Z", 400,
			  "bad_request");
	http_expect_error(f.port, "/streams/entity-1/state?asof=2024-01-01T00:00:00Z", 400,
			  "bad_request");
	http_expect_error(f.port, "/streams/entity-1/history?limit=0", 400, "bad_request");
	http_expect_error(f.port, "/streams/entity-1/history?limit=1000001", 400, "bad_request");
	http_expect_error(f.port, "/streams/entity-1/events?after_version=x", 400, "bad_request");
	http_expect_error(f.port, "/streams/entity-1/state?min_position=abc", 400, "bad_request");
	http_expect_error(f.port, "/streams/%FF%FE/state", 400, "bad_request");
	http_expect_error(f.port, "/streams/entity-1/state?source=store", 400, "bad_request");

	/* the projection is behind: a distinct status with the position */
	snprintf(target, sizeof target, "/streams/entity-1/state?min_position=%llu",
		 (unsigned long long)f.head + 1);
	http_get(f.port, target, NULL, &a);
	ck_assert_msg(a.status == 409, "%ld %s", a.status, a.body);
	ck_assert_str_eq(http_str(&a, "error"), "projection_behind");
	ck_assert_int_eq(http_int(&a, "position"), (long long)f.head);
	ck_assert_str_eq(a.retry_after, "1");
	http_answer_free(&a);
	snprintf(target, sizeof target, "/streams/entity-1/state?at_position=%llu",
		 (unsigned long long)f.head + 5);
	http_expect_error(f.port, target, 409, "projection_behind");

	/* methods and bodies */
	http_request(f.port, "POST", "/streams/entity-1/state", "x=1", &a);
	ck_assert_int_eq(a.status, 405);
	http_answer_free(&a);
	http_request(f.port, "DELETE", "/streams/entity-1/state", NULL, &a);
	ck_assert_int_eq(a.status, 405);
	http_answer_free(&a);
	{
		const char req[] =
			"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";

		ck_assert_int_eq(http_raw(f.port, req, sizeof req - 1), 413);
	}
	/* oversized request line and headers: refused, server fine */
	{
		size_t big = 64 * 1024;
		char *req = malloc(big + 64);
		int st;

		memcpy(req, "GET /streams/", 13);
		memset(req + 13, 'a', big);
		memcpy(req + 13 + big, "/state HTTP/1.1\r\nHost: x\r\n\r\n", 28);
		st = http_raw(f.port, req, big + 41);
		ck_assert_msg(st == 0 || (st >= 400 && st < 500), "status %d", st);
		free(req);
	}
	http_get(f.port, "/health", NULL, &a);
	ck_assert_int_eq(a.status, 200);
	http_answer_free(&a);
	teardown(&f);
}
END_TEST

START_TEST(http_history_and_events_paged)
{
	uint64_t rng = kit_seed("http_history_and_events_paged");
	struct fixture f;
	PGresult *r;
	int i, n;

	setup(&f, &rng, 400, NULL);
	r = PQexec(f.c, "SELECT stream, version FROM evs.state ORDER BY stream");
	n = PQntuples(r);
	for (i = 0; i < n; i++) {
		const char *stream = PQgetvalue(r, i, 0);
		long long versions = atoll(PQgetvalue(r, i, 1));
		char *e = http_escape(stream);
		int kind;

		for (kind = 0; kind < 2; kind++) {
			long long after = 0, seen = 0;
			int limit = 1 + (int)(kit_rand(&rng) % 7);

			for (;;) {
				char target[512];
				json_object *arr, *next;
				http_answer a;
				size_t j, len;

				snprintf(target, sizeof target,
					 "/streams/%s/%s?after_version=%lld&limit=%d", e,
					 kind ? "events" : "history", after, limit);
				http_get(f.port, target, NULL, &a);
				ck_assert_msg(a.status == 200, "%s: %ld %s", target, a.status,
					      a.body);
				ck_assert(json_object_object_get_ex(
					a.json, kind ? "events" : "states", &arr));
				len = json_object_array_length(arr);
				for (j = 0; j < len; j++) {
					json_object *v;
					json_object *o = json_object_array_get_idx(arr, j);

					ck_assert(json_object_object_get_ex(o, "version", &v));
					ck_assert_int_eq(json_object_get_int64(v), after + 1);
					after++;
					seen++;
				}
				ck_assert(json_object_object_get_ex(a.json, "next_after_version",
								    &next));
				if (json_object_is_type(next, json_type_null)) {
					http_answer_free(&a);
					break;
				}
				ck_assert_int_eq(json_object_get_int64(next), after);
				http_answer_free(&a);
			}
			ck_assert_int_eq(seen, versions);
		}
		free(e);
	}
	PQclear(r);
	teardown(&f);
}
END_TEST

START_TEST(http_token)
{
	uint64_t rng = kit_seed("http_token");
	const char *settings[] = {"token=s3cret", NULL};
	struct fixture f;
	http_answer a;

	setup(&f, &rng, 30, settings);
	http_get(f.port, "/streams/entity-1/state", NULL, &a);
	ck_assert_int_eq(a.status, 401);
	ck_assert_str_eq(http_str(&a, "error"), "unauthorized");
	http_answer_free(&a);
	http_get(f.port, "/streams/entity-1/state", "wrong", &a);
	ck_assert_int_eq(a.status, 401);
	http_answer_free(&a);
	http_get(f.port, "/ready", "s3cret", &a);
	ck_assert_int_eq(a.status, 200);
	ck_assert_int_eq(http_int(&a, "position"), (long long)f.head);
	http_answer_free(&a);
	http_get(f.port, "/health", NULL, &a); /* liveness needs no token */
	ck_assert_int_eq(a.status, 200);
	http_answer_free(&a);
	teardown(&f);
}
END_TEST

START_TEST(http_unavailable)
{
	char *dir = kit_tmpdir("nopg"), *dsn;
	evsq_server *srv;
	http_answer a;
	unsigned port;

	/* a socket directory where no server listens */
	ck_assert_int_gt(asprintf(&dsn, "host=%s port=5 dbname=x connect_timeout=2", dir), 0);
	srv = http_server(dsn, NULL);
	port = evsq_server_port(srv);
	http_get(port, "/streams/a/state", NULL, &a);
	ck_assert_msg(a.status == 503, "%ld %s", a.status, a.body);
	ck_assert_str_eq(http_str(&a, "error"), "unavailable");
	http_answer_free(&a);
	http_get(port, "/ready", NULL, &a);
	ck_assert_int_eq(a.status, 503);
	http_answer_free(&a);
	http_get(port, "/health", NULL, &a);
	ck_assert_int_eq(a.status, 200);
	http_answer_free(&a);
	http_get(port, "/metrics", NULL, &a);
	ck_assert_int_eq(a.status, 200);
	ck_assert_ptr_nonnull(strstr(a.body, "evsq_requests_total{code=\"5xx\"} 2"));
	http_answer_free(&a);
	evsq_server_stop(srv);
	kit_rmrf(dir);
	free(dir);
	free(dsn);
}
END_TEST

/* The live projector as its own process (the production shape; one LMDB
 * environment per process). */
static pid_t spawn_projector(const char *dir, const char *dsn)
{
	char *argv[] = {(char *)pgh_projector_bin(),
			"--store",
			(char *)dir,
			"--dsn",
			(char *)dsn,
			"--migrations",
			(char *)pgh_migrations_dir(),
			NULL};
	return kit_spawn(argv);
}

/* Read-your-writes: append, then ask with min_position = the append's
 * position while a live projector runs. */
START_TEST(http_min_position_live)
{
	uint64_t rng = kit_seed("http_min_position_live");
	const char *settings[] = {"min_position_wait_ms=10000", NULL};
	struct fixture f;
	pid_t pid;
	int i;

	setup(&f, &rng, 50, settings);
	pid = spawn_projector(f.dir, f.dsn);
	for (i = 0; i < 20; i++) {
		evs_store_info h;
		evs_iter *it;
		evs_event ev;
		char *stream, *path, q[64], *want;
		uint64_t version, position;
		http_answer a;

		model_generate(f.store, &rng, 1);
		ck_assert_int_eq(evs_head(f.store, &h), EVS_OK);
		ck_assert_int_eq(evs_read_all(f.store, h.last_position, EVS_FORWARD, NULL, 1, &it),
				 EVS_OK);
		ck_assert_int_eq(evs_iter_next(it, &ev), EVS_OK);
		stream = strndup(ev.stream.ptr, ev.stream.len);
		evs_iter_free(it);
		snprintf(q, sizeof q, "?min_position=%llu", (unsigned long long)h.last_position);
		path = state_path(stream, q);
		http_get(f.port, path, NULL, &a);
		ck_assert_msg(a.status == 200, "%s: %ld %s", path, a.status, a.body);
		ck_assert_int_ge(http_int(&a, "position"), (long long)h.last_position);
		want = store_state(f.store, stream, NULL, &version, &position);
		ck_assert_int_eq(http_int(&a, "version"), (long long)version);
		expect_data(f.c, &a, want);
		free(want);
		free(path);
		free(stream);
		http_answer_free(&a);
	}
	kill(pid, SIGTERM);
	kit_wait_child(pid, 120000, 1);
	teardown(&f);
}
END_TEST

/* Malformed paths, query strings and headers: never a crash, never a 5xx
 * other than 503. */
START_TEST(http_garbage)
{
	static const char *const pieces[] = {
		"/streams/",
		"/state",
		"/history",
		"/events",
		"?",
		"&",
		"=",
		"as_of",
		"at_position",
		"min_position",
		"limit",
		"after_version",
		"%",
		"%2",
		"%00",
		"%FF",
		"%2F",
		"..",
		"//",
		"\xff",
		"\x01",
		" ",
		"2024-01-01T00:00:00Z",
		"-1",
		"99999999999999999999999",
		"entity-1",
		"'",
		"\"",
		"\\",
		";",
		"+",
		"#",
	};
	static const char *const headers[] = {
		"",
		"Authorization: Bearer x\r\n",
		"Content-Length: abc\r\n",
		"Transfer-Encoding: chunked\r\n",
		"X: \x01\x02\r\n",
		": empty\r\n",
		"Host\r\n",
		"Range: bytes=0-1\r\n",
	};
	uint64_t rng = kit_seed("http_garbage");
	struct fixture f;
	http_answer a;
	int i;

	setup(&f, &rng, 50, NULL);
	for (i = 0; i < 1500; i++) {
		char req[2048];
		size_t len = 0;
		int k = (int)(kit_rand(&rng) % 10), j, st;

		len += (size_t)snprintf(req, sizeof req, "%s ",
					kit_rand(&rng) % 8 ? "GET" : "HEAD");
		for (j = 0; j < k; j++)
			len += (size_t)snprintf(
				req + len, sizeof req - len, "%s",
				pieces[kit_rand(&rng) % (sizeof pieces / sizeof pieces[0])]);
		len += (size_t)snprintf(
			req + len, sizeof req - len, " HTTP/1.1\r\nHost: x\r\n%s\r\n",
			headers[kit_rand(&rng) % (sizeof headers / sizeof headers[0])]);
		st = http_raw(f.port, req, len);
		ck_assert_msg(st < 500 || st == 503, "status %d for %s", st, req);
	}
	http_get(f.port, "/health", NULL, &a);
	ck_assert_int_eq(a.status, 200);
	http_answer_free(&a);
	teardown(&f);
}
END_TEST

struct client {
	unsigned port;
	const char *target;
	int ok;
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	int i;

	for (i = 0; i < 100; i++) {
		http_answer a;

		http_get(c->port, c->target, NULL, &a);
		if (a.status == 200)
			c->ok++;
		http_answer_free(&a);
	}
	return NULL;
}

START_TEST(http_concurrent_clients)
{
	uint64_t rng = kit_seed("http_concurrent_clients");
	const char *settings[] = {"pg_connections=3", "threads=2", NULL};
	struct fixture f;
	struct client cl[16];
	pthread_t th[16];
	int i;

	char *paths[2];
	PGresult *r;

	setup(&f, &rng, 100, settings);
	r = PQexec(f.c, "SELECT stream FROM evs.state ORDER BY stream LIMIT 2");
	ck_assert_int_eq(PQntuples(r), 2);
	paths[0] = state_path(PQgetvalue(r, 0, 0), "");
	paths[1] = state_path(PQgetvalue(r, 1, 0), "?as_of=2100-01-01T00:00:00Z");
	PQclear(r);
	for (i = 0; i < 16; i++) {
		cl[i].port = f.port;
		cl[i].target = paths[i % 2];
		cl[i].ok = 0;
		ck_assert_int_eq(pthread_create(&th[i], NULL, client_main, &cl[i]), 0);
	}
	for (i = 0; i < 16; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(cl[i].ok, 100);
	}
	free(paths[0]);
	free(paths[1]);
	teardown(&f);
}
END_TEST

/* Lookups from many clients at once are answered in batches (one
 * statement for many requests): every answer must be its own request's.
 * Each probe's answer is first taken alone (and checked against the
 * store's fold), then 16 clients ask random probes concurrently and must
 * get exactly the same bytes. */
struct probe {
	char *target;
	long status;
	char *body;
};

struct hammer {
	unsigned port;
	const struct probe *probes;
	int nprobes;
	uint64_t rng;
	int asked, wrong;
	char first_wrong[600];
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	int i;

	for (i = 0; i < 150; i++) {
		const struct probe *p = &h->probes[kit_rand(&h->rng) % (uint64_t)h->nprobes];
		http_answer a;

		http_get(h->port, p->target, NULL, &a);
		h->asked++;
		if (a.status != p->status || strcmp(a.body, p->body)) {
			if (!h->wrong++)
				snprintf(h->first_wrong, sizeof h->first_wrong,
					 "%s: %ld %.200s, alone: %ld %.200s", p->target, a.status,
					 a.body, p->status, p->body);
		}
		http_answer_free(&a);
	}
	return NULL;
}

START_TEST(http_batched_answers_match)
{
	uint64_t rng = kit_seed("http_batched_answers_match");
	const char *settings[] = {"threads=1", "batch_connections=1", NULL};
	struct probe probes[60];
	struct hammer h[16];
	pthread_t th[16];
	struct fixture f;
	PGresult *r;
	int i, n = 0, rows;

	setup(&f, &rng, 400, settings);
	r = PQexec(f.c, "SELECT stream, (extract(epoch FROM min(valid_from)) * 1000000)::bigint,"
			" (extract(epoch FROM max(valid_from)) * 1000000)::bigint"
			" FROM evs.state_history GROUP BY stream ORDER BY stream");
	rows = PQntuples(r);
	ck_assert_int_gt(rows, 5);
	while (n < 60) {
		int k = (int)(kit_rand(&rng) % (uint64_t)rows), kind = (int)(kit_rand(&rng) % 3);
		const char *stream = PQgetvalue(r, k, 0);
		long long lo = atoll(PQgetvalue(r, k, 1)), hi = atoll(PQgetvalue(r, k, 2));
		char q[96] = "";
		http_answer a;

		if (kind == 1) { /* as of a time inside (or just before) its history */
			long long us = lo - 1000 +
				       (long long)(kit_rand(&rng) % (uint64_t)(hi - lo + 2000));
			time_t sec = (time_t)(us / 1000000);
			struct tm tm;
			char ts[40];

			gmtime_r(&sec, &tm);
			strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
			snprintf(q, sizeof q, "?as_of=%s.%06lldZ", ts, us % 1000000);
		} else if (kind == 2 && n % 5 == 0) { /* unknown streams among them */
			stream = "no-such-stream";
		}
		probes[n].target = state_path(stream, q);
		http_get(f.port, probes[n].target, NULL, &a);
		probes[n].status = a.status;
		probes[n].body = strdup(a.body);
		ck_assert_msg(a.status == 200 || a.status == 404, "%s: %ld %s", probes[n].target,
			      a.status, a.body);
		if (a.status == 200 && !q[0]) {
			uint64_t v;
			char *want = store_state(f.store, stream, NULL, &v, NULL);

			expect_data(f.c, &a, want);
			ck_assert_int_eq(http_int(&a, "version"), (long long)v);
			free(want);
		}
		http_answer_free(&a);
		n++;
	}
	PQclear(r);
	for (i = 0; i < 16; i++) {
		memset(&h[i], 0, sizeof h[i]);
		h[i].port = f.port;
		h[i].probes = probes;
		h[i].nprobes = n;
		h[i].rng = kit_rand(&rng) | 1;
		ck_assert_int_eq(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
	}
	for (i = 0; i < 16; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(h[i].wrong == 0, "%d of %d answers differ; first: %s", h[i].wrong,
			      h[i].asked, h[i].first_wrong);
	}
	for (i = 0; i < n; i++) {
		free(probes[i].target);
		free(probes[i].body);
	}
	teardown(&f);
}
END_TEST

/* A request that waits (min_position beyond the projection) holds a
 * worker, not its event loop: with one loop, lookups keep being answered
 * while it waits. */
struct waiter {
	unsigned port;
	char target[128];
	atomic_int done;
	long status;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	http_answer a;

	http_get(w->port, w->target, NULL, &a);
	w->status = a.status;
	http_answer_free(&a);
	atomic_store(&w->done, 1);
	return NULL;
}

START_TEST(http_wait_does_not_block_lookups)
{
	uint64_t rng = kit_seed("http_wait_does_not_block_lookups");
	const char *settings[] = {"threads=1", "pg_connections=2", "min_position_wait_ms=60000",
				  NULL};
	struct fixture f;
	struct waiter w;
	pthread_t th;
	char *path;
	int i;

	setup(&f, &rng, 50, settings);
	memset(&w, 0, sizeof w);
	w.port = f.port;
	path = pgh_value(f.c, "SELECT stream FROM evs.state ORDER BY stream LIMIT 1");
	snprintf(w.target, sizeof w.target, "/streams/%s/history?min_position=%llu", path,
		 (unsigned long long)f.head + 1);
	ck_assert_int_eq(pthread_create(&th, NULL, waiter_main, &w), 0);
	for (i = 0; i < 200; i++) {
		char *target = state_path(path, "");
		http_answer a;

		http_get(f.port, target, NULL, &a);
		ck_assert_int_eq(a.status, 200);
		http_answer_free(&a);
		free(target);
	}
	/* 200 lookups answered while the waiter (60 s bound) still waits */
	ck_assert_int_eq(atomic_load(&w.done), 0);
	/* the position arrives: the waiter is answered */
	model_generate(f.store, &rng, 1);
	pgh_project_once(f.dir, f.dsn, NULL, 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(w.status, 200);
	free(path);
	teardown(&f);
}
END_TEST

/* Stopping the server while clients hammer it: every request gets an
 * answer or a closed connection, nothing hangs or leaks (sanitizers). */
struct raw_client {
	unsigned port;
	char target[128];
	atomic_int *stop;
	atomic_int answered;
	int refused;
};

static void *raw_main(void *arg)
{
	struct raw_client *c = arg;
	char req[256];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", c->target);

	while (!atomic_load(c->stop)) {
		int st = http_raw(c->port, req, (size_t)n);

		if (st == 200 || st == 404 || st == 503)
			atomic_fetch_add(&c->answered, 1);
		else
			c->refused++; /* closed or not listening: the server went */
	}
	return NULL;
}

START_TEST(http_stop_under_load)
{
	uint64_t rng = kit_seed("http_stop_under_load");
	const char *settings[] = {"threads=2", NULL};
	struct raw_client cl[8];
	pthread_t th[8];
	atomic_int stop = 0;
	struct fixture f;
	char *stream;
	int i, answered = 0;

	setup(&f, &rng, 50, settings);
	stream = pgh_value(f.c, "SELECT stream FROM evs.state ORDER BY stream LIMIT 1");
	for (i = 0; i < 8; i++) {
		memset(&cl[i], 0, sizeof cl[i]);
		cl[i].port = f.port;
		cl[i].stop = &stop;
		snprintf(cl[i].target, sizeof cl[i].target, "/streams/%s/%s", stream,
			 i % 2 ? "state" : "history");
		ck_assert_int_eq(pthread_create(&th[i], NULL, raw_main, &cl[i]), 0);
	}
	/* wait until every client got answers, then stop the server under them */
	for (i = 0; i < 8; i++) {
		time_t deadline = time(NULL) + 120;

		while (atomic_load(&cl[i].answered) < 20) {
			ck_assert_msg(time(NULL) < deadline, "client %d: %d answers in 120 s", i,
				      atomic_load(&cl[i].answered));
			sched_yield();
		}
	}
	evsq_server_stop(f.srv);
	f.srv = NULL;
	atomic_store(&stop, 1);
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		answered += atomic_load(&cl[i].answered);
	}
	ck_assert_int_ge(answered, 160);
	free(stream);
	teardown(&f);
}
END_TEST

/* A keep-alive connection that got one answer (/health): its fd. */
static int open_alive(unsigned port)
{
	static const char req[] = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
	struct sockaddr_in sa = {0};
	struct timeval tv = {30, 0};
	char buf[1024] = "";
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	ck_assert_int_eq(send(fd, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
	while (!strstr(buf, "\r\n\r\n{\"status\":\"ok\"}")) {
		ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);

		ck_assert_int_gt(n, 0);
		got += (size_t)n;
		buf[got] = '\0';
	}
	return fd;
}

/* The server answers a new connection within 30 s (a slot came back). */
static void expect_admitted(unsigned port)
{
	static const char req[] = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
	time_t deadline = time(NULL) + 30;

	while (http_raw(port, req, sizeof req - 1) != 200)
		ck_assert_msg(time(NULL) < deadline, "no slot came back in 30 s");
}

/* max_connections counts across every event loop; max_per_ip per client
 * address; a slot comes back when its connection closes. */
START_TEST(http_connection_limits)
{
	static const char req[] = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
	const char *total[] = {"threads=2", "max_connections=3", NULL};
	const char *per_ip[] = {"threads=2", "max_per_ip=2", NULL};
	char *dsn = pgh_new_db();
	evsq_server *srv = http_server(dsn, total);
	unsigned port = evsq_server_port(srv);
	int fds[3], i;

	for (i = 0; i < 3; i++)
		fds[i] = open_alive(port);
	/* a fourth is closed at once, whichever loop the kernel gave it to */
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(http_raw(port, req, sizeof req - 1), 0);
	close(fds[0]);
	expect_admitted(port);
	close(fds[1]);
	close(fds[2]);
	evsq_server_stop(srv);

	srv = http_server(dsn, per_ip);
	port = evsq_server_port(srv);
	fds[0] = open_alive(port);
	fds[1] = open_alive(port);
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(http_raw(port, req, sizeof req - 1), 0);
	close(fds[1]);
	expect_admitted(port);
	close(fds[0]);
	evsq_server_stop(srv);
	free(dsn);
}
END_TEST

/* PostgreSQL restarted under batched lookups: every answer is the right
 * state or 503 (the batches in flight go to a fresh session once, then
 * 503), and lookups are answered again once the server is back. */
struct restart_client {
	unsigned port;
	const struct probe *probe;
	atomic_int *stop;
	atomic_int ok, unavailable;
	int wrong;
	char first_wrong[600];
};

static void *restart_main(void *arg)
{
	struct restart_client *c = arg;

	while (!atomic_load(c->stop)) {
		http_answer a;

		http_get(c->port, c->probe->target, NULL, &a);
		if (a.status == 200 && !strcmp(a.body, c->probe->body))
			atomic_fetch_add(&c->ok, 1);
		else if (a.status == 503)
			atomic_fetch_add(&c->unavailable, 1);
		else if (!c->wrong++)
			snprintf(c->first_wrong, sizeof c->first_wrong, "%s: %ld %.300s",
				 c->probe->target, a.status, a.body);
		http_answer_free(&a);
	}
	return NULL;
}

static int sum_ok(struct restart_client *c, int n, bool unavailable)
{
	int i, t = 0;

	for (i = 0; i < n; i++)
		t += atomic_load(unavailable ? &c[i].unavailable : &c[i].ok);
	return t;
}

START_TEST(http_postgres_restart_under_load)
{
	uint64_t rng = kit_seed("http_postgres_restart_under_load");
	const char *settings[] = {"threads=2", NULL};
	struct restart_client cl[8];
	struct probe pr[2];
	pthread_t th[8];
	atomic_int stop = 0;
	struct fixture f;
	char *stream;
	time_t deadline;
	int i, ok0;

	if (!pgh_own_cluster()) {
		fprintf(stderr, "skipped: EVS_PG_DSN is set, the server is not ours to restart\n");
		return;
	}
	setup(&f, &rng, 100, settings);
	stream = pgh_value(f.c, "SELECT stream FROM evs.state ORDER BY stream LIMIT 1");
	for (i = 0; i < 2; i++) {
		http_answer a;

		pr[i].target = state_path(stream, i ? "?as_of=2100-01-01T00:00:00Z" : "");
		http_get(f.port, pr[i].target, NULL, &a);
		ck_assert_int_eq(a.status, 200);
		pr[i].status = 200;
		pr[i].body = strdup(a.body);
		http_answer_free(&a);
	}
	for (i = 0; i < 8; i++) {
		memset(&cl[i], 0, sizeof cl[i]);
		cl[i].port = f.port;
		cl[i].probe = &pr[i % 2];
		cl[i].stop = &stop;
		ck_assert_int_eq(pthread_create(&th[i], NULL, restart_main, &cl[i]), 0);
	}
	deadline = time(NULL) + 120;
	while (sum_ok(cl, 8, false) < 200)
		ck_assert_msg(time(NULL) < deadline, "no load in 120 s");
	PQfinish(f.c);
	f.c = NULL;
	pgh_server_stop("fast");
	deadline = time(NULL) + 120;
	while (sum_ok(cl, 8, true) < 50)
		ck_assert_msg(time(NULL) < deadline, "no 503 in 120 s with PostgreSQL away");
	pgh_server_start();
	ok0 = sum_ok(cl, 8, false);
	deadline = time(NULL) + 120;
	while (sum_ok(cl, 8, false) < ok0 + 500)
		ck_assert_msg(time(NULL) < deadline, "lookups not answered again in 120 s");
	atomic_store(&stop, 1);
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(cl[i].wrong == 0, "client %d: %d wrong answers; first: %s", i,
			      cl[i].wrong, cl[i].first_wrong);
	}
	fprintf(stderr, "http_postgres_restart_under_load: %d right, %d 503\n",
		sum_ok(cl, 8, false), sum_ok(cl, 8, true));
	for (i = 0; i < 2; i++) {
		free(pr[i].target);
		free(pr[i].body);
	}
	free(stream);
	teardown(&f);
}
END_TEST

/* source=store (replay of LMDB) and the read model (default) agree for
 * random streams, times (on, between and before events) and positions. */
START_TEST(http_sources_agree)
{
	uint64_t rng = kit_seed("http_sources_agree");
	struct fixture f;
	char *store_setting, *dsn;
	const char *settings[2];
	evs_store_info h;
	PGresult *r;
	int i, n, agreed404 = 0;

	setup(&f, &rng, 800, NULL);
	ck_assert_int_eq(evs_head(f.store, &h), EVS_OK);
	/* one LMDB environment per process: the server opens it now */
	evs_close(f.store);
	f.store = NULL;
	evsq_server_stop(f.srv);
	ck_assert_int_gt(asprintf(&store_setting, "store=%s", f.dir), 0);
	settings[0] = store_setting;
	settings[1] = NULL;
	dsn = f.dsn;
	f.srv = http_server(dsn, settings);
	f.port = evsq_server_port(f.srv);
	r = PQexec(f.c, "SELECT stream, (extract(epoch FROM max(valid_from)) * 1000000)::bigint,"
			" (extract(epoch FROM min(valid_from)) * 1000000)::bigint"
			" FROM evs.state_history GROUP BY stream ORDER BY stream");
	n = PQntuples(r);
	ck_assert_int_gt(n, 5);
	for (i = 0; i < 400; i++) {
		int k = (int)(kit_rand(&rng) % (uint64_t)n);
		const char *stream = PQgetvalue(r, k, 0);
		int64_t last_us = atoll(PQgetvalue(r, k, 1));
		int64_t first_us = atoll(PQgetvalue(r, k, 2));
		/* from 1 ms before the first event to 1 ms after the last */
		int64_t t = first_us - 1000 +
			    (int64_t)(kit_rand(&rng) % (uint64_t)(last_us - first_us + 2001));
		char q[128], ts[64], *p1, *p2;
		struct tm tm;
		time_t sec = (time_t)(t / 1000000);
		http_answer a, b;

		if (kit_rand(&rng) % 3 == 0) {
			snprintf(q, sizeof q, "at_position=%llu",
				 (unsigned long long)(kit_rand(&rng) % (h.last_position + 1)));
		} else {
			gmtime_r(&sec, &tm);
			strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
			snprintf(q, sizeof q, "as_of=%s.%06lldZ", ts, (long long)(t % 1000000));
		}
		{
			char q1[160], q2[160];

			snprintf(q1, sizeof q1, "?%s", q);
			snprintf(q2, sizeof q2, "?%s&source=store", q);
			p1 = state_path(stream, q1);
			p2 = state_path(stream, q2);
		}
		http_get(f.port, p1, NULL, &a);
		http_get(f.port, p2, NULL, &b);
		ck_assert_msg(a.status == b.status, "%s: %ld %s / %ld %s", p1, a.status, a.body,
			      b.status, b.body);
		if (a.status == 200) {
			json_object *d;

			ck_assert_int_eq(http_int(&a, "version"), http_int(&b, "version"));
			ck_assert_int_eq(http_int(&a, "event_position"),
					 http_int(&b, "event_position"));
			ck_assert_int_eq(http_int(&b, "position"), (long long)h.last_position);
			ck_assert_str_eq(http_str(&b, "source"), "store");
			ck_assert(json_object_object_get_ex(b.json, "data", &d));
			expect_data(f.c, &a,
				    json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN));
		} else {
			ck_assert_msg(a.status == 404, "%s: %ld %s", p1, a.status, a.body);
			agreed404++;
		}
		http_answer_free(&a);
		http_answer_free(&b);
		free(p1);
		free(p2);
	}
	fprintf(stderr, "http_sources_agree: %d of 400 before the stream's first event\n",
		agreed404);
	PQclear(r);
	{
		http_answer a;

		http_get(f.port, "/streams/no-such/state?source=store", NULL, &a);
		ck_assert_int_eq(a.status, 404);
		http_answer_free(&a);
		http_get(f.port, "/streams/x/state?source=elsewhere", NULL, &a);
		ck_assert_int_eq(a.status, 400);
		http_answer_free(&a);
	}
	free(store_setting);
	teardown(&f);
}
END_TEST

/* The daemon itself: configuration from flags and the environment, bound
 * to loopback, served, stopped by SIGTERM with exit status 0. */
START_TEST(http_daemon)
{
	uint64_t rng = kit_seed("http_daemon");
	struct fixture f;
	static const char *const args[] = {"--log-level=1", NULL};
	char *path;
	http_answer a;
	unsigned port;
	pid_t pid;

	setup(&f, &rng, 30, NULL);
	/* the DSN from the environment, the rest from flags */
	setenv("EVS_QUERY_DSN", f.dsn, 1);
	pid = http_query_spawn(args, &port);
	unsetenv("EVS_QUERY_DSN");
	{
		PGresult *r = PQexec(f.c, "SELECT stream FROM evs.state ORDER BY stream LIMIT 1");

		path = state_path(PQgetvalue(r, 0, 0), "");
		PQclear(r);
	}
	http_get(port, path, NULL, &a);
	ck_assert_msg(a.status == 200, "%ld %s", a.status, a.body);
	ck_assert_int_eq(http_int(&a, "position"), (long long)f.head);
	http_answer_free(&a);
	free(path);
	kill(pid, SIGTERM);
	kit_wait_child(pid, 120000, 1);
	teardown(&f);
}
END_TEST

/* Threads of this process whose scheduler slice is `ns` (the se.slice
 * line of /proc/self/task/N/sched), or -1 when the kernel shows none
 * (before EEVDF's custom slices, or without scheduler statistics). */
static int threads_with_slice(long long ns)
{
	char line[256], dir[64];
	int n = 0, seen = 0;
	DIR *d;
	struct dirent *e;

	snprintf(dir, sizeof dir, "/proc/%d/task", (int)getpid());
	d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		char path[400];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s/sched", dir, e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		while (fgets(line, sizeof line, f)) {
			long long v;

			if (sscanf(line, "se.slice : %lld", &v) == 1) {
				seen = 1;
				n += v == ns;
			}
		}
		fclose(f);
	}
	closedir(d);
	return seen ? n : -1;
}

/* Each event loop asks for a short CPU slice (loop_slice_us): both loops
 * show it; with 0 none does. Waits for the loops to have started. */
START_TEST(http_loop_slice)
{
	uint64_t rng = kit_seed("http_loop_slice");
	const char *on[] = {"threads=2", "loop_slice_us=100", NULL};
	const char *off[] = {"threads=2", "loop_slice_us=0", NULL};
	struct fixture f;
	int got = 0, i;

	setup(&f, &rng, 10, on);
	for (i = 0; i < 1000 && (got = threads_with_slice(100000)) >= 0 && got < 2; i++) {
		struct timespec ts = {0, 10000000};

		nanosleep(&ts, NULL); /* polling a condition, bounded (10 s) */
	}
	if (got < 0) {
		fprintf(stderr, "http_loop_slice: the kernel shows no se.slice: not checked\n");
		teardown(&f);
		return;
	}
	ck_assert_int_eq(got, 2);
	teardown(&f);
	setup(&f, &rng, 10, off);
	ck_assert_int_eq(threads_with_slice(100000), 0);
	teardown(&f);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		http_loop_slice,
		http_state_matches_store,
		http_errors,
		http_daemon,
		http_sources_agree,
		http_history_and_events_paged,
		http_token,
		http_unavailable,
		http_min_position_live,
		http_garbage,
		http_concurrent_clients,
		http_batched_answers_match,
		http_wait_does_not_block_lookups,
		http_stop_under_load,
		http_connection_limits,
		http_postgres_restart_under_load,
		NULL,
	};

	return http_main("http", 600, tests);
}
