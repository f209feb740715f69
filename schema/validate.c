/*
 * validate.c - checking a msgpack payload against a compiled schema, in
 * place: the walk reads the payload's bytes beside the schema's nodes and
 * allocates nothing, so validation on the append path costs a pass over
 * the data and no conversion to JSON. It reads with the store's msgpack
 * cursor (store/mpread.c), which checks the structure as it goes (string
 * encoding, lengths, depth), so a valid payload is also known to be
 * well-formed after this one walk.
 *
 * Recursion follows the schema (at most EVS_MAX_SCHEMA_DEPTH levels);
 * parts of the payload that no schema node describes are skipped
 * iteratively, and checked as they are skipped. A violation reports the JSON path of the value ("$",
 * "$.amount", "$.lines[2].sku", '$["odd key"]'), the rule (the JSON Schema
 * keyword) and what was wrong.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mpjson.h"
#include "schema_internal.h"

/* One step of the path to the value being checked: a key or an index. */
typedef struct frame {
	const uint8_t *key; /* NULL: an array index */
	uint32_t len;
	uint32_t index;
} frame;

/* the recursion follows the schema, so it stays within the payload's
 * bound on nesting */
_Static_assert(EVS_MAX_SCHEMA_DEPTH + 1 <= EVS_MAX_DEPTH, "schemas nest less than payloads");

typedef struct vc {
	evs__mpr r;
	evs__verr *err;
	frame path[EVS_MAX_SCHEMA_DEPTH + 4];
	int depth;
} vc;

enum { V_OK = 0, V_BAD = 1, V_MALFORMED = -1 };

