/*
 * batch.c - checking a caller's batch and encoding it, in the caller's own
 * thread (in parallel with other callers) before it is queued: names,
 * sizes and payloads, the schema registry's verdict, event ids (given or
 * generated) and the records' tails. A batch refused here writes nothing
 * and never reaches the queue. A request of evs_append_ex() is the same
 * thing per part, plus its checkpoint writes (names copied) and its
 * condition (checked here, evaluated in the group: condition.c).
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

/* Check one part (messages start with pre: "" or "part N: ") and encode
 * its events after the request's earlier parts; *total counts the bytes of
 * the whole request. */
static int prepare_part(evs_store *s, evs__req *q, evs__part *p, const char *pre,
			const char *stream, uint64_t expected, const evs_event_in *events, size_t n,
			size_t *total)
{
	size_t len;
	const char *why;
	int ok;

	ok = evs__check_name(stream, &p->stream_len);
	if (ok <= 0)
		return evs__fail(s, EVS_BAD_STREAM, "%s%s", pre,
				 ok == 0 ? "stream id is empty"
				 : ok == -1
					 ? "stream id is longer than 255 bytes"
					 : "stream id is not valid UTF-8 (or contains a NUL byte)");
	p->stream = stream;
	p->expected = expected;
	if (n == 0)
		return evs__fail(s, EVS_EMPTY_BATCH, "%sbatch for stream \"%s\" has no events", pre,
				 stream);
	if (n > s->opts.max_batch || q->n + n > s->opts.max_batch)
		return evs__fail(s, EVS_BATCH_TOO_LARGE,
				 "%sbatch of %zu events exceeds the limit of %zu", pre, q->n + n,
				 s->opts.max_batch);
	if (events == NULL)
		return evs__fail(s, EVS_INVALID, "%sevents is NULL", pre);

	for (size_t i = 0; i < n; i++) {
		const evs_event_in *e = &events[i];

		ok = evs__check_name(e->type, &len);
		if (ok <= 0)
			return evs__fail(s, EVS_BAD_TYPE, "%sevent %zu: %s", pre, i,
					 ok == 0    ? "type is empty"
					 : ok == -1 ? "type is longer than 255 bytes"
						    : "type is not valid UTF-8");
		if ((e->data == NULL && e->data_len) || (e->metadata == NULL && e->metadata_len))
			return evs__fail(s, EVS_INVALID, "%sevent %zu: NULL payload with a length",
					 pre, i);
		if (e->data_len > s->opts.max_event_size ||
		    e->metadata_len > s->opts.max_event_size - e->data_len)
			return evs__fail(
				s, EVS_EVENT_TOO_LARGE,
				"%sevent %zu: data and metadata take %zu bytes, the limit is %zu",
				pre, i, e->data_len + e->metadata_len, s->opts.max_event_size);
		*total += e->data_len + e->metadata_len + len;
		if (*total > EVS_MAX_BATCH_BYTES)
			return evs__fail(s, EVS_BATCH_TOO_LARGE,
					 "%sbatch exceeds %zu bytes at event %zu", pre,
					 EVS_MAX_BATCH_BYTES, i);
		if (e->metadata && !evs__mp_is_map(e->metadata, e->metadata_len, &why))
			return evs__fail(s, EVS_BAD_METADATA,
					 "%sevent %zu: metadata is not a valid msgpack map: %s",
					 pre, i, why);
		if ((ok = evs__batch_check_tags(s, i, e)) != EVS_OK) {
			char m[512];
			snprintf(m, sizeof m, "%s", evs_errmsg(s));
			return evs__fail(s, ok, "%s%s", pre, m);
		}
	}

	/* data: well-formed and, where its type has a schema, valid against it,
	 * in one walk (schema/admit.c) */
	int rc = evs__schema_prepare(s, events, n, &p->type_versions);
	if (rc == EVS_SCHEMA_VIOLATION || rc == EVS_UNKNOWN_TYPE) {
		if (q->schema_rc == 0) {
			q->schema_rc = rc;
			if ((q->schema_msg =
				     evs__malloc(strlen(pre) + strlen(evs_errmsg(s)) + 1)) == NULL)
				return evs__fail(s, EVS_NOMEM, "out of memory");
			strcpy(q->schema_msg, pre);
			strcat(q->schema_msg, evs_errmsg(s));
		}
	} else if (rc != EVS_OK) {
		return rc;
	}

	p->n = n;
	p->ev = evs__calloc(n, sizeof *p->ev);
	if (p->ev == NULL)
		return evs__fail(s, EVS_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (evs__is_zero16(events[i].id)) {
			evs_uuid_v7(p->ev[i].id);
			p->ev[i].fresh = true;
		} else
			memcpy(p->ev[i].id, events[i].id, 16);
		p->ev[i].off = q->tails.len;
		p->ev[i].latest = events[i].type_version == 0;
		evs_event_in e = events[i];
		if (p->type_versions)
			e.type_version = p->type_versions[i];
		if (evs__record_tail(&q->tails, p->stream, p->stream_len, &e, p->ev[i].id) != 0)
			return evs__fail(s, EVS_NOMEM, "out of memory");
		p->ev[i].len = q->tails.len - p->ev[i].off;
	}
	q->n += n;
	return EVS_OK;
}

