/*
 * metrics.c - GET /metrics (Prometheus text format 0.0.4) and the
 * request counters it shows: requests by status class, a latency
 * histogram, the batchers' statements and lookups, and the projection's
 * position and lag from the checkpoint listener's cache and the store's
 * head. A scrape runs no statement, so it stays cheap (and is answered on
 * the event loop).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "push.h"

/* Bounds (seconds) of evsq_request_duration_seconds. */
static const double buckets[EVSQ__N_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
						0.025,  0.05,  0.1,    0.5,   1};

void evsq__metrics_count(evsq_server *srv, unsigned status, int64_t dt_us)
{
	size_t i;

	atomic_fetch_add(&srv->requests[status / 100 < EVSQ__N_CLASSES ? status / 100 : 5], 1);
	atomic_fetch_add(&srv->latency_us_sum, (unsigned long long)dt_us);
	for (i = 0; i < EVSQ__N_BUCKETS && (double)dt_us / 1e6 > buckets[i]; i++)
		;
	atomic_fetch_add(&srv->hist[i], 1);
}

static void gauge(evs__buf *body, const char *name, const char *help, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void gauge(evs__buf *body, const char *name, const char *help, const char *fmt, ...)
{
	char value[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(value, sizeof value, fmt, ap);
	va_end(ap);
	evs__buf_printf(body, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", name, help, name, name,
			value);
}

static void requests(evsq_server *srv, evs__buf *body)
{
	unsigned long long cum = 0;
	size_t i;

	evs__buf_puts(body, "# HELP evsq_requests_total HTTP requests answered, by status class\n"
			    "# TYPE evsq_requests_total counter\n");
	for (i = 1; i < EVSQ__N_CLASSES; i++)
		evs__buf_printf(body, "evsq_requests_total{code=\"%zuxx\"} %llu\n", i,
				(unsigned long long)atomic_load(&srv->requests[i]));
	evs__buf_puts(body, "# HELP evsq_request_duration_seconds time to answer a request\n"
			    "# TYPE evsq_request_duration_seconds histogram\n");
	for (i = 0; i < EVSQ__N_BUCKETS; i++) {
		cum += atomic_load(&srv->hist[i]);
		evs__buf_printf(body, "evsq_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
				buckets[i], cum);
	}
	cum += atomic_load(&srv->hist[EVSQ__N_BUCKETS]);
	evs__buf_printf(body, "evsq_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
	evs__buf_printf(body, "evsq_request_duration_seconds_sum %.6f\n",
			(double)atomic_load(&srv->latency_us_sum) / 1e6);
	evs__buf_printf(body, "evsq_request_duration_seconds_count %llu\n", cum);
}

static void batches(evsq_server *srv, evs__buf *body)
{
	unsigned long long st = 0, lk = 0, a, b;
	int k;

	for (k = 0; k < srv->nloops; k++) {
		evsq__batcher_stats(srv->loops[k].batcher, &a, &b);
		st += a;
		lk += b;
	}
	evs__buf_printf(body,
			"# HELP evsq_batch_statements_total statements sent by the"
			" state-lookup batchers\n"
			"# TYPE evsq_batch_statements_total counter\n"
			"evsq_batch_statements_total %llu\n"
			"# HELP evsq_batch_lookups_total state lookups answered through the"
			" batchers (lookups / statements = mean batch size)\n"
			"# TYPE evsq_batch_lookups_total counter\n"
			"evsq_batch_lookups_total %llu\n",
			st, lk);
}

/* Projection lag, from the watcher's cache and the store head (never a
 * statement); figures not known are left out. */
static void lag(evsq_server *srv, evs__buf *body)
{
	evsq__watch_info wi;
	evsq__lag l;

	evsq__watch_status(srv->ctx.watch, &wi);
	memset(&l, 0, sizeof l);
	l.has_checkpoint = evsq__watch_position(srv->ctx.watch, srv->projection, &l.position);
	if (srv->store)
		evsq__lag_store(srv->store, &l);
	if (!srv->pool) { /* no read-model database: the store's head alone */
		if (l.store_ok)
			gauge(body, "evsq_store_head_position",
			      "last position of the store (--store)", "%lld", (long long)l.head);
		return;
	}
	gauge(body, "evsq_postgres_up",
	      "whether the service's session to the read-model database (the checkpoint"
	      " listener) is connected",
	      "%d", wi.up ? 1 : 0);
	evs__buf_printf(body,
			"# HELP evsq_checkpoint_notifications_total checkpoint notifications"
			" received (evs_checkpoint)\n"
			"# TYPE evsq_checkpoint_notifications_total counter\n"
			"evsq_checkpoint_notifications_total %llu\n",
			(unsigned long long)wi.wakeups);
	if (l.has_checkpoint)
		gauge(body, "evsq_projection_position",
		      "last committed checkpoint (global store position) of the projection", "%lld",
		      (long long)l.position);
	if (l.store_ok)
		gauge(body, "evsq_store_head_position", "last position of the store (--store)",
		      "%lld", (long long)l.head);
	if (l.lag_known) {
		gauge(body, "evsq_projection_lag_events",
		      "events in the store not yet projected (store head - checkpoint)", "%lld",
		      (long long)l.lag_events);
		gauge(body, "evsq_projection_lag_seconds",
		      "age of the oldest event not yet projected (0 when caught up)", "%.6f",
		      l.lag_s);
	}
}

unsigned evsq__metrics(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
		       evs__buf *body, const char **ctype)
{
	static const char *const none[] = {NULL};
	evsq__args a;
	unsigned status;

	(void)rest;
	if ((status = evsq__args_check(conn, none, &a, body)))
		return status;
	body->len = 0;
	requests(srv, body);
	batches(srv, body);
	lag(srv, body);
	evsq__push_metrics(srv->push, body); /* push.c: GET /events/stream */
	*ctype = "text/plain; version=0.0.4";
	return 200;
}
