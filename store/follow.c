/*
 * follow.c - subscriptions: catch up from the log, then wait for commits.
 *
 * A subscription reads from the log in a read transaction that it keeps
 * while it hands out events (so each view stays valid until the next call)
 * and renews every CHUNK events, so it never pins old pages for long. Once
 * caught up it ends the transaction and sleeps on the store's commit
 * counter (notify.c). The counter is read BEFORE the snapshot is taken:
 * a commit the snapshot missed has then moved the counter, so the sleep
 * returns at once and no event is ever waited past. Sleeps are cut into
 * RECHECK_MS slices, the bounded fallback should a wake-up be lost.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define CHUNK      1024
#define RECHECK_MS 500

struct evs_sub {
	evs_store *s;
	uint64_t pos; /* last position delivered or skipped */
	evs__filter filter;
	MDB_txn *txn;
	MDB_cursor *cur;
	size_t in_txn;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep on the counter until it moves from seq or the deadline (-1 = none)
 * passes; false once the deadline has passed. */
static bool nap(evs_store *s, uint32_t seq, int64_t deadline)
{
	int slice = RECHECK_MS;

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
	if ((sub = calloc(1, sizeof *sub)) == NULL)
		return evs__fail(s, EVS_NOMEM, "out of memory");
	sub->s = s;
	sub->pos = after;
	if ((rc = evs__filter_copy(s, &sub->filter, filter)) != EVS_OK) {
		free(sub);
		return rc;
	}
	*out = sub;
	return EVS_OK;
}

static void sub_end_txn(evs_sub *sub)
{
	if (sub->cur)
		mdb_cursor_close(sub->cur);
	evs__read_end(sub->s, sub->txn);
	sub->cur = NULL;
	sub->txn = NULL;
	sub->in_txn = 0;
}

int evs_sub_next(evs_sub *sub, evs_event *ev, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	MDB_val k, v;
	int rc;

	if (sub == NULL || ev == NULL)
		return EVS_INVALID;
	if (sub->txn && sub->in_txn >= CHUNK)
		sub_end_txn(sub);
	for (;;) {
		uint32_t seq = evs__notify_seq(&sub->s->notify);
		/* only a snapshot taken after reading seq may decide to sleep */
		bool fresh = sub->txn == NULL;

		if (fresh) {
			uint8_t key[8];
			if ((rc = evs__read_begin(sub->s, &sub->txn)) != EVS_OK)
				return rc;
			if ((rc = mdb_cursor_open(sub->txn, sub->s->events, &sub->cur)) != 0) {
				sub_end_txn(sub);
				return evs__fail_mdb(sub->s, rc, "could not open cursor");
			}
			evs__put_u64(key, sub->pos + 1);
			k.mv_size = 8;
			k.mv_data = key;
			rc = mdb_cursor_get(sub->cur, &k, &v, MDB_SET_RANGE);
		} else {
			rc = mdb_cursor_get(sub->cur, &k, &v, MDB_NEXT);
		}
		while (rc == 0) {
			uint64_t pos = k.mv_size == 8 ? evs__get_u64(k.mv_data) : 0;
			if (pos == 0 || !evs__record_decode(v.mv_data, v.mv_size, pos, ev)) {
				sub_end_txn(sub);
				return evs__fail(sub->s, EVS_CORRUPT,
						 "malformed record after position %llu",
						 (unsigned long long)sub->pos);
			}
			sub->pos = pos;
			sub->in_txn++;
			if (evs__filter_pass(&sub->filter, ev))
				return EVS_OK;
			rc = mdb_cursor_get(sub->cur, &k, &v, MDB_NEXT);
		}
		sub_end_txn(sub);
		if (rc != MDB_NOTFOUND)
			return evs__fail_mdb(sub->s, rc, "could not read events");
		if (fresh && !nap(sub->s, seq, deadline))
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
	sub_end_txn(sub);
	evs__filter_free(&sub->filter);
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
