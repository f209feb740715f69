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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "append_internal.h"

struct evs_dcb_decision {
	evs_store *s;
	evs_event_in *events;
	const char **streams; /* per event, copied (in its block) */
	void **blocks;
	size_t n, cap;
	bool rejected;
	int emit_rc;
	char msg[512];
};

static void decision_free(evs_dcb_decision *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->blocks[i]);
	free(d->events);
	free(d->streams);
	free(d->blocks);
}

static int grow(evs_dcb_decision *d)
{
	size_t cap = d->cap ? d->cap * 2 : 4;
	evs_event_in *e = evs__realloc(d->events, cap * sizeof *e);
	if (e == NULL)
		return EVS_NOMEM;
	d->events = e;
	const char **st = evs__realloc(d->streams, cap * sizeof *st);
	if (st == NULL)
		return EVS_NOMEM;
	d->streams = st;
	void **b = evs__realloc(d->blocks, cap * sizeof *b);
	if (b == NULL)
		return EVS_NOMEM;
	d->blocks = b;
	d->cap = cap;
	return EVS_OK;
}

/* Copy the event into one block: the tag pointers, then the stream, type,
 * producer and tags (NUL-terminated), then data and metadata. */
static int emit(evs_dcb_decision *d, const char *stream, const evs_event_in *ev)
{
	size_t slen, tlen, plen = 0, need, at;
	char *block;

	if (stream == NULL)
		return evs__fail(d->s, EVS_BAD_STREAM, "decided event %zu has no stream", d->n);
	if (ev == NULL || ev->type == NULL)
		return evs__fail(d->s, EVS_INVALID, "decided event %zu has no type", d->n);
	if ((ev->data == NULL && ev->data_len) || (ev->metadata == NULL && ev->metadata_len) ||
	    (ev->tags == NULL && ev->ntags))
		return evs__fail(d->s, EVS_INVALID, "decided event %zu: NULL array with a length",
				 d->n);
	if (ev->ntags > EVS_MAX_TAGS)
		return evs__fail(d->s, EVS_INVALID, "decided event %zu: %zu tags, the limit is %d",
				 d->n, ev->ntags, EVS_MAX_TAGS);
	if (ev->data_len > d->s->opts.max_event_size ||
	    ev->metadata_len > d->s->opts.max_event_size - ev->data_len)
		return evs__fail(d->s, EVS_EVENT_TOO_LARGE,
				 "decided event %zu: data and metadata exceed %zu bytes", d->n,
				 d->s->opts.max_event_size);
	if (d->n >= d->s->opts.max_batch)
		return evs__fail(d->s, EVS_BATCH_TOO_LARGE, "decision has more than %zu events",
				 d->s->opts.max_batch);
	if (d->n == d->cap && grow(d) != EVS_OK)
		return evs__fail(d->s, EVS_NOMEM, "out of memory");
	/* too long names are cut at one byte past the limit; the append
	 * refuses them with its own message */
	slen = strnlen(stream, EVS_MAX_NAME + 1);
	tlen = strnlen(ev->type, EVS_MAX_NAME + 1);
	if (ev->producer)
		plen = strnlen(ev->producer, EVS_MAX_NAME + 1) + 1;
	need = ev->ntags * sizeof(char *) + slen + 1 + tlen + 1 + plen + ev->data_len +
	       ev->metadata_len;
	for (size_t j = 0; j < ev->ntags; j++) {
		if (ev->tags[j] == NULL)
			return evs__fail(d->s, EVS_INVALID, "decided event %zu: tag %zu is NULL",
					 d->n, j);
		need += strnlen(ev->tags[j], EVS_MAX_TAG + 1) + 1;
	}
	if ((block = evs__malloc(need)) == NULL)
		return evs__fail(d->s, EVS_NOMEM, "out of memory");
	evs_event_in *e = &d->events[d->n];
	*e = *ev;
	char **tags = (char **)(void *)block;
	at = ev->ntags * sizeof(char *);
#define PUT(dst, src, len)                        \
	do {                                      \
		memcpy(block + at, (src), (len)); \
		block[at + (len)] = 0;            \
		(dst) = block + at;               \
		at += (len) + 1;                  \
	} while (0)
	PUT(d->streams[d->n], stream, slen);
	PUT(e->type, ev->type, tlen);
	if (ev->producer)
		PUT(e->producer, ev->producer, plen - 1);
	for (size_t j = 0; j < ev->ntags; j++)
		PUT(tags[j], ev->tags[j], strnlen(ev->tags[j], EVS_MAX_TAG + 1));
#undef PUT
	e->tags = ev->ntags ? (const char *const *)tags : NULL;
	if (ev->data_len) {
		memcpy(block + at, ev->data, ev->data_len);
		e->data = block + at;
		at += ev->data_len;
	}
	if (ev->metadata_len) {
		memcpy(block + at, ev->metadata, ev->metadata_len);
		e->metadata = block + at;
	}
	d->blocks[d->n++] = block;
	return EVS_OK;
}

