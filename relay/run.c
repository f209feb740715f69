/*
 * run.c - one sink's follower: checkpoint -> subscription -> batch ->
 * sink -> acknowledged -> checkpoint.
 *
 *   1. Read the sink's records (control.h). A pending reset moves the
 *      position first. A paused or dead sink waits, looking at its records
 *      every CONTROL_MS, until an operator resumes it (or the daemon stops).
 *   2. Subscribe after the position (a new sink: 0, or the head with
 *      start = latest) with the sink's filter.
 *   3. Fill a batch: wait up to CONTROL_MS for the first event, then take
 *      what is there at once, up to `batch` events. Each event is encoded
 *      once (CloudEvents JSON, and its data alone for binary modes).
 *   4. Deliver until every message is acknowledged: after a partial or
 *      failed attempt, back off (exponential from retry-min-ms, doubled per
 *      attempt, capped at retry-max-ms, with full jitter in its upper half;
 *      a receiver's Retry-After is a floor, capped at retry-max-ms too) and
 *      send the unacknowledged rest again. A receiver that says "gone"
 *      (webhook 410) makes the sink dead (persisted, with the status).
 *   5. The checkpoint moves over acknowledged events only: to the last
 *      acknowledged message, or after a whole batch to the subscription's
 *      position (so events the filter skipped count as done). It is written
 *      at most every checkpoint-ms, and always before pausing or stopping.
 *
 * Every CONTROL_MS (also between retries) the records are read again: a
 * pause stops delivery after the current attempt, a reset restarts the
 * subscription from the new position.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "relay.h"

#define CONTROL_MS  250
#define PROGRESS_MS 10000

int64_t rly_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rly_nap(volatile sig_atomic_t *stop, long ms)
{
	int64_t end = rly_mono_ms() + ms;

	while (!*stop) {
		int64_t left = end - rly_mono_ms();
		if (left <= 0)
			return;
		struct timespec ts = {0, (left > 50 ? 50 : left) * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

typedef struct follower {
	rly_sink *s;
	const char *name;
	evs_sub *sub;
	rly_batch batch;
	uint64_t acked;   /* every passing event up to here is acknowledged */
	uint64_t written; /* the checkpoint as written last */
	int64_t written_at, control_at, progress_at;
	rly_control ctl;
	uint64_t applied_reset; /* reset-done as this process knows it */
} follower;

static int store_fail(follower *f, int rc, const char *what)
{
	evs__logf(EVS_LOG_ERROR, "sink \"%s\": %s: %s", f->name, what, evs_errmsg(f->s->store));
	return rc;
}

static int write_checkpoint(follower *f, bool force)
{
	char key[RLY_KEY_MAX];
	int64_t now = rly_mono_ms();
	int rc;

	if (f->acked == f->written && f->ctl.exists)
		return EVS_OK;
	if (!force && now - f->written_at < f->s->cfg->checkpoint_ms)
		return EVS_OK;
	rly_key(key, f->name, "");
	if ((rc = evs_checkpoint_set(f->s->store, key, f->acked)) != EVS_OK)
		return store_fail(f, rc, "could not write checkpoint");
	f->written = f->acked;
	f->written_at = now;
	f->ctl.exists = true;
	atomic_store(&f->s->stats.position, f->acked);
	return EVS_OK;
}

/* Read the records; apply a pending reset. *restart: the position moved
 * (the subscription must start again). */
static int control(follower *f, bool *restart)
{
	evs_store_info head;
	char key[RLY_KEY_MAX];
	int rc;

	f->control_at = rly_mono_ms();
	if ((rc = rly_control_read(f->s->store, f->name, &f->ctl)) != EVS_OK)
		return store_fail(f, rc, "could not read the sink's records");
	if ((rc = evs_head(f->s->store, &head)) != EVS_OK)
		return store_fail(f, rc, "could not read the store's head");
	atomic_store(&f->s->stats.head, head.last_position);
	atomic_store(&f->s->stats.state, f->ctl.state);
	if (f->ctl.reset_seq == f->ctl.reset_done)
		return EVS_OK;
	evs__logf(EVS_LOG_INFO, "sink \"%s\": reset from position %llu to %llu", f->name,
		  (unsigned long long)f->acked, (unsigned long long)f->ctl.reset_to);
	f->acked = f->ctl.reset_to;
	f->written = UINT64_MAX;
	if ((rc = write_checkpoint(f, true)) != EVS_OK)
		return rc;
	rly_key(key, f->name, "#reset-done");
	if ((rc = evs_checkpoint_set(f->s->store, key, f->ctl.reset_seq)) != EVS_OK)
		return store_fail(f, rc, "could not record the reset");
	f->ctl.reset_done = f->ctl.reset_seq;
	atomic_store(&f->s->stats.acked, f->acked);
	*restart = true;
	return EVS_OK;
}

