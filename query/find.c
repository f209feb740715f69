/*
 * find.c - lookups across streams, for the auditor's page and anyone:
 *
 *   GET /events?correlation=UUID[&after=P][&limit=L]
 *        the events sharing a correlation id, in position order, paged
 *        by position: {"position", "correlation", "events": [...],
 *        "next_after"} (next_after null on the last page)
 *   GET /events?id=UUID
 *        the event with that id (a causation id names its causing event):
 *        {"position", "id", "events": [the event] or []}
 *   GET /streams?prefix=P[&after=S][&limit=L]
 *        streams whose id starts with P (any, when P is absent), in byte
 *        order, paged by id: {"position", "streams": [{stream, version,
 *        event_position, updated_at}], "next_after"}
 *
 * Each event is written as GET /streams/{id}/events writes it, with its
 * "stream". "position" is the built-in projection's checkpoint, read by
 * the same statement as the rows; min_position waits as on streams.
 *
 * Cost: the prefix search is one range scan of evs.state's primary key
 * (COLLATE "C": byte order, so [P, P || U+10FFFF) holds exactly the ids
 * starting with P). The event log has no index on correlation_id or
 * event_id today: those two are a scan of evs.events, bounded in rows
 * answered by limit (default 100, at most --page-max) but not in rows
 * read; issue 12 indexes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "server.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
#define CHECKPOINT \
	"(SELECT coalesce((SELECT position FROM evs.checkpoints WHERE projection = $1), 0))"
#define EVENT_COLS                                                                                \
	"e.position, e.stream, e.version, e.type, e.type_version, " TS(                           \
		"e.recorded_at") ", e.recorded_at_ns, " TS("e.occurred_at") ", e.event_id::text," \
									    " e.correlation_id::text, e.causation_id::text, e.metadata::text, e.data::text"

/* $1 projection, $2 correlation id, $3 after position, $4 limit */
static const char sql_correlation[] =
	"SELECT " CHECKPOINT ", " EVENT_COLS " FROM (VALUES (1)) v LEFT JOIN LATERAL"
	" (SELECT * FROM evs.events x WHERE x.correlation_id = $2::uuid"
	"  AND x.position > $3::bigint ORDER BY x.position LIMIT $4::int) e ON true";
/* $1 projection, $2 event id */
static const char sql_id[] =
	"SELECT " CHECKPOINT ", " EVENT_COLS " FROM (VALUES (1)) v LEFT JOIN LATERAL"
	" (SELECT * FROM evs.events x WHERE x.event_id = $2::uuid"
	"  LIMIT 1) e ON true";
/* $1 projection, $2 prefix, $3 after (exclusive), $4 limit */
static const char sql_streams[] = "SELECT " CHECKPOINT ", s.stream, s.version, s.position, " TS(
	"s.updated_at") " FROM (VALUES (1)) v LEFT JOIN LATERAL"
			" (SELECT * FROM evs.state x WHERE x.stream >= $2 AND x.stream < $2 || chr(1114111)"
			"  AND x.stream > $3 ORDER BY x.stream LIMIT $4::int) s ON true";

