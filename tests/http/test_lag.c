/*
 * test_lag.c - projection lag in /ready and /metrics, and min_position
 * woken by the projector's NOTIFY, over real HTTP on 127.0.0.1 against a
 * throwaway PostgreSQL (tests/kit/kit_pg.h), a real store and real
 * evs-projector processes. With --store, evs-query runs as its own process
 * (one LMDB environment per process: this one appends to the store).
 *
 * Timing is measured and printed, never asserted; waits on conditions are
 * bounded loops.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
	PGconn *c;
	uint64_t head;
	unsigned seq; /* events appended by append_one */
};

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* evs-projector: --once (caught up, returns) or live. */
static pid_t projector(struct fixture *f, bool once)
{
	char *argv[] = {(char *)pgh_projector_bin(),
			"--store",
			f->dir,
			"--dsn",
			f->dsn,
			"--migrations",
			(char *)pgh_migrations_dir(),
			"--retry-max-ms",
			"300",
			"--log-level",
			"warning",
			once ? "--once" : NULL,
			NULL};

	return kit_spawn(argv);
}

static void project_once(struct fixture *f)
{
	kit_wait_child(projector(f, true), 120000, 1);
}

static uint64_t head_of(evs_store *s)
{
	evs_store_info h;

	ck_assert_int_eq(evs_head(s, &h), EVS_OK);
	return h.last_position;
}

static void setup(struct fixture *f, uint64_t *rng, int events)
{
	memset(f, 0, sizeof *f);
	f->dir = kit_tmpdir("store");
	f->dsn = pgh_new_db();
	f->store = model_open(f->dir);
	model_generate(f->store, rng, events);
	f->head = head_of(f->store);
	project_once(f);
	f->c = pgh_connect(f->dsn);
	ck_assert_int_eq(pgh_int(f->c, "SELECT position FROM evs.checkpoints"
				       " WHERE projection = 'builtin'"),
			 (long long)f->head);
}

static void teardown(struct fixture *f)
{
	pgh_release(f->c, f->store, f->dir, f->dsn);
}

/* One event {"n": seq} on stream "lag-<seq % 3>"; its position. */
static uint64_t append_one(struct fixture *f)
{
	unsigned char data[16];
	char stream[32];
	evs_event_in ev;
	evs_append_result res;
	unsigned n = ++f->seq;

	memset(&ev, 0, sizeof ev);
	/* msgpack {"n": uint32} */
	data[0] = 0x81;
	data[1] = 0xa1;
	data[2] = 'n';
	data[3] = 0xce;
	data[4] = (unsigned char)(n >> 24);
	data[5] = (unsigned char)(n >> 16);
	data[6] = (unsigned char)(n >> 8);
	data[7] = (unsigned char)n;
	ev.type = "LagTested";
	ev.data = data;
	ev.data_len = 8;
	snprintf(stream, sizeof stream, "lag-%u", n % 3);
	ck_assert_int_eq(evs_append(f->store, stream, EVS_ANY, &ev, 1, &res), EVS_OK);
	return res.last_position;
}

static int64_t recorded_at(evs_store *s, uint64_t position)
{
	evs_iter *it;
	evs_event ev;
	int64_t t;

	ck_assert_int_eq(evs_read_all(s, position, EVS_FORWARD, NULL, 1, &it), EVS_OK);
	ck_assert_int_eq(evs_iter_next(it, &ev), EVS_OK);
	t = ev.recorded_at;
	evs_iter_free(it);
	return t;
}

/* evs-query as a process with --store, on a free loopback port. */
static pid_t query_daemon(struct fixture *f, const char *max_lag, unsigned *port)
{
	const char *const args[] = {"--dsn",           f->dsn,  "--store",       f->dir,
				    "--ready-max-lag", max_lag, "--log-level=1", NULL};

	return http_query_spawn(args, port);
}

/* The value of a metric line "name value" in a /metrics body; false when
 * absent. */
static bool metric(const char *body, const char *name, double *v)
{
	size_t n = strlen(name);
	const char *p = body;

	while ((p = strstr(p, name))) {
		if ((p == body || p[-1] == '\n') && p[n] == ' ') {
			*v = strtod(p + n + 1, NULL);
			return true;
		}
		p += n;
	}
	return false;
}

static double metric_of(unsigned port, const char *name)
{
	http_answer a;
	double v = -1;

	http_get(port, "/metrics", NULL, &a);
	ck_assert_int_eq(a.status, 200);
	ck_assert_msg(metric(a.body, name, &v), "no %s in\n%s", name, a.body);
	http_answer_free(&a);
	return v;
}

