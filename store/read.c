/*
 * read.c - iterators over one stream or over all events, heads and ids.
 *
 * An iterator owns one read transaction for its whole life, so it sees one
 * consistent snapshot and hands out zero-copy views into the map. Reading a
 * stream walks its entries in "streams" (stream_index.c) and fetches each
 * record by position. Reading all walks "events" in key order, unless the
 * filter names an indexed part (type, category, tag, correlation id): then
 * the event indexes give the candidate positions (ixplan.c) and only those
 * records are read. Filters look at the decoded view, which costs no
 * allocation; an index walk answers types, categories, tags and
 * correlation ids itself, so only stream prefixes are checked on the
 * records it yields. evs_read_query reads by the indexes in the same way
 * (both through iter_all). Reads prefetch the cache lines of the records
 * they are about to decode (prefetch_scan, prefetch_record): see there.
 * Reads by position keep several lookups in flight, walking LMDB's pages
 * themselves (pgread.h, next_ahead); mdb_get answers what that walk does
 * not.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "pgread.h"

/* KIND_INDEX: all events, by the positions a plan over the event indexes
 * yields (ixplan.c); a record is checked against the filter only when
 * the filter has stream prefixes (recheck) */
enum { KIND_STREAM, KIND_ALL, KIND_INDEX };

/* Reads by position (an index's, a stream's) look this many positions
 * ahead of the one they hand out, their leaves' lines on the way
 * (pgread.h); the node of the one NEAR ahead is asked for too */
enum { AHEAD = 16, NEAR = 8 };

struct evs_iter {
	evs_store *s;
	MDB_txn *txn;
	MDB_cursor *cur;
	int kind, dir;
	size_t limit, count;
	bool started, done;
	bool again; /* the last entry failed (upcasting): hand it out again */
	uint64_t from;
	char *stream;
	size_t stream_len;
	evs__sxc sx; /* the stream's versions (stream_index.c) */
	uint8_t key[8];
	evs__filter filter;
	evs__query query;
	evs__plan *plan;
	uint64_t last;              /* KIND_INDEX: the last position handed out or tried */
	bool recheck;               /* KIND_INDEX: the plan alone does not decide the filter */
	evs_upcaster *up;           /* evs_iter_upcast(): events in their latest version */
	evs_str tags[EVS_MAX_TAGS]; /* the handed-out view's tags */
	/* KIND_INDEX and KIND_STREAM (next_ahead): positions the plan or the
	 * stream gave after `last`, in ring[head..tail), the source's outcome
	 * after them (ahead_rc, when ahead_end) and where it stands (ahead_at;
	 * the plan's argument) */
	bool pg_on, ahead_end;
	int ahead_rc;
	uint64_t ahead_at;
	unsigned head, tail;
	evs__pgtree pg;
	evs__pgslot ring[AHEAD];
};

int evs_stream_head(evs_store *s, const char *stream, evs_stream_info *head)
{
	MDB_txn *txn;
	size_t len;
	int rc;

	if (head)
		memset(head, 0, sizeof *head);
	if (s == NULL || head == NULL)
		return EVS_INVALID;
	if (evs__check_name(stream, &len) <= 0)
		return evs__fail(s, EVS_BAD_STREAM, "invalid stream id");
	if ((rc = evs__read_begin(s, &txn)) != EVS_OK)
		return rc;
	rc = evs__stream_head_txn(s, txn, stream, len, &head->version, &head->last_position);
	evs__read_end(s, txn);
	if (rc == MDB_NOTFOUND)
		return EVS_NOT_FOUND;
	return rc ? evs__fail_mdb(s, rc, "could not read stream head") : EVS_OK;
}

int evs_find_id(evs_store *s, const uint8_t id[16], uint64_t *position)
{
	MDB_txn *txn;
	MDB_val k = {16, (void *)id}, v;
	int rc;

	if (s == NULL || id == NULL || position == NULL)
		return EVS_INVALID;
	*position = 0;
	if ((rc = evs__read_begin(s, &txn)) != EVS_OK)
		return rc;
	rc = mdb_get(txn, s->ids, &k, &v);
	if (rc == 0 && v.mv_size == 8)
		*position = evs__get_u64(v.mv_data);
	else if (rc == 0)
		rc = MDB_CORRUPTED;
	evs__read_end(s, txn);
	if (rc == MDB_NOTFOUND)
		return EVS_NOT_FOUND;
	return rc ? evs__fail_mdb(s, rc, "could not look up event id") : EVS_OK;
}

/* ---- iterators --------------------------------------------------------- */

