/*
 * upcast.c - events in their type's latest version, computed on read.
 *
 * The stored bytes never change: evs_upcast() takes an event view and
 * returns a view whose data is a new msgpack map in the upcaster's buffer
 * and whose type_version is the type's latest. Step k -> k+1 is the C hook
 * registered for (type, k) on this handle if there is one, else the steps
 * of version k+1's document.
 *
 * Declarative steps work on the top level of the data map: the map is cut
 * into (key bytes, value bytes) slices of the input, the steps edit that
 * list (new keys and defaults are packed once, at compile time; converted
 * scalars go to a scratch buffer) and the map is written out again. Keys
 * keep their order; added keys come last.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg_internal.h"
#include "internal.h"
#include "mpjson.h"
#include "schema_internal.h"

#define SCRATCH 48 /* bytes of one converted scalar, at most */

struct evs_upcaster {
	evs_store *s;
	evs__buf buf[2];
	int cur;
};

typedef struct ent {
	const uint8_t *k, *v;
	size_t kl, vl;
} ent;

int evs_upcaster_register(evs_store *s, const char *type, uint32_t from, evs_upcast_fn fn,
			  void *ctx)
{
	size_t len;
	evs__sc_hook *h;

	if (s == NULL || fn == NULL || from == 0)
		return EVS_INVALID;
	if (evs__check_name(type, &len) <= 0)
		return evs__fail(s, EVS_BAD_TYPE, "invalid event type");
	if ((h = evs__calloc(1, sizeof *h)) == NULL || (h->type = evs__strdup(type)) == NULL) {
		free(h);
		return evs__fail(s, EVS_NOMEM, "out of memory");
	}
	h->len = len;
	h->from = from;
	h->fn = fn;
	h->ctx = ctx;
	pthread_mutex_lock(&s->schema_mu);
	h->next = s->schema_hooks;
	s->schema_hooks = h;
	pthread_mutex_unlock(&s->schema_mu);
	return EVS_OK;
}

static const evs__sc_hook *find_hook(evs_store *s, const char *type, size_t len, uint32_t from)
{
	const evs__sc_hook *found = NULL;

	pthread_mutex_lock(&s->schema_mu);
	for (const evs__sc_hook *h = s->schema_hooks; h && !found; h = h->next)
		if (h->from == from && h->len == len && memcmp(h->type, type, len) == 0)
			found = h;
	pthread_mutex_unlock(&s->schema_mu);
	return found; /* hooks are freed only by evs_close */
}

int evs_upcaster_new(evs_store *s, evs_upcaster **out)
{
	if (out)
		*out = NULL;
	if (s == NULL || out == NULL)
		return EVS_INVALID;
	if ((*out = evs__calloc(1, sizeof **out)) == NULL)
		return evs__fail(s, EVS_NOMEM, "out of memory");
	(*out)->s = s;
	return EVS_OK;
}

void evs_upcaster_free(evs_upcaster *u)
{
	if (u == NULL)
		return;
	evs__buf_free(&u->buf[0]);
	evs__buf_free(&u->buf[1]);
	free(u);
}

static bool key_eq(const ent *e, const uint8_t *k, size_t kl)
{
	return e->kl == kl && memcmp(e->k, k, kl) == 0;
}

static ent *find(ent *es, size_t n, const uint8_t *k, size_t kl)
{
	for (size_t i = 0; i < n; i++)
		if (key_eq(&es[i], k, kl))
			return &es[i];
	return NULL;
}

static size_t put_be(uint8_t *p, uint8_t tag, uint64_t v, int n)
{
	p[0] = tag;
	for (int i = n; i >= 1; i--, v >>= 8)
		p[i] = (uint8_t)v;
	return (size_t)n + 1;
}

static size_t pack_int(uint8_t *p, int64_t x)
{
	if (x >= 0 && x <= 127) {
		p[0] = (uint8_t)x;
		return 1;
	}
	if (x < 0 && x >= -32) {
		p[0] = (uint8_t)(int8_t)x;
		return 1;
	}
	return put_be(p, x >= 0 ? 0xcf : 0xd3, (uint64_t)x, 8);
}

static size_t pack_double(uint8_t *p, double d)
{
	uint64_t b;
	memcpy(&b, &d, 8);
	return put_be(p, 0xcb, b, 8);
}

static size_t pack_str(uint8_t *p, const char *s, size_t n)
{
	/* n < 32 for every string made here */
	p[0] = (uint8_t)(0xa0 | n);
	memcpy(p + 1, s, n);
	return n + 1;
}

/* Convert one scalar by rule into out (SCRATCH bytes); 0 if it does not
 * apply to the value. */
