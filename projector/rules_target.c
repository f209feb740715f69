/*
 * rules_target.c - what each declared statement writes, so that the
 * history of temporal tables can be captured.
 *
 * A table on the "tables" line is temporal unless a "current" line names
 * it. A statement writes a temporal table in a way the projector can
 * capture when it is one of
 *
 *     INSERT INTO t [AS a] ...            (ON CONFLICT included)
 *     UPDATE [ONLY] t [[AS] a] SET ...
 *     DELETE FROM [ONLY] t [[AS] a] ...
 *
 * without a RETURNING clause of its own: " RETURNING a.*" is appended and
 * the rows it returns become versions (history.c). Any other statement
 * that names a temporal table (a data-modifying WITH, MERGE, TRUNCATE,
 * COPY, CALL, DO, ...) is refused at load, except a plain SELECT (reading
 * it). A function called by a statement that writes a temporal table
 * behind the projector's back is not seen: do not do that.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

enum tok { T_END, T_WORD, T_QIDENT, T_PARAM, T_OTHER };

struct lexer {
	const char *s;
	size_t i, len;
	size_t start;  /* offset of the last token */
	int num;       /* T_PARAM: n of $n */
	char tok[128]; /* the word (lowercase) or quoted identifier */
	char c;        /* T_OTHER: the character */
};

/* The next token, skipping blanks, comments and string literals. */
static enum tok next(struct lexer *lx)
{
	const char *s = lx->s;

	for (;;) {
		while (lx->i < lx->len && isspace((unsigned char)s[lx->i]))
			lx->i++;
		if (lx->i >= lx->len)
			return (lx->start = lx->len, T_END);
		if (s[lx->i] == '-' && lx->i + 1 < lx->len && s[lx->i + 1] == '-') {
			while (lx->i < lx->len && s[lx->i] != '\n')
				lx->i++;
		} else if (s[lx->i] == '/' && lx->i + 1 < lx->len && s[lx->i + 1] == '*') {
			const char *e = strstr(s + lx->i + 2, "*/");

			lx->i = e ? (size_t)(e - s) + 2 : lx->len;
		} else if (s[lx->i] == '\'') {
			lx->i++;
			while (lx->i < lx->len && s[lx->i] != '\'')
				lx->i++;
			lx->i++;
		} else {
			break;
		}
	}
	lx->start = lx->i;
	if (s[lx->i] == '$' && lx->i + 1 < lx->len && isdigit((unsigned char)s[lx->i + 1])) {
		lx->num = 0;
		/* saturates: $99999999999 names no parameter, and must not
		 * overflow on its way to saying so */
		for (lx->i++; lx->i < lx->len && isdigit((unsigned char)s[lx->i]); lx->i++)
			lx->num = lx->num > (INT_MAX - 9) / 10 ? INT_MAX
							       : lx->num * 10 + (s[lx->i] - '0');
		return T_PARAM;
	}
	if (s[lx->i] == '"') {
		size_t j = lx->i + 1, n = 0;

		while (j < lx->len && s[j] != '"') {
			if (n + 1 < sizeof lx->tok)
				lx->tok[n++] = s[j];
			j++;
		}
		lx->tok[n] = '\0';
		lx->i = j + 1;
		return T_QIDENT;
	}
	if (isalpha((unsigned char)s[lx->i]) || s[lx->i] == '_') {
		size_t n = 0;

		while (lx->i < lx->len &&
		       (isalnum((unsigned char)s[lx->i]) || s[lx->i] == '_' || s[lx->i] == '$')) {
			if (n + 1 < sizeof lx->tok)
				lx->tok[n++] = (char)tolower((unsigned char)s[lx->i]);
			lx->i++;
		}
		lx->tok[n] = '\0';
		return T_WORD;
	}
	lx->c = s[lx->i++];
	return T_OTHER;
}

static bool is(const struct lexer *lx, enum tok t, const char *word)
{
	return t == T_WORD && strcmp(lx->tok, word) == 0;
}

static int find_table(const evp_rules *rs, const char *name)
{
	int i;

	for (i = 0; i < rs->ntables; i++)
		if (strcmp(rs->tables_v[i].name, name) == 0)
			return i;
	return -1;
}

/* "name" or "schema.name" at the lexer; the table's index (-1: not one of
 * the projection's) in *table, the name to qualify columns with in
 * ref. False when no name is there. */
