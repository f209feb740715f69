/*
 * restore.c - writing exported events back exactly as they were.
 *
 * Unlike evs_append(), which assigns position, version and recorded_at,
 * restore keeps them, so export -> restore -> export is byte-identical. The
 * store's invariants are checked instead of assumed: each event continues
 * the log (position = last + 1), its stream (version = head + 1) and time
 * (recorded_at not before the last). Events of one original commit share a
 * recorded_at, so a time-index entry is extended, not duplicated, when the
 * next event carries the same time.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "index.h"

static int name_copy(const evs_str *src, char out[EVS_MAX_NAME + 1])
{
	size_t len;

	if (src->ptr == NULL || src->len == 0 || src->len > EVS_MAX_NAME ||
	    memchr(src->ptr, 0, src->len) != NULL)
		return -1;
	memcpy(out, src->ptr, src->len);
	out[src->len] = 0;
	return evs__check_name(out, &len) == 1 ? 0 : -1;
}

/* Event i's tags and producer follow the rules of evs_append(). */
static int restore_tags(evs_store *s, size_t i, const evs_event *e)
{
	const char *why = NULL;
	size_t bad, other = SIZE_MAX;

	if ((e->ntags && e->tags == NULL) || e->ntags > EVS_MAX_TAGS)
		return evs__fail(s, EVS_INVALID, "event %zu: %zu tags (at most %d, not NULL)", i,
				 e->ntags, EVS_MAX_TAGS);
	bad = evs__tags_check(e->tags, e->ntags, &why, &other);
	if (bad != SIZE_MAX && other != SIZE_MAX)
		return evs__fail(s, EVS_INVALID, "event %zu: tag %zu repeats tag %zu", i, bad,
				 other);
	if (bad != SIZE_MAX)
		return evs__fail(s, EVS_INVALID, "event %zu: tag %zu %s", i, bad, why);
	if (e->producer.len && (e->producer.ptr == NULL || e->producer.len > EVS_MAX_NAME ||
				memchr(e->producer.ptr, 0, e->producer.len) ||
				!evs__utf8_text((const uint8_t *)e->producer.ptr, e->producer.len)))
		return evs__fail(s, EVS_INVALID,
				 "event %zu: producer is longer than 255 bytes or not valid UTF-8",
				 i);
	return EVS_OK;
}

/* Check and write the batch in txn; 0 or an LMDB code; order and input
 * problems set *code and the message. */
