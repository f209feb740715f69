/*
 * follow.c - subscriptions: catch up from the log, then wait for commits.
 *
 * A subscription copies the records it will hand out, a chunk at a time
 * (up to CHUNK_EVENTS events or CHUNK_BYTES bytes that pass its filter),
 * in a short read transaction, and decodes its views from that copy. So it
 * never holds a read transaction between calls: its caller may append from
 * the same thread (a process manager following the log and issuing
 * commands), and a slow consumer pins no old pages. Once caught up it
 * sleeps on the store's commit counter (notify.c). The counter is read
 * BEFORE the snapshot is taken: a commit the snapshot missed has then
 * moved the counter, so the sleep returns at once and no event is ever
 * waited past. Sleeps are cut into RECHECK_MS slices, the bounded fallback
 * should a wake-up be lost.
 *
 * A filter with an indexed part (type, category, tag, correlation id)
 * finds its events through the event indexes (ixplan.c), in catch-up and
 * live alike: a chunk reads only the records the indexes point at, and
 * when they point at nothing more, everything up to the snapshot's last
 * position counts as skipped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "index.h"

#define CHUNK_EVENTS 256
#define CHUNK_BYTES  ((size_t)1 << 20)
#define CHUNK_SCAN   65536 /* events looked at per snapshot, filtered or not */
#define RECHECK_MS   500

typedef struct copied {
	uint64_t position;
	size_t off, len; /* the record in buf */
} copied;

struct evs_sub {
	evs_store *s;
	uint64_t pos;     /* last position delivered or skipped */
	uint64_t scanned; /* last position the current chunk looked at */
	evs__filter filter;
	evs__plan *plan; /* NULL: the filter is checked on a scan */
	evs__buf buf;    /* the chunk's records */
	copied ev[CHUNK_EVENTS];
	size_t n, next;             /* events in the chunk, the next to hand out */
	evs_str tags[EVS_MAX_TAGS]; /* the handed-out view's tags */
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The re-check slice. EVS_TEST_RECHECK_MS (tests only: 1..3600000)
 * lengthens it, so that a wake-up within a test's bound can only be the
 * commit's notification, not the fallback. */
static int recheck_ms(void)
{
	const char *e = getenv("EVS_TEST_RECHECK_MS");
	long v;

	if (e == NULL || *e == 0)
		return RECHECK_MS;
	v = strtol(e, NULL, 10);
	return v > 0 && v <= 3600000 ? (int)v : RECHECK_MS;
}

/* Sleep on the counter until it moves from seq or the deadline (-1 = none)
 * passes; false once the deadline has passed. */
static bool nap(evs_store *s, uint32_t seq, int64_t deadline)
{
	int slice = recheck_ms();

	if (deadline >= 0) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return false;
		if (left < slice)
			slice = (int)left;
	}
	evs__notify_wait(&s->notify, seq, slice);
	return true;
}

int evs_subscribe(evs_store *s, uint64_t after, const evs_filter *filter, evs_sub **out)
{
	evs_sub *sub;
	int rc;

	if (out)
		*out = NULL;
	if (s == NULL || out == NULL)
		return EVS_INVALID;
	if ((sub = evs__calloc(1, sizeof *sub)) == NULL)
		return evs__fail(s, EVS_NOMEM, "out of memory");
	sub->s = s;
	sub->pos = after;
	if ((rc = evs__filter_copy(s, &sub->filter, filter)) != EVS_OK) {
		free(sub);
		return rc;
	}
	if (evs__plan_filter(&sub->filter, &sub->plan) != 0) {
		evs_sub_close(sub);
		return evs__fail(s, EVS_NOMEM, "out of memory");
	}
	*out = sub;
	return EVS_OK;
}

/* Keep the record at pos (its view ev passed the filter) in the chunk:
 * 0, or ENOMEM; *full once the chunk is. */
static int keep(evs_sub *sub, uint64_t pos, const MDB_val *v, bool *full)
{
	sub->ev[sub->n] = (copied){pos, sub->buf.len, v->mv_size};
	evs__buf_putn(&sub->buf, v->mv_data, v->mv_size);
	if (sub->buf.oom)
		return ENOMEM;
	*full = ++sub->n == CHUNK_EVENTS || sub->buf.len >= CHUNK_BYTES;
	return 0;
}

/* The indexed chunk: the positions the plan yields after sub->pos, in the
 * snapshot txn. MDB_NOTFOUND once they end (every position up to the
 * snapshot's last is then looked at), -1 for a malformed record. */
static int refill_indexed(evs_sub *sub, MDB_txn *txn)
{
	MDB_val k, v;
	uint8_t key[8];
	uint64_t pos, at = sub->pos;
	size_t looked = 0;
	bool full = false;
	int rc;

	if ((rc = evs__plan_bind(sub->plan, txn, sub->s->index)) != 0)
		return rc;
	while ((rc = evs__plan_next(sub->plan, at, &pos)) == 0) {
		evs_str tags[EVS_MAX_TAGS];
		evs_event ev;

		at = pos;
		evs__put_u64(key, pos);
		k.mv_size = 8;
		k.mv_data = key;
		if ((rc = mdb_get(txn, sub->s->events, &k, &v)) != 0) {
			rc = rc == MDB_NOTFOUND ? -1 : rc;
			break;
		}
		if (!evs__record_decode(v.mv_data, v.mv_size, pos, &ev, tags)) {
			rc = -1;
			break;
		}
		sub->scanned = pos;
		if (!evs__filter_pass(&sub->filter, &ev)) {
			if (++looked == CHUNK_SCAN)
				break;
			continue;
		}
		if ((rc = keep(sub, pos, &v, &full)) != 0 || full)
			break;
	}
	evs__plan_unbind(sub->plan);
	if (rc == MDB_NOTFOUND) {
		/* nothing more matches in this snapshot: all of it is looked at */
		MDB_cursor *c;
		if ((rc = mdb_cursor_open(txn, sub->s->events, &c)) != 0)
			return rc;
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		mdb_cursor_close(c);
		if (rc == 0 && k.mv_size == 8 && evs__get_u64(k.mv_data) > sub->scanned)
			sub->scanned = evs__get_u64(k.mv_data);
		rc = rc && rc != MDB_NOTFOUND ? rc : MDB_NOTFOUND;
	}
	return rc;
}

