/*
 * append.c - appending batches: validation, idempotency, expected versions
 * and group commit.
 *
 * A caller's batch is checked and encoded in the caller's own thread (in
 * parallel with other callers), then queued. The first caller to find no
 * leader becomes the leader: it takes everything queued, applies each
 * request in one LMDB write transaction (each with its own expected-version
 * and idempotency outcome; a request refused writes nothing) and commits
 * once, so one sync covers every batch in the group. Then it hands the
 * results back and lets a waiting caller lead the next group, which
 * gathered while this one was syncing (and which first waits, briefly, for
 * callers still on their way in: see gather()). The queue is the
 * environment's (evs__core), so callers on every handle of one store in
 * this process share it and its single leader. Across processes LMDB's
 * writer lock serializes the groups.
 *
 * A request's checks run before any of its writes, so a refused request
 * needs no rollback; only LMDB failures undo the whole group. MDB_MAP_FULL
 * undoes it too, then the map grows and the group is applied again.
 *
 * Writes per event: "events" (position -> record, MDB_APPEND), "streams"
 * (stream -> version|position), "event_ids" (id -> position). Per commit:
 * "time" (recorded_at -> last position) and, for new streams, the stream
 * count in "meta". recorded_at is strictly increasing per commit
 * (max(clock, last + 1 ns)), so the time index has one key per commit and a
 * clock stepping back never breaks the order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct slot {
	size_t off, len; /* the event's record tail in req->tails */
	uint8_t id[16];
	bool latest; /* the caller left type_version 0: "the latest" */
} slot;

typedef struct evs__req {
	struct evs__req *next;
	const char *stream;
	size_t stream_len;
	uint64_t expected;
	size_t n;
	slot *ev;
	evs__buf tails;
	uint32_t *type_versions; /* resolved by the schema registry, or NULL */
	/* A schema outcome, reported only if the batch is not a retry of one
	 * already stored (a retry must be answered the same way whatever the
	 * registry says now). */
	int schema_rc;
	char *schema_msg;
	/* outcome, written by the leader */
	int rc;
	evs_append_result res;
	char msg[512];
	bool taken; /* in a leader's group */
	bool done;
	pthread_cond_t cv; /* its caller sleeps on this, not on a shared one */
} evs__req;

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

static void id_text(const uint8_t id[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	int j = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[id[i] >> 4];
		out[j++] = hex[id[i] & 15];
	}
	out[j] = 0;
}

