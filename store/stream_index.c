/*
 * stream_index.c - (stream, version) -> position: "streams" and "heads".
 *
 * "streams" (the history):
 *   Key:   stream id bytes | 0x00 | version u64 BE      (2..264 bytes)
 *   Value: position u64 BE                               (8 bytes)
 * "heads" (the newest versions of each stream, format 3):
 *   Key:   stream id bytes                               (1..255 bytes)
 *   Value: v0 u64 BE | n positions u64 BE                (8 + 8n bytes, n >= 1)
 *          the positions of versions v0, v0 + 1, ..., v0 + n - 1
 *
 * A stream's versions 1..v0-1 are in "streams", v0..v0+n-1 in its "heads"
 * entry; its head is the last of them. A stream without a "heads" entry
 * (one written by format 2) has all its versions in "streams".
 *
 * Why two: a commit of one event to each of 64 streams used to copy one
 * "streams" leaf per stream (each stream's keys are together, so its
 * newest entry is on a page of its own) plus the branch pages above them:
 * ~95 pages, ~380 KiB per group commit. Appends now go into the stream's
 * "heads" value, which is short, so the heads of many busy streams share
 * a few pages; when a heads entry reaches 2 * EVS__SX_TAIL versions, the
 * oldest EVS__SX_TAIL move to "streams" together (one leaf touched per
 * EVS__SX_TAIL events of a stream). Versions and positions both rise in a
 * stream, and versions are contiguous (evs verify checks both), so a
 * read by version is an index computation in the heads entry or one
 * lookup in "streams".
 *
 * Stream ids hold no NUL byte, so the 0x00 separator keeps every stream's
 * "streams" keys together and in version order, and sorts "a" before
 * "a-b".
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define TAIL_MAX (2 * EVS__SX_TAIL)

size_t evs__sx_key(uint8_t *out, const char *stream, size_t len, uint64_t version)
{
	memcpy(out, stream, len);
	out[len] = 0;
	evs__put_u64(out + len + 1, version);
	return len + 9;
}

bool evs__sx_split(const MDB_val *k, size_t *stream_len, uint64_t *version)
{
	const uint8_t *p = k->mv_data;

	if (k->mv_size < 10 || k->mv_size > EVS_MAX_NAME + 9 || p[k->mv_size - 9] != 0)
		return false;
	*stream_len = k->mv_size - 9;
	*version = evs__get_u64(p + k->mv_size - 8);
	return true;
}

int evs__sx_heads_value(const MDB_val *v, uint64_t *v0, size_t *n)
{
	if (v->mv_size < 16 || (v->mv_size - 8) % 8 || (v->mv_size - 8) / 8 >= TAIL_MAX)
		return MDB_CORRUPTED;
	*v0 = evs__get_u64(v->mv_data);
	*n = (v->mv_size - 8) / 8;
	return *v0 == 0 ? MDB_CORRUPTED : 0;
}

/* The stream's heads entry into t: 0, MDB_NOTFOUND (none: every version
 * is in "streams"), or a failure. */
static int heads_get(evs_store *s, MDB_txn *txn, const char *stream, size_t len, evs__sxtail *t)
{
	MDB_val k = {len, (void *)stream}, v;
	int rc;

	t->n = 0;
	t->v0 = 0;
	if (s->heads == 0)
		return MDB_NOTFOUND;
	if ((rc = mdb_get(txn, s->heads, &k, &v)) != 0)
		return rc;
	if ((rc = evs__sx_heads_value(&v, &t->v0, &t->n)) != 0)
		return rc;
	for (size_t i = 0; i < t->n; i++)
		t->pos[i] = evs__get_u64((const uint8_t *)v.mv_data + 8 + 8 * i);
	return 0;
}