static bool read_name(const evp_rules *rs, struct lexer *lx, enum tok t, int *table, char *ref,
		      size_t reflen)
{
	char first[128];
	size_t save;

	if (t != T_WORD && t != T_QIDENT)
		return false;
	snprintf(first, sizeof first, "%s", lx->tok);
	save = lx->i;
	t = next(lx);
	if (t == T_OTHER && lx->c == '.') {
		t = next(lx);
		if (t != T_WORD && t != T_QIDENT)
			return false;
		*table =
			rs->schema && strcmp(first, rs->schema) == 0 ? find_table(rs, lx->tok) : -1;
		snprintf(ref, reflen, "%s", lx->tok);
		return true;
	}
	lx->i = save;
	*table = find_table(rs, first);
	snprintf(ref, reflen, "%s", first);
	return true;
}

/* An alias after the table name, if any, into ref. */
static void read_alias(struct lexer *lx, char *ref, size_t reflen, const char *const *stop)
{
	size_t save = lx->i;
	enum tok t = next(lx);
	int k;

	if (is(lx, t, "as"))
		t = next(lx);
	if (t == T_WORD)
		for (k = 0; stop[k]; k++)
			if (strcmp(lx->tok, stop[k]) == 0)
				t = T_END;
	if (t == T_WORD || t == T_QIDENT)
		snprintf(ref, reflen, "%s", lx->tok);
	else
		lx->i = save;
}

static const char *const update_stop[] = {"set", NULL};
static const char *const delete_stop[] = {"using", "where", "returning", NULL};
static const char *const insert_stop[] = {"values", "select", "default", "overriding", NULL};

/* The first temporal table a statement names anywhere (-1: none), and
 * whether it has a RETURNING of its own. */
static int scan(const evp_rules *rs, const char *sql, bool *returning)
{
	struct lexer lx = {.s = sql, .len = strlen(sql)};
	enum tok t;
	int found = -1, k;

	*returning = false;
	while ((t = next(&lx)) != T_END) {
		if (is(&lx, t, "returning"))
			*returning = true;
		if ((t == T_WORD || t == T_QIDENT) && found < 0 &&
		    (k = find_table(rs, lx.tok)) >= 0 && rs->tables_v[k].temporal)
			found = k;
	}
	return found;
}

/* A column name, maybe qualified ("a.col"): the column into out. */
static enum tok column(struct lexer *lx, enum tok t, char *out, size_t n)
{
	size_t save;

	if (t != T_WORD && t != T_QIDENT)
		return T_END;
	snprintf(out, n, "%s", lx->tok);
	save = lx->i;
	t = next(lx);
	if (t == T_OTHER && lx->c == '.') {
		t = next(lx);
		if (t != T_WORD && t != T_QIDENT)
			return T_END;
		snprintf(out, n, "%s", lx->tok);
		return next(lx);
	}
	lx->i = save;
	return next(lx);
}

static const char *set_where(struct lexer *lx, struct setform *f)
{
	enum tok t = next(lx);

	for (;;) {
		if (f->nkey == SET_MAX_COLS)
			return "too many conditions";
		t = column(lx, t, f->col[f->nkey], sizeof f->col[0]);
		if (t != T_OTHER || lx->c != '=')
			return "its WHERE is not \"key = :param [AND ...]\"";
		if (next(lx) != T_PARAM)
			return "its WHERE is not \"key = :param [AND ...]\"";
		f->param[f->nkey++] = lx->num;
		t = next(lx);
		if (t == T_END || (t == T_OTHER && lx->c == ';'))
			return NULL;
		if (!is(lx, t, "and"))
			return "its WHERE is not \"key = :param [AND ...]\"";
		t = next(lx);
	}
}

/* Whether st can run once over many events' values (setexec.c), and
 * where to rewrite it; f->why says why not. */
