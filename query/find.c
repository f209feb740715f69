/*
 * find.c - lookups across streams, for the auditor's page and anyone:
 *
 *   GET /events?[type=T][&category=C][&tag=G][&correlation=UUID]
 *               [&after=P | &direction=backward[&before=P]][&limit=L]
 *        events in position order (newest first with direction=backward),
 *        paged by position: {"position", ["correlation",] "events": [...],
 *        "next_after" | "next_before"} (null on the last page). An event
 *        passes when its type is one of the types, its stream's category
 *        one of the categories, it carries every tag, and it has the
 *        correlation id: each part only when given. type= and category=
 *        may repeat and each value may be a comma-separated list; tag=
 *        repeats (all of them) and is never split (a tag may hold a
 *        comma). At most 32 types, 32 categories, 16 tags; an empty
 *        item, a duplicate, invalid UTF-8, too long: 400 naming it.
 *   GET /events?id=UUID
 *        the event with that id (a causation id names its causing event):
 *        {"position", "id", "events": [the event] or []}
 *   GET /streams?prefix=P[&after=S][&limit=L]
 *        streams whose id starts with P (any, when P is absent), in byte
 *        order, paged by id: {"position", "streams": [{stream, version,
 *        event_position, updated_at}], "next_after"}
 *
 * Where the answer comes from. With --store, /events (every filter, and
 * id=) is answered from the store's indexes (find_store.c: evs_read_all with the
 * filter, evs_find_id): "position" is the store's last position when the
 * request was read, and no event past it is answered; min_position waits
 * for the store (evs_wait, at most min_position_wait_ms; 409
 * projection_behind after). Without --store, correlation= and id= are
 * answered from the event log read model (evs.events; no index on those
 * columns: a scan bounded by the limit in rows answered, not in rows
 * read), "position" is the built-in projection's checkpoint read by the
 * same statement, and type=, category=, tag= and direction=backward are
 * refused (400: they need --store). /streams always reads evs.state: one
 * range scan of its primary key (COLLATE "C": byte order, so [P, P ||
 * U+10FFFF) holds exactly the ids starting with P).
 *
 * Each event is written as GET /streams/{id}/events writes it, with its
 * "stream", "producer" (null when none) and "tags" ([] when none). From
 * the store, metadata and data are the stored msgpack as JSON in stored
 * key order (the base's number policy, as evs read); from PostgreSQL they
 * are jsonb's text (keys in jsonb's order).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "server.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
#define CHECKPOINT \
	"(SELECT coalesce((SELECT position FROM evs.checkpoints WHERE projection = $1), 0))"
#define EVENT_COLS                                                                                                 \
	"e.position, e.stream, e.version, e.type, e.type_version, " TS("e.recorded_at") ", e.recorded_at_ns, " TS( \
		"e.occurred_at") ", e.event_id::text,"                                                             \
				 " e.correlation_id::text, e.causation_id::text, e.metadata::text, e.data::text,"  \
				 " e.producer, to_json(e.tags)::text"

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

static const char example_uuid[] =
	"a UUID such as 0190f5a2-7c1e-7000-8000-00000000beef (not the nil UUID: none)";

static bool nil(const uint8_t id[16])
{
	static const uint8_t zero[16];

	return !memcmp(id, zero, 16);
}

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

/* 8-4-4-4-12 hex digits into id. */
static bool uuid_parse16(const char *s, uint8_t id[16])
{
	int i, o = 0;

	if (strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++) {
		char c = s[i];
		int v;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
			continue;
		}
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return false;
		if (o % 2 == 0)
			id[o / 2] = (uint8_t)(v << 4);
		else
			id[o / 2] |= (uint8_t)v;
		o++;
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

/* ---------------------------------------------------------------------
 * Filter parameters, shared with GET /events/stream (push_route.c)
 * ------------------------------------------------------------------- */

static bool has(char *const *v, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(v[i]) == len && !memcmp(v[i], s, len))
			return true;
	return false;
}