int evs_dcb_emit(evs_dcb_decision *d, const char *stream, const evs_event_in *event)
{
	int rc;

	if (d == NULL)
		return EVS_INVALID;
	if ((rc = emit(d, stream, event)) != EVS_OK)
		d->emit_rc = rc;
	return rc;
}

int evs_dcb_reject(evs_dcb_decision *d, const char *message)
{
	if (d == NULL)
		return EVS_REJECTED;
	d->rejected = true;
	snprintf(d->msg, sizeof d->msg, "%s", message && *message ? message : "command rejected");
	return EVS_REJECTED;
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
static int make_parts(evs_dcb_decision *d, evs_append_part **out, evs_event_in **ordered,
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

int evs_decide(evs_store *s, const evs_decider *dc, evs_decide_result *res)
{
	evs_decide_result r;
	evs_dcb_decision d;
	unsigned max;
	int rc;

	memset(&r, 0, sizeof r);
	memset(&d, 0, sizeof d);
	if (res)
		memset(res, 0, sizeof *res);
	if (s == NULL || dc == NULL)
		return EVS_INVALID;
	if (dc->query == NULL || dc->apply == NULL || dc->decide == NULL)
		return evs__fail(s, EVS_INVALID, "decider needs a query, apply and decide");
	evs_condition cond = {dc->query, 0};
	if ((rc = evs__condition_valid(s, &cond)) != EVS_OK)
		return rc;
	max = dc->max_attempts ? dc->max_attempts : EVS_DEFAULT_ATTEMPTS;
	d.s = s;
	if (dc->init && (rc = dc->init(dc->ctx)) != EVS_OK)
		return evs__fail(s, rc, "decider: init failed: %s", evs_strerror(rc));
	for (;;) {
		evs_append_part *parts = NULL;
		evs_event_in *ordered = NULL;
		evs_append_result *results = NULL;
		size_t nparts = 0;

		if ((rc = fold(s, dc, &r.after, &r.folded)) != EVS_OK)
			break;
		r.attempts++;
		for (size_t i = 0; i < d.n; i++)
			free(d.blocks[i]);
		d.n = 0;
		d.rejected = false;
		d.emit_rc = EVS_OK;
		rc = dc->decide(dc->ctx, &d);
		if (d.rejected) {
			rc = evs__fail(s, EVS_REJECTED, "%s", d.msg);
			break;
		}
		if (rc == EVS_OK && d.emit_rc != EVS_OK)
			rc = evs__fail(s, d.emit_rc, "decider: an event could not be emitted: %s",
				       evs_strerror(d.emit_rc));
		if (rc != EVS_OK || d.n == 0)
			break;
		if ((rc = make_parts(&d, &parts, &ordered, &nparts)) != EVS_OK ||
		    (results = evs__calloc(nparts, sizeof *results)) == NULL) {
			free(parts);
			free(ordered);
			rc = evs__fail(s, EVS_NOMEM, "out of memory");
			break;
		}
		cond.after = r.after;
		uint64_t conflict = 0;
		rc = evs_append_ex(s, parts, nparts, NULL, 0, &cond, results, &conflict);
		if (rc == EVS_CONDITION_FAILED)
			r.conflict = conflict;
		if (rc == EVS_OK) {
			r.first_position = results[0].first_position;
			r.last_position = results[nparts - 1].last_position;
			r.events = d.n;
			r.idempotent = results[0].idempotent;
		}
		free(results);
		free(parts);
		free(ordered);
		if (rc != EVS_CONDITION_FAILED || r.attempts >= max)
			break;
	}
	decision_free(&d);
	if (res)
		*res = r;
	return rc;
}
