/*
 * fold.c - runs of keyed UPDATEs of one row folded into one statement
 * per table and batch (set-based execution, setexec.c; issue 10).
 *
 * An UPDATE of a set-based projection is foldable when each item of
 * its SET is
 *
 *     c = c + E     c = c - E     (c int2, int4, int8 or numeric without
 *                                  typmod; c OP E of c's type)
 *     c = E         (E of c's type exactly, c without typmod)
 *
 * where E holds only parameters, literals, casts and, at its top level,
 * no operator binding looser than * / % ^ (so "c - E" is "c - (E)"),
 * and its table has no CHECK, exclusion or generated column and no
 * column of a domain type. Then the row after each UPDATE of a run is a
 * function of the row before the run and the run's values alone:
 * per column, the last assignment (or the row's value) plus the sum of
 * the increments after it. PostgreSQL computes every intermediate row
 * in one statement over the run's arrays (window functions ordered by
 * the event's place in the run, sums in numeric, each value cast back
 * to its column's type: an int overflow of any step fails as it would
 * one at a time; numeric sums are exact and their scale is the largest
 * of their terms', as step by step), writes the last row of each key
 * with one UPDATE, inserts the versions between the first and the last
 * of each key's run into the history (temporal table), and returns
 * those two (captured as usual, the first with an explicit end) and any
 * row whose NOT NULL columns would not hold. Any failure or such a row
 * rolls the batch's set-based pass back and it runs one event at a time
 * (setexec.c), which stops on, or parks, exactly the failing event.
 * tests/postgres/test_fold.c compares with one event at a time.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fold.h"

/* scanner over st->sql: one token from *i; returns its kind */
enum { K_END, K_WORD, K_PARAM, K_NUM, K_STR, K_OP };

static int scan(const char *s, size_t end, size_t *i, size_t *start, size_t *len)
{
	size_t j;

	while (*i < end && isspace((unsigned char)s[*i]))
		(*i)++;
	*start = *i;
	if (*i >= end)
		return (*len = 0, K_END);
	j = *i;
	if (s[j] == '$' && j + 1 < end && isdigit((unsigned char)s[j + 1])) {
		for (j++; j < end && isdigit((unsigned char)s[j]); j++)
			;
		*len = j - *i, *i = j;
		return K_PARAM;
	}
	if (s[j] == '\'') {
		for (j++; j < end && s[j] != '\''; j++)
			;
		if (j >= end)
			return K_END;
		*len = j + 1 - *i, *i = j + 1;
		return K_STR;
	}
	if (isdigit((unsigned char)s[j]) ||
	    (s[j] == '.' && j + 1 < end && isdigit((unsigned char)s[j + 1]))) {
		while (j < end && (isalnum((unsigned char)s[j]) || s[j] == '.'))
			j++;
		*len = j - *i, *i = j;
		return K_NUM;
	}
	if (isalpha((unsigned char)s[j]) || s[j] == '_' || s[j] == '"') {
		if (s[j] == '"')
			for (j++; j < end && s[j] != '"'; j++)
				;
		else
			while (j < end && (isalnum((unsigned char)s[j]) || s[j] == '_'))
				j++;
		if (s[*i] == '"')
			j++;
		*len = j - *i, *i = j;
		return K_WORD;
	}
	if (s[j] == ':' && j + 1 < end && s[j + 1] == ':') {
		*len = 2, *i = j + 2;
		return K_OP;
	}
	*len = 1, *i = j + 1;
	return K_OP;
}

static bool word_is(const char *s, size_t len, const char *w)
{
	return strlen(w) == len && strncasecmp(s, w, len) == 0;
}

/* E = s[a, b): parameters, literals, casts; at depth 0 no + - or other
 * looser operator. */
static bool expr_ok(const char *s, size_t a, size_t b)
{
	size_t i = a, st, len;
	int depth = 0, k, n = 0;
	bool cast = false;

	while ((k = scan(s, b, &i, &st, &len)) != K_END) {
		n++;
		if (k == K_WORD) {
			if (!cast && !word_is(s + st, len, "true") &&
			    !word_is(s + st, len, "false") && !word_is(s + st, len, "null"))
				return false;
			continue; /* type names run on: "double precision" */
		}
		cast = false;
		if (k != K_OP)
			continue;
		if (len == 2) {
			cast = true;
		} else if (s[st] == '(') {
			depth++;
		} else if (s[st] == ')') {
			if (--depth < 0)
				return false;
		} else if (strchr("*/%^", s[st])) {
			;
		} else if (depth > 0 && strchr("+-,", s[st])) {
			;
		} else {
			return false;
		}
	}
	return depth == 0 && n > 0 && i >= b;
}

