/*
 * append.c - appending batches: the group-commit queue and its leader.
 *
 * A caller's batch is checked and encoded in the caller's own thread (in
 * parallel with other callers), then queued. The first caller to find no
 * leader becomes the leader: it takes everything queued, applies each
 * request in one LMDB write transaction (each with its own expected-version
 * and idempotency outcome; a request refused writes nothing) and commits
 * once, so one sync covers every batch in the group. Then it hands the
 * results back and lets a waiting caller lead the next group, which
 * gathered while this one was syncing (and which first waits, briefly, for
 * callers still on their way in: see gather()). The queue is the
 * environment's (evs__core), so callers on every handle of one store in
 * this process share it and its single leader. Across processes LMDB's
 * writer lock serializes the groups.
 *
 * The checks and encoding are in batch.c, the group's transaction in
 * group.c; this file is the queue and its leader.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "append_internal.h"

/* Take queued requests up to EVS_GROUP_BYTES (at least one). gc_mu held. */
static evs__req *take_group(evs__core *c)
{
	evs__req *head = c->queue_head, *q = head, *last = head;
	size_t bytes = 0;

	while (q && (q == head || bytes + q->tails.len <= EVS_GROUP_BYTES)) {
		bytes += q->tails.len;
		q->taken = true;
		last = q;
		q = q->next;
	}
	c->queue_head = q;
	if (q == NULL)
		c->queue_tail = NULL;
	for (evs__req *g = head; g != q; g = g->next)
		c->queued--;
	last->next = NULL;
	return head;
}

/*
 * Before taking the queue, a new leader waits while other callers are
 * still on their way in (inside evs_append() but not queued yet: the
 * previous group's callers coming back with their next batch, or callers
 * still encoding). Without this the appenders split into two cohorts that
 * alternate, each half as large as the crowd, and pay twice the syncs. The
 * wait ends as soon as everyone inside is queued, and lasts at most half a
 * recent commit (PostgreSQL's commit_delay, made adaptive). A lone caller
 * never waits.
 */
static void gather(evs__core *c)
{
	struct timespec dl;
	int64_t wait_ns;

	if (c->queued >= __atomic_load_n(&c->appenders, __ATOMIC_ACQUIRE))
		return;
	wait_ns = c->commit_ns / 2;
	if (wait_ns < 20000)
		wait_ns = 20000;
	if (wait_ns > 2000000)
		wait_ns = 2000000;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += (dl.tv_nsec + wait_ns) / 1000000000;
	dl.tv_nsec = (dl.tv_nsec + wait_ns) % 1000000000;
	c->gathering = true;
	while (c->queued < __atomic_load_n(&c->appenders, __ATOMIC_ACQUIRE))
		if (pthread_cond_timedwait(&c->gather_cv, &c->gc_mu, &dl) != 0)
			break;
	c->gathering = false;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Check and encode the caller's request (ex: evs_append_ex(), else the
 * one part of evs_append()), queue it and wait until a leader, maybe this
 * thread, answered it. q is zeroed; the caller frees it.
 */
int evs__append_run(evs_store *s, evs__req *q, const evs_append_part *parts, size_t nparts,
		    const evs_checkpoint_write *cks, size_t ncks, const evs_condition *cond,
		    bool ex)
{
	evs__core *c = s->core;
	int rc;

	if (s->opts.read_only)
		return evs__fail(s, EVS_READONLY, "store \"%s\" is open read-only", s->path);
	/* Refused every time, not only when the map must grow: then the
	 * mistake shows in the first test run, and never makes a whole commit
	 * group fail or wait. */
	if (evs__thread_reads(s))
		return evs__fail(s, EVS_BUSY,
				 "this thread holds an open iterator on store \"%s\": free it "
				 "before appending",
				 s->path);
	__atomic_add_fetch(&c->appenders, 1, __ATOMIC_RELEASE);
	if (ex)
		rc = evs__batch_prepare_ex(s, q, parts, nparts, cks, ncks, cond);
	else
		rc = evs__batch_prepare(s, q, parts->stream, parts->expected, parts->events,
					parts->n);
	if (rc != EVS_OK)
		goto out;

	/*
	 * Each caller sleeps on its own condition variable, so a commit wakes
	 * exactly the callers it answered plus the next leader: with 64
	 * appenders on 2 cores, waking everyone per commit would cost more
	 * CPU than the sync it shares.
	 */
	pthread_cond_init(&q->cv, NULL);
	pthread_mutex_lock(&c->gc_mu);
	if (c->queue_tail)
		c->queue_tail->next = q;
	else
		c->queue_head = q;
	c->queue_tail = q;
	c->queued++;
	if (c->gathering)
		pthread_cond_signal(&c->gather_cv);
	while (!q->done) {
		/* taken but not done: another leader is committing our request */
		if (!c->leader_active && !q->taken) {
			c->leader_active = true;
			gather(c);
			evs__req *group = take_group(c);
			pthread_mutex_unlock(&c->gc_mu);
			int64_t t0 = mono_ns();
			bool wrote = evs__group_run(s, group);
			if (wrote)
				evs__notify_wake(&s->notify);
			pthread_mutex_lock(&c->gc_mu);
			if (wrote)
				c->commit_ns += (mono_ns() - t0 - c->commit_ns) / 8;
			for (evs__req *g = group, *next; g; g = next) {
				next = g->next; /* g may return and vanish once done */
				g->done = true;
				if (g != q)
					pthread_cond_signal(&g->cv);
			}
			c->leader_active = false;
			if (c->queue_head) /* gathered meanwhile: it leads next */
				pthread_cond_signal(&c->queue_head->cv);
			continue;
		}
		pthread_cond_wait(&q->cv, &c->gc_mu);
	}
	pthread_mutex_unlock(&c->gc_mu);
	pthread_cond_destroy(&q->cv);
	/* after the answers: a due checkpoint costs no caller its ack */
	if (q->rc == EVS_OK && !(q->nparts && q->parts[0].res.idempotent))
		evs__j_maybe_checkpoint(s);

	rc = q->rc;
	if (rc != EVS_OK)
		evs__fail_msg(s, rc, q->msg);
out:
	__atomic_sub_fetch(&c->appenders, 1, __ATOMIC_RELEASE);
	return rc;
}

int evs_append(evs_store *s, const char *stream, uint64_t expected, const evs_event_in *events,
	       size_t n, evs_append_result *result)
{
	evs_append_part part = {stream, expected, events, n};
	evs__req q;
	int rc;

	memset(&q, 0, sizeof q);
	if (result)
		memset(result, 0, sizeof *result);
	if (s == NULL)
		return EVS_INVALID;
	rc = evs__append_run(s, &q, &part, 1, NULL, 0, NULL, false);
	if (result)
		*result = q.one.res;
	evs__batch_free(&q);
	return rc;
}