/* The last version in "streams" (0 if none) and its position. */
static int history_last(MDB_cursor *c, const char *stream, size_t len, uint64_t *version,
			uint64_t *position)
{
	int rc = evs__sx_seek(c, stream, len, UINT64_MAX, EVS_BACKWARD, version, position);

	if (rc == MDB_NOTFOUND)
		*version = *position = 0;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int evs__sx_put(evs_store *s, MDB_txn *txn, const char *stream, size_t len, uint64_t version,
		uint64_t position)
{
	return evs__sx_put_run(s, txn, stream, len, version, position, 1);
}

/* Versions version..version+n-1 of the stream at positions position..
 * position+n-1 (a part's events are consecutive in both): one "heads" read
 * and one write for the run, the same entries as n single puts. */
int evs__sx_put_run(evs_store *s, MDB_txn *txn, const char *stream, size_t len, uint64_t version,
		    uint64_t position, size_t n)
{
	uint8_t key[EVS_MAX_NAME + 9], val[8];
	evs__sxtail t;
	MDB_val k = {len, (void *)stream}, v;
	int rc;

	if (s->heads == 0)
		return EINVAL; /* only a read-only open has no "heads" */
	if (n == 0)
		return 0;
	rc = heads_get(s, txn, stream, len, &t);
	if (rc == MDB_NOTFOUND) {
		/* a new stream, or one whose versions are all in "streams" */
		t.v0 = version;
		t.n = 0;
	} else if (rc) {
		return rc;
	}
	if (version != t.v0 + t.n)
		return MDB_CORRUPTED; /* versions are contiguous */
	for (size_t i = 0; i < n; i++) {
		t.pos[t.n++] = position + i;
		if (t.n < TAIL_MAX)
			continue;
		/* the oldest half goes to the history, together */
		for (size_t j = 0; j < EVS__SX_TAIL; j++) {
			MDB_val hk = {evs__sx_key(key, stream, len, t.v0 + j), key}, hv = {8, val};
			evs__put_u64(val, t.pos[j]);
			if ((rc = mdb_put(txn, s->streams, &hk, &hv, MDB_NOOVERWRITE)) != 0)
				return rc == MDB_KEYEXIST ? MDB_CORRUPTED : rc;
		}
		memmove(t.pos, t.pos + EVS__SX_TAIL, (TAIL_MAX - EVS__SX_TAIL) * sizeof t.pos[0]);
		t.v0 += EVS__SX_TAIL;
		t.n -= EVS__SX_TAIL;
	}
	v.mv_size = 8 + 8 * t.n;
	v.mv_data = NULL;
	if ((rc = mdb_put(txn, s->heads, &k, &v, MDB_RESERVE)) != 0)
		return rc;
	evs__put_u64(v.mv_data, t.v0);
	for (size_t i = 0; i < t.n; i++)
		evs__put_u64((uint8_t *)v.mv_data + 8 + 8 * i, t.pos[i]);
	return 0;
}

int evs__sx_get(evs_store *s, MDB_txn *txn, const char *stream, size_t len, uint64_t version,
		uint64_t *position)
{
	uint8_t key[EVS_MAX_NAME + 9];
	evs__sxtail t;
	MDB_val k = {evs__sx_key(key, stream, len, version), key}, v;
	int rc = heads_get(s, txn, stream, len, &t);

	if (rc && rc != MDB_NOTFOUND)
		return rc;
	if (rc == 0 && version >= t.v0) {
		if (version - t.v0 >= t.n)
			return MDB_NOTFOUND;
		*position = t.pos[version - t.v0];
		return 0;
	}
	rc = mdb_get(txn, s->streams, &k, &v);
	if (rc == 0 && v.mv_size != 8)
		rc = MDB_CORRUPTED;
	if (rc == 0)
		*position = evs__get_u64(v.mv_data);
	return rc;
}

int evs__sx_cursor_get(MDB_cursor *c, const char *stream, size_t len, uint64_t version,
		       uint64_t *position)
{
	uint8_t key[EVS_MAX_NAME + 9];
	MDB_val k = {evs__sx_key(key, stream, len, version), key}, v;
	/* a positioned cursor skips the descent when the key is on its page,
	 * as the probes of a bisection soon are */
	int rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);

	if (rc == 0 && v.mv_size != 8)
		rc = MDB_CORRUPTED;
	if (rc == 0)
		*position = evs__get_u64(v.mv_data);
	return rc;
}

/* Does the cursor's entry belong to the stream? Then fill version and
 * position. */
static int entry(const MDB_val *k, const MDB_val *v, const char *stream, size_t len,
		 uint64_t *version, uint64_t *position)
{
	size_t slen;

	if (!evs__sx_split(k, &slen, version) || slen != len ||
	    memcmp(k->mv_data, stream, len) != 0)
		return MDB_NOTFOUND;
	if (v->mv_size != 8)
		return MDB_CORRUPTED;
	*position = evs__get_u64(v->mv_data);
	return 0;
}

