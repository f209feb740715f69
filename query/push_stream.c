/*
 * push_stream.c - one GET /events/stream answer (push.h): libmicrohttpd's
 * content reader, called on the connection's event loop when the socket
 * can take bytes.
 *
 * The wire, SSE (text/event-stream):
 *
 *   retry: 3000                          first frame: where it resumed
 *   event: resume
 *   data: {"after":41,"from":"last_event_id","head":57}
 *
 *   id: 42                               one per event: id = global position,
 *   data: {"specversion":"1.0",...}      data = its CloudEvents JSON
 *
 *   : heartbeat                          every push_heartbeat s while idle
 *
 *   event: cut                           last frame of a stream cut for
 *   data: {"reason":"...","after":97}    falling behind the window
 *
 * NDJSON (application/x-ndjson): one CloudEvents object per line, and
 * control lines {"control":"resume",...}, {"control":"heartbeat"},
 * {"control":"cut",...}: a line with "specversion" is an event, one with
 * "control" is not.
 *
 * No "event:" line on events: every event reaches an EventSource's
 * onmessage, the type is in the JSON. The control frames carry no "id:",
 * so a browser's Last-Event-ID stays the last event's position.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevent.h"
#include "push.h"

enum { ST_START, ST_OPEN, ST_ENDING, ST_DONE };

/* budget of formatted bytes per reader call beyond what MHD takes */
#define SCAN_ROUNDS 4

static const char *const from_names[] = {"latest", "earliest", "after", "last_event_id"};

void evsq__push_filter_free(struct evsq__push_filter *f)
{
	free(f->stream);
	free(f->prefix);
	for (size_t i = 0; i < f->ntypes; i++)
		free(f->types[i]);
	for (size_t i = 0; i < f->ncategories; i++)
		free(f->categories[i]);
	for (size_t i = 0; i < f->ntags; i++)
		free(f->tags[i]);
	memset(f, 0, sizeof *f);
}

static bool one_of(char *const *v, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(v[i]) == len && !memcmp(v[i], s, len))
			return true;
	return false;
}

static bool has_tag(const uint8_t *tags, size_t tags_len, const char *tag)
{
	size_t len = strlen(tag);

	for (size_t at = 0; at < tags_len; at += 1 + (size_t)tags[at])
		if (tags[at] == len && at + 1 + len <= tags_len && !memcmp(tags + at + 1, tag, len))
			return true;
	return false;
}

bool evsq__push_filter_pass(const struct evsq__push_filter *f, const char *stream, size_t slen,
			    const char *type, size_t tlen, const uint8_t *tags, size_t tags_len)
{
	if (f->stream && (strlen(f->stream) != slen || memcmp(f->stream, stream, slen)))
		return false;
	if (f->prefix && (strlen(f->prefix) > slen || memcmp(f->prefix, stream, strlen(f->prefix))))
		return false;
	if (f->ntypes && !one_of(f->types, f->ntypes, type, tlen))
		return false;
	if (f->ncategories) {
		const char *sep = memchr(stream, f->catsep, slen);

		if (!one_of(f->categories, f->ncategories, stream,
			    sep ? (size_t)(sep - stream) : slen))
			return false;
	}
	for (size_t i = 0; i < f->ntags; i++)
		if (!has_tag(tags, tags_len, f->tags[i]))
			return false;
	return true;
}

/* Catch up from the store after c->pos - 1 (the store's own filter
 * narrows the scan; the exact stream is checked here). */
static int open_sub(struct evsq__push_client *c)
{
	const char *prefixes[1];
	evs_filter ef = {0};

	prefixes[0] = c->f.stream ? c->f.stream : c->f.prefix;
	if (prefixes[0]) {
		ef.stream_prefixes = prefixes;
		ef.nprefixes = 1;
	}
	ef.types = (const char *const *)c->f.types;
	ef.ntypes = c->f.ntypes;
	ef.categories = (const char *const *)c->f.categories;
	ef.ncategories = c->f.ncategories;
	ef.tags = (const char *const *)c->f.tags;
	ef.ntags = c->f.ntags;
	return evs_subscribe(c->hub->store, c->pos - 1, &ef, &c->sub);
}

