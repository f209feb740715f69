/*
 * batch_conn.c - a batcher's sessions (batch.c): each connected on a
 * connector thread of its own, so that the loop never waits for a
 * connect (its lookups wait in the queue and the connector wakes the
 * loop through its eventfd); after a failed connect, lookups are
 * answered 503 at once for RECONNECT_PAUSE_MS. Also the batcher's
 * counters.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void evsq__bconn_forget(struct bconn *c)
{
	int i;

	for (i = 0; i < PREPARED_MAX; i++) {
		free(c->prepared[i]);
		c->prepared[i] = NULL;
	}
}

static void *connector(void *arg)
{
	struct bconn *c = arg;
	evsq__batcher *b = c->b;
	PGconn *pc = evsq__connect(b->dsn, b->statement_timeout_ms, b->log, b->log_ctx);
	uint64_t one = 1;

	if (pc && (PQsetnonblocking(pc, 1) || !PQenterPipelineMode(pc))) {
		PQfinish(pc);
		pc = NULL;
	}
	pthread_mutex_lock(&b->mu);
	c->fresh = pc;
	c->connect_done = true;
	pthread_mutex_unlock(&b->mu);
	if (write(b->wake_fd, &one, sizeof one) < 0)
		abort(); /* an eventfd write of 1 cannot fail */
	return NULL;
}

int evsq__bconn_ensure(evsq__batcher *b, struct bconn *c)
{
	if (c->conn && PQstatus(c->conn) == CONNECTION_OK)
		return CONN_UP;
	if (c->conn) {
		PQfinish(c->conn);
		c->conn = NULL;
		evsq__bconn_forget(c);
	}
	if (c->connecting) {
		bool done;

		pthread_mutex_lock(&b->mu);
		done = c->connect_done;
		pthread_mutex_unlock(&b->mu);
		if (!done)
			return CONN_WAIT;
		pthread_join(c->connector, NULL);
		c->connecting = false;
		c->conn = c->fresh;
		c->fresh = NULL;
		if (c->conn)
			return CONN_UP;
		b->connect_after_ms = now_ms() + RECONNECT_PAUSE_MS;
		return CONN_DOWN;
	}
	if (now_ms() < b->connect_after_ms)
		return CONN_DOWN;
	c->b = b;
	c->connect_done = false;
	if (pthread_create(&c->connector, NULL, connector, c)) {
		b->connect_after_ms = now_ms() + RECONNECT_PAUSE_MS;
		return CONN_DOWN;
	}
	c->connecting = true;
	return CONN_WAIT;
}

void evsq__batcher_stats(evsq__batcher *b, unsigned long long *batches, unsigned long long *lookups)
{
	*batches = b ? atomic_load(&b->batches) : 0;
	*lookups = b ? atomic_load(&b->lookups) : 0;
}
