/*
 * projector.c - follow the store and apply batches to PostgreSQL.
 *
 * One batch is one PostgreSQL transaction:
 *
 *     BEGIN
 *     COPY evs.events FROM STDIN                  (built-in: event log)
 *     SELECT current states of the batch's streams
 *     fold each stream's events in memory (evs_merge_patch), then
 *       COPY evs.state_history FROM STDIN         (one row per event)
 *       UPDATE evs.state_history: close the open interval of each stream
 *       INSERT .. ON CONFLICT evs.state           (one row per stream)
 *     declared rules, event by event (SAVEPOINT per event when failing
 *       events are parked in evs.dead_letters)
 *     UPDATE evs.checkpoints SET position = last WHERE position = first - 1
 *     COMMIT
 *
 * The checkpoint update names the position it expects, so a batch can
 * only ever follow the committed checkpoint: after any crash the next run
 * starts from what was committed, with no gap and no duplicate. While the
 * projector runs it holds a session advisory lock on its projection name.
 *
 * Started far behind, the projector loads in bulk mode: the built-in
 * models' secondary indexes dropped, rebuilt once caught up (see "Bulk
 * mode" below).
 *
 * PostgreSQL going away is ordinary: the batch is rolled back (by the
 * server), the connection is dropped, the projector reconnects with
 * exponential backoff (100 ms doubling to retry_max_ms) and resumes from
 * the committed checkpoint.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"

#define LOCK_CLASS 0x65767370 /* "evsp": advisory lock (class, hashtext(name)) */

struct run {
	const evp_config *cfg;
	evs_store *store;
	evp_rules *rules;
	PGconn *conn;
	const char *name;      /* checkpoint and lock name */
	const char *live_name; /* the projection's own name (differs when rebuilding) */
	char rebuild_name[EVS_MAX_NAME + 16];
	bool builtin;
	int64_t collect_us; /* time the last collect() took */
	uint64_t checkpoint;
	bool bulk;            /* loading with the secondary indexes dropped */
	uint64_t bulk_target; /* ... until the checkpoint reaches this */
	evp_stats *stats;
	char *err;
	size_t errlen;
	struct evp__batch batch;
	evs__buf copy, a1, a2, a3, a4, a5; /* reused buffers */
};

