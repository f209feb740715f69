/*
 * history_bulk.c - bulk mode (bulk.c) for the history tables of
 * temporal declared tables (history.c).
 *
 * A catch-up from far behind writes one history version per event; its
 * two btrees (the primary key (k.., valid_from_position) and
 * t_history_at (k.., valid_from_at)) cost more than the rows (1M
 * versions: about 0.6 s of server CPU for the heap, 4.5 s more with the
 * two indexes). Like the built-in models, the history is then loaded
 * without them and they are built by sort once caught up:
 *
 *   begin, in bulk.c's transaction, per temporal table s.t:
 *     CREATE INDEX IF NOT EXISTS t_history_bulk_open ON s.t_history
 *       (k.., valid_from_position) WHERE valid_to_position IS NULL
 *                      (the open versions, at most one per key: what
 *                      each batch closes, history_write.c)
 *     ALTER TABLE s.t_history DROP CONSTRAINT <its primary key>
 *     DROP INDEX IF EXISTS s.t_history_pkey, s.t_history_at
 *   batches as usual, closing open versions through the partial index
 *     (htable.close_bulk_sql) instead of a probe of the primary key
 *   end (bulk_end):
 *     CREATE INDEX IF NOT EXISTS t_history_at ...      (side connection)
 *     CREATE UNIQUE INDEX IF NOT EXISTS t_history_pkey (k.., valid_from_position)
 *     then in one transaction: ALTER TABLE s.t_history ADD CONSTRAINT
 *     t_history_pkey PRIMARY KEY USING INDEX t_history_pkey (when it has
 *     none), DROP INDEX t_history_bulk_open
 *
 * The definitions and names are those history.c and CREATE TABLE give
 * (the key's name as PostgreSQL chooses it: the table's name clipped to
 * 58 bytes, then "_pkey"), so the end state equals a load without bulk
 * mode. Every step commits whole; a start that finds an index or the
 * key missing, or the partial index present, continues the bulk or ends
 * it (bulk.c). Readers meanwhile get the same answers, slower (no index
 * for one key as of T).
 */
#include <stdio.h>
#include <string.h>

#include "rules.h"

static void ident(evs__buf *b, const char *s, size_t n)
{
	size_t i;

	evs__buf_putc(b, '"');
	for (i = 0; i < n && s[i]; i++) {
		if (s[i] == '"')
			evs__buf_putc(b, '"');
		evs__buf_putc(b, s[i]);
	}
	evs__buf_putc(b, '"');
}

