/*
 * models.c - GET /models...: rows and listings of declared read models
 * (the projection files named by --rules, see projector/README.md
 * "Declared projections"; loaded, with the catalog of their tables, by
 * catalog.c).
 *
 *   GET /models                             the models and their tables
 *   GET /models/{projection}                one model
 *   GET /models/{projection}/{table}/{key}  one row by primary key
 *   GET /models/{projection}/{table}?after=K&limit=L&{column}=V...
 *                                           rows in key order, keyset paged
 *
 * SQL: identifiers only from the declared files and the catalog
 * (catalog.c); a filter's name must equal a catalog column, and then the
 * catalog's quoted spelling goes into SQL. Every value of a request (key,
 * after, filter values, limit, projection) is a statement parameter ($n,
 * text, typed by PostgreSQL from the column it is compared with), so a
 * value PostgreSQL cannot convert is its class 22 error, answered 400.
 * A statement finding the table or a column gone drops the cached
 * catalog entry and runs once more on a fresh read; a second failure
 * (DDL in progress) or a table gone is 503 with its name, never a crash.
 *
 * Position: every row answer reads the projection's checkpoint
 * (evs.checkpoints, the projection's own name) in the same statement as
 * its rows, hence the same snapshot; 0 when it has none yet.
 *
 * Paging: rows ordered by the primary key's columns (their types' order,
 * so bigint keys sort as numbers); limit+1 rows are fetched, so
 * next_after is null exactly on the last page. next_after is the key's
 * text (single column) or a JSON object of the key columns (composite),
 * to be sent back as after.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "models.h"

#define DEFAULT_LIM 100

/* ---- answers ---- */

static void put_model(evs__buf *b, const struct evsq__model *m)
{
	evs__buf_puts(b, "{\"projection\":");
	evsq__json_str(b, m->name);
	evs__buf_puts(b, ",\"schema\":");
	evsq__json_str(b, m->schema);
}

/* {projection, schema, tables: [...]} of one model; the catalog of each
 * table (cached). 0 or the failure status. */
static unsigned describe(const evsq__ctx *ctx, struct evsq__model *m, evs__buf *out, evs__buf *body)
{
	int i, j;

	put_model(out, m);
	evs__buf_puts(out, ",\"tables\":[");
	for (i = 0; i < m->ntables; i++) {
		struct evsq__tinfo *ti;
		unsigned status = 0;
		int got = evsq__tinfo_get(ctx, m, &m->tables[i], &ti, &status, body);

		if (got == EVSQ__T_FAILED)
			return status;
		evs__buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
		evsq__json_str(out, m->tables[i].name);
		if (got == EVSQ__T_MISSING) {
			evs__buf_puts(out, ",\"missing\":true}");
			continue;
		}
		evs__buf_puts(out, ",\"primary_key\":[");
		for (j = 0; j < ti->npk; j++) {
			if (j)
				evs__buf_putc(out, ',');
			evsq__json_str(out, ti->cols[ti->pk[j]].name);
		}
		evs__buf_puts(out, "],\"columns\":[");
		for (j = 0; j < ti->ncols; j++) {
			evs__buf_puts(out, j ? ",{\"name\":" : "{\"name\":");
			evsq__json_str(out, ti->cols[j].name);
			evs__buf_puts(out, ",\"type\":");
			evsq__json_str(out, ti->cols[j].type);
			evs__buf_putc(out, '}');
		}
		evs__buf_puts(out, "]}");
		evsq__tinfo_release(ctx->models, ti);
	}
	evs__buf_puts(out, "]}");
	return 0;
}

static unsigned list_models(const evsq__ctx *ctx, struct evsq__model *one, evs__buf *body)
{
	evsq__models *ms = ctx->models;
	evs__buf out = {0};
	unsigned status = 0;
	int i;

	if (!one)
		evs__buf_puts(&out, "{\"models\":[");
	for (i = 0; ms && i < ms->n && !status; i++) {
		if (one && one != &ms->m[i])
			continue;
		if (!one && i)
			evs__buf_putc(&out, ',');
		status = describe(ctx, &ms->m[i], &out, body);
	}
	if (!one)
		evs__buf_puts(&out, "]}");
	evs__buf_putc(&out, '\n');
	if (!status) {
		evs__buf_free(body);
		*body = out;
		return out.oom ? (evsq__error(body, "internal", "out of memory"), 500) : 200;
	}
	evs__buf_free(&out);
	return status;
}