/* Check the whole batch and encode it; nothing is queued on failure. */
static int prepare(evs_store *s, evs__req *q, const char *stream, uint64_t expected,
		   const evs_event_in *events, size_t n)
{
	size_t total = 0, len;
	const char *why;
	int ok;

	ok = evs__check_name(stream, &q->stream_len);
	if (ok <= 0)
		return evs__fail(s, EVS_BAD_STREAM, "%s",
				 ok == 0 ? "stream id is empty"
				 : ok == -1
					 ? "stream id is longer than 255 bytes"
					 : "stream id is not valid UTF-8 (or contains a NUL byte)");
	q->stream = stream;
	q->expected = expected;
	if (n == 0)
		return evs__fail(s, EVS_EMPTY_BATCH, "batch for stream \"%s\" has no events",
				 stream);
	if (n > s->opts.max_batch)
		return evs__fail(s, EVS_BATCH_TOO_LARGE,
				 "batch of %zu events exceeds the limit of %zu", n,
				 s->opts.max_batch);
	if (events == NULL)
		return evs__fail(s, EVS_INVALID, "events is NULL");

	for (size_t i = 0; i < n; i++) {
		const evs_event_in *e = &events[i];

		ok = evs__check_name(e->type, &len);
		if (ok <= 0)
			return evs__fail(s, EVS_BAD_TYPE, "event %zu: %s", i,
					 ok == 0    ? "type is empty"
					 : ok == -1 ? "type is longer than 255 bytes"
						    : "type is not valid UTF-8");
		if ((e->data == NULL && e->data_len) || (e->metadata == NULL && e->metadata_len))
			return evs__fail(s, EVS_INVALID, "event %zu: NULL payload with a length",
					 i);
		if (e->data_len > s->opts.max_event_size ||
		    e->metadata_len > s->opts.max_event_size - e->data_len)
			return evs__fail(
				s, EVS_EVENT_TOO_LARGE,
				"event %zu: data and metadata take %zu bytes, the limit is %zu", i,
				e->data_len + e->metadata_len, s->opts.max_event_size);
		total += e->data_len + e->metadata_len + len;
		if (total > EVS_MAX_BATCH_BYTES)
			return evs__fail(s, EVS_BATCH_TOO_LARGE,
					 "batch exceeds %zu bytes at event %zu",
					 EVS_MAX_BATCH_BYTES, i);
		if (e->data && !evs__mp_is_map(e->data, e->data_len, &why))
			return evs__fail(s, EVS_BAD_DATA,
					 "event %zu: data is not a valid msgpack map: %s", i, why);
		if (e->metadata && !evs__mp_is_map(e->metadata, e->metadata_len, &why))
			return evs__fail(s, EVS_BAD_METADATA,
					 "event %zu: metadata is not a valid msgpack map: %s", i,
					 why);
	}

	/* schemas (schema/registry.c): validate here, in the caller's thread */
	int rc = evs__schema_prepare(s, events, n, &q->type_versions);
	if (rc == EVS_SCHEMA_VIOLATION || rc == EVS_UNKNOWN_TYPE) {
		q->schema_rc = rc;
		if ((q->schema_msg = strdup(evs_errmsg(s))) == NULL)
			return evs__fail(s, EVS_NOMEM, "out of memory");
	} else if (rc != EVS_OK) {
		return rc;
	}

	q->n = n;
	q->ev = calloc(n, sizeof *q->ev);
	if (q->ev == NULL)
		return evs__fail(s, EVS_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (evs__is_zero16(events[i].id))
			evs_uuid_v7(q->ev[i].id);
		else
			memcpy(q->ev[i].id, events[i].id, 16);
		q->ev[i].off = q->tails.len;
		q->ev[i].latest = events[i].type_version == 0;
		evs_event_in e = events[i];
		if (q->type_versions)
			e.type_version = q->type_versions[i];
		if (evs__record_tail(&q->tails, q->stream, q->stream_len, &e, q->ev[i].id) != 0)
			return evs__fail(s, EVS_NOMEM, "out of memory");
		q->ev[i].len = q->tails.len - q->ev[i].off;
	}
	if (n > 1) {
		uint8_t(*ids)[16] = malloc(n * 16);
		if (ids == NULL)
			return evs__fail(s, EVS_NOMEM, "out of memory");
		for (size_t i = 0; i < n; i++)
			memcpy(ids[i], q->ev[i].id, 16);
		qsort(ids, n, 16, cmp_id);
		for (size_t i = 1; i < n; i++) {
			if (memcmp(ids[i - 1], ids[i], 16) == 0) {
				char t[37];
				id_text(ids[i], t);
				free(ids);
				return evs__fail(s, EVS_ID_CONFLICT,
						 "event id %s appears twice in the batch", t);
			}
		}
		free(ids);
	}
	return EVS_OK;
}

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

/*
 * Is the stored record r the event whose new tail is at q->ev[i]? Byte
 * equality decides at once; when the caller asked for "the latest" type
 * version, the stored one may be older (the registry moved on since), so
 * the fields are compared without it.
 */
