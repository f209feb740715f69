/*
 * batch.c - the fast path of evs-query: state lookups (current, and as of
 * a time) from many HTTP requests answered by one statement.
 *
 * Why: on a small machine a lookup costs little inside PostgreSQL; what
 * costs is waking threads and processes. A thread per request blocking on
 * its own statement wakes four times per request (HTTP thread, backend,
 * HTTP thread, client). Here each HTTP event loop (http.c) owns a batcher:
 * its lookups queue while the loop's connection is busy, and the next
 * statement, with arrays of streams (and times), answers all of them: one
 * backend wake-up, and one loop wake-up, for many requests. A lone
 * request is sent at once (no waiting to fill a batch), so light load
 * keeps its latency.
 *
 * A batcher belongs to one thread (its loop): no locks. Its sessions are
 * non-blocking, each with at most one statement in flight. A connection
 * that breaks has its lookups queued again once; a second failure answers
 * 503. Statements and answers are the workers' own (pool.c,
 * evsq__state_answer), so both paths answer alike.
 */
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Upper bound of lookups per statement: arrays of this size keep a
 * statement well under a millisecond on the 2-core machine. */
#define BATCH_MAX 256
/* After a failed connect, lookups are answered 503 at once for this
 * long instead of each paying for a new attempt. */
#define RECONNECT_PAUSE_MS 200

struct bconn {
	PGconn *conn;
	evsq__job *batch[BATCH_MAX]; /* in flight, by ordinal - 1 */
	int n;                       /* lookups not answered yet */
	int kind;
	bool busy;     /* a statement is in flight (until its NULL result) */
	bool flushing; /* the statement is not all sent yet */
};

struct evsq__batcher {
	evsq__job *head, *tail; /* queued lookups */
	char *dsn, *projection;
	long statement_timeout_ms;
	int nconn;
	struct bconn *conns;
	int64_t connect_after_ms; /* no new attempt before */
	evsq_log_fn log;
	void *log_ctx;
	atomic_ullong batches, lookups;
	evp_buf streams, times; /* parameter text, reused */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
	evsq__job **pp, *j;
	int n = 0, kind;

