/*
 * state.c - the built-in current state (evs.state) and state history
 * (evs.state_history) of a batch's streams.
 *
 *     SELECT the stored states of the batch's streams
 *     fold each stream's events in memory (evs_merge_patch), streaming
 *       COPY evs.state_history FROM STDIN (FORMAT binary)   one row per event
 *     UPDATE evs.state_history: close each stream's open interval
 *     INSERT .. ON CONFLICT evs.state                        one row per stream
 *
 * The batch is visited in (stream, position) order through r->order, an
 * array of pointers to its events sorted by a comparator that needs no
 * context. The per-stream values of the last two statements are sent as
 * array parameters (unnest), built in reused buffers (r->arrays).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum {
	ST_STREAM, /* evs.state: the new state of each stream */
	ST_DATA,
	ST_VER,
	ST_POS,
	ST_TIME,
	CL_STREAM, /* evs.state_history: the open interval each stream closes */
	CL_VER,
	CL_TIME,
	CL_FROM,
	NCOLS
};

static int cmp_stream(const evs_str *a, const evs_str *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->ptr, b->ptr, n);

	if (c)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

static int cmp_event(const void *x, const void *y)
{
	const evs_event *a = &(*(struct evp__event *const *)x)->ev;
	const evs_event *b = &(*(struct evp__event *const *)y)->ev;
	int c = cmp_stream(&a->stream, &b->stream);

	if (c)
		return c;
	return (a->position > b->position) - (a->position < b->position);
}

static int sort_batch(struct evp__run *r)
{
	size_t i, n = r->batch.n;

	if (n > r->order_cap) {
		struct evp__event **p = realloc(r->order, n * sizeof *p);

		if (!p) {
			snprintf(r->err, r->errlen, "out of memory");
			return EVP_NOMEM;
		}
		r->order = p;
		r->order_cap = n;
	}
	for (i = 0; i < n; i++)
		r->order[i] = &r->batch.events[i];
	qsort(r->order, n, sizeof *r->order, cmp_event);
	return EVP_OK;
}

static const evs_event *ordered(const struct evp__run *r, size_t i)
{
	return &r->order[i]->ev;
}

/* Array literals: '{' elements '}' */
static void array_sep(evs__buf *b)
{
	if (b->len > 1)
		evs__buf_putc(b, ',');
}

static void put_str(evs__buf *b, const char *p, size_t n)
{
	array_sep(b);
	evp_array_elem(b, p, n);
}

static void put_u64(evs__buf *b, uint64_t v)
{
	array_sep(b);
	evs__buf_printf(b, "%llu", (unsigned long long)v);
}

static void put_time(evs__buf *b, int64_t ns)
{
	array_sep(b);
	evs__buf_putc(b, '"');
	evs__time_pg_text(b, ns);
	evs__buf_putc(b, '"');
}

/* The stored states of the batch's streams, in byte order of stream. */
static int read_states(struct evp__run *r, PGresult **res)
{
	evs__buf *streams = &r->streams;
	const char *vals[1];
	size_t i;

	evs__buf_reset(streams);
	evs__buf_putc(streams, '{');
	for (i = 0; i < r->batch.n; i++) {
		const evs_str *s = &ordered(r, i)->stream;

		if (i == 0 || cmp_stream(s, &ordered(r, i - 1)->stream) != 0)
			put_str(streams, s->ptr, s->len);
	}
	evs__buf_putc(streams, '}');
	if (!evs__buf_cstr(streams)) {
		snprintf(r->err, r->errlen, "out of memory");
		return EVP_NOMEM;
	}
	vals[0] = streams->ptr;
	return evp__exec_prep(r, PGRES_TUPLES_OK, res,
			      "SELECT stream, data::text, version, updated_at FROM evs.state"
			      " WHERE stream = ANY ($1::text[]) ORDER BY stream COLLATE \"C\"",
			      1, vals, "read current states");
}

/* The stored state of stream s (rows in byte order, *row advancing):
 * *cur and *version, or nothing when it has none yet. */
