/*
 * rules.c - declared projections: SQL per event type with named
 * parameters (the file format is described in evsproj.h).
 *
 * Each statement is rewritten once at load time: every :name outside
 * quotes, identifiers and comments becomes $n (the same name, the same
 * n); "::" casts are left alone. The statement is prepared once per
 * connection and run with the event's values as text parameters
 * (rules_exec.c).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

#define MAX_RULES_FILE ((size_t)4 << 20)

static const char *const field_names[] = {
	"stream",      "version",  "position",       "type",         "type_version", "recorded_at",
	"occurred_at", "event_id", "correlation_id", "causation_id", "data",         "metadata"};

const char *evp_rules_name(const evp_rules *rules)
{
	return rules->name;
}

const char *evp_rules_schema(const evp_rules *rules)
{
	return rules->schema;
}

const char *evp_rules_tables(const evp_rules *rules)
{
	return rules->tables;
}

void evp_rules_free(evp_rules *rules)
{
	int i, j, k, s;

	if (!rules)
		return;
	for (i = 0; i < rules->nrules; i++) {
		struct rule *ru = &rules->rules[i];

		for (j = 0; j < ru->nstmts; j++) {
			struct stmt *st = &ru->stmts[j];

			for (k = 0; k < st->nparams; k++) {
				free(st->params[k].name);
				for (s = 0; s < st->params[k].nsegs; s++)
					free(st->params[k].segs[s].key);
			}
			free(st->sql);
		}
		free(ru->stmts);
		free(ru->type);
	}
	for (i = 0; i < rules->ntables; i++) {
		struct htable *t = &rules->tables_v[i];

		free(t->name);
		free(t->close_sql);
		free(t->close_bulk_sql);
		free(t->copy_sql);
		free(t->rows);
		evp__fold_free(t->fold);
		evs__buf_free(&t->pk_types);
		evs__buf_free(&t->pk_names);
		evs__buf_free(&t->data);
	}
	free(rules->tables_v);
	free(rules->current);
	free(rules->rules);
	free(rules->name);
	free(rules->schema);
	free(rules->tables);
	free(rules);
}

/* Parse "data.a.b[0].c" into a param; -1 with err on a bad name. */
static int parse_param(struct param *p, const char *name, char *err, size_t errlen)
{
	const char *s = name;
	size_t i, l = strcspn(s, ".[");

	for (i = 0; i < sizeof field_names / sizeof *field_names; i++)
		if (strlen(field_names[i]) == l && strncmp(field_names[i], s, l) == 0)
			break;
	if (i == sizeof field_names / sizeof *field_names) {
		snprintf(err, errlen, "unknown parameter \":%s\"", name);
		return -1;
	}
	p->field = (enum field)i;
	s += l;
	if (*s && p->field != F_DATA && p->field != F_METADATA) {
		snprintf(err, errlen, "parameter \":%s\" has a path but is not data or metadata",
			 name);
		return -1;
	}
	while (*s) {
		struct seg *g;

		if (p->nsegs == MAX_SEGS) {
			snprintf(err, errlen, "parameter \":%s\" has too deep a path", name);
			return -1;
		}
		g = &p->segs[p->nsegs++];
		if (*s == '.') {
			s++;
			l = strcspn(s, ".[");
			if (l == 0) {
				snprintf(err, errlen, "empty key in parameter \":%s\"", name);
				return -1;
			}
			if (!(g->key = strndup(s, l))) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			s += l;
		} else { /* '[' */
			char *end;

			errno = 0;
			g->index = strtol(s + 1, &end, 10);
			if (end == s + 1 || *end != ']' || g->index < 0 || errno) {
				snprintf(err, errlen, "bad array index in parameter \":%s\"", name);
				return -1;
			}
			s = end + 1;
		}
	}
	return 0;
}

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '[' || c == ']';
}

