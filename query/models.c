/*
 * models.c - GET /models...: rows and listings of declared read models
 * (the projection files named by --rules, see projector/README.md
 * "Declared projections").
 *
 *   GET /models                             the models and their tables
 *   GET /models/{projection}                one model
 *   GET /models/{projection}/{table}/{key}  one row by primary key
 *   GET /models/{projection}/{table}?after=K&limit=L&{column}=V...
 *                                           rows in key order, keyset paged
 *
 * Where identifiers come from: the projection, schema and table names
 * only from the declared files (loaded at start), column names, types
 * and the primary key only from PostgreSQL's catalog, quoted by
 * PostgreSQL itself (format('%I')) in the catalog statement. A request
 * never supplies an identifier: a filter's name must equal a catalog
 * column, and then the catalog's quoted spelling goes into SQL. Every
 * value of a request (key, after, filter values, limit, projection) is a
 * statement parameter ($n, text, typed by PostgreSQL from the column it
 * is compared with), so a value PostgreSQL cannot convert is its class 22
 * error, answered 400.
 *
 * Why not PQescapeIdentifier: the pool lends a connection for one
 * statement and keeps it (pool.c), and the names are catalog text anyway;
 * format('%I') is the server's own quoting rule (keywords, case, quotes).
 *
 * Catalog cache: a read model's tables are fixed by migrations, so what
 * the catalog says about a table is read on first use and kept (struct
 * tinfo, immutable, shared by reference count). A statement failing with
 * "undefined table/column" drops the entry and is tried once more with a
 * fresh read; a table gone from the catalog is answered 503 with its
 * name (the service's database lacks a declared table), never a crash.
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "internal.h"

#define MAX_ARGS    64
#define DEFAULT_LIM 100

struct column {
	char *name;    /* as in the catalog */
	char *quoted;  /* format('%I', name) */
	char *literal; /* quote_literal(name) */
	char *type;    /* format_type() */
	int key_pos;   /* place in the primary key, -1 if not in it */
};

/* What the catalog says about one table; immutable once built. */
struct tinfo {
	int refs;    /* under evsq__models.mu */
	char *qname; /* "schema"."table", quoted by PostgreSQL */
	struct column *cols;
	int ncols;
	int *pk; /* indices into cols, in key order */
	int npk;
};

struct table {
	char *name;         /* as declared (without a "schema." prefix) */
	struct tinfo *info; /* cached catalog, or NULL */
};

struct model {
	char *name; /* projection (checkpoint) name */
	char *schema;
	struct table *tables;
	int ntables;
};

struct evsq__models {
	pthread_mutex_t mu;
	struct model *m;
	int n;
};

/* ---- loading (at start) ---- */

static void tinfo_free(struct tinfo *ti)
{
	int i;

	if (!ti)
		return;
	for (i = 0; i < ti->ncols; i++) {
		free(ti->cols[i].name);
		free(ti->cols[i].quoted);
		free(ti->cols[i].literal);
		free(ti->cols[i].type);
	}
	free(ti->cols);
	free(ti->pk);
	free(ti->qname);
	free(ti);
}

void evsq__models_free(evsq__models *ms)
{
	int i, j;

	if (!ms)
		return;
	for (i = 0; i < ms->n; i++) {
		for (j = 0; j < ms->m[i].ntables; j++) {
			free(ms->m[i].tables[j].name);
			tinfo_free(ms->m[i].tables[j].info);
		}
		free(ms->m[i].tables);
		free(ms->m[i].name);
		free(ms->m[i].schema);
	}
	free(ms->m);
	pthread_mutex_destroy(&ms->mu);
	free(ms);
}

