/*
 * models_time.c - the temporal side of GET /models/...: a declared
 * table's rows as of a time or at a position, and a row's history,
 * read from the table's history (contract C1 of issue 10, written by the
 * projector: projector/README.md "Temporal tables").
 *
 *   GET /models/{p}/{t}/{key}?as_of=T        one key as of T
 *   GET /models/{p}/{t}/{key}?at_position=N  one key after position N
 *   GET /models/{p}/{t}?as_of=T&...          listing as of T (filters,
 *   GET /models/{p}/{t}?at_position=N&...    after, limit as without)
 *   GET /models/{p}/{t}/{key}/history?after=P&limit=L
 *                                            the key's versions in
 *                                            position order, paged
 *
 * History table s.t_history: t's columns, then valid_from_position,
 * valid_to_position, valid_from_at, valid_to_at (NULL "to": still
 * valid). "As of T" is after every event recorded at or before T; "at N"
 * after every event at or before position N.
 *
 * One key as of T is one probe of the index (key, valid_from_at): the
 * last version that began at or before T, found only if it had not
 * ended by T (a delete ends a version and leaves none after it; a
 * version begun and ended by one commit is never seen as of a time).
 * At a position the same with the primary key (key, valid_from_position).
 *
 * T: RFC 3339 (params.c), cut to the microsecond (never rounded up: the
 * projector floors event times the same way), sent as a timestamptz
 * parameter in PostgreSQL's text. N: a non-negative integer, and the
 * answer waits for the projection's checkpoint to reach N like
 * min_position (409 projection_behind if it does not): the rows after N
 * are only known once N is projected. An as_of answer states the
 * checkpoint it was read at; a T past the last projected event is
 * answered with what is projected, and its position says so.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "models.h"

unsigned evsq__when_read(const evsq__ctx *ctx, const char *projection, const evsq__args *a,
			 struct evsq__when *w, evs__buf *body)
{
	const char *as_of = evsq__arg(a, "as_of"), *at = evsq__arg(a, "at_position");
	int64_t n;

	memset(w, 0, sizeof *w);
	if (as_of && at) {
		evsq__error(body, "bad_request", "as_of and at_position exclude each other");
		return 400;
	}
	if (as_of) {
		int64_t us, sec;
		time_t ts;
		struct tm tm;

		if (!evsq__rfc3339_valid(as_of))
			return evsq__bad_param(
				body, "as_of", as_of,
				"an RFC 3339 date-time such as 2024-05-01T12:00:00Z");
		/* PostgreSQL's text in UTC from the microseconds (cut): years
		 * 0001-9999, past the store's int64 nanoseconds */
		us = evsq__rfc3339_us(as_of);
		sec = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
		ts = (time_t)sec;
		if (!gmtime_r(&ts, &tm) || tm.tm_year + 1900 < 1)
			return evsq__bad_param(body, "as_of", as_of,
					       "a time from 0001-01-01T00:00:00Z to 9999");
		snprintf(w->value, sizeof w->value, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (long long)(us - sec * 1000000));
		w->kind = EVSQ__W_AS_OF;
		w->raw = as_of;
		return 0;
	}
	if (at) {
		if (!evsq__parse_u63(at, &n))
			return evsq__bad_param(body, "at_position", at, "a non-negative integer");
		w->kind = EVSQ__W_AT;
		w->raw = at;
		snprintf(w->value, sizeof w->value, "%lld", (long long)n);
		return evsq__watch_wait(ctx, projection, n, body);
	}
	return 0;
}

/* The history table of t, checked to have the validity columns: 0 with
 * *out held, else the answer's status (400: t keeps no history). */
static unsigned history_info(const evsq__ctx *ctx, const struct evsq__model *m,
			     struct evsq__table *t, struct evsq__tinfo **out, evs__buf *body)
{
	struct evsq__tinfo *hi;
	unsigned status = 0;
	char msg[1024];
	int got = evsq__tinfo_get(ctx, m, t->history, &hi, &status, body);

	if (got == EVSQ__T_FAILED)
		return status;
	if (got == EVSQ__T_MISSING && !t->current_only) {
		/* declared temporal: the projector makes it at its start */
		snprintf(msg, sizeof msg,
			 "the history of table \"%.200s\" of read model \"%.200s\" is not in "
			 "the read-model database yet (\"%.200s.%.200s\": the projector creates "
			 "it when it starts)",
			 t->name, m->name, m->schema, t->history->name);
		evsq__error(body, "unavailable", msg);
		return 503;
	}
	if (got == EVSQ__T_OK) {
		if (evsq__has_validity(hi)) {
			*out = hi;
			return 0;
		}
		evsq__tinfo_release(ctx->models, hi);
	}
	snprintf(msg, sizeof msg,
		 "table \"%.200s\" of read model \"%.200s\" keeps no history (%s): "
		 "as_of, at_position and /history are not served for it",
		 t->name, m->name,
		 t->current_only ? "declared \"current\" in its projection file"
				 : "its history table has no validity columns");
	evsq__error(body, "bad_request", msg);
	return 400;
}

