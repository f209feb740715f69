/*
 * fold_sql.c - the statement of a fold (fold.c says when a run of
 * UPDATEs folds and why the result is that of one event at a time).
 */
#include <ctype.h>
#include <stdio.h>

#include "fold.h"

/* $n of E as u.s<j>_<n> */
static void put_e(evs__buf *b, const struct fstmt *f, const struct fitem *it)
{
	const char *s = f->st->sql + it->e;
	size_t len = it->elen;
	size_t i = 0;

	while (i < len) {
		if (s[i] == '\'') {
			size_t k = i + 1;

			while (k < len && s[k] != '\'')
				k++;
			evs__buf_putn(b, s + i, k + 1 - i);
			i = k + 1;
		} else if (s[i] == '$' && i + 1 < len && isdigit((unsigned char)s[i + 1])) {
			int n = 0;

			for (i++; i < len && isdigit((unsigned char)s[i]); i++)
				n = n * 10 + (s[i] - '0');
			evs__buf_printf(b, "u.q%d", f->slot[n - 1]);
		} else {
			evs__buf_putc(b, s[i++]);
		}
	}
}

/* " PARTITION BY <p>.kid": the key's number in the batch (setexec.c
 * numbers the keys: one number per key, as the key's columns compare
 * equal, and integers sort fast) */
static void put_keys(evs__buf *b, const struct htable *t, const char *p)
{
	(void)t;
	evs__buf_printf(b, " PARTITION BY %s.kid", p);
}

/*
 * The fold statement of table t. Column modes: 0 untouched, 1 assigned
 * by some folded statements (the value of the last assignment: a look-up
 * of that instance), 2 only incremented (the row's value plus a running
 * sum), 3 both (sums per stretch after an assignment: a window of its
 * own, so that the scale of the sum is that of the stretch), 4 assigned
 * by every folded statement (the instance's own value). One sort of the
 * run's instances for all windows but those of mode 3.
 */
