/*
 * group.c - applying a commit group in one LMDB write transaction.
 *
 * Each request gets its own expected-version and idempotency outcome (per
 * part for evs_append_ex()) and, if it has one, its append condition is
 * checked here, in commit order: after the requests before it in the group
 * wrote (condition.c). A request refused writes nothing, and since its
 * checks run before any of its writes it needs no rollback. Checkpoint
 * writes of evs_append_ex() go into "checkpoints" in the same
 * transaction and into the journal record (jckw.c). Only LMDB failures undo the whole
 * group. MDB_MAP_FULL undoes it too, then the map grows and the group is
 * applied again.
 *
 * Writes per event: "events" (position -> record, MDB_APPEND), "streams"
 * (stream -> version|position), "event_ids" (id -> position), "index"
 * (type, category, tags, correlation -> position: index.c). Per commit:
 * "time" (recorded_at -> last position) and, for new streams, the stream
 * count in "meta". The commit goes through the journal (jcommit.c). recorded_at is strictly increasing per commit
 * (max(clock, last + 1 ns)), so the time index has one key per commit and a
 * clock stepping back never breaks the order.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "append_internal.h"
#include "index.h"

static void outcome(evs__req *q, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void outcome(evs__req *q, int rc, const char *fmt, ...)
{
	va_list ap;

	q->rc = rc;
	va_start(ap, fmt);
	vsnprintf(q->msg, sizeof q->msg, fmt, ap);
	va_end(ap);
}

static bool same_str(evs_str a, evs_str b)
{
	return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/*
 * Is the stored record r the event whose new tail is at sl? Byte
 * equality decides at once. Otherwise the fields are compared: when the
 * caller asked for "the latest" type version (the stored one may be
 * older, the registry moved on since), without it; and when the stored
 * record is of an older record version (written before the upgrade to
 * format 3), whose bytes differ for the same event. 1 same, 0 not.
 */
static int same_event(const evs__req *q, const evs__slot *sl, const MDB_val *rec)
{
	const char *tail = q->tails.ptr + sl->off;
	const uint8_t *r = rec->mv_data;
	evs_str ta[EVS_MAX_TAGS], tb[EVS_MAX_TAGS];
	evs_event a, b;
	bool same;

	if (rec->mv_size == EVS__RECORD_HEAD + sl->len &&
	    memcmp(r + EVS__RECORD_HEAD, tail, sl->len) == 0)
		return 1;
	if (!sl->latest && rec->mv_size > 1 && r[1] == EVS_RECORD_VERSION)
		return 0;
	if (!evs__record_decode(rec->mv_data, rec->mv_size, 0, &a, ta) ||
	    !evs__record_decode_tail(tail, sl->len, &b, tb))
		return 0;
	same = same_str(a.stream, b.stream) && same_str(a.type, b.type) &&
	       (sl->latest || a.type_version == b.type_version) && a.occurred_at == b.occurred_at &&
	       !memcmp(a.correlation_id, b.correlation_id, 16) &&
	       !memcmp(a.causation_id, b.causation_id, 16) && a.data_len == b.data_len &&
	       !memcmp(a.data, b.data, a.data_len) && a.metadata_len == b.metadata_len &&
	       !memcmp(a.metadata, b.metadata, a.metadata_len) && a.ntags == b.ntags &&
	       same_str(a.producer, b.producer);
	for (size_t j = 0; same && j < a.ntags; j++)
		same = same_str(a.tags[j], b.tags[j]);
	return same ? 1 : 0;
}

/* Where event i of part p is, for messages: "event 3" (evs_append) or
 * "part 1, event 3" (evs_append_ex). */
static const char *where(const evs__req *q, size_t p, size_t i, char *buf, size_t len)
{
	if (!q->ex)
		snprintf(buf, len, "event %zu", i);
	else
		snprintf(buf, len, "part %zu, event %zu", p, i);
	return buf;
}

/*
 * Is the request a retry of one already stored? Its events must all be
 * stored, in the order given, at consecutive positions, each part at
 * consecutive versions of its stream, with the same content. Sets q's
 * outcome (and the parts' results) and returns true when the ids decide it
 * (retry or conflict); false to append. Returns an LMDB code through *mrc
 * on failure.
 */
