/*
 * pgread.c - records by position straight from LMDB's pages (pgread.h).
 *
 * LMDB 0.9's layout, as its mdb.c defines it (little-endian, 64-bit):
 *   page:  pgno u64 | pad u16 | flags u16 | lower u16 | upper u16 |
 *          u16 offsets of the nodes from the page's start, in key order
 *   node:  lo u16 | hi u16 | flags u16 | ksize u16 | key | data
 *          branch: the child's page number is lo | hi << 16 | flags << 32,
 *          and node 0's key is empty (it covers everything below node 1);
 *          leaf: the data size is lo | hi << 16, and flag F_BIGDATA puts
 *          the data on overflow pages (the node holds their first pgno;
 *          the data starts after that page's header)
 *   MDB_db (a named tree's record in the main tree): flags u16 at 4,
 *          depth u16 at 6, root pgno u64 at 40; 48 bytes
 */
#include <string.h>

#include "pgread.h"

enum {
	HDR = 16,   /* page header */
	NODE = 8,   /* node header */
	KEY = 8,    /* a position */
	DB_LEN = 48 /* MDB_db */
};
enum { P_BRANCH = 0x01, P_LEAF = 0x02, P_OVERFLOW = 0x04, P_LEAF2 = 0x20, P_SUBP = 0x40 };
enum { F_BIGDATA = 0x01 };

static inline uint16_t u16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

static inline uint64_t u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

static inline uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static inline const uint8_t *page_at(const evs__pgtree *t, uint64_t pgno)
{
	return pgno < t->npages ? t->map + pgno * t->psize : NULL;
}

static inline unsigned page_kind(const uint8_t *pg)
{
	return u16(pg + 10) & (P_BRANCH | P_LEAF | P_OVERFLOW | P_LEAF2 | P_SUBP);
}

static inline unsigned nkeys(const evs__pgtree *t, const uint8_t *pg)
{
	unsigned lower = u16(pg + 12);

	return lower >= HDR && lower <= t->psize ? (lower - HDR) / 2 : 0;
}

/* Node i of pg, or NULL when its header would leave the page. */
static inline const uint8_t *node_at(const evs__pgtree *t, const uint8_t *pg, unsigned i)
{
	unsigned off = u16(pg + HDR + 2 * i);

	return off >= HDR && off + NODE <= t->psize ? pg + off : NULL;
}

/* The position a node's key holds; false: not an 8-byte key inside the
 * page (a branch page's node 0 has an empty key). */
static inline bool node_key(const evs__pgtree *t, const uint8_t *pg, const uint8_t *nd,
			    uint64_t *key)
{
	if (u16(nd + 6) != KEY || (size_t)(nd - pg) + NODE + KEY > t->psize)
		return false;
	*key = be64(nd + NODE);
	return true;
}

bool evs__pg_open(evs__pgtree *t, MDB_txn *txn, MDB_dbi main_db, const char *name)
{
	MDB_env *env = mdb_txn_env(txn);
	MDB_val k = {strlen(name), (void *)name}, d;
	MDB_envinfo info;
	MDB_stat st;
	int major, minor;

	mdb_version(&major, &minor, NULL);
	if (major != 0 || minor != 9 || sizeof(void *) != 8)
		return false;
	if (mdb_env_stat(env, &st) != 0 || mdb_env_info(env, &info) != 0)
		return false;
	if (st.ms_psize < 1024 || (st.ms_psize & (st.ms_psize - 1)) != 0)
		return false;
	if (mdb_get(txn, main_db, &k, &d) != 0 || d.mv_size != DB_LEN)
		return false;
	/* The record lies in a page of the map whose header names its number:
	 * that gives where page 0 is. The root's own header checks it. */
	uintptr_t at = (uintptr_t)d.mv_data & ~(uintptr_t)(st.ms_psize - 1);
	uint64_t pgno = u64((const uint8_t *)at);
	const uint8_t *rec = d.mv_data;

	t->psize = st.ms_psize;
	t->npages = info.me_mapsize / st.ms_psize;
	if (pgno >= t->npages || at < pgno * t->psize)
		return false;
	t->map = (const uint8_t *)(at - pgno * t->psize);
	t->depth = u16(rec + 6);
	t->root = u64(rec + 40);
	t->npath = 0;
	if (u16(rec + 4) != 0 || t->depth == 0 || t->depth >= EVS__PG_DEPTH)
		return false; /* flags: only a plain tree of byte-ordered keys */
	const uint8_t *root = page_at(t, t->root);
	return root && u64(root) == t->root &&
	       page_kind(root) == (t->depth == 1 ? P_LEAF : P_BRANCH);
}

/* In branch page pg covering [lo, hi), the child holding pos: its page
 * number and the keys it covers. false: the page is not as expected. */
