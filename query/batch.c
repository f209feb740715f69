/*
 * batch.c - the fast path of evs-query: state lookups (current, and as of
 * a time) and one key of a declared temporal table as of a time
 * (EVSQ__J_SQL, model_fast.c) from many HTTP requests answered by one
 * statement. Its sessions are batch_conn.c's.
 *
 * Why: on a small machine a lookup costs little inside PostgreSQL; what
 * costs is waking threads and processes. A thread per request blocking on
 * its own statement wakes four times per request (HTTP thread, backend,
 * HTTP thread, client). Here each HTTP event loop (server.c) owns a batcher:
 * its lookups queue while the loop's connection is busy, and the next
 * statement, with arrays of streams (and times), answers all of them: one
 * backend wake-up, and one loop wake-up, for many requests. A lone
 * request is sent at once (no waiting to fill a batch), so light load
 * keeps its latency.
 *
 * A batcher belongs to one thread (its loop): no locks (only the counters
 * are atomic, for /metrics), except around a session being connected on
 * a connector thread of its own, so that the loop never waits for a
 * connect: its lookups wait in the queue and the connector wakes the loop
 * (through the loop's eventfd) when the session is there. Its sessions are non-blocking, in libpq
 * pipeline mode with up to `depth` statements in flight, each followed by
 * its own sync. A connection that breaks has its lookups queued again
 * once; a second failure answers 503 (model lookups go to the workers
 * instead, as do those of a model statement that fails). Statements and
 * answers are the workers' own (pool.c, evsq__state_answer; models_time.c,
 * evsq__key_json), so both paths answer alike.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"

static void answer(evsq__job *job, unsigned status, const char *code, const char *msg)
{
	job->status = status;
	evsq__error(&job->body, code, msg);
	job->done(job);
}

void evsq__batcher_submit(evsq__batcher *b, evsq__job *job)
{
	job->next = NULL;
	if (b->tail)
		b->tail->next = job;
	else
		b->head = job;
	b->tail = job;
}

/* Up to BATCH_MAX queued lookups of the first one's kind, in order. */
static int take(evsq__batcher *b, evsq__job **out)
{
	evsq__job **pp, *j, *first = b->head;
	int n = 0;

	if (!b->head)
		return 0;
	b->tail = NULL;
	for (pp = &b->head; (j = *pp) && n < BATCH_MAX;) {
		if (j->kind == first->kind &&
		    (j->kind != EVSQ__J_SQL ||
		     (!strcmp(j->sql, first->sql) && !strcmp(j->projection, first->projection)))) {
			*pp = j->next;
			out[n++] = j;
		} else {
			b->tail = j;
			pp = &j->next;
		}
	}
	/* the tail is the last job left in the list */
	for (j = *pp; j; j = j->next)
		b->tail = j;
	return n;
}

/* Put lookups back at the head of the queue (their connection broke). */
static void requeue(evsq__batcher *b, evsq__job **jobs, int n)
{
	int i;

	for (i = n - 1; i >= 0; i--) {
		jobs[i]->next = b->head;
		b->head = jobs[i];
		if (!b->tail)
			b->tail = jobs[i];
	}
}

static void fail_all(evsq__job **jobs, int n, unsigned status, const char *code, const char *msg)
{
	int i;

	for (i = 0; i < n; i++)
		answer(jobs[i], status, code, msg);
}

/* Lookups of a failed EVSQ__J_SQL batch: the workers answer them as any
 * request of their route (a table changed under the cached catalog is
 * read again there; an error is explained there). */
static void to_workers(evsq__batcher *b, struct batch *bt)
{
	int i;

	for (i = 0; i < bt->n; i++) {
		bt->jobs[i]->kind = EVSQ__J_RUN;
		evsq__workers_submit(b->workers, bt->jobs[i]);
	}
	bt->n = 0;
}

/* The connection broke with lookups in flight: a fresh connection gets
 * them again, once; then 503. */