/* One projection file into a new model of ms. */
static int add_model(evsq__models *ms, const char *path, char *err, size_t errlen)
{
	evp_rules *r = NULL;
	struct model *m;
	const char *p;
	int i, rc;

	if ((rc = evp_rules_load(path, &r, err, errlen)))
		return rc == EVP_NOMEM ? EVSQ_NOMEM : EVSQ_INVALID;
	if (!evp_rules_schema(r) || !evp_rules_tables(r)) {
		snprintf(err, errlen,
			 "projection file \"%s\": no \"schema\" or \"tables\" line: the query "
			 "service serves the tables they name",
			 path);
		evp_rules_free(r);
		return EVSQ_INVALID;
	}
	for (i = 0; i < ms->n; i++)
		if (!strcmp(ms->m[i].name, evp_rules_name(r))) {
			snprintf(err, errlen, "projection \"%s\" is declared twice (\"%s\")",
				 evp_rules_name(r), path);
			evp_rules_free(r);
			return EVSQ_INVALID;
		}
	m = realloc(ms->m, (size_t)(ms->n + 1) * sizeof *m);
	if (!m)
		goto oom;
	ms->m = m;
	m = &ms->m[ms->n++];
	memset(m, 0, sizeof *m);
	if (!(m->name = strdup(evp_rules_name(r))) || !(m->schema = strdup(evp_rules_schema(r))))
		goto oom;
	for (p = evp_rules_tables(r); *p;) {
		size_t len = strcspn(p, " \t"), dot;
		struct table *t;
		char *name;

		if (len == 0) {
			p++;
			continue;
		}
		/* the projector's rule: a "schema." prefix is dropped */
		for (dot = len; dot > 0 && p[dot - 1] != '.'; dot--)
			;
		if (!(name = strndup(p + dot, len - dot)))
			goto oom;
		p += len;
		for (i = 0; i < m->ntables && strcmp(m->tables[i].name, name); i++)
			;
		if (i < m->ntables || !name[0]) {
			free(name);
			continue;
		}
		t = realloc(m->tables, (size_t)(m->ntables + 1) * sizeof *t);
		if (!t) {
			free(name);
			goto oom;
		}
		m->tables = t;
		m->tables[m->ntables].name = name;
		m->tables[m->ntables].info = NULL;
		m->ntables++;
	}
	evp_rules_free(r);
	return EVSQ_OK;
oom:
	evp_rules_free(r);
	snprintf(err, errlen, "out of memory");
	return EVSQ_NOMEM;
}

int evsq__models_load(const char *rules, evsq__models **out, char *err, size_t errlen)
{
	evsq__models *ms;
	const char *p = rules;
	int rc = EVSQ_OK;

	*out = NULL;
	if (!rules || !rules[0])
		return EVSQ_OK;
	if (!(ms = calloc(1, sizeof *ms))) {
		snprintf(err, errlen, "out of memory");
		return EVSQ_NOMEM;
	}
	pthread_mutex_init(&ms->mu, NULL);
	while (*p && rc == EVSQ_OK) {
		size_t len = strcspn(p, ","), a = 0, b = len;
		char *path;

		while (a < b && (p[a] == ' ' || p[a] == '\t'))
			a++;
		while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
			b--;
		if (b > a) {
			if (!(path = strndup(p + a, b - a))) {
				snprintf(err, errlen, "out of memory");
				rc = EVSQ_NOMEM;
				break;
			}
			rc = add_model(ms, path, err, errlen);
			free(path);
		}
		p += len;
		if (*p == ',')
			p++;
	}
	if (rc) {
		evsq__models_free(ms);
		return rc;
	}
	*out = ms;
	return EVSQ_OK;
}

/* ---- catalog ---- */

/* $1 schema, $2 table: one row per column. */
static const char catalog_sql[] =
	"SELECT format('%I.%I', n.nspname, c.relname), a.attname, format('%I', a.attname),"
	" quote_literal(a.attname), format_type(a.atttypid, a.atttypmod),"
	" array_position(i.indkey::int2[], a.attnum)"
	" FROM pg_catalog.pg_class c"
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
	"  AND NOT a.attisdropped"
	" LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary"
	" WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
	" ORDER BY a.attnum";

/* PostgreSQL's message without "ERROR:  " and past its first line. */
static void pg_message(char *out, size_t n, const char *err)
{
	size_t len;

	if (!strncmp(err, "ERROR:  ", 8))
		err += 8;
	len = strcspn(err, "\n");
	snprintf(out, n, "%.*s", (int)len, err);
}

