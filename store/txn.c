/*
 * txn.c - transactions and map growth.
 *
 * The map grows by itself: a write that meets MDB_MAP_FULL is undone, the
 * map is enlarged and the write is redone, so MDB_MAP_FULL never reaches a
 * caller. LMDB lets a process resize only while it has no transaction open,
 * so every transaction holds map_lock shared and growth takes it exclusively
 * (waiting at most EVS_GROW_WAIT_MS for open iterators). A process that sees
 * another process's growth (MDB_MAP_RESIZED) adopts it the same way.
 * The durable write helpers evs__write_txn and evs__write_commit are in
 * jcommit.c, beside the journal they commit through.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/*
 * map_lock prefers writers, or a steady flow of short readers would starve
 * growth. A thread that already holds it shared (an iterator open while it
 * asks for a head) does not take it again: behind a waiting writer that
 * second request would wait for the writer, which waits for the first. The
 * lock is the environment's, so this is counted per core: an iterator on
 * one handle counts for every handle on the same store.
 */
static _Thread_local struct {
	const evs__core *c;
	unsigned n;
} tl_hold;

bool evs__thread_reads(const evs_store *s)
{
	return tl_hold.c == s->core && tl_hold.n > 0;
}

static void map_rdlock(evs_store *s)
{
	evs__core *c = s->core;

	if (tl_hold.c == c && tl_hold.n > 0) {
		tl_hold.n++;
		return;
	}
	pthread_rwlock_rdlock(&c->map_lock);
	if (tl_hold.n == 0) {
		tl_hold.c = c;
		tl_hold.n = 1;
	}
}

static void map_unlock(evs_store *s)
{
	evs__core *c = s->core;

	if (tl_hold.c == c && tl_hold.n > 0) {
		if (--tl_hold.n > 0)
			return;
		tl_hold.c = NULL;
	}
	pthread_rwlock_unlock(&c->map_lock);
}

/* Set the map to size (0 with adopt: take the size another process set;
 * 0 without: grow by the usual step). */
static int map_resize(evs_store *s, size_t size, bool adopt)
{
	evs__core *c = s->core;
	struct timespec deadline;
	MDB_envinfo info;
	int rc;

	if (tl_hold.c == c && tl_hold.n > 0)
		return evs__fail(s, EVS_BUSY,
				 "could not grow the map of \"%s\": this thread holds a read "
				 "transaction (an open iterator) while appending",
				 s->path);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += EVS_GROW_WAIT_MS / 1000;
	rc = pthread_rwlock_timedwrlock(&c->map_lock, &deadline);
	if (rc == ETIMEDOUT)
		return evs__fail(s, EVS_BUSY,
				 "could not grow the map of \"%s\": a read transaction of this "
				 "process stayed open for %d ms (close iterators before appending)",
				 s->path, EVS_GROW_WAIT_MS);
	if (rc)
		return evs__fail(s, EVS_IO, "could not lock the map: %s", strerror(rc));
	mdb_env_info(c->env, &info);
	if (adopt) {
		rc = mdb_env_set_mapsize(c->env, 0);
	} else {
		if (size == 0) {
			size = info.me_mapsize;
			size += size < ((size_t)4 << 30) ? size : ((size_t)4 << 30);
		}
		rc = 0;
		if (size > info.me_mapsize) /* another thread may have grown it */
			rc = mdb_env_set_mapsize(c->env, size);
		if (!rc && size > info.me_mapsize)
			evs__log(s, EVS_LOG_INFO, "grew map of \"%s\" to %zu bytes", s->path, size);
	}
	pthread_rwlock_unlock(&c->map_lock);
	return rc ? evs__fail_mdb(s, rc, "could not grow the map") : EVS_OK;
}

int evs__grow(evs_store *s, bool adopt)
{
	return map_resize(s, 0, adopt);
}

int evs__map_at_least(evs_store *s, size_t size)
{
	MDB_envinfo info;

	/* under the map lock: another handle may be remapping right now,
	 * and mdb_env_info reads the meta pages through the map */
	map_rdlock(s);
	mdb_env_info(s->env, &info);
	map_unlock(s);
	return size > info.me_mapsize ? map_resize(s, size, false) : EVS_OK;
}

static int txn_begin(evs_store *s, unsigned flags, MDB_txn **txn)
{
	for (;;) {
		map_rdlock(s);
		int rc = mdb_txn_begin(s->env, NULL, flags, txn);
		if (rc == 0)
			return EVS_OK;
		map_unlock(s);
		if (rc != MDB_MAP_RESIZED)
			return evs__fail_mdb(s, rc, "could not begin transaction");
		if ((rc = evs__grow(s, true)) != EVS_OK)
			return rc;
	}
}

int evs__read_begin(evs_store *s, MDB_txn **txn)
{
	return txn_begin(s, MDB_RDONLY, txn);
}

int evs__write_begin(evs_store *s, MDB_txn **txn)
{
	if (s->opts.read_only)
		return evs__fail(s, EVS_READONLY, "store \"%s\" is open read-only", s->path);
	return txn_begin(s, 0, txn);
}

void evs__read_end(evs_store *s, MDB_txn *txn)
{
	if (txn == NULL)
		return;
	mdb_txn_abort(txn);
	map_unlock(s);
}

int evs__txn_commit_raw(evs_store *s, MDB_txn *txn)
{
	int rc = mdb_txn_commit(txn);

	map_unlock(s);
	return rc;
}

char evs_category_separator(evs_store *s)
{
	return s->core->catsep;
}

int evs_head(evs_store *s, evs_store_info *h)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	MDB_envinfo info;
	MDB_stat st;
	int rc;

	if (s == NULL || h == NULL)
		return EVS_INVALID;
	memset(h, 0, sizeof *h);
	if ((rc = evs__read_begin(s, &txn)) != EVS_OK)
		return rc;
	rc = mdb_cursor_open(txn, s->time, &c);
	if (!rc) {
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		if (rc == 0 && k.mv_size == 8 && v.mv_size == 8) {
			h->last_recorded_at = (int64_t)evs__get_u64(k.mv_data);
			h->last_position = evs__get_u64(v.mv_data);
		} else if (rc == 0) {
			rc = MDB_CORRUPTED;
		} else if (rc == MDB_NOTFOUND) {
			rc = 0;
		}
		mdb_cursor_close(c);
	}
	k.mv_size = strlen(EVS__META_STREAMS);
	k.mv_data = EVS__META_STREAMS;
	if (!rc && mdb_get(txn, s->meta, &k, &v) == 0 && v.mv_size == 8)
		h->streams = evs__get_u64(v.mv_data);
	mdb_env_info(s->env, &info);
	mdb_env_stat(s->env, &st);
	h->map_size = info.me_mapsize;
	h->used_bytes = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
	evs__read_end(s, txn);
	return rc ? evs__fail_mdb(s, rc, "could not read store head") : EVS_OK;
}
