/*
 * rules_set.c - plan set-based execution of a declared projection, at
 * session start, once its statements are prepared (rules_exec.c) and its
 * tables known (history.c).
 *
 * A projection runs set-based (setexec.c) when every statement of it is
 *
 *     INSERT INTO t (c, ...) VALUES (e, ...) [ON CONFLICT ...]
 *         with each primary-key column given a bare :param
 *     UPDATE t SET ... WHERE k1 = :p [AND k2 = :q ...]
 *     DELETE FROM t WHERE k1 = :p [AND ...]
 *         the WHERE naming exactly the primary key
 *
 * without a sub-SELECT, WITH, FROM/USING or RETURNING of its own, on a
 * listed table whose rows are independent (history.c set_safety: no
 * foreign key, no trigger of the user's, no unique index but the primary
 * key). Then an event's statement touches one row, named by its key,
 * and reads no other: events touching different rows commute. Otherwise
 * (one statement is enough) the projection runs one event at a time, as
 * before, and the log says which statement and why.
 *
 * Each statement gets a second prepared form over arrays, one element
 * per event, the parameter types those PostgreSQL gave the per-event
 * form (PQdescribePrepared), as arrays:
 *
 *     UPDATE t SET c = evs__ev.p2 ... FROM unnest($1, $2, ...) WITH
 *       ORDINALITY AS evs__ev(p1, p2, ..., evs_ord) WHERE k = evs__ev.p1
 *       [RETURNING t.*, evs__ev.evs_ord]                (temporal t)
 *     DELETE FROM t USING unnest(...) ... WHERE ...     (the same)
 *     INSERT INTO t (c, ...) SELECT e', ... FROM unnest(...) ...
 *       ORDER BY evs__ev.evs_ord [ON CONFLICT ...] [RETURNING t.*]
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

/* text with every $n outside quotes and comments as evs__ev.pn */
static void put_params(evs__buf *b, const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		char c = s[i];

		if (c == '\'' || c == '"') {
			size_t j = i + 1;

			while (j < n && s[j] != c)
				j++;
			j = j < n ? j + 1 : n;
			evs__buf_putn(b, s + i, j - i);
			i = j;
		} else if (c == '-' && i + 1 < n && s[i + 1] == '-') {
			size_t j = i;

			while (j < n && s[j] != '\n')
				j++;
			evs__buf_putn(b, s + i, j - i);
			i = j;
		} else if (c == '$' && i + 1 < n && isdigit((unsigned char)s[i + 1])) {
			evs__buf_puts(b, "evs__ev.p");
			for (i++; i < n && isdigit((unsigned char)s[i]); i++)
				evs__buf_putc(b, s[i]);
		} else {
			evs__buf_putc(b, c);
			i++;
		}
	}
}

static void put_unnest(evs__buf *b, int m)
{
	int k;

	evs__buf_puts(b, "unnest(");
	for (k = 1; k <= m; k++)
		evs__buf_printf(b, "%s$%d", k > 1 ? ", " : "", k);
	evs__buf_puts(b, ") WITH ORDINALITY AS evs__ev(");
	for (k = 1; k <= m; k++)
		evs__buf_printf(b, "p%d, ", k);
	evs__buf_puts(b, "evs_ord)");
}

/* The array form of st (m parameters) into b. */
static void set_sql(evs__buf *b, const struct stmt *st, bool temporal, int m)
{
	const char *s = st->sql;
	const struct setform *f = &st->set;

	if (st->target.kind == 'I') {
		size_t v = f->at;

		while (v > 0 && isspace((unsigned char)s[v - 1]))
			v--;
		v = v >= 6 ? v - 6 : 0; /* "VALUES" */
		put_params(b, s, v);
		evs__buf_puts(b, "SELECT ");
		put_params(b, s + f->at + 1, f->end - f->at - 2);
		evs__buf_puts(b, " FROM ");
		put_unnest(b, m);
		evs__buf_puts(b, " ORDER BY evs__ev.evs_ord ");
		put_params(b, s + f->end, strlen(s) - f->end);
		return;
	}
	put_params(b, s, f->at);
	evs__buf_puts(b, st->target.kind == 'U' ? " FROM " : " USING ");
	put_unnest(b, m);
	evs__buf_putc(b, ' ');
	put_params(b, s + f->at, strlen(s) - f->at);
	if (temporal)
		evs__buf_puts(b, ", evs__ev.evs_ord");
}

