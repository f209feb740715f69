/*
 * history.c - the history of temporal declared tables (contract C1 of
 * the team brief, described for users in README.md).
 *
 * For a temporal table s.t with primary key (k1..kn), made at session
 * start from the catalog, idempotently (in the rebuild schema too):
 *
 *     s.t_history (columns of s.t ..., valid_from_position bigint NOT NULL,
 *                  valid_to_position bigint, valid_from_at timestamptz NOT NULL,
 *                  valid_to_at timestamptz,
 *                  PRIMARY KEY (k1..kn, valid_from_position))
 *                  WITH (fillfactor = 70)
 *     index s.t_history_at (k1..kn, valid_from_at)
 *     s.t_as_of(timestamptz), s.t_at_position(bigint): SETOF s.t
 *     COMMENT ON each, SELECT / EXECUTE granted to evs_analyst
 *
 * One row per version: the row as it was after the event at
 * valid_from_position (recorded_at = valid_from_at) until the event that
 * changed or deleted it (valid_to_*, NULL while current).
 *
 * Capture: each INSERT / UPDATE / DELETE of a temporal table returns its
 * rows (rules_target.c appends RETURNING t.*). Every returned row is kept
 * in memory with its event's position and a sequence number: an INSERT's
 * or UPDATE's row is the new version, a DELETE's row ends the key. At the
 * end of the batch, per key, in (position, sequence) order, only the last
 * capture of a position counts (two statements of one event touching one
 * row make one version); each version ends where the next capture of its
 * key begins. Then, in the batch's transaction, before the checkpoint:
 *
 *     UPDATE s.t_history SET valid_to_* = first capture of the key
 *       FROM unnest(keys, positions, times) WHERE valid_to_position IS NULL
 *       AND valid_from_position < first position of the batch
 *     COPY s.t_history FROM STDIN                   the batch's versions
 *
 * Validity comes only from the events (position, recorded_at), so a
 * rebuild, a catch-up or a replay after a crash writes the same history.
 * This file makes the DDL; history_write.c captures and writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

/* ------------------------------------------------------------------ */
/* DDL */

static void ident(evs__buf *b, const char *s)
{
	evs__buf_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"')
			evs__buf_putc(b, '"');
		evs__buf_putc(b, *s);
	}
	evs__buf_putc(b, '"');
}

static void qname(evs__buf *b, const char *schema, const char *name, const char *suffix)
{
	char n[256];

	snprintf(n, sizeof n, "%s%s", name, suffix);
	ident(b, schema);
	evs__buf_putc(b, '.');
	ident(b, n);
}

static void literal(evs__buf *b, const char *s)
{
	evs__buf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			evs__buf_putc(b, '\'');
		evs__buf_putc(b, *s);
	}
	evs__buf_putc(b, '\'');
}

static int run_sql(struct evp__run *r, evs__buf *b)
{
	if (!evs__buf_cstr(b)) {
		snprintf(r->err, r->errlen, "out of memory");
		return EVP_NOMEM;
	}
	return evp__exec(r, PGRES_COMMAND_OK, NULL, b->ptr, 0, NULL, "could not run \"%.200s\"",
			 b->ptr);
}

/* Columns of schema.name: "name type, ..." (NULL when no such table). */
static int columns_text(struct evp__run *r, const char *schema, const char *name, char **out)
{
	const char *vals[2] = {schema, name};
	PGresult *res;
	int rc;

	*out = NULL;
	rc = evp__exec(r, PGRES_TUPLES_OK, &res,
		       "SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod),"
		       " ', ' ORDER BY a.attnum) FROM pg_attribute a"
		       " WHERE a.attrelid = to_regclass(quote_ident($1) || '.' || quote_ident($2))"
		       " AND a.attnum > 0 AND NOT a.attisdropped",
		       2, vals, "could not read the columns of \"%s.%s\"", schema, name);
	if (rc)
		return rc;
	if (!PQgetisnull(res, 0, 0) && !(*out = strdup(PQgetvalue(res, 0, 0))))
		rc = EVP_NOMEM;
	PQclear(res);
	return rc;
}

