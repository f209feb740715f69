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
 *   - tags: a leapfrog over the tag indexes (the first position > x
 *     carrying tag 1, then the first >= that carrying tag 2, ... until all
 *     agree), then the record's type is checked against the item's types;
 *   - types only: the smallest next position over the type indexes.
 * When few events follow P (the usual case: a decider read up to P a
 * moment ago) the events after P are decoded and matched directly instead,
 * which costs less than a seek per type and tag.
 */
#include <string.h>

#include "append_internal.h"

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

bool evs__query_match(const evs_query *q, const evs_event *ev)
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
		if (!evs__record_decode(v.mv_data, v.mv_size, pos, &ev)) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (evs__query_match(q, &ev)) {
			*conflict = pos;
			break;
		}
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int evs__condition_check(evs_store *s, MDB_txn *txn, const evs_condition *cond, uint64_t *conflict)
{
	uint64_t last;
	int rc;

	*conflict = 0;
	if ((rc = evs__j_last_position(s, txn, &last)) != 0)
		return rc;
	if (last <= cond->after)
		return 0;
	return scan(s, txn, cond->fail_if, cond->after, last, conflict);
}