static void broken(evsq__batcher *b, struct bconn *c, const char *why)
{
	evsq__job *again[DEPTH * BATCH_MAX];
	int i, k, n = 0;
	char msg[512];

	snprintf(msg, sizeof msg, "read-model database unavailable: %s", why);
	for (k = 0; k < c->count; k++) {
		struct batch *bt = &c->ring[(c->head + k) % DEPTH];

		if (bt->n && bt->jobs[0]->kind == EVSQ__J_SQL) {
			/* the workers' sessions reconnect as they need */
			to_workers(b, bt);
			continue;
		}
		for (i = 0; i < bt->n; i++) {
			if (bt->jobs[i]->attempts++ == 0) {
				again[n++] = bt->jobs[i];
			} else {
				answer(bt->jobs[i], 503, "unavailable", msg);
				b->answered++;
			}
		}
		bt->n = 0;
	}
	c->head = c->count = 0;
	c->stage = WANT_RESULT;
	c->flushing = false;
	PQfinish(c->conn);
	c->conn = NULL;
	evsq__bconn_forget(c);
	requeue(b, again, n);
}

/* Send the statement of an EVSQ__J_SQL batch: prepared on the session
 * (ahead of it in the same pipeline segment, the first time), or
 * unprepared when the session has as many as it keeps. */
static int send_sql(struct bconn *c, struct batch *bt, const char *const *params)
{
	const char *sql = bt->jobs[0]->sql;
	char name[24];
	int i, slot = -1;

	for (i = 0; i < PREPARED_MAX; i++) {
		if (c->prepared[i] && !strcmp(c->prepared[i], sql))
			break;
		if (!c->prepared[i] && slot < 0)
			slot = i;
	}
	if (i == PREPARED_MAX) {
		if (slot < 0 || !(c->prepared[slot] = strdup(sql)))
			return PQsendQueryParams(c->conn, sql, 3, NULL, params, NULL, NULL, 0);
		snprintf(name, sizeof name, "evsq_b%d", slot);
		if (!PQsendPrepare(c->conn, name, sql, 3, NULL))
			return 0;
		bt->prep = slot;
	} else {
		snprintf(name, sizeof name, "evsq_b%d", i);
	}
	return PQsendQueryPrepared(c->conn, name, 3, params, NULL, NULL, 0);
}

/* Send one batch on connection c (which has room); false when the queue
 * is empty. */
static bool send_batch(evsq__batcher *b, struct bconn *c)
{
	struct batch *bt = &c->ring[(c->head + c->count) % DEPTH];
	const char *params[3];
	const char *name;
	int i, n, rc, kind, state, ok;

	if (!b->head)
		return false;
	state = evsq__bconn_ensure(b, c);
	if (state == CONN_WAIT)
		return false; /* the lookups wait for the session */
	n = take(b, bt->jobs);
	if (state == CONN_DOWN) {
		b->answered += n;
		fail_all(bt->jobs, n, 503, "unavailable",
			 "could not connect to the read-model database");
		return true;
	}
	kind = bt->jobs[0]->kind;
	bt->prep = -1;
	b->streams.len = 0;
	b->times.len = 0;
	evs__buf_putc(&b->streams, '{');
	evs__buf_putc(&b->times, '{');
	for (i = 0; i < n; i++) {
		if (i) {
			evs__buf_putc(&b->streams, ',');
			evs__buf_putc(&b->times, ',');
		}
		evp_array_elem(&b->streams, bt->jobs[i]->stream, strlen(bt->jobs[i]->stream));
		if (kind == EVSQ__J_SQL)
			evp_array_elem(&b->times, bt->jobs[i]->when, strlen(bt->jobs[i]->when));
		else
			evs__buf_printf(&b->times, "%lld", (long long)bt->jobs[i]->as_of_us);
	}
	evs__buf_putc(&b->streams, '}');
	evs__buf_putc(&b->times, '}');
	if (!evs__buf_cstr(&b->streams) || !evs__buf_cstr(&b->times)) {
		b->answered += n;
		fail_all(bt->jobs, n, 500, "internal", "out of memory");
		return true;
	}
	bt->n = n;
	params[0] = kind == EVSQ__J_SQL ? bt->jobs[0]->projection : b->projection;
	params[1] = b->streams.ptr;
	params[2] = b->times.ptr;
	if (kind == EVSQ__J_SQL) {
		ok = send_sql(c, bt, params);
	} else {
		name = evsq__stmts[kind == EVSQ__J_CURRENT ? EVSQ__S_CURRENT_N : EVSQ__S_AS_OF_N]
			       .name;
		ok = PQsendQueryPrepared(c->conn, name, kind == EVSQ__J_CURRENT ? 2 : 3, params,
					 NULL, NULL, 0);
	}
	if (c->count++ == 0)
		c->stage = bt->prep >= 0 ? WANT_PREP : WANT_RESULT;
	/* a sync per statement: a statement that fails fails only its batch */
	if (!ok || !PQpipelineSync(c->conn)) {
		broken(b, c, PQerrorMessage(c->conn));
		return true;
	}
	rc = PQflush(c->conn);
	if (rc < 0)
		broken(b, c, PQerrorMessage(c->conn));
	else
		c->flushing = rc == 1;
	atomic_fetch_add(&b->batches, 1);
	atomic_fetch_add(&b->lookups, (unsigned long long)n);
	return true;
}