static bool stored_before(evs_store *s, MDB_txn *txn, evs__req *q, int *mrc)
{
	uint64_t first = 0;
	size_t found = 0, g = 0;
	char t[37], w[64];

	*mrc = 0;
	for (size_t pi = 0; pi < q->nparts; pi++) {
		evs__part *p = &q->parts[pi];
		uint64_t version0 = 0;

		for (size_t i = 0; i < p->n; i++, g++) {
			MDB_val k = {16, p->ev[i].id}, v;
			/* an id made for this append is in no store: the lookup
			 * would say MDB_NOTFOUND (were two made ids ever equal, the
			 * id index's MDB_NOOVERWRITE put would still refuse it) */
			if (p->ev[i].fresh)
				continue;
			int rc = mdb_get(txn, s->ids, &k, &v);
			if (rc == MDB_NOTFOUND)
				continue;
			if (rc) {
				*mrc = rc;
				return true;
			}
			uint64_t pos = evs__get_u64(v.mv_data);
			MDB_val pk = {8, (uint8_t[8]){0}}, rec;
			evs__put_u64(pk.mv_data, pos);
			if ((rc = mdb_get(txn, s->events, &pk, &rec)) != 0) {
				*mrc = rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
				return true;
			}
			const uint8_t *r = rec.mv_data;
			uint64_t version =
				rec.mv_size >= EVS__RECORD_HEAD ? evs__get_u64(r + 12) : 0;
			if (found == 0)
				first = pos - g;
			if (i == 0)
				version0 = version;
			found++;
			int same = found == g + 1 && pos == first + g && version == version0 + i
					   ? same_event(q, &p->ev[i], &rec)
					   : 0;
			if (same < 0) {
				outcome(q, EVS_NOMEM, "out of memory");
				return true;
			}
			if (!same) {
				evs__uuid_text(p->ev[i].id, t);
				outcome(q, EVS_ID_CONFLICT,
					"%s: id %s is already stored at position %llu %s",
					where(q, pi, i, w, sizeof w), t, (unsigned long long)pos,
					found != g + 1 ? "but earlier events of the batch are not"
						       : "with other content or in another batch");
				return true;
			}
		}
		if (found == g) { /* every event so far stored: the part's result */
			p->res.first_position = first + g - p->n;
			p->res.last_position = first + g - 1;
			p->res.version = version0 + p->n - 1;
			p->res.idempotent = 1;
		}
	}
	if (found == 0)
		return false;
	if (found != q->n) {
		size_t pi = 0, i = found;
		while (i >= q->parts[pi].n)
			i -= q->parts[pi++].n;
		evs__uuid_text(q->parts[pi].ev[i].id, t);
		outcome(q, EVS_ID_CONFLICT,
			"%s: id %s is not stored but earlier events of the batch are",
			where(q, pi, i, w, sizeof w), t);
		for (size_t k = 0; k < q->nparts; k++)
			memset(&q->parts[k].res, 0, sizeof q->parts[k].res);
		return true;
	}
	q->rc = EVS_OK;
	return true;
}

static const char *expected_text(uint64_t e, char *buf, size_t len)
{
	if (e == EVS_ANY)
		return "any";
	if (e == EVS_STREAM_EXISTS)
		return "stream exists";
	if (e == EVS_NO_STREAM)
		return "no stream";
	snprintf(buf, len, "%llu", (unsigned long long)e);
	return buf;
}

/* The group's write cursors on "events", "event_ids" and "index", opened
 * on first use: a cursor that stays on the tree's last leaf skips the
 * search from the root for the next key there (LMDB's mdb_cursor_set),
 * where mdb_put searches from the root for every key. */
typedef struct wcur {
	MDB_cursor *events, *ids;
	evs__ixw ix;
} wcur;

static void wcur_close(wcur *w)
{
	if (w->events)
		mdb_cursor_close(w->events);
	if (w->ids)
		mdb_cursor_close(w->ids);
	w->events = w->ids = NULL;
	evs__ixw_close(&w->ix);
}