/* No event id twice in the request. Ids made here (evs_uuid_v7) are new:
 * only the caller's own ids are compared. */
static int unique_ids(evs_store *s, const evs__req *q)
{
	uint8_t(*ids)[16];
	size_t k = 0, given = 0;

	for (size_t p = 0; p < q->nparts; p++)
		for (size_t i = 0; i < q->parts[p].n; i++)
			given += !q->parts[p].ev[i].fresh;
	if (given < 2)
		return EVS_OK;
	if ((ids = evs__malloc(given * 16)) == NULL)
		return evs__fail(s, EVS_NOMEM, "out of memory");
	for (size_t p = 0; p < q->nparts; p++)
		for (size_t i = 0; i < q->parts[p].n; i++)
			if (!q->parts[p].ev[i].fresh)
				memcpy(ids[k++], q->parts[p].ev[i].id, 16);
	qsort(ids, given, 16, cmp_id);
	for (size_t i = 1; i < given; i++) {
		if (memcmp(ids[i - 1], ids[i], 16) == 0) {
			char t[37];
			evs__uuid_text(ids[i], t);
			free(ids);
			return evs__fail(s, EVS_ID_CONFLICT,
					 "event id %s appears twice in the batch", t);
		}
	}
	free(ids);
	return EVS_OK;
}

/* Check the whole batch and encode it; nothing is queued on failure. */
int evs__batch_prepare(evs_store *s, evs__req *q, const char *stream, uint64_t expected,
		       const evs_event_in *events, size_t n)
{
	size_t total = 0;
	int rc;

	q->parts = &q->one;
	q->nparts = 1;
	if ((rc = prepare_part(s, q, &q->one, "", stream, expected, events, n, &total)) != EVS_OK)
		return rc;
	return unique_ids(s, q);
}

static int cmp_name(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;

	return strcmp(*x, *y);
}

/* Are the names unique? (sorted copy; names already checked) */
static int unique_names(evs_store *s, const char *const *names, size_t n, const char *what)
{
	const char **v;

	if (n < 2)
		return EVS_OK;
	if ((v = evs__malloc(n * sizeof *v)) == NULL)
		return evs__fail(s, EVS_NOMEM, "out of memory");
	memcpy(v, names, n * sizeof *v);
	qsort(v, n, sizeof *v, cmp_name);
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i - 1], v[i]) == 0) {
			int rc = evs__fail(s, EVS_INVALID, "%s \"%s\" appears twice", what, v[i]);
			free(v);
			return rc;
		}
	free(v);
	return EVS_OK;
}

