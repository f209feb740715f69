/*
 * checkpoint.c - durable named checkpoints in the "checkpoints"
 * sub-database (contract C4 of issue 11).
 *
 * A checkpoint is a name and a u64, most often the global position up to
 * which a follower outside the store (a relay sink) has finished its work.
 * It lives in the store's own environment so that it is exactly as durable
 * as an append: evs_checkpoint_set() returns once its write transaction is
 * committed the way the store's sync mode commits appends, through the
 * store's one write-transaction helper (txn.c: evs__write_txn), which also
 * grows the map when needed.
 *
 * Format (sub-database "checkpoints", format version 1 of the store):
 *
 *   key   = the name's bytes: 1..EVS_MAX_NAME bytes of UTF-8, no NUL,
 *           no terminator (so names sort as bytes and a prefix is a range)
 *   value = 8 bytes, the u64 big-endian
 *
 * A value of any other length is reported as corruption. A store opened
 * read-only whose environment has no such sub-database (written by an
 * older library) has no checkpoints: get answers EVS_NOT_FOUND and list
 * calls nothing.
 */
#include <string.h>

#include "internal.h"

static int check_name(evs_store *s, const char *name, size_t *len)
{
	int v = evs__check_name(name, len);

	if (v == 0)
		return evs__fail(s, EVS_INVALID, "checkpoint name is empty");
	if (v == -1)
		return evs__fail(s, EVS_INVALID, "checkpoint name is longer than %d bytes",
				 EVS_MAX_NAME);
	if (v == -2)
		return evs__fail(s, EVS_INVALID, "checkpoint name is not valid UTF-8");
	return EVS_OK;
}

int evs_checkpoint_get(evs_store *s, const char *name, uint64_t *position)
{
	MDB_txn *txn;
	MDB_val k, v;
	size_t len;
	int rc;

	if (s == NULL || position == NULL)
		return EVS_INVALID;
	*position = 0;
	if ((rc = check_name(s, name, &len)) != EVS_OK)
		return rc;
	if (s->checkpoints == 0)
		return EVS_NOT_FOUND;
	if ((rc = evs__read_begin(s, &txn)) != EVS_OK)
		return rc;
	k.mv_size = len;
	k.mv_data = (void *)name;
	rc = mdb_get(txn, s->checkpoints, &k, &v);
	if (rc == 0 && v.mv_size != 8) {
		evs__read_end(s, txn);
		return evs__fail(s, EVS_CORRUPT, "checkpoint \"%s\" has a malformed value", name);
	}
	if (rc == 0)
		*position = evs__get_u64(v.mv_data);
	evs__read_end(s, txn);
	if (rc == MDB_NOTFOUND)
		return EVS_NOT_FOUND;
	return rc ? evs__fail_mdb(s, rc, "could not read checkpoint") : EVS_OK;
}

struct put_args {
	MDB_val k;
	uint8_t val[8];
	bool del;
	bool found;
};

static int put_fn(evs_store *s, MDB_txn *txn, void *arg, bool *commit)
{
	struct put_args *a = arg;
	MDB_val v = {8, a->val};
	int rc;

	if (a->del) {
		rc = mdb_del(txn, s->checkpoints, &a->k, NULL);
		a->found = rc == 0;
		if (rc == MDB_NOTFOUND)
			return 0; /* nothing to commit */
	} else {
		rc = mdb_put(txn, s->checkpoints, &a->k, &v, 0);
	}
	*commit = rc == 0;
	return rc;
}

static int write_one(evs_store *s, const char *name, uint64_t position, bool del)
{
	struct put_args a = {0};
	size_t len;
	int rc;

	if (s == NULL)
		return EVS_INVALID;
	if ((rc = check_name(s, name, &len)) != EVS_OK)
		return rc;
	if (s->opts.read_only)
		return evs__fail(s, EVS_READONLY, "store \"%s\" is open read-only", s->path);
	if (s->checkpoints == 0)
		return evs__fail(s, EVS_INVALID, "store \"%s\" has no checkpoints sub-database",
				 s->path);
	a.k.mv_size = len;
	a.k.mv_data = (void *)name;
	a.del = del;
	evs__put_u64(a.val, position);
	rc = evs__write_txn(s, put_fn, &a,
			    del ? "could not delete checkpoint" : "could not store checkpoint");
	if (rc == EVS_OK && del && !a.found)
		return EVS_NOT_FOUND;
	return rc;
}

int evs_checkpoint_set(evs_store *s, const char *name, uint64_t position)
{
	return write_one(s, name, position, false);
}

int evs_checkpoint_delete(evs_store *s, const char *name)
{
	return write_one(s, name, 0, true);
}

int evs_checkpoint_list(evs_store *s, const char *prefix,
			int (*fn)(void *ctx, evs_str name, uint64_t position), void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	size_t plen = 0;
	int rc, mrc, stop = 0;

	if (s == NULL || fn == NULL)
		return EVS_INVALID;
	if (prefix && prefix[0] && (rc = check_name(s, prefix, &plen)) != EVS_OK)
		return rc;
	if (s->checkpoints == 0)
		return EVS_OK;
	if ((rc = evs__read_begin(s, &txn)) != EVS_OK)
		return rc;
	if ((mrc = mdb_cursor_open(txn, s->checkpoints, &c)) != 0) {
		evs__read_end(s, txn);
		return evs__fail_mdb(s, mrc, "could not read checkpoints");
	}
	k.mv_size = plen;
	k.mv_data = (void *)prefix;
	mrc = plen ? mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)
		   : mdb_cursor_get(c, &k, &v, MDB_FIRST);
	rc = EVS_OK;
	while (mrc == 0) {
		if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
			break;
		if (v.mv_size != 8) {
			rc = evs__fail(s, EVS_CORRUPT, "a checkpoint has a malformed value");
			break;
		}
		evs_str name = {k.mv_data, k.mv_size};
		if ((stop = fn(ctx, name, evs__get_u64(v.mv_data))) != 0)
			break;
		mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	evs__read_end(s, txn);
	if (rc != EVS_OK)
		return rc;
	if (stop)
		return stop;
	return mrc && mrc != MDB_NOTFOUND ? evs__fail_mdb(s, mrc, "could not read checkpoints")
					  : EVS_OK;
}