static unsigned db_error(evp_buf *body, int rc, const char *sqlstate, const char *err)
{
	char msg[1024];

	pg_message(msg, sizeof msg, err);
	if (rc == EVSQ_UNAVAILABLE) {
		evsq__error(body, "unavailable", msg);
		return 503;
	}
	if (rc == EVSQ_NOMEM) {
		evsq__error(body, "internal", "out of memory");
		return 500;
	}
	/* 22: a value PostgreSQL could not take for the column's type;
	 * 42883: no equality for the type of a filtered column (json) */
	if (!strncmp(sqlstate, "22", 2) || !strcmp(sqlstate, "42883")) {
		evsq__error(body, "bad_request", msg);
		return 400;
	}
	if (!strcmp(sqlstate, "57014")) {
		evsq__error(body, "unavailable", "statement timed out");
		return 503;
	}
	evsq__error(body, "internal", msg);
	return 500;
}

static int build_tinfo(const PGresult *r, struct tinfo **out)
{
	int n = PQntuples(r), i, j;
	struct tinfo *ti = calloc(1, sizeof *ti);

	if (!ti || !(ti->cols = calloc((size_t)n, sizeof *ti->cols)) ||
	    !(ti->pk = calloc((size_t)n, sizeof *ti->pk)) ||
	    !(ti->qname = strdup(PQgetvalue(r, 0, 0))))
		goto oom;
	for (i = 0; i < n; i++) {
		struct column *c = &ti->cols[i];

		ti->ncols++;
		c->key_pos = PQgetisnull(r, i, 5) ? -1 : atoi(PQgetvalue(r, i, 5));
		if (!(c->name = strdup(PQgetvalue(r, i, 1))) ||
		    !(c->quoted = strdup(PQgetvalue(r, i, 2))) ||
		    !(c->literal = strdup(PQgetvalue(r, i, 3))) ||
		    !(c->type = strdup(PQgetvalue(r, i, 4))))
			goto oom;
		if (c->key_pos >= 0) {
			/* insertion by place in the key */
			for (j = ti->npk; j > 0 && ti->cols[ti->pk[j - 1]].key_pos > c->key_pos;
			     j--)
				ti->pk[j] = ti->pk[j - 1];
			ti->pk[j] = i;
			ti->npk++;
		}
	}
	*out = ti;
	return EVSQ_OK;
oom:
	tinfo_free(ti);
	return EVSQ_NOMEM;
}

enum { T_OK, T_MISSING, T_FAILED };

/* The table's catalog entry, with a reference (release with
 * tinfo_release). T_MISSING: not in the database; T_FAILED: *status and
 * body set. */
static int tinfo_get(const evsq__ctx *ctx, const struct model *m, struct table *t,
		     struct tinfo **out, unsigned *status, evp_buf *body)
{
	evsq__models *ms = ctx->models;
	const char *params[2] = {m->schema, t->name};
	char sqlstate[6], err[1024];
	struct tinfo *ti = NULL;
	PGresult *r;
	int rc;

	pthread_mutex_lock(&ms->mu);
	if ((ti = t->info))
		ti->refs++;
	pthread_mutex_unlock(&ms->mu);
	if (ti) {
		*out = ti;
		return T_OK;
	}
	rc = evsq__pool_query(ctx->pool, catalog_sql, 2, params, &r, sqlstate, err, sizeof err);
	if (rc) {
		*status = db_error(body, rc, sqlstate, err);
		return T_FAILED;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		return T_MISSING;
	}
	rc = build_tinfo(r, &ti);
	PQclear(r);
	if (rc) {
		*status = db_error(body, rc, "", "out of memory");
		return T_FAILED;
	}
	pthread_mutex_lock(&ms->mu);
	if (t->info) { /* another request read it meanwhile */
		tinfo_free(ti);
		ti = t->info;
	} else {
		t->info = ti;
		ti->refs = 1; /* the cache's */
	}
	ti->refs++;
	pthread_mutex_unlock(&ms->mu);
	*out = ti;
	return T_OK;
}

static void tinfo_release(evsq__models *ms, struct tinfo *ti)
{
	bool last;

	pthread_mutex_lock(&ms->mu);
	last = --ti->refs == 0;
	pthread_mutex_unlock(&ms->mu);
	if (last)
		tinfo_free(ti);
}

