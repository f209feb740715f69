/*
 * builtin.c - COPY streaming, and the built-in event log (evs.events).
 *
 * Rows are made in binary COPY format (pgtext.c) and handed to libpq
 * while the next ones are made, so PostgreSQL works on a batch's first
 * rows while we convert its last ones.
 */
#include <stdio.h>

#include "internal.h"

/* Bytes handed to libpq at a time. Small, so that PostgreSQL starts on a
 * batch's rows early and has little left when the last ones are sent:
 * 1M events, bench_projector, without bulk mode, event log 5.6 s with
 * 256 KB, 3.6 s with 32 KB; all built-in models 13.2 s and 9.0 s. */
#define COPY_CHUNK (32 * 1024)

int evp__copy_begin(struct evp__run *r, const char *sql)
{
	return evp__exec(r, PGRES_COPY_IN, NULL, sql, 0, NULL, "could not start \"%s\"", sql);
}

int evp__copy_flush(struct evp__run *r, evs__buf *rows, bool all)
{
	if (rows->oom) {
		snprintf(r->err, r->errlen, "out of memory");
		return EVP_NOMEM;
	}
	if (rows->len == 0 || (!all && rows->len < COPY_CHUNK))
		return EVP_OK;
	if (PQputCopyData(r->conn, rows->ptr, (int)rows->len) != 1)
		return evp__pg_fail(r, NULL, "could not send COPY data");
	rows->len = 0;
	return EVP_OK;
}

static void drain(PGconn *conn)
{
	PGresult *res;

	while ((res = PQgetResult(conn)))
		PQclear(res);
}

int evp__copy_end(struct evp__run *r, evs__buf *rows, const char *what)
{
	PGresult *res;
	int rc = evp__copy_flush(r, rows, true);

	if (rc == EVP_NOMEM) {
		PQputCopyEnd(r->conn, "out of memory");
		drain(r->conn);
		return rc;
	}
	if (rc)
		return rc;
	if (PQputCopyEnd(r->conn, NULL) != 1)
		return evp__pg_fail(r, NULL, "could not end COPY");
	res = PQgetResult(r->conn);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = evp__pg_fail(r, res, "%s failed", what);
	else
		PQclear(res);
	drain(r->conn);
	return rc;
}

static void bin_uuid(evs__buf *b, const uint8_t id[16])
{
	if (evp_uuid_is_nil(id))
		evp_bin_null(b);
	else
		evp_bin_bytes(b, id, 16);
}

static void be32(evs__buf *b, uint32_t v)
{
	uint8_t h[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	evs__buf_putn(b, h, 4);
}

/* A text[] field in binary COPY format (array_send): the field's length,
 * then dimensions, a has-NULL flag, the element type (text, oid 25), per
 * dimension its length and lower bound, then each element as length +
 * bytes. An empty array has no dimensions. */
static void bin_text_array(evs__buf *b, const evs_str *v, size_t n)
{
	size_t len = 12 + (n ? 8 : 0);

	for (size_t i = 0; i < n; i++)
		len += 4 + v[i].len;
	be32(b, (uint32_t)len);
	be32(b, n ? 1 : 0);
	be32(b, 0);
	be32(b, 25);
	if (n) {
		be32(b, (uint32_t)n);
		be32(b, 1);
	}
	for (size_t i = 0; i < n; i++) {
		be32(b, (uint32_t)v[i].len);
		evs__buf_putn(b, v[i].ptr, v[i].len);
	}
}

/* The event log: one binary COPY, streamed while the rows are made. */
int evp__write_event_log(struct evp__run *r)
{
	evs__buf *b = &r->copy;
	size_t i;
	int rc;

	b->len = 0;
	/* BEGIN rides with the COPY (one simple query, one round trip): the
	 * event log is the first thing a batch writes (txn.c) */
	rc = evp__copy_begin(
		r, "BEGIN; COPY evs.events (position, stream, version, type, type_version,"
		   " recorded_at, recorded_at_ns, occurred_at, event_id, correlation_id,"
		   " causation_id, metadata, data, producer, tags)"
		   " FROM STDIN (FORMAT binary)");
	if (rc)
		return rc;
	evp_bin_header(b);
	for (i = 0; i < r->batch.n; i++) {
		struct evp__event *e = &r->batch.events[i];
		const evs_event *ev = &e->ev;
		struct evp__json j;

		if ((rc = evp__event_json(r, e, &j))) {
			PQputCopyEnd(r->conn, "malformed payload");
			return rc;
		}
		evp_bin_row(b, 15);
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
		evp_bin_jsonb(b, j.meta, j.meta_len);
		evp_bin_jsonb(b, j.data, j.data_len);
		if (ev->producer.len)
			evp_bin_bytes(b, ev->producer.ptr, ev->producer.len);
		else
			evp_bin_null(b);
		bin_text_array(b, ev->tags, ev->ntags);
		if ((rc = evp__copy_flush(r, b, false)))
			return rc;
	}
	evp_bin_trailer(b);
	return evp__copy_end(r, b, "COPY evs.events");
}