static size_t convert(const up_step *st, const uint8_t *v, size_t vl, uint8_t *out)
{
	evs__mpr in = {.p = v, .end = v + vl};
	char t[40];
	evs__mpv x;

	if (!evs__mp_read(&in, &x))
		return 0;
	switch (st->rule) {
	case CV_STRING:
		if (x.kind == EVS__MK_STR) {
			return (size_t)-1; /* unchanged */
		} else if (x.kind == EVS__MK_UINT) {
			snprintf(t, sizeof t, "%" PRIu64, x.u);
		} else if (x.kind == EVS__MK_NINT) {
			snprintf(t, sizeof t, "%" PRId64, x.i);
		} else if (x.kind == EVS__MK_FLOAT) {
			evs__double_text(x.d, t); /* shortest: 0.1 becomes "0.1" */
		} else if (x.kind == EVS__MK_BOOL) {
			snprintf(t, sizeof t, "%s", x.b ? "true" : "false");
		} else {
			return 0;
		}
		return pack_str(out, t, strlen(t));
	case CV_INTEGER:
		if (x.kind == EVS__MK_UINT || x.kind == EVS__MK_NINT)
			return (size_t)-1;
		if (x.kind == EVS__MK_FLOAT && isfinite(x.d) && x.d == floor(x.d) &&
		    fabs(x.d) < 9.2e18)
			return pack_int(out, (int64_t)x.d);
		if (x.kind == EVS__MK_STR && x.n > 0 && x.n < sizeof t) {
			char *end;
			memcpy(t, x.ptr, x.n);
			t[x.n] = 0;
			long long ll = strtoll(t, &end, 10);
			if (*end == 0 && end != t)
				return pack_int(out, ll);
		}
		return 0;
	case CV_NUMBER:
		if (x.kind == EVS__MK_FLOAT)
			return (size_t)-1;
		if (x.kind == EVS__MK_UINT)
			return pack_double(out, (double)x.u);
		if (x.kind == EVS__MK_NINT)
			return pack_double(out, (double)x.i);
		if (x.kind == EVS__MK_STR && x.n > 0 && x.n < sizeof t) {
			char *end;
			memcpy(t, x.ptr, x.n);
			t[x.n] = 0;
			double d = strtod(t, &end);
			if (*end == 0 && end != t && isfinite(d))
				return pack_double(out, d);
		}
		return 0;
	case CV_MULTIPLY: {
		int64_t a, r;
		if (x.kind == EVS__MK_UINT && x.u <= INT64_MAX)
			a = (int64_t)x.u;
		else if (x.kind == EVS__MK_NINT)
			a = x.i;
		else
			return 0;
		if (__builtin_mul_overflow(a, st->factor, &r))
			return 0;
		return pack_int(out, r);
	}
	}
	return 0;
}

/* Apply a document's steps to the map at (in, len), writing out. */
static int apply_steps(const evs_schema *sc, const uint8_t *in, size_t len, evs__buf *out,
		       char *why, size_t whylen)
{
	evs__mpr r = {.p = in, .end = in + len};
	ent *es = NULL;
	uint8_t *scratch = NULL;
	size_t n = 0, cap;
	evs__mpv m;
	int rc = EVS_CORRUPT;

	if (!evs__mp_read(&r, &m) || m.kind != EVS__MK_MAP || m.n > len) {
		snprintf(why, whylen, "data is not a map");
		return EVS_CORRUPT;
	}
	cap = m.n + sc->nsteps;
	es = evs__calloc(cap ? cap : 1, sizeof *es);
	scratch = evs__malloc(sc->nsteps * SCRATCH + 1);
	if (es == NULL || scratch == NULL) {
		rc = EVS_NOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < m.n; i++, n++) {
		es[n].k = r.p;
		if (!evs__mp_skip(&r, 2))
			goto malformed;
		es[n].kl = (size_t)(r.p - es[n].k);
		es[n].v = r.p;
		if (!evs__mp_skip(&r, 2))
			goto malformed;
		es[n].vl = (size_t)(r.p - es[n].v);
	}
	for (size_t i = 0; i < sc->nsteps; i++) {
		const up_step *st = &sc->steps[i];
		ent *e = find(es, n, st->key, st->key_len);
		switch (st->op) {
		case UP_RENAME:
			if (e) {
				ent *clash = find(es, n, st->key2, st->key2_len);
				if (clash) { /* the new name wins over an old stray */
					*clash = es[--n];
					e = find(es, n, st->key, st->key_len);
				}
				e->k = st->key2;
				e->kl = st->key2_len;
			}
			break;
		case UP_ADD:
			if (e == NULL) {
				es[n].k = st->key;
				es[n].kl = st->key_len;
				es[n].v = st->val;
				es[n].vl = st->val_len;
				n++;
			}
			break;
		case UP_REMOVE:
			if (e) {
				memmove(e, e + 1, (size_t)(es + n - (e + 1)) * sizeof *e);
				n--;
			}
			break;
		case UP_CONVERT:
			if (e) {
				uint8_t *o = scratch + i * SCRATCH;
				size_t k = convert(st, e->v, e->vl, o);
				if (k == 0) {
					snprintf(why, whylen,
						 "step %zu (convert) does not apply to the "
						 "value of its field",
						 i + 1);
					goto out;
				}
				if (k != (size_t)-1) {
					e->v = o;
					e->vl = k;
				}
			}
			break;
		}
	}
	size_t total = 5;
	for (size_t i = 0; i < n; i++)
		total += es[i].kl + es[i].vl;
	evs__buf_reset(out);
	if (evs__buf_reserve(out, total) != 0) {
		rc = EVS_NOMEM;
		goto out;
	}
	uint8_t head[5];
	if (n < 16)
		head[0] = (uint8_t)(0x80 | n);
	evs__buf_putn(out, head,
		      n < 16        ? 1
		      : n <= 0xffff ? put_be(head, 0xde, n, 2)
				    : put_be(head, 0xdf, n, 4));
	for (size_t i = 0; i < n; i++) {
		evs__buf_putn(out, es[i].k, es[i].kl);
		evs__buf_putn(out, es[i].v, es[i].vl);
	}
	rc = EVS_OK;
	goto out;
malformed:
	snprintf(why, whylen, "data is not well-formed msgpack");
out:
	free(es);
	free(scratch);
	return rc;
}