/* A statement's rows: the answers of batch bt. */
static void deliver(struct batch *bt, PGresult *r)
{
	bool answered[BATCH_MAX] = {false};
	int i, rows = PQntuples(r);

	for (i = 0; i < rows; i++) {
		long k = strtol(PQgetvalue(r, i, 0), NULL, 10) - 1;
		evsq__job *job;

		if (k < 0 || k >= bt->n || answered[k])
			continue;
		job = bt->jobs[k];
		job->status =
			job->kind == EVSQ__J_SQL
				? job->answer(job, r, i)
				: evsq__state_answer(r, i, job->kind, job->stream, &job->body);
		answered[k] = true;
	}
	for (i = 0; i < bt->n; i++) {
		if (answered[i])
			bt->jobs[i]->done(bt->jobs[i]);
		else
			answer(bt->jobs[i], 500, "internal", "no answer for this lookup");
	}
	bt->n = 0;
}

/* The result (rows or error) of the oldest batch. False when the
 * connection broke (its lookups went back to the queue). */
static bool on_result(evsq__batcher *b, struct bconn *c, PGresult *r)
{
	struct batch *bt = &c->ring[c->head];
	const char *st;
	char msg[512];

	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		deliver(bt, r);
		return true;
	}
	st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
	if (PQstatus(c->conn) != CONNECTION_OK ||
	    (PQresultStatus(r) != PGRES_PIPELINE_ABORTED &&
	     (!st || !strncmp(st, "08", 2) || !strncmp(st, "57P", 3)))) {
		broken(b, c, msg);
		return false;
	}
	if (bt->n && bt->jobs[0]->kind == EVSQ__J_SQL)
		to_workers(b, bt);
	else if (PQresultStatus(r) == PGRES_PIPELINE_ABORTED)
		fail_all(bt->jobs, bt->n, 500, "internal", "statement not run");
	else if (!strcmp(st, "57014"))
		fail_all(bt->jobs, bt->n, 503, "unavailable", "statement timed out");
	else
		fail_all(bt->jobs, bt->n, 500, "internal", msg);
	bt->n = 0;
	return true;
}

/* Input on a busy connection: consume, deliver what is complete. */
static void on_input(evsq__batcher *b, struct bconn *c)
{
	if (c->flushing) {
		int rc = PQflush(c->conn);

		if (rc < 0) {
			broken(b, c, PQerrorMessage(c->conn));
			return;
		}
		c->flushing = rc == 1;
	}
	if (!PQconsumeInput(c->conn)) {
		broken(b, c, PQerrorMessage(c->conn));
		return;
	}
	while (c->count && !PQisBusy(c->conn)) {
		PGresult *r = PQgetResult(c->conn);

		/* out of step with the protocol (no result where the sync should
		 * be, or a session gone bad without a read failing): start over on
		 * a fresh session rather than spin */
		if (PQstatus(c->conn) != CONNECTION_OK || (!r && c->stage == WANT_SYNC)) {
			PQclear(r);
			broken(b, c,
			       PQstatus(c->conn) != CONNECTION_OK ? PQerrorMessage(c->conn)
								  : "protocol out of step");
			return;
		}
		switch (c->stage) {
		case WANT_PREP: /* its failure fails the statement too: the workers answer */
			if (r && PQresultStatus(r) != PGRES_COMMAND_OK) {
				struct batch *bt = &c->ring[c->head];

				free(c->prepared[bt->prep]);
				c->prepared[bt->prep] = NULL;
			}
			c->stage = r ? WANT_PREP_END : WANT_RESULT;
			break;
		case WANT_PREP_END:
			if (!r)
				c->stage = WANT_RESULT;
			break;
		case WANT_RESULT:
			if (!r) { /* cannot happen for a SELECT: the batch got nothing */
				fail_all(c->ring[c->head].jobs, c->ring[c->head].n, 500, "internal",
					 "statement returned nothing");
				c->ring[c->head].n = 0;
				c->stage = WANT_SYNC;
				break;
			}
			if (!on_result(b, c, r)) {
				PQclear(r);
				return;
			}
			c->stage = WANT_END;
			break;
		case WANT_END:
			if (!r)
				c->stage = WANT_SYNC;
			break;
		default:
			if (r && PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
				c->head = (c->head + 1) % DEPTH;
				c->count--;
				c->stage = c->count && c->ring[c->head].prep >= 0 ? WANT_PREP
										  : WANT_RESULT;
			}
			break;
		}
		PQclear(r);
	}
}