/* Add s[0..len) to v (n of max): 0, or 400 naming the parameter. */
static unsigned add_item(const char *param, const char *value, const char *s, size_t len,
			 size_t maxlen, char **v, size_t *n, size_t max, evs__buf *body)
{
	char expected[160];

	if (len == 0 || len > maxlen || !evs__utf8_text((const uint8_t *)s, len)) {
		snprintf(expected, sizeof expected, "%s of 1 to %zu bytes of UTF-8%s", param,
			 maxlen, strcmp(param, "tag") ? " (comma-separated, none empty)" : "");
		return evsq__bad_param(body, param, value, expected);
	}
	if (has(v, *n, s, len)) {
		snprintf(expected, sizeof expected, "each %s once (\"%.*s\" is given twice)", param,
			 (int)(len < 100 ? len : 100), s);
		return evsq__bad_param(body, param, value, expected);
	}
	if (*n == max) {
		snprintf(expected, sizeof expected, "at most %zu %ss", max, param);
		return evsq__bad_param(body, param, value, expected);
	}
	if (!(v[*n] = strndup(s, len))) {
		evsq__error(body, "internal", "out of memory");
		return 500;
	}
	(*n)++;
	return 0;
}

static unsigned add_values(const evsq__args *a, const char *param, bool split, size_t maxlen,
			   char **v, size_t *n, size_t max, evs__buf *body)
{
	const char *value;
	unsigned st;
	int i = 0;

	while ((value = evsq__arg_next(a, param, &i))) {
		const char *p = value;

		for (;;) {
			const char *comma = split ? strchr(p, ',') : NULL;
			size_t len = comma ? (size_t)(comma - p) : strlen(p);

			if ((st = add_item(param, value, p, len, maxlen, v, n, max, body)))
				return st;
			if (!comma)
				break;
			p = comma + 1;
		}
	}
	return 0;
}

unsigned evsq__filter_args_read(const evsq__args *a, struct evsq__filter_args *f, evs__buf *body)
{
	unsigned st;

	memset(f, 0, sizeof *f);
	if ((st = add_values(a, "type", true, EVS_MAX_NAME, f->types, &f->ntypes, EVSQ__FILTER_MAX,
			     body)) ||
	    (st = add_values(a, "category", true, EVS_MAX_NAME, f->categories, &f->ncategories,
			     EVSQ__FILTER_MAX, body)) ||
	    (st = add_values(a, "tag", false, EVS_MAX_TAG, f->tags, &f->ntags, EVS_MAX_TAGS, body)))
		evsq__filter_args_free(f);
	return st;
}

void evsq__filter_args_free(struct evsq__filter_args *f)
{
	for (size_t i = 0; i < f->ntypes; i++)
		free(f->types[i]);
	for (size_t i = 0; i < f->ncategories; i++)
		free(f->categories[i]);
	for (size_t i = 0; i < f->ntags; i++)
		free(f->tags[i]);
	memset(f, 0, sizeof *f);
}

/* ---------------------------------------------------------------------
 * One page from PostgreSQL: the three lookups of the read model
 * ------------------------------------------------------------------- */

struct pg_page {
	const char *sql;
	int nparams;
	const char *params[4];
	const char *echo, *echo_value; /* "correlation"/"id" and its value, or NULL */
	bool streams;                  /* rows are streams, not events */
	bool paged;                    /* write next_after */
	int64_t limit;
};

static void pg_event(evs__buf *b, const PGresult *r, int i)
{
	evs__buf_printf(b, "{\"position\":%s", PQgetvalue(r, i, 1));
	put_col(b, "stream", r, i, 2, true);
	put_col(b, "version", r, i, 3, false);
	put_col(b, "type", r, i, 4, true);
	put_col(b, "type_version", r, i, 5, false);
	put_col(b, "recorded_at", r, i, 6, true);
	put_col(b, "recorded_at_ns", r, i, 7, false);
	put_col(b, "occurred_at", r, i, 8, true);
	put_col(b, "event_id", r, i, 9, true);
	put_col(b, "correlation_id", r, i, 10, true);
	put_col(b, "causation_id", r, i, 11, true);
	put_col(b, "metadata", r, i, 12, false);
	put_col(b, "data", r, i, 13, false);
	put_col(b, "producer", r, i, 14, true);
	evs__buf_printf(b, ",\"tags\":");
	evs__buf_puts(b, PQgetvalue(r, i, 15)); /* to_json(text[]): valid JSON */
	evs__buf_putc(b, '}');
}