static int iter_new(evs_store *s, int kind, MDB_dbi dbi, evs_iter **out)
{
	evs_iter *it = evs__calloc(1, sizeof *it);
	int rc;

	if (it == NULL)
		return evs__fail(s, EVS_NOMEM, "out of memory");
	it->s = s;
	it->kind = kind;
	if ((rc = evs__read_begin(s, &it->txn)) != EVS_OK) {
		free(it);
		return rc;
	}
	if ((rc = mdb_cursor_open(it->txn, dbi, &it->cur)) != 0) {
		evs_iter_free(it);
		return evs__fail_mdb(s, rc, "could not open cursor");
	}
	*out = it;
	return EVS_OK;
}

int evs_read_stream(evs_store *s, const char *stream, uint64_t from, int direction, size_t limit,
		    evs_iter **out)
{
	evs_iter *it;
	size_t len;
	int ok, rc;

	if (out)
		*out = NULL;
	if (s == NULL || out == NULL || (direction != EVS_FORWARD && direction != EVS_BACKWARD))
		return EVS_INVALID;
	if ((ok = evs__check_name(stream, &len)) <= 0)
		return evs__fail(s, EVS_BAD_STREAM, "%s",
				 ok == 0 ? "stream id is empty"
					 : "stream id is too long or not valid UTF-8");
	if ((rc = iter_new(s, KIND_STREAM, s->streams, &it)) != EVS_OK)
		return rc;
	it->stream = evs__strdup(stream);
	if (it->stream == NULL) {
		evs_iter_free(it);
		return evs__fail(s, EVS_NOMEM, "out of memory");
	}
	it->stream_len = len;
	if ((rc = evs__sxc_open(s, it->txn, it->cur, it->stream, len, &it->sx)) != 0) {
		evs_iter_free(it);
		return evs__fail_mdb(s, rc, "could not read the stream index");
	}
	it->from = from;
	it->dir = direction;
	it->limit = limit;
	it->ahead_rc = MDB_NOTFOUND;
	it->pg_on = evs__pg_open(&it->pg, it->txn, it->s->core->main_db, "events");
	*out = it;
	return EVS_OK;
}

/* Start a read of all events (by a plan when it has one). */
static int iter_start(evs_iter *it, uint64_t from, int direction, size_t limit, evs_iter **out)
{
	int rc;

	it->from = from;
	it->dir = direction;
	it->limit = limit;
	if (it->plan) {
		it->kind = KIND_INDEX;
		if ((rc = evs__plan_bind(it->plan, it->txn, it->s->index)) != 0) {
			evs_store *s = it->s;
			evs_iter_free(it);
			return evs__fail_mdb(s, rc, "could not open the event index");
		}
		/* forward from `from` inclusive: after from - 1; backward: before
		 * from + 1 (EVS_ANY: before the end) */
		if (direction == EVS_FORWARD)
			it->last = from ? from - 1 : 0;
		else
			it->last = from == UINT64_MAX ? UINT64_MAX : from + 1;
		it->ahead_at = it->last;
		it->ahead_rc = MDB_NOTFOUND;
		it->pg_on = evs__pg_open(&it->pg, it->txn, it->s->core->main_db, "events");
	}
	*out = it;
	return EVS_OK;
}

/* A read of all events by a filter or by a query (evs_read_all,
 * evs_read_query): a scan, or a walk of the indexes when they can answer. */
static int iter_all(evs_store *s, const evs_filter *filter, const evs_query *q, bool by_query,
		    uint64_t from, int direction, size_t limit, evs_iter **out)
{
	evs_iter *it;
	int rc;

	if (out)
		*out = NULL;
	if (s == NULL || out == NULL || (direction != EVS_FORWARD && direction != EVS_BACKWARD))
		return EVS_INVALID;
	if ((rc = iter_new(s, KIND_ALL, s->events, &it)) != EVS_OK)
		return rc;
	rc = by_query ? evs__query_copy(s, &it->query, q)
		      : evs__filter_copy(s, &it->filter, filter);
	if (rc != EVS_OK) {
		evs_iter_free(it);
		return rc;
	}
	rc = by_query ? evs__plan_query(&it->query, &it->plan)
		      : evs__plan_filter(&it->filter, &it->plan);
	if (rc != 0) {
		evs_iter_free(it);
		return evs__fail(s, EVS_NOMEM, "out of memory");
	}
	/* a plan answers types, categories, tags and correlation ids
	 * exactly (the keys hold what the filter compares); only stream
	 * prefixes need a look at each record it yields */
	it->recheck = it->filter.nprefixes > 0;
	return iter_start(it, from, direction, limit, out);
}

int evs_read_all(evs_store *s, uint64_t from, int direction, const evs_filter *filter, size_t limit,
		 evs_iter **out)
{
	return iter_all(s, filter, NULL, false, from, direction, limit, out);
}

