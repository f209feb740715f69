/*
 * watch.c - the checkpoint watcher: min_position waiters woken by
 * PostgreSQL's LISTEN/NOTIFY instead of polling.
 *
 * Wire format: the projector commits each batch with, in the same
 * transaction (projector/txn.c, evp__apply_batch),
 *
 *     pg_notify('evs_checkpoint', '<projection> <position>')
 *
 * so the notification is delivered exactly at COMMIT (never for a batch
 * rolled back) and, like every notification, in commit order. The
 * projection name may contain spaces: the position follows the LAST space.
 *
 * One thread holds one dedicated libpq session (not from the pool):
 *
 *     connect (async, abandoned at shutdown)
 *     LISTEN evs_checkpoint
 *     SELECT projection, position FROM evs.checkpoints   -- after LISTEN: a
 *         commit either is in this snapshot or its notification follows
 *     up = true; then each notification: cache[name] = max(cache, position)
 *
 * Every cached value was committed, and a checkpoint only grows (the
 * projector's UPDATE names the position it expects; a rebuild hands over
 * at the store's head), so the cache never claims more than is committed.
 * Losing the session (PostgreSQL restarted) sets up = false and wakes the
 * waiters, which then poll the checkpoint through the pool as before; the
 * thread reconnects with backoff (100 ms doubling to 5 s) and rebuilds the
 * cache from a fresh read (a replaced database is not trusted to keep the
 * old values).
 *
 * A waiter (evsq__watch_wait) answers at once when the cache reaches N,
 * else sleeps on the condition variable until a notification reaches N or
 * the deadline; at the deadline (or at shutdown) the pool's checkpoint
 * statement confirms, so a 409 always names the committed position.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define CHANNEL      "evs_checkpoint"
#define MAX_ENTRIES  1024 /* projections cached; more fall back to polling */
#define BACKOFF_MIN  100
#define BACKOFF_MAX  5000
#define CONNECT_SECS 10

struct entry {
	char *name;
	int64_t pos;
};

struct evsq__watch {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	bool up;           /* listening, cache complete */
	bool overflow;     /* some projection was not cached */
	bool stopping;
	struct entry *entries;
	size_t n;
	uint64_t wakeups; /* notifications applied */
	uint64_t reconnects;

	pthread_t thread;
	bool started;
	int stop_pipe[2];
	char *dsn;
	evs_log_fn log;
	void *log_ctx;
};

