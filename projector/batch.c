/*
 * batch.c - a batch of events copied out of the store.
 *
 * The store's event views end with the subscription, which is closed
 * before the batch goes to PostgreSQL (no LMDB read snapshot stays pinned
 * while we wait on the network), so every event is copied. All copies go
 * into one arena per batch (struct evp__batch in internal.h): the fields
 * are appended to `bytes` while collecting, with offsets in the event,
 * and turned into pointers once collecting is over (the buffer no longer
 * moves then). Reset, not freed, between batches: no malloc per event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void evp__batch_free(struct evp__batch *b)
{
	free(b->events);
	evs__buf_free(&b->bytes);
	evs__buf_free(&b->json);
	memset(b, 0, sizeof *b);
}

static void batch_reset(struct evp__batch *b)
{
	b->n = 0;
	evs__buf_reset(&b->bytes);
	evs__buf_reset(&b->json);
}

/* Copy p[0..n) to the arena; its offset (stored in a pointer until
 * batch_resolve makes it one). */
static const void *stash(struct evp__batch *b, const void *p, size_t n)
{
	size_t off = b->bytes.len;

	evs__buf_putn(&b->bytes, p, n);
	return (const void *)(uintptr_t)off;
}

/* The tags (issue 12): their bytes, then the evs_str array itself (at an
 * aligned offset) whose pointers are offsets too until batch_resolve. */
static const evs_str *stash_tags(struct evp__batch *b, const evs_event *ev)
{
	evs_str t[EVS_MAX_TAGS];
	size_t n = ev->ntags < EVS_MAX_TAGS ? ev->ntags : EVS_MAX_TAGS;
	static const char pad[sizeof(evs_str)];

	for (size_t i = 0; i < n; i++) {
		t[i].ptr = stash(b, ev->tags[i].ptr, ev->tags[i].len);
		t[i].len = ev->tags[i].len;
	}
	evs__buf_putn(&b->bytes, pad,
		      (sizeof(evs_str) - b->bytes.len % sizeof(evs_str)) % sizeof(evs_str));
	return stash(b, t, n * sizeof *t);
}

static int batch_add(struct evp__run *r, const evs_event *ev)
{
	struct evp__batch *b = &r->batch;
	struct evp__event *e;

	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		struct evp__event *p = realloc(b->events, cap * sizeof *p);

		if (!p)
			goto oom;
		b->events = p;
		b->cap = cap;
	}
	e = &b->events[b->n++];
	memset(e, 0, sizeof *e);
	e->ev = *ev;
	e->ev.stream.ptr = stash(b, ev->stream.ptr, ev->stream.len);
	e->ev.type.ptr = stash(b, ev->type.ptr, ev->type.len);
	e->ev.data = stash(b, ev->data, ev->data_len);
	e->ev.metadata = stash(b, ev->metadata, ev->metadata_len);
	e->ev.producer.ptr = stash(b, ev->producer.ptr, ev->producer.len);
	e->ev.ntags = ev->ntags < EVS_MAX_TAGS ? ev->ntags : EVS_MAX_TAGS;
	e->ev.tags = e->ev.ntags ? stash_tags(b, ev) : NULL;
	if (b->bytes.oom)
		goto oom;
	return EVP_OK;
oom:
	snprintf(r->err, r->errlen, "out of memory");
	return EVP_NOMEM;
}

/* The offsets become pointers: the arena is complete. */
static void batch_resolve(struct evp__batch *b)
{
	const char *base = b->bytes.ptr;
	size_t i;

	for (i = 0; i < b->n; i++) {
		evs_event *ev = &b->events[i].ev;

		ev->stream.ptr = base + (uintptr_t)ev->stream.ptr;
		ev->type.ptr = base + (uintptr_t)ev->type.ptr;
		ev->data = base + (uintptr_t)ev->data;
		ev->metadata = base + (uintptr_t)ev->metadata;
		ev->producer.ptr = base + (uintptr_t)ev->producer.ptr;
		if (ev->ntags) {
			evs_str *t = (evs_str *)(uintptr_t)(base + (uintptr_t)ev->tags);

			for (size_t k = 0; k < ev->ntags; k++)
				t[k].ptr = base + (uintptr_t)t[k].ptr;
			ev->tags = t;
		}
	}
}

static bool to_json(evs__buf *json, const void *p, size_t n, size_t *off, size_t *len)
{
	*off = json->len;
	if (evs__msgpack_to_json(json, p, n, 0) < 0 || json->oom) {
		json->len = *off;
		return false;
	}
	*len = json->len - *off;
	return true;
}

int evp__event_json(struct evp__run *r, struct evp__event *e, struct evp__json *out)
{
	evs__buf *json = &r->batch.json;

	if (!e->has_json) {
		if (!to_json(json, e->ev.data, e->ev.data_len, &e->data_json, &e->data_json_len) ||
		    !to_json(json, e->ev.metadata, e->ev.metadata_len, &e->meta_json,
			     &e->meta_json_len)) {
			if (json->oom) {
				snprintf(r->err, r->errlen, "out of memory");
				return EVP_NOMEM;
			}
			snprintf(r->err, r->errlen,
				 "event at position %llu has a malformed payload",
				 (unsigned long long)e->ev.position);
			return EVP_STORE;
		}
		e->has_json = true;
	}
	out->data = json->ptr + e->data_json;
	out->data_len = e->data_json_len;
	out->meta = json->ptr + e->meta_json;
	out->meta_len = e->meta_json_len;
	return EVP_OK;
}

int evp__collect(struct evp__run *r, uint64_t target, int first_wait_ms)
{
	evs_sub *sub = NULL;
	evs_event ev;
	int rc = EVP_OK, wait = first_wait_ms;
	int64_t deadline = -1;
	int64_t t0 = evp__now_us();

	batch_reset(&r->batch);
	if (evs_subscribe(r->store, r->checkpoint, NULL, &sub) != EVS_OK) {
		snprintf(r->err, r->errlen, "could not follow the store: %s", evs_errmsg(r->store));
		return EVP_STORE;
	}
	while (r->batch.n < (size_t)r->cfg->batch_max) {
		int src;

		if (target && r->checkpoint + r->batch.n >= target)
			break;
		src = evs_sub_next(sub, &ev, wait);
		if (src == EVS_TIMEOUT)
			break;
		if (src != EVS_OK) {
			snprintf(r->err, r->errlen, "could not read the store: %s",
				 evs_errmsg(r->store));
			rc = EVP_STORE;
			break;
		}
		if ((rc = batch_add(r, &ev)))
			break;
		if (deadline < 0)
			deadline = evp__now_ms() + r->cfg->batch_wait_ms;
		wait = (int)(deadline - evp__now_ms());
		if (wait < 0)
			wait = 0;
	}
	evs_sub_close(sub);
	if (rc) {
		r->batch.n = 0;
		return rc;
	}
	batch_resolve(&r->batch);
	r->collect_us = evp__now_us() - t0;
	return EVP_OK;
}
