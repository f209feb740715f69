/*
 * jckthr.c - the checkpointer: one thread per open environment that runs
 * the journal's periodic checkpoints (jcommit.c) off the appenders'
 * threads.
 *
 * An appender that finds a checkpoint due after its answer
 * (evs__j_maybe_checkpoint) marks it running and hands it here instead of
 * making it itself: the LMDB sync of everything written since the last
 * checkpoint then overlaps the next group commits, where before it
 * stalled the caller that happened to find it due (with one appending
 * thread, every append behind it). The checkpoint is the same procedure
 * either way (evs__j_checkpoint); nothing about durability changes: an
 * acknowledged append is on disk by its journal record, the checkpoint
 * only lets the ring be reused. When the ring runs short before a
 * checkpoint lands, the committing leader checkpoints inline as before.
 *
 * The thread starts with the first checkpoint that comes due, on a handle
 * of its own on the core (no log callback: a failure is kept in ck_err
 * and logged by the next appender that looks for a due checkpoint), and
 * is stopped and joined when the environment closes (evs__j_close), after
 * the checkpoint it is running, if any. After fork() the child has no
 * such thread; the child cannot use the parent's environment anyway.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *ck_main(void *arg)
{
	evs__core *c = arg;
	evs_store *h = c->ck_h;
	char err[sizeof c->ck_err];

	pthread_mutex_lock(&c->jmu);
	for (;;) {
		while (!c->ck_wanted && !c->ck_stop)
			pthread_cond_wait(&c->ck_cv, &c->jmu);
		if (c->ck_stop)
			break;
		c->ck_wanted = false;
		pthread_mutex_unlock(&c->jmu);
		err[0] = 0;
		if (evs__j_checkpoint(h) != EVS_OK)
			snprintf(err, sizeof err, "%s", evs_errmsg(h));
		pthread_mutex_lock(&c->jmu);
		if (err[0])
			memcpy(c->ck_err, err, sizeof err);
		c->ck_running = false;
	}
	/* a request not taken: nobody will run it */
	c->ck_running = false;
	pthread_mutex_unlock(&c->jmu);
	return NULL;
}

/* The thread's handle: s's view of the core, its own copy of the path,
 * no log callback, no schema state. NULL when out of memory. */
static evs_store *ck_handle(const evs_store *s)
{
	evs_store *h = calloc(1, sizeof *h);

	if (h == NULL || (h->path = strdup(s->path)) == NULL) {
		free(h);
		return NULL;
	}
	h->core = s->core;
	h->env = s->env;
	h->meta = s->meta;
	h->events = s->events;
	h->streams = s->streams;
	h->ids = s->ids;
	h->time = s->time;
	h->snapshots = s->snapshots;
	h->checkpoints = s->checkpoints;
	h->index = s->index;
	h->heads = s->heads;
	h->schemas = s->schemas;
	h->notify = s->notify;
	h->opts = s->opts;
	h->opts.log = NULL;
	h->opts.log_ctx = NULL;
	return h;
}

/* Hand a due checkpoint to the thread (starting it the first time);
 * false: it could not start, the caller checkpoints itself. */
static bool ck_request(evs_store *s)
{
	evs__core *c = s->core;
	bool ok = true;

	pthread_mutex_lock(&c->jmu);
	if (!c->ck_thread && !c->ck_stop) {
		pthread_condattr_t ca;

		if ((c->ck_h = ck_handle(s)) == NULL) {
			ok = false;
			goto out;
		}
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->ck_cv, &ca);
		pthread_condattr_destroy(&ca);
		if (pthread_create(&c->ck_thr, NULL, ck_main, c) != 0) {
			pthread_cond_destroy(&c->ck_cv);
			free(c->ck_h->path);
			free(c->ck_h);
			c->ck_h = NULL;
			ok = false;
			goto out;
		}
		c->ck_thread = true;
	}
	if (!c->ck_thread) {
		ok = false;
		goto out;
	}
	c->ck_wanted = true;
	pthread_cond_signal(&c->ck_cv);
out:
	pthread_mutex_unlock(&c->jmu);
	return ok;
}

void evs__j_ck_stop(evs__core *c)
{
	bool running;

	pthread_mutex_lock(&c->jmu);
	c->ck_stop = true;
	running = c->ck_thread;
	if (running)
		pthread_cond_signal(&c->ck_cv);
	pthread_mutex_unlock(&c->jmu);
	if (!running)
		return;
	pthread_join(c->ck_thr, NULL);
	pthread_cond_destroy(&c->ck_cv);
	free(c->ck_h->path);
	free(c->ck_h);
	c->ck_h = NULL;
	c->ck_thread = false;
}

void evs__j_maybe_checkpoint(evs_store *s)
{
	evs__core *c = s->core;
	char err[sizeof c->ck_err];
	bool due;

	if (c->jfd < 0)
		return;
	pthread_mutex_lock(&c->jmu);
	due = !c->ck_running &&
	      ((c->head_lsn > c->ck_lsn && c->head_lsn - c->ck_lsn >= c->jring / 4) ||
	       ((c->head_lsn > c->ck_lsn || c->unj_dirty) && mono_ms() - c->ck_ms >= c->ck_every));
	if (due)
		c->ck_running = true;
	memcpy(err, c->ck_err, sizeof err); /* the checkpointer's last failure */
	c->ck_err[0] = 0;
	pthread_mutex_unlock(&c->jmu);
	if (err[0])
		evs__log(s, EVS_LOG_WARNING, "%s", err);
	if (!due || ck_request(s))
		return;
	if (evs__j_checkpoint(s) != EVS_OK)
		evs__log(s, EVS_LOG_WARNING, "%s", evs_errmsg(s));
	pthread_mutex_lock(&c->jmu);
	c->ck_running = false;
	pthread_mutex_unlock(&c->jmu);
}