static void key_list(evs__buf *b, PGresult *cols, const struct htable *t, const char *prefix)
{
	int k;

	for (k = 0; k < t->npk; k++) {
		if (k)
			evs__buf_puts(b, ", ");
		evs__buf_puts(b, prefix);
		ident(b, PQgetvalue(cols, t->pk[k], 0));
	}
}

/* The functions as_of / at_position of one table. */
static void functions(evs__buf *b, PGresult *cols, const char *schema, const struct htable *t,
		      bool by_time)
{
	const char *from = by_time ? "valid_from_at" : "valid_from_position";
	const char *to = by_time ? "valid_to_at" : "valid_to_position";
	int c;

	evs__buf_puts(b, "CREATE OR REPLACE FUNCTION ");
	qname(b, schema, t->name, by_time ? "_as_of" : "_at_position");
	evs__buf_printf(b, "(%s) RETURNS SETOF ", by_time ? "timestamptz" : "bigint");
	qname(b, schema, t->name, "");
	evs__buf_puts(b, " LANGUAGE sql STABLE BEGIN ATOMIC SELECT ");
	for (c = 0; c < t->ncols; c++) {
		evs__buf_puts(b, c ? ", h." : "h.");
		ident(b, PQgetvalue(cols, c, 0));
	}
	evs__buf_puts(b, " FROM ");
	qname(b, schema, t->name, "_history");
	evs__buf_printf(b, " h WHERE h.%s <= $1 AND (h.%s IS NULL OR h.%s > $1); END", from, to,
			to);
}

static int comment(struct evp__run *r, evs__buf *b, const char *what, const char *schema,
		   const char *name, const char *suffix, const char *text)
{
	evs__buf_reset(b);
	evs__buf_printf(b, "COMMENT ON %s ", what);
	qname(b, schema, name, suffix);
	if (strcmp(what, "FUNCTION") == 0)
		evs__buf_puts(b, strcmp(suffix, "_as_of") == 0 ? "(timestamptz)" : "(bigint)");
	evs__buf_puts(b, " IS ");
	literal(b, text);
	return run_sql(r, b);
}

