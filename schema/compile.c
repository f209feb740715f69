/*
 * compile.c - schema documents: parse (json-c), check and compile.
 *
 * A document is one JSON object:
 *
 *   {"type": "<event type>", "version": <1..EVS_MAX_SCHEMA_VERSION>,
 *    "schema": <schema>, "upcast": [<step>...] | "hook",
 *    "description": "...", "$comment": "..."}
 *
 * <schema> is this subset of JSON Schema (2020-12 keywords and meaning):
 * type (a name or a list: null, boolean, integer, number, string, array,
 * object), properties, required, additionalProperties (boolean or schema),
 * enum and const (scalars only), format (date-time, uuid, email),
 * minLength, maxLength, minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum (numbers), items (one schema), minItems, maxItems; and
 * the annotations title, description, default, examples, $comment,
 * $schema, $id, which are ignored. Any other keyword is an error, so that
 * a typo ("minimun") fails review instead of silently allowing everything.
 *
 * Bounds: the document at most EVS_MAX_SCHEMA_BYTES, nesting at most
 * EVS_MAX_SCHEMA_DEPTH schemas, EVS_MAX_SCHEMA_PROPS properties per object,
 * 1024 enum values, 64 upcast steps.
 *
 * The compiled form (schema_internal.h) is a tree of nodes that the
 * validator walks beside the msgpack payload; property names are sorted so
 * lookups are binary searches.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "internal.h"
#include "schema_internal.h"

#define MAX_LITS  1024
#define MAX_STEPS 64

typedef struct cc {
	char *err;
	size_t errlen;
	char path[256];
	size_t plen;
} cc;

static int bad(cc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(cc *c, const char *fmt, ...)
{
	va_list ap;
	char msg[256];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (c->err && c->errlen)
		snprintf(c->err, c->errlen, "schema at \"%s\": %s", c->path[0] ? c->path : "$",
			 msg);
	return EVS_BAD_SCHEMA;
}

static size_t push(cc *c, const char *fmt, const char *name)
{
	size_t old = c->plen;
	int n = snprintf(c->path + c->plen, sizeof c->path - c->plen, fmt, name);
	if (n > 0)
		c->plen = c->plen + (size_t)n < sizeof c->path ? c->plen + (size_t)n
							       : sizeof c->path - 1;
	return old;
}

static void pop(cc *c, size_t old)
{
	c->plen = old;
	c->path[old] = 0;
}

static void node_free(sc_node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nlits; i++)
		free(n->lits[i].s);
	free(n->lits);
	for (size_t i = 0; i < n->nprops; i++) {
		free(n->props[i].name);
		node_free(n->props[i].node);
	}
	free(n->props);
	node_free(n->addl);
	node_free(n->items);
	free(n);
}

static int type_bit(const char *t)
{
	static const struct {
		const char *name;
		int bit;
	} map[] = {
		{"null", SC_NULL},  {"boolean", SC_BOOL}, {"integer", SC_INT}, {"number", SC_NUM},
		{"string", SC_STR}, {"array", SC_ARR},    {"object", SC_OBJ},
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strcmp(map[i].name, t) == 0)
			return map[i].bit;
	return 0;
}

static int get_count(cc *c, json_object *v, const char *kw, int64_t *out)
{
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return bad(c, "\"%s\" must be a non-negative integer", kw);
	*out = json_object_get_int64(v);
	return EVS_OK;
}

static int get_bound(cc *c, json_object *v, const char *kw, sc_bound *b)
{
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return bad(c, "\"%s\" must be a number", kw);
	b->set = true;
	b->d = json_object_get_double(v);
	if (!isfinite(b->d))
		return bad(c, "\"%s\" must be finite", kw);
	return EVS_OK;
}

static int lit_of(cc *c, json_object *v, sc_lit *l)
{
	memset(l, 0, sizeof *l);
	switch (json_object_get_type(v)) {
	case json_type_null: l->kind = SC_NULL; return EVS_OK;
	case json_type_boolean:
		l->kind = SC_BOOL;
		l->b = json_object_get_boolean(v);
		return EVS_OK;
	case json_type_int:
		l->kind = SC_INT;
		l->i = json_object_get_int64(v);
		l->d = (double)l->i;
		return EVS_OK;
	case json_type_double:
		l->kind = SC_NUM;
		l->d = json_object_get_double(v);
		return EVS_OK;
	case json_type_string:
		l->kind = SC_STR;
		l->len = (size_t)json_object_get_string_len(v);
		l->s = malloc(l->len + 1);
		if (l->s == NULL)
			return EVS_NOMEM;
		memcpy(l->s, json_object_get_string(v), l->len + 1);
		return EVS_OK;
	default:
		return bad(c,
			   "enum and const values must be scalars (null, boolean, number, string)");
	}
}

static int cmp_prop(const void *a, const void *b)
{
	const sc_prop *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int r = memcmp(x->name, y->name, n);
	return r ? r : (x->len > y->len) - (x->len < y->len);
}

static int compile_node(cc *c, json_object *j, int depth, sc_node **out);

static int compile_object(cc *c, sc_node *n, json_object *props, json_object *req,
			  json_object *addl, int depth)
{
	size_t np = props ? (size_t)json_object_object_length(props) : 0;
	size_t nr = req ? json_object_array_length(req) : 0;
	int rc;

	if (np > EVS_MAX_SCHEMA_PROPS || nr > EVS_MAX_SCHEMA_PROPS)
		return bad(c, "more than %d properties", EVS_MAX_SCHEMA_PROPS);
	n->props = calloc(np + nr ? np + nr : 1, sizeof *n->props);
	if (n->props == NULL)
		return EVS_NOMEM;
	if (props) {
		json_object_object_foreach(props, key, val)
		{
			sc_prop *p = &n->props[n->nprops];
			size_t old = push(c, ".properties.%s", key);
			p->len = strlen(key);
			p->name = strdup(key);
			if (p->name == NULL)
				return EVS_NOMEM;
			n->nprops++;
			rc = compile_node(c, val, depth + 1, &p->node);
			pop(c, old);
			if (rc)
				return rc;
		}
	}
	qsort(n->props, n->nprops, sizeof *n->props, cmp_prop);
	for (size_t i = 0; i < nr; i++) {
		json_object *r = json_object_array_get_idx(req, i);
		if (!json_object_is_type(r, json_type_string))
			return bad(c, "\"required\" must be a list of strings");
		sc_prop key = {.name = (char *)json_object_get_string(r),
			       .len = (size_t)json_object_get_string_len(r)};
		sc_prop *p = bsearch(&key, n->props, n->nprops, sizeof *p, cmp_prop);
		if (p == NULL) {
			/* required but not described: any value */
			if (n->nprops >= EVS_MAX_SCHEMA_PROPS)
				return bad(c, "more than %d properties", EVS_MAX_SCHEMA_PROPS);
			p = &n->props[n->nprops++];
			p->name = strdup(key.name);
			p->len = key.len;
			if (p->name == NULL)
				return EVS_NOMEM;
			qsort(n->props, n->nprops, sizeof *n->props, cmp_prop);
			p = bsearch(&key, n->props, n->nprops, sizeof *p, cmp_prop);
		}
		if (p->required)
			return bad(c, "\"required\" names \"%s\" twice", key.name);
		p->required = true;
		n->nrequired++;
	}
	n->additional = true;
	if (addl) {
		if (json_object_is_type(addl, json_type_boolean)) {
			n->additional = json_object_get_boolean(addl);
		} else {
			size_t old = push(c, "%s", ".additionalProperties");
			rc = compile_node(c, addl, depth + 1, &n->addl);
			pop(c, old);
			if (rc)
				return rc;
		}
	}
	return EVS_OK;
}

