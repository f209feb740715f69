/*
 * condition.c - the append condition of evs_append_ex() (dcb.events): "fail
 * if an event matching this query has a position after P".
 *
 * Checked by group.c inside the group commit's write transaction, after
 * the request's idempotency and expected-version checks and before its
 * writes, so the requests before it in the group (already applied in the
 * same transaction) count, and a request after it sees its events: the
 * check and the write are one atomic step in commit order, as the
 * expected-version check is.
 *
 * The first conflicting position is the smallest over the query's items.
 * Per item:
 *   - no types, no tags: any event after P (the store's last position);
 *   - tags: a leapfrog join over the tag indexes and the union of the
 *     type indexes (the first position > x carrying tag 1; the first >= it
 *     carrying tag 2, ..., and one of the types; any list that skips past
 *     the candidate names the next x), so no record is decoded;
 *   - types only: the smallest next position over the type indexes.
 * When few events follow P (the usual case: a decider read up to P a
 * moment ago) the events after P are decoded and matched directly instead,
 * with no seek per type and tag. SCAN_MAX is a judgement, not a tuned
 * figure: both ways cost microseconds against a commit's sync.
 */
#include <string.h>

#include "append_internal.h"
#include "index.h"

/* Events after P decoded directly rather than through the indexes. */
#define SCAN_MAX 32

int evs__condition_valid(evs_store *s, const evs_condition *cond)
{
	const evs_query *q = cond->fail_if;
	size_t len;

	if (q == NULL)
		return evs__fail(s, EVS_INVALID, "condition has no query (fail_if is NULL)");
	if (q->nitems && q->items == NULL)
		return evs__fail(s, EVS_INVALID, "condition: query items is NULL");
	for (size_t i = 0; i < q->nitems; i++) {
		const evs_query_item *it = &q->items[i];
		if ((it->ntypes && it->types == NULL) || (it->ntags && it->tags == NULL))
			return evs__fail(s, EVS_INVALID,
					 "condition: query item %zu has a NULL array with a count",
					 i);
		if (it->ntags > EVS_MAX_TAGS)
			return evs__fail(s, EVS_INVALID,
					 "condition: query item %zu has %zu tags, the limit is %d",
					 i, it->ntags, EVS_MAX_TAGS);
		for (size_t j = 0; j < it->ntypes; j++)
			if (evs__check_name(it->types[j], &len) <= 0)
				return evs__fail(s, EVS_INVALID,
						 "condition: query item %zu: type %zu is empty, "
						 "longer than 255 bytes or not UTF-8",
						 i, j);
		for (size_t j = 0; j < it->ntags; j++)
			if (evs__check_name(it->tags[j], &len) <= 0)
				return evs__fail(s, EVS_INVALID,
						 "condition: query item %zu: tag %zu is empty, "
						 "longer than %d bytes or not UTF-8",
						 i, j, EVS_MAX_TAG);
	}
	return EVS_OK;
}

static bool has_tag(const evs_event *ev, const char *tag)
{
	size_t len = strlen(tag);

	for (size_t i = 0; i < ev->ntags; i++)
		if (ev->tags[i].len == len && memcmp(ev->tags[i].ptr, tag, len) == 0)
			return true;
	return false;
}

static bool item_match(const evs_query_item *it, const evs_event *ev)
{
	bool type_ok = it->ntypes == 0;

	for (size_t j = 0; j < it->ntypes && !type_ok; j++)
		type_ok = strlen(it->types[j]) == ev->type.len &&
			  memcmp(it->types[j], ev->type.ptr, ev->type.len) == 0;
	if (!type_ok)
		return false;
	for (size_t j = 0; j < it->ntags; j++)
		if (!has_tag(ev, it->tags[j]))
			return false;
	return true;
}

static bool query_match(const evs_query *q, const evs_event *ev)
{
	if (q->nitems == 0)
		return true;
	for (size_t i = 0; i < q->nitems; i++)
		if (item_match(&q->items[i], ev))
			return true;
	return false;
}

