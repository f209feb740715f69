/*
 * message.c - an event as the sinks send it: encoded once into a batch
 * (the CloudEvents JSON of store/base/cloudevent.c for structured mode,
 * the data alone and the attributes for binary mode).
 */
#include <stdio.h>
#include <string.h>

#include "cloudevent.h"
#include "mpjson.h"
#include "relay.h"
#include "rfc3339.h"

static bool zero16(const uint8_t id[16])
{
	for (int i = 0; i < 16; i++)
		if (id[i])
			return false;
	return true;
}

int rly_ce_attributes(const rly_batch *b, const rly_msg *m, const char *source,
		      int (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
	char t[EVS__TIME_LEN], num[24];
	int rc;

	if ((rc = fn(ctx, "specversion", "1.0")) || (rc = fn(ctx, "id", m->id)) ||
	    (rc = fn(ctx, "source", source)) || (rc = fn(ctx, "type", rly_at(b, m->type))) ||
	    (rc = fn(ctx, "subject", rly_at(b, m->stream))))
		return rc;
	evs__time_format(m->recorded_at, t);
	if ((rc = fn(ctx, "time", t)) || (rc = fn(ctx, "datacontenttype", "application/json")))
		return rc;
	snprintf(num, sizeof num, "%llu", (unsigned long long)m->position);
	if ((rc = fn(ctx, "position", num)))
		return rc;
	snprintf(num, sizeof num, "%llu", (unsigned long long)m->version);
	if ((rc = fn(ctx, "streamversion", num)))
		return rc;
	snprintf(num, sizeof num, "%u", (unsigned)m->type_version);
	if ((rc = fn(ctx, "typeversion", num)))
		return rc;
	if (m->correlation[0] && (rc = fn(ctx, "correlationid", m->correlation)))
		return rc;
	if (m->causation[0] && (rc = fn(ctx, "causationid", m->causation)))
		return rc;
	if (m->occurred_at) {
		evs__time_format(m->occurred_at, t);
		if ((rc = fn(ctx, "occurredat", t)))
			return rc;
	}
	if (m->producer_len && (rc = fn(ctx, "producer", rly_at(b, m->producer))))
		return rc;
	if (m->tags_len && (rc = fn(ctx, "tags", rly_at(b, m->tags))))
		return rc;
	return 0;
}

/* Encode one event into the batch. */
int rly_batch_add(rly_batch *b, const evs_event *ev, const char *source)
{
	rly_msg *m = &b->msgs[b->n];
	evs__buf *a = &b->arena;
	int rc;

	m->position = ev->position;
	m->version = ev->version;
	m->type_version = ev->type_version;
	m->recorded_at = ev->recorded_at;
	m->occurred_at = ev->occurred_at;
	evs__cloudevent_uuid(ev->id, m->id);
	m->correlation[0] = m->causation[0] = 0;
	if (!zero16(ev->correlation_id))
		evs__cloudevent_uuid(ev->correlation_id, m->correlation);
	if (!zero16(ev->causation_id))
		evs__cloudevent_uuid(ev->causation_id, m->causation);
	m->stream = a->len;
	m->stream_len = ev->stream.len;
	evs__buf_putn(a, ev->stream.ptr, ev->stream.len);
	evs__buf_putc(a, 0);
	m->type = a->len;
	m->type_len = ev->type.len;
	evs__buf_putn(a, ev->type.ptr, ev->type.len);
	evs__buf_putc(a, 0);
	m->producer = a->len;
	m->producer_len = ev->producer.len;
	evs__buf_putn(a, ev->producer.ptr, ev->producer.len);
	evs__buf_putc(a, 0);
	m->tags = a->len;
	if (ev->ntags)
		evs__cloudevent_tags(ev, a);
	m->tags_len = a->len - m->tags;
	evs__buf_putc(a, 0);
	m->body = a->len;
	if ((rc = evs__cloudevent_json(ev, source, a)) != EVS_OK)
		return rc;
	m->body_len = a->len - m->body;
	evs__buf_putc(a, 0);
	m->data = a->len;
	if (evs__msgpack_to_json(a, ev->data, ev->data_len, 0) != 0)
		return EVS_BAD_DATA;
	m->data_len = a->len - m->data;
	evs__buf_putc(a, 0);
	if (a->oom)
		return EVS_NOMEM;
	b->n++;
	return EVS_OK;
}