static void set_classify(const char *sql, char kind, struct lexer *at, struct setform *f)
{
	struct lexer lx = *at;
	enum tok t;
	int depth = 0;

	f->ok = false;
	f->nkey = 0;
	{
		struct lexer all = {.s = sql, .len = strlen(sql)};

		while ((t = next(&all)) != T_END)
			if (is(&all, t, "select") || is(&all, t, "returning") ||
			    is(&all, t, "with")) {
				f->why = "it has a sub-SELECT, WITH or RETURNING";
				return;
			}
	}
	if (kind == 'U' || kind == 'D') {
		/* to the WHERE at depth 0, with no FROM / USING */
		while ((t = next(&lx)) != T_END) {
			if (t == T_OTHER && lx.c == '(')
				depth++;
			else if (t == T_OTHER && lx.c == ')')
				depth--;
			else if (depth == 0 && (is(&lx, t, "from") || is(&lx, t, "using"))) {
				f->why = "it has FROM or USING";
				return;
			} else if (depth == 0 && is(&lx, t, "where")) {
				f->at = lx.start;
				f->why = set_where(&lx, f);
				f->ok = !f->why;
				return;
			}
		}
		f->why = "it has no WHERE";
		return;
	}
	if (kind != 'I') {
		f->why = "it is not an INSERT, UPDATE or DELETE";
		return;
	}
	/* INSERT INTO t (c1, ...) VALUES (e1, ...) [ON CONFLICT ...] */
	if ((t = next(&lx)) != T_OTHER || lx.c != '(') {
		f->why = "it has no column list";
		return;
	}
	for (;;) {
		t = next(&lx);
		if ((t != T_WORD && t != T_QIDENT) || f->nkey == SET_MAX_COLS) {
			f->why = "its column list is not plain names";
			return;
		}
		snprintf(f->col[f->nkey], sizeof f->col[0], "%s", lx.tok);
		f->param[f->nkey++] = 0;
		if ((t = next(&lx)) == T_OTHER && lx.c == ')')
			break;
		if (t != T_OTHER || lx.c != ',') {
			f->why = "its column list is not plain names";
			return;
		}
	}
	if (!is(&lx, next(&lx), "values") || next(&lx) != T_OTHER || lx.c != '(') {
		f->why = "it is not INSERT ... VALUES (...)";
		return;
	}
	f->at = lx.start; /* the '(' of VALUES ( */
	{
		int c = 0;
		bool bare = true, first = true;

		depth = 1;
		while (depth > 0) {
			t = next(&lx);
			if (t == T_END) {
				f->why = "its VALUES is not closed";
				return;
			}
			if (t == T_OTHER && lx.c == '(')
				depth++;
			if (t == T_OTHER && (lx.c == ')' || lx.c == ',') && depth == 1) {
				if (c < f->nkey && !bare)
					f->param[c] = 0;
				c++;
				bare = true;
				first = true;
				if (lx.c == ')')
					depth--;
				continue;
			}
			if (t == T_OTHER && lx.c == ')')
				depth--;
			/* bare: "$n" or "$n::type" */
			if (first && t == T_PARAM && c < f->nkey)
				f->param[c] = lx.num;
			else if (!(t == T_OTHER && lx.c == ':') && !(t == T_WORD && !first && bare))
				bare = false;
			first = false;
		}
		if (c != f->nkey) {
			f->why = "its VALUES do not match its columns";
			return;
		}
	}
	f->end = lx.i; /* after the ')' */
	t = next(&lx);
	if (t != T_END && !(t == T_OTHER && lx.c == ';') && !is(&lx, t, "on")) {
		f->why = "it inserts more than one row";
		return;
	}
	f->ok = true;
}