static int subscribe(follower *f)
{
	const rly_sink_cfg *c = f->s->cfg;
	evs_filter flt = {.types = (const char *const *)c->types,
			  .ntypes = c->ntypes,
			  .stream_prefixes = (const char *const *)c->prefixes,
			  .nprefixes = c->nprefixes,
			  .categories = (const char *const *)c->categories,
			  .ncategories = c->ncategories,
			  .tags = (const char *const *)c->tags,
			  .ntags = c->ntags};
	int rc;

	evs_sub_close(f->sub);
	f->sub = NULL;
	if ((rc = evs_subscribe(f->s->store, f->acked, &flt, &f->sub)) != EVS_OK)
		return store_fail(f, rc, "could not subscribe");
	return EVS_OK;
}

/* Encode one event into the batch. */
static int add(follower *f, const evs_event *ev)
{
	int rc = rly_batch_add(&f->batch, ev, f->s->source);

	if (rc != EVS_OK)
		evs__logf(EVS_LOG_ERROR,
			  "sink \"%s\": could not encode the event at position %llu: %s", f->name,
			  (unsigned long long)ev->position, evs_strerror(rc));
	return rc;
}

/* Fill the batch: 0 with b->n events (maybe none), or a failure. */
static int fill(follower *f)
{
	evs_event ev;
	int rc, wait = CONTROL_MS;

	f->batch.n = 0;
	evs__buf_reset(&f->batch.arena);
	while (f->batch.n < (size_t)f->s->cfg->batch) {
		rc = evs_sub_next(f->sub, &ev, wait);
		if (rc == EVS_TIMEOUT)
			return EVS_OK;
		if (rc != EVS_OK)
			return store_fail(f, rc, "could not read the store");
		if ((rc = add(f, &ev)) != EVS_OK)
			return rc;
		wait = 0;
	}
	return EVS_OK;
}

static long backoff(follower *f, unsigned attempt, long retry_after)
{
	const rly_sink_cfg *c = f->s->cfg;
	long d = c->retry_min_ms;

	for (unsigned i = 0; i < attempt && d < c->retry_max_ms; i++)
		d *= 2;
	if (d > c->retry_max_ms)
		d = c->retry_max_ms;
	d = d / 2 + (long)(rnd(&f->s->seed) % (uint64_t)(d / 2 + 1));
	if (retry_after > d)
		d = retry_after > c->retry_max_ms ? c->retry_max_ms : retry_after;
	return d;
}

/* Deliver the batch until all of it is acknowledged. 0 done (or stopped,
 * or paused: f->ctl.state), 1 restart (a reset), or a failure. */
static int deliver(follower *f)
{
	rly_sink *s = f->s;
	rly_batch *b = &f->batch;
	size_t done = 0;
	unsigned attempt = 0;
	bool restart = false;
	int rc;

	while (done < b->n) {
		rly_result r = {0};

		if (*s->stop)
			return EVS_OK;
		/* the rest of the batch is a view: shift the messages only */
		if (done) {
			memmove(b->msgs, b->msgs + done, (b->n - done) * sizeof b->msgs[0]);
			b->n -= done;
			done = 0;
		}
		atomic_fetch_add(&s->stats.attempts, 1);
		s->ops->deliver(s, b, &r);
		if (r.acked > b->n)
			r.acked = b->n;
		if (r.acked) {
			done = r.acked;
			f->acked = b->msgs[done - 1].position;
			atomic_store(&s->stats.acked, f->acked);
			atomic_fetch_add(&s->stats.delivered, r.acked);
			attempt = 0;
		}
		if (r.outcome == RLY_ACKED && done == b->n)
			break;
		atomic_fetch_add(&s->stats.failures, 1);
		if (r.outcome == RLY_GONE) {
			evs__logf(EVS_LOG_ERROR,
				  "sink \"%s\": receiver refuses for good (%s): sink is "
				  "dead until \"evs relay resume %s\"",
				  f->name, r.why, f->name);
			if ((rc = write_checkpoint(f, true)) != EVS_OK ||
			    (rc = rly_control_set_state(s->store, f->name, RLY_DEAD, r.detail)) !=
				    EVS_OK)
				return rc == EVS_OK
					       ? rc
					       : store_fail(f, rc, "could not mark the sink dead");
			f->ctl.state = RLY_DEAD;
			atomic_store(&s->stats.state, RLY_DEAD);
			return EVS_OK;
		}
		long d = backoff(f, attempt++, r.retry_after_ms);
		evs__logf(EVS_LOG_WARNING,
			  "sink \"%s\": delivery at position %llu failed (%s); "
			  "retry %u in %ld ms",
			  f->name, (unsigned long long)b->msgs[done].position, r.why, attempt, d);
		if ((rc = write_checkpoint(f, false)) != EVS_OK)
			return rc;
		int64_t until = rly_mono_ms() + d;
		while (!*s->stop && rly_mono_ms() < until) {
			long left = (long)(until - rly_mono_ms());
			rly_nap(s->stop, left < CONTROL_MS ? left : CONTROL_MS);
			if ((rc = control(f, &restart)) != EVS_OK)
				return rc;
			if (restart)
				return 1;
			if (f->ctl.state != RLY_RUNNING)
				return EVS_OK;
		}
	}
	/* the whole batch: everything the subscription read is done */
	f->acked = evs_sub_position(f->sub);
	atomic_store(&s->stats.acked, f->acked);
	return EVS_OK;
}

