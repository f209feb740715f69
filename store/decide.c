/*
 * decide.c - evs_decide(): a decision over what a query selects (Dynamic
 * Consistency Boundaries), the counterpart of evs_execute() for queries.
 *
 * read -> fold -> decide -> evs_append_ex(condition: the same query, after
 * the last matching position read). The condition is the only concurrency
 * control: a decision taken on a stale view is refused as a whole with
 * EVS_CONDITION_FAILED, nothing written. The state is then caught up by
 * folding only the matching events after the position read (events never
 * change, and they come in position order, so the fold so far stays
 * valid), and decide runs again, at most max_attempts rounds. No back-off:
 * a round re-reads only the events that beat it, and the group commit
 * orders contenders by itself (the bench's 64-thread figure is measured
 * without one).
 *
 * Why `after` is the last matching position read and not the store's
 * head: the read is one snapshot; a matching event after it is exactly an
 * event the decision did not see, wherever the head is.
 *
 * The events a decision emits are copied (type, payloads, tags, producer)
 * and grouped by stream into the request's parts, in the order each
 * stream was first emitted to; within a stream, in emit order.
 */
#include <stdlib.h>
#include <string.h>

#include "append_internal.h"
#include "decision.h"

/* The decision handed to decide: the shared core (decision.h), which
 * records each event's stream. */
struct evs_dcb_decision {
	evs_decision core;
};

int evs_dcb_emit(evs_dcb_decision *d, const char *stream, const evs_event_in *event)
{
	if (d == NULL)
		return EVS_INVALID;
	if (stream == NULL)
		return d->core.emit_rc = evs__fail(d->core.s, EVS_BAD_STREAM,
						   "decided event %zu has no stream", d->core.n);
	return evs__decision_emit(&d->core, stream, event);
}

int evs_dcb_reject(evs_dcb_decision *d, const char *message)
{
	if (d == NULL)
		return EVS_REJECTED;
	return evs__decision_reject(&d->core, message);
}

/* Fold the events matching the query after *after into the caller's
 * state (evs_read_query: through the indexes); *after becomes the last
 * one folded. */
static int fold(evs_store *s, const evs_decider *dc, uint64_t *after, uint64_t *folded)
{
	evs_iter *it;
	evs_event ev;
	int rc;

	if ((rc = evs_read_query(s, dc->query, *after + 1, EVS_FORWARD, 0, &it)) != EVS_OK)
		return rc;
	while ((rc = evs_iter_next(it, &ev)) == EVS_OK) {
		if ((rc = dc->apply(dc->ctx, &ev)) != EVS_OK) {
			rc = evs__fail(s, rc,
				       "decider: apply failed on position %llu (type \"%.*s\"): %s",
				       (unsigned long long)ev.position, (int)ev.type.len,
				       ev.type.ptr, evs_strerror(rc));
			break;
		}
		*after = ev.position;
		(*folded)++;
	}
	evs_iter_free(it);
	return rc == EVS_END ? EVS_OK : rc;
}

/* The decision's events as parts, one per stream in first-emit order. */
static int make_parts(const evs_decision *d, evs_append_part **out, evs_event_in **ordered,
		      size_t *nparts)
{
	evs_append_part *parts = evs__calloc(d->n, sizeof *parts);
	evs_event_in *evs = evs__calloc(d->n, sizeof *evs);
	bool *taken = evs__calloc(d->n, sizeof *taken);
	size_t np = 0, k = 0;

	if (parts == NULL || evs == NULL || taken == NULL) {
		free(parts);
		free(evs);
		free(taken);
		return EVS_NOMEM;
	}
	for (size_t i = 0; i < d->n; i++) {
		if (taken[i])
			continue;
		evs_append_part *p = &parts[np++];
		p->stream = d->streams[i];
		p->expected = EVS_ANY;
		p->events = &evs[k];
		for (size_t j = i; j < d->n; j++)
			if (!taken[j] && strcmp(d->streams[j], d->streams[i]) == 0) {
				taken[j] = true;
				evs[k++] = d->events[j];
				p->n++;
			}
	}
	free(taken);
	*out = parts;
	*ordered = evs;
	*nparts = np;
	return EVS_OK;
}

/* One evs_decide() call: what the rounds' callbacks share. */
struct call {
	evs_store *s;
	const evs_decider *dc;
	evs_dcb_decision *d;
	evs_condition cond;
	evs_decide_result r;
};

static int call_decide(void *ctx, evs_decision *d)
{
	struct call *c = ctx;

	(void)d; /* c->d->core */
	return c->dc->decide(c->dc->ctx, c->d);
}

static int call_append(void *ctx, evs_decision *d)
{
	struct call *c = ctx;
	evs_append_part *parts = NULL;
	evs_event_in *ordered = NULL;
	evs_append_result *results = NULL;
	size_t nparts = 0;
	uint64_t conflict = 0;
	int rc;

	if ((rc = make_parts(d, &parts, &ordered, &nparts)) != EVS_OK ||
	    (results = evs__calloc(nparts, sizeof *results)) == NULL) {
		free(parts);
		free(ordered);
		return evs__fail(c->s, EVS_NOMEM, "out of memory");
	}
	c->cond.after = c->r.after;
	rc = evs_append_ex(c->s, parts, nparts, NULL, 0, &c->cond, results, &conflict);
	if (rc == EVS_CONDITION_FAILED)
		c->r.conflict = conflict;
	if (rc == EVS_OK) {
		c->r.first_position = results[0].first_position;
		c->r.last_position = results[nparts - 1].last_position;
		c->r.events = d->n;
		c->r.idempotent = results[0].idempotent;
	}
	free(results);
	free(parts);
	free(ordered);
	return rc;
}

static int call_catch_up(void *ctx)
{
	struct call *c = ctx;

	return fold(c->s, c->dc, &c->r.after, &c->r.folded);
}

int evs_decide(evs_store *s, const evs_decider *dc, evs_decide_result *res)
{
	evs_dcb_decision d;
	struct call c;
	int rc;

	memset(&c, 0, sizeof c);
	memset(&d, 0, sizeof d);
	if (res)
		memset(res, 0, sizeof *res);
	if (s == NULL || dc == NULL)
		return EVS_INVALID;
	if (dc->query == NULL || dc->apply == NULL || dc->decide == NULL)
		return evs__fail(s, EVS_INVALID, "decider needs a query, apply and decide");
	c.cond.fail_if = dc->query;
	if ((rc = evs__condition_valid(s, &c.cond)) != EVS_OK)
		return rc;
	c.s = s;
	c.dc = dc;
	c.d = &d;
	d.core.s = s;
	if (dc->init && (rc = dc->init(dc->ctx)) != EVS_OK)
		return evs__fail(s, rc, "decider: init failed: %s", evs_strerror(rc));
	if ((rc = fold(s, dc, &c.r.after, &c.r.folded)) == EVS_OK) {
		evs__rounds rounds = {
			.d = &d.core,
			.max = dc->max_attempts ? dc->max_attempts : EVS_DEFAULT_ATTEMPTS,
			.conflict_rc = EVS_CONDITION_FAILED,
			.who = "decider",
			.ctx = &c,
			.decide = call_decide,
			.append = call_append,
			.catch_up = call_catch_up,
		};
		rc = evs__rounds_run(&rounds, &c.r.attempts);
	}
	evs__decision_free(&d.core);
	if (res)
		*res = c.r;
	return rc;
}