static void pg_stream(evs__buf *b, const PGresult *r, int i)
{
	evs__buf_puts(b, "{\"stream\":");
	evsq__json_str(b, PQgetvalue(r, i, 1));
	put_col(b, "version", r, i, 2, false);
	put_col(b, "event_position", r, i, 3, false);
	put_col(b, "updated_at", r, i, 4, true);
	evs__buf_putc(b, '}');
}

static unsigned pg_page(const evsq__ctx *ctx, const char *minp, const struct pg_page *pg,
			evs__buf *body)
{
	char sqlstate[6] = "", err[1024] = "";
	PGresult *r;
	unsigned status;
	int rc, i, rows;

	if ((status = evsq__watch_min_position(ctx, ctx->projection, minp, body)))
		return status;
	rc = evsq__pool_query(ctx->pool, pg->sql, pg->nparams, pg->params, &r, sqlstate, err,
			      sizeof err);
	if (rc)
		return evsq__db_error(body, rc, sqlstate, err);
	rows = PQntuples(r);
	body->len = 0;
	evs__buf_printf(body, "{\"position\":%s", rows ? PQgetvalue(r, 0, 0) : "0");
	if (pg->echo) {
		evs__buf_printf(body, ",\"%s\":", pg->echo);
		evsq__json_str(body, pg->echo_value);
	}
	evs__buf_puts(body, pg->streams ? ",\"streams\":[" : ",\"events\":[");
	for (i = 0; i < rows && !PQgetisnull(r, i, 1); i++) {
		if (i)
			evs__buf_putc(body, ',');
		(pg->streams ? pg_stream : pg_event)(body, r, i);
	}
	evs__buf_putc(body, ']');
	if (pg->paged) {
		evs__buf_puts(body, ",\"next_after\":");
		if (i == pg->limit && i > 0 && pg->streams)
			evsq__json_str(body, PQgetvalue(r, i - 1, 1));
		else if (i == pg->limit && i > 0)
			evs__buf_puts(body, PQgetvalue(r, i - 1, 1));
		else
			evs__buf_puts(body, "null");
	}
	evs__buf_puts(body, "}\n");
	PQclear(r);
	return 200;
}

/* ---------------------------------------------------------------------
 * The routes
 * ------------------------------------------------------------------- */

/* The paging parameters of /events: 0, or 400. */
static unsigned events_paging(const evsq__ctx *ctx, const evsq__args *args,
			      struct evsq__events_req *q, evs__buf *body)
{
	const char *after = evsq__arg(args, "after"), *before = evsq__arg(args, "before");
	const char *dir = evsq__arg(args, "direction");
	int64_t v;

	if (dir && strcmp(dir, "forward") && strcmp(dir, "backward"))
		return evsq__bad_param(body, "direction", dir, "forward or backward");
	q->backward = dir && !strcmp(dir, "backward");
	if (q->id && (after || before || dir || evsq__arg(args, "limit"))) {
		evsq__error(body, "bad_request",
			    "after, before, direction and limit page events, not id=");
		return 400;
	}
	if (after && q->backward) {
		evsq__error(body, "bad_request",
			    "after pages forward; with direction=backward give before");
		return 400;
	}
	if (before && !q->backward) {
		evsq__error(body, "bad_request",
			    "before pages backward: give direction=backward with it");
		return 400;
	}
	if (after && !evsq__parse_u63(after, &v))
		return evsq__bad_param(body, "after", after, "a position (an integer >= 0)");
	if (after)
		q->after = (uint64_t)v;
	if (before && (!evsq__parse_u63(before, &v) || v < 1))
		return evsq__bad_param(body, "before", before, "a position (an integer >= 1)");
	if (before)
		q->before = (uint64_t)v;
	return read_limit(ctx, evsq__arg(args, "limit"), &q->limit, body);
}