/* The listing statement of a page over src (the table, or its rows then
 * from evsq__models_source). Parameters: $1 projection, the time or
 * position if base is 2, then after (if any), the filters in args order,
 * the limit. */
static void listing_sql(evs__buf *sql, const struct evsq__tinfo *ti, const evsq__args *a,
			const char *src, int base, bool after, const char **params, int *np)
{
	int i, j, ap = base + 1;

	evs__buf_puts(sql, "SELECT (SELECT position FROM evs.checkpoints WHERE projection = $1), ");
	if (!after || ti->npk == 1) {
		evs__buf_puts(sql, "true");
	} else {
		/* a composite after must name every key column */
		evs__buf_printf(sql, "jsonb_typeof($%d::jsonb) = 'object' AND $%d::jsonb ?& ARRAY[",
				ap, ap);
		for (i = 0; i < ti->npk; i++)
			evs__buf_printf(sql, "%s%s::text", i ? "," : "",
					ti->cols[ti->pk[i]].literal);
		evs__buf_puts(sql, "]");
	}
	evs__buf_puts(sql, ", r.* FROM (VALUES (1)) v LEFT JOIN LATERAL (SELECT ");
	if (ti->npk == 1) {
		evs__buf_printf(sql, "t.%s::text", ti->cols[ti->pk[0]].quoted);
	} else {
		evs__buf_puts(sql, "jsonb_build_object(");
		for (i = 0; i < ti->npk; i++)
			evs__buf_printf(sql, "%s%s, t.%s", i ? ", " : "",
					ti->cols[ti->pk[i]].literal, ti->cols[ti->pk[i]].quoted);
		evs__buf_puts(sql, ")::text");
	}
	evs__buf_puts(sql, " AS k");
	evsq__row_select(sql, ti, "t", false);
	evs__buf_printf(sql, " FROM %s t WHERE true", src);
	*np = base;
	if (after) {
		*np = ap;
		if (ti->npk == 1) {
			evs__buf_printf(sql, " AND t.%s > $%d", ti->cols[ti->pk[0]].quoted, ap);
		} else {
			evs__buf_puts(sql, " AND (");
			for (i = 0; i < ti->npk; i++)
				evs__buf_printf(sql, "%st.%s", i ? ", " : "",
						ti->cols[ti->pk[i]].quoted);
			evs__buf_puts(sql, ") > (SELECT ");
			for (i = 0; i < ti->npk; i++)
				evs__buf_printf(sql, "%sx.%s", i ? ", " : "",
						ti->cols[ti->pk[i]].quoted);
			evs__buf_printf(sql, " FROM jsonb_populate_record(NULL::%s, $%d::jsonb) x)",
					ti->qname, ap);
		}
	}
	for (i = 0; i < a->n; i++) {
		for (j = 0; j < ti->ncols && strcmp(a->a[i].key, ti->cols[j].name); j++)
			;
		if (j == ti->ncols)
			continue; /* after, limit, min_position */
		params[*np] = a->a[i].value;
		(*np)++;
		evs__buf_printf(sql, " AND t.%s = $%d", ti->cols[j].quoted, *np);
	}
	evs__buf_puts(sql, " ORDER BY ");
	for (i = 0; i < ti->npk; i++)
		evs__buf_printf(sql, "%st.%s", i ? ", " : "", ti->cols[ti->pk[i]].quoted);
	(*np)++;
	evs__buf_printf(sql, " LIMIT $%d::int) r ON true", *np);
}

static bool reserved(const char *key)
{
	return !strcmp(key, "after") || !strcmp(key, "limit") || !strcmp(key, "min_position") ||
	       !strcmp(key, "as_of") || !strcmp(key, "at_position");
}