/* The statement about one key (what: EVSQ__K_*), $1 projection, $2 key,
 * then $3 the time or position (THEN) or $3 after, $4 limit (HISTORY).
 * Columns: checkpoint, found (NULL: no row), the validity (not NOW), the
 * row (model_row.c). */
static void key_sql(evs__buf *sql, const struct evsq__tinfo *ti, const struct evsq__tinfo *hi,
		    int what, int wkind)
{
	const char *col = wkind == EVSQ__W_AS_OF ? "at" : "position";
	const char *type = wkind == EVSQ__W_AS_OF ? "timestamptz" : "bigint";
	const char *key = ti->cols[ti->pk[0]].quoted;

	evs__buf_puts(sql, "SELECT (SELECT position FROM evs.checkpoints WHERE projection = $1),"
			   " r.* FROM (VALUES (1)) v LEFT JOIN LATERAL (SELECT true");
	if (what == EVSQ__K_NOW) {
		evsq__row_select(sql, ti, "x", false);
		evs__buf_printf(sql, " FROM %s x WHERE x.%s = $2) r ON true", ti->qname, key);
		return;
	}
	evsq__validity_select(sql, "x");
	evsq__row_select(sql, hi, "x", true);
	if (what == EVSQ__K_HISTORY)
		evs__buf_printf(sql,
				" FROM %s x WHERE x.%s = $2 AND x.valid_from_position > $3::bigint"
				" ORDER BY x.valid_from_position LIMIT $4::int) r ON true",
				hi->qname, key);
	else
		evs__buf_printf(sql,
				" FROM (SELECT * FROM %s y WHERE y.%s = $2 AND y.valid_from_%s <= "
				"$3::%s ORDER BY y.valid_from_%s DESC, y.valid_from_position DESC"
				" LIMIT 1) x WHERE x.valid_to_%s IS NULL OR x.valid_to_%s > $3::%s)"
				" r ON true",
				hi->qname, key, col, type, col, col, col, type);
}

void evsq__put_when(evs__buf *b, const struct evsq__when *w)
{
	if (w->kind == EVSQ__W_AS_OF) {
		evs__buf_puts(b, ",\"as_of\":");
		evsq__json_str(b, w->raw);
	} else if (w->kind == EVSQ__W_AT) {
		evs__buf_printf(b, ",\"at_position\":%s", w->value);
	}
}

unsigned evsq__key_missing(evs__buf *body, const struct evsq__model *m, const struct evsq__table *t,
			   const char *key, int what, const struct evsq__when *w)
{
	char msg[768];
	int n = snprintf(msg, sizeof msg,
			 "no row with key \"%.200s\" in table \"%.200s\" of read model \"%.200s\"",
			 key, t->name, m->name);

	if (what == EVSQ__K_THEN)
		snprintf(msg + n, sizeof msg - (size_t)n, " %s %.64s",
			 w->kind == EVSQ__W_AS_OF ? "as of" : "at position", w->raw);
	else if (what == EVSQ__K_HISTORY)
		snprintf(msg + n, sizeof msg - (size_t)n, ", ever");
	evsq__error(body, "not_found", msg);
	return 404;
}

void evsq__key_json(evs__buf *b, const struct evsq__model *m, const struct evsq__table *t,
		    const struct evsq__tinfo *ri, const char *key, int what,
		    const struct evsq__when *w, const PGresult *r, int row, int col, int64_t limit)
{
	int i, rows = PQntuples(r);

	evsq__put_head(b, m, t, r, row, col);
	if (what == EVSQ__K_NOW) {
		evs__buf_puts(b, ",\"row\":");
		evsq__row_json(b, ri, false, r, row, col + 2);
	} else if (what == EVSQ__K_THEN) {
		evsq__put_when(b, w);
		evs__buf_putc(b, ',');
		evsq__validity_json(b, r, row, col + 2);
		evs__buf_puts(b, ",\"row\":");
		evsq__row_json(b, ri, true, r, row, col + 6);
	} else {
		evs__buf_puts(b, ",\"key\":");
		evsq__json_str(b, key);
		evs__buf_puts(b, ",\"versions\":[");
		for (i = row; i < rows && i - row < limit && !PQgetisnull(r, i, col + 1); i++) {
			evs__buf_puts(b, i > row ? ",{" : "{");
			evsq__validity_json(b, r, i, col + 2);
			evs__buf_puts(b, ",\"row\":");
			evsq__row_json(b, ri, true, r, i, col + 6);
			evs__buf_putc(b, '}');
		}
		evs__buf_puts(b, "],\"next_after\":");
		if (rows - row > limit)
			evs__buf_puts(b, PQgetvalue(r, row + (int)limit - 1, col + 2));
		else
			evs__buf_puts(b, "null");
	}
	evs__buf_puts(b, "}\n");
}

