/*
 * stream_index.c - the "streams" sub-database: (stream, version) -> position.
 *
 * Key:   stream id bytes | 0x00 | version u64 BE      (2..264 bytes)
 * Value: position u64 BE                               (8 bytes)
 *
 * Stream ids hold no NUL byte, so the 0x00 separator keeps every stream's
 * keys together and in version order, and sorts "a" before "a-b". A plain
 * B-tree rather than one DUPSORT sub-tree per stream: appending to many
 * long streams in one commit then copies one leaf per stream instead of a
 * sub-tree's leaf, its branch and the main tree's node (about half the
 * pages a commit of 64 streams writes).
 */
#include <string.h>

#include "internal.h"

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

int evs__sx_put(evs_store *s, MDB_txn *txn, const char *stream, size_t len, uint64_t version,
		uint64_t position)
{
	uint8_t key[EVS_MAX_NAME + 9], val[8];
	MDB_val k = {evs__sx_key(key, stream, len, version), key}, v = {8, val};
	int rc;

	evs__put_u64(val, position);
	rc = mdb_put(txn, s->streams, &k, &v, MDB_NOOVERWRITE);
	return rc == MDB_KEYEXIST ? MDB_CORRUPTED : rc;
}

int evs__sx_get(evs_store *s, MDB_txn *txn, const char *stream, size_t len, uint64_t version,
		uint64_t *position)
{
	uint8_t key[EVS_MAX_NAME + 9];
	MDB_val k = {evs__sx_key(key, stream, len, version), key}, v;
	int rc = mdb_get(txn, s->streams, &k, &v);

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

int evs__sx_step(MDB_cursor *c, const char *stream, size_t len, int dir, uint64_t *version,
		 uint64_t *position)
{
	MDB_val k, v;
	int rc = mdb_cursor_get(c, &k, &v, dir == EVS_FORWARD ? MDB_NEXT : MDB_PREV);

	return rc ? rc : entry(&k, &v, stream, len, version, position);
}

int evs__stream_head_txn(evs_store *s, MDB_txn *txn, const char *stream, size_t len,
			 uint64_t *version, uint64_t *position)
{
	MDB_cursor *c;
	int rc;

	*version = *position = 0;
	if ((rc = mdb_cursor_open(txn, s->streams, &c)) != 0)
		return rc;
	rc = evs__sx_seek(c, stream, len, UINT64_MAX, EVS_BACKWARD, version, position);
	mdb_cursor_close(c);
	if (rc)
		*version = *position = 0;
	return rc;
}