static bool same_event(const evs__req *q, size_t i, const MDB_val *rec)
{
	const slot *sl = &q->ev[i];
	const uint8_t *tail = (const uint8_t *)q->tails.ptr + sl->off;
	evs_event a, b;
	uint8_t *full;
	bool same;

	if (rec->mv_size == EVS__RECORD_HEAD + sl->len &&
	    memcmp((const uint8_t *)rec->mv_data + EVS__RECORD_HEAD, tail, sl->len) == 0)
		return true;
	if (!sl->latest || (full = malloc(EVS__RECORD_HEAD + sl->len)) == NULL)
		return false;
	memcpy(full, rec->mv_data, EVS__RECORD_HEAD);
	memcpy(full + EVS__RECORD_HEAD, tail, sl->len);
	same = evs__record_decode(rec->mv_data, rec->mv_size, 0, &a) &&
	       evs__record_decode(full, EVS__RECORD_HEAD + sl->len, 0, &b) &&
	       a.stream.len == b.stream.len && !memcmp(a.stream.ptr, b.stream.ptr, a.stream.len) &&
	       a.type.len == b.type.len && !memcmp(a.type.ptr, b.type.ptr, a.type.len) &&
	       a.occurred_at == b.occurred_at && !memcmp(a.correlation_id, b.correlation_id, 16) &&
	       !memcmp(a.causation_id, b.causation_id, 16) && a.data_len == b.data_len &&
	       !memcmp(a.data, b.data, a.data_len) && a.metadata_len == b.metadata_len &&
	       !memcmp(a.metadata, b.metadata, a.metadata_len);
	free(full);
	return same;
}

/*
 * Is the batch a retry of one already stored? Sets q's outcome and returns
 * true when the ids decide it (retry or conflict); false to append.
 * Returns an LMDB code through *mrc on failure.
 */