/* The SET items of st into f (false: not foldable). */
static bool parse_set(struct fstmt *f, const struct fcol *cols, int ncols, const char *cnames)
{
	const char *s = f->st->sql;
	size_t i = 0, st, len, end = f->st->set.at;
	int k, depth = 0;

	while ((k = scan(s, end, &i, &st, &len)) != K_END &&
	       !(k == K_WORD && word_is(s + st, len, "set")))
		;
	if (k == K_END)
		return false;
	f->nit = 0;
	while (i < end) {
		struct fitem *it;
		size_t a, e, cst, clen;
		const char *nm = cnames;
		int c;

		if (f->nit == SET_MAX_COLS || scan(s, end, &i, &cst, &clen) != K_WORD)
			return false;
		for (c = 0; c < ncols; c++, nm += strlen(nm) + 1)
			if (s[cst] == '"' ? (clen == strlen(nm) + 2 &&
					     strncmp(s + cst + 1, nm, clen - 2) == 0)
					  : word_is(s + cst, clen, nm))
				break;
		if (c == ncols || scan(s, end, &i, &st, &len) != K_OP || s[st] != '=')
			return false;
		for (a = i, e = i; (k = scan(s, end, &e, &st, &len)) != K_END;) {
			if (k == K_OP && s[st] == '(')
				depth++;
			else if (k == K_OP && s[st] == ')')
				depth--;
			else if (k == K_OP && s[st] == ',' && depth == 0)
				break;
		}
		it = &f->it[f->nit++];
		it->col = c;
		it->op = 1;
		it->e = a;
		it->elen = (k == K_END ? end : st) - a;
		{
			size_t j = a, ws, wl, os, ol;

			if (scan(s, a + it->elen, &j, &ws, &wl) == K_WORD && wl == clen &&
			    strncmp(s + ws, s + cst, wl) == 0 &&
			    scan(s, a + it->elen, &j, &os, &ol) == K_OP && ol == 1 &&
			    (s[os] == '+' || s[os] == '-')) {
				it->op = s[os] == '+' ? 2 : 3;
				it->elen -= j - a;
				it->e = j;
			}
		}
		if (!expr_ok(s, it->e, it->e + it->elen))
			return false;
		i = k == K_END ? end : st + 1;
	}
	(void)cols;
	return f->nit > 0;
}

/* Types PostgreSQL gives "(E)" and "c OP (E)" of f's items, checked. */
static int types_ok(PGconn *conn, const char *tq, struct fstmt *f, struct fcol *cols, bool *ok)
{
	evs__buf b = {0};
	PGresult *res = NULL, *d = NULL;
	Oid types[MAX_PARAMS];
	int k, rc = EVP_OK;

	*ok = false;
	d = PQdescribePrepared(conn, f->st->pname);
	if (PQresultStatus(d) != PGRES_COMMAND_OK || PQnparams(d) > MAX_PARAMS)
		goto out;
	for (k = 0; k < PQnparams(d); k++)
		types[k] = PQparamtype(d, k);
	evs__buf_puts(&b, "SELECT ");
	for (k = 0; k < f->nit; k++) {
		const struct fitem *it = &f->it[k];

		evs__buf_printf(&b, "%s(%.*s)", k ? ", " : "", (int)it->elen, f->st->sql + it->e);
		if (it->op > 1)
			evs__buf_printf(&b, ", (%s %c (%.*s))", cols[it->col].q,
					it->op == 2 ? '+' : '-', (int)it->elen, f->st->sql + it->e);
	}
	evs__buf_printf(&b, " FROM %s", tq);
	if (!evs__buf_cstr(&b)) {
		rc = EVP_NOMEM;
		goto out;
	}
	res = PQprepare(conn, "evs_fold_probe", b.ptr, PQnparams(d), types);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		goto out;
	PQclear(res);
	res = PQdescribePrepared(conn, "evs_fold_probe");
	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		int n = 0;

		*ok = true;
		for (k = 0; k < f->nit && *ok; k++) {
			struct fcol *c = &cols[f->it[k].col];
			unsigned e = PQftype(res, n++);

			if (!c->plain || c->typmod != -1)
				*ok = false;
			else if (f->it[k].op == 1)
				*ok = e == c->oid;
			else
				*ok = PQftype(res, n++) == c->oid &&
				      (c->oid == 20 || c->oid == 21 || c->oid == 23 ||
				       c->oid == 1700);
		}
	}
	PQclear(res);
	res = PQexec(conn, "DEALLOCATE evs_fold_probe");
