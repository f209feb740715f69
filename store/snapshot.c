/*
 * snapshot.c - aggregate snapshots in the "snapshots" sub-database.
 *
 *   key    stream id (1..255 bytes) | 0x00 | version u64 BE
 *   value  offset  size  field
 *          0       4     format     u32 BE: the definition's snapshot_version
 *          4       8     position   u64 BE: global position of the stream's
 *                                   event at `version`
 *          12      1     name_len   u8, 1..255
 *          13      L     name       the definition's name (UTF-8)
 *          13+L    ...   state      snapshot_encode's bytes (opaque here;
 *                                   for "evs.merge-patch", one msgpack map)
 *
 * Stream ids hold no NUL byte, so "stream | 0x00" is a prefix no other
 * stream's keys share, and a stream's snapshots sort by version. Keys of
 * different streams never interleave.
 *
 * A snapshot is usable by a definition when its name and format equal the
 * definition's, the stream index still has (version, position) for the
 * stream (a guard against snapshots left over from another history of the
 * same directory), and the definition's decoder accepts the state. Anything
 * else is skipped and may be pruned; a load that finds nothing usable
 * replays from version 1. So snapshots are never needed for correctness,
 * and writes of them are best effort: their own write transaction, durable
 * like appends, not part of any append's atomicity.
 *
 * Several definitions may snapshot the same stream (a domain aggregate and
 * the generic merge-patch one, say): same version, same key, last writer
 * wins, and the loser's next load falls back to an older snapshot or a
 * replay. Prune and clear delete in chunks of CHUNK keys per transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "agg_internal.h"

#define HEAD        13   /* format + position + name_len */
#define CHUNK       4096 /* deletions per write transaction */
#define MAX_SKIPPED 256  /* unusable snapshots a load steps over */

static void make_key(uint8_t *key, const char *stream, size_t slen, uint64_t version)
{
	memcpy(key, stream, slen);
	key[slen] = 0;
	evs__put_u64(key + slen + 1, version);
}

/* Does k belong to the stream prefix[0..plen) (or to any stream when plen
 * is 0)? */
static bool key_in(const MDB_val *k, const char *prefix, size_t plen)
{
	const uint8_t *p = k->mv_data;

	if (k->mv_size < 10)
		return false;
	if (plen == 0)
		return p[k->mv_size - 9] == 0;
	return k->mv_size == plen + 9 && memcmp(p, prefix, plen) == 0 && p[plen] == 0;
}

typedef struct snap_val {
	uint32_t format;
	uint64_t position;
	const char *name;
	size_t name_len;
	const uint8_t *state;
	size_t state_len;
} snap_val;

static bool parse_val(const MDB_val *v, snap_val *out)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size < HEAD + 1)
		return false;
	out->format = evs__get_u32(p);
	out->position = evs__get_u64(p + 4);
	out->name_len = p[12];
	if (out->name_len == 0 || v->mv_size < HEAD + out->name_len)
		return false;
	out->name = (const char *)p + HEAD;
	out->state = p + HEAD + out->name_len;
	out->state_len = v->mv_size - HEAD - out->name_len;
	return true;
}

/* Is (version, position) still an entry of the stream? The snapshot key
 * k has the stream index's key layout (stream_index.c). */
static int matches_stream(evs_store *s, MDB_txn *txn, const MDB_val *k, uint64_t position,
			  bool *match)
{
	uint64_t version, at = 0;
	size_t len;
	int rc;

	*match = false;
	if (!evs__sx_split(k, &len, &version))
		return 0;
	rc = evs__sx_get(s, txn, k->mv_data, len, version, &at);
	*match = rc == 0 && at == position;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int evs__snapshot_load(evs_aggregate *a, const char *stream, size_t slen, uint64_t max_version,
		       void *state, uint64_t *version, uint64_t *position)
{
	evs_store *s = a->s;
	uint8_t key[EVS_MAX_NAME + 9];
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	unsigned skipped = 0;
	int rc;

	*version = *position = 0;
	if (s->snapshots == 0)
		return EVS_OK;
	if ((rc = evs__read_begin(s, &txn)) != EVS_OK)
		goto fail_state;
	if ((rc = mdb_cursor_open(txn, s->snapshots, &c)) != 0)
		goto fail_mdb;
	make_key(key, stream, slen, max_version);
	k.mv_size = slen + 9;
	k.mv_data = key;
	/* the last key <= key */
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && !(k.mv_size == slen + 9 && memcmp(k.mv_data, key, slen + 9) == 0))
		rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	for (; rc == 0 && key_in(&k, stream, slen); rc = mdb_cursor_get(c, &k, &v, MDB_PREV)) {
		snap_val sv;
		bool match;

		if (++skipped > MAX_SKIPPED)
			break;
		if (!parse_val(&v, &sv) || sv.name_len != a->name_len ||
		    memcmp(sv.name, a->name, sv.name_len) != 0 ||
		    sv.format != a->def.snapshot_version)
			continue;
		if ((rc = matches_stream(s, txn, &k, sv.position, &match)) != 0)
			break;
		if (!match)
			continue;
		uint64_t ver = evs__get_u64((const uint8_t *)k.mv_data + slen + 1);
		int drc = a->def.snapshot_decode(a->def.ctx, state, sv.state, sv.state_len);
		if (drc == EVS_OK) {
			*version = ver;
			*position = sv.position;
			break;
		}
		evs__log(s, EVS_LOG_WARNING,
			 "aggregate \"%s\": ignoring the snapshot of stream "
			 "\"%s\" at version %llu: decode failed: %s",
			 a->name, stream, (unsigned long long)ver, evs_strerror(drc));
		evs__state_release(a, state);
		if ((rc = evs__state_init(a, state)) != EVS_OK) {
			mdb_cursor_close(c);
			evs__read_end(s, txn);
			return rc; /* nothing to release: init failed */
		}
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc)
		goto fail_mdb;
	evs__read_end(s, txn);
	return EVS_OK;

fail_mdb:
	evs__read_end(s, txn);
	rc = evs__fail_mdb(s, rc, "could not read snapshots");
fail_state:
	evs__state_release(a, state);
	*version = *position = 0;
	return rc;
}