/* Wait (bounded) until a metric equals want. */
static void await_metric(unsigned port, const char *name, double want)
{
	int i;

	for (i = 0; i < 3000; i++) {
		http_answer a;
		double v;
		bool ok;

		http_get(port, "/metrics", NULL, &a);
		ok = a.status == 200 && metric(a.body, name, &v) && v == want;
		http_answer_free(&a);
		if (ok)
			return;
		pause_ms(10);
	}
	ck_abort_msg("metric %s never reached %g", name, want);
}

static bool is_null(const http_answer *a, const char *key)
{
	json_object *v;

	ck_assert_msg(a->json && json_object_object_get_ex(a->json, key, &v), "no \"%s\" in %s",
		      key, a->body);
	return v == NULL;
}

static double num(const http_answer *a, const char *key)
{
	json_object *v;

	ck_assert_msg(a->json && json_object_object_get_ex(a->json, key, &v) && v,
		      "no \"%s\" in %s", key, a->body);
	return json_object_get_double(v);
}

/* With --store: /ready and /metrics equal the store head and the
 * checkpoint exactly when quiet; lag in events and seconds while events
 * wait; 503 past ready_max_lag (and not at it); back to 0 once projected. */
START_TEST(lag_with_store)
{
	uint64_t rng = kit_seed("lag_with_store");
	struct fixture f;
	http_answer a;
	unsigned port;
	uint64_t p0, last = 0;
	int64_t t0, t1, rec;
	double lo, hi, s;
	pid_t pid;
	int i;

	setup(&f, &rng, 300);
	pid = query_daemon(&f, "50", &port);

	/* quiet: everything equals the head */
	http_get(port, "/ready", NULL, &a);
	ck_assert_msg(a.status == 200, "%ld %s", a.status, a.body);
	ck_assert_str_eq(http_str(&a, "status"), "ready");
	ck_assert_str_eq(http_str(&a, "lag_source"), "store");
	ck_assert_int_eq(http_int(&a, "position"), (long long)f.head);
	ck_assert_int_eq(http_int(&a, "store_head"), (long long)f.head);
	ck_assert_int_eq(http_int(&a, "lag"), 0);
	ck_assert(num(&a, "lag_seconds") == 0);
	ck_assert(num(&a, "checkpoint_age_seconds") >= 0);
	http_answer_free(&a);
	await_metric(port, "evsq_postgres_up", 1);
	await_metric(port, "evsq_projection_position", (double)f.head);
	ck_assert(metric_of(port, "evsq_store_head_position") == (double)f.head);
	ck_assert(metric_of(port, "evsq_projection_lag_events") == 0);
	ck_assert(metric_of(port, "evsq_projection_lag_seconds") == 0);

	/* 50 events appended, not projected: lag 50, still ready (not past) */
	p0 = f.head + 1;
	for (i = 0; i < 50; i++)
		last = append_one(&f);
	ck_assert_int_eq(last, f.head + 50);
	rec = recorded_at(f.store, p0);
	t0 = kit_now_ns();
	http_get(port, "/ready", NULL, &a);
	t1 = kit_now_ns();
	ck_assert_msg(a.status == 200, "%ld %s", a.status, a.body);
	ck_assert_int_eq(http_int(&a, "position"), (long long)f.head);
	ck_assert_int_eq(http_int(&a, "store_head"), (long long)last);
	ck_assert_int_eq(http_int(&a, "lag"), 50);
	/* the age of event head+1, as the server saw it during the request
	 * (printed with microseconds) */
	lo = (double)(t0 - rec) / 1e9 - 2e-6;
	hi = (double)(t1 - rec) / 1e9 + 2e-6;
	s = num(&a, "lag_seconds");
	ck_assert_msg(s > 0 && s >= lo && s <= hi, "lag_seconds %f not in [%f, %f]", s, lo, hi);
	http_answer_free(&a);
	ck_assert(metric_of(port, "evsq_projection_position") == (double)f.head);
	ck_assert(metric_of(port, "evsq_store_head_position") == (double)last);
	ck_assert(metric_of(port, "evsq_projection_lag_events") == 50);
	ck_assert(metric_of(port, "evsq_projection_lag_seconds") > 0);

	/* one more: past ready_max_lag */
	last = append_one(&f);
	http_get(port, "/ready", NULL, &a);
	ck_assert_msg(a.status == 503, "%ld %s", a.status, a.body);
	ck_assert_str_eq(http_str(&a, "error"), "projection_behind");
	ck_assert_int_eq(http_int(&a, "lag"), 51);
	ck_assert_int_eq(http_int(&a, "position"), (long long)f.head);
	ck_assert_int_eq(http_int(&a, "store_head"), (long long)last);
	ck_assert_ptr_nonnull(strstr(http_str(&a, "message"), "ready_max_lag 50"));
	ck_assert_str_eq(a.retry_after, "1");
	http_answer_free(&a);

	/* projected: caught up again, figures exact */
	project_once(&f);
	f.head = last;
	http_get(port, "/ready", NULL, &a);
	ck_assert_msg(a.status == 200, "%ld %s", a.status, a.body);
	ck_assert_int_eq(http_int(&a, "position"), (long long)last);
	ck_assert_int_eq(http_int(&a, "store_head"), (long long)last);
	ck_assert_int_eq(http_int(&a, "lag"), 0);
	ck_assert(num(&a, "lag_seconds") == 0);
	http_answer_free(&a);
	/* the metrics' checkpoint arrives by notification */
	await_metric(port, "evsq_projection_position", (double)last);
	ck_assert(metric_of(port, "evsq_store_head_position") == (double)last);
	ck_assert(metric_of(port, "evsq_projection_lag_events") == 0);
	ck_assert(metric_of(port, "evsq_projection_lag_seconds") == 0);
	ck_assert(metric_of(port, "evsq_checkpoint_notifications_total") >= 1);

	kill(pid, SIGTERM);
	kit_wait_child(pid, 120000, 1);
	teardown(&f);
}
END_TEST

