/*
 * catalog.c - the declared read models served under /models: the
 * projection files of --rules (loaded at start) and what PostgreSQL's
 * catalog says about their tables (columns, types, primary key).
 *
 * Where identifiers come from: the projection, schema and table names
 * only from the declared files, column names, types and the primary key
 * only from the catalog, quoted by PostgreSQL itself (format('%I'),
 * quote_literal()) in the catalog statement. A request never supplies an
 * identifier (models.c: a filter's name must equal a catalog column, and
 * then the catalog's quoted spelling goes into SQL).
 *
 * Why not PQescapeIdentifier: the pool lends a connection for one
 * statement and keeps it (pool.c), and the names are catalog text anyway;
 * format('%I') is the server's own quoting rule (keywords, case, quotes).
 *
 * Cache: a read model's tables are fixed by migrations, so what the
 * catalog says about a table is read on first use and kept (struct
 * evsq__tinfo, immutable, shared by reference count under the models'
 * mutex). A statement failing with "undefined table/column" makes
 * models.c drop the entry and try once more with a fresh read; a table
 * gone from the catalog is EVSQ__T_MISSING.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models.h"

/* ---- loading (at start) ---- */

static void tinfo_free(struct evsq__tinfo *ti)
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
			struct evsq__table *h = ms->m[i].tables[j].history;

			free(ms->m[i].tables[j].name);
			tinfo_free(ms->m[i].tables[j].info);
			if (h) {
				free(h->name);
				tinfo_free(h->info);
				free(h);
			}
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
	struct evsq__model *m;
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
		struct evsq__table *t;
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
		t = &m->tables[m->ntables++];
		memset(t, 0, sizeof *t);
		t->name = name;
		t->current_only = !evp_rules_temporal(r, name);
		if (!(t->history = calloc(1, sizeof *t->history)) ||
		    asprintf(&t->history->name, "%s_history", name) < 0) {
			if (t->history)
				t->history->name = NULL;
			goto oom;
		}
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
	" array_position(i.indkey::int2[], a.attnum),"
	/* how its value is written in an answer (model_row.c), from the
	 * type or, for a domain, its base type */
	" (SELECT CASE WHEN b.typname IN ('int2', 'int4', 'int8', 'numeric', 'oid') THEN 'n'"
	"  WHEN b.typname IN ('float4', 'float8') THEN 'd' WHEN b.typname = 'bool' THEN 'b'"
	"  WHEN b.typname = 'timestamptz' THEN 't' WHEN b.typname IN ('json', 'jsonb') THEN 'j'"
	"  WHEN b.typcategory = 'S' THEN 's' ELSE 'o' END"
	"  FROM pg_catalog.pg_type ty JOIN pg_catalog.pg_type b"
	"  ON b.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END"
	"  WHERE ty.oid = a.atttypid)"
	" FROM pg_catalog.pg_class c"
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
	"  AND NOT a.attisdropped"
	" LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary"
	" WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
	" ORDER BY a.attnum";

static int build_tinfo(const PGresult *r, struct evsq__tinfo **out)
{
	int n = PQntuples(r), i, j;
	struct evsq__tinfo *ti = calloc(1, sizeof *ti);

	if (!ti || !(ti->cols = calloc((size_t)n, sizeof *ti->cols)) ||
	    !(ti->pk = calloc((size_t)n, sizeof *ti->pk)) ||
	    !(ti->qname = strdup(PQgetvalue(r, 0, 0))))
		goto oom;
	for (i = 0; i < n; i++) {
		struct evsq__column *c = &ti->cols[i];

		ti->ncols++;
		c->key_pos = PQgetisnull(r, i, 5) ? -1 : atoi(PQgetvalue(r, i, 5));
		c->kind = PQgetisnull(r, i, 6) ? EVSQ__V_OTHER : PQgetvalue(r, i, 6)[0];
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

/* A fresh read when the cache has no entry; two requests reading at
 * once keep the first entry stored. */
int evsq__tinfo_get(const evsq__ctx *ctx, const struct evsq__model *m, struct evsq__table *t,
		    struct evsq__tinfo **out, unsigned *status, evs__buf *body)
{
	evsq__models *ms = ctx->models;
	const char *params[2] = {m->schema, t->name};
	char sqlstate[6], err[1024];
	struct evsq__tinfo *ti = NULL;
	PGresult *r;
	int rc;

	pthread_mutex_lock(&ms->mu);
	if ((ti = t->info))
		ti->refs++;
	pthread_mutex_unlock(&ms->mu);
	if (ti) {
		*out = ti;
		return EVSQ__T_OK;
	}
	rc = evsq__pool_query(ctx->pool, catalog_sql, 2, params, &r, sqlstate, err, sizeof err);
	if (rc) {
		*status = evsq__db_error(body, rc, sqlstate, err);
		return EVSQ__T_FAILED;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		return EVSQ__T_MISSING;
	}
	rc = build_tinfo(r, &ti);
	PQclear(r);
	if (rc) {
		*status = evsq__db_error(body, rc, "", "out of memory");
		return EVSQ__T_FAILED;
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
	return EVSQ__T_OK;
}

struct evsq__tinfo *evsq__tinfo_cached(evsq__models *ms, struct evsq__table *t)
{
	struct evsq__tinfo *ti;

	pthread_mutex_lock(&ms->mu);
	if ((ti = t->info))
		ti->refs++;
	pthread_mutex_unlock(&ms->mu);
	return ti;
}

void evsq__tinfo_release(evsq__models *ms, struct evsq__tinfo *ti)
{
	bool last;

	pthread_mutex_lock(&ms->mu);
	last = --ti->refs == 0;
	pthread_mutex_unlock(&ms->mu);
	if (last)
		tinfo_free(ti);
}

/* Drop a cache entry found out of date (if still the cached one). */
void evsq__tinfo_forget(evsq__models *ms, struct evsq__table *t, struct evsq__tinfo *ti)
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
