/*
 * index.c - the event indexes (store format 3): which positions hold the
 * events of a type, of a category, with a tag, of a correlation id.
 *
 * One sub-database "index", plain keys, empty values:
 *
 *   key = kind (1 byte) | name | 0x00 | position (u64 big-endian)
 *
 *   kind 't'  type        name = the event type (1..255 bytes)
 *        'c'  category    name = the stream id up to the store's category
 *                         separator (meta "category_separator", default
 *                         '-'), the whole id when it has none
 *        'g'  tag         name = one tag (1..255 bytes); one key per tag
 *        'r'  correlation name = the 16-byte correlation id; only events
 *                         that carry one (not all zero)
 *
 * Names other than correlation ids hold no NUL, so kind | name | 0x00 is a
 * prefix no other name shares and a name's keys are one contiguous range
 * in position order: "the first event of type T after P" is one
 * MDB_SET_RANGE. Positions only grow, so each commit's entries go to the
 * end of each name's range: the pages a commit dirties are the last leaf
 * of every name it touches (and their branch pages), the same pages the
 * commit before it dirtied. Correlation ids are random, so each new one
 * lands on its own leaf; an event without one writes nothing there.
 *
 * The entries are written in the write transaction that writes the events
 * (group.c for appends, jopen.c for replay, restore.c), through
 * evs__ix_add*, so request i's entries are visible to request i+1's checks.
 *
 * Upgrade from format 2 (or 1): every writable open runs evs__ix_upgrade;
 * a store below format 3 gets its entries built in transactions of at
 * most BUILD_BATCH events, each writing meta "index_built" (u64: the
 * events 1..N are indexed) with its entries; the last one deletes it and
 * writes format 3. Entries are plain puts, idempotent, so an interrupted
 * build resumes where its last commit stopped, and appends by this
 * library meanwhile (which index themselves) are harmless.
 */
#include <stdlib.h>
#include <string.h>

#include "index.h"

#define BUILD_BATCH 10000

static size_t ix_key(uint8_t *out, int kind, const void *name, size_t len, uint64_t pos)
{
	out[0] = (uint8_t)kind;
	memcpy(out + 1, name, len);
	out[1 + len] = 0;
	evs__put_u64(out + 2 + len, pos);
	return len + 10;
}

bool evs__ix_split(const MDB_val *k, int *kind, const uint8_t **name, size_t *len, uint64_t *pos)
{
	const uint8_t *p = k->mv_data;

	if (k->mv_size < 11 || k->mv_size > EVS__IX_KEY_MAX || p[k->mv_size - 9] != 0)
		return false;
	*kind = p[0];
	*name = p + 1;
	*len = k->mv_size - 10;
	*pos = evs__get_u64(p + k->mv_size - 8);
	return true;
}

/* Is k an entry of (kind, name)? Then its position. */
static bool ix_match(const MDB_val *k, int kind, const void *name, size_t len, uint64_t *pos)
{
	const uint8_t *p = k->mv_data;

	if (k->mv_size != len + 10 || p[0] != (uint8_t)kind || p[1 + len] != 0 ||
	    memcmp(p + 1, name, len) != 0)
		return false;
	*pos = evs__get_u64(p + 2 + len);
	return true;
}

/*
 * A reader asks for the key after (or before) the one its cursor stands
 * on, nearly always: one step of the cursor answers it, where a search
 * from the root would compare the whole key on every level. The step
 * answers only when the cursor stands on an entry of the same name at or
 * before `after` (at or after `before`); the name's entries lie together
 * in key order, so a step that leaves them means there is none.
 * 1: answered (rc in *rc); 0: search.
 */