/* Drop a cache entry found out of date (if still the cached one). */
static void tinfo_forget(evsq__models *ms, struct table *t, struct tinfo *ti)
{
	bool last = false;

	pthread_mutex_lock(&ms->mu);
	if (t->info == ti) {
		t->info = NULL;
		last = --ti->refs == 0;
	}
	pthread_mutex_unlock(&ms->mu);
	if (last)
		tinfo_free(ti);
}

static unsigned missing(evp_buf *body, const struct model *m, const struct table *t)
{
	char msg[768];

	snprintf(msg, sizeof msg,
		 "table \"%.200s.%.200s\" of read model \"%.200s\" is not in the read-model "
		 "database (migrations not applied, or dropped)",
		 m->schema, t->name, m->name);
	evsq__error(body, "unavailable", msg);
	return 503;
}

/* ---- request arguments ---- */

struct arg {
	const char *key, *value;
};

struct args {
	struct arg a[MAX_ARGS];
	int n;
	bool overflow;
};

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key,
			       const char *value)
{
	struct args *a = cls;

	(void)kind;
	if (a->n == MAX_ARGS) {
		a->overflow = true;
		return MHD_NO;
	}
	a->a[a->n].key = key;
	a->a[a->n].value = value;
	a->n++;
	return MHD_YES;
}

static const char *arg(const struct args *a, const char *key)
{
	int i;

	for (i = 0; i < a->n; i++)
		if (!strcmp(a->a[i].key, key))
			return a->a[i].value;
	return NULL;
}

static unsigned bad_request(evp_buf *body, const char *fmt, const char *x, const char *y)
{
	char msg[768];

	snprintf(msg, sizeof msg, fmt, x, y);
	evsq__error(body, "bad_request", msg);
	return 400;
}

/* Arguments of the request: none twice, each with a value, and every one
 * either in allowed (NULL-terminated) or, when cols, a column name. */
static unsigned check_args(struct MHD_Connection *conn, const char *const *allowed, struct args *a,
			   evp_buf *body)
{
	int i, j;

	a->n = 0;
	a->overflow = false;
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect, a);
	if (a->overflow)
		return bad_request(body, "more than %s parameters", "64", NULL);
	for (i = 0; i < a->n; i++) {
		for (j = 0; j < i; j++)
			if (!strcmp(a->a[i].key, a->a[j].key))
				return bad_request(body, "parameter \"%.100s\" given twice",
						   a->a[i].key, NULL);
		if (!a->a[i].value)
			return bad_request(body, "parameter \"%.100s\" needs a value", a->a[i].key,
					   NULL);
		if (allowed) {
			for (j = 0; allowed[j] && strcmp(a->a[i].key, allowed[j]); j++)
				;
			if (!allowed[j])
				return bad_request(body, "unknown parameter \"%.100s\"",
						   a->a[i].key, NULL);
		}
	}
	return 0;
}

/* ---- answers ---- */

static void put_model(evp_buf *b, const struct model *m)
{
	evp_buf_puts(b, "{\"projection\":");
	evsq__json_str(b, m->name);
	evp_buf_puts(b, ",\"schema\":");
	evsq__json_str(b, m->schema);
}

/* {projection, schema, tables: [...]} of one model; the catalog of each
 * table (cached). 0 or the failure status. */
static unsigned describe(const evsq__ctx *ctx, struct model *m, evp_buf *out, evp_buf *body)
{
	int i, j;

	put_model(out, m);
	evp_buf_puts(out, ",\"tables\":[");
	for (i = 0; i < m->ntables; i++) {
		struct tinfo *ti;
		unsigned status = 0;
		int got = tinfo_get(ctx, m, &m->tables[i], &ti, &status, body);

		if (got == T_FAILED)
			return status;
		evp_buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
		evsq__json_str(out, m->tables[i].name);
		if (got == T_MISSING) {
			evp_buf_puts(out, ",\"missing\":true}");
			continue;
		}
		evp_buf_puts(out, ",\"primary_key\":[");
		for (j = 0; j < ti->npk; j++) {
			if (j)
				evp_buf_putc(out, ',');
			evsq__json_str(out, ti->cols[ti->pk[j]].name);
		}
		evp_buf_puts(out, "],\"columns\":[");
		for (j = 0; j < ti->ncols; j++) {
			evp_buf_puts(out, j ? ",{\"name\":" : "{\"name\":");
			evsq__json_str(out, ti->cols[j].name);
			evp_buf_puts(out, ",\"type\":");
			evsq__json_str(out, ti->cols[j].type);
			evp_buf_putc(out, '}');
		}
		evp_buf_puts(out, "]}");
		tinfo_release(ctx->models, ti);
	}
	evp_buf_puts(out, "]}");
	return 0;
}

