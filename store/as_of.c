/*
 * as_of.c - the store and a stream as of a time or a position.
 *
 * recorded_at is strictly increasing per commit and "time" holds one entry
 * per commit (recorded_at u64 BE -> last position of the commit), so the
 * last position recorded at or before T is one B-tree seek: the entry
 * before the first key > T. A stream's version as of position P is a
 * bisection over its versions in "streams" (version and position rise
 * together), each probe a B-tree lookup: O(log^2 n) page touches at worst,
 * never a scan.
 */
#include <string.h>

#include "internal.h"

static int position_at_txn(evs_store *s, MDB_txn *txn, int64_t t, uint64_t *position)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t key[8];
	int rc;

	*position = 0;
	if (t < 0)
		return 0;
	if ((rc = mdb_cursor_open(txn, s->time, &c)) != 0)
		return rc;
	if (t == INT64_MAX) {
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	} else {
		evs__put_u64(key, (uint64_t)t + 1);
		k.mv_size = 8;
		k.mv_data = key;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc == 0)
			rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
		else if (rc == MDB_NOTFOUND)
			rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	}
	if (rc == 0 && v.mv_size == 8)
		*position = evs__get_u64(v.mv_data);
	else if (rc == 0)
		rc = MDB_CORRUPTED;
	else if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(c);
	return rc;
}

/* Last (version, position) of the stream with position <= p. */
static int version_at_txn(evs_store *s, MDB_txn *txn, const char *stream, size_t len, uint64_t p,
			  uint64_t *version, uint64_t *position)
{
	uint64_t head_v, head_p, lo, hi;
	int rc;

	*version = *position = 0;
	rc = evs__stream_head_txn(s, txn, stream, len, &head_v, &head_p);
	if (rc == MDB_NOTFOUND || p == 0)
		return 0;
	if (rc)
		return rc;
	if (head_p <= p) {
		*version = head_v;
		*position = head_p;
		return 0;
	}
	MDB_cursor *c;
	evs__sxc x;
	if ((rc = mdb_cursor_open(txn, s->streams, &c)) != 0)
		return rc;
	if ((rc = evs__sxc_open(s, txn, c, stream, len, &x)) != 0) {
		mdb_cursor_close(c);
		return rc;
	}
	/* invariant: position(lo) <= p (or lo = 0), position(hi) > p */
	lo = 0;
	hi = head_v;
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2, mp;

		rc = evs__sxc_get(&x, mid, &mp);
		if (rc == MDB_NOTFOUND)
			rc = MDB_CORRUPTED; /* versions are contiguous */
		if (rc)
			break;
		if (mp <= p) {
			lo = mid;
			*position = mp;
		} else {
			hi = mid;
		}
	}
	mdb_cursor_close(c);
	if (rc == 0)
		*version = lo;
	if (lo == 0)
		*position = 0;
	return rc;
}

int evs_position_at(evs_store *s, int64_t t, uint64_t *position)
{
	MDB_txn *txn;
	int rc;

	if (s == NULL || position == NULL)
		return EVS_INVALID;
	if ((rc = evs__read_begin(s, &txn)) != EVS_OK)
		return rc;
	rc = position_at_txn(s, txn, t, position);
	evs__read_end(s, txn);
	return rc ? evs__fail_mdb(s, rc, "could not read the time index") : EVS_OK;
}

static int stream_at(evs_store *s, const char *stream, bool by_time, int64_t t, uint64_t p,
		     uint64_t *version, uint64_t *position)
{
	MDB_txn *txn;
	size_t len;
	int rc;

	if (s == NULL || version == NULL || position == NULL)
		return EVS_INVALID;
	*version = *position = 0;
	if (evs__check_name(stream, &len) <= 0)
		return evs__fail(s, EVS_BAD_STREAM, "invalid stream id");
	if ((rc = evs__read_begin(s, &txn)) != EVS_OK)
		return rc;
	rc = by_time ? position_at_txn(s, txn, t, &p) : 0;
	if (rc == 0)
		rc = version_at_txn(s, txn, stream, len, p, version, position);
	evs__read_end(s, txn);
	return rc ? evs__fail_mdb(s, rc, "could not look up stream as of") : EVS_OK;
}

int evs_stream_version_at(evs_store *s, const char *stream, int64_t t, uint64_t *version,
			  uint64_t *position)
{
	return stream_at(s, stream, true, t, 0, version, position);
}

int evs_stream_version_at_position(evs_store *s, const char *stream, uint64_t p, uint64_t *version,
				   uint64_t *position)
{
	return stream_at(s, stream, false, 0, p, version, position);
}