int evsq__batcher_pump(evsq__batcher *b)
{
	int i;

	if (!b)
		return 0; /* no read-model database */
	b->answered = 0;
	for (i = 0; i < b->nconn; i++)
		while (b->conns[i].count < b->depth && send_batch(b, &b->conns[i]))
			;
	return b->answered;
}

int evsq__batcher_pollfds(evsq__batcher *b, struct pollfd *fds)
{
	int i, n = 0;

	for (i = 0; b && i < b->nconn; i++) {
		struct bconn *c = &b->conns[i];

		fds[i].fd = c->count ? PQsocket(c->conn) : -1; /* poll skips -1 */
		fds[i].events = (short)(POLLIN | (c->flushing ? POLLOUT : 0));
		fds[i].revents = 0;
		n++;
	}
	return n;
}

void evsq__batcher_ready(evsq__batcher *b, const struct pollfd *fds)
{
	int i;

	for (i = 0; b && i < b->nconn; i++)
		if (fds[i].fd >= 0 && fds[i].revents && b->conns[i].count)
			on_input(b, &b->conns[i]);
}

int evsq__batcher_new(const char *dsn, int connections, int depth, long statement_timeout_ms,
		      const char *projection, int wake_fd, evsq__workers *workers, evs_log_fn log,
		      void *log_ctx, evsq__batcher **out)
{
	evsq__batcher *b = calloc(1, sizeof *b);

	if (!b)
		return EVSQ_NOMEM;
	pthread_mutex_init(&b->mu, NULL);
	b->wake_fd = wake_fd;
	b->workers = workers;
	b->dsn = strdup(dsn);
	b->projection = strdup(projection);
	b->conns = calloc((size_t)connections, sizeof *b->conns);
	if (!b->dsn || !b->projection || !b->conns) {
		evsq__batcher_free(b);
		return EVSQ_NOMEM;
	}
	b->nconn = connections;
	b->depth = depth < 1 ? 1 : depth > DEPTH ? DEPTH : depth;
	b->statement_timeout_ms = statement_timeout_ms;
	b->log = log;
	b->log_ctx = log_ctx;
	*out = b;
	return EVSQ_OK;
}

void evsq__batcher_free(evsq__batcher *b)
{
	evsq__job *j, *next;
	int i;

	if (!b)
		return;
	for (i = 0; b->conns && i < b->nconn; i++) {
		struct bconn *c = &b->conns[i];
		int k;

		if (c->connecting) { /* waits for the connect to end (its timeout) */
			pthread_join(c->connector, NULL);
			PQfinish(c->fresh);
		}
		for (k = 0; k < c->count; k++) {
			struct batch *bt = &c->ring[(c->head + k) % DEPTH];

			fail_all(bt->jobs, bt->n, 503, "unavailable", "the service is stopping");
		}
		PQfinish(c->conn);
		evsq__bconn_forget(c);
	}
	for (j = b->head; j; j = next) {
		next = j->next;
		answer(j, 503, "unavailable", "the service is stopping");
	}
	evs__buf_free(&b->streams);
	evs__buf_free(&b->times);
	pthread_mutex_destroy(&b->mu);
	free(b->conns);
	free(b->projection);
	free(b->dsn);
	free(b);
}