out:
	PQclear(res);
	PQclear(d);
	evs__buf_free(&b);
	return rc;
}

void evp__fold_free(struct fold *f)
{
	if (f) {
		free(f->fs);
		free(f);
	}
}

/* Plan the fold of table ti (its foldable UPDATEs) and prepare it. */
static int plan_table(struct evp__run *r, int ti, int id)
{
	evp_rules *rs = r->rules;
	struct htable *t = &rs->tables_v[ti];
	struct fold *fo = NULL;
	struct fcol *cols = NULL;
	evs__buf b = {0}, names = {0};
	char tq[300], hq[320];
	const char *vals[1];
	PGresult *res = NULL;
	int i, j, c, n, nst = 0, rc = EVP_OK;

	{
		char *e = PQescapeIdentifier(r->conn, t->name, strlen(t->name));

		if (!e)
			return EVP_NOMEM;
		snprintf(tq, sizeof tq, "%s", e);
		PQfreemem(e);
		snprintf(hq, sizeof hq, "%s_history", t->name);
		if (!(e = PQescapeIdentifier(r->conn, hq, strlen(hq))))
			return EVP_NOMEM;
		snprintf(hq, sizeof hq, "%s", e);
		PQfreemem(e);
	}
	vals[0] = tq;
	rc = evp__exec(
		r, PGRES_TUPLES_OK, &res,
		"SELECT quote_ident(a.attname), a.attname, format_type(a.atttypid, a.atttypmod),"
		" a.atttypid, a.atttypmod, a.attnotnull,"
		" a.attgenerated = '' AND y.typtype = 'b',"
		" (SELECT count(*) FROM pg_constraint WHERE conrelid = a.attrelid"
		" AND contype NOT IN ('p', 'n', 'f', 'u'))"
		" FROM pg_attribute a JOIN pg_type y ON y.oid = a.atttypid"
		" WHERE a.attrelid = to_regclass($1) AND a.attnum > 0"
		" AND NOT a.attisdropped ORDER BY a.attnum",
		1, vals, "could not read the columns of \"%s\"", t->name);
	if (rc)
		return rc;
	n = PQntuples(res);
	if (n != t->ncols || n == 0 || strcmp(PQgetvalue(res, 0, 7), "0") != 0)
		goto out; /* CHECK or exclusion constraints: no folding */
	if (!(cols = calloc((size_t)n, sizeof *cols)) || !(fo = calloc(1, sizeof *fo)))
		goto oom;
	for (c = 0; c < n; c++) {
		cols[c].q = PQgetvalue(res, c, 0);
		evs__buf_puts(&names, PQgetvalue(res, c, 1));
		evs__buf_putc(&names, '\0');
		cols[c].type = PQgetvalue(res, c, 2);
		cols[c].oid = (unsigned)strtoul(PQgetvalue(res, c, 3), NULL, 10);
		cols[c].typmod = atoi(PQgetvalue(res, c, 4));
		cols[c].notnull = PQgetvalue(res, c, 5)[0] == 't';
		cols[c].plain = PQgetvalue(res, c, 6)[0] == 't';
	}
	for (i = 0; i < rs->nrules; i++)
		nst += rs->rules[i].nstmts;
	if (names.oom || !(fo->fs = calloc((size_t)nst, sizeof *fo->fs)))
		goto oom;
	for (i = 0; i < rs->nrules; i++)
		for (j = 0; j < rs->rules[i].nstmts; j++) {
			struct stmt *st = &rs->rules[i].stmts[j];
			struct fstmt *f = &fo->fs[fo->nfs];
			bool ok = false;
			int k;

			if (st->target.table != ti || st->target.kind != 'U' ||
			    fo->nparams + st->nparams + 8 + t->npk > MAX_PARAMS)
				continue;
			memset(f, 0, sizeof *f);
			f->st = st;
			if (!parse_set(f, cols, n, names.ptr))
				continue;
			for (k = 0; k < f->nit; k++)
				for (c = 0; c < t->npk; c++)
					if (f->it[k].col == t->pk[c])
						f->nit = 0;
			if (!f->nit)
				continue;
			if ((rc = types_ok(r->conn, tq, f, cols, &ok)))
				goto out;
			if (!ok)
				continue;
			/* its parameters into slots of their type it does not use yet */
			for (k = 0; k < st->nparams; k++) {
				int g, q;

				for (g = 0; g < fo->nparams; g++) {
					for (q = 0; q < k && f->slot[q] != g; q++)
						;
					if (fo->stype[g] == st->set.atypes[k] && q == k)
						break;
				}
				if (g == fo->nparams) {
					fo->etype[fo->nparams] = st->set.etypes[k];
					fo->stype[fo->nparams++] = st->set.atypes[k];
				}
				f->slot[k] = g;
			}
			st->set.fold = ++fo->nfs;
		}
	if (!fo->nfs)
		goto out;
	for (c = 0; c < n; c++) {
		int sets = 0, adds = 0;

		for (j = 0; j < fo->nfs; j++)
			for (i = 0; i < fo->fs[j].nit; i++)
				if (fo->fs[j].it[i].col == c)
					fo->fs[j].it[i].op > 1 ? adds++ : sets++;
		cols[c].mode = adds ? (sets ? 3 : 2) : sets == fo->nfs ? 4 : sets ? 1 : 0;
	}
	for (c = 0; c < t->npk; c++)
		fo->ktype[c] = cols[t->pk[c]].oid;
	evp__fold_sql(&b, t, tq, hq, fo, cols, n);
	if (!evs__buf_cstr(&b))
		goto oom;
	{
		Oid types[MAX_PARAMS] = {0};

		memcpy(types + 1 + t->npk, fo->stype, sizeof(Oid) * (size_t)fo->nparams);
		snprintf(fo->pname, sizeof fo->pname, "evs_fold_%d", id);
		PQclear(res);
		res = PQprepare(r->conn, fo->pname, b.ptr, 8 + t->npk + fo->nparams, types);
	}
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		evp__logm(r, EVS_LOG_INFO, "table \"%s\": its UPDATEs are not folded: %s", t->name,
			  PQresultErrorMessage(res));
		for (j = 0; j < fo->nfs; j++)
			fo->fs[j].st->set.fold = 0;
		goto out;
	}
	evp__logm(r, EVS_LOG_DEBUG, "table \"%s\": %d UPDATE statements folded", t->name, fo->nfs);
	t->fold = fo;
	fo = NULL;
	goto out;