unsigned evsq__find_events(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
			   evs__buf *body, const char **ctype)
{
	static const char *const allowed[] = {"correlation", "id",           "type",   "category",
					      "tag",         "after",        "before", "direction",
					      "limit",       "min_position", NULL};
	static const char *const repeatable[] = {"type", "category", "tag", NULL};
	const evsq__ctx *ctx = &srv->ctx;
	struct evsq__events_req q = {0};
	struct pg_page pg = {0};
	char after_s[24], limit_s[24];
	evsq__args args;
	unsigned status;

	(void)rest;
	(void)ctype;
	if ((status = evsq__args_check_multi(conn, allowed, repeatable, &args, body)))
		return status;
	q.corr = evsq__arg(&args, "correlation");
	q.id = evsq__arg(&args, "id");
	if (q.corr && (!uuid_parse16(q.corr, q.corr_id) || nil(q.corr_id)))
		return evsq__bad_param(body, "correlation", q.corr, example_uuid);
	if (q.id && (!uuid_parse16(q.id, q.id_bytes) || nil(q.id_bytes)))
		return evsq__bad_param(body, "id", q.id, example_uuid);
	if ((status = evsq__filter_args_read(&args, &q.f, body)))
		return status;
	if (q.id && (q.corr || q.f.ntypes || q.f.ncategories || q.f.ntags)) {
		evsq__error(body, "bad_request", "id= names one event: give no filter with it");
		status = 400;
		goto out;
	}
	if ((status = events_paging(ctx, &args, &q, body)))
		goto out;
	if (srv->store) {
		status = evsq__events_from_store(srv, evsq__arg(&args, "min_position"), &q, body);
		goto out;
	}
	/* the read model: correlation= or id= only */
	if (!srv->pool) {
		status = evsq__no_database(body);
		goto out;
	}
	if (q.f.ntypes || q.f.ncategories || q.f.ntags || q.backward || (!q.corr && !q.id)) {
		evsq__error(body, "bad_request",
			    "without --store, /events answers correlation= or id= only "
			    "(type=, category=, tag= and direction=backward read the "
			    "store's indexes: start evs-query with --store)");
		status = 400;
		goto out;
	}
	snprintf(after_s, sizeof after_s, "%llu", (unsigned long long)q.after);
	snprintf(limit_s, sizeof limit_s, "%lld", (long long)q.limit);
	pg = (struct pg_page){.sql = q.corr ? sql_correlation : sql_id,
			      .nparams = q.corr ? 4 : 2,
			      .params = {ctx->projection, q.corr ? q.corr : q.id, after_s, limit_s},
			      .echo = q.corr ? "correlation" : "id",
			      .echo_value = q.corr ? q.corr : q.id,
			      .paged = q.corr != NULL,
			      .limit = q.limit};
	status = pg_page(ctx, evsq__arg(&args, "min_position"), &pg, body);
out:
	evsq__filter_args_free(&q.f);
	return status;
}

unsigned evsq__find_streams(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
			    evs__buf *body, const char **ctype)
{
	static const char *const allowed[] = {"prefix", "after", "limit", "min_position", NULL};
	const evsq__ctx *ctx = &srv->ctx;
	const char *prefix, *after;
	char limit_s[24];
	int64_t l = 0;
	evsq__args args;
	unsigned status;

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
	/* a stream id is never empty (an empty prefix is every stream) */
	if (after && !after[0])
		return evsq__bad_param(body, "after", after,
				       "the next_after of a page (a stream id, not empty)");
	if ((status = read_limit(ctx, evsq__arg(&args, "limit"), &l, body)))
		return status;
	snprintf(limit_s, sizeof limit_s, "%lld", (long long)l);
	return pg_page(ctx, evsq__arg(&args, "min_position"),
		       &(struct pg_page){.sql = sql_streams,
					 .nparams = 4,
					 .params = {ctx->projection, prefix ? prefix : "",
						    after ? after : "", limit_s},
					 .streams = true,
					 .paged = true,
					 .limit = l},
		       body);
}