/* Copy the next chunk of events after sub->pos that pass the filter.
 * *end: the snapshot reached the end of the log. */
static int refill(evs_sub *sub, bool *end)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	uint8_t key[8];
	size_t looked = 0;
	int rc;

	sub->n = sub->next = 0;
	evs__buf_reset(&sub->buf); /* and forget a past out of memory */
	sub->scanned = sub->pos;
	*end = false;
	if (sub->pos == UINT64_MAX) { /* nothing comes after it (pos + 1 wraps) */
		*end = true;
		return EVS_OK;
	}
	if ((rc = evs__read_begin(sub->s, &txn)) != EVS_OK)
		return rc;
	if (sub->plan) {
		rc = refill_indexed(sub, txn);
		evs__read_end(sub->s, txn);
		goto done;
	}
	if ((rc = mdb_cursor_open(txn, sub->s->events, &cur)) != 0) {
		evs__read_end(sub->s, txn);
		return evs__fail_mdb(sub->s, rc, "could not open cursor");
	}
	evs__put_u64(key, sub->pos + 1);
	k.mv_size = 8;
	k.mv_data = key;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint64_t pos = k.mv_size == 8 ? evs__get_u64(k.mv_data) : 0;
		evs_str tags[EVS_MAX_TAGS];
		evs_event ev;

		if (pos == 0 || !evs__record_decode(v.mv_data, v.mv_size, pos, &ev, tags)) {
			rc = -1;
			break;
		}
		sub->scanned = pos;
		if (!evs__filter_pass(&sub->filter, &ev)) {
			if (++looked == CHUNK_SCAN)
				break;
			continue;
		}
		bool full = false;
		if ((rc = keep(sub, pos, &v, &full)) != 0 || full)
			break;
	}
	mdb_cursor_close(cur);
	evs__read_end(sub->s, txn);
done:
	if (rc == MDB_NOTFOUND) {
		*end = true;
		rc = 0;
	}
	uint64_t at = sub->scanned;
	if (rc) {
		/* nothing of a failed chunk counts as read: the next call reads
		 * it again, so a transient failure loses no event */
		sub->n = sub->next = 0;
		sub->scanned = sub->pos;
	}
	if (rc == -1)
		return evs__fail(sub->s, EVS_CORRUPT, "malformed record after position %llu",
				 (unsigned long long)at);
	if (rc)
		return evs__fail_mdb(sub->s, rc, "could not read events");
	return EVS_OK;
}

int evs_sub_next(evs_sub *sub, evs_event *ev, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	bool end;
	int rc;

	if (sub == NULL || ev == NULL)
		return EVS_INVALID;
	for (;;) {
		if (sub->next < sub->n) {
			const copied *c = &sub->ev[sub->next++];
			if (!evs__record_decode(sub->buf.ptr + c->off, c->len, c->position, ev,
						sub->tags))
				return evs__fail(sub->s, EVS_CORRUPT, "malformed record");
			sub->pos = c->position;
			return EVS_OK;
		}
		/* the chunk is used up: what it skipped after its last event too */
		sub->pos = sub->scanned > sub->pos ? sub->scanned : sub->pos;
		uint32_t seq = evs__notify_seq(&sub->s->notify);
		if ((rc = refill(sub, &end)) != EVS_OK)
			return rc;
		if (sub->n > 0)
			continue;
		sub->pos = sub->scanned;
		/* a chunk that met its scan limit with no match: a long filtered
		 * catch-up still honours the timeout (the next call goes on) */
		if (!end && deadline >= 0 && mono_ms() >= deadline)
			return EVS_TIMEOUT;
		if (end && !nap(sub->s, seq, deadline))
			return EVS_TIMEOUT;
	}
}

uint64_t evs_sub_position(const evs_sub *sub)
{
	return sub ? sub->pos : 0;
}

void evs_sub_close(evs_sub *sub)
{
	if (sub == NULL)
		return;
	evs__plan_free(sub->plan);
	evs__filter_free(&sub->filter);
	evs__buf_free(&sub->buf);
	free(sub);
}

int evs_wait(evs_store *s, uint64_t position, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	evs_store_info h;
	int rc;

	if (s == NULL)
		return EVS_INVALID;
	for (;;) {
		uint32_t seq = evs__notify_seq(&s->notify);
		if ((rc = evs_head(s, &h)) != EVS_OK)
			return rc;
		if (h.last_position > position)
			return EVS_OK;
		if (!nap(s, seq, deadline))
			return EVS_TIMEOUT;
	}
}