/* Without a store: what PostgreSQL knows, said so; ready_max_lag refused
 * without a store; no checkpoint is 503; min_position beyond is 409. */
START_TEST(lag_without_store)
{
	uint64_t rng = kit_seed("lag_without_store");
	const char *settings[] = {"min_position_wait_ms=300", NULL};
	const char *other[] = {"projection=nosuch", NULL};
	struct fixture f;
	evsq_server *srv;
	evsq_config cfg;
	http_answer a;
	char err[512], path[64];
	unsigned port;
	double v;

	setup(&f, &rng, 100);
	srv = http_server(f.dsn, settings);
	port = evsq_server_port(srv);
	http_get(port, "/ready", NULL, &a);
	ck_assert_msg(a.status == 200, "%ld %s", a.status, a.body);
	ck_assert_int_eq(http_int(&a, "position"), (long long)f.head);
	ck_assert_str_eq(http_str(&a, "lag_source"), "postgres");
	ck_assert(is_null(&a, "lag"));
	ck_assert(is_null(&a, "lag_seconds"));
	ck_assert(is_null(&a, "store_head"));
	ck_assert(num(&a, "checkpoint_age_seconds") >= 0);
	ck_assert_ptr_nonnull(strstr(http_str(&a, "note"), "--store"));
	http_answer_free(&a);
	await_metric(port, "evsq_postgres_up", 1);
	await_metric(port, "evsq_projection_position", (double)f.head);
	http_get(port, "/metrics", NULL, &a);
	ck_assert(!metric(a.body, "evsq_store_head_position", &v));
	ck_assert(!metric(a.body, "evsq_projection_lag_events", &v));
	ck_assert(!metric(a.body, "evsq_projection_lag_seconds", &v));
	ck_assert_ptr_nonnull(strstr(a.body, "# TYPE evsq_projection_position gauge\n"));
	ck_assert_ptr_nonnull(strstr(a.body, "# HELP evsq_postgres_up "));
	http_answer_free(&a);

	/* no projector: min_position beyond the checkpoint is 409 with it */
	snprintf(path, sizeof path, "/streams/lag-1/state?min_position=%llu",
		 (unsigned long long)f.head + 1);
	http_get(port, path, NULL, &a);
	ck_assert_msg(a.status == 409, "%ld %s", a.status, a.body);
	ck_assert_str_eq(http_str(&a, "error"), "projection_behind");
	ck_assert_int_eq(http_int(&a, "position"), (long long)f.head);
	http_answer_free(&a);
	evsq_server_stop(srv);

	/* a projection without a checkpoint where another has one is refused
	 * at start (issue 10: the defaults of evs project and evs-query
	 * disagreed, and every answer said position 0) */
	ck_assert_int_eq(evsq_config_init(&cfg), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "port", "0", err, sizeof err), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "dsn", f.dsn, err, sizeof err), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "projection", "nosuch", err, sizeof err), EVSQ_OK);
	srv = NULL;
	ck_assert_int_eq(evsq_server_start(&cfg, NULL, NULL, &srv, err, sizeof err), EVSQ_INVALID);
	ck_assert_ptr_null(srv);
	ck_assert_msg(strstr(err, "projection \"nosuch\" has no checkpoint in the read-model "
				  "database (it has checkpoints of \"builtin\")"),
		      "%s", err);
	evsq_config_free(&cfg);

	/* in a database with no checkpoint at all (nothing projected yet) it
	 * starts and is not ready */
	pgh_exec(f.c, "DELETE FROM evs.checkpoints");
	srv = http_server(f.dsn, other);
	http_get(evsq_server_port(srv), "/ready", NULL, &a);
	ck_assert_msg(a.status == 503, "%ld %s", a.status, a.body);
	ck_assert_str_eq(http_str(&a, "error"), "unavailable");
	ck_assert_ptr_nonnull(strstr(http_str(&a, "message"), "\"nosuch\" has no checkpoint"));
	http_answer_free(&a);
	http_get(evsq_server_port(srv), "/metrics", NULL, &a);
	ck_assert(!metric(a.body, "evsq_projection_position", &v));
	http_answer_free(&a);
	evsq_server_stop(srv);

	/* ready_max_lag cannot be measured without the store */
	ck_assert_int_eq(evsq_config_init(&cfg), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "port", "0", err, sizeof err), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "dsn", f.dsn, err, sizeof err), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "ready_max_lag", "10", err, sizeof err), EVSQ_OK);
	srv = NULL;
	ck_assert_int_eq(evsq_server_start(&cfg, NULL, NULL, &srv, err, sizeof err), EVSQ_INVALID);
	ck_assert_ptr_null(srv);
	ck_assert_msg(strstr(err, "ready_max_lag needs \"store\""), "%s", err);
	ck_assert_int_eq(evsq_config_set(&cfg, "ready_max_lag", "-1", err, sizeof err),
			 EVSQ_INVALID);
	evsq_config_free(&cfg);
	teardown(&f);
}
END_TEST

