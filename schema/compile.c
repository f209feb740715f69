/*
 * compile.c - compiling the "schema" of a document (the whole document:
 * document.c; its upcaster: steps.c) into the node tree the validator walks.
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

#define MAX_LITS 1024

int evs__cc_bad(evs__cc *c, const char *fmt, ...)
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

size_t evs__cc_push(evs__cc *c, const char *fmt, const char *name)
{
	size_t old = c->plen;
	int n = snprintf(c->path + c->plen, sizeof c->path - c->plen, fmt, name);
	if (n > 0)
		c->plen = c->plen + (size_t)n < sizeof c->path ? c->plen + (size_t)n
							       : sizeof c->path - 1;
	return old;
}

void evs__cc_pop(evs__cc *c, size_t old)
{
	c->plen = old;
	c->path[old] = 0;
}

void evs__sc_node_free(sc_node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nlits; i++)
		free(n->lits[i].s);
	free(n->lits);
	for (size_t i = 0; i < n->nprops; i++) {
		free(n->props[i].name);
		evs__sc_node_free(n->props[i].node);
	}
	free(n->props);
	evs__sc_node_free(n->addl);
	evs__sc_node_free(n->items);
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

static int get_count(evs__cc *c, json_object *v, const char *kw, int64_t *out)
{
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return evs__cc_bad(c, "\"%s\" must be a non-negative integer", kw);
	*out = json_object_get_int64(v);
	return EVS_OK;
}

static int get_bound(evs__cc *c, json_object *v, const char *kw, sc_bound *b)
{
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return evs__cc_bad(c, "\"%s\" must be a number", kw);
	b->set = true;
	b->d = json_object_get_double(v);
	if (!isfinite(b->d))
		return evs__cc_bad(c, "\"%s\" must be finite", kw);
	return EVS_OK;
}

static int lit_of(evs__cc *c, json_object *v, sc_lit *l)
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
		l->s = evs__malloc(l->len + 1);
		if (l->s == NULL)
			return EVS_NOMEM;
		memcpy(l->s, json_object_get_string(v), l->len + 1);
		return EVS_OK;
	default:
		return evs__cc_bad(
			c, "enum and const values must be scalars (null, boolean, number, string)");
	}
}

static int cmp_prop(const void *a, const void *b)
{
	const sc_prop *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int r = memcmp(x->name, y->name, n);
	return r ? r : (x->len > y->len) - (x->len < y->len);
}

static int compile_object(evs__cc *c, sc_node *n, json_object *props, json_object *req,
			  json_object *addl, int depth)
{
	size_t np = props ? (size_t)json_object_object_length(props) : 0;
	size_t nr = req ? json_object_array_length(req) : 0;
	int rc;

	if (np > EVS_MAX_SCHEMA_PROPS || nr > EVS_MAX_SCHEMA_PROPS)
		return evs__cc_bad(c, "more than %d properties", EVS_MAX_SCHEMA_PROPS);
	n->props = evs__calloc(np + nr ? np + nr : 1, sizeof *n->props);
	if (n->props == NULL)
		return EVS_NOMEM;
	if (props) {
		json_object_object_foreach(props, key, val)
		{
			sc_prop *p = &n->props[n->nprops];
			size_t old = evs__cc_push(c, ".properties.%s", key);
			p->len = strlen(key);
			p->name = evs__strdup(key);
			if (p->name == NULL)
				return EVS_NOMEM;
			n->nprops++;
			rc = evs__sc_compile(c, val, depth + 1, &p->node);
			evs__cc_pop(c, old);
			if (rc)
				return rc;
		}
	}
	qsort(n->props, n->nprops, sizeof *n->props, cmp_prop);
	for (size_t i = 0; i < nr; i++) {
		json_object *r = json_object_array_get_idx(req, i);
		if (!json_object_is_type(r, json_type_string))
			return evs__cc_bad(c, "\"required\" must be a list of strings");
		sc_prop key = {.name = (char *)json_object_get_string(r),
			       .len = (size_t)json_object_get_string_len(r)};
		sc_prop *p = bsearch(&key, n->props, n->nprops, sizeof *p, cmp_prop);
		if (p == NULL) {
			/* required but not described: any value */
			if (n->nprops >= EVS_MAX_SCHEMA_PROPS)
				return evs__cc_bad(c, "more than %d properties",
						   EVS_MAX_SCHEMA_PROPS);
			p = &n->props[n->nprops++];
			p->name = evs__strdup(key.name);
			p->len = key.len;
			if (p->name == NULL)
				return EVS_NOMEM;
			qsort(n->props, n->nprops, sizeof *n->props, cmp_prop);
			p = bsearch(&key, n->props, n->nprops, sizeof *p, cmp_prop);
		}
		if (p->required)
			return evs__cc_bad(c, "\"required\" names \"%s\" twice", key.name);
		p->required = true;
		n->nrequired++;
	}
	n->additional = true;
	if (addl) {
		if (json_object_is_type(addl, json_type_boolean)) {
			n->additional = json_object_get_boolean(addl);
		} else {
			size_t old = evs__cc_push(c, "%s", ".additionalProperties");
			rc = evs__sc_compile(c, addl, depth + 1, &n->addl);
			evs__cc_pop(c, old);
			if (rc)
				return rc;
		}
	}
	return EVS_OK;
}