struct evsq__push_client *evsq__push_client_new(struct evsq__push *hub, struct MHD_Connection *conn,
						int wake_fd, bool ndjson,
						struct evsq__push_filter *f, uint64_t after,
						int from, uint64_t head)
{
	struct evsq__push_client *c = calloc(1, sizeof *c);
	uint64_t first;

	if (!c)
		return NULL;
	c->hub = hub;
	c->conn = conn;
	c->wake_fd = wake_fd;
	c->ndjson = ndjson;
	c->f = *f;
	memset(f, 0, sizeof *f);
	c->after = after;
	c->from = from;
	c->head = head;
	c->pos = after + 1;
	c->last_write_ms = evsq__push_now_ms();
	pthread_rwlock_rdlock(&hub->rw);
	first = hub->first;
	pthread_rwlock_unlock(&hub->rw);
	if (c->pos < first && open_sub(c) != EVS_OK) {
		evsq__push_filter_free(&c->f);
		free(c);
		return NULL;
	}
	return c;
}

void evsq__push_client_free(void *cls)
{
	struct evsq__push_client *c = cls;

	evsq__push_unpark(c->hub, c);
	atomic_fetch_sub(&c->hub->streams, 1);
	evs_sub_close(c->sub);
	evsq__push_filter_free(&c->f);
	evs__buf_free(&c->pend);
	evs__buf_free(&c->tmp);
	free(c);
}

static void put_resume(struct evsq__push_client *c)
{
	if (c->ndjson)
		evs__buf_printf(
			&c->pend,
			"{\"control\":\"resume\",\"after\":%llu,\"from\":\"%s\",\"head\":%llu}\n",
			(unsigned long long)c->after, from_names[c->from],
			(unsigned long long)c->head);
	else
		evs__buf_printf(&c->pend,
				"retry: %d\nevent: resume\ndata: {\"after\":%llu,\"from\":\"%s\","
				"\"head\":%llu}\n\n",
				EVSQ__PUSH_RETRY_MS, (unsigned long long)c->after,
				from_names[c->from], (unsigned long long)c->head);
}

static void put_event(struct evsq__push_client *c, uint64_t position, const char *json, size_t n)
{
	if (c->ndjson) {
		evs__buf_putn(&c->pend, json, n);
		evs__buf_putc(&c->pend, '\n');
	} else {
		char t[48], *e = t + sizeof t, *d = e;

		/* "id: N\ndata: " without printf (once per event per stream) */
		memcpy(d -= 7, "\ndata: ", 7);
		do
			*--d = (char)('0' + position % 10);
		while (position /= 10);
		memcpy(d -= 4, "id: ", 4);
		evs__buf_putn(&c->pend, d, (size_t)(e - d));
		evs__buf_putn(&c->pend, json, n);
		evs__buf_puts(&c->pend, "\n\n");
	}
}

static void put_cut(struct evsq__push_client *c, uint64_t window)
{
	const char *fmt =
		c->ndjson ? "{\"control\":\"cut\",\"reason\":\"slow consumer: more than %llu "
			    "events behind the newest; resume after %llu\",\"after\":%llu}\n"
			  : "event: cut\ndata: {\"reason\":\"slow consumer: more than %llu "
			    "events behind the newest; resume after %llu\",\"after\":%llu}\n\n";

	evs__buf_printf(&c->pend, fmt, (unsigned long long)window, (unsigned long long)(c->pos - 1),
			(unsigned long long)(c->pos - 1));
}

static void put_heartbeat(struct evsq__push_client *c)
{
	evs__buf_puts(&c->pend, c->ndjson ? "{\"control\":\"heartbeat\"}\n" : ": heartbeat\n\n");
}

/* Catch up from the store: frames into pend up to budget bytes. -1 on a
 * failure of the store. */
static int from_store(struct evsq__push_client *c, size_t budget)
{
	struct evsq__push *hub = c->hub;
	uint8_t tags[EVSQ__PUSH_TAGS_MAX];
	evs_event ev;
	int rc = EVS_OK;

	while (c->pend.len < budget) {
		rc = evs_sub_next(c->sub, &ev, 0);
		if (rc == EVS_TIMEOUT) {
			/* the end of the store, or a scan chunk without a match */
			uint64_t first;

			c->pos = evs_sub_position(c->sub) + 1;
			pthread_rwlock_rdlock(&hub->rw);
			first = hub->first;
			pthread_rwlock_unlock(&hub->rw);
			if (c->pos >= first)
				break; /* the window has the rest */
			if (++c->rounds < SCAN_ROUNDS)
				continue;
			/* a long filtered scan: a heartbeat keeps the response
			 * moving (and proxies patient) until a match */
			if (c->pend.len == 0)
				put_heartbeat(c);
			break;
		}
		if (rc != EVS_OK)
			return -1;
		c->pos = ev.position + 1;
		if (!evsq__push_filter_pass(&c->f, ev.stream.ptr, ev.stream.len, ev.type.ptr,
					    ev.type.len, tags, evsq__push_tags_pack(&ev, tags)))
			continue;
		evs__buf_reset(&c->tmp);
		if (evs__cloudevent_json(&ev, hub->source, &c->tmp) != EVS_OK)
			return -1;
		put_event(c, ev.position, c->tmp.ptr, c->tmp.len);
	}
	/* reached the window: read from it from now on */
	pthread_rwlock_rdlock(&hub->rw);
	if (c->pos >= hub->first) {
		evs_sub_close(c->sub);
		c->sub = NULL;
	}
	pthread_rwlock_unlock(&hub->rw);
	return 0;
}