static unsigned list_models(const evsq__ctx *ctx, struct model *one, evp_buf *body)
{
	evsq__models *ms = ctx->models;
	evp_buf out = {0};
	unsigned status = 0;
	int i;

	if (!one)
		evp_buf_puts(&out, "{\"models\":[");
	for (i = 0; ms && i < ms->n && !status; i++) {
		if (one && one != &ms->m[i])
			continue;
		if (!one && i)
			evp_buf_putc(&out, ',');
		status = describe(ctx, &ms->m[i], &out, body);
	}
	if (!one)
		evp_buf_puts(&out, "]}");
	evp_buf_putc(&out, '\n');
	if (!status) {
		evp_buf_free(body);
		*body = out;
		return out.oom ? (evsq__error(body, "internal", "out of memory"), 500) : 200;
	}
	evp_buf_free(&out);
	return status;
}

static void put_head(evp_buf *b, const struct model *m, const struct table *t, const PGresult *r)
{
	b->len = 0;
	evp_buf_puts(b, "{\"projection\":");
	evsq__json_str(b, m->name);
	evp_buf_puts(b, ",\"table\":");
	evsq__json_str(b, t->name);
	evp_buf_printf(b, ",\"position\":%s", PQgetisnull(r, 0, 0) ? "0" : PQgetvalue(r, 0, 0));
}

/* The table changed twice under one request (DDL in progress): as
 * transient as PostgreSQL being away. */
static unsigned changed(evp_buf *body, const struct model *m, const struct table *t,
			const char *err)
{
	char msg[1280], pg[512];

	pg_message(pg, sizeof pg, err);
	snprintf(msg, sizeof msg,
		 "table \"%.200s.%.200s\" of read model \"%.200s\" changed while being read: "
		 "%s",
		 m->schema, t->name, m->name, pg);
	evsq__error(body, "unavailable", msg);
	return 503;
}

static bool schema_changed(const char *sqlstate)
{
	/* undefined_table, undefined_column: the table was dropped,
	 * renamed or altered since its catalog was read */
	return !strcmp(sqlstate, "42P01") || !strcmp(sqlstate, "42703");
}