int evs_upcast(evs_upcaster *u, const evs_event *in, evs_event *out)
{
	evs_store *s;
	evs__schemas *c;
	char why[160];
	int rc;

	if (u == NULL || in == NULL || out == NULL)
		return EVS_INVALID;
	s = u->s;
	*out = *in;
	if ((rc = evs__schemas_get(s, &c)) != EVS_OK)
		return rc;
	const evs__sc_type *t = evs__schemas_find(c, in->type.ptr, in->type.len);
	uint32_t v = in->type_version ? in->type_version : 1;
	if (t == NULL || v >= t->nversions)
		goto out;
	const void *data = in->data;
	size_t len = in->data_len;
	for (; v < t->nversions; v++) {
		const evs_schema *next = t->v[v]; /* version v + 1 */
		evs__buf *dst = &u->buf[u->cur ^ 1];
		const evs__sc_hook *h = find_hook(s, t->name, t->len, v);
		if (h) {
			struct evs_sink sink = {.buf.limit = EVS_LIMIT_MAX_EVENT};
			evs_event cur = *in;
			cur.data = data;
			cur.data_len = len;
			cur.type_version = v;
			rc = h->fn(h->ctx, &cur, &sink);
			if (rc == EVS_OK && (sink.buf.oom || sink.too_large))
				rc = sink.too_large ? EVS_EVENT_TOO_LARGE : EVS_NOMEM;
			if (rc == EVS_OK) {
				const char *why2;
				if (!evs__mp_is_map(sink.buf.ptr, sink.buf.len, &why2)) {
					rc = evs__fail(s, EVS_BAD_DATA,
						       "upcaster of \"%s\" version %u "
						       "wrote no valid msgpack map: %s",
						       t->name, v, why2);
				}
			} else {
				evs__fail(s, rc, "upcaster of \"%s\" version %u failed: %s",
					  t->name, v, evs_strerror(rc));
			}
			if (rc == EVS_OK) {
				evs__buf_free(dst);
				*dst = sink.buf;
				dst->limit = 0; /* the sink's bound was for the upcaster */
			} else {
				evs__buf_free(&sink.buf);
				goto out;
			}
		} else if (next->upcast == UPCAST_STEPS) {
			rc = apply_steps(next, data, len, dst, why, sizeof why);
			if (rc != EVS_OK) {
				evs__fail(s, rc,
					  "could not upcast event at position %llu (\"%s\") from "
					  "version %u: %s",
					  (unsigned long long)in->position, t->name, v,
					  rc == EVS_NOMEM ? "out of memory" : why);
				goto out;
			}
		} else if (next->upcast == UPCAST_HOOK) {
			rc = evs__fail(
				s, EVS_UNKNOWN_TYPE,
				"schema \"%s\" version %u needs a C upcaster from version %u "
				"and none is registered",
				t->name, v + 1, v);
			goto out;
		} else {
			continue; /* a compatible change: the data stays as it is */
		}
		u->cur ^= 1;
		data = dst->ptr;
		len = dst->len;
	}
	out->data = data;
	out->data_len = len;
	out->type_version = t->nversions;
out:
	evs__schemas_put(s, c);
	return rc;
}