static int setup_table(struct evp__run *r, const char *schema, struct htable *t, PGresult *cols)
{
	static const char *const extra[][2] = {
		{"valid_from_position", "global position of the event that made this version"},
		{"valid_to_position",
		 "global position of the event that changed or deleted it; NULL while current"},
		{"valid_from_at", "recorded_at of the event that made this version"},
		{"valid_to_at", "recorded_at of the event that ended it; NULL while current"},
	};
	evs__buf b = {0};
	char text[1024], *want = NULL, *have = NULL, hist[256];
	bool existed, bulk;
	int rc, k;

	snprintf(hist, sizeof hist, "%s_history", t->name);
	if ((rc = columns_text(r, schema, hist, &have)))
		goto out;
	existed = have != NULL;
	evs__buf_puts(&b, "CREATE TABLE IF NOT EXISTS ");
	qname(&b, schema, t->name, "_history");
	evs__buf_puts(&b, " (LIKE ");
	qname(&b, schema, t->name, "");
	evs__buf_puts(&b, ", valid_from_position bigint NOT NULL, valid_to_position bigint,"
			  " valid_from_at timestamptz NOT NULL, valid_to_at timestamptz,"
			  " PRIMARY KEY (");
	key_list(&b, cols, t, "");
	/* fillfactor 70: closing a version (history_write.c) then finds room
	 * on its page, a HOT update that adds no index entries */
	evs__buf_puts(&b, ", valid_from_position)) WITH (fillfactor = 70)");
	if ((rc = run_sql(r, &b)))
		goto out;
	/* an older history of another shape is not written into */
	free(have);
	if ((rc = columns_text(r, schema, t->name, &want)) ||
	    (rc = columns_text(r, schema, hist, &have)))
		goto out;
	evs__buf_reset(&b);
	evs__buf_printf(&b,
			"%s, valid_from_position bigint, valid_to_position bigint,"
			" valid_from_at timestamp with time zone, valid_to_at timestamp with"
			" time zone",
			want);
	if (!evs__buf_cstr(&b) || strcmp(b.ptr, have) != 0) {
		snprintf(r->err, r->errlen,
			 "history table \"%s.%s\" does not have the columns of \"%s.%s\" and the"
			 " validity columns: drop it and rebuild the projection (--rebuild)",
			 schema, hist, schema, t->name);
		rc = EVP_INVALID;
		goto out;
	}
	if (!existed)
		evp__logm(r, EVS_LOG_INFO, "created history table \"%s.%s\"", schema, hist);
	/* while a bulk load is in progress (history_bulk.c) the index is
	 * built at its end, not now */
	evs__buf_reset(&b);
	snprintf(text, sizeof text, "%s_history_bulk_open", t->name);
	ident(&b, schema);
	evs__buf_putc(&b, '.');
	ident(&b, text);
	if (!evs__buf_cstr(&b)) {
		rc = EVP_NOMEM;
		goto out;
	}
	{
		const char *v[1] = {b.ptr};
		PGresult *res;

		if ((rc = evp__exec(r, PGRES_TUPLES_OK, &res, "SELECT to_regclass($1) IS NULL", 1,
				    v, "could not look up \"%s\"", text)))
			goto out;
		bulk = PQgetvalue(res, 0, 0)[0] != 't';
		PQclear(res);
	}
	evs__buf_reset(&b);
	evs__buf_puts(&b, "CREATE INDEX IF NOT EXISTS ");
	snprintf(text, sizeof text, "%s_history_at", t->name);
	ident(&b, text);
	evs__buf_puts(&b, " ON ");
	qname(&b, schema, t->name, "_history");
	evs__buf_puts(&b, " (");
	key_list(&b, cols, t, "");
	evs__buf_puts(&b, ", valid_from_at)");
	if (!bulk && (rc = run_sql(r, &b)))
		goto out;
	evs__buf_reset(&b);
	functions(&b, cols, schema, t, true);
	if ((rc = run_sql(r, &b)))
		goto out;
	evs__buf_reset(&b);
	functions(&b, cols, schema, t, false);
	if ((rc = run_sql(r, &b)))
		goto out;
	snprintf(text, sizeof text,
		 "Every version of the rows of %s.%s: the row as it was after the event at"
		 " valid_from_position (recorded at valid_from_at) until the event that changed"
		 " or deleted it (valid_to_*, NULL while current). Written by the projector in"
		 " the transaction of its events.",
		 schema, t->name);
	if ((rc = comment(r, &b, "TABLE", schema, t->name, "_history", text)))
		goto out;
	for (k = 0; k < 4; k++) {
		evs__buf_reset(&b);
		evs__buf_puts(&b, "COMMENT ON COLUMN ");
		qname(&b, schema, t->name, "_history");
		evs__buf_printf(&b, ".%s IS ", extra[k][0]);
		literal(&b, extra[k][1]);
		if ((rc = run_sql(r, &b)))
			goto out;
	}
	snprintf(text, sizeof text,
		 "The rows of %s.%s as of a time: after every event recorded at or before it",
		 schema, t->name);
	if ((rc = comment(r, &b, "FUNCTION", schema, t->name, "_as_of", text)))
		goto out;
	snprintf(text, sizeof text,
		 "The rows of %s.%s at a global position: after every event at or before it",
		 schema, t->name);
	if ((rc = comment(r, &b, "FUNCTION", schema, t->name, "_at_position", text)))
		goto out;
	evs__buf_reset(&b);
	evs__buf_puts(&b, "GRANT SELECT ON ");
	qname(&b, schema, t->name, "_history");
	evs__buf_puts(&b, " TO evs_analyst; GRANT EXECUTE ON FUNCTION ");
	qname(&b, schema, t->name, "_as_of");
	evs__buf_puts(&b, "(timestamptz), ");
	qname(&b, schema, t->name, "_at_position");
	evs__buf_puts(&b, "(bigint) TO evs_analyst");
	if ((rc = run_sql(r, &b)))
		goto out;
	if (!existed) {
		long long n;
		PGresult *res;

		evs__buf_reset(&b);
		evs__buf_puts(&b, "SELECT count(*) FROM (SELECT 1 FROM ");
		qname(&b, schema, t->name, "");
		evs__buf_puts(&b, " LIMIT 1) x");
		if (!evs__buf_cstr(&b) ||
		    (rc = evp__exec(r, PGRES_TUPLES_OK, &res, b.ptr, 0, NULL,
				    "could not count the rows of \"%s\"", t->name)))
			goto out;
		n = atoll(PQgetvalue(res, 0, 0));
		PQclear(res);
		if (n)
			evp__logm(r, EVS_LOG_WARNING,
				  "history of \"%s.%s\" starts now: its rows have no earlier"
				  " versions; rebuild the projection (--rebuild) to fill it",
				  schema, t->name);
	}
	/* the statements of every batch */
	evs__buf_reset(&b);
	/* the open version of a key is its latest before the batch: one
	 * backward probe of the primary key per key (a filter on
	 * valid_to_position IS NULL would visit every version of the key) */
	evs__buf_puts(&b, "UPDATE ");
	qname(&b, schema, t->name, "_history");
	evs__buf_puts(&b, " h SET valid_to_position = x.evs_p, valid_to_at = x.evs_a FROM"
			  " (SELECT x.*, (SELECT l.valid_from_position FROM ");
	qname(&b, schema, t->name, "_history");
	evs__buf_puts(&b, " l WHERE ");
	for (k = 0; k < t->npk; k++) {
		evs__buf_puts(&b, "l.");
		ident(&b, PQgetvalue(cols, t->pk[k], 0));
		evs__buf_printf(&b, " = x.evs_k%d AND ", k);
	}
	evs__buf_printf(&b, "l.valid_from_position < $%d ORDER BY ", t->npk + 3);
	for (k = 0; k < t->npk; k++) {
		evs__buf_puts(&b, "l.");
		ident(&b, PQgetvalue(cols, t->pk[k], 0));
		evs__buf_puts(&b, " DESC, ");
	}
	evs__buf_puts(&b, "l.valid_from_position DESC LIMIT 1) AS evs_from FROM unnest(");
	for (k = 0; k < t->npk; k++)
		evs__buf_printf(&b, "$%d::%s[], ", k + 1, PQgetvalue(cols, t->pk[k], 1));
	evs__buf_printf(&b, "$%d::bigint[], $%d::timestamptz[]) AS x(", t->npk + 1, t->npk + 2);
	for (k = 0; k < t->npk; k++)
		evs__buf_printf(&b, "evs_k%d, ", k);
	evs__buf_puts(&b, "evs_p, evs_a)) x WHERE ");
	for (k = 0; k < t->npk; k++) {
		evs__buf_puts(&b, "h.");
		ident(&b, PQgetvalue(cols, t->pk[k], 0));
		evs__buf_printf(&b, " = x.evs_k%d AND ", k);
	}
	evs__buf_puts(&b, "h.valid_from_position = x.evs_from AND h.valid_to_position IS NULL");
	if (!evs__buf_cstr(&b)) {
		rc = EVP_NOMEM;
		goto out;
	}
	free(t->close_sql);
	t->close_sql = b.ptr;
	b = (evs__buf){0};
	/* during a bulk load (history_bulk.c) the primary key is gone and a
	 * partial index holds the open versions: at most one per key */
	evs__buf_puts(&b, "UPDATE ");
	qname(&b, schema, t->name, "_history");
	evs__buf_puts(&b, " h SET valid_to_position = x.evs_p, valid_to_at = x.evs_a FROM unnest(");
	for (k = 0; k < t->npk; k++)
		evs__buf_printf(&b, "$%d::%s[], ", k + 1, PQgetvalue(cols, t->pk[k], 1));
	evs__buf_printf(&b, "$%d::bigint[], $%d::timestamptz[]) AS x(", t->npk + 1, t->npk + 2);
	for (k = 0; k < t->npk; k++)
		evs__buf_printf(&b, "evs_k%d, ", k);
	evs__buf_puts(&b, "evs_p, evs_a) WHERE ");
	for (k = 0; k < t->npk; k++) {
		evs__buf_puts(&b, "h.");
		ident(&b, PQgetvalue(cols, t->pk[k], 0));
		evs__buf_printf(&b, " = x.evs_k%d AND ", k);
	}
	evs__buf_printf(&b, "h.valid_to_position IS NULL AND h.valid_from_position < $%d",
			t->npk + 3);
	if (!evs__buf_cstr(&b)) {
		rc = EVP_NOMEM;
		goto out;
	}
	free(t->close_bulk_sql);
	t->close_bulk_sql = b.ptr;
	b = (evs__buf){0};
	evs__buf_puts(&b, "COPY ");
	qname(&b, schema, t->name, "_history");
	evs__buf_puts(&b, " FROM STDIN");
	if (!evs__buf_cstr(&b)) {
		rc = EVP_NOMEM;
		goto out;
	}
	free(t->copy_sql);
	t->copy_sql = b.ptr;
	b = (evs__buf){0};
	t->active = true;
out:
	if (rc == EVP_NOMEM)
		snprintf(r->err, r->errlen, "out of memory");
	evs__buf_free(&b);
	free(want);
	free(have);
	return rc;
}

