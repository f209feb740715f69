/*
 * ixplan.c - walking the event indexes (index.c) for a filter or a query:
 * the positions of the events that match, in position order, forward or
 * backward, without a scan.
 *
 * A plan is a small tree over the index's keys:
 *   leaf  one key (kind, name): its positions, a range of "index";
 *   or    the union of its children (a filter's types, categories; a
 *         query's items): next = the least of the children's next;
 *   and   the intersection (a filter's parts, an item's tags and types):
 *         leapfrog: seek every child to the largest candidate until all
 *         agree, so the walk advances by the most selective child.
 * next(after) is the first position > after; prev(before) the last one
 * < before. Each node remembers its last answer, so an "or" only moves the
 * child that was used and a leaf going on from its last answer steps its
 * cursor (MDB_NEXT / MDB_PREV) instead of seeking: a walk in one
 * direction costs one cursor step per entry read.
 *
 * Plans point at the names of the filter or query they were made from,
 * which must outlive them. Cursors belong to one read transaction:
 * evs__plan_bind opens them in a transaction, evs__plan_unbind closes them
 * (a subscription binds a fresh transaction per chunk).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"

enum { LEAF, OR, AND };

typedef struct node {
	int op;
	int kind; /* leaf */
	const char *name;
	size_t len;
	MDB_cursor *c;
	size_t first, n; /* children: kids[first .. first + n) */
	/* the last question and answer: forward "first > at is got",
	 * backward "last < at is got"; got 0 = none */
	bool known, fwd;
	uint64_t at, got;
	bool on_got; /* a leaf's cursor sits on got's key */
} node;

struct evs__plan {
	node *nodes;
	size_t nnodes, cap;
	size_t *kids; /* children's node numbers */
	size_t nkids, kcap;
	size_t root;
};

static int add_node(evs__plan *p, int op, size_t *out)
{
	if (p->nnodes == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		node *n = realloc(p->nodes, cap * sizeof *n);
		if (n == NULL)
			return -1;
		p->nodes = n;
		p->cap = cap;
	}
	memset(&p->nodes[p->nnodes], 0, sizeof p->nodes[0]);
	p->nodes[p->nnodes].op = op;
	*out = p->nnodes++;
	return 0;
}

static int add_kid(evs__plan *p, size_t k)
{
	if (p->nkids == p->kcap) {
		size_t cap = p->kcap ? p->kcap * 2 : 16;
		size_t *n = realloc(p->kids, cap * sizeof *n);
		if (n == NULL)
			return -1;
		p->kids = n;
		p->kcap = cap;
	}
	p->kids[p->nkids++] = k;
	return 0;
}

static int add_leaf(evs__plan *p, int kind, const char *name, size_t len, size_t *out)
{
	if (add_node(p, LEAF, out) != 0)
		return -1;
	p->nodes[*out].kind = kind;
	p->nodes[*out].name = name;
	p->nodes[*out].len = len;
	return 0;
}

/* An "or" of leaves of one kind (n > 0); a single leaf stands alone. */
static int add_or(evs__plan *p, int kind, char *const *names, const size_t *lens, size_t n,
		  size_t *out)
{
	size_t leaves[EVS__PLAN_MAX_KEYS];

	if (n == 1)
		return add_leaf(p, kind, names[0], lens[0], out);
	for (size_t i = 0; i < n; i++)
		if (add_leaf(p, kind, names[i], lens[i], &leaves[i]) != 0)
			return -1;
	if (add_node(p, OR, out) != 0)
		return -1;
	p->nodes[*out].first = p->nkids;
	p->nodes[*out].n = n;
	for (size_t i = 0; i < n; i++)
		if (add_kid(p, leaves[i]) != 0)
			return -1;
	return 0;
}

/* Group parts[0..n) under op (one part stands alone). */
static int add_group(evs__plan *p, int op, const size_t *parts, size_t n, size_t *out)
{
	if (n == 1) {
		*out = parts[0];
		return 0;
	}
	if (add_node(p, op, out) != 0)
		return -1;
	p->nodes[*out].first = p->nkids;
	p->nodes[*out].n = n;
	for (size_t i = 0; i < n; i++)
		if (add_kid(p, parts[i]) != 0)
			return -1;
	return 0;
}

void evs__plan_free(evs__plan *p)
{
	if (p == NULL)
		return;
	evs__plan_unbind(p);
	free(p->nodes);
	free(p->kids);
	free(p);
}

int evs__plan_filter(const evs__filter *f, evs__plan **out)
{
	size_t parts[EVS__PLAN_MAX_KEYS + 3], n = 0;
	evs__plan *p;

	*out = NULL;
	if (f->ntypes == 0 && f->ncategories == 0 && f->ntags == 0 && !f->has_correlation)
		return 0; /* nothing indexed: a scan */
	if ((p = evs__calloc(1, sizeof *p)) == NULL)
		return ENOMEM;
	if (f->has_correlation &&
	    add_leaf(p, EVS__IX_CORRELATION, (const char *)f->correlation, 16, &parts[n++]) != 0)
		goto oom;
	for (size_t i = 0; i < f->ntags; i++)
		if (add_leaf(p, EVS__IX_TAG, f->tags[i], f->tag_lens[i], &parts[n++]) != 0)
			goto oom;
	if (f->ncategories && add_or(p, EVS__IX_CATEGORY, f->categories, f->category_lens,
				     f->ncategories, &parts[n++]) != 0)
		goto oom;
	if (f->ntypes &&
	    add_or(p, EVS__IX_TYPE, f->types, f->type_lens, f->ntypes, &parts[n++]) != 0)
		goto oom;
	if (add_group(p, AND, parts, n, &p->root) != 0)
		goto oom;
	*out = p;
	return 0;
oom:
	evs__plan_free(p);
	return ENOMEM;
}

