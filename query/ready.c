/*
 * ready.c - GET /ready: 200 when PostgreSQL answers and the projection
 * has a checkpoint (and, with --store and --ready-max-lag, is no more
 * than that many events behind the store's head), else 503. One
 * statement through the pool, then the store (lag.c).
 *
 *   {"status":"ready","position":P,"checkpoint_age_seconds":A,
 *    "lag_source":"store"|"postgres","store_head":H,"lag":N,"lag_seconds":S}
 */
#include <stdio.h>

#include "server.h"

/* The lag figures of a /ready answer, after "position". */
static void put_lag(evs__buf *body, const evsq__lag *l)
{
	evs__buf_printf(body, ",\"checkpoint_age_seconds\":%.6f", l->checkpoint_age_s);
	if (l->lag_known)
		evs__buf_printf(body,
				",\"lag_source\":\"store\",\"store_head\":%lld,\"lag\":%lld,"
				"\"lag_seconds\":%.6f",
				(long long)l->head, (long long)l->lag_events, l->lag_s);
	else
		evs__buf_puts(body, ",\"lag_source\":\"postgres\",\"store_head\":null,"
				    "\"lag\":null,\"lag_seconds\":null");
}

/* Without a read-model database (--store alone): 200 with the head when
 * the store reads, else 503. */
static unsigned store_only(evsq_server *srv, evs__buf *body)
{
	evsq__lag l;

	memset(&l, 0, sizeof l);
	evsq__lag_store(srv->store, &l);
	body->len = 0;
	if (!l.store_ok) {
		evsq__error(body, "unavailable", l.store_err);
		return 503;
	}
	evs__buf_printf(body,
			"{\"status\":\"ready\",\"database\":null,\"store_head\":%lld,\"note\":"
			"\"no read-model database (--dsn): only the store's routes are served\"}\n",
			(long long)l.head);
	return 200;
}

unsigned evsq__ready(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
		     evs__buf *body, const char **ctype)
{
	evsq__lag l;
	char msg[512];

	static const char *const none[] = {NULL};
	evsq__args a;
	unsigned status;

	(void)rest;
	(void)ctype;
	if ((status = evsq__args_check(conn, none, &a, body)))
		return status;
	if (!srv->pool) /* the store's routes only: ready when its head reads */
		return store_only(srv, body);
	evsq__lag_measure(srv->pool, srv->store, srv->projection, &l);
	body->len = 0;
	if (!l.pg_ok) {
		evsq__error(body, "unavailable", l.err);
		return 503;
	}
	if (!l.has_checkpoint) {
		snprintf(msg, sizeof msg, "projection \"%.200s\" has no checkpoint yet",
			 srv->projection);
		evsq__error(body, "unavailable", msg);
		return 503;
	}
	if (srv->store && !l.store_ok) {
		evsq__error(body, "unavailable", l.store_err);
		return 503;
	}
	if (srv->store && !l.lag_known) {
		snprintf(msg, sizeof msg,
			 "store head %lld is behind the checkpoint %lld of projection \"%.200s\":"
			 " --store is not the store this projection follows",
			 (long long)l.head, (long long)l.position, srv->projection);
		evsq__error(body, "unavailable", msg);
		return 503;
	}
	if (srv->ready_max_lag && l.lag_events > srv->ready_max_lag) {
		evs__buf_puts(body, "{\"error\":\"projection_behind\",\"message\":");
		snprintf(msg, sizeof msg,
			 "projection \"%.200s\" is %lld events behind the store head %lld"
			 " (ready_max_lag %ld)",
			 srv->projection, (long long)l.lag_events, (long long)l.head,
			 srv->ready_max_lag);
		evsq__json_str(body, msg);
		evs__buf_printf(body, ",\"position\":%lld", (long long)l.position);
		put_lag(body, &l);
		evs__buf_puts(body, "}\n");
		return 503;
	}
	evs__buf_printf(body, "{\"status\":\"ready\",\"position\":%lld", (long long)l.position);
	put_lag(body, &l);
	if (!srv->store)
		evs__buf_puts(body, ",\"note\":\"no --store: lag in events and seconds is not known"
				    " here; checkpoint_age_seconds is the time since the projector"
				    " last committed\"");
	evs__buf_puts(body, "}\n");
	return 200;
}
