/*
 * batch.c - checking a caller's batch and encoding it, in the caller's own
 * thread (in parallel with other callers) before it is queued: names,
 * sizes and payloads, the schema registry's verdict, event ids (given or
 * generated) and the records' tails. A batch refused here writes nothing
 * and never reaches the queue.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "append_internal.h"

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* Event i's tags and producer (record format 3): at most EVS_MAX_TAGS
 * distinct tags of 1..EVS_MAX_TAG bytes of UTF-8 without NUL; a producer
 * of 1..EVS_MAX_NAME bytes of the same. A duplicate tag is refused, never
 * silently merged: the caller meant something else. */
int evs__batch_check_tags(evs_store *s, size_t i, const evs_event_in *e)
{
	evs_str tags[EVS_MAX_TAGS];
	const char *why = NULL;
	size_t bad, other = SIZE_MAX, len;
	int ok;

	if (e->ntags && e->tags == NULL)
		return evs__fail(s, EVS_INVALID, "event %zu: tags is NULL with a count of %zu", i,
				 e->ntags);
	if (e->ntags > EVS_MAX_TAGS)
		return evs__fail(s, EVS_INVALID, "event %zu: %zu tags, the limit is %d", i,
				 e->ntags, EVS_MAX_TAGS);
	for (size_t j = 0; j < e->ntags; j++) {
		const char *t = e->tags[j];
		tags[j].ptr = t;
		/* one byte past the limit is enough to know it is too long */
		tags[j].len = t ? strnlen(t, EVS_MAX_TAG + 1) : 0;
	}
	bad = evs__tags_check(tags, e->ntags, &why, &other);
	if (bad != SIZE_MAX) {
		if (other != SIZE_MAX)
			return evs__fail(s, EVS_INVALID,
					 "event %zu: tag %zu \"%.*s\" repeats tag %zu", i, bad,
					 (int)tags[bad].len, tags[bad].ptr, other);
		return evs__fail(s, EVS_INVALID, "event %zu: tag %zu %s", i, bad, why);
	}
	if (e->producer) {
		ok = evs__check_name(e->producer, &len);
		if (ok <= 0)
			return evs__fail(s, EVS_INVALID, "event %zu: producer %s", i,
					 ok == 0    ? "is empty"
					 : ok == -1 ? "is longer than 255 bytes"
						    : "is not valid UTF-8");
	}
	return EVS_OK;
}

/* Check the whole batch and encode it; nothing is queued on failure. */
int evs__batch_prepare(evs_store *s, evs__req *q, const char *stream, uint64_t expected,
		       const evs_event_in *events, size_t n)
{
	size_t total = 0, len;
	const char *why;
	int ok;

	ok = evs__check_name(stream, &q->stream_len);
	if (ok <= 0)
		return evs__fail(s, EVS_BAD_STREAM, "%s",
				 ok == 0 ? "stream id is empty"
				 : ok == -1
					 ? "stream id is longer than 255 bytes"
					 : "stream id is not valid UTF-8 (or contains a NUL byte)");
	q->stream = stream;
	q->expected = expected;
	if (n == 0)
		return evs__fail(s, EVS_EMPTY_BATCH, "batch for stream \"%s\" has no events",
				 stream);
	if (n > s->opts.max_batch)
		return evs__fail(s, EVS_BATCH_TOO_LARGE,
				 "batch of %zu events exceeds the limit of %zu", n,
				 s->opts.max_batch);
	if (events == NULL)
		return evs__fail(s, EVS_INVALID, "events is NULL");

	for (size_t i = 0; i < n; i++) {
		const evs_event_in *e = &events[i];

		ok = evs__check_name(e->type, &len);
		if (ok <= 0)
			return evs__fail(s, EVS_BAD_TYPE, "event %zu: %s", i,
					 ok == 0    ? "type is empty"
					 : ok == -1 ? "type is longer than 255 bytes"
						    : "type is not valid UTF-8");
		if ((e->data == NULL && e->data_len) || (e->metadata == NULL && e->metadata_len))
			return evs__fail(s, EVS_INVALID, "event %zu: NULL payload with a length",
					 i);
		if (e->data_len > s->opts.max_event_size ||
		    e->metadata_len > s->opts.max_event_size - e->data_len)
			return evs__fail(
				s, EVS_EVENT_TOO_LARGE,
				"event %zu: data and metadata take %zu bytes, the limit is %zu", i,
				e->data_len + e->metadata_len, s->opts.max_event_size);
		total += e->data_len + e->metadata_len + len;
		if (total > EVS_MAX_BATCH_BYTES)
			return evs__fail(s, EVS_BATCH_TOO_LARGE,
					 "batch exceeds %zu bytes at event %zu",
					 EVS_MAX_BATCH_BYTES, i);
		if (e->metadata && !evs__mp_is_map(e->metadata, e->metadata_len, &why))
			return evs__fail(s, EVS_BAD_METADATA,
					 "event %zu: metadata is not a valid msgpack map: %s", i,
					 why);
		if ((ok = evs__batch_check_tags(s, i, e)) != EVS_OK)
			return ok;
	}

	/* data: well-formed and, where its type has a schema, valid against it,
	 * in one walk (schema/admit.c) */
	int rc = evs__schema_prepare(s, events, n, &q->type_versions);
	if (rc == EVS_SCHEMA_VIOLATION || rc == EVS_UNKNOWN_TYPE) {
		q->schema_rc = rc;
		if ((q->schema_msg = evs__strdup(evs_errmsg(s))) == NULL)
			return evs__fail(s, EVS_NOMEM, "out of memory");
	} else if (rc != EVS_OK) {
		return rc;
	}

	q->n = n;
	q->ev = evs__calloc(n, sizeof *q->ev);
	if (q->ev == NULL)
		return evs__fail(s, EVS_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (evs__is_zero16(events[i].id))
			evs_uuid_v7(q->ev[i].id);
		else
			memcpy(q->ev[i].id, events[i].id, 16);
		q->ev[i].off = q->tails.len;
		q->ev[i].latest = events[i].type_version == 0;
		evs_event_in e = events[i];
		if (q->type_versions)
			e.type_version = q->type_versions[i];
		if (evs__record_tail(&q->tails, q->stream, q->stream_len, &e, q->ev[i].id) != 0)
			return evs__fail(s, EVS_NOMEM, "out of memory");
		q->ev[i].len = q->tails.len - q->ev[i].off;
	}
	if (n > 1) {
		uint8_t(*ids)[16] = evs__malloc(n * 16);
		if (ids == NULL)
			return evs__fail(s, EVS_NOMEM, "out of memory");
		for (size_t i = 0; i < n; i++)
			memcpy(ids[i], q->ev[i].id, 16);
		qsort(ids, n, 16, cmp_id);
		for (size_t i = 1; i < n; i++) {
			if (memcmp(ids[i - 1], ids[i], 16) == 0) {
				char t[37];
				evs__uuid_text(ids[i], t);
				free(ids);
				return evs__fail(s, EVS_ID_CONFLICT,
						 "event id %s appears twice in the batch", t);
			}
		}
		free(ids);
	}
	return EVS_OK;
}

void evs__batch_free(evs__req *q)
{
	free(q->schema_msg);
	free(q->type_versions);
	free(q->ev);
	evs__buf_free(&q->tails);
}