/* Whether the rows of t are independent of each other for set-based
 * execution (setexec.c): no foreign key from or to it, no trigger of
 * the user's, no unique index but the primary key. */
static int set_safety(struct evp__run *r, const char *schema, struct htable *t)
{
	const char *vals[2] = {schema, t->name};
	PGresult *res;
	int rc;

	rc = evp__exec(r, PGRES_TUPLES_OK, &res,
		       "WITH t AS (SELECT to_regclass(quote_ident($1) || '.' || quote_ident($2))"
		       " AS oid) SELECT (SELECT count(*) FROM pg_constraint, t WHERE contype = 'f'"
		       " AND (conrelid = t.oid OR confrelid = t.oid))"
		       " + (SELECT count(*) FROM pg_trigger, t WHERE tgrelid = t.oid"
		       " AND NOT tgisinternal)"
		       " + (SELECT count(*) FROM pg_index, t WHERE indrelid = t.oid"
		       " AND indisunique AND NOT indisprimary)",
		       2, vals, "could not read the constraints of \"%s.%s\"", schema, t->name);
	if (rc)
		return rc;
	t->set_safe = strcmp(PQgetvalue(res, 0, 0), "0") == 0;
	PQclear(res);
	return EVP_OK;
}

/* An UPDATE that assigns a primary-key column would move a row to another
 * key: its history cannot follow (the old key's version would stay open). */
