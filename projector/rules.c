/*
 * rules.c - declared projections: SQL per event type with named
 * parameters (the file format is described in evsproj.h).
 *
 * Each statement is rewritten once at load time: every :name outside
 * quotes, identifiers and comments becomes $n (the same name, the same
 * n); "::" casts are left alone. The statement is prepared once per
 * connection and run with the event's values as text parameters.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "batch.h"

#define MAX_PARAMS     100
#define MAX_SEGS       16
#define MAX_RULES_FILE ((size_t)4 << 20)

enum field {
	F_STREAM,
	F_VERSION,
	F_POSITION,
	F_TYPE,
	F_TYPE_VERSION,
	F_RECORDED_AT,
	F_OCCURRED_AT,
	F_EVENT_ID,
	F_CORRELATION_ID,
	F_CAUSATION_ID,
	F_DATA,
	F_METADATA
};

static const char *const field_names[] = {
	"stream",      "version",  "position",       "type",         "type_version", "recorded_at",
	"occurred_at", "event_id", "correlation_id", "causation_id", "data",         "metadata"};

struct seg {
	char *key; /* NULL: an array index */
	long index;
};

struct param {
	char *name;
	enum field field;
	struct seg segs[MAX_SEGS];
	int nsegs;
};

struct stmt {
	char *sql; /* with $n */
	char pname[32];
	struct param params[MAX_PARAMS];
	int nparams;
};

struct rule {
	char *type;
	struct stmt *stmts;
	int nstmts;
};

struct evp_rules {
	char *name;
	char *schema; /* "schema NAME": unqualified tables live there */
	char *tables; /* "tables a b c", as written */
	struct rule *rules;
	int nrules;
	int nprepared;
};

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

int evp__rules_prepare(evp_rules *rules, PGconn *conn, char *err, size_t errlen)
{
	int i, j, n = 0, rc;

	for (i = 0; i < rules->nrules; i++)
		for (j = 0; j < rules->rules[i].nstmts; j++) {
			struct stmt *st = &rules->rules[i].stmts[j];
			PGresult *res;

			snprintf(st->pname, sizeof st->pname, "evs_rule_%d", n++);
			res = PQprepare(conn, st->pname, st->sql, 0, NULL);
			if (PQresultStatus(res) != PGRES_COMMAND_OK) {
				const char *m = PQresultErrorMessage(res);
				size_t l = strlen(m);

				while (l > 0 && m[l - 1] == '\n')
					l--;
				snprintf(err, errlen,
					 "could not prepare a statement for \"%s\" of \"%s\": %.*s",
					 rules->rules[i].type, rules->name, (int)l, m);
				rc = evp_retryable(conn, res) ? EVP_CONNECT : EVP_SQL;
				PQclear(res);
				return rc;
			}
			PQclear(res);
		}
	return EVP_OK;
}

static const struct rule *find_rule(const evp_rules *rules, const evs_str *type)
{
	int i;

	for (i = 0; i < rules->nrules; i++)
		if (strlen(rules->rules[i].type) == type->len &&
		    memcmp(rules->rules[i].type, type->ptr, type->len) == 0)
			return &rules->rules[i];
	return NULL;
}

bool evp__rules_match(const evp_rules *rules, const evs_str *type)
{
	return find_rule(rules, type) != NULL;
}

static const msgpack_object *walk(const msgpack_object *o, const struct param *p)
{
	int s;

	for (s = 0; s < p->nsegs && o; s++) {
		const struct seg *g = &p->segs[s];
		const msgpack_object *next = NULL;
		uint32_t i;

		if (g->key) {
			size_t kl = strlen(g->key);

			if (o->type != MSGPACK_OBJECT_MAP)
				return NULL;
			for (i = 0; i < o->via.map.size; i++) {
				const msgpack_object *k = &o->via.map.ptr[i].key;

				if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
				    memcmp(k->via.str.ptr, g->key, kl) == 0)
					next = &o->via.map.ptr[i].val;
			}
		} else {
			if (o->type != MSGPACK_OBJECT_ARRAY ||
			    (uint64_t)g->index >= o->via.array.size)
				return NULL;
			next = &o->via.array.ptr[g->index];
		}
		o = next;
	}
	return o;
}

static int sbuf_write(void *data, const char *p, size_t n)
{
	evs__buf_putn(data, p, n);
	return ((evs__buf *)data)->oom ? -1 : 0;
}