oom:
	snprintf(r->err, r->errlen, "out of memory");
	rc = EVP_NOMEM;
out:
	if (fo)
		for (j = 0; j < fo->nfs; j++)
			fo->fs[j].st->set.fold = 0;
	evp__fold_free(fo);
	free(cols);
	PQclear(res);
	evs__buf_free(&b);
	evs__buf_free(&names);
	return rc;
}

int evp__fold_plan(struct evp__run *r)
{
	evp_rules *rs = r->rules;
	int i, j, rc = EVP_OK;

	for (i = 0; i < rs->ntables; i++) {
		evp__fold_free(rs->tables_v[i].fold);
		rs->tables_v[i].fold = NULL;
	}
	for (i = 0; i < rs->nrules; i++)
		for (j = 0; j < rs->rules[i].nstmts; j++)
			rs->rules[i].stmts[j].set.fold = 0;
	if (getenv("EVS_PROJECTOR_NO_FOLD")) /* tests and benchmarks: rounds only */
		return EVP_OK;
	for (i = 0; i < rs->ntables && rc == EVP_OK; i++)
		if (rs->tables_v[i].set_safe && rs->tables_v[i].npk)
			rc = plan_table(r, i, i);
	return rc;
}

/* setexec.c's view of a fold */
const char *evp__fold_name(const struct fold *f)
{
	return f->pname;
}

int evp__fold_nparams(const struct fold *f)
{
	return f->nparams;
}

int evp__fold_slot(const struct fold *f, int j, int k)
{
	return f->fs[j].slot[k];
}

Oid evp__fold_etype(const struct fold *f, int g)
{
	return f->etype[g];
}

Oid evp__fold_ktype(const struct fold *f, int k)
{
	return f->ktype[k];
}