struct waiter {
	unsigned port;
	char path[128];
	http_answer a;
	double ms;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	double t = mono_ms();

	http_get(w->port, w->path, NULL, &w->a);
	w->ms = mono_ms() - t;
	return NULL;
}

/* The answer for stream "lag-<seq % 3>" reflects position >= want and the
 * store's state of the stream. */
static void check_answer(struct fixture *f, const http_answer *a, uint64_t want, const char *stream)
{
	evs_stream_info si;

	ck_assert_msg(a->status == 200, "%ld %s", a->status, a->body);
	ck_assert_int_ge(http_int(a, "position"), (long long)want);
	ck_assert_int_eq(evs_stream_head(f->store, stream, &si), EVS_OK);
	ck_assert_int_eq(http_int(a, "version"), (long long)si.version);
	ck_assert_int_eq(http_int(a, "event_position"), (long long)si.last_position);
}

/* Ask for the stream of the event at pos (appended by append_one) with
 * min_position = pos: the answer holds it. */
static void ask_fresh(struct fixture *f, unsigned port, uint64_t pos)
{
	char path[128], stream[32];
	http_answer a;

	snprintf(stream, sizeof stream, "lag-%u", f->seq % 3);
	snprintf(path, sizeof path, "/streams/%s/state?min_position=%llu", stream,
		 (unsigned long long)pos);
	http_get(port, path, NULL, &a);
	check_answer(f, &a, pos, stream);
	http_answer_free(&a);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* A live projector commits; min_position waiters (asking before or after
 * the append) are answered with the new position. */
START_TEST(lag_min_position_notified)
{
	uint64_t rng = kit_seed("lag_min_position_notified");
	const char *settings[] = {"min_position_wait_ms=20000", NULL};
	struct fixture f;
	evsq_server *srv;
	double ms[20], n0;
	unsigned port;
	pid_t pid;
	int i;

	setup(&f, &rng, 50);
	srv = http_server(f.dsn, settings);
	port = evsq_server_port(srv);
	await_metric(port, "evsq_postgres_up", 1);
	n0 = metric_of(port, "evsq_checkpoint_notifications_total");
	pid = projector(&f, false);
	for (i = 0; i < 20; i++) {
		struct waiter w = {.port = port};
		char stream[32];
		uint64_t pos;
		pthread_t th;

		snprintf(stream, sizeof stream, "lag-%u", (f.seq + 1) % 3);
		if (i % 2) {
			/* the waiter asks first, for the next position */
			snprintf(w.path, sizeof w.path, "/streams/%s/state?min_position=%llu",
				 stream, (unsigned long long)head_of(f.store) + 1);
			ck_assert_int_eq(pthread_create(&th, NULL, waiter_main, &w), 0);
			pos = append_one(&f);
			pthread_join(th, NULL);
		} else {
			pos = append_one(&f);
			snprintf(w.path, sizeof w.path, "/streams/%s/state?min_position=%llu",
				 stream, (unsigned long long)pos);
			waiter_main(&w);
		}
		check_answer(&f, &w.a, pos, stream);
		http_answer_free(&w.a);
		ms[i] = w.ms;
	}
	/* the waits were ended by notifications: the listener stayed up and
	 * heard the projector's commits */
	ck_assert(metric_of(port, "evsq_postgres_up") == 1);
	ck_assert(metric_of(port, "evsq_checkpoint_notifications_total") > n0);
	qsort(ms, 20, sizeof ms[0], cmp_double);
	fprintf(stderr,
		"lag_min_position_notified: append to answer: min %.2f ms, median %.2f ms,"
		" max %.2f ms\n",
		ms[0], ms[10], ms[19]);
	kill(pid, SIGTERM);
	kit_wait_child(pid, 120000, 1);
	evsq_server_stop(srv);
	teardown(&f);
}
END_TEST

/* PostgreSQL restarted under a live projector and the listener: 503 while
 * it is away, right answers after, the listener back; the listener's
 * session killed: answers stay right (polling until it reconnects). */
START_TEST(lag_min_position_after_restart)
{
	uint64_t rng = kit_seed("lag_min_position_after_restart");
	const char *settings[] = {"min_position_wait_ms=30000", NULL};
	struct fixture f;
	evsq_server *srv;
	http_answer a;
	char path[128];
	unsigned port;
	uint64_t pos;
	double n0;
	pid_t pid;
	int i;

	if (!pgh_own_cluster()) {
		fprintf(stderr, "skipped: EVS_PG_DSN is set, the server is not ours to restart\n");
		return;
	}
	setup(&f, &rng, 50);
	srv = http_server(f.dsn, settings);
	port = evsq_server_port(srv);
	pid = projector(&f, false);
	await_metric(port, "evsq_postgres_up", 1);

	PQfinish(f.c);
	f.c = NULL;
	pgh_server_stop("fast");
	await_metric(port, "evsq_postgres_up", 0);
	http_get(port, "/ready", NULL, &a);
	ck_assert_msg(a.status == 503, "%ld %s", a.status, a.body);
	ck_assert_str_eq(http_str(&a, "error"), "unavailable");
	http_answer_free(&a);
	snprintf(path, sizeof path, "/streams/lag-0/state?min_position=1");
	http_get(port, path, NULL, &a);
	ck_assert_msg(a.status == 503, "%ld %s", a.status, a.body);
	http_answer_free(&a);

	/* appended while PostgreSQL is away, asked for once it is back */
	pos = append_one(&f);
	pgh_server_start();
	ask_fresh(&f, port, pos);

	/* the listener is back and hears commits again */
	await_metric(port, "evsq_postgres_up", 1);
	n0 = metric_of(port, "evsq_checkpoint_notifications_total");
	ask_fresh(&f, port, append_one(&f));
	ck_assert(metric_of(port, "evsq_checkpoint_notifications_total") > n0);

	/* the listener's session killed: right answers meanwhile and after */
	f.c = pgh_connect(f.dsn);
	ck_assert_int_eq(pgh_int(f.c, "SELECT count(pg_terminate_backend(pid))"
				      " FROM pg_stat_activity"
				      " WHERE application_name = 'evs-query-watch'"),
			 1);
	for (i = 0; i < 5; i++) {
		ask_fresh(&f, port, append_one(&f));
	}
	/* back: one listener session (the killed one gone) */
	await_metric(port, "evsq_postgres_up", 1);
	for (i = 0; i < 3000; i++) {
		if (pgh_int(f.c, "SELECT count(*) FROM pg_stat_activity"
				 " WHERE application_name = 'evs-query-watch'") == 1)
			break;
		pause_ms(10);
	}
	ck_assert_int_lt(i, 3000);

	kill(pid, SIGTERM);
	kit_wait_child(pid, 120000, 1);
	evsq_server_stop(srv);
	teardown(&f);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		lag_with_store,
		lag_without_store,
		lag_min_position_notified,
		lag_min_position_after_restart,
		NULL,
	};

	return http_main("http-lag", 300, tests);
}