/* Write part p's events (its stream at version cur) after *last_pos. */
static int write_part(evs_store *s, MDB_txn *txn, wcur *wc, const evs__req *q, evs__part *p,
		      uint64_t cur, uint64_t *last_pos, int64_t recorded_at)
{
	uint64_t pos;
	int rc;

	p->res.first_position = *last_pos + 1;
	if (wc->events == NULL && (rc = mdb_cursor_open(txn, s->events, &wc->events)) != 0) {
		wc->events = NULL;
		return rc;
	}
	if (wc->ids == NULL && (rc = mdb_cursor_open(txn, s->ids, &wc->ids)) != 0) {
		wc->ids = NULL;
		return rc;
	}
	for (size_t i = 0; i < p->n; i++) {
		uint8_t pk[8];
		uint64_t version = cur + 1 + i;
		MDB_val k = {8, pk}, v = {EVS__RECORD_HEAD + p->ev[i].len, NULL};

		pos = ++*last_pos;
		evs__put_u64(pk, pos);
		if ((rc = mdb_cursor_put(wc->events, &k, &v, MDB_APPEND | MDB_RESERVE)) != 0)
			return rc;
		evs__record_head(v.mv_data, recorded_at, version);
		memcpy((uint8_t *)v.mv_data + EVS__RECORD_HEAD, q->tails.ptr + p->ev[i].off,
		       p->ev[i].len);

		MDB_val ik = {16, p->ev[i].id}, iv = {8, pk};
		if ((rc = mdb_cursor_put(wc->ids, &ik, &iv, MDB_NOOVERWRITE)) != 0)
			return rc == MDB_KEYEXIST ? MDB_CORRUPTED : rc;

		/* type, category, tag, correlation (index.c) */
		if ((rc = evs__ixw_add_tail(&wc->ix, pos, q->tails.ptr + p->ev[i].off,
					    p->ev[i].len)) != 0)
			return rc;
	}
	/* the stream index once for the part: one "heads" entry rewrite */
	if ((rc = evs__sx_put_run(s, txn, p->stream, p->stream_len, cur + 1, p->res.first_position,
				  p->n)) != 0)
		return rc;
	p->res.last_position = *last_pos;
	p->res.version = cur + p->n;
	p->res.idempotent = 0;
	return 0;
}

/* Apply one request inside the group's transaction: idempotency, schema,
 * every part's expected version, the condition; then every part's events
 * and the checkpoint writes. Returns an LMDB code for failures that undo
 * the group; outcomes go into q. */
static int apply(evs_store *s, MDB_txn *txn, wcur *wc, evs__req *q, uint64_t *last_pos,
		 int64_t recorded_at, uint64_t *new_streams)
{
	uint64_t cur, pos;
	int rc;

	if (stored_before(s, txn, q, &rc))
		return rc;
	if (q->schema_rc) {
		outcome(q, q->schema_rc, "%s", q->schema_msg);
		return 0;
	}
	for (size_t pi = 0; pi < q->nparts; pi++) {
		evs__part *p = &q->parts[pi];
		cur = 0;
		rc = evs__stream_head_txn(s, txn, p->stream, p->stream_len, &cur, &pos);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
		p->res.version = cur; /* until written: the version it was checked at */
		bool match = p->expected == EVS_ANY ||
			     (p->expected == EVS_STREAM_EXISTS ? cur > 0 : cur == p->expected);
		if (!match) {
			char b[32], w[48] = "";
			if (q->ex)
				snprintf(w, sizeof w, "part %zu: ", pi);
			outcome(q, EVS_WRONG_VERSION,
				"%sstream \"%s\": expected version %s, actual version %llu", w,
				p->stream, expected_text(p->expected, b, sizeof b),
				(unsigned long long)cur);
			for (size_t k = 0; k < q->nparts; k++)
				if (k != pi)
					q->parts[k].res.version = 0;
			return 0;
		}
	}
	if (q->cond) {
		if ((rc = evs__condition_check(s, txn, q->cond, &q->conflict)) != 0)
			return rc;
		if (q->conflict) {
			outcome(q, EVS_CONDITION_FAILED,
				"an event matching the append condition exists after position "
				"%llu: position %llu",
				(unsigned long long)q->cond->after,
				(unsigned long long)q->conflict);
			for (size_t k = 0; k < q->nparts; k++)
				q->parts[k].res.version = 0;
			return 0;
		}
	}
	for (size_t pi = 0; pi < q->nparts; pi++) {
		evs__part *p = &q->parts[pi];
		cur = p->res.version;
		if ((rc = write_part(s, txn, wc, q, p, cur, last_pos, recorded_at)) != 0)
			return rc;
		if (cur == 0)
			(*new_streams)++;
	}
	if (q->nck && (rc = evs__ckw_apply(s, txn, q)) != 0)
		return rc;
	q->rc = EVS_OK;
	return 0;
}

static int last_key_u64(MDB_txn *txn, MDB_dbi dbi, uint64_t *key, uint64_t *val)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	*key = 0;
	if (val)
		*val = 0;
	if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0)
		return rc;
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0) {
		if (k.mv_size != 8 || (val && v.mv_size != 8))
			rc = MDB_CORRUPTED;
		else {
			*key = evs__get_u64(k.mv_data);
			if (val)
				*val = evs__get_u64(v.mv_data);
		}
	} else if (rc == MDB_NOTFOUND) {
		rc = 0;
	}
	mdb_cursor_close(c);
	return rc;
}