/* ---- writing ------------------------------------------------------------ */

/* Put key/value in its own durable write transaction, growing the map as
 * needed. */
struct put_args {
	MDB_val *k, *v;
};

static int put_fn(evs_store *s, MDB_txn *txn, void *arg, bool *commit)
{
	struct put_args *a = arg;

	*commit = true;
	return mdb_put(txn, s->snapshots, a->k, a->v, 0);
}

static int put_durable(evs_store *s, MDB_val *k, MDB_val *v)
{
	struct put_args a = {k, v};

	return evs__write_txn(s, put_fn, &a, "could not store snapshot");
}

int evs__snapshot_store(evs_aggregate *a, const char *stream, size_t slen, uint64_t version,
			uint64_t position, const void *state)
{
	evs_store *s = a->s;
	struct evs_sink sink = {.buf.limit = HEAD + EVS_MAX_NAME + (size_t)EVS_MAX_SNAPSHOT};
	uint8_t head[HEAD], key[EVS_MAX_NAME + 9];
	int rc;

	if (s->opts.read_only)
		return evs__fail(s, EVS_READONLY, "store \"%s\" is open read-only", s->path);
	if (s->snapshots == 0)
		return evs__fail(s, EVS_INVALID, "store \"%s\" has no snapshots sub-database",
				 s->path);
	evs__put_u32(head, a->def.snapshot_version);
	evs__put_u64(head + 4, position);
	head[12] = (uint8_t)a->name_len;
	evs_sink_write(&sink, (const char *)head, HEAD);
	evs_sink_write(&sink, a->name, a->name_len);
	rc = a->def.snapshot_encode(a->def.ctx, state, &sink);
	if (sink.too_large)
		rc = evs__fail(s, EVS_INVALID,
			       "aggregate \"%s\": snapshot of stream \"%s\" exceeds "
			       "%u bytes",
			       a->name, stream, EVS_MAX_SNAPSHOT);
	else if (sink.buf.oom)
		rc = evs__fail(s, EVS_NOMEM, "out of memory");
	else if (rc != EVS_OK)
		rc = evs__fail(s, rc, "aggregate \"%s\": snapshot_encode failed: %s", a->name,
			       evs_strerror(rc));
	if (rc == EVS_OK) {
		MDB_val k = {slen + 9, key}, v = {sink.buf.len, sink.buf.ptr};
		make_key(key, stream, slen, version);
		rc = put_durable(s, &k, &v);
	}
	evs__buf_free(&sink.buf);
	return rc;
}

/* ---- deleting ----------------------------------------------------------- */

/* Decides, newest first per stream, whether a snapshot goes. */
typedef struct judge {
	evs_aggregate *a; /* NULL: every snapshot goes */
	uint64_t keep;
	uint8_t cur[EVS_MAX_NAME];
	size_t cur_len;
	uint64_t kept;
} judge;

static int judge_one(judge *j, MDB_txn *txn, const MDB_val *k, const MDB_val *v, bool *drop)
{
	evs_aggregate *a = j->a;
	snap_val sv;
	bool match;
	int rc;

	*drop = true;
	if (a == NULL)
		return 0;
	size_t slen = k->mv_size - 9;
	if (slen != j->cur_len || memcmp(j->cur, k->mv_data, slen) != 0) {
		memcpy(j->cur, k->mv_data, slen);
		j->cur_len = slen;
		j->kept = 0;
	}
	if (!parse_val(v, &sv))
		return 0; /* nobody's: not even a snapshot header */
	if (sv.name_len != a->name_len || memcmp(sv.name, a->name, sv.name_len) != 0) {
		*drop = false; /* another definition's */
		return 0;
	}
	if (sv.format != a->def.snapshot_version)
		return 0;
	if ((rc = matches_stream(a->s, txn, k, sv.position, &match)) != 0)
		return rc;
	if (match && j->kept < j->keep) {
		j->kept++;
		*drop = false;
	}
	return 0;
}