static int compile_node(cc *c, json_object *j, int depth, sc_node **out)
{
	json_object *props = NULL, *req = NULL, *addl = NULL;
	sc_node *n;
	int rc = EVS_OK;

	*out = NULL;
	if (depth > EVS_MAX_SCHEMA_DEPTH)
		return bad(c, "nested deeper than %d", EVS_MAX_SCHEMA_DEPTH);
	if (!json_object_is_type(j, json_type_object))
		return bad(c, "a schema must be a JSON object");
	n = calloc(1, sizeof *n);
	if (n == NULL)
		return EVS_NOMEM;
	*out = n;
	n->min_len = n->max_len = n->min_items = n->max_items = -1;
	n->additional = true;

	json_object_object_foreach(j, kw, v)
	{
		if (strcmp(kw, "type") == 0) {
			if (json_object_is_type(v, json_type_string)) {
				if ((n->types = (unsigned)type_bit(json_object_get_string(v))) == 0)
					return bad(c, "unknown type \"%s\"",
						   json_object_get_string(v));
			} else if (json_object_is_type(v, json_type_array) &&
				   json_object_array_length(v) > 0) {
				for (size_t i = 0; i < json_object_array_length(v); i++) {
					json_object *t = json_object_array_get_idx(v, i);
					int bit = json_object_is_type(t, json_type_string)
							  ? type_bit(json_object_get_string(t))
							  : 0;
					if (bit == 0)
						return bad(c, "\"type\" lists an unknown type");
					n->types |= (unsigned)bit;
				}
			} else {
				return bad(
					c,
					"\"type\" must be a type name or a non-empty list of them");
			}
		} else if (strcmp(kw, "properties") == 0) {
			if (!json_object_is_type(v, json_type_object))
				return bad(c, "\"properties\" must be an object");
			props = v;
		} else if (strcmp(kw, "required") == 0) {
			if (!json_object_is_type(v, json_type_array))
				return bad(c, "\"required\" must be a list of strings");
			req = v;
		} else if (strcmp(kw, "additionalProperties") == 0) {
			if (!json_object_is_type(v, json_type_boolean) &&
			    !json_object_is_type(v, json_type_object))
				return bad(
					c,
					"\"additionalProperties\" must be a boolean or a schema");
			addl = v;
		} else if (strcmp(kw, "enum") == 0 || strcmp(kw, "const") == 0) {
			bool is_const = kw[0] == 'c';
			size_t k = is_const ? 1
					    : (json_object_is_type(v, json_type_array)
						       ? json_object_array_length(v)
						       : 0);
			if (n->lits)
				return bad(c, "use either \"enum\" or \"const\"");
			if (k == 0 || k > MAX_LITS)
				return bad(c, "\"enum\" must be a list of 1 to %d values",
					   MAX_LITS);
			n->lits = calloc(k, sizeof *n->lits);
			if (n->lits == NULL)
				return EVS_NOMEM;
			n->is_const = is_const;
			for (size_t i = 0; i < k; i++, n->nlits++)
				if ((rc = lit_of(c, is_const ? v : json_object_array_get_idx(v, i),
						 &n->lits[i])) != EVS_OK)
					return rc;
		} else if (strcmp(kw, "format") == 0) {
			const char *f = json_object_get_string(v);
			if (!json_object_is_type(v, json_type_string))
				return bad(c, "\"format\" must be a string");
			if (strcmp(f, "date-time") == 0)
				n->format = SC_FMT_DATETIME;
			else if (strcmp(f, "uuid") == 0)
				n->format = SC_FMT_UUID;
			else if (strcmp(f, "email") == 0)
				n->format = SC_FMT_EMAIL;
			else
				return bad(c, "unknown format \"%s\" (date-time, uuid, email)", f);
		} else if (strcmp(kw, "minLength") == 0) {
			rc = get_count(c, v, kw, &n->min_len);
		} else if (strcmp(kw, "maxLength") == 0) {
			rc = get_count(c, v, kw, &n->max_len);
		} else if (strcmp(kw, "minItems") == 0) {
			rc = get_count(c, v, kw, &n->min_items);
		} else if (strcmp(kw, "maxItems") == 0) {
			rc = get_count(c, v, kw, &n->max_items);
		} else if (strcmp(kw, "minimum") == 0) {
			rc = get_bound(c, v, kw, &n->min);
		} else if (strcmp(kw, "maximum") == 0) {
			rc = get_bound(c, v, kw, &n->max);
		} else if (strcmp(kw, "exclusiveMinimum") == 0) {
			rc = get_bound(c, v, kw, &n->xmin);
		} else if (strcmp(kw, "exclusiveMaximum") == 0) {
			rc = get_bound(c, v, kw, &n->xmax);
		} else if (strcmp(kw, "items") == 0) {
			size_t old = push(c, "%s", ".items");
			rc = compile_node(c, v, depth + 1, &n->items);
			pop(c, old);
		} else if (strcmp(kw, "title") == 0 || strcmp(kw, "description") == 0 ||
			   strcmp(kw, "default") == 0 || strcmp(kw, "examples") == 0 ||
			   strcmp(kw, "$comment") == 0 || strcmp(kw, "$schema") == 0 ||
			   strcmp(kw, "$id") == 0) {
			/* annotations */
		} else {
			return bad(c, "unknown keyword \"%s\"", kw);
		}
		if (rc)
			return rc;
	}
	if (n->min_len >= 0 && n->max_len >= 0 && n->min_len > n->max_len)
		return bad(c, "minLength is greater than maxLength");
	if (props || req || addl)
		rc = compile_object(c, n, props, req, addl, depth);
	return rc;
}