int evs_read_query(evs_store *s, const evs_query *q, uint64_t from, int direction, size_t limit,
		   evs_iter **out)
{
	return iter_all(s, NULL, q, true, from, direction, limit, out);
}

/* The position after it->ahead_at: the plan's (KIND_INDEX), or the
 * stream's next version's (KIND_STREAM, from it->from at the first). */
static int ahead_source(evs_iter *it, uint64_t *pos)
{
	uint64_t version;

	if (it->kind == KIND_INDEX)
		return it->dir == EVS_FORWARD ? evs__plan_next(it->plan, it->ahead_at, pos)
					      : evs__plan_prev(it->plan, it->ahead_at, pos);
	if (it->tail == 0)
		return evs__sxc_seek(&it->sx,
				     it->from == 0 && it->dir == EVS_FORWARD ? 1 : it->from,
				     it->dir, &version, pos);
	return evs__sxc_step(&it->sx, it->dir, &version, pos);
}

/* KIND_INDEX and KIND_STREAM: the next position and, when the page walk
 * found it, its record (v->mv_size 0: ask mdb_get). Keeps up to AHEAD
 * positions in flight (fewer when the limit is near); without pgread
 * (pg_on false: another LMDB) the positions alone. */
static int next_ahead(evs_iter *it, MDB_val *k, MDB_val *v)
{
	size_t room = it->limit ? it->limit - it->count : AHEAD;
	const evs__pgslot *sl;
	uint64_t pos;
	int rc;

	while (!it->ahead_end && it->tail - it->head < AHEAD && it->tail - it->head < room) {
		if ((rc = ahead_source(it, &pos)) != 0) {
			it->ahead_end = true;
			it->ahead_rc = rc;
			break;
		}
		it->ahead_at = pos;
		evs__pgslot *nx = &it->ring[it->tail++ % AHEAD];
		nx->pos = pos;
		nx->leaf = NULL;
		if (!it->pg_on)
			continue;
		evs__pg_find(&it->pg, nx);
		if (it->tail - it->head > NEAR)
			evs__pg_near(&it->pg, &it->ring[(it->tail - 1 - NEAR) % AHEAD]);
	}
	if (it->head == it->tail)
		return it->ahead_rc;
	sl = &it->ring[it->head++ % AHEAD];
	it->last = sl->pos;
	evs__put_u64(it->key, sl->pos);
	k->mv_size = 8;
	k->mv_data = it->key;
	if (!it->pg_on || !evs__pg_get(&it->pg, sl, v))
		v->mv_size = 0;
	return 0;
}

/* The next entry: for all events, (position key, record); by position
 * (an index plan's, a stream's), (position key, the record or nothing:
 * next_ahead). */
static int next_entry(evs_iter *it, MDB_val *k, MDB_val *v)
{
	uint64_t from = it->from;
	bool first = !it->started;
	int rc;

	if (it->again) {
		it->again = false;
		if (it->kind == KIND_ALL)
			return mdb_cursor_get(it->cur, k, v, MDB_GET_CURRENT);
		k->mv_size = 8; /* it->key still holds the entry's position */
		k->mv_data = it->key;
		v->mv_size = 0;
		return 0;
	}
	it->started = true;
	if (it->kind != KIND_ALL)
		return next_ahead(it, k, v);
	if (from == 0 && it->dir == EVS_FORWARD)
		from = 1;
	if (!first)
		return mdb_cursor_get(it->cur, k, v, it->dir == EVS_FORWARD ? MDB_NEXT : MDB_PREV);
	if (it->dir == EVS_BACKWARD && from == EVS_ANY)
		return mdb_cursor_get(it->cur, k, v, MDB_LAST);
	evs__put_u64(it->key, from);
	k->mv_size = 8;
	k->mv_data = it->key;
	rc = mdb_cursor_get(it->cur, k, v, MDB_SET_RANGE);
	if (it->dir == EVS_FORWARD)
		return rc;
	/* backward: the event at `from`, else the one before it */
	if (rc == MDB_NOTFOUND)
		return mdb_cursor_get(it->cur, k, v, MDB_LAST);
	if (rc == 0 && evs__get_u64(k->mv_data) > from)
		return mdb_cursor_get(it->cur, k, v, MDB_PREV);
	return rc;
}

/*
 * Prefetching. A record is read field by field, each field's place known
 * only from the one before it, so its cache lines would come in one after
 * another; and a scan's next record is a cold line too. Records of a leaf
 * page lie next to each other, each key's node below the one before it
 * (LMDB places nodes from the page's end downwards, and positions are
 * appended in order), so going forward the next records are at lower
 * addresses, about one record size each. A wrong guess costs a wasted
 * prefetch, never a fault. Written out and always inlined: gcc 12 drops a
 * call (or a loop) made only of prefetches as if it did nothing.
 */
