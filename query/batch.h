/*
 * batch.h - what batch.c (the batcher's queue, statements and results)
 * and batch_conn.c (its sessions: connected on a thread of their own;
 * new, stats) share; private to those two files. See batch.c.
 */
#ifndef EVSQ_BATCH_H
#define EVSQ_BATCH_H

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"

/* Upper bound of lookups per statement: arrays of this size keep a
 * statement well under a millisecond on the 2-core machine. */
#define BATCH_MAX 256
/* Statements in flight per connection (libpq pipeline mode): while the
 * backend runs one, the next waits in its socket, so under load it goes
 * from statement to statement without sleeping (a sleep and wake-up per
 * statement cost more than the statement on this machine). */
#define DEPTH 4 /* the most; the configured depth is b->depth */
/* After a failed connect, lookups are answered 503 at once for this
 * long instead of each paying for a new attempt. */
#define RECONNECT_PAUSE_MS 200

/* Statements of declared tables (EVSQ__J_SQL) prepared per session,
 * named "evsq_b<slot>"; past this many they run unprepared. */
#define PREPARED_MAX 32

struct batch {
	evsq__job *jobs[BATCH_MAX]; /* by ordinal - 1 */
	int n;                      /* lookups not answered yet */
	int prep;                   /* slot prepared ahead of the statement, or -1 */
};

/* Results of the oldest batch arrive as: (the prepare's result, NULL,)
 * its result, NULL, the sync. */
enum { WANT_PREP, WANT_PREP_END, WANT_RESULT, WANT_END, WANT_SYNC };

struct bconn {
	PGconn *conn;
	struct batch ring[DEPTH]; /* in flight, oldest at head */
	int head, count;
	int stage;     /* of the oldest batch */
	bool flushing; /* statements not all sent yet */
	/* a connect runs on its own thread, never on the loop's */
	evsq__batcher *b;
	pthread_t connector;
	bool connecting;              /* the connector thread runs (or is not joined) */
	bool connect_done;            /* under b->mu: it finished, result in fresh */
	PGconn *fresh;                /* under b->mu: its session, or NULL */
	char *prepared[PREPARED_MAX]; /* SQL of evsq_b<slot> on conn, or NULL */
};

struct evsq__batcher {
	evsq__job *head, *tail; /* queued lookups */
	char *dsn, *projection;
	long statement_timeout_ms;
	int nconn, depth;
	struct bconn *conns;
	int answered;           /* lookups answered without a result (503/500) */
	int wake_fd;            /* the loop's eventfd: a connector thread finished */
	evsq__workers *workers; /* answer the lookups of a failed EVSQ__J_SQL batch */
	pthread_mutex_t mu;
	int64_t connect_after_ms; /* no new attempt before */
	evs_log_fn log;
	void *log_ctx;
	atomic_ullong batches, lookups;
	evs__buf streams, times; /* parameter text, reused */
};

enum { CONN_UP, CONN_WAIT, CONN_DOWN };

/* The session of c: up, being connected (the lookups wait in the queue;
 * the connector wakes the loop), or down (answer 503). */
int evsq__bconn_ensure(evsq__batcher *b, struct bconn *c);
/* The session's prepared statements are gone with it. */
void evsq__bconn_forget(struct bconn *c);

#endif
