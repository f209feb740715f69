/*
 * find_store.c - GET /events answered from the store (evs-query --store):
 * the filters of find.c over the store's type, category, tag and
 * correlation indexes (evs_read_all with an evs_filter) and its id index
 * (evs_find_id), each event written as the read model's rows are
 * (find.c), with "producer" and "tags".
 *
 * Consistency: "position" is the store's last position read before the
 * iterator opens, and no event past it is answered, so a page is the
 * store as of that position even while others append; min_position
 * waits for the store (evs_wait, at most min_position_wait_ms), then 409
 * projection_behind with the store's position.
 */
#include <stdio.h>
#include <string.h>

#include "cloudevent.h"
#include "rfc3339.h"
#include "server.h"

static void store_time(evs__buf *b, const char *key, int64_t ns)
{
	char t[EVS__TIME_LEN];

	evs__buf_printf(b, ",\"%s\":", key);
	if (ns == 0) {
		evs__buf_puts(b, "null");
		return;
	}
	/* microseconds, as PostgreSQL's timestamptz: floor, 6 digits */
	ns -= ((ns % 1000) + 1000) % 1000;
	evs__time_format(ns, t);
	evs__buf_printf(b, "\"%.26sZ\"", t);
}

static void store_uuid(evs__buf *b, const char *key, const uint8_t id[16])
{
	static const uint8_t zero[16];
	char t[37];

	if (!memcmp(id, zero, 16)) {
		evs__buf_printf(b, ",\"%s\":null", key);
		return;
	}
	evs__cloudevent_uuid(id, t);
	evs__buf_printf(b, ",\"%s\":\"%s\"", key, t);
}

static void store_payload(evs__buf *b, const char *key, const void *p, size_t n)
{
	evs__buf_printf(b, ",\"%s\":", key);
	if (n == 0)
		evs__buf_puts(b, "{}");
	else if (evs__msgpack_to_json(b, p, n, 0) < 0)
		evs__buf_puts(b, "null"); /* the store refuses such payloads */
}

static void store_event(evs__buf *b, const evs_event *ev)
{
	evs__buf_printf(b, "{\"position\":%llu,\"stream\":", (unsigned long long)ev->position);
	evs__json_str_lossy(b, ev->stream.ptr, ev->stream.len);
	evs__buf_printf(b, ",\"version\":%llu,\"type\":", (unsigned long long)ev->version);
	evs__json_str_lossy(b, ev->type.ptr, ev->type.len);
	evs__buf_printf(b, ",\"type_version\":%lu", (unsigned long)ev->type_version);
	store_time(b, "recorded_at", ev->recorded_at);
	evs__buf_printf(b, ",\"recorded_at_ns\":%lld", (long long)ev->recorded_at);
	store_time(b, "occurred_at", ev->occurred_at);
	store_uuid(b, "event_id", ev->id);
	store_uuid(b, "correlation_id", ev->correlation_id);
	store_uuid(b, "causation_id", ev->causation_id);
	store_payload(b, "metadata", ev->metadata, ev->metadata_len);
	store_payload(b, "data", ev->data, ev->data_len);
	evs__buf_puts(b, ",\"producer\":");
	if (ev->producer.len)
		evs__json_str_lossy(b, ev->producer.ptr, ev->producer.len);
	else
		evs__buf_puts(b, "null");
	evs__buf_puts(b, ",\"tags\":[");
	for (size_t i = 0; i < ev->ntags; i++) {
		if (i)
			evs__buf_putc(b, ',');
		evs__json_str_lossy(b, ev->tags[i].ptr, ev->tags[i].len);
	}
	evs__buf_puts(b, "]}");
}

static unsigned store_failed(evs__buf *body, evs_store *store, int rc)
{
	char msg[512];

	snprintf(msg, sizeof msg, "could not read the store: %s", evs_errmsg(store));
	if (rc == EVS_INVALID) { /* a filter the checks above let through */
		evsq__error(body, "bad_request", msg);
		return 400;
	}
	evsq__error(body, rc == EVS_NOMEM ? "internal" : "unavailable", msg);
	return rc == EVS_NOMEM ? 500 : 503;
}