/* GET /models/{p}/{t}/{key} */
static unsigned get_row(const evsq__ctx *ctx, const struct model *m, struct table *t,
			const char *key, evp_buf *body)
{
	const char *params[2] = {m->name, key};
	char sqlstate[6], err[1024], msg[768];
	unsigned status = 0;
	int attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		struct tinfo *ti;
		evp_buf sql = {0};
		PGresult *r;
		int rc, got = tinfo_get(ctx, m, t, &ti, &status, body);

		if (got == T_FAILED)
			return status;
		if (got == T_MISSING)
			return missing(body, m, t);
		if (ti->npk != 1) {
			evp_buf keys = {0};
			int i;

			for (i = 0; i < ti->npk; i++)
				evp_buf_printf(&keys, "%s%s=...", i ? "&" : "?",
					       ti->cols[ti->pk[i]].name);
			evp_buf_cstr(&keys);
			if (ti->npk == 0)
				snprintf(msg, sizeof msg,
					 "table \"%.200s\" of read model \"%.200s\" has no primary "
					 "key: rows are served by key only through its listing",
					 t->name, m->name);
			else
				snprintf(
					msg, sizeof msg,
					"table \"%.200s\" of read model \"%.200s\" has a composite "
					"primary key: ask /models/%.100s/%.100s%.200s",
					t->name, m->name, m->name, t->name,
					keys.ptr ? keys.ptr : "");
			evp_buf_free(&keys);
			tinfo_release(ctx->models, ti);
			evsq__error(body, "bad_request", msg);
			return 400;
		}
		evp_buf_printf(&sql,
			       "SELECT (SELECT position FROM evs.checkpoints WHERE projection = "
			       "$1), (SELECT to_jsonb(t.*)::text FROM %s t WHERE t.%s = $2)",
			       ti->qname, ti->cols[ti->pk[0]].quoted);
		if (!evp_buf_cstr(&sql)) {
			tinfo_release(ctx->models, ti);
			return db_error(body, EVSQ_NOMEM, "", "");
		}
		rc = evsq__pool_query(ctx->pool, sql.ptr, 2, params, &r, sqlstate, err, sizeof err);
		evp_buf_free(&sql);
		if (rc == EVSQ_SQL && schema_changed(sqlstate)) {
			tinfo_forget(ctx->models, t, ti);
			tinfo_release(ctx->models, ti);
			if (attempt == 0)
				continue;
			return changed(body, m, t, err);
		}
		tinfo_release(ctx->models, ti);
		if (rc)
			return db_error(body, rc, sqlstate, err);
		if (PQgetisnull(r, 0, 1)) {
			snprintf(msg, sizeof msg,
				 "no row with key \"%.200s\" in table \"%.200s\" of read model "
				 "\"%.200s\"",
				 key, t->name, m->name);
			PQclear(r);
			evsq__error(body, "not_found", msg);
			return 404;
		}
		put_head(body, m, t, r);
		evp_buf_puts(body, ",\"row\":");
		evp_buf_puts(body, PQgetvalue(r, 0, 1));
		evp_buf_puts(body, "}\n");
		PQclear(r);
		return 200;
	}
	return 500; /* not reached: the second attempt always answers */
}

/* The listing statement of a page. Parameters: $1 projection, then
 * after (if any), the filters in args order, the limit. */
static void listing_sql(evp_buf *sql, const struct tinfo *ti, const struct args *a, bool after,
			const char **params, int *np)
{
	int i, j;

	evp_buf_puts(sql, "SELECT (SELECT position FROM evs.checkpoints WHERE projection = $1),"
			  " r.k, r.j");
	if (after && ti->npk > 1) {
		/* a composite after must name every key column */
		evp_buf_puts(sql, ", jsonb_typeof($2::jsonb) = 'object' AND $2::jsonb ?& ARRAY[");
		for (i = 0; i < ti->npk; i++)
			evp_buf_printf(sql, "%s%s::text", i ? "," : "",
				       ti->cols[ti->pk[i]].literal);
		evp_buf_puts(sql, "]");
	}
	evp_buf_puts(sql, " FROM (VALUES (1)) v LEFT JOIN LATERAL (SELECT ");
	if (ti->npk == 1) {
		evp_buf_printf(sql, "t.%s::text", ti->cols[ti->pk[0]].quoted);
	} else {
		evp_buf_puts(sql, "jsonb_build_object(");
		for (i = 0; i < ti->npk; i++)
			evp_buf_printf(sql, "%s%s, t.%s", i ? ", " : "",
				       ti->cols[ti->pk[i]].literal, ti->cols[ti->pk[i]].quoted);
		evp_buf_puts(sql, ")::text");
	}
	evp_buf_printf(sql, " AS k, to_jsonb(t.*)::text AS j FROM %s t WHERE true", ti->qname);
	*np = 1;
	if (after) {
		*np = 2;
		if (ti->npk == 1) {
			evp_buf_printf(sql, " AND t.%s > $2", ti->cols[ti->pk[0]].quoted);
		} else {
			evp_buf_puts(sql, " AND (");
			for (i = 0; i < ti->npk; i++)
				evp_buf_printf(sql, "%st.%s", i ? ", " : "",
					       ti->cols[ti->pk[i]].quoted);
			evp_buf_puts(sql, ") > (SELECT ");
			for (i = 0; i < ti->npk; i++)
				evp_buf_printf(sql, "%sx.%s", i ? ", " : "",
					       ti->cols[ti->pk[i]].quoted);
			evp_buf_printf(sql, " FROM jsonb_populate_record(NULL::%s, $2::jsonb) x)",
				       ti->qname);
		}
	}
	for (i = 0; i < a->n; i++) {
		for (j = 0; j < ti->ncols && strcmp(a->a[i].key, ti->cols[j].name); j++)
			;
		if (j == ti->ncols)
			continue; /* after, limit, min_position */
		params[*np] = a->a[i].value;
		(*np)++;
		evp_buf_printf(sql, " AND t.%s = $%d", ti->cols[j].quoted, *np);
	}
	evp_buf_puts(sql, " ORDER BY ");
	for (i = 0; i < ti->npk; i++)
		evp_buf_printf(sql, "%st.%s", i ? ", " : "", ti->cols[ti->pk[i]].quoted);
	(*np)++;
	evp_buf_printf(sql, " LIMIT $%d::int) r ON true", *np);
}