static int ix_step(MDB_cursor *c, int kind, const void *name, size_t len, uint64_t at, bool fwd,
		   uint64_t *pos, int *rc)
{
	MDB_val k, v;
	uint64_t cur;

	if (mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT) != 0 ||
	    !ix_match(&k, kind, name, len, &cur) || (fwd ? cur > at : cur < at))
		return 0;
	*rc = mdb_cursor_get(c, &k, &v, fwd ? MDB_NEXT : MDB_PREV);
	if (*rc == MDB_NOTFOUND)
		return 1;
	if (*rc != 0)
		return 0;
	if (!ix_match(&k, kind, name, len, pos)) {
		*rc = MDB_NOTFOUND;
		return 1;
	}
	/* stepped from before `at` to still not past it: search */
	return fwd ? *pos > at : *pos < at;
}

int evs__ix_cursor_next(MDB_cursor *c, int kind, const void *name, size_t len, uint64_t after,
			uint64_t *pos)
{
	uint8_t key[EVS__IX_KEY_MAX];
	MDB_val k, v;
	int rc;

	if (after == UINT64_MAX || len == 0 || len > EVS_MAX_NAME)
		return MDB_NOTFOUND;
	if (ix_step(c, kind, name, len, after, true, pos, &rc))
		return rc;
	k.mv_size = ix_key(key, kind, name, len, after + 1);
	k.mv_data = key;
	if ((rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)) != 0)
		return rc;
	return ix_match(&k, kind, name, len, pos) ? 0 : MDB_NOTFOUND;
}

int evs__ix_cursor_prev(MDB_cursor *c, int kind, const void *name, size_t len, uint64_t before,
			uint64_t *pos)
{
	uint8_t key[EVS__IX_KEY_MAX];
	MDB_val k, v;
	int rc;

	if (before == 0 || len == 0 || len > EVS_MAX_NAME)
		return MDB_NOTFOUND;
	if (ix_step(c, kind, name, len, before, false, pos, &rc))
		return rc;
	k.mv_size = ix_key(key, kind, name, len, before);
	k.mv_data = key;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	else if (rc == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
	if (rc)
		return rc;
	/* SET_RANGE found a key >= (name, before): the one before it is the
	 * last < before; with no such key, the last key of all is */
	return ix_match(&k, kind, name, len, pos) && *pos < before ? 0 : MDB_NOTFOUND;
}

static int ix_find(evs_store *s, MDB_txn *txn, int kind, const void *name, size_t len, uint64_t at,
		   uint64_t *pos, bool forward)
{
	MDB_cursor *c;
	int rc;

	*pos = 0;
	if ((rc = mdb_cursor_open(txn, s->index, &c)) != 0)
		return evs__fail_mdb(s, rc, "could not open the event index");
	rc = forward ? evs__ix_cursor_next(c, kind, name, len, at, pos)
		     : evs__ix_cursor_prev(c, kind, name, len, at, pos);
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND) {
		*pos = 0;
		return EVS_NOT_FOUND;
	}
	return rc ? evs__fail_mdb(s, rc, "could not read the event index") : EVS_OK;
}

int evs__ix_next(evs_store *s, MDB_txn *txn, int kind, const void *name, size_t len, uint64_t after,
		 uint64_t *pos)
{
	return ix_find(s, txn, kind, name, len, after, pos, true);
}

int evs__ix_prev(evs_store *s, MDB_txn *txn, int kind, const void *name, size_t len,
		 uint64_t before, uint64_t *pos)
{
	return ix_find(s, txn, kind, name, len, before, pos, false);
}

size_t evs__ix_category(const evs_store *s, const char *stream, size_t len)
{
	const char *sep = memchr(stream, s->core->catsep, len);

	return sep ? (size_t)(sep - stream) : len;
}