/* The store's head, waiting for min_position (text or NULL). */
static unsigned store_head(const evsq__ctx *ctx, evs_store *store, const char *minp, uint64_t *head,
			   evs__buf *body)
{
	evs_store_info h;
	int64_t min = 0;
	char msg[160];
	int rc;

	if (minp && !evsq__parse_u63(minp, &min))
		return evsq__bad_param(body, "min_position", minp, "a position (an integer >= 0)");
	if ((rc = evs_head(store, &h)) != EVS_OK)
		return store_failed(body, store, rc);
	if (min > 0 && h.last_position < (uint64_t)min) {
		evs_wait(store, (uint64_t)min - 1, (int)ctx->min_position_wait_ms);
		if ((rc = evs_head(store, &h)) != EVS_OK)
			return store_failed(body, store, rc);
		if (h.last_position < (uint64_t)min) {
			snprintf(msg, sizeof msg, "the store is at position %llu",
				 (unsigned long long)h.last_position);
			evsq__error(body, "projection_behind", msg);
			return 409;
		}
	}
	*head = h.last_position;
	return 0;
}

unsigned evsq__events_from_store(evsq_server *srv, const char *minp, struct evsq__events_req *q,
				 evs__buf *body)
{
	evs_store *store = srv->store;
	evs_filter ef = {0};
	evs_iter *it = NULL;
	evs_event ev;
	uint64_t head = 0, from, last = 0;
	int64_t n = 0;
	bool more = false;
	unsigned status;
	int rc;

	if ((status = store_head(&srv->ctx, store, minp, &head, body)))
		return status;
	ef.types = (const char *const *)q->f.types;
	ef.ntypes = q->f.ntypes;
	ef.categories = (const char *const *)q->f.categories;
	ef.ncategories = q->f.ncategories;
	ef.tags = (const char *const *)q->f.tags;
	ef.ntags = q->f.ntags;
	ef.correlation_id = q->corr ? q->corr_id : NULL;
	if (q->id) {
		uint64_t pos;

		rc = evs_find_id(store, q->id_bytes, &pos);
		if (rc != EVS_OK && rc != EVS_NOT_FOUND)
			return store_failed(body, store, rc);
		from = rc == EVS_OK && pos <= head ? pos : 0;
		q->limit = from ? 1 : 0;
	} else if (q->backward) {
		from = q->before ? q->before - 1 : head;
		if (from > head)
			from = head;
	} else {
		from = q->after + 1;
	}
	body->len = 0;
	evs__buf_printf(body, "{\"position\":%llu", (unsigned long long)head);
	if (q->corr || q->id) {
		evs__buf_puts(body, q->id ? ",\"id\":" : ",\"correlation\":");
		evsq__json_str(body, q->id ? q->id : q->corr);
	}
	evs__buf_puts(body, ",\"events\":[");
	if (from >= 1 && from <= head && q->limit > 0) {
		rc = evs_read_all(store, from, q->backward ? EVS_BACKWARD : EVS_FORWARD,
				  q->id ? NULL : &ef, (size_t)q->limit + 1, &it);
		while (rc == EVS_OK && (rc = evs_iter_next(it, &ev)) == EVS_OK) {
			if (ev.position > head || (q->id && ev.position != from))
				break;
			if (n == q->limit) {
				more = true;
				break;
			}
			if (n++)
				evs__buf_putc(body, ',');
			store_event(body, &ev);
			last = ev.position;
		}
		evs_iter_free(it);
		if (rc != EVS_OK && rc != EVS_END)
			return store_failed(body, store, rc);
	}
	evs__buf_putc(body, ']');
	if (!q->id) {
		evs__buf_puts(body, q->backward ? ",\"next_before\":" : ",\"next_after\":");
		if (more)
			evs__buf_printf(body, "%llu", (unsigned long long)last);
		else
			evs__buf_puts(body, "null");
	}
	evs__buf_puts(body, "}\n");
	if (body->oom) {
		evsq__error(body, "internal", "out of memory");
		return 500;
	}
	return 200;
}