static bool reserved(const char *key)
{
	return !strcmp(key, "after") || !strcmp(key, "limit") || !strcmp(key, "min_position");
}

/* GET /models/{p}/{t}?after=&limit=&col=v */
static unsigned get_rows(const evsq__ctx *ctx, const struct model *m, struct table *t,
			 const struct args *a, evp_buf *body)
{
	const char *after = arg(a, "after"), *lim = arg(a, "limit");
	const char *params[MAX_ARGS + 3];
	char sqlstate[6], err[1024], msg[768], lim_s[24];
	int64_t l = DEFAULT_LIM;
	unsigned status = 0;
	int attempt, i, j;

	if (lim && (!evsq__parse_u63(lim, &l) || l < 1 || l > ctx->page_max)) {
		snprintf(msg, sizeof msg,
			 "invalid limit \"%.100s\": expected an integer from 1 to %ld", lim,
			 ctx->page_max);
		evsq__error(body, "bad_request", msg);
		return 400;
	}
	snprintf(lim_s, sizeof lim_s, "%lld", (long long)l + 1);
	for (attempt = 0; attempt < 2; attempt++) {
		struct tinfo *ti;
		evp_buf sql = {0};
		PGresult *r;
		int rc, np, rows, got = tinfo_get(ctx, m, t, &ti, &status, body);

		if (got == T_FAILED)
			return status;
		if (got == T_MISSING)
			return missing(body, m, t);
		if (ti->npk == 0) {
			tinfo_release(ctx->models, ti);
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
				tinfo_release(ctx->models, ti);
				snprintf(msg, sizeof msg,
					 "unknown parameter \"%.100s\": table \"%.200s\" of read "
					 "model \"%.200s\" has no such column",
					 a->a[i].key, t->name, m->name);
				evsq__error(body, "bad_request", msg);
				return 400;
			}
		}
		params[0] = m->name;
		params[1] = after;
		listing_sql(&sql, ti, a, after != NULL, params, &np);
		params[np - 1] = lim_s;
		if (!evp_buf_cstr(&sql)) {
			tinfo_release(ctx->models, ti);
			return db_error(body, EVSQ_NOMEM, "", "");
		}
		rc = evsq__pool_query(ctx->pool, sql.ptr, np, params, &r, sqlstate, err,
				      sizeof err);
		evp_buf_free(&sql);
		if (rc == EVSQ_SQL && schema_changed(sqlstate)) {
			tinfo_forget(ctx->models, t, ti);
			tinfo_release(ctx->models, ti);
			if (attempt == 0)
				continue;
			return changed(body, m, t, err);
		}
		if (rc) {
			tinfo_release(ctx->models, ti);
			return db_error(body, rc, sqlstate, err);
		}
		if (after && ti->npk > 1 && strcmp(PQgetvalue(r, 0, 3), "t")) {
			evp_buf keys = {0};

			for (i = 0; i < ti->npk; i++)
				evp_buf_printf(&keys, "%s\"%s\"", i ? ", " : "",
					       ti->cols[ti->pk[i]].name);
			evp_buf_cstr(&keys);
			snprintf(msg, sizeof msg,
				 "invalid after \"%.100s\": expected a JSON object with the key "
				 "columns %.200s (the next_after of a page)",
				 after, keys.ptr ? keys.ptr : "");
			evp_buf_free(&keys);
			tinfo_release(ctx->models, ti);
			PQclear(r);
			evsq__error(body, "bad_request", msg);
			return 400;
		}
		tinfo_release(ctx->models, ti);
		rows = PQntuples(r);
		put_head(body, m, t, r);
		evp_buf_puts(body, ",\"rows\":[");
		for (i = 0; i < rows && i < l && !PQgetisnull(r, i, 2); i++) {
			if (i)
				evp_buf_putc(body, ',');
			evp_buf_puts(body, PQgetvalue(r, i, 2));
		}
		evp_buf_puts(body, "],\"next_after\":");
		if (rows > l)
			evsq__json_str(body, PQgetvalue(r, (int)l - 1, 1));
		else
			evp_buf_puts(body, "null");
		evp_buf_puts(body, "}\n");
		PQclear(r);
		return 200;
	}
	return 500; /* not reached: the second attempt always answers */
}