unsigned evsq__models_key(const evsq__ctx *ctx, const struct evsq__model *m, struct evsq__table *t,
			  const char *key, int what, const struct evsq__when *w,
			  const evsq__args *a, evs__buf *body)
{
	const char *after = evsq__arg(a, "after"), *lim = evsq__arg(a, "limit");
	char msg[128], lim_s[24], after_s[24];
	const char *params[4] = {m->name, key, what == EVSQ__K_THEN ? w->value : after_s, lim_s};
	int64_t l = 100, af = 0;
	unsigned status;
	int attempt;

	if (what == EVSQ__K_HISTORY) {
		if (after && !evsq__parse_u63(after, &af))
			return evsq__bad_param(body, "after", after,
					       "a non-negative integer (the next_after of a page)");
		if (lim && (!evsq__parse_u63(lim, &l) || l < 1 || l > ctx->page_max)) {
			snprintf(msg, sizeof msg, "an integer from 1 to %ld", ctx->page_max);
			return evsq__bad_param(body, "limit", lim, msg);
		}
	}
	snprintf(after_s, sizeof after_s, "%lld", (long long)af);
	snprintf(lim_s, sizeof lim_s, "%lld", (long long)l + 1);
	for (attempt = 0; attempt < 2; attempt++) {
		struct evsq__tinfo *ti, *hi = NULL, *ri;
		evs__buf sql = {0};
		PGresult *r;
		int rc;

		if ((status = evsq__key_info(ctx, m, t, &ti, body)))
			return status;
		if (what != EVSQ__K_NOW && (status = history_info(ctx, m, t, &hi, body))) {
			evsq__tinfo_release(ctx->models, ti);
			return status;
		}
		key_sql(&sql, ti, hi, what, w->kind);
		ri = hi ? hi : ti; /* the table the statement reads */
		if (hi)
			evsq__tinfo_release(ctx->models, ti);
		rc = evsq__run_table_query(ctx, m, hi ? t->history : t, ri, &sql,
					   what == EVSQ__K_NOW    ? 2
					   : what == EVSQ__K_THEN ? 3
								  : 4,
					   params, attempt, &r, body);
		if (rc == EVSQ__RETRY)
			continue;
		if (rc)
			return (unsigned)rc;
		if (PQgetisnull(r, 0, 1) && (what != EVSQ__K_HISTORY || !after)) {
			evsq__tinfo_release(ctx->models, ri);
			PQclear(r);
			return evsq__key_missing(body, m, t, key, what, w);
		}
		evsq__key_json(body, m, t, ri, key, what, w, r, 0, 0, l);
		evsq__tinfo_release(ctx->models, ri);
		PQclear(r);
		return 200;
	}
	return 500; /* not reached: the second attempt always answers */
}

/* The FROM source of a listing then: the table's columns of the version
 * of each key valid at $param (a time or a position). */
unsigned evsq__models_source(const evsq__ctx *ctx, const struct evsq__model *m,
			     struct evsq__table *t, const struct evsq__tinfo *ti,
			     const struct evsq__when *w, int param, evs__buf *sql, evs__buf *body)
{
	const char *col = w->kind == EVSQ__W_AS_OF ? "at" : "position";
	const char *type = w->kind == EVSQ__W_AS_OF ? "timestamptz" : "bigint";
	struct evsq__tinfo *hi;
	unsigned status;
	int i;

	if (!w->kind) {
		evs__buf_puts(sql, ti->qname);
		return 0;
	}
	if ((status = history_info(ctx, m, t, &hi, body)))
		return status;
	evs__buf_puts(sql, "(SELECT ");
	for (i = 0; i < ti->ncols; i++)
		evs__buf_printf(sql, "%sx.%s", i ? ", " : "", ti->cols[i].quoted);
	evs__buf_printf(sql, " FROM (SELECT DISTINCT ON (");
	for (i = 0; i < ti->npk; i++)
		evs__buf_printf(sql, "%sy.%s", i ? ", " : "", ti->cols[ti->pk[i]].quoted);
	evs__buf_printf(sql, ") * FROM %s y WHERE y.valid_from_%s <= $%d::%s ORDER BY ", hi->qname,
			col, param, type);
	for (i = 0; i < ti->npk; i++)
		evs__buf_printf(sql, "y.%s, ", ti->cols[ti->pk[i]].quoted);
	evs__buf_printf(sql,
			"y.valid_from_%s DESC, y.valid_from_position DESC) x"
			" WHERE x.valid_to_%s IS NULL OR x.valid_to_%s > $%d::%s)",
			col, col, col, param, type);
	evsq__tinfo_release(ctx->models, hi);
	return 0;
}