int evs__count_streams(evs_store *s, MDB_txn *txn, uint64_t added)
{
	uint8_t b[8];
	uint64_t n = 0;
	MDB_val k = {strlen(EVS__META_STREAMS), EVS__META_STREAMS}, v;
	int rc = mdb_get(txn, s->meta, &k, &v);

	if (rc == 0 && v.mv_size == 8)
		n = evs__get_u64(v.mv_data);
	else if (rc && rc != MDB_NOTFOUND)
		return rc;
	evs__put_u64(b, n + added);
	v.mv_size = 8;
	v.mv_data = b;
	return mdb_put(txn, s->meta, &k, &v, 0);
}

/* One attempt at the group: 0, or the LMDB code that undid it all. */
static int try_group(evs_store *s, evs__req *group, bool *wrote, int *ecode, bool *ck_after)
{
	MDB_txn *txn;
	uint64_t last_pos, start_pos, last_rec, unused, new_streams = 0;
	evs__buf ckw = {0};
	wcur wc = {0};
	int rc;

	*wrote = false;
	*ecode = 0;
	if ((rc = evs__write_begin(s, &txn)) != EVS_OK) {
		*ecode = rc;
		return -1;
	}
	evs__ixw_init(&wc.ix, s, txn);
	if ((rc = last_key_u64(txn, s->events, &last_pos, NULL)) != 0 ||
	    (rc = last_key_u64(txn, s->time, &last_rec, &unused)) != 0)
		goto abort;
	start_pos = last_pos;
	int64_t now = evs__now_ns();
	int64_t recorded_at = now > (int64_t)last_rec ? now : (int64_t)last_rec + 1;

	for (evs__req *q = group; q; q = q->next) {
		q->rc = EVS_OK;
		q->msg[0] = 0;
		q->conflict = 0;
		for (size_t i = 0; i < q->nparts; i++)
			memset(&q->parts[i].res, 0, sizeof q->parts[i].res);
		if ((rc = apply(s, txn, &wc, q, &last_pos, recorded_at, &new_streams)) != 0)
			goto abort;
	}
	wcur_close(&wc);
	/* checkpoint writes of the requests that were applied (a checkpoint-
	 * only request writes no event but still commits) */
	if ((rc = evs__jckw_encode(&ckw, group)) != 0)
		goto abort;
	if (last_pos != start_pos || ckw.len) {
		uint8_t tk[8], tv[8];
		MDB_val k = {8, tk}, v = {8, tv};
		evs__put_u64(tk, (uint64_t)recorded_at);
		evs__put_u64(tv, last_pos);
		if (last_pos != start_pos && (rc = mdb_put(txn, s->time, &k, &v, MDB_APPEND)) != 0)
			goto abort;
		if (new_streams && (rc = evs__count_streams(s, txn, new_streams)) != 0)
			goto abort;
		if (s->core->jfd >= 0)
			rc = evs__j_commit(s, txn, start_pos + 1, last_pos, ckw.ptr, ckw.len,
					   ck_after);
		else
			rc = evs__txn_commit_raw(s, txn);
		if (rc == 0)
			*wrote = true;
		evs__buf_free(&ckw);
		return rc;
	}
	/* nothing to write (all refused or retries): no sync needed */
abort:
	wcur_close(&wc);
	evs__buf_free(&ckw);
	evs__read_end(s, txn);
	return rc;
}

/* Apply and commit the group; true if it wrote anything. */
bool evs__group_run(evs_store *s, evs__req *group)
{
	bool wrote = false, ck_after = false;
	int rc, code;

	for (;;) {
		rc = try_group(s, group, &wrote, &code, &ck_after);
		if (rc == MDB_MAP_FULL) {
			if ((code = evs__grow(s, false)) == EVS_OK)
				continue;
			/* evs__grow set this thread's message; hand it on */
			for (evs__req *q = group; q; q = q->next)
				outcome(q, code, "%s", evs_errmsg(s));
			return false;
		}
		break;
	}
	if (rc == -1) {
		for (evs__req *q = group; q; q = q->next)
			outcome(q, code, "%s", evs_errmsg(s));
		return false;
	}
	if (rc) {
		int c = evs__code_of_mdb(rc);
		for (evs__req *q = group; q; q = q->next)
			outcome(q, c, "could not commit to store \"%s\": %s", s->path,
				mdb_strerror(rc));
		evs__log(s, EVS_LOG_ERROR, "could not commit to store \"%s\": %s", s->path,
			 mdb_strerror(rc));
		return false;
	}
	/* a group too large for the journal: on disk by LMDB's own sync */
	if (wrote && ck_after && (code = evs__j_checkpoint(s)) != EVS_OK)
		for (evs__req *q = group; q; q = q->next)
			if (q->rc == EVS_OK && !(q->nparts && q->parts[0].res.idempotent))
				outcome(q, code, "%s", evs_errmsg(s));
	return wrote;
}