static int stored_state(struct evp__run *r, PGresult *res, size_t *row, const evs_str *s,
			evs_state *cur, uint64_t *version)
{
	size_t nrows = (size_t)PQntuples(res);
	evs_str rs = {0};
	evs__buf mp = {0};

	*version = 0;
	while (*row < nrows) {
		rs.ptr = PQgetvalue(res, (int)*row, 0);
		rs.len = (size_t)PQgetlength(res, (int)*row, 0);
		if (cmp_stream(&rs, s) >= 0)
			break;
		(*row)++;
	}
	if (*row == nrows || cmp_stream(&rs, s) != 0)
		return EVP_OK;
	if (evs__json_to_msgpack(PQgetvalue(res, (int)*row, 1),
				 (size_t)PQgetlength(res, (int)*row, 1), &mp, 0, NULL, 0) < 0) {
		evs__buf_free(&mp);
		snprintf(r->err, r->errlen, "could not read the stored state of stream \"%.*s\"",
			 (int)s->len, s->ptr);
		return EVP_SQL;
	}
	cur->data = mp.ptr;
	cur->len = mp.len;
	*version = strtoull(PQgetvalue(res, (int)*row, 2), NULL, 10);
	return EVP_OK;
}

/* Fold events [g, end) of one stream onto cur: a history row each, and
 * the stream's new state in the arrays. */
static int fold_stream(struct evp__run *r, size_t g, size_t end, evs_state *cur)
{
	evs__buf *hist = &r->copy, *json = &r->json, *col = r->arrays.col;
	size_t k;
	int rc;

	for (k = g; k < end; k++) {
		const evs_event *ev = ordered(r, k);
		evs_state next = {0};
		int mrc = evs_merge_patch(cur->data, cur->len, ev->data, ev->data_len, &next);

		if (mrc != EVS_OK) {
			snprintf(r->err, r->errlen, "could not fold event at position %llu: %s",
				 (unsigned long long)ev->position, evs_strerror(mrc));
			return mrc == EVS_NOMEM ? EVP_NOMEM : EVP_STORE;
		}
		evs_state_free(cur);
		*cur = next;
		json->len = 0;
		if (evs__msgpack_to_json(json, cur->data, cur->len, 0) < 0) {
			snprintf(r->err, r->errlen, "could not convert the state of \"%.*s\"",
				 (int)ev->stream.len, ev->stream.ptr);
			PQputCopyEnd(r->conn, "bad state");
			return EVP_STORE;
		}
		evp_bin_row(hist, 6);
		evp_bin_bytes(hist, ev->stream.ptr, ev->stream.len);
		evp_bin_i64(hist, (int64_t)ev->version);
		evp_bin_i64(hist, (int64_t)ev->position);
		evp_bin_time(hist, ev->recorded_at);
		if (k + 1 < end)
			evp_bin_time(hist, ordered(r, k + 1)->recorded_at);
		else
			evp_bin_null(hist);
		evp_bin_jsonb(hist, json->ptr, json->len);
		if ((rc = evp__copy_flush(r, hist, false)))
			return rc;
	}
	put_str(&col[ST_STREAM], ordered(r, end - 1)->stream.ptr, ordered(r, end - 1)->stream.len);
	put_str(&col[ST_DATA], json->ptr, json->len);
	put_u64(&col[ST_VER], ordered(r, end - 1)->version);
	put_u64(&col[ST_POS], ordered(r, end - 1)->position);
	put_time(&col[ST_TIME], ordered(r, end - 1)->recorded_at);
	return EVP_OK;
}