static bool stored_before(evs_store *s, MDB_txn *txn, evs__req *q, int *mrc)
{
	uint64_t first = 0, version0 = 0;
	size_t found = 0;
	char t[37];

	*mrc = 0;
	for (size_t i = 0; i < q->n; i++) {
		MDB_val k = {16, q->ev[i].id}, v;
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
		uint64_t version = rec.mv_size >= EVS__RECORD_HEAD ? evs__get_u64(r + 12) : 0;
		if (found == 0) {
			first = pos - i;
			version0 = version - i;
		}
		found++;
		if (found != i + 1 || pos != first + i || version != version0 + i ||
		    !same_event(q, i, &rec)) {
			id_text(q->ev[i].id, t);
			outcome(q, EVS_ID_CONFLICT,
				"event %zu: id %s is already stored at position %llu %s", i, t,
				(unsigned long long)pos,
				found != i + 1 ? "but earlier events of the batch are not"
					       : "with other content or in another batch");
			return true;
		}
	}
	if (found == 0)
		return false;
	if (found != q->n) {
		id_text(q->ev[found].id, t);
		outcome(q, EVS_ID_CONFLICT,
			"event %zu: id %s is not stored but earlier events of the batch are", found,
			t);
		return true;
	}
	q->rc = EVS_OK;
	q->res.first_position = first;
	q->res.last_position = first + q->n - 1;
	q->res.version = version0 + q->n - 1;
	q->res.idempotent = 1;
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

/* Apply one request inside the group's transaction. Returns an LMDB code
 * for failures that undo the group; outcomes go into q. */
static int apply(evs_store *s, MDB_txn *txn, evs__req *q, uint64_t *last_pos, int64_t recorded_at,
		 uint64_t *new_streams)
{
	uint64_t cur = 0, pos;
	int rc;

	if (stored_before(s, txn, q, &rc))
		return rc;
	if (q->schema_rc) {
		outcome(q, q->schema_rc, "%s", q->schema_msg);
		return 0;
	}
	rc = evs__stream_head_txn(s, txn, q->stream, q->stream_len, &cur, &pos);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	bool match = q->expected == EVS_ANY ||
		     (q->expected == EVS_STREAM_EXISTS ? cur > 0 : cur == q->expected);
	if (!match) {
		char b[32];
		outcome(q, EVS_WRONG_VERSION,
			"stream \"%s\": expected version %s, actual version %llu", q->stream,
			expected_text(q->expected, b, sizeof b), (unsigned long long)cur);
		q->res.version = cur;
		return 0;
	}

	q->res.first_position = *last_pos + 1;
	for (size_t i = 0; i < q->n; i++) {
		uint8_t pk[8];
		uint64_t version = cur + 1 + i;
		MDB_val k = {8, pk}, v = {EVS__RECORD_HEAD + q->ev[i].len, NULL};

		pos = ++*last_pos;
		evs__put_u64(pk, pos);
		if ((rc = mdb_put(txn, s->events, &k, &v, MDB_APPEND | MDB_RESERVE)) != 0)
			return rc;
		evs__record_head(v.mv_data, recorded_at, version);
		memcpy((uint8_t *)v.mv_data + EVS__RECORD_HEAD, q->tails.ptr + q->ev[i].off,
		       q->ev[i].len);

		if ((rc = evs__sx_put(s, txn, q->stream, q->stream_len, version, pos)) != 0)
			return rc;

		MDB_val ik = {16, q->ev[i].id}, iv = {8, pk};
		if ((rc = mdb_put(txn, s->ids, &ik, &iv, MDB_NOOVERWRITE)) != 0)
			return rc == MDB_KEYEXIST ? MDB_CORRUPTED : rc;
	}
	if (cur == 0)
		(*new_streams)++;
	q->rc = EVS_OK;
	q->res.last_position = *last_pos;
	q->res.version = cur + q->n;
	q->res.idempotent = 0;
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

/* Add to the stream count kept in "meta". */
static int count_streams(evs_store *s, MDB_txn *txn, uint64_t added)
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
static int try_group(evs_store *s, evs__req *group, bool *wrote, int *ecode)
{
	MDB_txn *txn;
	uint64_t last_pos, start_pos, last_rec, unused, new_streams = 0;
	int rc;

	*wrote = false;
	*ecode = 0;
	if ((rc = evs__write_begin(s, &txn)) != EVS_OK) {
		*ecode = rc;
		return -1;
	}
	if ((rc = last_key_u64(txn, s->events, &last_pos, NULL)) != 0 ||
	    (rc = last_key_u64(txn, s->time, &last_rec, &unused)) != 0)
		goto abort;
	start_pos = last_pos;
	int64_t now = evs__now_ns();
	int64_t recorded_at = now > (int64_t)last_rec ? now : (int64_t)last_rec + 1;

	for (evs__req *q = group; q; q = q->next) {
		q->rc = EVS_OK;
		q->msg[0] = 0;
		memset(&q->res, 0, sizeof q->res);
		if ((rc = apply(s, txn, q, &last_pos, recorded_at, &new_streams)) != 0)
			goto abort;
	}
	if (last_pos != start_pos) {
		uint8_t tk[8], tv[8];
		MDB_val k = {8, tk}, v = {8, tv};
		evs__put_u64(tk, (uint64_t)recorded_at);
		evs__put_u64(tv, last_pos);
		if ((rc = mdb_put(txn, s->time, &k, &v, MDB_APPEND)) != 0)
			goto abort;
		if (new_streams && (rc = count_streams(s, txn, new_streams)) != 0)
			goto abort;
		rc = evs__write_commit(s, txn);
		if (rc == 0)
			*wrote = true;
		return rc;
	}
	/* nothing to write (all refused or retries): no sync needed */
abort:
	evs__read_end(s, txn);
	return rc;
}

/* Apply and commit the group; true if it wrote anything. */
static bool run_group(evs_store *s, evs__req *group)
{
	bool wrote = false;
	int rc, code;

	for (;;) {
		rc = try_group(s, group, &wrote, &code);
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
	return wrote;
}

/* Take queued requests up to EVS_GROUP_BYTES (at least one). gc_mu held. */
static evs__req *take_group(evs__core *c)
{
	evs__req *head = c->queue_head, *q = head, *last = head;
	size_t bytes = 0;

	while (q && (q == head || bytes + q->tails.len <= EVS_GROUP_BYTES)) {
		bytes += q->tails.len;
		q->taken = true;
		last = q;
		q = q->next;
	}
	c->queue_head = q;
	if (q == NULL)
		c->queue_tail = NULL;
	for (evs__req *g = head; g != q; g = g->next)
		c->queued--;
	last->next = NULL;
	return head;
}

/*
 * Before taking the queue, a new leader waits while other callers are
 * still on their way in (inside evs_append() but not queued yet: the
 * previous group's callers coming back with their next batch, or callers
 * still encoding). Without this the appenders split into two cohorts that
 * alternate, each half as large as the crowd, and pay twice the syncs. The
 * wait ends as soon as everyone inside is queued, and lasts at most half a
 * recent commit (PostgreSQL's commit_delay, made adaptive). A lone caller
 * never waits.
 */
static void gather(evs__core *c)
{
	struct timespec dl;
	int64_t wait_ns;

	if (c->queued >= __atomic_load_n(&c->appenders, __ATOMIC_ACQUIRE))
		return;
	wait_ns = c->commit_ns / 2;
	if (wait_ns < 20000)
		wait_ns = 20000;
	if (wait_ns > 2000000)
		wait_ns = 2000000;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += (dl.tv_nsec + wait_ns) / 1000000000;
	dl.tv_nsec = (dl.tv_nsec + wait_ns) % 1000000000;
	c->gathering = true;
	while (c->queued < __atomic_load_n(&c->appenders, __ATOMIC_ACQUIRE))
		if (pthread_cond_timedwait(&c->gather_cv, &c->gc_mu, &dl) != 0)
			break;
	c->gathering = false;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int evs_append(evs_store *s, const char *stream, uint64_t expected, const evs_event_in *events,
	       size_t n, evs_append_result *result)
{
	evs__req q;
	evs__core *c;
	int rc;

	memset(&q, 0, sizeof q);
	if (result)
		memset(result, 0, sizeof *result);
	if (s == NULL)
		return EVS_INVALID;
	c = s->core;
	if (s->opts.read_only)
		return evs__fail(s, EVS_READONLY, "store \"%s\" is open read-only", s->path);
	/* Refused every time, not only when the map must grow: then the
	 * mistake shows in the first test run, and never makes a whole commit
	 * group fail or wait. */
	if (evs__thread_reads(s))
		return evs__fail(s, EVS_BUSY,
				 "this thread holds an open iterator on store \"%s\": free it "
				 "before appending",
				 s->path);
	__atomic_add_fetch(&c->appenders, 1, __ATOMIC_RELEASE);
	if ((rc = prepare(s, &q, stream, expected, events, n)) != EVS_OK)
		goto out;

	/*
	 * Each caller sleeps on its own condition variable, so a commit wakes
	 * exactly the callers it answered plus the next leader: with 64
	 * appenders on 2 cores, waking everyone per commit would cost more
	 * CPU than the sync it shares.
	 */
	pthread_cond_init(&q.cv, NULL);
	pthread_mutex_lock(&c->gc_mu);
	if (c->queue_tail)
		c->queue_tail->next = &q;
	else
		c->queue_head = &q;
	c->queue_tail = &q;
	c->queued++;
	if (c->gathering)
		pthread_cond_signal(&c->gather_cv);
	while (!q.done) {
		/* taken but not done: another leader is committing our request */
		if (!c->leader_active && !q.taken) {
			c->leader_active = true;
			gather(c);
			evs__req *group = take_group(c);
			pthread_mutex_unlock(&c->gc_mu);
			int64_t t0 = mono_ns();
			bool wrote = run_group(s, group);
			if (wrote)
				evs__notify_wake(&s->notify);
			pthread_mutex_lock(&c->gc_mu);
			if (wrote)
				c->commit_ns += (mono_ns() - t0 - c->commit_ns) / 8;
			for (evs__req *g = group, *next; g; g = next) {
				next = g->next; /* g may return and vanish once done */
				g->done = true;
				if (g != &q)
					pthread_cond_signal(&g->cv);
			}
			c->leader_active = false;
			if (c->queue_head) /* gathered meanwhile: it leads next */
				pthread_cond_signal(&c->queue_head->cv);
			continue;
		}
		pthread_cond_wait(&q.cv, &c->gc_mu);
	}
	pthread_mutex_unlock(&c->gc_mu);
	pthread_cond_destroy(&q.cv);

	rc = q.rc;
	if (result)
		*result = q.res;
	if (rc != EVS_OK)
		evs__fail_msg(s, rc, q.msg);
out:
	__atomic_sub_fetch(&c->appenders, 1, __ATOMIC_RELEASE);
	free(q.schema_msg);
	free(q.type_versions);
	free(q.ev);
	evs__buf_free(&q.tails);
	return rc;
}