int evs__sx_seek(MDB_cursor *c, const char *stream, size_t len, uint64_t from, int dir,
		 uint64_t *version, uint64_t *position)
{
	uint8_t key[EVS_MAX_NAME + 9];
	MDB_val k = {evs__sx_key(key, stream, len, from), key}, v;
	int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);

	if (dir == EVS_FORWARD)
		return rc ? rc : entry(&k, &v, stream, len, version, position);
	/* backward: the entry at `from`, else the one before it */
	if (rc == 0 && k.mv_size == len + 9 && memcmp(k.mv_data, key, len + 9) == 0)
		return entry(&k, &v, stream, len, version, position);
	if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	else if (rc == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
	return rc ? rc : entry(&k, &v, stream, len, version, position);
}

/* ---- a stream's versions over both sub-databases ----------------------- */

int evs__sxc_open(evs_store *s, MDB_txn *txn, MDB_cursor *c, const char *stream, size_t len,
		  evs__sxc *x)
{
	uint64_t pos;
	int rc;

	memset(x, 0, sizeof *x);
	x->c = c;
	x->stream = stream;
	x->len = len;
	rc = heads_get(s, txn, stream, len, &x->t);
	if (rc == 0) {
		x->head = x->t.v0 + x->t.n - 1;
		return 0;
	}
	if (rc != MDB_NOTFOUND)
		return rc;
	x->t.v0 = UINT64_MAX; /* everything in "streams" */
	return history_last(c, stream, len, &x->head, &pos);
}

int evs__sxc_get(evs__sxc *x, uint64_t version, uint64_t *position)
{
	if (version == 0 || version > x->head)
		return MDB_NOTFOUND;
	if (version >= x->t.v0) {
		*position = x->t.pos[version - x->t.v0];
		return 0;
	}
	return evs__sx_cursor_get(x->c, x->stream, x->len, version, position);
}

int evs__sxc_seek(evs__sxc *x, uint64_t from, int dir, uint64_t *version, uint64_t *position)
{
	uint64_t v = dir == EVS_FORWARD ? (from ? from : 1) : (from < x->head ? from : x->head);
	int rc = evs__sxc_get(x, v, position);

	if (rc == MDB_NOTFOUND && v <= x->head && v > 0)
		rc = MDB_CORRUPTED; /* versions are contiguous */
	if (rc == 0)
		*version = x->at = v;
	return rc;
}

int evs__sxc_step(evs__sxc *x, int dir, uint64_t *version, uint64_t *position)
{
	uint64_t v = dir == EVS_FORWARD ? x->at + 1 : x->at - 1;
	MDB_val k, val;
	int rc;

	if (v == 0 || v > x->head)
		return MDB_NOTFOUND;
	/* within "streams", the neighbour entry is the next version */
	if (v < x->t.v0 && x->at < x->t.v0) {
		rc = mdb_cursor_get(x->c, &k, &val, dir == EVS_FORWARD ? MDB_NEXT : MDB_PREV);
		if (rc == 0)
			rc = entry(&k, &val, x->stream, x->len, version, position);
		if (rc == 0 && *version != v)
			rc = MDB_CORRUPTED;
		if (rc == MDB_NOTFOUND)
			rc = MDB_CORRUPTED;
	} else {
		rc = evs__sxc_get(x, v, position);
		if (rc == MDB_NOTFOUND)
			rc = MDB_CORRUPTED;
		*version = v;
	}
	if (rc == 0)
		x->at = v;
	return rc;
}

int evs__stream_head_txn(evs_store *s, MDB_txn *txn, const char *stream, size_t len,
			 uint64_t *version, uint64_t *position)
{
	evs__sxtail t;
	MDB_cursor *c;
	int rc;

	*version = *position = 0;
	rc = heads_get(s, txn, stream, len, &t);
	if (rc == 0) {
		*version = t.v0 + t.n - 1;
		*position = t.pos[t.n - 1];
		return 0;
	}
	if (rc != MDB_NOTFOUND)
		return rc;
	if ((rc = mdb_cursor_open(txn, s->streams, &c)) != 0)
		return rc;
	rc = history_last(c, stream, len, version, position);
	mdb_cursor_close(c);
	if (rc == 0 && *version == 0)
		rc = MDB_NOTFOUND;
	return rc;
}