/* ---- JSON -> msgpack for upcast defaults ---------------------------------- */

static int pack(json_object *v, msgpack_packer *pk, int depth)
{
	int rc = 0;

	if (depth > EVS_MAX_DEPTH)
		return -1;
	switch (json_object_get_type(v)) {
	case json_type_null: return msgpack_pack_nil(pk);
	case json_type_boolean:
		return json_object_get_boolean(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	case json_type_int: return msgpack_pack_int64(pk, json_object_get_int64(v));
	case json_type_double: return msgpack_pack_double(pk, json_object_get_double(v));
	case json_type_string:
		return msgpack_pack_str_with_body(pk, json_object_get_string(v),
						  (size_t)json_object_get_string_len(v));
	case json_type_array:
		rc = msgpack_pack_array(pk, json_object_array_length(v));
		for (size_t i = 0; !rc && i < json_object_array_length(v); i++)
			rc = pack(json_object_array_get_idx(v, i), pk, depth + 1);
		return rc;
	case json_type_object:
		rc = msgpack_pack_map(pk, (size_t)json_object_object_length(v));
		json_object_object_foreach(v, key, val)
		{
			if (!rc)
				rc = msgpack_pack_str_with_body(pk, key, strlen(key));
			if (!rc)
				rc = pack(val, pk, depth + 1);
		}
		return rc;
	}
	return -1;
}

int evs__json_pack(json_object *v, uint8_t **out, size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (pack(v, &pk, 0) != 0) {
		msgpack_sbuffer_destroy(&sb);
		return -1;
	}
	*out = (uint8_t *)sb.data;
	*len = sb.size;
	if (*out == NULL) {
		*out = malloc(1);
		return *out ? 0 : -1;
	}
	return 0;
}

static int pack_key(const char *s, uint8_t **out, size_t *len)
{
	json_object *j = json_object_new_string(s);
	int rc = j ? evs__json_pack(j, out, len) : -1;
	json_object_put(j);
	return rc;
}

/* ---- upcast steps ---------------------------------------------------------- */

static const char *str_field(json_object *o, const char *name)
{
	json_object *v;
	if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0)
		return NULL;
	return json_object_get_string(v);
}