static void put_col(evs__buf *b, const char *key, const PGresult *r, int row, int col, bool text)
{
	evs__buf_printf(b, ",\"%s\":", key);
	if (PQgetisnull(r, row, col))
		evs__buf_puts(b, "null");
	else if (text)
		evsq__json_str(b, PQgetvalue(r, row, col));
	else
		evsq__json_numbers(b, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

/* 8-4-4-4-12 hex digits. */
static bool uuid_text(const char *s)
{
	int i;

	if (strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return true;
}

/* The limit parameter: 0, or 400 with the body. */
static unsigned read_limit(const evsq__ctx *ctx, const char *lim, int64_t *l, evs__buf *body)
{
	char expected[64];

	*l = 100 < ctx->page_max ? 100 : ctx->page_max;
	if (!lim)
		return 0;
	if (!evsq__parse_u63(lim, l) || *l < 1 || *l > ctx->page_max) {
		snprintf(expected, sizeof expected, "an integer from 1 to %ld", ctx->page_max);
		return evsq__bad_param(body, "limit", lim, expected);
	}
	return 0;
}

static unsigned run(const evsq__ctx *ctx, const char *sql, int n, const char *const *params,
		    PGresult **r, evs__buf *body)
{
	char sqlstate[6] = "", err[1024] = "";
	int rc = evsq__pool_query(ctx->pool, sql, n, params, r, sqlstate, err, sizeof err);

	return rc ? evsq__db_error(body, rc, sqlstate, err) : 0;
}

unsigned evsq__find_events(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
			   evs__buf *body, const char **ctype)
{
	static const char *const allowed[] = {"correlation", "id",           "after",
					      "limit",       "min_position", NULL};
	const evsq__ctx *ctx = &srv->ctx;
	const char *corr, *id, *after, *params[4];
	char after_s[24], limit_s[24];
	int64_t a = 0, l = 0, last = 0;
	evsq__args args;
	PGresult *r;
	unsigned status;
	int i, rows;

	(void)rest;
	(void)ctype;
	if ((status = evsq__args_check(conn, allowed, &args, body)))
		return status;
	corr = evsq__arg(&args, "correlation");
	id = evsq__arg(&args, "id");
	after = evsq__arg(&args, "after");
	if (!corr == !id) {
		evsq__error(body, "bad_request",
			    "give exactly one of correlation and id: /events?correlation=UUID "
			    "or /events?id=UUID");
		return 400;
	}
	if (!uuid_text(corr ? corr : id))
		return evsq__bad_param(body, corr ? "correlation" : "id", corr ? corr : id,
				       "a UUID such as 0190f5a2-7c1e-7000-8000-00000000beef");
	if (id && (after || evsq__arg(&args, "limit"))) {
		evsq__error(body, "bad_request", "after and limit page correlation, not id");
		return 400;
	}
	if (after && !evsq__parse_u63(after, &a))
		return evsq__bad_param(body, "after", after, "a position (an integer >= 0)");
	if ((status = read_limit(ctx, evsq__arg(&args, "limit"), &l, body)))
		return status;
	status = evsq__watch_min_position(ctx, ctx->projection, evsq__arg(&args, "min_position"),
					  body);
	if (status)
		return status;
	snprintf(after_s, sizeof after_s, "%lld", (long long)a);
	snprintf(limit_s, sizeof limit_s, "%lld", (long long)l);
	params[0] = ctx->projection;
	params[1] = corr ? corr : id;
	params[2] = after_s;
	params[3] = limit_s;
	if ((status = corr ? run(ctx, sql_correlation, 4, params, &r, body)
			   : run(ctx, sql_id, 2, params, &r, body)))
		return status;
	rows = PQntuples(r);
	body->len = 0;
	evs__buf_printf(body, "{\"position\":%s,\"%s\":", rows ? PQgetvalue(r, 0, 0) : "0",
			corr ? "correlation" : "id");
	evsq__json_str(body, corr ? corr : id);
	evs__buf_puts(body, ",\"events\":[");
	for (i = 0; i < rows && !PQgetisnull(r, i, 1); i++) {
		last = strtoll(PQgetvalue(r, i, 1), NULL, 10);
		evs__buf_puts(body, i ? ",{" : "{");
		evs__buf_printf(body, "\"position\":%lld", (long long)last);
		put_col(body, "stream", r, i, 2, true);
		put_col(body, "version", r, i, 3, false);
		put_col(body, "type", r, i, 4, true);
		put_col(body, "type_version", r, i, 5, false);
		put_col(body, "recorded_at", r, i, 6, true);
		put_col(body, "recorded_at_ns", r, i, 7, false);
		put_col(body, "occurred_at", r, i, 8, true);
		put_col(body, "event_id", r, i, 9, true);
		put_col(body, "correlation_id", r, i, 10, true);
		put_col(body, "causation_id", r, i, 11, true);
		put_col(body, "metadata", r, i, 12, false);
		put_col(body, "data", r, i, 13, false);
		evs__buf_putc(body, '}');
	}
	evs__buf_puts(body, "]");
	if (corr) {
		evs__buf_puts(body, ",\"next_after\":");
		if (i == l)
			evs__buf_printf(body, "%lld", (long long)last);
		else
			evs__buf_puts(body, "null");
	}
	evs__buf_puts(body, "}\n");
	PQclear(r);
	return 200;
}

unsigned evsq__find_streams(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
			    evs__buf *body, const char **ctype)
{
	static const char *const allowed[] = {"prefix", "after", "limit", "min_position", NULL};
	const evsq__ctx *ctx = &srv->ctx;
	const char *prefix, *after, *params[4];
	char limit_s[24];
	int64_t l = 0;
	evsq__args args;
	PGresult *r;
	unsigned status;
	int i, rows;

	(void)rest;
	(void)ctype;
	if ((status = evsq__args_check(conn, allowed, &args, body)))
		return status;
	prefix = evsq__arg(&args, "prefix");
	after = evsq__arg(&args, "after");
	if ((prefix && !evs__utf8_text((const uint8_t *)prefix, strlen(prefix))) ||
	    (after && !evs__utf8_text((const uint8_t *)after, strlen(after)))) {
		evsq__error(body, "bad_request", "prefix and after must be valid UTF-8");
		return 400;
	}
	if ((status = read_limit(ctx, evsq__arg(&args, "limit"), &l, body)))
		return status;
	status = evsq__watch_min_position(ctx, ctx->projection, evsq__arg(&args, "min_position"),
					  body);
	if (status)
		return status;
	snprintf(limit_s, sizeof limit_s, "%lld", (long long)l);
	params[0] = ctx->projection;
	params[1] = prefix ? prefix : "";
	params[2] = after ? after : "";
	params[3] = limit_s;
	if ((status = run(ctx, sql_streams, 4, params, &r, body)))
		return status;
	rows = PQntuples(r);
	body->len = 0;
	evs__buf_printf(body, "{\"position\":%s,\"streams\":[", rows ? PQgetvalue(r, 0, 0) : "0");
	for (i = 0; i < rows && !PQgetisnull(r, i, 1); i++) {
		evs__buf_puts(body, i ? ",{\"stream\":" : "{\"stream\":");
		evsq__json_str(body, PQgetvalue(r, i, 1));
		put_col(body, "version", r, i, 2, false);
		put_col(body, "event_position", r, i, 3, false);
		put_col(body, "updated_at", r, i, 4, true);
		evs__buf_putc(body, '}');
	}
	evs__buf_puts(body, "],\"next_after\":");
	if (i == l && i > 0)
		evsq__json_str(body, PQgetvalue(r, i - 1, 1));
	else
		evs__buf_puts(body, "null");
	evs__buf_puts(body, "}\n");
	PQclear(r);
	return 200;
}