	if (!b->head)
		return 0;
	kind = b->head->kind;
	b->tail = NULL;
	for (pp = &b->head; (j = *pp) && n < BATCH_MAX;) {
		if (j->kind == kind) {
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

/* The connection broke with lookups in flight: a fresh connection gets
 * them again, once; then 503. */
static void broken(evsq__batcher *b, struct bconn *c, const char *why)
{
	evsq__job *again[BATCH_MAX];
	int i, n = 0;
	char msg[512];

	snprintf(msg, sizeof msg, "read-model database unavailable: %s", why);
	for (i = 0; i < c->n; i++) {
		if (c->batch[i]->attempts++ == 0)
			again[n++] = c->batch[i];
		else
			answer(c->batch[i], 503, "unavailable", msg);
	}
	c->n = 0;
	c->busy = false;
	c->flushing = false;
	PQfinish(c->conn);
	c->conn = NULL;
	requeue(b, again, n);
}

static bool ensure_connected(evsq__batcher *b, struct bconn *c)
{
	if (c->conn && PQstatus(c->conn) == CONNECTION_OK)
		return true;
	if (c->conn) {
		PQfinish(c->conn);
		c->conn = NULL;
	}
	if (now_ms() < b->connect_after_ms)
		return false;
	c->conn = evsq__connect(b->dsn, b->statement_timeout_ms, b->log, b->log_ctx);
	if (!c->conn || PQsetnonblocking(c->conn, 1)) {
		PQfinish(c->conn);
		c->conn = NULL;
		b->connect_after_ms = now_ms() + RECONNECT_PAUSE_MS;
		return false;
	}
	return true;
}

/* Send one batch on idle connection c; false when the queue is empty. */
static bool send_batch(evsq__batcher *b, struct bconn *c)
{
	const char *params[3];
	char name[16];
	int i, n = take(b, c->batch), rc;

	if (!n)
		return false;
	if (!ensure_connected(b, c)) {
		fail_all(c->batch, n, 503, "unavailable",
			 "could not connect to the read-model database");
		return true;
	}
	c->n = n;
	c->kind = c->batch[0]->kind;
	b->streams.len = 0;
	b->times.len = 0;
	evp_buf_putc(&b->streams, '{');
	evp_buf_putc(&b->times, '{');
	for (i = 0; i < n; i++) {
		if (i) {
			evp_buf_putc(&b->streams, ',');
			evp_buf_putc(&b->times, ',');
		}
		evp_array_elem(&b->streams, c->batch[i]->stream, strlen(c->batch[i]->stream));
		evp_buf_printf(&b->times, "%lld", (long long)c->batch[i]->as_of_us);
	}
	evp_buf_putc(&b->streams, '}');
	evp_buf_putc(&b->times, '}');
	if (!evp_buf_cstr(&b->streams) || !evp_buf_cstr(&b->times)) {
		c->n = 0;
		fail_all(c->batch, n, 500, "internal", "out of memory");
		return true;
	}
	params[0] = b->projection;
	params[1] = b->streams.ptr;
	params[2] = b->times.ptr;
	snprintf(name, sizeof name, "q%d",
		 c->kind == EVSQ__J_CURRENT ? EVSQ__S_CURRENT_N : EVSQ__S_AS_OF_N);
	if (!PQsendQueryPrepared(c->conn, name, c->kind == EVSQ__J_CURRENT ? 2 : 3, params, NULL,
				 NULL, 0)) {
		broken(b, c, PQerrorMessage(c->conn));
		return true;
	}
	c->busy = true;
	rc = PQflush(c->conn);
	if (rc < 0)
		broken(b, c, PQerrorMessage(c->conn));
	else
		c->flushing = rc == 1;
	atomic_fetch_add(&b->batches, 1);
	atomic_fetch_add(&b->lookups, (unsigned long long)n);
	return true;
}

/* A statement's result for the batch on c. */
static void deliver(evsq__batcher *b, struct bconn *c, PGresult *r)
{
	bool answered[BATCH_MAX] = {false};
	int i, rows = PQntuples(r);

	(void)b;
	for (i = 0; i < rows; i++) {
		long k = strtol(PQgetvalue(r, i, 0), NULL, 10) - 1;
		evsq__job *job;

		if (k < 0 || k >= c->n || answered[k])
			continue;
		job = c->batch[k];
		job->status = evsq__state_answer(r, i, job->kind, job->stream, &job->body);
		answered[k] = true;
	}
	for (i = 0; i < c->n; i++) {
		if (answered[i])
			c->batch[i]->done(c->batch[i]);
		else
			answer(c->batch[i], 500, "internal", "no answer for this lookup");
	}
	c->n = 0;
}

/* Input on a busy connection: consume, and deliver a complete result. */
static void on_input(evsq__batcher *b, struct bconn *c)
{
	PGresult *r;

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
	while (c->busy && !PQisBusy(c->conn)) {
		r = PQgetResult(c->conn);
		if (!r) { /* the statement is over: the connection is idle */
			c->busy = false;
			fail_all(c->batch, c->n, 500, "internal", "statement returned nothing");
			c->n = 0;
			break;
		}
		if (!c->n) {
			PQclear(r);
			continue;
		}
		if (PQresultStatus(r) == PGRES_TUPLES_OK) {
			deliver(b, c, r);
		} else {
			const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
			char msg[512];

			snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
			if (PQstatus(c->conn) != CONNECTION_OK || !st || !strncmp(st, "08", 2) ||
			    !strncmp(st, "57P", 3)) {
				PQclear(r);
				broken(b, c, msg);
				return;
			}
			if (!strcmp(st, "57014"))
				fail_all(c->batch, c->n, 503, "unavailable", "statement timed out");
			else
				fail_all(c->batch, c->n, 500, "internal", msg);
			c->n = 0;
		}
		PQclear(r);
	}
}

void evsq__batcher_pump(evsq__batcher *b)
{
	int i;

	for (i = 0; i < b->nconn; i++)
		while (!b->conns[i].busy && send_batch(b, &b->conns[i]))
			;
}

int evsq__batcher_pollfds(evsq__batcher *b, struct pollfd *fds)
{
	int i, n = 0;

	for (i = 0; i < b->nconn; i++) {
		struct bconn *c = &b->conns[i];

		fds[i].fd = c->busy ? PQsocket(c->conn) : -1; /* poll skips -1 */
		fds[i].events = (short)(POLLIN | (c->flushing ? POLLOUT : 0));
		fds[i].revents = 0;
		n++;
	}
	return n;
}

void evsq__batcher_ready(evsq__batcher *b, const struct pollfd *fds)
{
	int i;

	for (i = 0; i < b->nconn; i++)
		if (fds[i].fd >= 0 && fds[i].revents && b->conns[i].busy)
			on_input(b, &b->conns[i]);
}

int evsq__batcher_new(const char *dsn, int connections, long statement_timeout_ms,
		      const char *projection, evsq_log_fn log, void *log_ctx, evsq__batcher **out)
{
	evsq__batcher *b = calloc(1, sizeof *b);

	if (!b)
		return EVSQ_NOMEM;
	b->dsn = strdup(dsn);
	b->projection = strdup(projection);
	b->conns = calloc((size_t)connections, sizeof *b->conns);
	if (!b->dsn || !b->projection || !b->conns) {
		evsq__batcher_free(b);
		return EVSQ_NOMEM;
	}
	b->nconn = connections;
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
	if (getenv("EVSQ_DEBUG_BATCH"))
		fprintf(stderr, "batcher: %llu statements, %llu lookups\n",
			(unsigned long long)b->batches, (unsigned long long)b->lookups);
	for (i = 0; b->conns && i < b->nconn; i++) {
		struct bconn *c = &b->conns[i];

		fail_all(c->batch, c->n, 503, "unavailable", "the service is stopping");
		PQfinish(c->conn);
	}
	for (j = b->head; j; j = next) {
		next = j->next;
		answer(j, 503, "unavailable", "the service is stopping");
	}
	evp_buf_free(&b->streams);
	evp_buf_free(&b->times);
	free(b->conns);
	free(b->projection);
	free(b->dsn);
	free(b);
}

void evsq__batcher_stats(evsq__batcher *b, unsigned long long *batches, unsigned long long *lookups)
{
	*batches = b ? atomic_load(&b->batches) : 0;
	*lookups = b ? atomic_load(&b->lookups) : 0;
}