/* History rows stream to the server while the fold goes on. */
static int fold_all(struct evp__run *r, PGresult *states)
{
	evs__buf *col = r->arrays.col;
	size_t n = r->batch.n, g, end, row = 0;
	evs_state cur = {0};
	int rc = EVP_OK;

	for (g = 0; g < n; g = end) {
		const evs_event *first = ordered(r, g);
		uint64_t prior = 0;

		for (end = g + 1;
		     end < n && cmp_stream(&ordered(r, end)->stream, &first->stream) == 0; end++)
			;
		evs_state_free(&cur);
		if ((rc = stored_state(r, states, &row, &first->stream, &cur, &prior)))
			break;
		if (prior >= first->version) {
			snprintf(r->err, r->errlen,
				 "stored state of stream \"%.*s\" is at version %llu, the batch "
				 "starts at %llu",
				 (int)first->stream.len, first->stream.ptr,
				 (unsigned long long)prior, (unsigned long long)first->version);
			rc = EVP_SQL;
			break;
		}
		if (prior > 0) {
			put_str(&col[CL_STREAM], first->stream.ptr, first->stream.len);
			put_u64(&col[CL_VER], prior);
			put_time(&col[CL_TIME], first->recorded_at);
			put_str(&col[CL_FROM], PQgetvalue(states, (int)row, 3),
				(size_t)PQgetlength(states, (int)row, 3));
		}
		if ((rc = fold_stream(r, g, end, &cur)))
			break;
	}
	evs_state_free(&cur);
	return rc;
}

static int arrays_close(struct evp__run *r)
{
	bool oom = r->json.oom;
	int c;

	for (c = 0; c < NCOLS; c++) {
		evs__buf_putc(&r->arrays.col[c], '}');
		oom |= !evs__buf_cstr(&r->arrays.col[c]);
	}
	if (oom) {
		snprintf(r->err, r->errlen, "out of memory");
		return EVP_NOMEM;
	}
	return EVP_OK;
}

int evp__write_states(struct evp__run *r)
{
	evs__buf *col = r->arrays.col;
	PGresult *states = NULL;
	int rc, c;

	if ((rc = sort_batch(r)) || (rc = read_states(r, &states)))
		return rc;
	r->copy.len = 0;
	evs__buf_reset(&r->json);
	rc = evp__copy_begin(r, "COPY evs.state_history (stream, version, position, valid_from,"
				" valid_to, data) FROM STDIN (FORMAT binary)");
	if (rc)
		goto out;
	evp_bin_header(&r->copy);
	for (c = 0; c < NCOLS; c++) {
		evs__buf_reset(&col[c]);
		evs__buf_putc(&col[c], '{');
	}
	if ((rc = fold_all(r, states)) || (rc = arrays_close(r)))
		goto out;
	PQclear(states);
	states = NULL;
	evp_bin_trailer(&r->copy);
	if ((rc = evp__copy_end(r, &r->copy, "COPY evs.state_history")))
		goto out;
	if (col[CL_STREAM].len > 2) {
		const char *vals[4] = {col[CL_STREAM].ptr, col[CL_VER].ptr, col[CL_TIME].ptr,
				       col[CL_FROM].ptr};

		/* the open row of a stream starts at its state's updated_at: an
		 * exact lookup in the (stream, valid_from, version) key, or in
		 * bulk mode in the partial index of open rows (hence the
		 * valid_to IS NULL, true of that row anyway) */
		rc = evp__exec_prep(
			r, PGRES_COMMAND_OK, NULL,
			"UPDATE evs.state_history h SET valid_to = u.t"
			" FROM unnest($1::text[], $2::bigint[], $3::timestamptz[],"
			" $4::timestamptz[]) AS u(s, v, t, f)"
			" WHERE h.stream = u.s AND h.valid_from = u.f AND h.version = u.v"
			" AND h.valid_to IS NULL",
			4, vals, "close state history intervals");
		if (rc)
			goto out;
	}
	{
		const char *vals[5] = {col[ST_STREAM].ptr, col[ST_DATA].ptr, col[ST_VER].ptr,
				       col[ST_POS].ptr, col[ST_TIME].ptr};

		rc = evp__exec_prep(
			r, PGRES_COMMAND_OK, NULL,
			"INSERT INTO evs.state (stream, data, version, position, updated_at)"
			" SELECT * FROM unnest($1::text[], $2::jsonb[], $3::bigint[],"
			" $4::bigint[], $5::timestamptz[])"
			" ON CONFLICT (stream) DO UPDATE SET data = excluded.data,"
			" version = excluded.version, position = excluded.position,"
			" updated_at = excluded.updated_at",
			5, vals, "write current states");
	}
out:
	PQclear(states);
	return rc;
}