static int compile_steps(cc *c, evs_schema *sc, json_object *up)
{
	if (json_object_is_type(up, json_type_string)) {
		if (strcmp(json_object_get_string(up), "hook") != 0)
			return bad(c, "\"upcast\" must be a list of steps or \"hook\"");
		sc->upcast = UPCAST_HOOK;
		return EVS_OK;
	}
	if (!json_object_is_type(up, json_type_array) || json_object_array_length(up) == 0 ||
	    json_object_array_length(up) > MAX_STEPS)
		return bad(c, "\"upcast\" must be a list of 1 to %d steps or \"hook\"", MAX_STEPS);
	sc->upcast = UPCAST_STEPS;
	sc->steps = calloc(json_object_array_length(up), sizeof *sc->steps);
	if (sc->steps == NULL)
		return EVS_NOMEM;
	for (size_t i = 0; i < json_object_array_length(up); i++) {
		json_object *st = json_object_array_get_idx(up, i), *v;
		up_step *s = &sc->steps[sc->nsteps];
		const char *op, *f;
		char at[32];

		snprintf(at, sizeof at, ".upcast[%zu]", i);
		pop(c, 0);
		push(c, "%s", at);
		if (!json_object_is_type(st, json_type_object) ||
		    (op = str_field(st, "op")) == NULL)
			return bad(c, "a step must be an object with \"op\"");
		f = str_field(st, strcmp(op, "rename") == 0 ? "from" : "field");
		if (f == NULL)
			return bad(c, "step \"%s\" needs \"%s\"", op,
				   strcmp(op, "rename") == 0 ? "from" : "field");
		if (pack_key(f, &s->key, &s->key_len))
			return EVS_NOMEM;
		sc->nsteps++;
		if (strcmp(op, "rename") == 0) {
			const char *to = str_field(st, "to");
			s->op = UP_RENAME;
			if (to == NULL)
				return bad(c, "step \"rename\" needs \"to\"");
			if (pack_key(to, &s->key2, &s->key2_len))
				return EVS_NOMEM;
		} else if (strcmp(op, "add") == 0) {
			s->op = UP_ADD;
			if (!json_object_object_get_ex(st, "value", &v))
				return bad(c, "step \"add\" needs \"value\"");
			if (evs__json_pack(v, &s->val, &s->val_len))
				return bad(c, "step \"add\": value nested too deeply");
		} else if (strcmp(op, "remove") == 0) {
			s->op = UP_REMOVE;
		} else if (strcmp(op, "convert") == 0) {
			s->op = UP_CONVERT;
			if (!json_object_object_get_ex(st, "rule", &v))
				return bad(c, "step \"convert\" needs \"rule\"");
			const char *r = json_object_get_string(v);
			json_object *m;
			if (json_object_is_type(v, json_type_string) && strcmp(r, "to-string") == 0)
				s->rule = CV_STRING;
			else if (json_object_is_type(v, json_type_string) &&
				 strcmp(r, "to-integer") == 0)
				s->rule = CV_INTEGER;
			else if (json_object_is_type(v, json_type_string) &&
				 strcmp(r, "to-number") == 0)
				s->rule = CV_NUMBER;
			else if (json_object_is_type(v, json_type_object) &&
				 json_object_object_get_ex(v, "multiply", &m) &&
				 json_object_is_type(m, json_type_int) &&
				 json_object_get_int64(m) != 0) {
				s->rule = CV_MULTIPLY;
				s->factor = json_object_get_int64(m);
			} else {
				return bad(c, "unknown conversion rule (to-string, to-integer, "
					      "to-number, {\"multiply\": N})");
			}
		} else {
			return bad(c, "unknown step \"%s\" (rename, add, remove, convert)", op);
		}
	}
	pop(c, 0);
	return EVS_OK;
}