/* Why st cannot run set-based (NULL: it can; its key planned). */
static const char *plan_key(evp_rules *rs, struct stmt *st)
{
	struct setform *f = &st->set;
	struct htable *t;
	const char *name, *type;
	int k, c;

	if (!f->ok)
		return f->why;
	t = &rs->tables_v[st->target.table];
	if (!t->npk)
		return "its table has no primary key";
	if (!t->set_safe)
		return "its table has a foreign key, a trigger or a unique index besides its"
		       " primary key";
	if ((st->target.kind == 'U' || st->target.kind == 'D') && f->nkey != t->npk)
		return "its WHERE does not name exactly the primary key";
	name = t->pk_names.ptr;
	type = t->pk_types.ptr;
	for (k = 0; k < t->npk; k++) {
		for (c = 0; c < f->nkey; c++)
			if (strcmp(f->col[c], name) == 0)
				break;
		if (c == f->nkey || f->param[c] <= 0)
			return st->target.kind == 'I'
				       ? "a primary-key column is not given a bare :param"
				       : "its WHERE does not name exactly the primary key";
		f->keyparam[k] = f->param[c];
		f->int_key[k] = strcmp(type, "bigint") == 0 || strcmp(type, "integer") == 0 ||
				strcmp(type, "smallint") == 0;
		/* two texts of one key (citext, uuid case, char padding) would
		 * meet in one round */
		if (!f->int_key[k] && strcmp(type, "text") != 0 &&
		    strncmp(type, "character varying", 17) != 0)
			return "a primary-key column is not text, varchar or an integer";
		name += strlen(name) + 1;
		type += strlen(type) + 1;
	}
	return NULL;
}

static int prepare_set(PGconn *conn, struct stmt *st, bool temporal, int id, const char **why,
		       char *err, size_t errlen)
{
	PGresult *d = PQdescribePrepared(conn, st->pname), *res = NULL;
	evs__buf b = {0}, oids = {0};
	Oid types[MAX_PARAMS];
	int m, k, rc = EVP_OK;

	if (PQresultStatus(d) != PGRES_COMMAND_OK) {
		rc = evp__pg_error(conn, d, "could not describe a statement", err, errlen);
		return rc;
	}
	m = PQnparams(d);
	evs__buf_putc(&oids, '{');
	for (k = 0; k < m; k++) {
		evs__buf_printf(&oids, "%s%u", k ? "," : "", PQparamtype(d, k));
		st->set.etypes[k] = PQparamtype(d, k);
	}
	evs__buf_putc(&oids, '}');
	PQclear(d);
	if (!evs__buf_cstr(&oids)) {
		rc = EVP_NOMEM;
		goto out;
	}
	{
		const char *vals[1] = {oids.ptr};

		res = PQexecParams(
			conn,
			"SELECT t.typarray FROM unnest($1::oid[]) WITH ORDINALITY AS u(o, n)"
			" JOIN pg_type t ON t.oid = u.o ORDER BY u.n",
			1, NULL, vals, NULL, NULL, 0);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = evp__pg_error(conn, res, "could not read parameter types", err, errlen);
		res = NULL;
		goto out;
	}
	for (k = 0; k < m; k++) {
		types[k] = k < PQntuples(res) ? (Oid)strtoul(PQgetvalue(res, k, 0), NULL, 10) : 0;
		if (!types[k]) {
			*why = "a parameter's type has no array type";
			goto out;
		}
	}
	memcpy(st->set.atypes, types, sizeof(Oid) * (size_t)m);
	set_sql(&b, st, temporal, m);
	if (!evs__buf_cstr(&b)) {
		rc = EVP_NOMEM;
		goto out;
	}
	PQclear(res);
	snprintf(st->set.pname, sizeof st->set.pname, "evs_set_%d", id);
	res = PQprepare(conn, st->set.pname, b.ptr, m, types);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		/* not an error of the projection: it runs one event at a time */
		*why = "its array form does not prepare";
		snprintf(err, errlen, "%s", PQresultErrorMessage(res));
	}
out:
	if (rc == EVP_NOMEM)
		snprintf(err, errlen, "out of memory");
	PQclear(res);
	evs__buf_free(&b);
	evs__buf_free(&oids);
	return rc;
}

int evp__rules_plan_set(struct evp__run *r)
{
	evp_rules *rs = r->rules;
	int i, j, id = 0, rc;

	rs->set_ok = false;
	if (getenv("EVS_PROJECTOR_PER_EVENT")) /* benchmarks and tests: the old way */
		return EVP_OK;
	for (i = 0; i < rs->nrules; i++)
		for (j = 0; j < rs->rules[i].nstmts; j++) {
			struct stmt *st = &rs->rules[i].stmts[j];
			const char *why = plan_key(rs, st);

			if (!why) {
				rc = prepare_set(r->conn, st, rs->tables_v[st->target.table].active,
						 id++, &why, r->err, r->errlen);
				if (rc)
					return rc;
			}
			if (why) {
				evp__logm(
					r, EVS_LOG_INFO,
					"projection \"%s\" runs one event at a time: the statement"
					" at line %d (on %s) cannot run over many events: %s",
					rs->name, st->line, rs->rules[i].type, why);
				r->err[0] = '\0';
				return EVP_OK;
			}
		}
	rs->set_ok = true;
	evp__logm(r, EVS_LOG_DEBUG, "projection \"%s\" runs set-based", rs->name);
	return evp__fold_plan(r);
}