int evs__ix_each_key(const evs_store *s, const evs_event *ev,
		     int (*fn)(void *ctx, int kind, const void *name, size_t len), void *ctx)
{
	size_t clen = evs__ix_category(s, ev->stream.ptr, ev->stream.len);
	int rc;

	if ((rc = fn(ctx, EVS__IX_TYPE, ev->type.ptr, ev->type.len)) != 0)
		return rc;
	/* a stream starting with the separator has an empty category: none */
	if (clen && (rc = fn(ctx, EVS__IX_CATEGORY, ev->stream.ptr, clen)) != 0)
		return rc;
	for (size_t i = 0; i < ev->ntags; i++)
		if ((rc = fn(ctx, EVS__IX_TAG, ev->tags[i].ptr, ev->tags[i].len)) != 0)
			return rc;
	if (!evs__is_zero16(ev->correlation_id) &&
	    (rc = fn(ctx, EVS__IX_CORRELATION, ev->correlation_id, 16)) != 0)
		return rc;
	return 0;
}

typedef struct put_ctx {
	MDB_txn *txn;
	MDB_dbi dbi;
	uint64_t pos;
} put_ctx;

static int put_key(void *ctx, int kind, const void *name, size_t len)
{
	put_ctx *p = ctx;
	uint8_t key[EVS__IX_KEY_MAX];
	MDB_val k = {ix_key(key, kind, name, len, p->pos), key}, v = {0, key};

	return mdb_put(p->txn, p->dbi, &k, &v, 0);
}

int evs__ix_add(evs_store *s, MDB_txn *txn, uint64_t pos, const evs_event *ev)
{
	put_ctx p = {txn, s->index, pos};

	return evs__ix_each_key(s, ev, put_key, &p);
}

int evs__ix_add_tail(evs_store *s, MDB_txn *txn, uint64_t pos, const void *tail, size_t len)
{
	evs_str tags[EVS_MAX_TAGS];
	evs_event ev;

	if (!evs__record_decode_tail(tail, len, &ev, tags))
		return MDB_CORRUPTED;
	return evs__ix_add(s, txn, pos, &ev);
}

void evs__ixw_init(evs__ixw *w, evs_store *s, MDB_txn *txn)
{
	memset(w, 0, sizeof *w);
	w->s = s;
	w->txn = txn;
	w->dbi = s->index;
}

static int put_key_cursor(void *ctx, int kind, const void *name, size_t len)
{
	evs__ixw *w = ctx;
	int slot = kind == EVS__IX_TYPE       ? 0
		   : kind == EVS__IX_CATEGORY ? 1
		   : kind == EVS__IX_TAG      ? 2
					      : 3;
	uint8_t key[EVS__IX_KEY_MAX];
	MDB_val k = {ix_key(key, kind, name, len, w->pos), key}, v = {0, key};
	int rc;

	if (w->c[slot] == NULL && (rc = mdb_cursor_open(w->txn, w->dbi, &w->c[slot])) != 0) {
		w->c[slot] = NULL;
		return rc;
	}
	return mdb_cursor_put(w->c[slot], &k, &v, 0);
}

int evs__ixw_add_tail(evs__ixw *w, uint64_t pos, const void *tail, size_t len)
{
	evs_str tags[EVS_MAX_TAGS];
	evs_event ev;

	if (!evs__record_decode_tail(tail, len, &ev, tags))
		return MDB_CORRUPTED;
	w->pos = pos;
	return evs__ix_each_key(w->s, &ev, put_key_cursor, w);
}

void evs__ixw_close(evs__ixw *w)
{
	for (int i = 0; i < 4; i++)
		if (w->c[i])
			mdb_cursor_close(w->c[i]);
	memset(w->c, 0, sizeof w->c);
}

/* ---- upgrade ----------------------------------------------------------- */

static int meta_u32(evs_store *s, MDB_txn *txn, const char *key, uint32_t *out)
{
	MDB_val k = {strlen(key), (void *)key}, v;
	int rc = mdb_get(txn, s->meta, &k, &v);

	*out = 0;
	if (rc == 0 && v.mv_size == 4)
		*out = evs__get_u32(v.mv_data);
	else if (rc == 0)
		rc = MDB_CORRUPTED;
	return rc;
}