/*
 * Walk the snapshots of `stream` (every stream when slen is 0) from the
 * newest key backwards and delete what the judge drops, CHUNK keys per
 * transaction. After a chunk commits the walk resumes before the last key
 * it examined.
 */
static int walk_delete(evs_store *s, const char *stream, size_t slen, judge *j, uint64_t *removed)
{
	uint8_t resume[EVS_MAX_NAME + 9], (*dels)[EVS_MAX_NAME + 9] = NULL;
	size_t resume_len = 0, *del_lens = NULL, ndel = 0;
	bool started = false, done = false;
	int rc = EVS_OK;

	if (s->opts.read_only)
		return evs__fail(s, EVS_READONLY, "store \"%s\" is open read-only", s->path);
	if (s->snapshots == 0)
		return EVS_OK;
	dels = evs__malloc(CHUNK * sizeof *dels);
	del_lens = evs__malloc(CHUNK * sizeof *del_lens);
	if (dels == NULL || del_lens == NULL) {
		rc = evs__fail(s, EVS_NOMEM, "out of memory");
		goto out;
	}
	while (!done) {
		MDB_txn *txn;
		MDB_cursor *c;
		MDB_val k, v;
		judge saved = *j;
		uint8_t saved_resume[EVS_MAX_NAME + 9];
		size_t saved_len = resume_len;
		bool saved_started = started;
		int mrc;

		memcpy(saved_resume, resume, resume_len);

		if ((rc = evs__write_begin(s, &txn)) != EVS_OK)
			goto out;
		ndel = 0;
		if ((mrc = mdb_cursor_open(txn, s->snapshots, &c)) != 0)
			goto abort;
		if (!started) {
			if (slen) {
				make_key(resume, stream, slen, UINT64_MAX);
				k.mv_size = slen + 9;
				k.mv_data = resume;
				mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
				mrc = mrc == 0 ? mdb_cursor_get(c, &k, &v, MDB_PREV)
					       : mdb_cursor_get(c, &k, &v, MDB_LAST);
			} else {
				mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
			}
		} else {
			k.mv_size = resume_len;
			k.mv_data = resume;
			mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
			mrc = mrc == 0 ? mdb_cursor_get(c, &k, &v, MDB_PREV)
				       : mdb_cursor_get(c, &k, &v, MDB_LAST);
		}
		for (;;) {
			bool drop;

			if (mrc == MDB_NOTFOUND || (mrc == 0 && !key_in(&k, stream, slen))) {
				done = true;
				mrc = 0;
				break;
			}
			if (mrc)
				break;
			if ((mrc = judge_one(j, txn, &k, &v, &drop)) != 0)
				break;
			memcpy(resume, k.mv_data, k.mv_size);
			resume_len = k.mv_size;
			if (drop) {
				memcpy(dels[ndel], k.mv_data, k.mv_size);
				del_lens[ndel++] = k.mv_size;
				if (ndel == CHUNK)
					break;
			}
			mrc = mdb_cursor_get(c, &k, &v, MDB_PREV);
		}
		mdb_cursor_close(c);
		for (size_t i = 0; mrc == 0 && i < ndel; i++) {
			MDB_val dk = {del_lens[i], dels[i]};
			mrc = mdb_del(txn, s->snapshots, &dk, NULL);
		}
		if (mrc)
			goto abort;
		if (ndel == 0) {
			evs__read_end(s, txn);
		} else {
			mrc = evs__write_commit(s, txn);
			if (mrc)
				goto failed;
			if (removed)
				*removed += ndel;
		}
		started = true;
		continue;
	abort:
		evs__read_end(s, txn);
	failed:
		if (mrc == MDB_MAP_FULL) {
			if ((rc = evs__grow(s, false)) != EVS_OK)
				goto out;
			/* this chunk again, from where it started */
			*j = saved;
			memcpy(resume, saved_resume, saved_len);
			resume_len = saved_len;
			started = saved_started;
			done = false;
			continue;
		}
		rc = evs__fail_mdb(s, mrc, "could not delete snapshots");
		goto out;
	}
out:
	free(dels);
	free(del_lens);
	return rc;
}

int evs_snapshot_prune(evs_aggregate *a, const char *stream, uint64_t keep, uint64_t *removed)
{
	size_t slen = 0;
	judge j;

	if (removed)
		*removed = 0;
	if (a == NULL)
		return EVS_INVALID;
	if (stream && evs__check_name(stream, &slen) != 1)
		return evs__fail(a->s, EVS_BAD_STREAM, "invalid stream id");
	memset(&j, 0, sizeof j);
	j.a = a;
	j.keep = keep;
	return walk_delete(a->s, stream, slen, &j, removed);
}

int evs_snapshot_clear(evs_store *s, const char *stream, uint64_t *removed)
{
	size_t slen = 0;
	judge j;

	if (removed)
		*removed = 0;
	if (s == NULL)
		return EVS_INVALID;
	if (stream && evs__check_name(stream, &slen) != 1)
		return evs__fail(s, EVS_BAD_STREAM, "invalid stream id");
	memset(&j, 0, sizeof j);
	return walk_delete(s, stream, slen, &j, removed);
}