static void progress(follower *f)
{
	rly_stats *st = &f->s->stats;
	unsigned long long head = atomic_load(&st->head), acked = atomic_load(&st->acked);

	f->progress_at = rly_mono_ms();
	evs__logf(EVS_LOG_INFO, "sink \"%s\": %s, delivered %llu, checkpoint %llu, lag %llu events",
		  f->name, rly_state_name(f->ctl.state),
		  (unsigned long long)atomic_load(&st->delivered),
		  (unsigned long long)atomic_load(&st->position), head > acked ? head - acked : 0);
}

static int start_position(follower *f)
{
	evs_store_info head;
	int rc;

	f->acked = f->ctl.position;
	if (!f->ctl.exists && f->s->cfg->start_latest) {
		if ((rc = evs_head(f->s->store, &head)) != EVS_OK)
			return store_fail(f, rc, "could not read the store's head");
		f->acked = head.last_position;
	}
	f->written = f->ctl.exists ? f->acked : UINT64_MAX;
	atomic_store(&f->s->stats.acked, f->acked);
	return write_checkpoint(f, true);
}

int rly_sink_run(rly_sink *s)
{
	follower f = {.s = s, .name = s->cfg->name};
	bool restart = false;
	int rc;

	f.batch.arena.limit = (size_t)RLY_MAX_BATCH * (2u << 20);
	if ((rc = rly_control_read(s->store, f.name, &f.ctl)) != EVS_OK) {
		store_fail(&f, rc, "could not read the sink's records");
		return 1;
	}
	if ((rc = start_position(&f)) != EVS_OK || (rc = control(&f, &restart)) != EVS_OK)
		goto out;
	evs__logf(EVS_LOG_INFO, "sink \"%s\": %s from position %llu", f.name,
		  rly_state_name(f.ctl.state), (unsigned long long)f.acked);
	f.progress_at = rly_mono_ms();
	restart = true;
	while (!*s->stop) {
		if (rly_mono_ms() - f.progress_at >= PROGRESS_MS)
			progress(&f);
		if (rly_mono_ms() - f.control_at >= CONTROL_MS && (rc = control(&f, &restart)))
			goto out;
		if (f.ctl.state != RLY_RUNNING) {
			if ((rc = write_checkpoint(&f, true)) != EVS_OK)
				goto out;
			evs_sub_close(f.sub);
			f.sub = NULL;
			restart = true;
			rly_nap(s->stop, CONTROL_MS);
			continue;
		}
		if (restart) {
			if ((rc = subscribe(&f)) != EVS_OK)
				goto out;
			restart = false;
		}
		if ((rc = fill(&f)) != EVS_OK)
			goto out;
		if (f.batch.n == 0) {
			/* nothing passed the filter: what it skipped is done */
			f.acked = evs_sub_position(f.sub);
			atomic_store(&s->stats.acked, f.acked);
		} else if ((rc = deliver(&f)) == 1) {
			restart = true;
			continue;
		} else if (rc != EVS_OK) {
			goto out;
		}
		if ((rc = write_checkpoint(&f, false)) != EVS_OK)
			goto out;
	}
	rc = write_checkpoint(&f, true);
out:
	evs_sub_close(f.sub);
	evs__buf_free(&f.batch.arena);
	progress(&f);
	return rc == EVS_OK ? 0 : 1;
}