/* Decode the events after `after` up to `last` and match them. */
static int scan(evs_store *s, MDB_txn *txn, const evs_query *q, uint64_t after, uint64_t last,
		uint64_t *conflict)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t pk[8];
	evs_str tags[EVS_MAX_TAGS];
	evs_event ev;
	int rc;

	if ((rc = mdb_cursor_open(txn, s->events, &c)) != 0)
		return rc;
	evs__put_u64(pk, after + 1);
	k.mv_size = 8;
	k.mv_data = pk;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t pos = evs__get_u64(k.mv_data);
		if (pos > last)
			break;
		if (!evs__record_decode(v.mv_data, v.mv_size, pos, &ev, tags)) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (query_match(q, &ev)) {
			*conflict = pos;
			break;
		}
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The first position > after carrying one of the item's types (the union
 * of the type lists), or 0. */
static int next_type(MDB_cursor *c, const evs_query_item *it, uint64_t after, uint64_t *found)
{
	uint64_t p;
	int rc;

	*found = 0;
	for (size_t j = 0; j < it->ntypes; j++) {
		rc = evs__ix_cursor_next(c, EVS__IX_TYPE, it->types[j], strlen(it->types[j]), after,
					 &p);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc)
			return rc;
		if (*found == 0 || p < *found)
			*found = p;
	}
	return 0;
}

/* The first position in (after, below) matching item `it` through the
 * indexes, or 0. */
static int item_first(MDB_cursor *c, const evs_query_item *it, uint64_t after, uint64_t below,
		      uint64_t *found)
{
	uint64_t x = after, p, q;
	int rc;

	*found = 0;
	if (it->ntags == 0) { /* types only: the smallest next over them */
		if ((rc = next_type(c, it, after, &p)) != 0)
			return rc;
		*found = p && p < below ? p : 0;
		return 0;
	}
	/* a leapfrog join: a candidate from the first tag's list; every other
	 * tag's list, and the union of the types' lists, either has it too or
	 * names the next position worth trying */
	for (;;) {
		rc = evs__ix_cursor_next(c, EVS__IX_TAG, it->tags[0], strlen(it->tags[0]), x, &p);
		if (rc)
			return rc == MDB_NOTFOUND ? 0 : rc;
		if (p >= below)
			return 0;
		q = p;
		for (size_t j = 1; j < it->ntags && q == p; j++) {
			rc = evs__ix_cursor_next(c, EVS__IX_TAG, it->tags[j], strlen(it->tags[j]),
						 p - 1, &q);
			if (rc)
				return rc == MDB_NOTFOUND ? 0 : rc;
		}
		if (q == p && it->ntypes) {
			if ((rc = next_type(c, it, p - 1, &q)) != 0)
				return rc;
			if (q == 0) /* no event of these types after p - 1 */
				return 0;
		}
		if (q == p) {
			*found = p;
			return 0;
		}
		x = q - 1; /* q > p: no position below q has them all */
	}
}

int evs__condition_check(evs_store *s, MDB_txn *txn, const evs_condition *cond, uint64_t *conflict)
{
	const evs_query *q = cond->fail_if;
	uint64_t last;
	int rc;

	*conflict = 0;
	if ((rc = evs__j_last_position(s, txn, &last)) != 0)
		return rc;
	if (last <= cond->after)
		return 0;
	if (last - cond->after <= SCAN_MAX || q->nitems == 0)
		return scan(s, txn, q, cond->after, last, conflict);
	/* the smallest first match over the items; each item searches only
	 * below the best so far */
	MDB_cursor *c;
	uint64_t best = last + 1, p;
	if ((rc = mdb_cursor_open(txn, s->index, &c)) != 0)
		return rc;
	for (size_t i = 0; i < q->nitems && rc == 0; i++) {
		const evs_query_item *it = &q->items[i];
		if (it->ntypes == 0 && it->ntags == 0) { /* any event */
			best = cond->after + 1;
			break;
		}
		rc = item_first(c, it, cond->after, best, &p);
		if (rc == 0 && p)
			best = p;
	}
	mdb_cursor_close(c);
	if (rc == 0 && best <= last)
		*conflict = best;
	return rc;
}