/* n, at most max, cut back to a UTF-8 character boundary */
static size_t clip(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

/* s."<t><suffix>" (quoted; schema NULL: the name alone); pkey: the name
 * PostgreSQL gives the primary key of "<t>_history" */
static void name(evs__buf *b, const char *schema, const struct htable *t, const char *suffix,
		 bool pkey)
{
	char n[256];
	size_t l;

	snprintf(n, sizeof n, "%s%s", t->name, suffix);
	l = clip(n, strlen(n), 63);
	if (pkey) {
		l = clip(n, l, 58);
		snprintf(n + l, sizeof n - l, "_pkey");
		l += 5;
	}
	if (schema) {
		ident(b, schema, strlen(schema));
		evs__buf_putc(b, '.');
	}
	ident(b, n, l);
}

static void keys(evs__buf *b, const struct htable *t, const char *last)
{
	const char *k = t->pk_names.ptr;
	int i;

	evs__buf_puts(b, " (");
	for (i = 0; i < t->npk; i++, k += strlen(k) + 1) {
		ident(b, k, strlen(k));
		evs__buf_puts(b, ", ");
	}
	evs__buf_printf(b, "%s)", last);
}

/* CREATE [UNIQUE ]INDEX IF NOT EXISTS "<t><suffix>" ON s."<t>_history"
 * (k.., last) (unique: "UNIQUE " or "") */
static void create_index(evs__buf *b, const char *unique, const char *schema,
			 const struct htable *t, const char *suffix, bool pkey, const char *last)
{
	evs__buf_printf(b, "CREATE %sINDEX IF NOT EXISTS ", unique);
	name(b, NULL, t, suffix, pkey);
	evs__buf_puts(b, " ON ");
	name(b, schema, t, "_history", false);
	keys(b, t, last);
}

static const char *schema_of(const struct evp__run *r, char *out, size_t n)
{
	if (r->cfg->rebuild)
		evp__shadow_schema(r, out, n);
	else
		snprintf(out, n, "%s", evp_rules_schema(r->rules));
	return out;
}

bool evp__history_bulk_any(const struct evp__run *r)
{
	int i;

	for (i = 0; r->rules && evp_rules_schema(r->rules) && i < r->rules->ntables; i++)
		if (r->rules->tables_v[i].active)
			return true;
	return false;
}

static int run(struct evp__run *r, evs__buf *b)
{
	if (!evs__buf_cstr(b)) {
		snprintf(r->err, r->errlen, "out of memory");
		return EVP_NOMEM;
	}
	return evp__exec(r, PGRES_COMMAND_OK, NULL, b->ptr, 0, NULL, "could not run \"%.200s\"",
			 b->ptr);
}

/* The primary key's name of s.t_history, "" when it has none. */
static int pkey_of(struct evp__run *r, const char *schema, const struct htable *t, char *out,
		   size_t n)
{
	evs__buf b = {0};
	PGresult *res = NULL;
	const char *v[1];
	int rc;

	name(&b, schema, t, "_history", false);
	if (!evs__buf_cstr(&b)) {
		snprintf(r->err, r->errlen, "out of memory");
		return EVP_NOMEM;
	}
	v[0] = b.ptr;
	rc = evp__exec(r, PGRES_TUPLES_OK, &res,
		       "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass($1)"
		       " AND contype = 'p'",
		       1, v, "could not read the primary key of %s", b.ptr);
	evs__buf_free(&b);
	if (rc)
		return rc;
	snprintf(out, n, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return EVP_OK;
}

/*
 * One step for one active temporal table t: schema is where its history
 * lives (the shadow schema during a rebuild), b an empty buffer for the
 * step's statement, ctx the caller's.
 */
typedef int history_step(struct evp__run *r, const char *schema, const struct htable *t,
			 evs__buf *b, void *ctx);

/* step for each active temporal table, in order, until one fails. */
static int for_each_history(struct evp__run *r, history_step *step, void *ctx)
{
	char schema[EVS_MAX_NAME + 16];
	evs__buf b = {0};
	int i, rc = EVP_OK;

	schema_of(r, schema, sizeof schema);
	for (i = 0; i < r->rules->ntables && rc == EVP_OK; i++) {
		if (!r->rules->tables_v[i].active)
			continue;
		evs__buf_reset(&b);
		rc = step(r, schema, &r->rules->tables_v[i], &b, ctx);
	}
	evs__buf_free(&b);
	return rc;
}

static int missing_one(struct evp__run *r, const char *schema, const struct htable *t, evs__buf *at,
		       void *ctx)
{
	bool *missing = ctx;
	char pk[256];
	evs__buf open = {0};
	PGresult *res;
	const char *v[2];
	int rc;

	if (*missing)
		return EVP_OK;
	name(at, schema, t, "_history_at", false);
	name(&open, schema, t, "_history_bulk_open", false);
	if (!evs__buf_cstr(at) || !evs__buf_cstr(&open)) {
		rc = EVP_NOMEM;
	} else if ((rc = pkey_of(r, schema, t, pk, sizeof pk)) == EVP_OK) {
		v[0] = at->ptr;
		v[1] = open.ptr;
		rc = evp__exec(r, PGRES_TUPLES_OK, &res,
			       "SELECT to_regclass($1) IS NULL OR to_regclass($2) IS NOT NULL", 2,
			       v, "could not look up the indexes of \"%s_history\"", t->name);
		if (rc == EVP_OK) {
			*missing = !pk[0] || PQgetvalue(res, 0, 0)[0] == 't';
			PQclear(res);
		}
	}
	evs__buf_free(&open);
	return rc;
}

int evp__history_bulk_missing(struct evp__run *r, bool *missing)
{
	int rc = for_each_history(r, missing_one, missing);

	if (rc == EVP_NOMEM)
		snprintf(r->err, r->errlen, "out of memory");
	return rc;
}

static int begin_one(struct evp__run *r, const char *schema, const struct htable *t, evs__buf *b,
		     void *ctx)
{
	char pk[256];
	int rc;

	(void)ctx;
	create_index(b, "", schema, t, "_history_bulk_open", false, "valid_from_position");
	evs__buf_puts(b, " WHERE valid_to_position IS NULL");
	if ((rc = run(r, b)) || (rc = pkey_of(r, schema, t, pk, sizeof pk)))
		return rc;
	if (pk[0]) {
		evs__buf_reset(b);
		evs__buf_puts(b, "ALTER TABLE ");
		name(b, schema, t, "_history", false);
		evs__buf_puts(b, " DROP CONSTRAINT ");
		ident(b, pk, strlen(pk));
		if ((rc = run(r, b)))
			return rc;
	}
	/* also an index built by an interrupted end, not yet the key */
	evs__buf_reset(b);
	evs__buf_puts(b, "DROP INDEX IF EXISTS ");
	name(b, schema, t, "_history", true);
	evs__buf_puts(b, ", ");
	name(b, schema, t, "_history_at", false);
	return run(r, b);
}

int evp__history_bulk_begin(struct evp__run *r)
{
	return for_each_history(r, begin_one, NULL);
}

/* appends to ctx, the caller's buffer (b stays unused) */
static int side_one(struct evp__run *r, const char *schema, const struct htable *t, evs__buf *b,
		    void *ctx)
{
	evs__buf *out = ctx;

	(void)r;
	(void)b;
	create_index(out, "", schema, t, "_history_at", false, "valid_from_at");
	evs__buf_puts(out, ";");
	return EVP_OK;
}

void evp__history_bulk_side_sql(struct evp__run *r, evs__buf *b)
{
	(void)for_each_history(r, side_one, b);
}

static int build_one(struct evp__run *r, const char *schema, const struct htable *t, evs__buf *b,
		     void *ctx)
{
	(void)ctx;
	evs__buf_puts(b, "BEGIN; SET LOCAL maintenance_work_mem = '256MB'; ");
	create_index(b, "UNIQUE ", schema, t, "_history", true, "valid_from_position");
	evs__buf_puts(b, "; COMMIT");
	return run(r, b);
}

int evp__history_bulk_build(struct evp__run *r)
{
	return for_each_history(r, build_one, NULL);
}

static int end_one(struct evp__run *r, const char *schema, const struct htable *t, evs__buf *b,
		   void *ctx)
{
	char pk[256];
	int rc;

	(void)ctx;
	if ((rc = pkey_of(r, schema, t, pk, sizeof pk)))
		return rc;
	if (!pk[0]) {
		evs__buf_puts(b, "ALTER TABLE ");
		name(b, schema, t, "_history", false);
		evs__buf_puts(b, " ADD CONSTRAINT ");
		name(b, NULL, t, "_history", true);
		evs__buf_puts(b, " PRIMARY KEY USING INDEX ");
		name(b, NULL, t, "_history", true);
		evs__buf_puts(b, "; ");
	}
	evs__buf_puts(b, "DROP INDEX IF EXISTS ");
	name(b, schema, t, "_history_bulk_open", false);
	return run(r, b);
}

int evp__history_bulk_end(struct evp__run *r)
{
	return for_each_history(r, end_one, NULL);
}