/* Rewrite :names to $n. */
static int compile(struct stmt *st, const char *sql, size_t len, int line, char *err, size_t errlen)
{
	evs__buf out = {0};
	size_t i = 0;

	while (i < len) {
		char c = sql[i];

		if (c == '\'' || c == '"') { /* literal or quoted identifier */
			size_t j = i + 1;

			while (j < len && sql[j] != c)
				j++;
			evs__buf_putn(&out, sql + i, j < len ? j - i + 1 : len - i);
			i = j + 1;
		} else if (c == '-' && i + 1 < len && sql[i + 1] == '-') {
			size_t j = i;

			while (j < len && sql[j] != '\n')
				j++;
			evs__buf_putn(&out, sql + i, j - i);
			i = j;
		} else if (c == ':' && i + 1 < len && sql[i + 1] == ':') {
			evs__buf_putn(&out, "::", 2);
			i += 2;
		} else if (c == ':' && i + 1 < len &&
			   (isalpha((unsigned char)sql[i + 1]) || sql[i + 1] == '_')) {
			size_t j = i + 1;
			char *name;
			int k;

			while (j < len && name_char(sql[j]))
				j++;
			/* a trailing '.' belongs to the SQL, not the name */
			while (j > i + 1 && sql[j - 1] == '.')
				j--;
			if (!(name = strndup(sql + i + 1, j - i - 1)))
				goto oom;
			for (k = 0; k < st->nparams; k++)
				if (strcmp(st->params[k].name, name) == 0)
					break;
			if (k == st->nparams) {
				if (k == MAX_PARAMS) {
					free(name);
					snprintf(err, errlen, "line %d: more than %d parameters",
						 line, MAX_PARAMS);
					goto fail;
				}
				st->params[k].name = name;
				st->nparams++;
				if (parse_param(&st->params[k], name, err, errlen) < 0) {
					char tmp[512];

					snprintf(tmp, sizeof tmp, "line %d: %.400s", line, err);
					snprintf(err, errlen, "%s", tmp);
					goto fail;
				}
			} else {
				free(name);
			}
			evs__buf_printf(&out, "$%d", k + 1);
			i = j;
		} else {
			evs__buf_putc(&out, c);
			i++;
		}
	}
	if (!evs__buf_cstr(&out))
		goto oom;
	st->sql = out.ptr;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	evs__buf_free(&out);
	return -1;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int evp_rules_load(const char *path, evp_rules **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	evp_rules *rs = NULL;
	evs__buf stmt = {0};
	char line[8192], emsg[512];
	int lineno = 0, stmt_line = 0, rc = EVP_SYNTAX;
	struct rule *cur = NULL;
	size_t total = 0;

	*out = NULL;
	if (!f) {
		snprintf(err, errlen, "could not open projection file \"%s\": %s", path,
			 strerror(errno));
		return EVP_IO;
	}
	if (!(rs = calloc(1, sizeof *rs)))
		goto oom;
	while (fgets(line, sizeof line, f)) {
		size_t l = strlen(line);
		char *t;

		lineno++;
		total += l;
		if (total > MAX_RULES_FILE || (l == sizeof line - 1 && line[l - 1] != '\n')) {
			snprintf(emsg, sizeof emsg, "line %d: line or file too long", lineno);
			goto syntax;
		}
		t = trim(line);
		if (stmt.len == 0) {
			if (t[0] == '\0' || t[0] == '#')
				continue;
			if (strncmp(t, "projection ", 11) == 0) {
				free(rs->name);
				if (!(rs->name = strdup(trim(t + 11))))
					goto oom;
				continue;
			}
			if (strncmp(t, "tables ", 7) == 0) {
				/* created by migrations; listed for rebuilds */
				free(rs->tables);
				if (!(rs->tables = strdup(trim(t + 7))))
					goto oom;
				continue;
			}
			if (strncmp(t, "current ", 8) == 0) {
				/* tables kept current-only, without history */
				free(rs->current);
				if (!(rs->current = strdup(trim(t + 8))))
					goto oom;
				continue;
			}
			if (strncmp(t, "schema ", 7) == 0) {
				free(rs->schema);
				if (!(rs->schema = strdup(trim(t + 7))))
					goto oom;
				continue;
			}
			if (strncmp(t, "on ", 3) == 0) {
				struct rule *p =
					realloc(rs->rules, (size_t)(rs->nrules + 1) * sizeof *p);

				if (!p)
					goto oom;
				rs->rules = p;
				cur = &rs->rules[rs->nrules++];
				memset(cur, 0, sizeof *cur);
				if (!(cur->type = strdup(trim(t + 3))))
					goto oom;
				continue;
			}
			if (!cur) {
				snprintf(emsg, sizeof emsg,
					 "line %d: statement before the first \"on TYPE\"", lineno);
				goto syntax;
			}
			stmt_line = lineno;
		}
		evs__buf_puts(&stmt, t);
		evs__buf_putc(&stmt, '\n');
		if (t[0] && t[strlen(t) - 1] == ';') {
			struct stmt *p = realloc(cur->stmts, (size_t)(cur->nstmts + 1) * sizeof *p);

			if (!p || stmt.oom)
				goto oom;
			cur->stmts = p;
			p = &cur->stmts[cur->nstmts++];
			memset(p, 0, sizeof *p);
			p->line = stmt_line;
			if (compile(p, stmt.ptr, stmt.len, stmt_line, emsg, sizeof emsg) < 0)
				goto syntax;
			stmt.len = 0;
		}
	}
	if (stmt.len) {
		snprintf(emsg, sizeof emsg, "line %d: statement without a closing \";\"",
			 stmt_line);
		goto syntax;
	}
	if (!rs->name) {
		snprintf(emsg, sizeof emsg, "no \"projection NAME\" line");
		goto syntax;
	}
	if (evp__rules_targets(rs, emsg, sizeof emsg) < 0)
		goto syntax;
	fclose(f);
	evs__buf_free(&stmt);
	*out = rs;
	return EVP_OK;
oom:
	snprintf(emsg, sizeof emsg, "out of memory");
	rc = EVP_NOMEM;
syntax:
	snprintf(err, errlen, "projection file \"%s\": %s", path, emsg);
	fclose(f);
	evs__buf_free(&stmt);
	evp_rules_free(rs);
	return rc;
}