/* Text of a payload value; false for NULL. */
static bool value_text(evs__buf *b, const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: return false;
	case MSGPACK_OBJECT_BOOLEAN: evs__buf_puts(b, o->via.boolean ? "true" : "false"); break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		evs__buf_printf(b, "%llu", (unsigned long long)o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		evs__buf_printf(b, "%lld", (long long)o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: evs__buf_printf(b, "%.17g", o->via.f64); break;
	case MSGPACK_OBJECT_STR: evs__buf_putn(b, o->via.str.ptr, o->via.str.size); break;
	default: {
		evs__buf mp = {0};
		msgpack_packer pk;

		msgpack_packer_init(&pk, &mp, sbuf_write);
		msgpack_pack_object(&pk, *o);
		evp_msgpack_to_json(b, mp.ptr, mp.len);
		evs__buf_free(&mp);
	}
	}
	return true;
}

/* Payload of one event, unpacked once for all its statements. */
struct unpacked {
	msgpack_zone zone;
	msgpack_object data, meta;
	evs__buf vals[MAX_PARAMS];
	const char *pv[MAX_PARAMS];
};

static int unpack_event(struct unpacked *u, const evs_event *ev)
{
	size_t off = 0;

	if (!msgpack_zone_init(&u->zone, 4096))
		return EVP_NOMEM;
	if (msgpack_unpack(ev->data, ev->data_len, &off, &u->zone, &u->data) !=
	    MSGPACK_UNPACK_SUCCESS)
		u->data.type = MSGPACK_OBJECT_NIL;
	off = 0;
	if (msgpack_unpack(ev->metadata, ev->metadata_len, &off, &u->zone, &u->meta) !=
	    MSGPACK_UNPACK_SUCCESS)
		u->meta.type = MSGPACK_OBJECT_NIL;
	return EVP_OK;
}

/* Fill u->pv with the statement's parameter values (NULL = SQL NULL). */
static int bind_params(struct unpacked *u, const struct stmt *st, const evs_event *ev)
{
	int k;

	for (k = 0; k < st->nparams; k++) {
		const struct param *p = &st->params[k];
		evs__buf *b = &u->vals[k];
		bool present = true;

		b->len = 0;
		switch (p->field) {
		case F_STREAM: evs__buf_putn(b, ev->stream.ptr, ev->stream.len); break;
		case F_TYPE: evs__buf_putn(b, ev->type.ptr, ev->type.len); break;
		case F_VERSION: evs__buf_printf(b, "%llu", (unsigned long long)ev->version); break;
		case F_POSITION: evs__buf_printf(b, "%llu", (unsigned long long)ev->position); break;
		case F_TYPE_VERSION: evs__buf_printf(b, "%u", ev->type_version); break;
		case F_RECORDED_AT: evp_time_text(b, ev->recorded_at); break;
		case F_OCCURRED_AT:
			present = ev->occurred_at != 0;
			if (present)
				evp_time_text(b, ev->occurred_at);
			break;
		case F_EVENT_ID: evp_uuid_text(b, ev->id); break;
		case F_CORRELATION_ID:
			present = !evp_uuid_is_nil(ev->correlation_id);
			if (present)
				evp_uuid_text(b, ev->correlation_id);
			break;
		case F_CAUSATION_ID:
			present = !evp_uuid_is_nil(ev->causation_id);
			if (present)
				evp_uuid_text(b, ev->causation_id);
			break;
		case F_DATA:
		case F_METADATA: {
			const msgpack_object *o = walk(p->field == F_DATA ? &u->data : &u->meta, p);

			present = o && value_text(b, o);
			break;
		}
		}
		if (!evs__buf_cstr(b))
			return EVP_NOMEM;
		u->pv[k] = present ? b->ptr : NULL;
	}
	return EVP_OK;
}

static void unpacked_free(struct unpacked *u, bool bufs)
{
	int k;

	msgpack_zone_destroy(&u->zone);
	if (bufs)
		for (k = 0; k < MAX_PARAMS; k++)
			evs__buf_free(&u->vals[k]);
}

static int result_error(PGconn *conn, PGresult *res, char *err, size_t errlen, char *sqlstate,
			size_t sslen)
{
	const char *m = res ? PQresultErrorMessage(res) : "";
	const char *ss = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	size_t l;

	if (!m[0])
		m = PQerrorMessage(conn);
	l = strlen(m);
	while (l > 0 && m[l - 1] == '\n')
		l--;
	snprintf(err, errlen, "%.*s", (int)l, m);
	snprintf(sqlstate, sslen, "%s", ss ? ss : "");
	return evp_retryable(conn, res) ? EVP_CONNECT : EVP_SQL;
}

int evp__rules_apply(evp_rules *rules, PGconn *conn, const struct evp__event *e, char *err,
		     size_t errlen, char *sqlstate, size_t sslen)
{
	const struct rule *ru = find_rule(rules, &e->ev.type);
	struct unpacked u;
	int j, rc = EVP_OK;

	sqlstate[0] = '\0';
	if (!ru)
		return EVP_OK;
	memset(&u, 0, sizeof u);
	if (unpack_event(&u, &e->ev) != EVP_OK) {
		snprintf(err, errlen, "out of memory");
		return EVP_NOMEM;
	}
	for (j = 0; j < ru->nstmts && rc == EVP_OK; j++) {
		const struct stmt *st = &ru->stmts[j];
		PGresult *res;

		if (bind_params(&u, st, &e->ev) != EVP_OK) {
			snprintf(err, errlen, "out of memory");
			rc = EVP_NOMEM;
			break;
		}
		res = PQexecPrepared(conn, st->pname, st->nparams, u.pv, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		    PQresultStatus(res) != PGRES_TUPLES_OK)
			rc = result_error(conn, res, err, errlen, sqlstate, sslen);
		PQclear(res);
	}
	unpacked_free(&u, true);
	return rc;
}

/*
 * The statements of many events in libpq's pipeline mode: sent without
 * waiting, PIPE_QUERIES at a time followed by a sync, whose results are
 * read before the next chunk is sent (so neither side's socket buffer can
 * fill up and block both). The first failing statement aborts the rest of
 * the transaction; *failed is its event's index.
 */
#define PIPE_QUERIES 256

int evp__rules_apply_many(evp_rules *rules, PGconn *conn, const struct evp__event *events, size_t n,
			  size_t *failed, char *err, size_t errlen, char *sqlstate, size_t sslen)
{
	size_t qev[PIPE_QUERIES];
	struct unpacked u;
	size_t i = 0;
	int rc = EVP_OK;

	sqlstate[0] = '\0';
	memset(&u, 0, sizeof u);
	if (PQenterPipelineMode(conn) != 1) {
		snprintf(err, errlen, "could not enter pipeline mode: %s", PQerrorMessage(conn));
		return EVP_CONNECT;
	}
	while (i < n && rc == EVP_OK) {
		size_t sent = 0, got = 0;
		bool synced = false;

		/* send the statements of whole events, up to PIPE_QUERIES */
		for (; i < n; i++) {
			const struct rule *ru = find_rule(rules, &events[i].ev.type);
			int j;

			if (!ru)
				continue;
			if (sent + (size_t)ru->nstmts > PIPE_QUERIES && sent > 0)
				break;
			if (unpack_event(&u, &events[i].ev) != EVP_OK) {
				snprintf(err, errlen, "out of memory");
				rc = EVP_NOMEM;
				break;
			}
			for (j = 0; j < ru->nstmts && rc == EVP_OK; j++) {
				const struct stmt *st = &ru->stmts[j];

				if (bind_params(&u, st, &events[i].ev) != EVP_OK) {
					snprintf(err, errlen, "out of memory");
					rc = EVP_NOMEM;
				} else if (PQsendQueryPrepared(conn, st->pname, st->nparams, u.pv,
							       NULL, NULL, 0) != 1) {
					rc = result_error(conn, NULL, err, errlen, sqlstate, sslen);
				} else if (sent < PIPE_QUERIES) {
					qev[sent++] = i;
				}
			}
			unpacked_free(&u, false);
			if (rc)
				break;
		}
		if (sent == 0)
			break;
		if (PQpipelineSync(conn) != 1) {
			if (!rc)
				rc = result_error(conn, NULL, err, errlen, sqlstate, sslen);
			break;
		}
		/* results: each query's, then NULL; finally PIPELINE_SYNC */
		while (!synced) {
			PGresult *res = PQgetResult(conn);

			if (!res) {
				if (PQstatus(conn) != CONNECTION_OK) {
					if (!rc)
						rc = result_error(conn, NULL, err, errlen, sqlstate,
								  sslen);
					break;
				}
				got++;
				if (got > sent + 1) { /* never: a lost sync */
					if (!rc) {
						snprintf(err, errlen, "lost the pipeline's sync");
						rc = EVP_CONNECT;
					}
					break;
				}
				continue;
			}
			switch (PQresultStatus(res)) {
			case PGRES_PIPELINE_SYNC: synced = true; break;
			case PGRES_COMMAND_OK:
			case PGRES_TUPLES_OK:
			case PGRES_PIPELINE_ABORTED: break;
			default:
				if (!rc) {
					rc = result_error(conn, res, err, errlen, sqlstate, sslen);
					*failed = qev[got < sent ? got : sent - 1];
				}
			}
			PQclear(res);
		}
	}
	for (int k = 0; k < MAX_PARAMS; k++)
		evs__buf_free(&u.vals[k]);
	if (PQexitPipelineMode(conn) != 1 && !rc) {
		snprintf(err, errlen, "could not leave pipeline mode: %s", PQerrorMessage(conn));
		rc = EVP_CONNECT;
	}
	return rc;
}