static bool branch_step(const evs__pgtree *t, const uint8_t *pg, uint64_t pos, uint64_t *child,
			uint64_t *lo, uint64_t *hi)
{
	unsigned n = nkeys(t, pg), l = 1, r, at = 0;
	const uint8_t *nd;
	uint64_t key;

	if (n == 0)
		return false;
	for (r = n - 1; l <= r && r < n;) { /* the last node whose key <= pos */
		unsigned m = l + (r - l) / 2;
		if ((nd = node_at(t, pg, m)) == NULL || !node_key(t, pg, nd, &key))
			return false;
		if (key <= pos) {
			at = m;
			l = m + 1;
		} else {
			r = m - 1;
		}
	}
	if ((nd = node_at(t, pg, at)) == NULL)
		return false;
	if (at > 0 && node_key(t, pg, nd, &key))
		*lo = key;
	if (at + 1 < n) {
		const uint8_t *next = node_at(t, pg, at + 1);
		if (next == NULL || !node_key(t, pg, next, &key))
			return false;
		*hi = key;
	}
	*child = u16(nd) | (uint64_t)u16(nd + 2) << 16 | (uint64_t)u16(nd + 4) << 32;
	return true;
}

void evs__pg_find(evs__pgtree *t, evs__pgslot *s)
{
	uint64_t pos = s->pos, lo = 0, hi = 0, child;
	unsigned level = t->npath;
	const uint8_t *pg;

	s->leaf = NULL;
	s->first = 0;
	/* re-enter the last path at its deepest page that covers pos */
	while (level > 0 && !(t->path[level - 1].lo <= pos &&
			      (t->path[level - 1].hi == 0 || pos < t->path[level - 1].hi)))
		level--;
	if (level > 0) {
		level--;
		pg = t->path[level].page;
		lo = t->path[level].lo;
		hi = t->path[level].hi;
	} else {
		pg = page_at(t, t->root);
	}
	for (; level + 1 < t->depth; level++) {
		if (pg == NULL || page_kind(pg) != P_BRANCH) {
			t->npath = 0;
			return;
		}
		t->path[level].page = pg;
		t->path[level].lo = lo;
		t->path[level].hi = hi;
		t->npath = level + 1;
		if (!branch_step(t, pg, pos, &child, &lo, &hi)) {
			t->npath = 0;
			return;
		}
		pg = page_at(t, child);
	}
	if (pg == NULL)
		return;
	s->leaf = pg;
	s->first = lo;
	__builtin_prefetch(pg);
	if (lo && pos >= lo && pos - lo < (t->psize - HDR) / 2)
		__builtin_prefetch(pg + HDR + 2 * (pos - lo));
}

void evs__pg_near(const evs__pgtree *t, const evs__pgslot *s)
{
	const uint8_t *pg = s->leaf, *nd;

	if (pg == NULL || s->first == 0 || s->pos < s->first || page_kind(pg) != P_LEAF ||
	    s->pos - s->first >= nkeys(t, pg))
		return;
	if ((nd = node_at(t, pg, (unsigned)(s->pos - s->first))) != NULL)
		__builtin_prefetch(nd);
}

/* The node of pos in leaf pg: at its guessed slot, else by a search. */
static const uint8_t *leaf_node(const evs__pgtree *t, const evs__pgslot *s, unsigned n)
{
	const uint8_t *pg = s->leaf, *nd;
	uint64_t key;
	unsigned l = 0, r;

	if (s->first && s->pos >= s->first && s->pos - s->first < n &&
	    (nd = node_at(t, pg, (unsigned)(s->pos - s->first))) != NULL &&
	    node_key(t, pg, nd, &key) && key == s->pos)
		return nd;
	for (r = n; l < r;) {
		unsigned m = l + (r - l) / 2;
		if ((nd = node_at(t, pg, m)) == NULL || !node_key(t, pg, nd, &key))
			return NULL;
		if (key == s->pos)
			return nd;
		if (key < s->pos)
			l = m + 1;
		else
			r = m;
	}
	return NULL;
}

bool evs__pg_get(const evs__pgtree *t, const evs__pgslot *s, MDB_val *v)
{
	const uint8_t *pg = s->leaf, *nd, *data;
	unsigned n;
	size_t size;

	if (pg == NULL || page_kind(pg) != P_LEAF || (n = nkeys(t, pg)) == 0)
		return false;
	if ((nd = leaf_node(t, s, n)) == NULL)
		return false;
	size = u16(nd) | (size_t)u16(nd + 2) << 16;
	data = nd + NODE + KEY;
	if (size == 0)
		return false;
	if (u16(nd + 4) == F_BIGDATA) {
		const uint8_t *ov;
		if ((size_t)(data - pg) + 8 > t->psize || (ov = page_at(t, u64(data))) == NULL ||
		    page_kind(ov) != P_OVERFLOW)
			return false;
		uint64_t npg = (uint32_t)(u16(ov + 12) | (uint32_t)u16(ov + 14) << 16);
		if (npg == 0 || u64(data) + npg > t->npages || HDR + size > npg * t->psize)
			return false;
		v->mv_data = (void *)(ov + HDR);
	} else if (u16(nd + 4) == 0 && (size_t)(data - pg) + size <= t->psize) {
		v->mv_data = (void *)data;
	} else {
		return false; /* sub-trees and duplicates are not records */
	}
	v->mv_size = size;
	return true;
}