/* ---- routing ---- */

/* Length of name when it is the start of p up to a '/' or the end, else
 * 0 (callers keep the longest match, as names may hold '/'). */
static size_t match(const char *p, const char *name)
{
	size_t n = strlen(name);

	return !strncmp(p, name, n) && (p[n] == '\0' || p[n] == '/') ? n : 0;
}

unsigned evsq__models_serve(const evsq__ctx *ctx, struct MHD_Connection *conn, const char *rest,
			    evp_buf *body)
{
	static const char *const just_min[] = {"min_position", NULL};
	evsq__models *ms = ctx->models;
	struct model *m = NULL;
	struct table *t = NULL;
	struct args *a;
	const char *p, *minp;
	size_t best = 0, n;
	unsigned status;
	int i;
	char msg[768];

	if (!rest[0] || !strcmp(rest, "/")) {
		struct args none;

		if ((status = check_args(conn, just_min + 1, &none, body)))
			return status;
		return list_models(ctx, NULL, body);
	}
	p = rest + 1;
	for (i = 0; ms && i < ms->n; i++)
		if ((n = match(p, ms->m[i].name)) > best) {
			best = n;
			m = &ms->m[i];
		}
	if (!m) {
		snprintf(msg, sizeof msg, "no read model \"%.*s\"%s", (int)strcspn(p, "/"), p,
			 ms ? "" : ": none declared (start evs-query with --rules)");
		evsq__error(body, "not_found", msg);
		return 404;
	}
	p += best;
	if (*p == '/')
		p++;
	if (!*p) {
		struct args none;

		if ((status = check_args(conn, just_min + 1, &none, body)))
			return status;
		return list_models(ctx, m, body);
	}
	best = 0;
	for (i = 0; i < m->ntables; i++)
		if ((n = match(p, m->tables[i].name)) > best) {
			best = n;
			t = &m->tables[i];
		}
	if (!t) {
		snprintf(msg, sizeof msg, "read model \"%.200s\" has no table \"%.*s\"", m->name,
			 (int)(strcspn(p, "/") > 200 ? 200 : strcspn(p, "/")), p);
		evsq__error(body, "not_found", msg);
		return 404;
	}
	p += best;
	if (!(a = malloc(sizeof *a))) {
		evsq__error(body, "internal", "out of memory");
		return 500;
	}
	/* a key lookup takes min_position only; a listing also after, limit
	 * and column filters (checked against the catalog in get_rows) */
	status = check_args(conn, *p ? just_min : NULL, a, body);
	if (status)
		goto out;
	minp = arg(a, "min_position");
	if (minp) {
		int64_t min;

		if (!evsq__parse_u63(minp, &min)) {
			status = bad_request(
				body,
				"invalid min_position \"%.100s\": expected a non-negative integer",
				minp, NULL);
			goto out;
		}
		if ((status = evsq__wait_position(ctx, m->name, min, body)))
			goto out;
	}
	status = *p ? get_row(ctx, m, t, p + 1, body) : get_rows(ctx, m, t, a, body);
out:
	free(a);
	return status;
}