/* The path is text only when something is reported. */
static void render_path(vc *c)
{
	char *out = c->err->path;
	size_t cap = sizeof c->err->path - 8, len = 1;

	out[0] = '$';
	for (int d = 0; d < c->depth && len < cap; d++) {
		const frame *f = &c->path[d];
		const uint8_t *k = f->key;
		size_t n = f->len;
		bool plain = k && n > 0 && !(k[0] >= '0' && k[0] <= '9');

		if (k == NULL) {
			int w = snprintf(out + len, cap - len, "[%u]", f->index);
			len += w > 0 ? (size_t)w : 0;
			continue;
		}
		for (size_t i = 0; plain && i < n; i++)
			plain = (k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
				(k[i] >= '0' && k[i] <= '9') || k[i] == '_' || k[i] == '-';
		if (plain) {
			out[len++] = '.';
			for (size_t i = 0; i < n && len < cap; i++)
				out[len++] = (char)k[i];
		} else {
			out[len++] = '[';
			out[len++] = '"';
			for (size_t i = 0; i < n && len + 1 < cap; i++) {
				if (k[i] == '"' || k[i] == '\\')
					out[len++] = '\\';
				out[len++] = k[i] >= 0x20 ? (char)k[i] : '?';
			}
			out[len++] = '"';
			out[len++] = ']';
		}
	}
	if (len >= cap) {
		len = cap;
		memcpy(out + len - 3, "...", 3);
	}
	out[len] = 0;
}

static int fail(vc *c, const char *rule, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(vc *c, const char *rule, const char *fmt, ...)
{
	va_list ap;

	render_path(c);
	c->err->rule = rule;
	va_start(ap, fmt);
	vsnprintf(c->err->detail, sizeof c->err->detail, fmt, ap);
	va_end(ap);
	return V_BAD;
}

static int push_key(vc *c, const uint8_t *k, size_t n)
{
	if (c->depth >= (int)(sizeof c->path / sizeof c->path[0]))
		return -1;
	c->path[c->depth++] = (frame){.key = k, .len = (uint32_t)n};
	return 0;
}

static int push_index(vc *c, uint32_t i)
{
	if (c->depth >= (int)(sizeof c->path / sizeof c->path[0]))
		return -1;
	c->path[c->depth++] = (frame){.key = NULL, .index = i};
	return 0;
}

static void pop(vc *c)
{
	c->depth--;
}

static const char *kind_name(const evs__mpv *v)
{
	switch (v->kind) {
	case EVS__MK_NIL: return "null";
	case EVS__MK_BOOL: return "boolean";
	case EVS__MK_UINT:
	case EVS__MK_NINT: return "integer";
	case EVS__MK_FLOAT: return "number";
	case EVS__MK_STR: return "string";
	case EVS__MK_BIN: return "binary";
	case EVS__MK_ARR: return "array";
	case EVS__MK_MAP: return "object";
	default: return "extension";
	}
}

static bool is_integral(const evs__mpv *v)
{
	return v->kind == EVS__MK_UINT || v->kind == EVS__MK_NINT ||
	       (v->kind == EVS__MK_FLOAT && isfinite(v->d) && v->d == floor(v->d));
}

static bool type_ok(unsigned types, const evs__mpv *v)
{
	if (types == 0)
		return true;
	switch (v->kind) {
	case EVS__MK_NIL: return types & SC_NULL;
	case EVS__MK_BOOL: return types & SC_BOOL;
	case EVS__MK_UINT:
	case EVS__MK_NINT: return types & (SC_INT | SC_NUM);
	case EVS__MK_FLOAT: return (types & SC_NUM) || ((types & SC_INT) && is_integral(v));
	case EVS__MK_STR: return types & SC_STR;
	case EVS__MK_ARR: return types & SC_ARR;
	case EVS__MK_MAP: return types & SC_OBJ;
	default: return false;
	}
}

static void types_text(unsigned t, char *out, size_t len)
{
	static const char *names[] = {"null",   "boolean", "integer", "number",
				      "string", "array",   "object"};
	size_t n = 0;
	out[0] = 0;
	for (int i = 0; i < 7; i++)
		if (t & (1u << i)) {
			int w = snprintf(out + n, len - n, "%s%s", n ? " or " : "", names[i]);
			if (w < 0 || (size_t)w >= len - n)
				return;
			n += (size_t)w;
		}
}

/* Compare a numeric value with a bound: <0, 0, >0. */
static int cmp_num(const evs__mpv *v, double b)
{
	if (v->kind == EVS__MK_FLOAT)
		return v->d < b ? -1 : v->d > b;
	if (v->kind == EVS__MK_NINT) {
		if (b >= 0)
			return -1;
		if (b < -9.2e18)
			return (double)v->i < b ? -1 : (double)v->i > b;
		double f = floor(b);
		int64_t bi = (int64_t)f;
		if (v->i != bi)
			return v->i < bi ? -1 : 1;
		return f == b ? 0 : -1;
	}
	if (b < 0)
		return 1;
	if (b >= 1.8e19)
		return (double)v->u < b ? -1 : (double)v->u > b;
	double f = floor(b);
	uint64_t bu = (uint64_t)f;
	if (v->u != bu)
		return v->u < bu ? -1 : 1;
	return f == b ? 0 : -1;
}

/* out holds EVS__DOUBLE_LEN bytes. A double is its shortest text (the
 * number policy, mpjson.h): 0.1 in a message reads 0.1. */
static const char *num_text(const evs__mpv *v, char *out)
{
	if (v->kind == EVS__MK_UINT)
		snprintf(out, EVS__DOUBLE_LEN, "%llu", (unsigned long long)v->u);
	else if (v->kind == EVS__MK_NINT)
		snprintf(out, EVS__DOUBLE_LEN, "%lld", (long long)v->i);
	else
		evs__double_text(v->d, out);
	return out;
}

static const char *bound_text(double d, char *out)
{
	evs__double_text(d, out);
	return out;
}

static bool lit_eq(const sc_lit *l, const evs__mpv *v)
{
	switch (l->kind) {
	case SC_NULL: return v->kind == EVS__MK_NIL;
	case SC_BOOL: return v->kind == EVS__MK_BOOL && v->b == l->b;
	case SC_STR:
		return v->kind == EVS__MK_STR && v->n == l->len &&
		       memcmp(v->ptr, l->s, l->len) == 0;
	case SC_INT:
	case SC_NUM:
		if (v->kind != EVS__MK_UINT && v->kind != EVS__MK_NINT && v->kind != EVS__MK_FLOAT)
			return false;
		if (l->kind == SC_INT && v->kind == EVS__MK_UINT)
			return l->i >= 0 && (uint64_t)l->i == v->u;
		if (l->kind == SC_INT && v->kind == EVS__MK_NINT)
			return l->i == v->i;
		return cmp_num(v, l->d) == 0;
	}
	return false;
}

static size_t codepoints(const uint8_t *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += (s[i] & 0xc0) != 0x80;
	return k;
}

static int vnode(vc *c, const sc_node *n, int depth);

static int check_scalar(vc *c, const sc_node *n, const evs__mpv *v)
{
	if (v->kind == EVS__MK_STR) {
		if (n->min_len >= 0 || n->max_len >= 0) {
			size_t k = codepoints(v->ptr, v->n);
			if (n->min_len >= 0 && k < (uint64_t)n->min_len)
				return fail(c, "minLength",
					    "string of %zu characters is shorter than %lld", k,
					    (long long)n->min_len);
			if (n->max_len >= 0 && k > (uint64_t)n->max_len)
				return fail(c, "maxLength",
					    "string of %zu characters is longer than %lld", k,
					    (long long)n->max_len);
		}
		if (n->format == SC_FMT_DATETIME && !evs__fmt_datetime((const char *)v->ptr, v->n))
			return fail(c, "format", "not an RFC 3339 date-time");
		if (n->format == SC_FMT_UUID && !evs__fmt_uuid((const char *)v->ptr, v->n))
			return fail(c, "format", "not a uuid");
		if (n->format == SC_FMT_EMAIL && !evs__fmt_email((const char *)v->ptr, v->n))
			return fail(c, "format", "not an email address");
	} else if (v->kind == EVS__MK_UINT || v->kind == EVS__MK_NINT || v->kind == EVS__MK_FLOAT) {
		/* the text of the value is made only for a message */
		char a[EVS__DOUBLE_LEN], b[EVS__DOUBLE_LEN];

		if (v->kind == EVS__MK_FLOAT && !isfinite(v->d) &&
		    (n->min.set || n->max.set || n->xmin.set || n->xmax.set))
			return fail(c, "type", "%s is not a finite number", num_text(v, a));
		if (n->min.set && cmp_num(v, n->min.d) < 0)
			return fail(c, "minimum", "%s is less than %s", num_text(v, a),
				    bound_text(n->min.d, b));
		if (n->max.set && cmp_num(v, n->max.d) > 0)
			return fail(c, "maximum", "%s is greater than %s", num_text(v, a),
				    bound_text(n->max.d, b));
		if (n->xmin.set && cmp_num(v, n->xmin.d) <= 0)
			return fail(c, "exclusiveMinimum", "%s is not greater than %s",
				    num_text(v, a), bound_text(n->xmin.d, b));
		if (n->xmax.set && cmp_num(v, n->xmax.d) >= 0)
			return fail(c, "exclusiveMaximum", "%s is not less than %s", num_text(v, a),
				    bound_text(n->xmax.d, b));
	}
	return V_OK;
}

/* Byte order, then length; inline because keys are short. */
static int keycmp(const char *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t m = al < bl ? al : bl;
	for (size_t i = 0; i < m; i++)
		if ((uint8_t)a[i] != b[i])
			return (uint8_t)a[i] < b[i] ? -1 : 1;
	return (al > bl) - (al < bl);
}

static const sc_prop *find_prop(const sc_node *n, const uint8_t *k, size_t len)
{
	size_t lo = 0, hi = n->nprops;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = keycmp(n->props[mid].name, n->props[mid].len, k, len);
		if (r == 0)
			return &n->props[mid];
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int check_object(vc *c, const sc_node *n, uint32_t count, int depth)
{
	uint8_t seen[EVS_MAX_SCHEMA_PROPS / 8 + 1];
	size_t nseen = 0;
	evs__mpv k;
	int rc;

	memset(seen, 0, sizeof seen);
	for (uint32_t i = 0; i < count; i++) {
		if (!evs__mp_read(&c->r, &k))
			return V_MALFORMED;
		if (k.kind != EVS__MK_STR) {
			if (k.kind == EVS__MK_ARR || k.kind == EVS__MK_MAP)
				return V_MALFORMED;
			return fail(c, "type", "object key is a %s, not a string", kind_name(&k));
		}
		const sc_prop *p = find_prop(n, k.ptr, k.n);
		if (push_key(c, k.ptr, k.n) != 0)
			return V_MALFORMED;
		if (p) {
			size_t idx = (size_t)(p - n->props);
			if (!(seen[idx / 8] & (1u << (idx % 8)))) {
				seen[idx / 8] |= (uint8_t)(1u << (idx % 8));
				nseen += p->required;
			}
			rc = p->node ? vnode(c, p->node, depth + 1)
				     : (evs__mp_skip(&c->r, depth + 1) ? V_OK : V_MALFORMED);
		} else if (!n->additional) {
			if (!evs__mp_skip(&c->r, depth + 1))
				return V_MALFORMED;
			return fail(c, "additionalProperties", "property is not allowed");
		} else if (n->addl) {
			rc = vnode(c, n->addl, depth + 1);
		} else {
			rc = evs__mp_skip(&c->r, depth + 1) ? V_OK : V_MALFORMED;
		}
		if (rc)
			return rc;
		pop(c);
	}
	if (nseen < n->nrequired) {
		for (size_t i = 0; i < n->nprops; i++) {
			const sc_prop *p = &n->props[i];
			if (p->required && !(seen[i / 8] & (1u << (i % 8))))
				return fail(c, "required", "property \"%.*s\" is missing",
					    (int)(p->len > 100 ? 100 : p->len), p->name);
		}
	}
	return V_OK;
}

static int vnode(vc *c, const sc_node *n, int depth)
{
	evs__mpv v;
	char t[64];
	int rc;

	if (depth > EVS_MAX_SCHEMA_DEPTH + 1 || !evs__mp_read(&c->r, &v))
		return V_MALFORMED;
	if (!type_ok(n->types, &v)) {
		types_text(n->types, t, sizeof t);
		return fail(c, "type", "%s is not %s", kind_name(&v), t);
	}
	if (n->lits) {
		bool ok = false;
		for (size_t i = 0; !ok && i < n->nlits; i++)
			ok = lit_eq(&n->lits[i], &v);
		if (!ok) {
			if (v.kind == EVS__MK_STR)
				return fail(c, n->is_const ? "const" : "enum", "\"%.*s\" is not %s",
					    (int)(v.n > 64 ? 64 : v.n), (const char *)v.ptr,
					    n->is_const ? "the constant"
							: "one of the allowed values");
			return fail(c, n->is_const ? "const" : "enum", "%s value is not %s",
				    kind_name(&v),
				    n->is_const ? "the constant" : "one of the allowed values");
		}
	}
	if (v.kind == EVS__MK_MAP) {
		if (2 * (uint64_t)v.n > (uint64_t)(c->r.end - c->r.p))
			return V_MALFORMED;
		return check_object(c, n, v.n, depth);
	}
	if (v.kind == EVS__MK_ARR) {
		if (v.n > (uint64_t)(c->r.end - c->r.p))
			return V_MALFORMED;
		if (n->min_items >= 0 && v.n < (uint64_t)n->min_items)
			return fail(c, "minItems", "array of %u items has fewer than %lld", v.n,
				    (long long)n->min_items);
		if (n->max_items >= 0 && v.n > (uint64_t)n->max_items)
			return fail(c, "maxItems", "array of %u items has more than %lld", v.n,
				    (long long)n->max_items);
		for (uint32_t i = 0; i < v.n; i++) {
			if (n->items) {
				if (push_index(c, i) != 0)
					return V_MALFORMED;
				if ((rc = vnode(c, n->items, depth + 1)) != V_OK)
					return rc;
				pop(c);
			} else if (!evs__mp_skip(&c->r, depth + 1)) {
				return V_MALFORMED;
			}
		}
		return V_OK;
	}
	return check_scalar(c, n, &v);
}

int evs__schema_validate(const evs_schema *sc, const void *data, size_t len, evs__verr *err)
{
	vc c = {.r = {.p = data, .end = (const uint8_t *)data + len}, .err = err};
	int rc;

	strcpy(err->path, "$");
	err->rule = NULL;
	err->detail[0] = 0;
	if (data == NULL || len == 0)
		return V_MALFORMED;
	rc = vnode(&c, sc->root, 1);
	if (rc == V_OK && c.r.p != c.r.end)
		rc = V_MALFORMED;
	return rc;
}

int evs_schema_validate(const evs_schema *sc, const void *data, size_t len, char *err,
			size_t errlen)
{
	evs__verr e;
	int rc;

	if (sc == NULL || (data == NULL && len))
		return EVS_INVALID;
	if (data == NULL)
		data = "\x80", len = 1;
	rc = evs__schema_validate(sc, data, len, &e);
	if (rc == V_OK)
		return EVS_OK;
	if (err && errlen) {
		if (rc == V_MALFORMED)
			snprintf(err, errlen, "data is not well-formed msgpack");
		else
			snprintf(err, errlen, "at \"%s\" breaks rule \"%s\": %s", e.path, e.rule,
				 e.detail);
	}
	return rc == V_MALFORMED ? EVS_BAD_DATA : EVS_SCHEMA_VIOLATION;
}