typedef struct build {
	size_t batch;
	bool done;
	uint64_t built, last;
} build;

static int build_fn(evs_store *s, MDB_txn *txn, void *arg, bool *commit)
{
	build *b = arg;
	MDB_val pk = {strlen(EVS__META_INDEX_BUILT), EVS__META_INDEX_BUILT}, pv;
	MDB_val fk = {strlen(EVS__META_FORMAT), EVS__META_FORMAT}, fv;
	MDB_val sk = {strlen(EVS__META_CATSEP), EVS__META_CATSEP}, sv;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	uint8_t buf[8], fmt[4];
	uint32_t format;
	uint64_t from = 0, pos = 0;
	size_t n = 0;
	int rc;

	if ((rc = meta_u32(s, txn, EVS__META_FORMAT, &format)) != 0)
		return rc;
	if (format >= EVS_FORMAT_VERSION) {
		b->done = true;
		return 0;
	}
	if ((rc = mdb_get(txn, s->meta, &pk, &pv)) == 0 && pv.mv_size == 8)
		from = evs__get_u64(pv.mv_data);
	else if (rc && rc != MDB_NOTFOUND)
		return rc;
	if ((rc = mdb_get(txn, s->meta, &sk, &sv)) == MDB_NOTFOUND) {
		sv.mv_size = 1;
		sv.mv_data = &s->core->catsep;
		if ((rc = mdb_put(txn, s->meta, &sk, &sv, 0)) != 0)
			return rc;
	} else if (rc) {
		return rc;
	}
	if ((rc = mdb_cursor_open(txn, s->events, &c)) != 0)
		return rc;
	evs__put_u64(buf, from + 1);
	k.mv_size = 8;
	k.mv_data = buf;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && n < b->batch;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT), n++) {
		evs_str tags[EVS_MAX_TAGS];
		evs_event ev;

		pos = k.mv_size == 8 ? evs__get_u64(k.mv_data) : 0;
		if (pos == 0 || !evs__record_decode(v.mv_data, v.mv_size, pos, &ev, tags)) {
			rc = MDB_CORRUPTED;
			break;
		}
		if ((rc = evs__ix_add(s, txn, pos, &ev)) != 0)
			break;
		b->built = pos;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	*commit = true;
	if (rc == MDB_NOTFOUND) { /* every event is indexed */
		evs__put_u32(fmt, EVS_FORMAT_VERSION);
		fv.mv_size = 4;
		fv.mv_data = fmt;
		if ((rc = mdb_put(txn, s->meta, &fk, &fv, 0)) != 0)
			return rc;
		rc = mdb_del(txn, s->meta, &pk, NULL);
		b->done = true;
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	evs__put_u64(buf, pos);
	pv.mv_size = 8;
	pv.mv_data = buf;
	return mdb_put(txn, s->meta, &pk, &pv, 0);
}

int evs__ix_upgrade(evs_store *s)
{
	const char *e = getenv("EVS_INDEX_BUILD_BATCH");
	build b = {.batch = BUILD_BATCH};
	long stop = -1; /* tests: stop after this many transactions */
	int rc;

	if (e && *e && atol(e) > 0)
		b.batch = (size_t)atol(e);
	if ((e = getenv("EVS_TEST_INDEX_BUILD_STOP")) && *e)
		stop = atol(e);
	for (long i = 0; !b.done; i++) {
		if (i == stop)
			return evs__fail(s, EVS_IO,
					 "index build stopped (EVS_TEST_INDEX_BUILD_STOP)");
		if ((rc = evs__write_txn(s, build_fn, &b, "could not build the event indexes")) !=
		    EVS_OK)
			return rc;
		if (!b.done && b.built)
			evs__log(s, EVS_LOG_INFO,
				 "store \"%s\": indexed events up to position %llu", s->path,
				 (unsigned long long)b.built);
	}
	return EVS_OK;
}
