/*
 * decision.c - decisions and decide rounds (decision.h): the core shared
 * by evs_execute() (aggregate.c), evs_decide() (decide.c) and the process
 * manager's step (pm_exec.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decision.h"

void evs__decision_reset(evs_decision *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->blocks[i]);
	d->n = 0;
	d->rejected = false;
	d->emit_rc = EVS_OK;
	d->msg[0] = 0;
}

void evs__decision_free(evs_decision *d)
{
	evs__decision_reset(d);
	free(d->events);
	free(d->streams);
	free(d->blocks);
	d->events = NULL;
	d->streams = NULL;
	d->blocks = NULL;
	d->cap = 0;
}

static int grow(evs_decision *d)
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

static int check(evs_decision *d, const evs_event_in *ev)
{
	size_t tlen;

	if (ev == NULL || ev->type == NULL)
		return evs__fail(d->s, EVS_INVALID, "decided event %zu has no type", d->n);
	if ((ev->data == NULL && ev->data_len) || (ev->metadata == NULL && ev->metadata_len) ||
	    (ev->tags == NULL && ev->ntags))
		return evs__fail(d->s, EVS_INVALID,
				 "decided event %zu: NULL payload or tags with a length", d->n);
	tlen = strnlen(ev->type, EVS_MAX_NAME + 1);
	if (tlen == 0 || tlen > EVS_MAX_NAME)
		return evs__fail(d->s, EVS_BAD_TYPE,
				 "decided event %zu: type is empty or longer than %d bytes", d->n,
				 EVS_MAX_NAME);
	if (ev->ntags > EVS_MAX_TAGS)
		return evs__fail(d->s, EVS_INVALID, "decided event %zu: %zu tags, the limit is %d",
				 d->n, ev->ntags, EVS_MAX_TAGS);
	for (size_t j = 0; j < ev->ntags; j++)
		if (ev->tags[j] == NULL)
			return evs__fail(d->s, EVS_INVALID, "decided event %zu: tag %zu is NULL",
					 d->n, j);
	if (ev->data_len > d->s->opts.max_event_size ||
	    ev->metadata_len > d->s->opts.max_event_size - ev->data_len)
		return evs__fail(d->s, EVS_EVENT_TOO_LARGE,
				 "decided event %zu: data and metadata exceed %zu bytes", d->n,
				 d->s->opts.max_event_size);
	if (d->n >= d->s->opts.max_batch)
		return evs__fail(d->s, EVS_BATCH_TOO_LARGE, "decision has more than %zu events",
				 d->s->opts.max_batch);
	return EVS_OK;
}

/* Copy the event into one block: the tag pointers, then the stream, type,
 * producer and tags (NUL-terminated), then data and metadata. Names too
 * long are cut one byte past the limit: the append refuses them with its
 * own message. */
static int emit(evs_decision *d, const char *stream, const evs_event_in *ev)
{
	size_t slen = 0, tlen, plen = 0, need, at;
	char *block;
	int rc;

	if ((rc = check(d, ev)) != EVS_OK)
		return rc;
	if (d->n == d->cap && grow(d) != EVS_OK)
		return evs__fail(d->s, EVS_NOMEM, "out of memory");
	if (stream)
		slen = strnlen(stream, EVS_MAX_NAME + 1) + 1;
	tlen = strnlen(ev->type, EVS_MAX_NAME + 1);
	if (ev->producer)
		plen = strnlen(ev->producer, EVS_MAX_NAME + 1) + 1;
	need = ev->ntags * sizeof(char *) + slen + tlen + 1 + plen + ev->data_len +
	       ev->metadata_len;
	for (size_t j = 0; j < ev->ntags; j++)
		need += strnlen(ev->tags[j], EVS_MAX_TAG + 1) + 1;
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
	d->streams[d->n] = NULL;
	if (stream)
		PUT(d->streams[d->n], stream, slen - 1);
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

int evs__decision_emit(evs_decision *d, const char *stream, const evs_event_in *ev)
{
	int rc = emit(d, stream, ev);

	if (rc != EVS_OK)
		d->emit_rc = rc;
	return rc;
}

int evs__decision_reject(evs_decision *d, const char *message)
{
	d->rejected = true;
	snprintf(d->msg, sizeof d->msg, "%s", message && *message ? message : "command rejected");
	return EVS_REJECTED;
}

int evs__decision_verdict(evs_decision *d, int rc, const char *who)
{
	if (rc == EVS_REJECTED || d->rejected) {
		if (!d->rejected)
			evs__decision_reject(d, NULL);
		return EVS_REJECTED;
	}
	if (rc != EVS_OK) {
		if (rc != d->emit_rc) /* else the emit said why */
			rc = evs__fail(d->s, rc, "%s: decide failed: %s", who, evs_strerror(rc));
		return rc;
	}
	if (d->emit_rc != EVS_OK)
		return evs__fail(d->s, d->emit_rc, "%s: an event could not be emitted: %s", who,
				 evs_strerror(d->emit_rc));
	return EVS_OK;
}

int evs__rounds_run(const evs__rounds *r, unsigned *attempts)
{
	int rc;

	for (*attempts = 1;; ++*attempts) {
		evs__decision_reset(r->d);
		rc = evs__decision_verdict(r->d, r->decide(r->ctx, r->d), r->who);
		if (rc == EVS_REJECTED)
			return evs__fail(r->d->s, EVS_REJECTED, "%s", r->d->msg);
		if (rc != EVS_OK || r->d->n == 0)
			return rc; /* a failure, or nothing to do */
		rc = r->append(r->ctx, r->d);
		if (rc != r->conflict_rc || *attempts >= r->max)
			return rc;
		if ((rc = r->catch_up(r->ctx)) != EVS_OK)
			return rc;
		if (r->backoff && *attempts >= 2)
			evs__backoff(*attempts - 2, 10000);
	}
}

/* A short random pause of up to 100 us << round (round capped at 7), at
 * most cap_us: a back-off, not a synchronisation. */
void evs__backoff(unsigned round, uint64_t cap_us)
{
	static _Thread_local uint64_t x;
	struct timespec ts;

	if (x == 0) {
		uint8_t r[16];
		evs_uuid_v7(r);
		memcpy(&x, r + 8, 8);
		x |= 1;
	}
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	uint64_t max_us = (uint64_t)100 << (round < 7 ? round : 7);
	if (max_us > cap_us)
		max_us = cap_us;
	uint64_t us = x % max_us + 1;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)(us * 1000);
	nanosleep(&ts, NULL);
}