static int restore_txn(evs_store *s, MDB_txn *txn, const evs_event *events, size_t n, int *code,
		       bool *wrote)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t last_pos = 0, last_rec = 0, last_rec_pos = 0, new_streams = 0;
	evs__buf tail = {0};
	int rc;

	*code = EVS_OK;
	*wrote = false;
	if ((rc = mdb_cursor_open(txn, s->time, &c)) != 0)
		return rc;
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	mdb_cursor_close(c);
	if (rc == 0) {
		last_rec = evs__get_u64(k.mv_data);
		last_rec_pos = last_pos = evs__get_u64(v.mv_data);
	} else if (rc != MDB_NOTFOUND) {
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		const evs_event *e = &events[i];
		char stream[EVS_MAX_NAME + 1], type[EVS_MAX_NAME + 1];
		uint64_t head_v, head_p;
		const char *why;

		if (name_copy(&e->stream, stream) != 0) {
			*code = evs__fail(s, EVS_BAD_STREAM, "event %zu: invalid stream id", i);
			goto out;
		}
		if (name_copy(&e->type, type) != 0) {
			*code = evs__fail(s, EVS_BAD_TYPE, "event %zu: invalid type", i);
			goto out;
		}
		if (e->data_len > s->opts.max_event_size ||
		    e->metadata_len > s->opts.max_event_size - e->data_len) {
			*code = evs__fail(s, EVS_EVENT_TOO_LARGE, "event %zu: too large", i);
			goto out;
		}
		if (e->data && !evs__mp_is_map(e->data, e->data_len, &why)) {
			*code = evs__fail(s, EVS_BAD_DATA, "event %zu: data: %s", i, why);
			goto out;
		}
		if (e->metadata && !evs__mp_is_map(e->metadata, e->metadata_len, &why)) {
			*code = evs__fail(s, EVS_BAD_METADATA, "event %zu: metadata: %s", i, why);
			goto out;
		}
		if ((*code = restore_tags(s, i, e)) != EVS_OK)
			goto out;
		if (evs__is_zero16(e->id)) {
			*code = evs__fail(s, EVS_INVALID,
					  "event %zu: restored events need their id", i);
			goto out;
		}
		if (e->position != last_pos + 1) {
			*code = evs__fail(s, EVS_RESTORE_ORDER,
					  "event %zu: position %llu does not continue the store "
					  "(last position %llu)",
					  i, (unsigned long long)e->position,
					  (unsigned long long)last_pos);
			goto out;
		}
		if (e->recorded_at <= 0 || (uint64_t)e->recorded_at < last_rec) {
			*code = evs__fail(s, EVS_RESTORE_ORDER,
					  "event %zu: recorded_at %lld is before the last (%llu)",
					  i, (long long)e->recorded_at,
					  (unsigned long long)last_rec);
			goto out;
		}
		rc = evs__stream_head_txn(s, txn, stream, e->stream.len, &head_v, &head_p);
		if (rc && rc != MDB_NOTFOUND)
			goto out;
		if (e->version != head_v + 1) {
			*code = evs__fail(
				s, EVS_RESTORE_ORDER,
				"event %zu: version %llu of stream \"%s\" does not follow "
				"version %llu",
				i, (unsigned long long)e->version, stream,
				(unsigned long long)head_v);
			goto out;
		}
		MDB_val ik = {16, (void *)e->id}, iv;
		if ((rc = mdb_get(txn, s->ids, &ik, &iv)) != MDB_NOTFOUND) {
			if (rc == 0)
				*code = evs__fail(s, EVS_ID_CONFLICT,
						  "event %zu: id is already stored", i);
			goto out;
		}

		evs_event_in in = {.type = type,
				   .type_version = e->type_version,
				   .data = e->data,
				   .data_len = e->data_len,
				   .metadata = e->metadata,
				   .metadata_len = e->metadata_len,
				   .occurred_at = e->occurred_at};
		memcpy(in.correlation_id, e->correlation_id, 16);
		memcpy(in.causation_id, e->causation_id, 16);
		evs__buf_reset(&tail);
		if (evs__record_tail_ex(&tail, stream, e->stream.len, &in, e->id, e->tags, e->ntags,
					e->producer) != 0) {
			rc = ENOMEM;
			goto out;
		}
		uint8_t pk[8], tk[8];
		evs__put_u64(pk, e->position);
		k.mv_size = 8;
		k.mv_data = pk;
		v.mv_size = EVS__RECORD_HEAD + tail.len;
		if ((rc = mdb_put(txn, s->events, &k, &v, MDB_APPEND | MDB_RESERVE)) != 0)
			goto out;
		evs__record_head(v.mv_data, e->recorded_at, e->version);
		memcpy((uint8_t *)v.mv_data + EVS__RECORD_HEAD, tail.ptr, tail.len);

		if ((rc = evs__sx_put(s, txn, stream, e->stream.len, e->version, e->position)) != 0)
			goto out;
		iv.mv_size = 8;
		iv.mv_data = pk;
		if ((rc = mdb_put(txn, s->ids, &ik, &iv, MDB_NOOVERWRITE)) != 0)
			goto out;
		if ((rc = evs__ix_add_tail(s, txn, e->position, tail.ptr, tail.len)) != 0)
			goto out;
		evs__put_u64(tk, (uint64_t)e->recorded_at);
		MDB_val tkv = {8, tk}, tvv = {8, pk};
		/* same time as the last entry: one commit, extend its entry */
		rc = mdb_put(txn, s->time, &tkv, &tvv,
			     (uint64_t)e->recorded_at == last_rec && last_rec_pos ? 0 : MDB_APPEND);
		if (rc)
			goto out;
		if (head_v == 0)
			new_streams++;
		last_pos = last_rec_pos = e->position;
		last_rec = (uint64_t)e->recorded_at;
	}
	if (new_streams) {
		uint8_t b[8];
		uint64_t cnt = 0;
		MDB_val mk = {strlen(EVS__META_STREAMS), EVS__META_STREAMS}, mv;
		if ((rc = mdb_get(txn, s->meta, &mk, &mv)) == 0 && mv.mv_size == 8)
			cnt = evs__get_u64(mv.mv_data);
		evs__put_u64(b, cnt + new_streams);
		mv.mv_size = 8;
		mv.mv_data = b;
		if ((rc = mdb_put(txn, s->meta, &mk, &mv, 0)) != 0)
			goto out;
	}
	rc = 0;
	*wrote = n > 0;
out:
	evs__buf_free(&tail);
	return *code != EVS_OK ? 0 : rc;
}

struct restore_args {
	const evs_event *events;
	size_t n;
	int code;
	bool wrote;
};

static int restore_fn(evs_store *s, MDB_txn *txn, void *arg, bool *commit)
{
	struct restore_args *a = arg;
	int rc = restore_txn(s, txn, a->events, a->n, &a->code, &a->wrote);

	*commit = a->code == EVS_OK && a->wrote;
	return rc;
}

int evs_restore(evs_store *s, const evs_event *events, size_t n)
{
	struct restore_args a = {events, n, EVS_OK, false};
	int rc;

	if (s == NULL || (events == NULL && n))
		return EVS_INVALID;
	if ((rc = evs__write_txn(s, restore_fn, &a, "could not restore events")) != EVS_OK)
		return rc;
	if (a.code != EVS_OK)
		return a.code;
	if (a.wrote)
		evs__notify_wake(&s->notify);
	return EVS_OK;
}