/* ---- the document ---------------------------------------------------------- */

void evs_schema_free(evs_schema *sc)
{
	if (sc == NULL)
		return;
	node_free(sc->root);
	for (size_t i = 0; i < sc->nsteps; i++) {
		free(sc->steps[i].key);
		free(sc->steps[i].key2);
		free(sc->steps[i].val);
	}
	free(sc->steps);
	free(sc->type);
	free(sc->canon);
	json_object_put(sc->doc);
	free(sc);
}

const char *evs_schema_type(const evs_schema *sc)
{
	return sc ? sc->type : NULL;
}

uint32_t evs_schema_version(const evs_schema *sc)
{
	return sc ? sc->version : 0;
}

int evs_schema_parse(const char *json, size_t len, evs_schema **out, char *err, size_t errlen)
{
	cc c = {.err = err, .errlen = errlen};
	json_tokener *tok = NULL;
	json_object *doc = NULL, *v, *schema = NULL;
	evs_schema *sc = NULL;
	const char *type;
	size_t tlen;
	int rc;

	if (err && errlen)
		err[0] = 0;
	if (out == NULL || (json == NULL && len))
		return EVS_INVALID;
	*out = NULL;
	if (len > EVS_MAX_SCHEMA_BYTES)
		return bad(&c, "document is %zu bytes, the limit is %u", len, EVS_MAX_SCHEMA_BYTES);
	tok = json_tokener_new_ex(2 * EVS_MAX_SCHEMA_DEPTH + 8);
	if (tok == NULL)
		return EVS_NOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	doc = json_tokener_parse_ex(tok, json ? json : "", (int)len);
	if (doc == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		enum json_tokener_error e = json_tokener_get_error(tok);
		if (doc && e == json_tokener_success) {
			/* only white space may follow */
			for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
				if (!strchr(" \t\r\n", json[i])) {
					rc = bad(&c, "not one JSON text: garbage at offset %zu", i);
					goto out;
				}
		} else {
			rc = bad(&c, "not valid JSON: %s at offset %zu",
				 e == json_tokener_continue ? "unexpected end"
							    : json_tokener_error_desc(e),
				 json_tokener_get_parse_end(tok));
			goto out;
		}
	}
	if (!json_object_is_type(doc, json_type_object)) {
		rc = bad(&c, "a schema document must be a JSON object");
		goto out;
	}
	json_object_object_foreach(doc, kw, val)
	{
		(void)val;
		if (strcmp(kw, "type") && strcmp(kw, "version") && strcmp(kw, "schema") &&
		    strcmp(kw, "upcast") && strcmp(kw, "description") && strcmp(kw, "$comment")) {
			rc = bad(&c,
				 "unknown document field \"%s\" (type, version, schema, upcast, "
				 "description)",
				 kw);
			goto out;
		}
	}
	if ((type = str_field(doc, "type")) == NULL) {
		rc = bad(&c, "the document needs \"type\": the event type");
		goto out;
	}
	json_object_object_get_ex(doc, "type", &v);
	if (evs__check_name(type, &tlen) <= 0 || tlen != (size_t)json_object_get_string_len(v)) {
		rc = bad(&c, "event type \"%s\" is not 1 to %d bytes of UTF-8", type, EVS_MAX_NAME);
		goto out;
	}
	if (!json_object_object_get_ex(doc, "version", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
	    json_object_get_int64(v) > EVS_MAX_SCHEMA_VERSION) {
		rc = bad(&c, "the document needs \"version\": an integer from 1 to %d",
			 EVS_MAX_SCHEMA_VERSION);
		goto out;
	}
	if (!json_object_object_get_ex(doc, "schema", &schema)) {
		rc = bad(&c, "the document needs \"schema\"");
		goto out;
	}
	sc = calloc(1, sizeof *sc);
	if (sc == NULL || (sc->type = strdup(type)) == NULL) {
		rc = EVS_NOMEM;
		goto out;
	}
	sc->type_len = tlen;
	sc->version = (uint32_t)json_object_get_int64(v);
	push(&c, "%s", "$");
	if ((rc = compile_node(&c, schema, 1, &sc->root)) != EVS_OK)
		goto out;
	pop(&c, 0);
	if (json_object_object_get_ex(doc, "upcast", &v)) {
		if (sc->version == 1) {
			rc = bad(&c, "version 1 cannot have an upcaster");
			goto out;
		}
		if ((rc = compile_steps(&c, sc, v)) != EVS_OK)
			goto out;
	}
	const char *text = json_object_to_json_string_ext(
		doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text == NULL || (sc->canon = strdup(text)) == NULL) {
		rc = EVS_NOMEM;
		goto out;
	}
	sc->canon_len = strlen(sc->canon);
	sc->doc = doc;
	doc = NULL;
	*out = sc;
	sc = NULL;
	rc = EVS_OK;
out:
	if (rc == EVS_NOMEM && err && errlen)
		snprintf(err, errlen, "out of memory");
	evs_schema_free(sc);
	json_object_put(doc);
	json_tokener_free(tok);
	return rc;
}

/* ---- compatibility ---------------------------------------------------------- */

static bool same_json(json_object *a, json_object *b)
{
	return json_object_equal(a, b) != 0;
}

bool evs__schema_compatible(const evs_schema *prev, const evs_schema *next, char *why,
			    size_t whylen)
{
	json_object *ps, *ns, *pp = NULL, *np = NULL, *pr = NULL, *nr = NULL, *pa = NULL,
			      *na = NULL;

	json_object_object_get_ex(prev->doc, "schema", &ps);
	json_object_object_get_ex(next->doc, "schema", &ns);
	/* Everything but properties, required and additionalProperties equal. */
	json_object_object_foreach(ns, kw, v)
	{
		json_object *o;
		if (!strcmp(kw, "properties") || !strcmp(kw, "required") ||
		    !strcmp(kw, "additionalProperties") || !strcmp(kw, "description") ||
		    !strcmp(kw, "title") || !strcmp(kw, "$comment"))
			continue;
		if (!json_object_object_get_ex(ps, kw, &o) || !same_json(o, v)) {
			snprintf(why, whylen, "keyword \"%s\" changed", kw);
			return false;
		}
	}
	json_object_object_foreach(ps, kw2, v2)
	{
		json_object *o;
		(void)v2;
		if (!strcmp(kw2, "properties") || !strcmp(kw2, "required") ||
		    !strcmp(kw2, "additionalProperties") || !strcmp(kw2, "description") ||
		    !strcmp(kw2, "title") || !strcmp(kw2, "$comment"))
			continue;
		if (!json_object_object_get_ex(ns, kw2, &o)) {
			snprintf(why, whylen, "keyword \"%s\" removed", kw2);
			return false;
		}
	}
	json_object_object_get_ex(ps, "properties", &pp);
	json_object_object_get_ex(ns, "properties", &np);
	json_object_object_get_ex(ps, "required", &pr);
	json_object_object_get_ex(ns, "required", &nr);
	json_object_object_get_ex(ps, "additionalProperties", &pa);
	json_object_object_get_ex(ns, "additionalProperties", &na);
	if (pp) {
		json_object_object_foreach(pp, name, def)
		{
			json_object *o;
			if (!np || !json_object_object_get_ex(np, name, &o)) {
				snprintf(why, whylen, "property \"%s\" removed", name);
				return false;
			}
			if (!same_json(o, def)) {
				snprintf(why, whylen, "property \"%s\" changed", name);
				return false;
			}
		}
	}
	for (size_t i = 0; nr && i < json_object_array_length(nr); i++) {
		const char *name = json_object_get_string(json_object_array_get_idx(nr, i));
		bool was = false;
		for (size_t k = 0; pr && k < json_object_array_length(pr); k++)
			if (strcmp(name,
				   json_object_get_string(json_object_array_get_idx(pr, k))) == 0)
				was = true;
		if (!was) {
			snprintf(why, whylen, "property \"%s\" became required", name);
			return false;
		}
	}
	if (np && (pa == NULL || !json_object_is_type(pa, json_type_boolean) ||
		   json_object_get_boolean(pa))) {
		/* old events may carry any extra property: new ones must stay open
		 * to whatever they could hold */
		json_object_object_foreach(np, name, def)
		{
			json_object *o;
			(void)def;
			if (!pp || !json_object_object_get_ex(pp, name, &o)) {
				snprintf(
					why, whylen,
					"property \"%s\" added, but version %u allowed any "
					"additional property, so old events may hold another value",
					name, prev->version);
				return false;
			}
		}
	}
	if ((pa == NULL) != (na == NULL) || (pa && !same_json(pa, na))) {
		snprintf(why, whylen, "additionalProperties changed");
		return false;
	}
	return true;
}