void evp__fold_sql(evs__buf *b, const struct htable *t, const char *tq, const char *hq,
		   const struct fold *fo, const struct fcol *cols, int ncols)
{
	evs__buf ok = {0};
	int j, k, c;

	evs__buf_puts(&ok, "(true");
	for (c = 0; c < ncols; c++)
		if (cols[c].mode && cols[c].notnull)
			evs__buf_printf(&ok, " AND x.c%d IS NOT NULL", c);
	evs__buf_putc(&ok, ')');

	evs__buf_puts(b,
		      "WITH ev AS (SELECT u.o, u.pos, u.at, u.kid, u.nexto, u.npos, u.nat, u.fpos");
	for (k = 0; k < t->npk; k++)
		evs__buf_printf(b, ", u.k%d", k);
	for (c = 0; c < ncols; c++) {
		if (!cols[c].mode)
			continue;
		evs__buf_puts(b, ", CASE u.sid");
		for (j = 0; j < fo->nfs; j++)
			for (k = 0; k < fo->fs[j].nit; k++)
				if (fo->fs[j].it[k].col == c) {
					evs__buf_printf(b, " WHEN %d THEN (", j);
					put_e(b, &fo->fs[j], &fo->fs[j].it[k]);
					evs__buf_puts(b, cols[c].mode == 2 || cols[c].mode == 3
								 ? ")::numeric"
								 : ")");
				}
		evs__buf_printf(b, " END AS v%d, CASE u.sid", c);
		for (j = 0; j < fo->nfs; j++)
			for (k = 0; k < fo->fs[j].nit; k++)
				if (fo->fs[j].it[k].col == c)
					evs__buf_printf(b, " WHEN %d THEN %d", j,
							fo->fs[j].it[k].op);
		evs__buf_printf(b, " ELSE 0 END AS m%d", c);
	}
	evs__buf_puts(b, " FROM unnest($1::int[]");
	for (k = 0; k < t->npk; k++)
		evs__buf_printf(b, ", $%d::%s[]", k + 2, cols[t->pk[k]].type);
	for (k = 0; k < fo->nparams; k++)
		evs__buf_printf(b, ", $%d", k + 2 + t->npk);
	k = fo->nparams + 2 + t->npk;
	evs__buf_printf(b,
			", $%d::bigint[], $%d::timestamptz[], $%d::int[], $%d::int[],"
			" $%d::bigint[], $%d::timestamptz[], $%d::bigint[]",
			k, k + 1, k + 2, k + 3, k + 4, k + 5, k + 6);
	evs__buf_puts(b, ") WITH ORDINALITY AS u(sid");
	for (k = 0; k < t->npk; k++)
		evs__buf_printf(b, ", k%d", k);
	for (k = 0; k < fo->nparams; k++)
		evs__buf_printf(b, ", q%d", k);
	evs__buf_puts(
		b, ", pos, at, kid, nexto, npos, nat, fpos, o)), w AS MATERIALIZED (SELECT ev.*");
	for (c = 0; c < ncols; c++) {
		if (cols[c].mode == 1)
			evs__buf_printf(b,
					", max(CASE WHEN ev.m%d = 1 THEN ev.o END) OVER wk AS l%d",
					c, c);
		else if (cols[c].mode == 2)
			evs__buf_printf(
				b,
				", sum(CASE ev.m%d WHEN 2 THEN ev.v%d WHEN 3 THEN -ev.v%d END)"
				" OVER wk AS s%d, count(*) FILTER (WHERE ev.m%d >= 2 AND"
				" ev.v%d IS NULL) OVER wk AS n%d",
				c, c, c, c, c, c, c);
		else if (cols[c].mode == 3)
			evs__buf_printf(b, ", count(*) FILTER (WHERE ev.m%d = 1) OVER wk AS g%d", c,
					c);
	}
	/* the next instance of the key (nexto, its position npos and time nat)
	 * and the first position of the key's run (fpos) come from setexec.c */
	evs__buf_puts(b, " FROM ev WINDOW wk AS (");
	put_keys(b, t, "ev");
	evs__buf_puts(b, " ORDER BY ev.o)), x AS MATERIALIZED (SELECT w.o, w.pos, w.at, w.nexto,"
			 " w.npos, w.nat, w.fpos, w.nexto IS NULL AS last,"
			 " w.npos IS DISTINCT FROM w.pos AS ver");
	for (k = 0; k < t->npk; k++)
		evs__buf_printf(b, ", w.k%d", k);
	for (c = 0; c < ncols; c++) {
		const struct fcol *f = &cols[c];

		if (f->mode == 0)
			evs__buf_printf(b, ", t.%s", f->q);
		else if (f->mode == 4)
			evs__buf_printf(b, ", w.v%d", c);
		else if (f->mode == 1)
			evs__buf_printf(b, ", CASE WHEN w.l%d IS NULL THEN t.%s ELSE j%d.v%d END",
					c, f->q, c, c);
		else if (f->mode == 2)
			evs__buf_printf(b,
					", (CASE WHEN w.n%d > 0 THEN NULL ELSE t.%s::numeric +"
					" coalesce(w.s%d, 0) END)::%s",
					c, f->q, c, f->type);
		else
			evs__buf_printf(
				b,
				", (CASE WHEN bool_or(w.m%d >= 2 AND w.v%d IS NULL) OVER p%d"
				" THEN NULL ELSE CASE WHEN w.g%d = 0 THEN t.%s::numeric ELSE"
				" first_value(w.v%d) OVER p%d END + coalesce(sum(CASE w.m%d"
				" WHEN 2 THEN w.v%d WHEN 3 THEN -w.v%d END) OVER p%d, 0) END)::%s",
				c, c, c, c, f->q, c, c, c, c, c, c, f->type);
		evs__buf_printf(b, " AS c%d", c);
	}
	evs__buf_printf(b, " FROM w JOIN %s t ON", tq);
	for (k = 0; k < t->npk; k++)
		evs__buf_printf(b, "%s t.%s = w.k%d", k ? " AND" : "", cols[t->pk[k]].q, k);
	for (c = 0; c < ncols; c++)
		if (cols[c].mode == 1)
			evs__buf_printf(b, " LEFT JOIN w j%d ON j%d.o = w.l%d", c, c, c);
	for (c = 0, j = 0; c < ncols; c++)
		if (cols[c].mode == 3) {
			evs__buf_printf(b, "%sp%d AS (", j++ ? ", " : " WINDOW ", c);
			put_keys(b, t, "w");
			evs__buf_printf(b, ", w.g%d ORDER BY w.o)", c);
		}
	evs__buf_printf(b, "), up AS (UPDATE %s t SET ", tq);
	for (c = 0, j = 0; c < ncols; c++)
		if (cols[c].mode)
			evs__buf_printf(b, "%s%s = x.c%d", j++ ? ", " : "", cols[c].q, c);
	evs__buf_puts(b, " FROM x WHERE x.last");
	for (k = 0; k < t->npk; k++)
		evs__buf_printf(b, " AND t.%s = x.k%d", cols[t->pk[k]].q, k);
	evs__buf_putc(b, ')');
	/* versions (the last instance of an event in a key's run) between
	 * the first and the last of a run, written here; the first (ending
	 * at the next, nexto) and the last go back as captures */
	if (t->active) {
		evs__buf_printf(b, ", hi AS (INSERT INTO %s SELECT ", hq);
		for (c = 0; c < ncols; c++)
			evs__buf_printf(b, "x.c%d, ", c);
		evs__buf_puts(b, "x.pos, x.npos, x.at, x.nat FROM x WHERE x.ver AND NOT x.last"
				 " AND x.pos <> x.fpos)");
	}
	evs__buf_puts(b, " SELECT ");
	for (c = 0; c < ncols; c++)
		evs__buf_printf(b, "x.c%d, ", c);
	evs__buf_putn(b, ok.ptr, ok.len);
	evs__buf_puts(b, ", CASE WHEN x.last THEN NULL ELSE x.nexto END, x.o FROM x WHERE NOT ");
	evs__buf_putn(b, ok.ptr, ok.len);
	if (t->active)
		evs__buf_puts(b, " OR (x.ver AND (x.last OR x.pos = x.fpos))");
	evs__buf_free(&ok);
}