#define PREFETCH_AT(a) __builtin_prefetch((const void *)(a))
/* five lines from address a (an integer: the guess may lie outside the
 * record, where pointer arithmetic would not be defined) */
#define PREFETCH_SPAN(a)                \
	do {                            \
		PREFETCH_AT(a);         \
		PREFETCH_AT((a) + 64);  \
		PREFETCH_AT((a) + 128); \
		PREFETCH_AT((a) + 192); \
		PREFETCH_AT((a) + 256); \
	} while (0)

/* A record just found by a lookup: its lines beyond the first, its last. */
static inline __attribute__((always_inline)) void prefetch_record(const MDB_val *v)
{
	uintptr_t p = (uintptr_t)v->mv_data;

	PREFETCH_SPAN(p + 64);
	PREFETCH_AT(p + v->mv_size - 1);
}

/* A scan: this record's last line and the record two ahead (the one
 * ahead was asked for at the step before). */
static inline __attribute__((always_inline)) void prefetch_scan(const MDB_val *v, int dir)
{
	uintptr_t p = (uintptr_t)v->mv_data, q;
	size_t n = v->mv_size, node = n + 16; /* node header 8, key 8 */

	PREFETCH_AT(p + n - 1);
	q = dir == EVS_FORWARD ? p - 16 - 2 * node : p - 16 + 2 * node;
	PREFETCH_SPAN(q);
	PREFETCH_AT(q + node - 1);
}

int evs_iter_next(evs_iter *it, evs_event *ev)
{
	MDB_val k, v;
	int rc;

	if (it == NULL || ev == NULL)
		return EVS_INVALID;
	if (it->done)
		return EVS_END;
	for (;;) {
		if (it->limit && it->count >= it->limit)
			goto end;
		rc = next_entry(it, &k, &v);
		if (rc == MDB_NOTFOUND)
			goto end;
		if (rc == MDB_CORRUPTED)
			return evs__fail(it->s, EVS_CORRUPT, "malformed stream index entry");
		if (rc)
			return evs__fail_mdb(it->s, rc, "could not read events");
		if (it->kind != KIND_ALL) {
			/* by position: the record the page walk found (next_ahead),
			 * else mdb_get. Not through a cursor kept on "events": a
			 * positioned cursor first compares the key with its page's
			 * first and last keys (one more cold line when, as here,
			 * the next position is pages away), then searches from
			 * the root all the same; mdb_get was 10% faster */
			rc = v.mv_size ? 0 : mdb_get(it->txn, it->s->events, &k, &v);
			if (rc == MDB_NOTFOUND)
				return evs__fail(it->s, EVS_CORRUPT,
						 "%s index points at missing position %llu",
						 it->kind == KIND_STREAM ? "stream" : "event",
						 (unsigned long long)evs__get_u64(k.mv_data));
			if (rc)
				return evs__fail_mdb(it->s, rc, "could not read events");
			prefetch_record(&v);
		}
		if (k.mv_size != 8)
			return evs__fail(it->s, EVS_CORRUPT, "malformed event key");
		if (it->kind == KIND_ALL)
			prefetch_scan(&v, it->dir);
		uint64_t pos = evs__get_u64(k.mv_data);
		if (!evs__record_decode(v.mv_data, v.mv_size, pos, ev, it->tags))
			return evs__fail(it->s, EVS_CORRUPT, "malformed record at position %llu",
					 (unsigned long long)pos);
		if ((it->kind == KIND_ALL || (it->kind == KIND_INDEX && it->recheck)) &&
		    (!evs__filter_pass(&it->filter, ev) || !evs__query_pass(&it->query, ev)))
			continue;
		if (it->up && (rc = evs_upcast(it->up, ev, ev)) != EVS_OK) {
			/* out of memory may pass: the next call tries this one again */
			it->again = true;
			return rc;
		}
		it->count++;
		return EVS_OK;
	}
end:
	it->done = true;
	return EVS_END;
}

void evs_iter_free(evs_iter *it)
{
	if (it == NULL)
		return;
	if (it->cur)
		mdb_cursor_close(it->cur);
	evs__plan_free(it->plan); /* closes its cursors: before the txn ends */
	evs__read_end(it->s, it->txn);
	evs__filter_free(&it->filter);
	evs__query_free(&it->query);
	evs_upcaster_free(it->up);
	free(it->stream);
	free(it);
}

int evs_iter_upcast(evs_iter *it, int on)
{
	if (it == NULL)
		return EVS_INVALID;
	if (!on) {
		evs_upcaster_free(it->up);
		it->up = NULL;
		return EVS_OK;
	}
	return it->up ? EVS_OK : evs_upcaster_new(it->s, &it->up);
}