/* GET /models/{p}/{t}?after=&limit=&col=v */
static unsigned get_rows(const evsq__ctx *ctx, const struct evsq__model *m, struct evsq__table *t,
			 const evsq__args *a, const struct evsq__when *w, evs__buf *body)
{
	const char *after = evsq__arg(a, "after"), *lim = evsq__arg(a, "limit");
	const char *params[EVSQ__MAX_ARGS + 3];
	char msg[768], lim_s[24];
	int64_t l = DEFAULT_LIM;
	unsigned status = 0;
	int attempt, i, j;

	if (lim && (!evsq__parse_u63(lim, &l) || l < 1 || l > ctx->page_max)) {
		snprintf(msg, sizeof msg, "an integer from 1 to %ld", ctx->page_max);
		return evsq__bad_param(body, "limit", lim, msg);
	}
	if (after && !after[0]) /* the first page has no after */
		return evsq__bad_param(body, "after", after, "the next_after of a page");
	snprintf(lim_s, sizeof lim_s, "%lld", (long long)l + 1);
	for (attempt = 0; attempt < 2; attempt++) {
		struct evsq__tinfo *ti;
		evs__buf sql = {0}, src = {0};
		PGresult *r;
		int rc, np, rows, got = evsq__tinfo_get(ctx, m, t, &ti, &status, body);

		if (got == EVSQ__T_FAILED)
			return status;
		if (got == EVSQ__T_MISSING)
			return evsq__table_missing(body, m, t);
		if (ti->npk == 0) {
			evsq__tinfo_release(ctx->models, ti);
			snprintf(msg, sizeof msg,
				 "table \"%.200s\" of read model \"%.200s\" has no primary key: "
				 "it cannot be paged",
				 t->name, m->name);
			evsq__error(body, "bad_request", msg);
			return 400;
		}
		for (i = 0; i < a->n; i++) {
			if (reserved(a->a[i].key))
				continue;
			for (j = 0; j < ti->ncols && strcmp(a->a[i].key, ti->cols[j].name); j++)
				;
			if (j == ti->ncols) {
				evsq__tinfo_release(ctx->models, ti);
				snprintf(msg, sizeof msg,
					 "unknown parameter \"%.100s\": table \"%.200s\" of read "
					 "model \"%.200s\" has no such column",
					 a->a[i].key, t->name, m->name);
				evsq__error(body, "bad_request", msg);
				return 400;
			}
		}
		params[0] = m->name;
		params[1] = w->value;
		params[w->kind ? 2 : 1] = after;
		if ((status = evsq__models_source(ctx, m, t, ti, w, 2, &src, body))) {
			evsq__tinfo_release(ctx->models, ti);
			return status;
		}
		if (!evs__buf_cstr(&src)) {
			evsq__tinfo_release(ctx->models, ti);
			return evsq__db_error(body, EVSQ_NOMEM, "", "");
		}
		listing_sql(&sql, ti, a, src.ptr, w->kind ? 2 : 1, after != NULL, params, &np);
		evs__buf_free(&src);
		params[np - 1] = lim_s;
		rc = evsq__run_table_query(ctx, m, t, ti, &sql, np, params, attempt, &r, body);
		if (rc == EVSQ__RETRY)
			continue;
		if (rc)
			return (unsigned)rc;
		if (strcmp(PQgetvalue(r, 0, 1), "t")) {
			evs__buf keys = {0};

			for (i = 0; i < ti->npk; i++)
				evs__buf_printf(&keys, "%s\"%s\"", i ? ", " : "",
						ti->cols[ti->pk[i]].name);
			evs__buf_cstr(&keys);
			snprintf(msg, sizeof msg,
				 "invalid after \"%.100s\": expected a JSON object with the key "
				 "columns %.200s (the next_after of a page)",
				 after, keys.ptr ? keys.ptr : "");
			evs__buf_free(&keys);
			evsq__tinfo_release(ctx->models, ti);
			PQclear(r);
			evsq__error(body, "bad_request", msg);
			return 400;
		}
		rows = PQntuples(r);
		evsq__put_head(body, m, t, r, 0, 0);
		evsq__put_when(body, w);
		evs__buf_puts(body, ",\"rows\":[");
		for (i = 0; i < rows && i < l && !PQgetisnull(r, i, 2); i++) {
			if (i)
				evs__buf_putc(body, ',');
			evsq__row_json(body, ti, false, r, i, 3);
		}
		evsq__tinfo_release(ctx->models, ti);
		evs__buf_puts(body, "],\"next_after\":");
		if (rows > l)
			evsq__json_str(body, PQgetvalue(r, (int)l - 1, 2));
		else
			evs__buf_puts(body, "null");
		evs__buf_puts(body, "}\n");
		PQclear(r);
		return 200;
	}
	return 500; /* not reached: the second attempt always answers */
}

