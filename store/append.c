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
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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
	__atomic_store_n(&c->gathering, true, __ATOMIC_RELEASE);
	while (c->queued < __atomic_load_n(&c->appenders, __ATOMIC_ACQUIRE))
		if (pthread_cond_timedwait(&c->gather_cv, &c->gc_mu, &dl) != 0)
			break;
	__atomic_store_n(&c->gathering, false, __ATOMIC_RELEASE);
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Callers sleep on the core's `answered` word (a futex, always valid
 * memory while the store is open): wait while it holds `val`; wake all. */
static void futex_wait(uint32_t *word, uint32_t val)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* A caller is out of the crowd. Leaving may complete the crowd a
 * gathering leader waits for (the others are all queued): wake it then,
 * or it would wait out its deadline. */
static void leave(evs__core *c)
{
	__atomic_sub_fetch(&c->appenders, 1, __ATOMIC_ACQ_REL);
	if (!__atomic_load_n(&c->gathering, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&c->gc_mu);
	if (c->gathering && c->queued >= __atomic_load_n(&c->appenders, __ATOMIC_ACQUIRE))
		pthread_cond_signal(&c->gather_cv);
	pthread_mutex_unlock(&c->gc_mu);
}

/*
 * Lead one group; q is the leader's own request. Called and returns with
 * gc_mu held. The answers are the requests' done flags (after their
 * outcomes, release order) and one wake of every sleeping caller, in one
 * system call: a woken member sees its flag and returns without taking
 * gc_mu; a woken caller still queued takes it and may lead the next
 * group. A request is not touched after its flag: its caller may return.
 */
static void lead(evs_store *s, evs__req *q)
{
	evs__core *c = s->core;
	evs__req *group, *next;
	int64_t t0;
	bool wrote, sleepers = false;

	c->leader_active = true;
	gather(c);
	group = take_group(c);
	pthread_mutex_unlock(&c->gc_mu);
	t0 = mono_ns();
	wrote = evs__group_run(s, group);
	if (wrote)
		evs__notify_wake(&s->notify);
	pthread_mutex_lock(&c->gc_mu);
	if (wrote)
		c->commit_ns += (mono_ns() - t0 - c->commit_ns) / 8;
	c->leader_active = false;
	for (evs__req *g = group; g; g = next) {
		next = g->next; /* g may return and vanish once done */
		sleepers |= g != q;
		__atomic_store_n(&g->done, true, __ATOMIC_RELEASE);
	}
	__atomic_add_fetch(&c->answered, 1, __ATOMIC_RELEASE);
	/* the queued ones: one of them leads next */
	if (sleepers || c->queued) {
		pthread_mutex_unlock(&c->gc_mu);
		futex_wake_all(&c->answered);
		pthread_mutex_lock(&c->gc_mu);
	}
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
	bool counted = true;
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
	 * Callers sleep on the core's `answered` word; a leader answers its
	 * whole group with one wake-all (lead()). Nearly every sleeper is a
	 * member of that group (gather() collects the crowd), and a member
	 * returns without taking gc_mu again: measured with 64 appenders on 2
	 * cores, one wake per caller under gc_mu (a condition variable each)
	 * cost 24 us of CPU per event, this 15 (BENCHMARKS.md, issue 15).
	 */
	pthread_mutex_lock(&c->gc_mu);
	if (c->queue_tail)
		c->queue_tail->next = q;
	else
		c->queue_head = q;
	c->queue_tail = q;
	c->queued++;
	/* the gathering leader waits for the whole crowd: wake it once, when
	 * the crowd is in, not at every arrival (63 wake-ups of the leader
	 * per group with 64 appenders) */
	if (c->gathering && c->queued >= __atomic_load_n(&c->appenders, __ATOMIC_ACQUIRE))
		pthread_cond_signal(&c->gather_cv);
	for (;;) {
		if (__atomic_load_n(&q->done, __ATOMIC_ACQUIRE))
			break;
		/* taken but not done: another leader is committing our request */
		if (!c->leader_active && !q->taken) {
			lead(s, q);
			continue;
		}
		uint32_t seen = __atomic_load_n(&c->answered, __ATOMIC_ACQUIRE);
		pthread_mutex_unlock(&c->gc_mu);
		futex_wait(&c->answered, seen);
		if (__atomic_load_n(&q->done, __ATOMIC_ACQUIRE))
			goto answered;
		pthread_mutex_lock(&c->gc_mu);
	}
	pthread_mutex_unlock(&c->gc_mu);
answered:
	/* out of the crowd before a checkpoint: a leader gathering the
	 * others must not wait for a caller that is checkpointing */
	leave(c);
	counted = false;
	/* after the answers: a due checkpoint costs no caller its ack */
	if (q->rc == EVS_OK && !(q->nparts && q->parts[0].res.idempotent))
		evs__j_maybe_checkpoint(s);

	rc = q->rc;
	if (rc != EVS_OK)
		evs__fail_msg(s, rc, q->msg);
out:
	if (counted)
		leave(c);
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
