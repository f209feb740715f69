/*
 * verify.c - check every index against the event log.
 *
 * One read snapshot; five walks:
 *   events     positions 1..N gap-free, records decode, recorded_at
 *              non-decreasing, each event found in "streams" and
 *              "event_ids" at its position, commit boundaries in "time";
 *   streams    versions 1..V contiguous per stream, each entry pointing
 *              at an event of that stream and version; the stream count;
 *   event_ids  as many ids as events, each pointing at its event;
 *   time       each entry names the last event of a commit;
 *   index      each entry (index.c) names an event that calls for it;
 *              and in the events walk, each event's entries are present
 * and the journal: the records after its newest checkpoint, up to the lsn
 * the snapshot holds, are the store's events at their positions, byte for
 * byte (jcommit.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "journal.h"

typedef struct vctx {
	evs_problem_fn fn;
	evs_progress_fn progress;
	void *ctx;
	uint64_t problems;
	uint64_t done, total, every;
	uint64_t next, reported; /* records: next progress call, last reported */
	bool called;             /* progress was called at least once */
} vctx;

static void problem(vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(vctx *v, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	v->problems++;
	if (v->fn == NULL || v->problems > 1000)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	v->fn(v->ctx, buf);
}

static bool event_at(evs_store *s, MDB_txn *txn, uint64_t pos, evs_event *ev)
{
	static __thread evs_str tags[EVS_MAX_TAGS]; /* views looked at, not kept */
	uint8_t pk[8];
	MDB_val k = {8, pk}, v;

	evs__put_u64(pk, pos);
	return mdb_get(txn, s->events, &k, &v) == 0 &&
	       evs__record_decode(v.mv_data, v.mv_size, pos, ev, tags);
}

#define ULL(x) ((unsigned long long)(x))

/* One record walked: counts it, and reports every `every` records. */
static void report(vctx *v)
{
	v->next = v->done + v->every;
	v->reported = v->done;
	v->called = true;
	v->progress(v->ctx, v->done, v->total);
}

static void step(vctx *v)
{
	if (++v->done >= v->next && v->progress != NULL)
		report(v);
}

/* The records the four walks will visit, known up front from the
 * B-tree headers, so a progress line can show a share and an ETA. */
static int count_records(evs_store *s, MDB_txn *txn, uint64_t *total)
{
	const MDB_dbi dbis[] = {s->events, s->streams, s->ids, s->time, s->index};
	MDB_stat st;
	int rc;

	*total = 0;
	for (size_t i = 0; i < sizeof dbis / sizeof dbis[0]; i++) {
		if ((rc = mdb_stat(txn, dbis[i], &st)) != 0)
			return rc;
		*total += st.ms_entries;
	}
	return 0;
}

typedef struct ixcheck {
	MDB_cursor *c; /* on "index" */
	vctx *vc;
	uint64_t pos;
	uint64_t *keys; /* entries the events call for */
	int rc;
} ixcheck;

static const char *kind_name(int kind)
{
	return kind == EVS__IX_TYPE          ? "type"
	       : kind == EVS__IX_CATEGORY    ? "category"
	       : kind == EVS__IX_TAG         ? "tag"
	       : kind == EVS__IX_CORRELATION ? "correlation"
					     : "unknown kind";
}

/* Print a name for a message: text, or hex for a correlation id. */
static void name_text(int kind, const void *name, size_t len, char *out, size_t size)
{
	if (kind == EVS__IX_CORRELATION && len == 16) {
		evs__uuid_text(name, out);
		return;
	}
	snprintf(out, size, "%.*s", (int)len, (const char *)name);
}

/* Is event pos's entry (kind, name) in the index? */
static int ix_present(void *ctx, int kind, const void *name, size_t len)
{
	ixcheck *x = ctx;
	uint64_t got;
	int rc;

	(*x->keys)++;
	rc = evs__ix_cursor_next(x->c, kind, name, len, x->pos - 1, &got);
	if (rc && rc != MDB_NOTFOUND)
		return x->rc = rc;
	if (rc == MDB_NOTFOUND || got != x->pos) {
		char t[EVS_MAX_NAME + 1];
		name_text(kind, name, len, t, sizeof t);
		problem(x->vc, "index: %s \"%s\" of position %llu is missing", kind_name(kind), t,
			ULL(x->pos));
	}
	return 0;
}

/* Does ev call for the entry (kind, name)? */
typedef struct ixwant {
	int kind;
	const uint8_t *name;
	size_t len;
} ixwant;

static int ix_wanted(void *ctx, int kind, const void *name, size_t len)
{
	const ixwant *w = ctx;

	return kind == w->kind && len == w->len && memcmp(name, w->name, len) == 0;
}

static int walk_index(evs_store *s, MDB_txn *txn, vctx *vc, uint64_t keys)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t n = 0;
	int rc;

	if ((rc = mdb_cursor_open(txn, s->index, &c)) != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		ixwant w;
		uint64_t pos;
		evs_event ev;
		char t[EVS_MAX_NAME + 1];

		step(vc);
		n++;
		if (!evs__ix_split(&k, &w.kind, &w.name, &w.len, &pos) || v.mv_size != 0) {
			problem(vc, "index: malformed entry");
			continue;
		}
		name_text(w.kind, w.name, w.len, t, sizeof t);
		if (!event_at(s, txn, pos, &ev))
			problem(vc, "index: %s \"%s\" points at position %llu, which has no event",
				kind_name(w.kind), t, ULL(pos));
		else if (evs__ix_each_key(s, &ev, ix_wanted, &w) == 0)
			problem(vc,
				"index: %s \"%s\" points at position %llu, whose event does not "
				"have it",
				kind_name(w.kind), t, ULL(pos));
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return rc;
	if (n != keys)
		problem(vc, "index: %llu entries for the %llu the events call for", ULL(n),
			ULL(keys));
	return 0;
}

static int walk_events(evs_store *s, MDB_txn *txn, vctx *vc, uint64_t *count, uint64_t *keys)
{
	MDB_cursor *c, *ic;
	MDB_val k, v;
	uint64_t expect = 1;
	int64_t prev_rec = 0;
	int rc;

	if ((rc = mdb_cursor_open(txn, s->index, &ic)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, s->events, &c)) != 0) {
		mdb_cursor_close(ic);
		return rc;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		evs_event ev;
		evs_str tags[EVS_MAX_TAGS];
		uint64_t pos = k.mv_size == 8 ? evs__get_u64(k.mv_data) : 0;

		step(vc);
		(*count)++;
		if (pos != expect)
			problem(vc, "events: position %llu found where %llu was expected", ULL(pos),
				ULL(expect));
		expect = pos + 1;
		if (!evs__record_decode(v.mv_data, v.mv_size, pos, &ev, tags)) {
			problem(vc, "events: record at position %llu does not decode", ULL(pos));
			continue;
		}
		if (ev.recorded_at < prev_rec)
			problem(vc, "events: recorded_at goes back at position %llu", ULL(pos));
		if (pos > 1 && ev.recorded_at != prev_rec) {
			/* a commit ended at pos - 1 */
			uint8_t tk[8];
			MDB_val tkv = {8, tk}, tv;
			evs__put_u64(tk, (uint64_t)prev_rec);
			if (mdb_get(txn, s->time, &tkv, &tv) != 0 || tv.mv_size != 8 ||
			    evs__get_u64(tv.mv_data) != pos - 1)
				problem(vc, "time: no entry for the commit ending at position %llu",
					ULL(pos - 1));
		}
		prev_rec = ev.recorded_at;

		uint64_t ip;
		if (evs__sx_get(s, txn, ev.stream.ptr, ev.stream.len, ev.version, &ip) != 0 ||
		    ip != pos)
			problem(vc,
				"streams: \"%.*s\" version %llu at position %llu is not indexed",
				(int)ev.stream.len, ev.stream.ptr, ULL(ev.version), ULL(pos));

		MDB_val ik = {16, ev.id}, iv;
		if (mdb_get(txn, s->ids, &ik, &iv) != 0 || iv.mv_size != 8 ||
		    evs__get_u64(iv.mv_data) != pos)
			problem(vc, "event_ids: id of position %llu is not indexed to it",
				ULL(pos));

		ixcheck x = {ic, vc, pos, keys, 0};
		if (evs__ix_each_key(s, &ev, ix_present, &x) != 0 && x.rc) {
			rc = x.rc;
			break;
		}
	}
	if (rc == MDB_NOTFOUND && expect > 1) {
		uint8_t tk[8];
		MDB_val tkv = {8, tk}, tv;
		evs__put_u64(tk, (uint64_t)prev_rec);
		if (mdb_get(txn, s->time, &tkv, &tv) != 0 || tv.mv_size != 8 ||
		    evs__get_u64(tv.mv_data) != expect - 1)
			problem(vc, "time: no entry for the last commit (position %llu)",
				ULL(expect - 1));
	}
	mdb_cursor_close(c);
	mdb_cursor_close(ic);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int walk_streams(evs_store *s, MDB_txn *txn, vctx *vc, uint64_t events)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t entries = 0, streams = 0, version = 0;
	int rc;

	if ((rc = mdb_cursor_open(txn, s->streams, &c)) != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		evs_event ev;
		size_t slen;
		uint64_t ver;

		step(vc);
		if (!evs__sx_split(&k, &slen, &ver) || v.mv_size != 8) {
			problem(vc, "streams: malformed entry");
			continue;
		}
		uint64_t pos = evs__get_u64(v.mv_data);
		entries++;
		if (ver == 1) {
			streams++;
			version = 0;
		}
		if (ver != version + 1)
			problem(vc, "streams: \"%.*s\" jumps from version %llu to %llu", (int)slen,
				(char *)k.mv_data, ULL(version), ULL(ver));
		version = ver;
		if (!event_at(s, txn, pos, &ev) || ev.version != ver || ev.stream.len != slen ||
		    memcmp(ev.stream.ptr, k.mv_data, slen) != 0)
			problem(vc,
				"streams: \"%.*s\" version %llu points at position %llu, "
				"which is not that event",
				(int)slen, (char *)k.mv_data, ULL(ver), ULL(pos));
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return rc;
	if (entries != events)
		problem(vc, "streams: %llu entries for %llu events", ULL(entries), ULL(events));

	MDB_val mk = {strlen(EVS__META_STREAMS), EVS__META_STREAMS}, mv;
	uint64_t counted = 0;
	if (mdb_get(txn, s->meta, &mk, &mv) == 0 && mv.mv_size == 8)
		counted = evs__get_u64(mv.mv_data);
	if (counted != streams)
		problem(vc, "meta: stream count is %llu, found %llu streams", ULL(counted),
			ULL(streams));
	return 0;
}

static int walk_ids(evs_store *s, MDB_txn *txn, vctx *vc, uint64_t events)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t n = 0;
	int rc;

	if ((rc = mdb_cursor_open(txn, s->ids, &c)) != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		evs_event ev;

		step(vc);
		n++;
		uint64_t pos = v.mv_size == 8 ? evs__get_u64(v.mv_data) : 0;
		if (k.mv_size != 16 || !event_at(s, txn, pos, &ev) || memcmp(ev.id, k.mv_data, 16))
			problem(vc,
				"event_ids: an id points at position %llu, which has another id",
				ULL(pos));
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return rc;
	if (n != events)
		problem(vc, "event_ids: %llu ids for %llu events", ULL(n), ULL(events));
	return 0;
}

static int walk_time(evs_store *s, MDB_txn *txn, vctx *vc)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t prev_pos = 0;
	int rc;

	if ((rc = mdb_cursor_open(txn, s->time, &c)) != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		evs_event ev, next;

		step(vc);
		if (k.mv_size != 8 || v.mv_size != 8) {
			problem(vc, "time: malformed entry");
			continue;
		}
		uint64_t t = evs__get_u64(k.mv_data), pos = evs__get_u64(v.mv_data);
		if (pos <= prev_pos)
			problem(vc, "time: positions do not rise at position %llu", ULL(pos));
		prev_pos = pos;
		if (!event_at(s, txn, pos, &ev) || (uint64_t)ev.recorded_at != t)
			problem(vc, "time: entry for position %llu does not match its event",
				ULL(pos));
		else if (event_at(s, txn, pos + 1, &next) && (uint64_t)next.recorded_at == t)
			problem(vc, "time: entry for position %llu is not the end of its commit",
				ULL(pos));
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int walk_journal(evs_store *s, MDB_txn *txn, vctx *vc)
{
	evs__core *c = s->core;
	evs__buf buf = {0};
	evs__jck *ck;
	evs__jrec r;
	uint64_t head, unj, last, lsn, pos, seq, now;
	int rc;

	if (c->jfd < 0)
		return 0;
	if ((rc = evs__j_head_get(s, txn, &head, &unj)) != 0)
		return rc == MDB_NOTFOUND ? 0 : rc; /* format 1, opened read-only */
	if ((rc = evs__j_last_position(s, txn, &last)) != 0)
		return rc;
	if ((ck = evs__malloc(sizeof *ck)) == NULL)
		return ENOMEM;
	if ((rc = evs__j_read_ck(c->jfd, ck)) != 0) {
		if (rc == -1)
			problem(vc, "journal: no valid checkpoint");
		rc = rc == -1 ? 0 : rc;
		goto out;
	}
	if (ck->lsn > head) /* a checkpoint newer than this snapshot */
		goto out;
	if (ck->position > last)
		problem(vc, "journal: the checkpoint's position %llu is past the last event %llu",
			ULL(ck->position), ULL(last));
	for (lsn = ck->lsn, pos = ck->position + 1; lsn < head; lsn = r.next) {
		int got = evs__j_read_rec(c->jfd, c->jring, c->juuid, lsn, &buf, &r);
		if (got < 0) {
			rc = EIO;
			break;
		}
		if (got == 0) {
			/* a writer may have reused the ring since the snapshot */
			if (evs__j_peek_ck(c->jfd, &seq, &now) != 0 || now <= lsn)
				problem(vc,
					"journal: no valid record at lsn %llu (the store's is %llu)",
					ULL(lsn), ULL(head));
			break;
		}
		step(vc);
		if (r.first != pos)
			problem(vc, "journal: record at lsn %llu starts at position %llu, not %llu",
				ULL(lsn), ULL(r.first), ULL(pos));
		const uint8_t *p = r.body, *end = r.body + r.body_len;
		for (uint32_t i = 0; i < r.n; i++) {
			uint8_t pk[8];
			MDB_val k = {8, pk}, v;
			uint32_t len = end - p >= 4 ? evs__get_u32(p) : UINT32_MAX;
			if (len > (size_t)(end - p) - 4) {
				problem(vc, "journal: record at lsn %llu is malformed", ULL(lsn));
				break;
			}
			evs__put_u64(pk, r.first + i);
			if (mdb_get(txn, s->events, &k, &v) != 0 || v.mv_size != len ||
			    memcmp(v.mv_data, p + 4, len) != 0)
				problem(vc,
					"journal: event at position %llu differs from the store",
					ULL(r.first + i));
			p += 4 + len;
		}
		pos = r.first + r.n;
	}
	if (rc == 0 && lsn > head)
		problem(vc, "journal: records pass the store's lsn %llu", ULL(head));
out:
	evs__buf_free(&buf);
	free(ck);
	return rc;
}

int evs_verify_ex(evs_store *s, const evs_verify_opts *opts, uint64_t *problems)
{
	vctx vc = {0};
	MDB_txn *txn;
	uint64_t events = 0, keys = 0;
	int rc;

	if (s == NULL)
		return EVS_INVALID;
	if (opts) {
		vc.fn = opts->on_problem;
		vc.progress = opts->on_progress;
		vc.ctx = opts->ctx;
		vc.every = opts->progress_every;
	}
	if (vc.every == 0)
		vc.every = 65536;
	vc.next = vc.every;
	if ((rc = evs__read_begin(s, &txn)) != EVS_OK)
		return rc;
	if ((rc = count_records(s, txn, &vc.total)) == 0 &&
	    (rc = walk_events(s, txn, &vc, &events, &keys)) == 0 &&
	    (rc = walk_streams(s, txn, &vc, events)) == 0 &&
	    (rc = walk_ids(s, txn, &vc, events)) == 0 && (rc = walk_time(s, txn, &vc)) == 0 &&
	    (rc = walk_index(s, txn, &vc, keys)) == 0)
		rc = walk_journal(s, txn, &vc);
	evs__read_end(s, txn);
	if (rc == 0 && vc.progress != NULL && (!vc.called || vc.reported != vc.done))
		report(&vc); /* the last figures, once */
	if (problems)
		*problems = vc.problems;
	return rc ? evs__fail_mdb(s, rc, "could not verify") : EVS_OK;
}

int evs_verify(evs_store *s, evs_problem_fn fn, void *ctx, uint64_t *problems)
{
	evs_verify_opts opts = {.on_problem = fn, .ctx = ctx};

	return evs_verify_ex(s, &opts, problems);
}