/* ---- routing ---- */

/* "KEY/history": true with the key's length. */
bool evsq__history_key(const char *p, size_t *len)
{
	size_t n = strlen(p);

	if (n <= 8 || strcmp(p + n - 8, "/history"))
		return false;
	*len = n - 8;
	return true;
}

/* Length of name when it is the start of p up to a '/' or the end, else
 * 0 (callers keep the longest match, as names may hold '/'). */
static size_t match(const char *p, const char *name)
{
	size_t n = strlen(name);

	return !strncmp(p, name, n) && (p[n] == '\0' || p[n] == '/') ? n : 0;
}

int evsq__models_find(const evsq__models *ms, const char *p, struct evsq__model **mp,
		      struct evsq__table **tp, const char **rest, evs__buf *body)
{
	struct evsq__model *m = NULL;
	struct evsq__table *t = NULL;
	size_t best = 0, n;
	char msg[768];
	int i;

	for (i = 0; ms && i < ms->n; i++)
		if ((n = match(p, ms->m[i].name)) > best) {
			best = n;
			m = &ms->m[i];
		}
	if (!m) {
		snprintf(msg, sizeof msg, "no read model \"%.*s\"%s", (int)strcspn(p, "/"), p,
			 ms ? "" : ": none declared (start evs-query with --rules)");
		if (body)
			evsq__error(body, "not_found", msg);
		return 404;
	}
	p += best;
	if (*p == '/')
		p++;
	*mp = m;
	*tp = NULL;
	if (!*p)
		return EVSQ__P_MODEL;
	best = 0;
	for (i = 0; i < m->ntables; i++)
		if ((n = match(p, m->tables[i].name)) > best) {
			best = n;
			t = &m->tables[i];
		}
	if (!t) {
		snprintf(msg, sizeof msg, "read model \"%.200s\" has no table \"%.*s\"", m->name,
			 (int)(strcspn(p, "/") > 200 ? 200 : strcspn(p, "/")), p);
		if (body)
			evsq__error(body, "not_found", msg);
		return 404;
	}
	*tp = t;
	*rest = p + best;
	return EVSQ__P_TABLE;
}

unsigned evsq__models_serve(const evsq__ctx *ctx, struct MHD_Connection *conn, const char *rest,
			    evs__buf *body)
{
	static const char *const just_min[] = {"min_position", "as_of", "at_position", NULL};
	static const char *const hist[] = {"min_position", "after", "limit", NULL};
	const char *const *allowed = just_min, *const *list = NULL;
	struct evsq__when w;
	size_t hlen = 0;
	struct evsq__model *m = NULL;
	struct evsq__table *t = NULL;
	evsq__args a;
	const char *p = NULL;
	unsigned status;
	int found;

	if (!rest[0] || !strcmp(rest, "/")) {
		if ((status = evsq__args_check(conn, just_min + 3, &a, body)))
			return status;
		return list_models(ctx, NULL, body);
	}
	found = evsq__models_find(ctx->models, rest + 1, &m, &t, &p, body);
	if (found == 404)
		return 404;
	if (found == EVSQ__P_MODEL) {
		if ((status = evsq__args_check(conn, just_min + 3, &a, body)))
			return status;
		return list_models(ctx, m, body);
	}
	if (!*p)
		allowed = list;
	else if (evsq__history_key(p + 1, &hlen))
		allowed = hist;
	if ((status = evsq__args_check(conn, allowed, &a, body)))
		return status;
	status = evsq__watch_min_position(ctx, m->name, evsq__arg(&a, "min_position"), body);
	if (status)
		return status;
	if (allowed == hist) {
		char *key = strndup(p + 1, hlen);

		if (!key) {
			evsq__error(body, "internal", "out of memory");
			return 500;
		}
		memset(&w, 0, sizeof w);
		status = evsq__models_key(ctx, m, t, key, EVSQ__K_HISTORY, &w, &a, body);
		free(key);
		return status;
	}
	if ((status = evsq__when_read(ctx, m->name, &a, &w, body)))
		return status;
	if (!*p)
		return get_rows(ctx, m, t, &a, &w, body);
	return evsq__models_key(ctx, m, t, p + 1, w.kind ? EVSQ__K_THEN : EVSQ__K_NOW, &w, &a,
				body);
}