static int prepare_cks(evs_store *s, evs__req *q, const evs_checkpoint_write *cks, size_t ncks)
{
	const char **names;
	int rc, ok;

	if (ncks == 0)
		return EVS_OK;
	if (cks == NULL)
		return evs__fail(s, EVS_INVALID, "checkpoints is NULL");
	if (ncks > s->opts.max_batch)
		return evs__fail(s, EVS_BATCH_TOO_LARGE,
				 "%zu checkpoint writes exceed the limit of %zu", ncks,
				 s->opts.max_batch);
	if (s->checkpoints == 0)
		return evs__fail(s, EVS_INVALID, "store \"%s\" has no checkpoints sub-database",
				 s->path);
	if ((q->ck = evs__calloc(ncks, sizeof *q->ck)) == NULL ||
	    (names = evs__calloc(ncks, sizeof *names)) == NULL)
		return evs__fail(s, EVS_NOMEM, "out of memory");
	for (size_t i = 0; i < ncks; i++) {
		size_t len = 0;
		ok = evs__check_name(cks[i].name, &len);
		if (ok <= 0) {
			free(names);
			return evs__fail(s, EVS_INVALID, "checkpoint write %zu: name %s", i,
					 ok == 0    ? "is empty"
					 : ok == -1 ? "is longer than 255 bytes"
						    : "is not valid UTF-8");
		}
		if (cks[i].remove != 0 && cks[i].remove != 1) {
			free(names);
			return evs__fail(s, EVS_INVALID,
					 "checkpoint write %zu: remove is not 0 or 1", i);
		}
		names[i] = cks[i].name;
		q->ck[i].off = q->ck_names.len;
		q->ck[i].len = len;
		q->ck[i].position = cks[i].position;
		q->ck[i].remove = cks[i].remove != 0;
		evs__buf_putn(&q->ck_names, cks[i].name, len);
		if (q->ck_names.oom) {
			free(names);
			return evs__fail(s, EVS_NOMEM, "out of memory");
		}
	}
	q->nck = ncks;
	rc = unique_names(s, names, ncks, "checkpoint");
	free(names);
	return rc;
}

int evs__batch_prepare_ex(evs_store *s, evs__req *q, const evs_append_part *parts, size_t nparts,
			  const evs_checkpoint_write *cks, size_t ncks, const evs_condition *cond)
{
	size_t total = 0;
	const char **names;
	char pre[48];
	int rc;

	q->ex = true;
	if (nparts == 0 && ncks == 0)
		return evs__fail(s, EVS_EMPTY_BATCH, "no parts and no checkpoint writes");
	if (nparts && parts == NULL)
		return evs__fail(s, EVS_INVALID, "parts is NULL");
	if (nparts > s->opts.max_batch)
		return evs__fail(s, EVS_BATCH_TOO_LARGE, "%zu parts exceed the limit of %zu",
				 nparts, s->opts.max_batch);
	if (nparts == 1) {
		q->parts = &q->one;
	} else if (nparts > 1 && (q->parts = evs__calloc(nparts, sizeof *q->parts)) == NULL) {
		return evs__fail(s, EVS_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < nparts; i++) {
		snprintf(pre, sizeof pre, "part %zu: ", i);
		q->nparts = i + 1;
		if ((rc = prepare_part(s, q, &q->parts[i], pre, parts[i].stream, parts[i].expected,
				       parts[i].events, parts[i].n, &total)) != EVS_OK)
			return rc;
	}
	if ((rc = unique_ids(s, q)) != EVS_OK)
		return rc;
	if (nparts > 1) {
		if ((names = evs__calloc(nparts, sizeof *names)) == NULL)
			return evs__fail(s, EVS_NOMEM, "out of memory");
		for (size_t i = 0; i < nparts; i++)
			names[i] = parts[i].stream;
		rc = unique_names(s, names, nparts, "stream");
		free(names);
		if (rc != EVS_OK)
			return rc;
	}
	if ((rc = prepare_cks(s, q, cks, ncks)) != EVS_OK)
		return rc;
	if (cond && (rc = evs__condition_valid(s, cond)) != EVS_OK)
		return rc;
	q->cond = cond;
	return EVS_OK;
}

void evs__batch_free(evs__req *q)
{
	free(q->schema_msg);
	for (size_t i = 0; i < q->nparts; i++) {
		free(q->parts[i].type_versions);
		free(q->parts[i].ev);
	}
	if (q->parts != &q->one)
		free(q->parts);
	free(q->ck);
	evs__buf_free(&q->ck_names);
	evs__buf_free(&q->tails);
}