static int classify(evp_rules *rs, struct stmt *st, const char *type, char *err, size_t errlen)
{
	struct lexer lx = {.s = st->sql, .len = strlen(st->sql)}, after = lx;
	char ref[128] = "", *sql;
	const char *why = NULL;
	bool returning;
	int named = scan(rs, st->sql, &returning), table = -1;
	enum tok t = next(&lx);
	size_t end;

	st->target.kind = 0;
	st->target.table = -1;
	if (is(&lx, t, "insert") && is(&lx, next(&lx), "into")) {
		if (read_name(rs, &lx, next(&lx), &table, ref, sizeof ref)) {
			st->target.kind = 'I';
			read_alias(&lx, ref, sizeof ref, insert_stop);
			after = lx;
		}
	} else if (is(&lx, t, "update")) {
		t = next(&lx);
		if (is(&lx, t, "only"))
			t = next(&lx);
		if (read_name(rs, &lx, t, &table, ref, sizeof ref)) {
			st->target.kind = 'U';
			read_alias(&lx, ref, sizeof ref, update_stop);
			after = lx;
		}
	} else if (is(&lx, t, "delete") && is(&lx, next(&lx), "from")) {
		t = next(&lx);
		if (is(&lx, t, "only"))
			t = next(&lx);
		if (read_name(rs, &lx, t, &table, ref, sizeof ref)) {
			st->target.kind = 'D';
			read_alias(&lx, ref, sizeof ref, delete_stop);
			after = lx;
		}
	} else if (named >= 0 && !is(&lx, t, "select")) {
		why = "not a plain INSERT, UPDATE or DELETE of it";
	}
	if (!why && table >= 0 && rs->tables_v[table].temporal && returning)
		why = "it has a RETURNING clause of its own";
	if (why) {
		snprintf(err, errlen,
			 "line %d (on %s): the statement writes temporal table \"%s\" in a way"
			 " whose history cannot be captured (%s); write it as one INSERT, UPDATE"
			 " or DELETE of that table, or keep the table current-only with the"
			 " line \"current %s\"",
			 st->line, type, rs->tables_v[named >= 0 ? named : table].name, why,
			 rs->tables_v[named >= 0 ? named : table].name);
		return -1;
	}
	st->target.table = table;
	set_classify(st->sql, st->target.kind, &after, &st->set);
	if (st->set.ok && table < 0) {
		st->set.ok = false;
		st->set.why = "its table is not on the \"tables\" line";
	}
	if (table < 0 || !rs->tables_v[table].temporal)
		return 0;
	/* "...;" -> "...\nRETURNING ref.*" */
	end = strlen(st->sql);
	while (end > 0 && (isspace((unsigned char)st->sql[end - 1]) || st->sql[end - 1] == ';'))
		end--;
	{
		evs__buf b = {0};
		char *q = ref;

		evs__buf_putn(&b, st->sql, end);
		evs__buf_puts(&b, "\nRETURNING \"");
		for (; *q; q++) {
			if (*q == '"')
				evs__buf_putc(&b, '"');
			evs__buf_putc(&b, *q);
		}
		evs__buf_puts(&b, "\".*");
		if (!evs__buf_cstr(&b)) {
			evs__buf_free(&b);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		sql = b.ptr;
	}
	free(st->sql);
	st->sql = sql;
	return 0;
}

/* Whether word is in the blank-separated list. */
static bool listed(const char *list, const char *word)
{
	size_t wl = strlen(word);

	while (list && *list) {
		size_t l;

		list += strspn(list, " \t");
		l = strcspn(list, " \t");
		if (l == wl && strncmp(list, word, l) == 0)
			return true;
		list += l;
	}
	return false;
}

int evp__rules_targets(evp_rules *rs, char *err, size_t errlen)
{
	const char *p = rs->tables;
	int i, j;

	while (p && *p) {
		size_t l;
		struct htable *t;

		p += strspn(p, " \t");
		if (!(l = strcspn(p, " \t")))
			break;
		t = realloc(rs->tables_v, (size_t)(rs->ntables + 1) * sizeof *t);
		if (!t) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		rs->tables_v = t;
		t = &rs->tables_v[rs->ntables];
		memset(t, 0, sizeof *t);
		if (!(t->name = strndup(p, l))) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		rs->ntables++;
		p += l;
	}
	/* a "current" name must be a listed table */
	p = rs->current;
	while (p && *p) {
		char name[128];
		size_t l;

		p += strspn(p, " \t");
		if (!(l = strcspn(p, " \t")))
			break;
		snprintf(name, sizeof name, "%.*s", (int)l, p);
		if (find_table(rs, name) < 0) {
			snprintf(err, errlen,
				 "\"current %s\": \"%s\" is not on the \"tables\" line", name,
				 name);
			return -1;
		}
		p += l;
	}
	for (i = 0; i < rs->ntables; i++)
		rs->tables_v[i].temporal = !listed(rs->current, rs->tables_v[i].name);
	for (i = 0; i < rs->nrules; i++)
		for (j = 0; j < rs->rules[i].nstmts; j++)
			if (classify(rs, &rs->rules[i].stmts[j], rs->rules[i].type, err, errlen) <
			    0)
				return -1;
	return 0;
}

const char *evp_rules_current(const evp_rules *rules)
{
	return rules->current;
}

bool evp_rules_temporal(const evp_rules *rules, const char *table)
{
	int i = find_table(rules, table);

	return i >= 0 && rules->tables_v[i].temporal;
}

/* The first of the NUL-separated names (n of them) that an UPDATE's SET
 * assigns, or NULL. */
const char *evp__stmt_sets(const struct stmt *st, const char *names, int n)
{
	struct lexer lx = {.s = st->sql, .len = strlen(st->sql)};
	enum tok t;
	int depth = 0, k;
	bool in_set = false, expect = false;

	while ((t = next(&lx)) != T_END) {
		if (t == T_OTHER && lx.c == '(') {
			depth++;
			continue;
		}
		if (t == T_OTHER && lx.c == ')') {
			depth--;
			if (depth == 0 && expect)
				expect = false; /* end of "(a, b)" */
			continue;
		}
		if (!in_set) {
			in_set = depth == 0 && is(&lx, t, "set");
			expect = in_set;
			continue;
		}
		if (depth == 0 &&
		    (is(&lx, t, "from") || is(&lx, t, "where") || is(&lx, t, "returning")))
			break;
		if (depth == 0 && t == T_OTHER && lx.c == ',') {
			expect = true;
			continue;
		}
		if (expect && (t == T_WORD || t == T_QIDENT)) {
			const char *p = names;

			for (k = 0; k < n; k++, p += strlen(p) + 1)
				if (strcmp(p, lx.tok) == 0)
					return p;
			if (depth == 0)
				expect = false;
		} else if (depth == 0) {
			expect = false;
		}
	}
	return NULL;
}