static void logm(const struct run *r, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logm(const struct run *r, int level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (!r->cfg->log || level > r->cfg->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	r->cfg->log(r->cfg->log_ctx, level, msg);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool stopping(const struct run *r)
{
	return r->cfg->stop && *r->cfg->stop;
}

/* Sleep ms in short slices, returning early when asked to stop. */
static void nap(const struct run *r, int ms)
{
	while (ms > 0 && !stopping(r)) {
		int slice = ms < 50 ? ms : 50;
		struct timespec ts = {0, (long)slice * 1000000L};

		nanosleep(&ts, NULL);
		ms -= slice;
	}
}

void evp_config_init(evp_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->builtin = true;
	cfg->builtin_state = true;
	cfg->batch_max = 10000;
	cfg->batch_wait_ms = 0;
	cfg->retry_max_ms = 5000;
	cfg->bulk_threshold = 100000;
	cfg->log_level = EVP_LOG_INFO;
}

const char *evp_strerror(int code)
{
	switch (code) {
#define EVP__STR(name, value, text) \
	case value: return text;
		EVP_ERRNO_MAP(EVP__STR)
#undef EVP__STR
	}
	return "unknown error";
}

/* ---------------------------------------------------------------------
 * Errors from libpq
 * ------------------------------------------------------------------- */

static int pg_fail(struct run *r, PGresult *res, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int pg_fail(struct run *r, PGresult *res, const char *fmt, ...)
{
	const char *msg = res ? PQresultErrorMessage(res) : "";
	char what[512];
	size_t l;
	va_list ap;
	int rc;

	if (!msg[0])
		msg = PQerrorMessage(r->conn);
	l = strlen(msg);
	while (l > 0 && msg[l - 1] == '\n')
		l--;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(r->err, r->errlen, "%s: %.*s", what, (int)l, msg);
	rc = evp_retryable(r->conn, res) ? EVP_CONNECT : EVP_SQL;
	PQclear(res);
	return rc;
}

static int exec_cmd(struct run *r, const char *sql)
{
	PGresult *res = PQexec(r->conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return pg_fail(r, res, "could not run \"%s\"", sql);
	PQclear(res);
	return EVP_OK;
}

/* ---------------------------------------------------------------------
 * Batches
 * ------------------------------------------------------------------- */

static void batch_clear(struct evp__batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		struct evp__event *e = &b->events[i];

		free((void *)e->ev.stream.ptr);
		free((void *)e->ev.type.ptr);
		free((void *)e->ev.data);
		free((void *)e->ev.metadata);
		free(e->data_json);
		free(e->meta_json);
	}
	b->n = 0;
}

static void *dup_bytes(const void *p, size_t n)
{
	void *q = malloc(n ? n : 1);

	if (q && n)
		memcpy(q, p, n);
	return q;
}

static char *to_json(const void *p, size_t n, size_t *len)
{
	evs__buf b = {0};

	if (evp_msgpack_to_json(&b, p, n) < 0 || !evs__buf_cstr(&b)) {
		evs__buf_free(&b);
		return NULL;
	}
	*len = b.len;
	return b.ptr;
}

static int batch_add(struct run *r, const evs_event *ev)
{
	struct evp__batch *b = &r->batch;
	struct evp__event *e;

	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		struct evp__event *p = realloc(b->events, cap * sizeof *p);

		if (!p)
			goto oom;
		b->events = p;
		b->cap = cap;
	}
	e = &b->events[b->n];
	memset(e, 0, sizeof *e);
	e->ev = *ev;
	e->ev.stream.ptr = dup_bytes(ev->stream.ptr, ev->stream.len);
	e->ev.type.ptr = dup_bytes(ev->type.ptr, ev->type.len);
	e->ev.data = dup_bytes(ev->data, ev->data_len);
	e->ev.metadata = dup_bytes(ev->metadata, ev->metadata_len);
	b->n++;
	if (!e->ev.stream.ptr || !e->ev.type.ptr || !e->ev.data || !e->ev.metadata)
		goto oom;
	return EVP_OK;
oom:
	snprintf(r->err, r->errlen, "out of memory");
	return EVP_NOMEM;
}

/* The payloads as JSON, converted when first needed (while a COPY is
 * streaming, so that PostgreSQL works on earlier rows meanwhile). */
static int ensure_json(struct run *r, struct evp__event *e)
{
	if (!e->data_json)
		e->data_json = to_json(e->ev.data, e->ev.data_len, &e->data_json_len);
	if (!e->meta_json)
		e->meta_json = to_json(e->ev.metadata, e->ev.metadata_len, &e->meta_json_len);
	if (!e->data_json || !e->meta_json) {
		snprintf(r->err, r->errlen, "event at position %llu has a malformed payload",
			 (unsigned long long)e->ev.position);
		return EVP_STORE;
	}
	return EVP_OK;
}

/* ---------------------------------------------------------------------
 * Built-in read models
 * ------------------------------------------------------------------- */

/* Bytes handed to libpq at a time. Small, so that PostgreSQL starts on a
 * batch's rows early and has little left when the last ones are sent:
 * 1M events, bench_projector, without bulk mode, event log 5.6 s with
 * 256 KB, 3.6 s with 32 KB; all built-in models 13.2 s and 9.0 s. */
#define COPY_CHUNK (32 * 1024)

static int copy_begin(struct run *r, const char *sql)
{
	PGresult *res = PQexec(r->conn, sql);

	if (PQresultStatus(res) != PGRES_COPY_IN)
		return pg_fail(r, res, "could not start \"%s\"", sql);
	PQclear(res);
	return EVP_OK;
}

/* Send what rows holds when it is large (or when `all`), and empty it. */
static int copy_flush(struct run *r, evs__buf *rows, bool all)
{
	if (rows->oom) {
		snprintf(r->err, r->errlen, "out of memory");
		return EVP_NOMEM;
	}
	if (rows->len == 0 || (!all && rows->len < COPY_CHUNK))
		return EVP_OK;
	if (PQputCopyData(r->conn, rows->ptr, (int)rows->len) != 1)
		return pg_fail(r, NULL, "could not send COPY data");
	rows->len = 0;
	return EVP_OK;
}

static int copy_end(struct run *r, evs__buf *rows, const char *what)
{
	PGresult *res;
	int rc = copy_flush(r, rows, true);

	if (rc == EVP_NOMEM) {
		PQputCopyEnd(r->conn, "out of memory");
		while ((res = PQgetResult(r->conn)))
			PQclear(res);
		return rc;
	}
	if (rc)
		return rc;
	if (PQputCopyEnd(r->conn, NULL) != 1)
		return pg_fail(r, NULL, "could not end COPY");
	res = PQgetResult(r->conn);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = pg_fail(r, res, "%s failed", what);
		while ((res = PQgetResult(r->conn)))
			PQclear(res);
		return rc;
	}
	PQclear(res);
	while ((res = PQgetResult(r->conn)))
		PQclear(res);
	return EVP_OK;
}

static void bin_uuid(evs__buf *b, const uint8_t id[16])
{
	if (evp_uuid_is_nil(id))
		evp_bin_null(b);
	else
		evp_bin_bytes(b, id, 16);
}

/* The event log: one binary COPY, streamed while the rows are made. */
static int write_event_log(struct run *r)
{
	evs__buf *b = &r->copy;
	size_t i;
	int rc;

	b->len = 0;
	rc = copy_begin(r, "COPY evs.events (position, stream, version, type, type_version,"
			   " recorded_at, recorded_at_ns, occurred_at, event_id, correlation_id,"
			   " causation_id, metadata, data) FROM STDIN (FORMAT binary)");
	if (rc)
		return rc;
	evp_bin_header(b);
	for (i = 0; i < r->batch.n; i++) {
		struct evp__event *e = &r->batch.events[i];
		const evs_event *ev = &e->ev;

		if ((rc = ensure_json(r, e))) {
			PQputCopyEnd(r->conn, "malformed payload");
			return rc;
		}
		evp_bin_row(b, 13);
		evp_bin_i64(b, (int64_t)ev->position);
		evp_bin_bytes(b, ev->stream.ptr, ev->stream.len);
		evp_bin_i64(b, (int64_t)ev->version);
		evp_bin_bytes(b, ev->type.ptr, ev->type.len);
		evp_bin_i64(b, (int64_t)ev->type_version);
		evp_bin_time(b, ev->recorded_at);
		evp_bin_i64(b, ev->recorded_at);
		if (ev->occurred_at)
			evp_bin_time(b, ev->occurred_at);
		else
			evp_bin_null(b);
		evp_bin_bytes(b, ev->id, 16);
		bin_uuid(b, ev->correlation_id);
		bin_uuid(b, ev->causation_id);
		evp_bin_jsonb(b, e->meta_json, e->meta_json_len);
		evp_bin_jsonb(b, e->data_json, e->data_json_len);
		if ((rc = copy_flush(r, b, false)))
			return rc;
	}
	evp_bin_trailer(b);
	return copy_end(r, b, "COPY evs.events");
}

static int cmp_stream(const evs_str *a, const evs_str *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->ptr, b->ptr, n);

	if (c)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

static const struct evp__event *sort_base;

static int cmp_idx(const void *x, const void *y)
{
	const evs_event *a = &sort_base[*(const size_t *)x].ev;
	const evs_event *b = &sort_base[*(const size_t *)y].ev;
	int c = cmp_stream(&a->stream, &b->stream);

	if (c)
		return c;
	return (a->position > b->position) - (a->position < b->position);
}

static void array_begin(evs__buf *b)
{
	b->len = 0;
	evs__buf_putc(b, '{');
}

static void array_sep(evs__buf *b)
{
	if (b->len > 1)
		evs__buf_putc(b, ',');
}

static void array_end(evs__buf *b)
{
	evs__buf_putc(b, '}');
	evs__buf_cstr(b);
}

static int write_states(struct run *r)
{
	size_t n = r->batch.n, i, g, nstreams = 0, row = 0, nrows;
	size_t *idx = malloc(n * sizeof *idx);
	PGresult *res = NULL;
	evs__buf *streams = &r->a1, *hist = &r->copy;
	evs__buf st_stream = {0}, st_data = {0}, st_ver = {0}, st_pos = {0}, st_time = {0};
	evs__buf cl_stream = {0}, cl_ver = {0}, cl_time = {0}, cl_from = {0};
	evs_state cur = {0};
	int rc = EVP_OK;

	if (!idx) {
		snprintf(r->err, r->errlen, "out of memory");
		return EVP_NOMEM;
	}
	for (i = 0; i < n; i++)
		idx[i] = i;
	/* qsort has no context argument in C11: the base is set just before */
	sort_base = r->batch.events;
	qsort(idx, n, sizeof *idx, cmp_idx);

	array_begin(streams);
	for (i = 0; i < n; i++) {
		const evs_str *s = &r->batch.events[idx[i]].ev.stream;

		if (i > 0 && cmp_stream(s, &r->batch.events[idx[i - 1]].ev.stream) == 0)
			continue;
		array_sep(streams);
		evp_array_elem(streams, s->ptr, s->len);
		nstreams++;
	}
	array_end(streams);
	{
		const char *vals[1] = {streams->ptr};

		res = PQexecParams(r->conn,
				   "SELECT stream, data::text, version, updated_at FROM evs.state"
				   " WHERE stream = ANY ($1::text[]) ORDER BY stream COLLATE \"C\"",
				   1, NULL, vals, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = pg_fail(r, res, "could not read current states");
			res = NULL;
			goto out;
		}
	}
	nrows = (size_t)PQntuples(res);

	/* history rows stream to the server while the fold goes on */
	hist->len = 0;
	rc = copy_begin(r,
			"COPY evs.state_history (stream, version, position, valid_from, valid_to,"
			" data) FROM STDIN (FORMAT binary)");
	if (rc)
		goto out;
	evp_bin_header(hist);
	array_begin(&st_stream);
	array_begin(&st_data);
	array_begin(&st_ver);
	array_begin(&st_pos);
	array_begin(&st_time);
	array_begin(&cl_stream);
	array_begin(&cl_ver);
	array_begin(&cl_time);
	array_begin(&cl_from);
	for (g = 0; g < n;) {
		const evs_event *first = &r->batch.events[idx[g]].ev;
		size_t end = g + 1, k;
		uint64_t prior_version = 0;
		evs_str rs;

		while (end < n &&
		       cmp_stream(&r->batch.events[idx[end]].ev.stream, &first->stream) == 0)
			end++;
		/* the stored state of this stream, if any (rows in byte order) */
		evs_state_free(&cur);
		while (row < nrows) {
			rs.ptr = PQgetvalue(res, (int)row, 0);
			rs.len = (size_t)PQgetlength(res, (int)row, 0);
			if (cmp_stream(&rs, &first->stream) >= 0)
				break;
			row++;
		}
		if (row < nrows && cmp_stream(&rs, &first->stream) == 0) {
			evs__buf mp = {0};

			if (evp_json_to_msgpack(PQgetvalue(res, (int)row, 1),
						(size_t)PQgetlength(res, (int)row, 1), &mp) < 0) {
				evs__buf_free(&mp);
				snprintf(r->err, r->errlen,
					 "could not read the stored state of stream \"%.*s\"",
					 (int)first->stream.len, first->stream.ptr);
				rc = EVP_SQL;
				goto out;
			}
			cur.data = mp.ptr;
			cur.len = mp.len;
			prior_version = strtoull(PQgetvalue(res, (int)row, 2), NULL, 10);
		}
		if (prior_version >= first->version) {
			snprintf(r->err, r->errlen,
				 "stored state of stream \"%.*s\" is at version %llu, the batch "
				 "starts at %llu",
				 (int)first->stream.len, first->stream.ptr,
				 (unsigned long long)prior_version,
				 (unsigned long long)first->version);
			rc = EVP_SQL;
			goto out;
		}
		if (prior_version > 0) {
			array_sep(&cl_stream);
			evp_array_elem(&cl_stream, first->stream.ptr, first->stream.len);
			array_sep(&cl_ver);
			evs__buf_printf(&cl_ver, "%llu", (unsigned long long)prior_version);
			array_sep(&cl_time);
			evs__buf_putc(&cl_time, '"');
			evp_time_text(&cl_time, first->recorded_at);
			evs__buf_putc(&cl_time, '"');
			array_sep(&cl_from);
			evp_array_elem(&cl_from, PQgetvalue(res, (int)row, 3),
				       (size_t)PQgetlength(res, (int)row, 3));
		}
		for (k = g; k < end; k++) {
			const evs_event *ev = &r->batch.events[idx[k]].ev;
			evs_state next = {0};
			int mrc = evs_merge_patch(cur.data, cur.len, ev->data, ev->data_len, &next);

			if (mrc != EVS_OK) {
				snprintf(r->err, r->errlen,
					 "could not fold event at position %llu: %s",
					 (unsigned long long)ev->position, evs_strerror(mrc));
				rc = mrc == EVS_NOMEM ? EVP_NOMEM : EVP_STORE;
				goto out;
			}
			evs_state_free(&cur);
			cur = next;
			r->a2.len = 0;
			if (evp_msgpack_to_json(&r->a2, cur.data, cur.len) < 0) {
				snprintf(r->err, r->errlen,
					 "could not convert the state of \"%.*s\"",
					 (int)ev->stream.len, ev->stream.ptr);
				rc = EVP_STORE;
				PQputCopyEnd(r->conn, "bad state");
				goto out;
			}
			evp_bin_row(hist, 6);
			evp_bin_bytes(hist, ev->stream.ptr, ev->stream.len);
			evp_bin_i64(hist, (int64_t)ev->version);
			evp_bin_i64(hist, (int64_t)ev->position);
			evp_bin_time(hist, ev->recorded_at);
			if (k + 1 < end)
				evp_bin_time(hist, r->batch.events[idx[k + 1]].ev.recorded_at);
			else
				evp_bin_null(hist);
			evp_bin_jsonb(hist, r->a2.ptr, r->a2.len);
			if ((rc = copy_flush(r, hist, false)))
				goto out;
			if (k + 1 == end) {
				array_sep(&st_stream);
				evp_array_elem(&st_stream, ev->stream.ptr, ev->stream.len);
				array_sep(&st_data);
				evp_array_elem(&st_data, r->a2.ptr, r->a2.len);
				array_sep(&st_ver);
				evs__buf_printf(&st_ver, "%llu", (unsigned long long)ev->version);
				array_sep(&st_pos);
				evs__buf_printf(&st_pos, "%llu", (unsigned long long)ev->position);
				array_sep(&st_time);
				evs__buf_putc(&st_time, '"');
				evp_time_text(&st_time, ev->recorded_at);
				evs__buf_putc(&st_time, '"');
			}
		}
		g = end;
	}
	array_end(&st_stream);
	array_end(&st_data);
	array_end(&st_ver);
	array_end(&st_pos);
	array_end(&st_time);
	array_end(&cl_stream);
	array_end(&cl_ver);
	array_end(&cl_time);
	array_end(&cl_from);
	if (cl_from.oom || st_stream.oom || st_data.oom || st_ver.oom || st_pos.oom ||
	    st_time.oom || cl_stream.oom || cl_ver.oom || cl_time.oom || r->a2.oom) {
		snprintf(r->err, r->errlen, "out of memory");
		rc = EVP_NOMEM;
		goto out;
	}
	PQclear(res);
	res = NULL;
	evp_bin_trailer(hist);
	if ((rc = copy_end(r, hist, "COPY evs.state_history")))
		goto out;

	if (cl_stream.len > 2) {
		const char *vals[4] = {cl_stream.ptr, cl_ver.ptr, cl_time.ptr, cl_from.ptr};

		/* the open row of a stream starts at its state's updated_at: an
		 * exact lookup in the (stream, valid_from, version) key, or in
		 * bulk mode in the partial index of open rows (hence the
		 * valid_to IS NULL, true of that row anyway) */
		res = PQexecParams(
			r->conn,
			"UPDATE evs.state_history h SET valid_to = u.t"
			" FROM unnest($1::text[], $2::bigint[], $3::timestamptz[],"
			" $4::timestamptz[]) AS u(s, v, t, f)"
			" WHERE h.stream = u.s AND h.valid_from = u.f AND h.version = u.v"
			" AND h.valid_to IS NULL",
			4, NULL, vals, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			rc = pg_fail(r, res, "could not close state history intervals");
			res = NULL;
			goto out;
		}
		PQclear(res);
		res = NULL;
	}

	{
		const char *vals[5] = {st_stream.ptr, st_data.ptr, st_ver.ptr, st_pos.ptr,
				       st_time.ptr};

		res = PQexecParams(
			r->conn,
			"INSERT INTO evs.state (stream, data, version, position, updated_at)"
			" SELECT * FROM unnest($1::text[], $2::jsonb[], $3::bigint[], $4::bigint[],"
			" $5::timestamptz[])"
			" ON CONFLICT (stream) DO UPDATE SET data = excluded.data,"
			" version = excluded.version, position = excluded.position,"
			" updated_at = excluded.updated_at",
			5, NULL, vals, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			rc = pg_fail(r, res, "could not write current states");
			res = NULL;
			goto out;
		}
	}
	(void)nstreams;
out:
	PQclear(res);
	evs_state_free(&cur);
	evs__buf_free(&st_stream);
	evs__buf_free(&st_data);
	evs__buf_free(&st_ver);
	evs__buf_free(&st_pos);
	evs__buf_free(&st_time);
	evs__buf_free(&cl_stream);
	evs__buf_free(&cl_ver);
	evs__buf_free(&cl_time);
	evs__buf_free(&cl_from);
	free(idx);
	return rc;
}

/* ---------------------------------------------------------------------
 * Declared rules, with dead letters
 * ------------------------------------------------------------------- */

static int park(struct run *r, struct evp__event *e, const char *sqlstate, const char *msg)
{
	evs__buf *b = &r->a3;
	char pos[24];
	const char *vals[7];
	PGresult *res;

	if (ensure_json(r, e))
		return EVP_STORE;
	b->len = 0;
	evs__buf_printf(b, "{\"position\":%llu,\"version\":%llu,\"type_version\":%u,\"data\":",
		       (unsigned long long)e->ev.position, (unsigned long long)e->ev.version,
		       e->ev.type_version);
	evs__buf_putn(b, e->data_json, e->data_json_len);
	evs__buf_puts(b, ",\"metadata\":");
	evs__buf_putn(b, e->meta_json, e->meta_json_len);
	evs__buf_putc(b, '}');
	r->a4.len = 0;
	evs__buf_putn(&r->a4, e->ev.stream.ptr, e->ev.stream.len);
	r->a5.len = 0;
	evs__buf_putn(&r->a5, e->ev.type.ptr, e->ev.type.len);
	if (!evs__buf_cstr(b) || !evs__buf_cstr(&r->a4) || !evs__buf_cstr(&r->a5)) {
		snprintf(r->err, r->errlen, "out of memory");
		return EVP_NOMEM;
	}
	snprintf(pos, sizeof pos, "%llu", (unsigned long long)e->ev.position);
	vals[0] = r->name;
	vals[1] = pos;
	vals[2] = r->a4.ptr;
	vals[3] = r->a5.ptr;
	vals[4] = b->ptr;
	vals[5] = sqlstate[0] ? sqlstate : NULL;
	vals[6] = msg;
	res = PQexecParams(
		r->conn,
		"INSERT INTO evs.dead_letters (projection, position, stream, type, event,"
		" sqlstate, error) VALUES ($1, $2, $3, $4, $5, $6, $7)",
		7, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return pg_fail(r, res, "could not park event at position %s", pos);
	PQclear(res);
	return EVP_OK;
}

static int rule_failed(struct run *r, struct evp__event *e, const char *msg)
{
	if (ensure_json(r, e) == EVP_OK)
		snprintf(r->err, r->errlen,
			 "projection \"%s\" failed on event at position %llu (stream \"%.*s\","
			 " type \"%.*s\", data %.*s): %s",
			 r->name, (unsigned long long)e->ev.position, (int)e->ev.stream.len,
			 e->ev.stream.ptr, (int)e->ev.type.len, e->ev.type.ptr,
			 e->data_json_len > 200 ? 200 : (int)e->data_json_len, e->data_json, msg);
	return EVP_SQL;
}

static int write_rules(struct run *r, uint64_t *parked)
{
	size_t i;
	int rc;

	if (!r->cfg->dead_letter) {
		/* no savepoints needed: pipeline every statement of the batch */
		char msg[1024], sqlstate[8] = "";
		size_t failed = 0;

		rc = evp__rules_apply_many(r->rules, r->conn, r->batch.events, r->batch.n, &failed,
					   msg, sizeof msg, sqlstate, sizeof sqlstate);
		if (rc == EVP_SQL)
			return rule_failed(r, &r->batch.events[failed], msg);
		if (rc)
			snprintf(r->err, r->errlen, "%s", msg);
		return rc;
	}

	for (i = 0; i < r->batch.n; i++) {
		struct evp__event *e = &r->batch.events[i];
		char msg[1024], sqlstate[8] = "";

		if (!evp__rules_match(r->rules, &e->ev.type))
			continue;
		if (r->cfg->dead_letter && (rc = exec_cmd(r, "SAVEPOINT evs_event")))
			return rc;
		rc = evp__rules_apply(r->rules, r->conn, e, msg, sizeof msg, sqlstate,
				      sizeof sqlstate);
		if (rc == EVP_SQL && r->cfg->dead_letter) {
			logm(r, EVP_LOG_WARNING,
			     "parking event at position %llu (stream \"%.*s\", type \"%.*s\"): %s",
			     (unsigned long long)e->ev.position, (int)e->ev.stream.len,
			     e->ev.stream.ptr, (int)e->ev.type.len, e->ev.type.ptr, msg);
			if ((rc = exec_cmd(r, "ROLLBACK TO SAVEPOINT evs_event")))
				return rc;
			if ((rc = park(r, e, sqlstate, msg)))
				return rc;
			(*parked)++;
		} else if (rc == EVP_SQL) {
			return rule_failed(r, e, msg);
		} else if (rc) {
			snprintf(r->err, r->errlen, "%s", msg);
			return rc;
		}
		if (r->cfg->dead_letter && (rc = exec_cmd(r, "RELEASE SAVEPOINT evs_event")))
			return rc;
	}
	return EVP_OK;
}

/* ---------------------------------------------------------------------
 * One batch, one transaction
 * ------------------------------------------------------------------- */

static int apply_batch(struct run *r)
{
	const uint64_t first = r->batch.events[0].ev.position;
	const uint64_t last = r->batch.events[r->batch.n - 1].ev.position;
	char s_last[24], s_prev[24];
	const char *vals[3];
	uint64_t parked = 0;
	int64_t t_start = now_us();
	PGresult *res;
	int rc;

	if ((rc = exec_cmd(r, "BEGIN")))
		return rc;
	if (r->builtin) {
		if ((rc = write_event_log(r)) || (r->cfg->builtin_state && (rc = write_states(r))))
			goto fail;
	}
	if (r->rules && (rc = write_rules(r, &parked)))
		goto fail;
	snprintf(s_last, sizeof s_last, "%llu", (unsigned long long)last);
	snprintf(s_prev, sizeof s_prev, "%llu", (unsigned long long)r->checkpoint);
	vals[0] = r->name;
	vals[1] = s_last;
	vals[2] = s_prev;
	/* the same statement announces the checkpoint to LISTEN evs_checkpoint
	 * (evs-query's min_position waiters): delivered at COMMIT, never for a
	 * batch rolled back */
	res = PQexecParams(
		r->conn,
		"WITH u AS (UPDATE evs.checkpoints SET position = $2, updated_at = now()"
		" WHERE projection = $1 AND position = $3 RETURNING projection, position)"
		" SELECT pg_notify('evs_checkpoint', u.projection || ' ' || u.position)"
		" FROM u",
		3, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = pg_fail(r, res, "could not advance the checkpoint");
		goto fail;
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		snprintf(r->err, r->errlen,
			 "checkpoint of projection \"%s\" is no longer at position %s", r->name,
			 s_prev);
		rc = EVP_LOCKED;
		goto fail;
	}
	PQclear(res);
	if ((rc = exec_cmd(r, "COMMIT")))
		return rc;
	if (r->cfg->on_commit)
		r->cfg->on_commit(r->cfg->commit_ctx, first, last);
	r->checkpoint = last;
	r->stats->events += r->batch.n;
	r->stats->batches++;
	r->stats->checkpoint = last;
	r->stats->dead_letters += parked;
	logm(r, EVP_LOG_DEBUG,
	     "applied %zu events at positions %llu..%llu (read %.1f ms, write %.1f ms)", r->batch.n,
	     (unsigned long long)first, (unsigned long long)last, (double)r->collect_us / 1000.0,
	     (double)(now_us() - t_start) / 1000.0);
	return EVP_OK;
fail:
	if (PQstatus(r->conn) == CONNECTION_OK) {
		PGresult *x;

		/* a COPY left open by a failure in the middle is ended first */
		while ((x = PQgetResult(r->conn))) {
			if (PQresultStatus(x) == PGRES_COPY_IN)
				PQputCopyEnd(r->conn, "batch abandoned");
			PQclear(x);
		}
		PQclear(PQexec(r->conn, "ROLLBACK"));
	}
	return rc;
}

/* ---------------------------------------------------------------------
 * Connecting
 * ------------------------------------------------------------------- */

/* Run one SQL text with a quoted identifier substituted for each %s. */
static int exec_ident(struct run *r, const char *fmt, const char *a, const char *b)
{
	char *qa = PQescapeIdentifier(r->conn, a, strlen(a));
	char *qb = b ? PQescapeIdentifier(r->conn, b, strlen(b)) : NULL;
	char sql[1024];
	int rc;

	if (!qa || (b && !qb)) {
		PQfreemem(qa);
		PQfreemem(qb);
		return pg_fail(r, NULL, "could not quote an identifier");
	}
	snprintf(sql, sizeof sql, fmt, qa, qb ? qb : "");
	PQfreemem(qa);
	PQfreemem(qb);
	rc = exec_cmd(r, sql);
	return rc;
}

static void shadow_schema(const struct run *r, char *out, size_t n)
{
	snprintf(out, n, "%s__rebuild", evp_rules_schema(r->rules));
}

/* A fresh shadow schema with empty copies of the projection's tables. */
static int shadow_prepare(struct run *r)
{
	const char *schema = evp_rules_schema(r->rules), *p = evp_rules_tables(r->rules);
	const char *vals[1] = {r->name};
	char shadow[EVS_MAX_NAME + 16];
	PGresult *res;
	int rc;

	shadow_schema(r, shadow, sizeof shadow);
	if ((rc = exec_cmd(r, "BEGIN")) ||
	    (rc = exec_ident(r, "DROP SCHEMA IF EXISTS %s CASCADE", shadow, NULL)) ||
	    (rc = exec_ident(r, "CREATE SCHEMA %s", shadow, NULL)))
		goto fail;
	while (*p) {
		char table[EVS_MAX_NAME + 1], sql[2048];
		size_t len = strcspn(p, " \t"), dot;
		char *qs, *qt, *ql;

		if (len == 0) {
			p++;
			continue;
		}
		snprintf(table, sizeof table, "%.*s", (int)len, p);
		p += len;
		dot = strcspn(table, ".");
		qt = PQescapeIdentifier(r->conn, table[dot] ? table + dot + 1 : table,
					strlen(table[dot] ? table + dot + 1 : table));
		qs = PQescapeIdentifier(r->conn, shadow, strlen(shadow));
		ql = PQescapeIdentifier(r->conn, schema, strlen(schema));
		if (qt && qs && ql)
			snprintf(sql, sizeof sql, "CREATE TABLE %s.%s (LIKE %s.%s INCLUDING ALL)",
				 qs, qt, ql, qt);
		PQfreemem(qt);
		PQfreemem(qs);
		PQfreemem(ql);
		if (!qt || !qs || !ql) {
			rc = pg_fail(r, NULL, "could not quote an identifier");
			goto fail;
		}
		if ((rc = exec_cmd(r, sql)))
			goto fail;
	}
	if ((rc = exec_ident(r, "GRANT USAGE ON SCHEMA %s TO evs_analyst", shadow, NULL)) ||
	    (rc = exec_ident(r, "GRANT SELECT ON ALL TABLES IN SCHEMA %s TO evs_analyst", shadow,
			     NULL)))
		goto fail;
	res = PQexecParams(r->conn, "DELETE FROM evs.checkpoints WHERE projection = $1", 1, NULL,
			   vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = pg_fail(r, res, "could not reset the checkpoint of \"%s\"", r->name);
		goto fail;
	}
	PQclear(res);
	if ((rc = exec_cmd(r, "COMMIT")))
		return rc;
	logm(r, EVP_LOG_INFO, "rebuilding projection \"%s\" into schema \"%s\" from position 0",
	     r->live_name, shadow);
	return EVP_OK;
fail:
	if (PQstatus(r->conn) == CONNECTION_OK)
		PQclear(PQexec(r->conn, "ROLLBACK"));
	return rc;
}

static int session_setup(struct run *r, bool reconnecting)
{
	const char *vals[2];
	char cls[16];
	PGresult *res;
	int rc;

	if (r->cfg->migrations_dir) {
		evp_migrate_result mr;

		rc = evp_migrate(r->conn, r->cfg->migrations_dir, r->cfg->log, r->cfg->log_ctx, &mr,
				 r->err, r->errlen);
		if (rc)
			return rc;
	}
	snprintf(cls, sizeof cls, "%d", LOCK_CLASS);
	vals[0] = cls;
	vals[1] = r->name;
	res = PQexecParams(r->conn, "SELECT pg_try_advisory_lock($1::int, hashtext($2))", 2, NULL,
			   vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return pg_fail(r, res, "could not take the lock of projection \"%s\"", r->name);
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		PQclear(res);
		snprintf(r->err, r->errlen, "projection \"%s\" is already running elsewhere",
			 r->name);
		return EVP_LOCKED;
	}
	PQclear(res);
	/* the built-in models have one writer per database, whatever the
	 * projection's name: a second one would only collide on evs.events */
	if (r->builtin) {
		const char *bvals[2] = {cls, "evs built-in read models"};

		res = PQexecParams(r->conn, "SELECT pg_try_advisory_lock($1::int, hashtext($2))", 2,
				   NULL, bvals, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			return pg_fail(r, res,
				       "could not take the lock of the built-in read models");
		if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
			PQclear(res);
			snprintf(r->err, r->errlen,
				 "the built-in read models are written by another projection;"
				 " run this one without them (--builtin false)");
			return EVP_LOCKED;
		}
		PQclear(res);
	}
	if (r->cfg->rebuild && !reconnecting && (rc = shadow_prepare(r)))
		return rc;
	if (r->rules && evp_rules_schema(r->rules)) {
		char shadow[EVS_MAX_NAME + 16];

		shadow_schema(r, shadow, sizeof shadow);
		rc = exec_ident(r, "SET search_path = %s, public",
				r->cfg->rebuild ? shadow : evp_rules_schema(r->rules), NULL);
		if (rc)
			return rc;
	}
	if (r->rules && (rc = evp__rules_prepare(r->rules, r->conn, r->err, r->errlen)))
		return rc;
	res = PQexecParams(r->conn,
			   "INSERT INTO evs.checkpoints (projection) VALUES ($1)"
			   " ON CONFLICT (projection) DO NOTHING",
			   1, NULL, vals + 1, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return pg_fail(r, res, "could not create the checkpoint of \"%s\"", r->name);
	PQclear(res);
	res = PQexecParams(r->conn, "SELECT position FROM evs.checkpoints WHERE projection = $1", 1,
			   NULL, vals + 1, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return pg_fail(r, res, "could not read the checkpoint of \"%s\"", r->name);
	r->checkpoint = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	r->stats->checkpoint = r->checkpoint;
	PQclear(res);
	return EVP_OK;
}

static void on_notice(void *arg, const char *message)
{
	const struct run *r = arg;
	size_t l = strlen(message);

	while (l > 0 && message[l - 1] == '\n')
		l--;
	logm(r, EVP_LOG_WARNING, "server: %.*s", (int)l, message);
}

/* Connect, migrate, lock, read the checkpoint; retry with backoff while
 * the server is away. After a lost connection our old session may hold
 * the projection's lock a little longer (the server notices the dead
 * client late): then "locked" is retried too, for up to 30 s. */
static int connect_pg(struct run *r, bool reconnecting)
{
	int backoff = 100, rc;
	int64_t lock_deadline = now_ms() + 30000;

	for (;;) {
		if (stopping(r))
			return EVP_STOPPED;
		r->conn = PQconnectdb(r->cfg->dsn ? r->cfg->dsn : "");
		if (PQstatus(r->conn) == CONNECTION_OK) {
			PQsetNoticeProcessor(r->conn, on_notice, r);
			PQclear(PQexec(r->conn, "SET client_min_messages = warning"));
			rc = session_setup(r, reconnecting);
			if (rc == EVP_OK) {
				logm(r, EVP_LOG_INFO,
				     "projection \"%s\" connected, resuming after position %llu",
				     r->name, (unsigned long long)r->checkpoint);
				return EVP_OK;
			}
			if (rc != EVP_CONNECT &&
			    !(rc == EVP_LOCKED && reconnecting && now_ms() < lock_deadline))
				return rc;
		} else {
			const char *m = PQerrorMessage(r->conn);
			size_t l = strlen(m);

			while (l > 0 && m[l - 1] == '\n')
				l--;
			snprintf(r->err, r->errlen, "could not connect to the server: %.*s", (int)l,
				 m);
		}
		logm(r, EVP_LOG_WARNING, "%s; retrying in %d ms", r->err, backoff);
		PQfinish(r->conn);
		r->conn = NULL;
		r->stats->reconnects++;
		nap(r, backoff);
		backoff = backoff * 2 > r->cfg->retry_max_ms ? r->cfg->retry_max_ms : backoff * 2;
	}
}

/* ---------------------------------------------------------------------
 * Bulk mode
 *
 * From far behind, incremental btree inserts cost more than the rows
 * (evs.events alone: 0.51 of the COPY ceiling without its stream index,
 * 0.38 with it). Like pg_restore, bulk mode loads without the built-in
 * models' secondary indexes and builds them by sort once caught up:
 *
 *   begin, one transaction:
 *     CREATE INDEX state_history_bulk_open ON evs.state_history
 *       (stream, valid_from, version) WHERE valid_to IS NULL
 *                     (the open rows, which each batch closes: tiny)
 *     DROP INDEX evs.state_history_at, evs.events_stream
 *   batches as usual  (primary keys kept: position is a rightmost insert)
 *   end, before going live or returning (see bulk_end):
 *     CREATE INDEX IF NOT EXISTS events_stream, state_history_at
 *                     (the definitions of migrations 0002 and 0003;
 *                     the two side by side, each its own transaction)
 *     DROP INDEX IF EXISTS evs.state_history_bulk_open
 *
 * Entered at start when the checkpoint is cfg->bulk_threshold or more
 * events behind the head; ended when it reaches that head (the events
 * appended meanwhile are applied with the indexes). Each step commits
 * whole, so a crash leaves a known state: a start that finds an
 * index missing (or the partial one present) continues in bulk when still
 * far behind, and otherwise ends the bulk first. Readers get the same
 * answers meanwhile, slower (sequential scans instead of the stream and
 * state_at lookups). Stopped (SIGTERM) in bulk, the projector leaves the
 * indexes to its next start.
 * ------------------------------------------------------------------- */

static int bulk_missing(struct run *r, bool *missing)
{
	PGresult *res =
		PQexec(r->conn, "SELECT to_regclass('evs.events_stream') IS NULL"
				" OR to_regclass('evs.state_history_at') IS NULL"
				" OR to_regclass('evs.state_history_bulk_open') IS NOT NULL");

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return pg_fail(r, res, "could not look up the built-in read models' indexes");
	*missing = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return EVP_OK;
}

static int bulk_begin(struct run *r)
{
	int rc;

	if ((rc = exec_cmd(r, "BEGIN")) ||
	    (r->cfg->builtin_state &&
	     ((rc = exec_cmd(r, "CREATE INDEX IF NOT EXISTS state_history_bulk_open"
				" ON evs.state_history (stream, valid_from, version)"
				" WHERE valid_to IS NULL")) ||
	      (rc = exec_cmd(r, "DROP INDEX IF EXISTS evs.state_history_at")))) ||
	    (rc = exec_cmd(r, "DROP INDEX IF EXISTS evs.events_stream")) ||
	    (rc = exec_cmd(r, "COMMIT")))
		goto fail;
	r->bulk = true;
	logm(r, EVP_LOG_INFO,
	     "projection \"%s\" is %llu events behind: bulk load up to position %llu with the"
	     " built-in read models' secondary indexes dropped (queries by stream are slower"
	     " until they are rebuilt)",
	     r->name, (unsigned long long)(r->bulk_target - r->checkpoint),
	     (unsigned long long)r->bulk_target);
	return EVP_OK;
fail:
	if (PQstatus(r->conn) == CONNECTION_OK)
		PQclear(PQexec(r->conn, "ROLLBACK"));
	return rc;
}

/* The two index builds run side by side: state_history_at on a second
 * connection (its own transaction), events_stream on ours; the partial
 * index goes once both are in. Any subset of them committed is a state
 * the next start completes. Without a second connection, one after the
 * other. */
static int bulk_end(struct run *r)
{
	static const char history_sql[] = "SET client_min_messages = warning;"
					  "SET maintenance_work_mem = '256MB';"
					  "CREATE UNIQUE INDEX IF NOT EXISTS state_history_at"
					  " ON evs.state_history (stream, valid_from, version)";
	int64_t t0 = now_ms();
	PGconn *side = NULL;
	PGresult *res;
	int rc, side_rc = EVP_OK;

	logm(r, EVP_LOG_INFO,
	     "projection \"%s\" at position %llu: building the built-in read"
	     " models' indexes",
	     r->name, (unsigned long long)r->checkpoint);
	side = PQconnectdb(r->cfg->dsn ? r->cfg->dsn : "");
	if (PQstatus(side) == CONNECTION_OK)
		PQsetNoticeProcessor(side, on_notice, r);
	if (PQstatus(side) != CONNECTION_OK || !PQsendQuery(side, history_sql)) {
		PQfinish(side);
		side = NULL;
	}
	if ((rc = exec_cmd(r, "BEGIN")) ||
	    (rc = exec_cmd(r, "SET LOCAL maintenance_work_mem = '256MB'")) ||
	    (rc = exec_cmd(r, "CREATE INDEX IF NOT EXISTS events_stream ON evs.events (stream)")) ||
	    (rc = exec_cmd(r, "COMMIT")))
		goto fail;
	if (side) {
		while ((res = PQgetResult(side))) {
			if (PQresultStatus(res) != PGRES_COMMAND_OK && side_rc == EVP_OK) {
				const char *m = PQresultErrorMessage(res);
				size_t l = strlen(m);

				while (l > 0 && m[l - 1] == '\n')
					l--;
				snprintf(r->err, r->errlen,
					 "could not build index \"state_history_at\": %.*s", (int)l,
					 m);
				side_rc = evp_retryable(side, res) ? EVP_CONNECT : EVP_SQL;
			}
			PQclear(res);
		}
		PQfinish(side);
		side = NULL;
		if ((rc = side_rc))
			goto fail;
	}
	if ((rc = exec_cmd(r, "BEGIN")) ||
	    (rc = exec_cmd(r, "SET LOCAL maintenance_work_mem = '256MB'")) ||
	    (rc = exec_cmd(r, "CREATE UNIQUE INDEX IF NOT EXISTS state_history_at"
			      " ON evs.state_history (stream, valid_from, version)")) ||
	    (rc = exec_cmd(r, "DROP INDEX IF EXISTS evs.state_history_bulk_open")) ||
	    (rc = exec_cmd(r, "COMMIT")))
		goto fail;
	r->bulk = false;
	logm(r, EVP_LOG_INFO, "built-in read models' indexes built in %.1f s",
	     (double)(now_ms() - t0) / 1000.0);
	return EVP_OK;
fail:
	if (side) { /* cancel the side build: it rolls back */
		PGcancel *cancel = PQgetCancel(side);
		char buf[256];

		if (cancel) {
			PQcancel(cancel, buf, sizeof buf);
			PQfreeCancel(cancel);
		}
		while ((res = PQgetResult(side)))
			PQclear(res);
		PQfinish(side);
	}
	if (PQstatus(r->conn) == CONNECTION_OK)
		PQclear(PQexec(r->conn, "ROLLBACK"));
	return rc;
}

/* At start (built-in models only): enter bulk mode when far behind, or
 * finish the bulk a crash interrupted. */
static int bulk_decide(struct run *r)
{
	evs_store_info head;
	bool missing = false;
	int rc;

	if (!r->builtin)
		return EVP_OK;
	if (evs_head(r->store, &head) != EVS_OK) {
		snprintf(r->err, r->errlen, "could not read the store head: %s",
			 evs_errmsg(r->store));
		return EVP_STORE;
	}
	if ((rc = bulk_missing(r, &missing)))
		return rc;
	if (r->cfg->bulk_threshold && head.last_position > r->checkpoint &&
	    head.last_position - r->checkpoint >= r->cfg->bulk_threshold) {
		r->bulk_target = head.last_position;
		return bulk_begin(r);
	}
	if (missing) {
		logm(r, EVP_LOG_INFO, "projection \"%s\": an earlier bulk load was interrupted",
		     r->name);
		return bulk_end(r);
	}
	return EVP_OK;
}

/* ---------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------- */

/* Collect up to batch_max events after the checkpoint; the subscription
 * is closed before the batch goes to PostgreSQL, so no read snapshot of
 * the store stays pinned while we wait on the network. */
static int collect(struct run *r, uint64_t target, int first_wait_ms)
{
	evs_sub *sub = NULL;
	evs_event ev;
	int rc, wait = first_wait_ms;
	int64_t deadline = -1;

	int64_t t0 = now_us();

	batch_clear(&r->batch);
	if ((rc = evs_subscribe(r->store, r->checkpoint, NULL, &sub)) != EVS_OK) {
		snprintf(r->err, r->errlen, "could not follow the store: %s", evs_errmsg(r->store));
		return EVP_STORE;
	}
	while (r->batch.n < (size_t)r->cfg->batch_max) {
		if (target && r->checkpoint + r->batch.n >= target)
			break;
		rc = evs_sub_next(sub, &ev, wait);
		if (rc == EVS_TIMEOUT)
			break;
		if (rc != EVS_OK) {
			snprintf(r->err, r->errlen, "could not read the store: %s",
				 evs_errmsg(r->store));
			evs_sub_close(sub);
			return EVP_STORE;
		}
		if ((rc = batch_add(r, &ev))) {
			evs_sub_close(sub);
			return rc;
		}
		if (deadline < 0)
			deadline = now_ms() + r->cfg->batch_wait_ms;
		wait = (int)(deadline - now_ms());
		if (wait < 0)
			wait = 0;
	}
	evs_sub_close(sub);
	r->collect_us = now_us() - t0;
	return EVP_OK;
}

/* The end of a rebuild: hold the live projection's lock (its projector
 * must not run meanwhile: wait for it to stop), apply the last events,
 * then swap the schemas and hand the checkpoint over in one transaction.
 * Readers of the live schema see the old tables until the COMMIT and the
 * rebuilt ones after it. */
static int swap_in(struct run *r)
{
	const char *schema = evp_rules_schema(r->rules);
	char shadow[EVS_MAX_NAME + 16], old[EVS_MAX_NAME + 16], cls[16], pos[24];
	const char *vals[3];
	evs_store_info head;
	PGresult *res;
	bool warned = false;
	int rc;

	shadow_schema(r, shadow, sizeof shadow);
	snprintf(old, sizeof old, "%s__old", schema);
	snprintf(cls, sizeof cls, "%d", LOCK_CLASS);
	vals[0] = cls;
	vals[1] = r->live_name;
	for (;;) {
		res = PQexecParams(r->conn, "SELECT pg_try_advisory_lock($1::int, hashtext($2))", 2,
				   NULL, vals, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			return pg_fail(r, res, "could not take the lock of projection \"%s\"",
				       r->live_name);
		if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
			PQclear(res);
			break;
		}
		PQclear(res);
		if (!warned)
			logm(r, EVP_LOG_WARNING,
			     "rebuild of \"%s\" caught up: waiting for its live projector to stop"
			     " before swapping the tables in",
			     r->live_name);
		warned = true;
		nap(r, 500);
		if (stopping(r))
			return EVP_STOPPED;
	}
	/* the last events, under the lock */
	if (evs_head(r->store, &head) != EVS_OK) {
		snprintf(r->err, r->errlen, "could not read the store head: %s",
			 evs_errmsg(r->store));
		return EVP_STORE;
	}
	while (r->checkpoint < head.last_position) {
		if ((rc = collect(r, head.last_position, 1000)))
			return rc;
		if (r->batch.n && (rc = apply_batch(r)))
			return rc;
	}
	snprintf(pos, sizeof pos, "%llu", (unsigned long long)r->checkpoint);
	if ((rc = exec_cmd(r, "BEGIN")) ||
	    (rc = exec_ident(r, "ALTER SCHEMA %s RENAME TO %s", schema, old)) ||
	    (rc = exec_ident(r, "ALTER SCHEMA %s RENAME TO %s", shadow, schema)))
		goto fail;
	vals[0] = r->live_name;
	vals[1] = pos;
	vals[2] = r->name;
	res = PQexecParams(r->conn,
			   "WITH u AS (INSERT INTO evs.checkpoints (projection, position)"
			   " VALUES ($1, $2) ON CONFLICT (projection) DO UPDATE SET"
			   " position = excluded.position, updated_at = now()"
			   " RETURNING projection, position)"
			   " SELECT pg_notify('evs_checkpoint', u.projection || ' ' || u.position)"
			   " FROM u",
			   2, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = pg_fail(r, res, "could not hand over the checkpoint");
		goto fail;
	}
	PQclear(res);
	res = PQexecParams(r->conn, "DELETE FROM evs.checkpoints WHERE projection = $1", 1, NULL,
			   vals + 2, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = pg_fail(r, res, "could not drop the rebuild's checkpoint");
		goto fail;
	}
	PQclear(res);
	if ((rc = exec_ident(r, "DROP SCHEMA %s CASCADE", old, NULL)) ||
	    (rc = exec_cmd(r, "COMMIT")))
		goto fail;
	logm(r, EVP_LOG_INFO, "projection \"%s\" rebuilt up to position %s and swapped in",
	     r->live_name, pos);
	vals[0] = cls;
	vals[1] = r->live_name;
	PQclear(PQexecParams(r->conn, "SELECT pg_advisory_unlock($1::int, hashtext($2))", 2, NULL,
			     vals, NULL, NULL, 0));
	return EVP_OK;
fail:
	if (PQstatus(r->conn) == CONNECTION_OK)
		PQclear(PQexec(r->conn, "ROLLBACK"));
	return rc;
}

/* After a lost connection: drop it and connect again (with backoff). */
static int reconnect(struct run *r)
{
	logm(r, EVP_LOG_WARNING, "%s; reconnecting", r->err);
	PQfinish(r->conn);
	r->conn = NULL;
	r->stats->reconnects++;
	return connect_pg(r, true);
}

int evp_run(const evp_config *cfg, evp_stats *stats, char *err, size_t errlen)
{
	struct run r;
	evs_options so;
	evp_stats dummy;
	evs_store_info head;
	uint64_t target = 0, last_events = 0;
	int64_t last_report;
	int rc;

	memset(&r, 0, sizeof r);
	memset(&dummy, 0, sizeof dummy);
	r.cfg = cfg;
	r.stats = stats ? stats : &dummy;
	memset(r.stats, 0, sizeof *r.stats);
	r.err = err;
	r.errlen = errlen;
	err[0] = '\0';

	if (cfg->rules_path && (rc = evp_rules_load(cfg->rules_path, &r.rules, err, errlen)))
		return rc;
	r.name = cfg->projection ? cfg->projection : r.rules ? evp_rules_name(r.rules) : "builtin";
	r.live_name = r.name;
	r.builtin = cfg->builtin;
	if (cfg->rebuild) {
		if (!r.rules || !evp_rules_schema(r.rules) || !evp_rules_tables(r.rules)) {
			snprintf(err, errlen,
				 "a rebuild needs a projection file with \"schema\" and"
				 " \"tables\" lines");
			rc = EVP_INVALID;
			goto out;
		}
		if (strlen(r.name) > EVS_MAX_NAME ||
		    strlen(evp_rules_schema(r.rules)) > EVS_MAX_NAME) {
			snprintf(err, errlen, "projection or schema name too long");
			rc = EVP_INVALID;
			goto out;
		}
		snprintf(r.rebuild_name, sizeof r.rebuild_name, "%s__rebuild", r.name);
		r.name = r.rebuild_name;
		r.builtin = false;
	}
	evs_options_init(&so);
	so.create = 0;
	so.read_only = 1;
	if ((rc = evs_open(cfg->store_path, &so, &r.store)) != EVS_OK) {
		snprintf(err, errlen, "could not open store \"%s\": %s", cfg->store_path,
			 evs_open_errmsg());
		rc = EVP_STORE;
		goto out;
	}
	if ((rc = connect_pg(&r, false)))
		goto out;
	while ((rc = bulk_decide(&r)) == EVP_CONNECT) {
		if ((rc = reconnect(&r)))
			goto out;
	}
	if (rc)
		goto out;
	if (cfg->once || cfg->rebuild) {
		if (evs_head(r.store, &head) != EVS_OK) {
			snprintf(err, errlen, "could not read the store head: %s",
				 evs_errmsg(r.store));
			rc = EVP_STORE;
			goto out;
		}
		target = head.last_position;
	}
	last_report = now_ms();
	for (;;) {
		if (stopping(&r)) {
			rc = EVP_STOPPED;
			break;
		}
		if (r.bulk && r.checkpoint >= r.bulk_target) {
			rc = bulk_end(&r);
			if (rc == EVP_CONNECT && (rc = reconnect(&r)) == EVP_OK)
				continue;
			if (rc)
				break;
		}
		if ((cfg->once || cfg->rebuild) && r.checkpoint >= target) {
			rc = EVP_OK;
			break;
		}
		if ((rc = collect(&r, target, cfg->once || cfg->rebuild ? 1000 : 200)))
			break;
		if (r.batch.n == 0)
			continue;
		rc = apply_batch(&r);
		if (rc == EVP_CONNECT) {
			if ((rc = reconnect(&r)))
				break;
			continue;
		}
		if (rc)
			break;
		if (now_ms() - last_report >= 1000 && cfg->log_level >= EVP_LOG_INFO) {
			int64_t t = now_ms();
			struct timespec ts;
			const evs_event *le = &r.batch.events[r.batch.n - 1].ev;
			double lag_s;

			clock_gettime(CLOCK_REALTIME, &ts);
			lag_s = ((double)ts.tv_sec * 1e9 + (double)ts.tv_nsec -
				 (double)le->recorded_at) /
				1e9;
			if (evs_head(r.store, &head) != EVS_OK)
				head.last_position = r.checkpoint;
			logm(&r, EVP_LOG_INFO,
			     "projection \"%s\" at position %llu: %.0f events/s, lag %llu events, %.3f s",
			     r.name, (unsigned long long)r.checkpoint,
			     (double)(r.stats->events - last_events) * 1000.0 /
				     (double)(t - last_report),
			     (unsigned long long)(head.last_position - r.checkpoint), lag_s);
			last_report = t;
			last_events = r.stats->events;
		}
	}
	if (r.bulk && rc == EVP_STOPPED)
		logm(&r, EVP_LOG_WARNING,
		     "stopped during a bulk load: the built-in read models' indexes are built at"
		     " the next start");
	if (rc == EVP_OK && cfg->rebuild)
		rc = swap_in(&r);
	if (rc && rc != EVP_STOPPED && !err[0])
		snprintf(err, errlen, "%s", evp_strerror(rc));
out:
	batch_clear(&r.batch);
	free(r.batch.events);
	evs__buf_free(&r.copy);
	evs__buf_free(&r.a1);
	evs__buf_free(&r.a2);
	evs__buf_free(&r.a3);
	evs__buf_free(&r.a4);
	evs__buf_free(&r.a5);
	PQfinish(r.conn);
	evs_close(r.store);
	evp_rules_free(r.rules);
	return rc;
}
