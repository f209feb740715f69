/*
 * index.h - the event indexes of format 3 (index.c): type, category, tag
 * and correlation id -> positions, written in the same write transaction
 * as the events. Internal to libevstore. Layout at the top of index.c.
 */
#ifndef EVS_INDEX_H
#define EVS_INDEX_H

#include "internal.h"

enum { EVS__IX_TYPE = 't', EVS__IX_CATEGORY = 'c', EVS__IX_TAG = 'g', EVS__IX_CORRELATION = 'r' };

/* Longest key: kind, a 255-byte name, 0x00, u64. */
#define EVS__IX_KEY_MAX (1 + EVS_MAX_NAME + 1 + 8)

/* First position > after whose event has index key (kind, name), in txn;
 * EVS_OK with *pos, or EVS_NOT_FOUND, or a failure (message set). */
int evs__ix_next(evs_store *s, MDB_txn *txn, int kind, const void *name, size_t len, uint64_t after,
		 uint64_t *pos);
/* Last position < before whose event has index key (kind, name); the
 * same outcomes (before = UINT64_MAX: the last one). */
int evs__ix_prev(evs_store *s, MDB_txn *txn, int kind, const void *name, size_t len,
		 uint64_t before, uint64_t *pos);

/* The same through a cursor on s->index (readers reuse one per key):
 * 0 with *pos, MDB_NOTFOUND, or an LMDB code. */
int evs__ix_cursor_next(MDB_cursor *c, int kind, const void *name, size_t len, uint64_t after,
			uint64_t *pos);
int evs__ix_cursor_prev(MDB_cursor *c, int kind, const void *name, size_t len, uint64_t before,
			uint64_t *pos);

/* The category of a stream id: its bytes up to the store's separator (the
 * whole id when there is none). Returns the category's length. */
size_t evs__ix_category(const evs_store *s, const char *stream, size_t len);

/* Write the index entries of the event at pos, given as a decoded view
 * (replay) or as its record tail (group commit, restore): 0 or an LMDB
 * code (MDB_CORRUPTED for a tail that does not decode). */
int evs__ix_add(evs_store *s, MDB_txn *txn, uint64_t pos, const evs_event *ev);
int evs__ix_add_tail(evs_store *s, MDB_txn *txn, uint64_t pos, const void *tail, size_t len);

/* The index writes of a group commit through one cursor per kind, so that
 * each stays on its name's last leaf: LMDB's mdb_cursor_set skips the
 * search from the root when a key falls on the cursor's page (or after
 * the last key of the tree). Cursors open on first use; close with
 * evs__ixw_close before the transaction ends. */
typedef struct evs__ixw {
	const evs_store *s;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *c[4];
	uint64_t pos;
} evs__ixw;

void evs__ixw_init(evs__ixw *w, evs_store *s, MDB_txn *txn);
int evs__ixw_add_tail(evs__ixw *w, uint64_t pos, const void *tail, size_t len);
void evs__ixw_close(evs__ixw *w);

/* Calls fn for every index key of ev (kind, name), in a fixed order;
 * stops at and returns fn's first non-zero result (verify.c). */
int evs__ix_each_key(const evs_store *s, const evs_event *ev,
		     int (*fn)(void *ctx, int kind, const void *name, size_t len), void *ctx);

/* Split an index key: kind, name view, position; false if malformed. */
bool evs__ix_split(const MDB_val *k, int *kind, const uint8_t **name, size_t *len, uint64_t *pos);

/* Build the indexes of a store of an older format (every writable open
 * runs it; a format 3 store returns at once): in transactions of bounded
 * size, each recording how far it got, so an interrupted build resumes;
 * the last one sets the format to 3. EVS_ code. */
int evs__ix_upgrade(evs_store *s);

/* ---- ixplan.c: walking the indexes for a filter or a query ------------ */

typedef struct evs__plan evs__plan;

/* A plan for the indexed parts of f (types, categories, tags,
 * correlation), or *out NULL when f has none (read by a scan). The plan
 * points at f's names. 0 or ENOMEM. */
int evs__plan_filter(const evs__filter *f, evs__plan **out);
/* A plan for q, or *out NULL when q matches every event. 0 or ENOMEM. */
int evs__plan_query(const evs__query *q, evs__plan **out);
/* Open the plan's cursors in txn (closing any of an earlier one). */
int evs__plan_bind(evs__plan *p, MDB_txn *txn, MDB_dbi index);
void evs__plan_unbind(evs__plan *p);
/* The first matching position > after / the last < before: 0 with *pos,
 * MDB_NOTFOUND, or an LMDB code. Bound plans only. */
int evs__plan_next(evs__plan *p, uint64_t after, uint64_t *pos);
int evs__plan_prev(evs__plan *p, uint64_t before, uint64_t *pos);
void evs__plan_free(evs__plan *p);

#endif /* EVS_INDEX_H */