int evs__sc_compile(evs__cc *c, json_object *j, int depth, sc_node **out)
{
	json_object *props = NULL, *req = NULL, *addl = NULL;
	sc_node *n;
	int rc = EVS_OK;

	*out = NULL;
	if (depth > EVS_MAX_SCHEMA_DEPTH)
		return evs__cc_bad(c, "nested deeper than %d", EVS_MAX_SCHEMA_DEPTH);
	if (!json_object_is_type(j, json_type_object))
		return evs__cc_bad(c, "a schema must be a JSON object");
	n = evs__calloc(1, sizeof *n);
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
					return evs__cc_bad(c, "unknown type \"%s\"",
							   json_object_get_string(v));
			} else if (json_object_is_type(v, json_type_array) &&
				   json_object_array_length(v) > 0) {
				for (size_t i = 0; i < json_object_array_length(v); i++) {
					json_object *t = json_object_array_get_idx(v, i);
					int bit = json_object_is_type(t, json_type_string)
							  ? type_bit(json_object_get_string(t))
							  : 0;
					if (bit == 0)
						return evs__cc_bad(
							c, "\"type\" lists an unknown type");
					n->types |= (unsigned)bit;
				}
			} else {
				return evs__cc_bad(
					c,
					"\"type\" must be a type name or a non-empty list of them");
			}
		} else if (strcmp(kw, "properties") == 0) {
			if (!json_object_is_type(v, json_type_object))
				return evs__cc_bad(c, "\"properties\" must be an object");
			props = v;
		} else if (strcmp(kw, "required") == 0) {
			if (!json_object_is_type(v, json_type_array))
				return evs__cc_bad(c, "\"required\" must be a list of strings");
			req = v;
		} else if (strcmp(kw, "additionalProperties") == 0) {
			if (!json_object_is_type(v, json_type_boolean) &&
			    !json_object_is_type(v, json_type_object))
				return evs__cc_bad(
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
				return evs__cc_bad(c, "use either \"enum\" or \"const\"");
			if (k == 0 || k > MAX_LITS)
				return evs__cc_bad(c, "\"enum\" must be a list of 1 to %d values",
						   MAX_LITS);
			n->lits = evs__calloc(k, sizeof *n->lits);
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
				return evs__cc_bad(c, "\"format\" must be a string");
			if (strcmp(f, "date-time") == 0)
				n->format = SC_FMT_DATETIME;
			else if (strcmp(f, "uuid") == 0)
				n->format = SC_FMT_UUID;
			else if (strcmp(f, "email") == 0)
				n->format = SC_FMT_EMAIL;
			else
				return evs__cc_bad(
					c, "unknown format \"%s\" (date-time, uuid, email)", f);
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
			size_t old = evs__cc_push(c, "%s", ".items");
			rc = evs__sc_compile(c, v, depth + 1, &n->items);
			evs__cc_pop(c, old);
		} else if (strcmp(kw, "title") == 0 || strcmp(kw, "description") == 0 ||
			   strcmp(kw, "default") == 0 || strcmp(kw, "examples") == 0 ||
			   strcmp(kw, "$comment") == 0 || strcmp(kw, "$schema") == 0 ||
			   strcmp(kw, "$id") == 0) {
			/* annotations */
		} else {
			return evs__cc_bad(c, "unknown keyword \"%s\"", kw);
		}
		if (rc)
			return rc;
	}
	if (n->min_len >= 0 && n->max_len >= 0 && n->min_len > n->max_len)
		return evs__cc_bad(c, "minLength is greater than maxLength");
	if (props || req || addl)
		rc = compile_object(c, n, props, req, addl, depth);
	return rc;
}