/* From the window: frames into pend up to budget bytes. false when c
 * fell behind the window (cut). */
static bool from_window(struct evsq__push_client *c, size_t budget)
{
	struct evsq__push *hub = c->hub;
	uint64_t p;

	pthread_rwlock_rdlock(&hub->rw);
	if (c->pos < hub->first) {
		pthread_rwlock_unlock(&hub->rw);
		return false;
	}
	c->live = true;
	for (p = c->pos; p < hub->next && c->pend.len < budget; p++) {
		const struct evsq__push_slot *s = &hub->slots[p % hub->cap];
		const char *stream = s->b.ptr, *type = s->b.ptr + s->stream_len;
		const uint8_t *tags = (const uint8_t *)type + s->type_len;
		size_t at = s->stream_len + s->type_len + s->tags_len;

		if (evsq__push_filter_pass(&c->f, stream, s->stream_len, type, s->type_len, tags,
					   s->tags_len))
			put_event(c, p, s->b.ptr + at, s->b.len - at);
	}
	if (p > c->pos)
		c->pos = p;
	pthread_rwlock_unlock(&hub->rw);
	return true;
}

/* Format the next frames into pend (emptied before): something to send,
 * or nothing (pend empty: park). -1: end the response with an error. */
static int fill(struct evsq__push_client *c, size_t budget, int64_t now)
{
	struct evsq__push *hub = c->hub;
	bool down;

	pthread_mutex_lock(&hub->mu);
	down = hub->shutdown;
	pthread_mutex_unlock(&hub->mu);
	if (down) {
		c->state = ST_DONE;
		return 0;
	}
	if (c->state == ST_START) {
		put_resume(c);
		c->state = ST_OPEN;
		return 0;
	}
	if (c->sub && from_store(c, budget) < 0)
		return -1;
	if (!c->sub && c->pend.len < budget && !from_window(c, budget)) {
		if (!c->live) /* the window moved on before it was read: the store */
			return open_sub(c) == EVS_OK && from_store(c, budget) == 0 ? 0 : -1;
		put_cut(c, (unsigned long long)hub->cap);
		atomic_fetch_add(&hub->cut_total, 1);
		c->state = ST_ENDING;
		return 0;
	}
	if (c->pend.len == 0 && now - c->last_write_ms >= hub->heartbeat_ms) {
		put_heartbeat(c);
		c->last_write_ms = now;
	}
	return 0;
}

ssize_t evsq__push_read(void *cls, uint64_t off, char *buf, size_t max)
{
	struct evsq__push_client *c = cls;
	size_t n = 0;

	(void)off;
	c->rounds = 0;
	for (;;) {
		size_t take = c->pend.len - c->off;
		int64_t now;

		if (take > max - n)
			take = max - n;
		if (take)
			memcpy(buf + n, c->pend.ptr + c->off, take);
		c->off += take;
		n += take;
		if (n == max || (n > 0 && c->rounds >= SCAN_ROUNDS))
			break; /* full, or scanned enough for one call */
		/* pend is used up */
		evs__buf_reset(&c->pend);
		c->off = 0;
		if (c->state == ST_ENDING)
			c->state = ST_DONE;
		if (c->state == ST_DONE)
			break;
		now = evsq__push_now_ms();
		if (fill(c, max - n, now) < 0 || c->pend.oom) {
			c->state = ST_DONE;
			if (n == 0)
				return MHD_CONTENT_READER_END_WITH_ERROR;
			break;
		}
		if (c->pend.len > 0 || c->state == ST_DONE)
			continue;
		if (n > 0 || c->sub)
			break; /* send what there is; a scan goes on at the next call */
		if (evsq__push_park(c->hub, c, now))
			return 0;
	}
	if (n > 0) {
		c->last_write_ms = evsq__push_now_ms();
		return (ssize_t)n;
	}
	return c->state == ST_DONE ? MHD_CONTENT_READER_END_OF_STREAM : 0;
}
