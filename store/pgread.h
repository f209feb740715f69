/*
 * pgread.h - records by position straight from LMDB's pages, several
 * lookups in flight (pgread.c). Internal to libevstore.
 *
 * An index read or a stream read knows the positions it will hand out
 * next, scattered over the log. mdb_get finds each alone: a search from
 * the root whose every step waits for a cold cache line (and a TLB miss)
 * before it knows where to look next. Knowing the next positions, a
 * reader can ask for their lines early and have several on the way at
 * once; LMDB has no call for that, so this module walks the "events"
 * tree's pages itself, in three steps per position:
 *
 *   evs__pg_find      descend the branch pages (hot: the path of the last
 *                     lookup is kept, so a forward read mostly re-enters
 *                     the same lowest branch page) to the leaf, and
 *                     prefetch the leaf's header line;
 *   evs__pg_near      read the slot's pointer and prefetch its node;
 *   evs__pg_get       the record.
 *
 * Positions are 8-byte big-endian keys appended in order, so the slot of
 * a position in its leaf is its distance from the leaf's first key, which
 * the branch entry above the leaf holds. That guess is checked against the
 * key found; a miss searches the leaf.
 *
 * The layout read here is LMDB 0.9's on-disk format (MDB_page, MDB_node
 * and MDB_db in its mdb.c). evs__pg_open refuses any other LMDB version
 * and any tree it does not expect; every step checks what it reads (page
 * flags, offsets inside the page and the map, the key found) and answers
 * "ask mdb_get" rather than ever handing out a wrong or torn record. The
 * caller owns the read transaction and keeps it open while it uses the
 * view (the map's address cannot change under an open transaction here:
 * txn.c holds map_lock shared for it).
 */
#ifndef EVS_PGREAD_H
#define EVS_PGREAD_H

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#define EVS__PG_DEPTH 16 /* deeper trees are read by mdb_get */

typedef struct {
	const uint8_t *map; /* page 0 */
	uint64_t npages;    /* pages the map holds (a bound for every page read) */
	uint32_t psize;
	unsigned depth; /* levels: depth - 1 branch levels above the leaves */
	uint64_t root;
	/* the path of the last descent: per branch level, its page and the
	 * keys it covers, [lo, hi) (hi 0: no bound above) */
	unsigned npath;
	struct {
		const uint8_t *page;
		uint64_t lo, hi;
	} path[EVS__PG_DEPTH];
} evs__pgtree;

typedef struct {
	uint64_t pos;
	const uint8_t *leaf; /* NULL: not found by the walk (ask mdb_get) */
	uint64_t first;      /* the leaf's first key, 0: not known */
} evs__pgslot;

/* A view of tree `name` (keys 8-byte big-endian) in the read-only
 * transaction txn; main_db is the handle of LMDB's main tree, opened
 * once with the environment (mdb_dbi_open must not run in concurrent
 * transactions). false: not available (another LMDB version, another
 * page size, an unexpected tree): read with mdb_get. */
bool evs__pg_open(evs__pgtree *t, MDB_txn *txn, MDB_dbi main_db, const char *name);

/* Step 1: find the leaf of s->pos and prefetch its first line. */
void evs__pg_find(evs__pgtree *t, evs__pgslot *s);

/* Step 2 (optional, a few lookups ahead of step 3): prefetch the node. */
void evs__pg_near(const evs__pgtree *t, const evs__pgslot *s);

/* Step 3: the record at s->pos into *v; false: ask mdb_get (not found by
 * the walk, or something unexpected). */
bool evs__pg_get(const evs__pgtree *t, const evs__pgslot *s, MDB_val *v);

#endif