int evs__plan_query(const evs__query *q, evs__plan **out)
{
	size_t items[EVS__PLAN_MAX_KEYS], parts[EVS_MAX_TAGS + 1];
	evs__plan *p;

	*out = NULL;
	if (q->all)
		return 0; /* every event: a scan */
	if ((p = evs__calloc(1, sizeof *p)) == NULL)
		return ENOMEM;
	for (size_t i = 0; i < q->nitems; i++) {
		const evs__qitem *it = &q->items[i];
		size_t n = 0;
		for (size_t j = 0; j < it->ntags; j++)
			if (add_leaf(p, EVS__IX_TAG, it->tags[j], it->tag_lens[j], &parts[n++]) !=
			    0)
				goto oom;
		if (it->ntypes &&
		    add_or(p, EVS__IX_TYPE, it->types, it->type_lens, it->ntypes, &parts[n++]) != 0)
			goto oom;
		if (add_group(p, AND, parts, n, &items[i]) != 0)
			goto oom;
	}
	if (add_group(p, OR, items, q->nitems, &p->root) != 0)
		goto oom;
	*out = p;
	return 0;
oom:
	evs__plan_free(p);
	return ENOMEM;
}

int evs__plan_bind(evs__plan *p, MDB_txn *txn, MDB_dbi index)
{
	int rc;

	evs__plan_unbind(p);
	for (size_t i = 0; i < p->nnodes; i++) {
		if (p->nodes[i].op != LEAF)
			continue;
		if ((rc = mdb_cursor_open(txn, index, &p->nodes[i].c)) != 0) {
			p->nodes[i].c = NULL;
			evs__plan_unbind(p);
			return rc;
		}
	}
	return 0;
}

void evs__plan_unbind(evs__plan *p)
{
	for (size_t i = 0; i < p->nnodes; i++) {
		node *n = &p->nodes[i];
		if (n->c)
			mdb_cursor_close(n->c);
		n->c = NULL;
		n->known = n->on_got = false;
	}
}

/* A leaf's cursor on got: step it once (MDB_NEXT / MDB_PREV). */
static int leaf_step(node *n, bool fwd, uint64_t *pos)
{
	MDB_val k, v;
	const uint8_t *p;
	int rc = mdb_cursor_get(n->c, &k, &v, fwd ? MDB_NEXT : MDB_PREV);

	if (rc)
		return rc;
	p = k.mv_data;
	if (k.mv_size != n->len + 10 || p[0] != (uint8_t)n->kind || p[1 + n->len] != 0 ||
	    memcmp(p + 1, n->name, n->len) != 0)
		return MDB_NOTFOUND;
	*pos = evs__get_u64(p + 2 + n->len);
	return 0;
}

static int walk(evs__plan *p, size_t i, bool fwd, uint64_t at, uint64_t *pos);

static int leaf(node *n, bool fwd, uint64_t at, uint64_t *pos)
{
	int rc;

	if (n->on_got && n->fwd == fwd && n->got == at)
		rc = leaf_step(n, fwd, pos);
	else
		rc = fwd ? evs__ix_cursor_next(n->c, n->kind, n->name, n->len, at, pos)
			 : evs__ix_cursor_prev(n->c, n->kind, n->name, n->len, at, pos);
	n->on_got = rc == 0;
	return rc;
}

static int walk(evs__plan *p, size_t i, bool fwd, uint64_t at, uint64_t *pos)
{
	node *n = &p->nodes[i];
	uint64_t got = 0, q;
	int rc = 0;

	/* the last answer still answers: nothing lies between at and it */
	if (n->known && n->fwd == fwd &&
	    (fwd ? at >= n->at && (n->got == 0 || at < n->got)
		 : at <= n->at && (n->got == 0 || at > n->got))) {
		*pos = n->got;
		return n->got ? 0 : MDB_NOTFOUND;
	}
	if (n->op == LEAF) {
		rc = leaf(n, fwd, at, &got);
	} else if (n->op == OR) {
		for (size_t k = 0; k < n->n; k++) {
			rc = walk(p, p->kids[n->first + k], fwd, at, &q);
			if (rc == MDB_NOTFOUND)
				continue;
			if (rc)
				break;
			if (got == 0 || (fwd ? q < got : q > got))
				got = q;
		}
		if (rc == MDB_NOTFOUND || rc == 0)
			rc = got ? 0 : MDB_NOTFOUND;
	} else {
		/* leapfrog: a candidate from the first child, confirmed by
		 * every other or replaced by the one it offers instead */
		uint64_t cand;
		rc = walk(p, p->kids[n->first], fwd, at, &cand);
		for (size_t k = 1; rc == 0 && k < n->n;) {
			/* the child's first at or beyond the candidate */
			rc = walk(p, p->kids[n->first + k], fwd, fwd ? cand - 1 : cand + 1, &q);
			if (rc)
				break;
			if (q == cand) {
				k++;
				continue;
			}
			cand = q; /* beyond: every child must confirm it again */
			k = 0;
		}
		if (rc == 0)
			got = cand;
	}
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	n->known = true;
	n->fwd = fwd;
	n->at = at;
	n->got = rc ? 0 : got;
	*pos = n->got;
	return rc;
}

int evs__plan_next(evs__plan *p, uint64_t after, uint64_t *pos)
{
	if (after == UINT64_MAX)
		return MDB_NOTFOUND;
	return walk(p, p->root, true, after, pos);
}

int evs__plan_prev(evs__plan *p, uint64_t before, uint64_t *pos)
{
	if (before == 0)
		return MDB_NOTFOUND;
	return walk(p, p->root, false, before, pos);
}