static int key_unchanged(struct evp__run *r, int table, const char *schema)
{
	evp_rules *rs = r->rules;
	const struct htable *t = &rs->tables_v[table];
	int i, j;

	for (i = 0; i < rs->nrules; i++)
		for (j = 0; j < rs->rules[i].nstmts; j++) {
			const struct stmt *st = &rs->rules[i].stmts[j];
			const char *k;

			if (st->target.table != table || st->target.kind != 'U' ||
			    !(k = evp__stmt_sets(st, t->pk_names.ptr, t->npk)))
				continue;
			snprintf(
				r->err, r->errlen,
				"projection \"%s\": line %d (on %s): the statement changes the"
				" primary key (\"%s\") of temporal table \"%s.%s\", whose history"
				" cannot follow a row to another key; write it as a DELETE and an"
				" INSERT, or keep the table current-only with the line \"current %s\"",
				rs->name, st->line, rs->rules[i].type, k, schema, t->name, t->name);
			return EVP_INVALID;
		}
	return EVP_OK;
}

int evp__history_setup(struct evp__run *r, const char *schema)
{
	evp_rules *rs = r->rules;
	int i, rc = EVP_OK;

	if (!rs || !schema)
		return EVP_OK;
	for (i = 0; i < rs->ntables && rc == EVP_OK; i++) {
		struct htable *t = &rs->tables_v[i];
		const char *vals[2] = {schema, t->name};
		PGresult *cols;
		int c, n, k;

		t->active = false;
		t->set_safe = false;
		if ((rc = evp__cmd(r, "BEGIN")))
			break;
		rc = evp__exec(
			r, PGRES_TUPLES_OK, &cols,
			"SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
			" array_position(i.indkey::int2[], a.attnum)"
			" FROM pg_attribute a LEFT JOIN pg_index i"
			" ON i.indrelid = a.attrelid AND i.indisprimary"
			" WHERE a.attrelid = to_regclass(quote_ident($1) || '.' || quote_ident($2))"
			" AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
			2, vals, "could not read the columns of \"%s.%s\"", schema, t->name);
		if (rc)
			break;
		n = PQntuples(cols);
		t->ncols = n;
		t->npk = 0;
		{
			int order[32], m = 0, j;

			for (c = 0; c < n; c++)
				if (!PQgetisnull(cols, c, 2) && m < 32)
					order[m++] = c;
			/* sort by position in the key */
			for (j = 1; j < m; j++)
				for (k = j; k > 0 && atoi(PQgetvalue(cols, order[k - 1], 2)) >
							     atoi(PQgetvalue(cols, order[k], 2));
				     k--) {
					int x = order[k];

					order[k] = order[k - 1];
					order[k - 1] = x;
				}
			memcpy(t->pk, order, sizeof(int) * (size_t)m);
			t->npk = m;
		}
		evs__buf_reset(&t->pk_types);
		evs__buf_reset(&t->pk_names);
		for (k = 0; k < t->npk; k++) {
			evs__buf_puts(&t->pk_types, PQgetvalue(cols, t->pk[k], 1));
			evs__buf_putc(&t->pk_types, '\0');
			evs__buf_puts(&t->pk_names, PQgetvalue(cols, t->pk[k], 0));
			evs__buf_putc(&t->pk_names, '\0');
		}
		if (t->pk_types.oom || t->pk_names.oom) {
			snprintf(r->err, r->errlen, "out of memory");
			rc = EVP_NOMEM;
		} else if (n && t->npk && (rc = set_safety(r, schema, t)) != EVP_OK) {
			;
		} else if (!t->temporal) {
			;
		} else if (n == 0) {
			snprintf(r->err, r->errlen,
				 "table \"%s.%s\" of projection \"%s\" does not exist (its"
				 " migrations create it)",
				 schema, t->name, evp_rules_name(rs));
			rc = EVP_INVALID;
		} else if (t->npk == 0) {
			evp__logm(r, EVS_LOG_WARNING,
				  "table \"%s.%s\" has no primary key: it keeps only its current"
				  " state (say so with the line \"current %s\")",
				  schema, t->name, t->name);
		} else if ((rc = key_unchanged(r, i, schema)) == EVP_OK) {
			rc = setup_table(r, schema, t, cols);
		}
		PQclear(cols);
		if (rc == EVP_OK)
			rc = evp__cmd(r, "COMMIT");
	}
	if (rc)
		evp__rollback(r);
	return rc;
}