static void logm(evsq__watch *w, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void logm(evsq__watch *w, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!w->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	w->log(w->log_ctx, level, msg);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec abs_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	return ts;
}

/* ---- the cache (called with mu held) ---- */

static struct entry *find(evsq__watch *w, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		if (strlen(w->entries[i].name) == len && !memcmp(w->entries[i].name, name, len))
			return &w->entries[i];
	return NULL;
}

static void clear(evsq__watch *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		free(w->entries[i].name);
	w->n = 0;
	w->overflow = false;
}

/* cache[name] = max(cache[name], pos) */
static void merge(evsq__watch *w, const char *name, size_t len, int64_t pos)
{
	struct entry *e = find(w, name, len);

	if (!e) {
		char *copy;

		if (w->n == MAX_ENTRIES || !(copy = strndup(name, len))) {
			w->overflow = true;
			return;
		}
		e = &w->entries[w->n++];
		e->name = copy;
		e->pos = pos;
	} else if (pos > e->pos) {
		e->pos = pos;
	}
}

/* ---- the listener thread ---- */

/* Wait up to ms for fd to be ready (events), or the stop pipe. 1 ready,
 * 0 timeout, -1 stop. */
static int wait_fd(evsq__watch *w, int fd, short events, int ms)
{
	struct pollfd p[2] = {{w->stop_pipe[0], POLLIN, 0}, {fd, events, 0}};
	int n;

	do
		n = poll(p, fd >= 0 ? 2 : 1, ms);
	while (n < 0 && errno == EINTR);
	if (p[0].revents)
		return -1;
	return n > 0 ? 1 : 0;
}

/* A connected session, or NULL (stop requested or failure, logged). */
static PGconn *connect_watch(evsq__watch *w, bool quiet)
{
	const char *keys[] = {"application_name", "keepalives", "keepalives_idle", "dbname", NULL};
	const char *vals[] = {"evs-query-watch", "1", "30", w->dsn, NULL};
	int64_t deadline = mono_ms() + CONNECT_SECS * 1000;
	PGconn *c = PQconnectStartParams(keys, vals, 1);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;

	if (!c)
		return NULL;
	while (PQstatus(c) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
	       st != PGRES_POLLING_FAILED) {
		int64_t left = deadline - mono_ms();
		int r;

		if (left <= 0)
			break;
		r = wait_fd(w, PQsocket(c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
			    (int)left);
		if (r < 0) {
			PQfinish(c);
			return NULL;
		}
		if (r > 0)
			st = PQconnectPoll(c);
	}
	if (st != PGRES_POLLING_OK || PQstatus(c) != CONNECTION_OK) {
		logm(w, quiet ? EVS_LOG_DEBUG : EVS_LOG_WARNING,
		     "checkpoint listener could not connect (min_position waits poll meanwhile): "
		     "%s",
		     st == PGRES_POLLING_OK || PQstatus(c) == CONNECTION_BAD ? PQerrorMessage(c)
									     : "timed out");
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* LISTEN, then the snapshot of every checkpoint into the cache; up. */
static int subscribe(evsq__watch *w, PGconn *c)
{
	PGresult *r = PQexec(c, "LISTEN " CHANNEL);
	int i;

	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		logm(w, EVS_LOG_WARNING, "checkpoint listener: LISTEN failed: %s",
		     PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	PQclear(r);
	r = PQexec(c, "SELECT projection, position FROM evs.checkpoints");
	pthread_mutex_lock(&w->mu);
	clear(w);
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		for (i = 0; i < PQntuples(r); i++)
			merge(w, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0),
			      strtoll(PQgetvalue(r, i, 1), NULL, 10));
	} else if (PQstatus(c) != CONNECTION_OK) {
		pthread_mutex_unlock(&w->mu);
		PQclear(r);
		return -1;
	} else {
		/* no evs.checkpoints yet (not migrated): nothing is committed,
		 * the first batches will announce themselves */
		logm(w, EVS_LOG_DEBUG, "checkpoint listener: no checkpoints yet: %s",
		     PQresultErrorMessage(r));
	}
	w->up = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	PQclear(r);
	return 0;
}

/* Apply the notifications received so far. */
static void drain(evsq__watch *w, PGconn *c)
{
	PGnotify *n;

	pthread_mutex_lock(&w->mu);
	while ((n = PQnotifies(c))) {
		const char *sp = strrchr(n->extra, ' ');
		char *end;
		long long pos;

		if (!strcmp(n->relname, CHANNEL) && sp && sp != n->extra) {
			errno = 0;
			pos = strtoll(sp + 1, &end, 10);
			if (!errno && end != sp + 1 && !*end && pos >= 0) {
				merge(w, n->extra, (size_t)(sp - n->extra), pos);
				w->wakeups++;
			}
		}
		PQfreemem(n);
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void set_down(evsq__watch *w)
{
	pthread_mutex_lock(&w->mu);
	w->up = false;
	clear(w);
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void *watch_main(void *arg)
{
	evsq__watch *w = arg;
	int backoff = BACKOFF_MIN;
	bool quiet = false;

	for (;;) {
		PGconn *c = connect_watch(w, quiet);

		if (c && subscribe(w, c) == 0) {
			if (quiet)
				logm(w, EVS_LOG_INFO, "checkpoint listener connected again");
			backoff = BACKOFF_MIN;
			quiet = false;
			for (;;) {
				int r = wait_fd(w, PQsocket(c), POLLIN, -1);

				if (r < 0)
					break;
				if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK) {
					logm(w, EVS_LOG_WARNING,
					     "checkpoint listener lost its connection (min_position "
					     "waits poll until it is back): %s",
					     PQerrorMessage(c));
					break;
				}
				drain(w, c);
			}
		}
		set_down(w);
		PQfinish(c);
		quiet = true; /* one warning per outage */
		if (wait_fd(w, -1, 0, backoff) < 0)
			break;
		pthread_mutex_lock(&w->mu);
		w->reconnects++;
		pthread_mutex_unlock(&w->mu);
		backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
	}
	return NULL;
}

int evsq__watch_start(const char *dsn, evs_log_fn log, void *log_ctx, evsq__watch **out)
{
	pthread_condattr_t ca;
	evsq__watch *w = calloc(1, sizeof *w);

	*out = NULL;
	if (!w)
		return EVSQ_NOMEM;
	w->stop_pipe[0] = w->stop_pipe[1] = -1;
	w->log = log;
	w->log_ctx = log_ctx;
	if (!(w->dsn = strdup(dsn)) || !(w->entries = calloc(MAX_ENTRIES, sizeof *w->entries))) {
		free(w->dsn);
		free(w);
		return EVSQ_NOMEM;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pipe2(w->stop_pipe, O_CLOEXEC) != 0 ||
	    pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		evsq__watch_stop(w);
		return EVSQ_NOMEM;
	}
	w->started = true;
	*out = w;
	return EVSQ_OK;
}

void evsq__watch_shutdown(evsq__watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void evsq__watch_stop(evsq__watch *w)
{
	if (!w)
		return;
	evsq__watch_shutdown(w);
	if (w->started) {
		ssize_t n;

		do
			n = write(w->stop_pipe[1], "x", 1);
		while (n < 0 && errno == EINTR);
		pthread_join(w->thread, NULL);
	}
	if (w->stop_pipe[0] >= 0)
		close(w->stop_pipe[0]);
	if (w->stop_pipe[1] >= 0)
		close(w->stop_pipe[1]);
	clear(w);
	free(w->entries);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w->dsn);
	free(w);
}

void evsq__watch_status(evsq__watch *w, evsq__watch_info *info)
{
	memset(info, 0, sizeof *info);
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	info->up = w->up;
	info->wakeups = w->wakeups;
	info->reconnects = w->reconnects;
	pthread_mutex_unlock(&w->mu);
}

bool evsq__watch_position(evsq__watch *w, const char *projection, int64_t *pos)
{
	struct entry *e;
	bool known = false;

	if (!w)
		return false;
	pthread_mutex_lock(&w->mu);
	if (w->up && (e = find(w, projection, strlen(projection)))) {
		*pos = e->pos;
		known = true;
	}
	pthread_mutex_unlock(&w->mu);
	return known;
}

/* ---- waiting ---- */

/* The committed checkpoint through the pool: EVSQ_OK and *cur (0 when the
 * projection has none), or the status with its body. */
static unsigned read_checkpoint(const evsq__ctx *ctx, const char *projection, int64_t *cur,
				evs__buf *body)
{
	const char *params[1] = {projection};
	char sqlstate[6], err[512];
	PGresult *r;
	int rc = evsq__pool_exec(ctx->pool, EVSQ__S_CHECKPOINT, 1, params, &r, sqlstate, err,
				 sizeof err);

	if (rc == EVSQ_UNAVAILABLE || (rc && !strcmp(sqlstate, "57014"))) {
		evsq__error(body, "unavailable",
			    rc == EVSQ_UNAVAILABLE ? err : "statement timed out");
		return 503;
	}
	if (rc) {
		evsq__error(body, "internal", err);
		return 500;
	}
	*cur = PQntuples(r) && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
	PQclear(r);
	return 0;
}

unsigned evsq__watch_wait(const evsq__ctx *ctx, const char *projection, int64_t min, evs__buf *body)
{
	evsq__watch *w = ctx->watch;
	int64_t deadline = mono_ms() + ctx->min_position_wait_ms, cur = 0;
	int64_t pause = 1;
	unsigned st;

	if (min <= 0) /* reached by any checkpoint, even none yet */
		return 0;
	if (w) {
		size_t len = strlen(projection);

		pthread_mutex_lock(&w->mu);
		for (;;) {
			struct entry *e;
			struct timespec until;
			int64_t now;

			if (w->stopping)
				break;
			now = mono_ms();
			if (w->up) {
				e = find(w, projection, len);
				if (e && e->pos >= min) {
					pthread_mutex_unlock(&w->mu);
					return 0;
				}
				if (!e && w->overflow)
					goto poll; /* not cached: poll like a listener down */
				if (now >= deadline)
					break;
				until = abs_ms(deadline);
				pthread_cond_timedwait(&w->cv, &w->mu, &until);
				continue;
			}
		poll:
			/* listener down: poll through the pool (1 ms doubling to 50 ms),
			 * woken early if the listener comes back */
			pthread_mutex_unlock(&w->mu);
			if ((st = read_checkpoint(ctx, projection, &cur, body)))
				return st;
			if (cur >= min)
				return 0;
			pthread_mutex_lock(&w->mu);
			now = mono_ms();
			if (now >= deadline || w->stopping) {
				pthread_mutex_unlock(&w->mu);
				goto answer;
			}
			until = abs_ms(now + pause < deadline ? now + pause : deadline);
			pthread_cond_timedwait(&w->cv, &w->mu, &until);
			if (pause < 50)
				pause *= 2;
		}
		pthread_mutex_unlock(&w->mu);
	} else {
		/* no watcher: poll */
		for (;;) {
			struct timespec ts;

			if ((st = read_checkpoint(ctx, projection, &cur, body)))
				return st;
			if (cur >= min)
				return 0;
			if (mono_ms() >= deadline)
				goto answer;
			ts.tv_sec = 0;
			ts.tv_nsec = (long)pause * 1000000L;
			nanosleep(&ts, NULL);
			if (pause < 50)
				pause *= 2;
		}
	}
	/* deadline or shutdown: confirm with the committed checkpoint */
	if ((st = read_checkpoint(ctx, projection, &cur, body)))
		return st;
	if (cur >= min)
		return 0;
answer:
	body->len = 0;
	evs__buf_printf(body,
			"{\"error\":\"projection_behind\",\"message\":\"projection is at position "
			"%lld, behind the requested %lld\",\"position\":%lld}\n",
			(long long)cur, (long long)min, (long long)cur);
	return 409;
}

unsigned evsq__watch_min_position(const evsq__ctx *ctx, const char *projection, const char *minp,
				  evs__buf *body)
{
	int64_t min;

	if (!minp)
		return 0;
	if (!evsq__parse_u63(minp, &min))
		return evsq__bad_param(body, "min_position", minp, "a non-negative integer");
	return evsq__watch_wait(ctx, projection, min, body);
}
