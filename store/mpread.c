/*
 * mpread.c - reading untrusted msgpack in place, without allocation.
 *
 * Payloads arrive from callers and are stored as bytes, so the store needs
 * their structure checked, not an object tree built; the schema validator
 * (schema/validate.c) reads them beside a compiled schema with the same
 * cursor, so a payload whose type has a schema is checked and validated in
 * one walk. Every length is checked against the end of the buffer before
 * it is used, and the reader refuses what a tree-building decoder would
 * choke on: declared lengths past the end, element counts larger than the
 * bytes left (which would make a decoder allocate gigabytes for a 6-byte
 * input), nesting deeper than EVS_MAX_DEPTH, the reserved byte 0xc1 and
 * trailing bytes. Strings (keys and values) must be valid UTF-8 without
 * NUL: every reader, JSON and PostgreSQL's jsonb included, can then hold
 * them, so no read model ever stops on an event the store accepted. Raw
 * bytes belong in msgpack bin.
 */
#include <string.h>

#include "internal.h"

static bool bad(evs__mpr *r, const char *why)
{
	r->why = why;
	return false;
}

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static bool text(evs__mpr *r, evs__mpv *v)
{
	if (v->kind == EVS__MK_STR && !evs__utf8_text(v->ptr, v->n))
		return bad(r, "a string is not valid UTF-8 or contains a NUL byte");
	return true;
}

static bool body(evs__mpr *r, int lenbytes, evs__mpv *v, int kind)
{
	if (r->end - r->p < lenbytes)
		return bad(r, "truncated");
	uint64_t n = be(r->p, lenbytes);
	r->p += lenbytes;
	if (kind == EVS__MK_EXT) {
		if (r->end - r->p < 1)
			return bad(r, "truncated");
		r->p++; /* ext type */
	}
	if ((uint64_t)(r->end - r->p) < n)
		return bad(r, "truncated");
	v->kind = kind;
	v->ptr = r->p;
	v->n = (uint32_t)n;
	r->p += n;
	return text(r, v);
}

static bool fixed_ext(evs__mpr *r, uint32_t n, evs__mpv *v)
{
	if ((uint64_t)(r->end - r->p) < 1 + (uint64_t)n)
		return bad(r, "truncated");
	v->kind = EVS__MK_EXT;
	v->ptr = r->p + 1;
	v->n = n;
	r->p += 1 + n;
	return true;
}

static bool count(evs__mpr *r, int lenbytes, evs__mpv *v, int kind)
{
	if (r->end - r->p < lenbytes)
		return bad(r, "truncated");
	v->kind = kind;
	v->n = (uint32_t)be(r->p, lenbytes);
	r->p += lenbytes;
	return true;
}

static bool num(evs__mpr *r, int n, evs__mpv *v)
{
	if (r->end - r->p < n)
		return bad(r, "truncated");
	v->u = be(r->p, n);
	r->p += n;
	return true;
}

bool evs__mp_read(evs__mpr *r, evs__mpv *v)
{
	uint8_t c;

	if (r->p >= r->end)
		return bad(r, "truncated");
	c = *r->p++;
	if (c <= 0x7f) {
		v->kind = EVS__MK_UINT;
		v->u = c;
		return true;
	}
	if (c >= 0xe0) {
		v->kind = EVS__MK_NINT;
		v->i = (int8_t)c;
		return true;
	}
	if (c <= 0x8f) {
		v->kind = EVS__MK_MAP;
		v->n = c & 0x0f;
		return true;
	}
	if (c <= 0x9f) {
		v->kind = EVS__MK_ARR;
		v->n = c & 0x0f;
		return true;
	}
	if (c <= 0xbf) {
		if ((uint64_t)(r->end - r->p) < (c & 0x1fu))
			return bad(r, "truncated");
		v->kind = EVS__MK_STR;
		v->ptr = r->p;
		v->n = c & 0x1f;
		r->p += v->n;
		return text(r, v);
	}
	switch (c) {
	case 0xc0: v->kind = EVS__MK_NIL; return true;
	case 0xc2:
		v->kind = EVS__MK_BOOL;
		v->b = false;
		return true;
	case 0xc3:
		v->kind = EVS__MK_BOOL;
		v->b = true;
		return true;
	case 0xc4: return body(r, 1, v, EVS__MK_BIN);
	case 0xc5: return body(r, 2, v, EVS__MK_BIN);
	case 0xc6: return body(r, 4, v, EVS__MK_BIN);
	case 0xc7: return body(r, 1, v, EVS__MK_EXT);
	case 0xc8: return body(r, 2, v, EVS__MK_EXT);
	case 0xc9: return body(r, 4, v, EVS__MK_EXT);
	case 0xca: {
		if (!num(r, 4, v))
			return false;
		uint32_t b = (uint32_t)v->u;
		float f;
		memcpy(&f, &b, 4);
		v->kind = EVS__MK_FLOAT;
		v->d = f;
		return true;
	}
	case 0xcb: {
		if (!num(r, 8, v))
			return false;
		memcpy(&v->d, &v->u, 8);
		v->kind = EVS__MK_FLOAT;
		return true;
	}
	case 0xcc: v->kind = EVS__MK_UINT; return num(r, 1, v);
	case 0xcd: v->kind = EVS__MK_UINT; return num(r, 2, v);
	case 0xce: v->kind = EVS__MK_UINT; return num(r, 4, v);
	case 0xcf: v->kind = EVS__MK_UINT; return num(r, 8, v);
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3: {
		int n = 1 << (c - 0xd0);
		if (!num(r, n, v))
			return false;
		int64_t x = n == 1   ? (int8_t)v->u
			    : n == 2 ? (int16_t)v->u
			    : n == 4 ? (int32_t)v->u
				     : (int64_t)v->u;
		if (x >= 0) {
			v->kind = EVS__MK_UINT;
			v->u = (uint64_t)x;
		} else {
			v->kind = EVS__MK_NINT;
			v->i = x;
		}
		return true;
	}
	case 0xd4: return fixed_ext(r, 1, v);
	case 0xd5: return fixed_ext(r, 2, v);
	case 0xd6: return fixed_ext(r, 4, v);
	case 0xd7: return fixed_ext(r, 8, v);
	case 0xd8: return fixed_ext(r, 16, v);
	case 0xd9: return body(r, 1, v, EVS__MK_STR);
	case 0xda: return body(r, 2, v, EVS__MK_STR);
	case 0xdb: return body(r, 4, v, EVS__MK_STR);
	case 0xdc: return count(r, 2, v, EVS__MK_ARR);
	case 0xdd: return count(r, 4, v, EVS__MK_ARR);
	case 0xde: return count(r, 2, v, EVS__MK_MAP);
	case 0xdf: return count(r, 4, v, EVS__MK_MAP);
	default: return bad(r, "reserved byte 0xc1");
	}
}

bool evs__mp_skip(evs__mpr *r, int level)
{
	/* left[k]: values still to read in the k-th open container (left[0]:
	 * the value itself); the value read at k is at level + k */
	uint64_t left[EVS_MAX_DEPTH + 2];
	int k = 0;
	evs__mpv v;

	left[0] = 1;
	while (k >= 0) {
		if (left[k] == 0) {
			k--;
			continue;
		}
		left[k]--;
		if (!evs__mp_read(r, &v))
			return false;
		if (v.kind != EVS__MK_ARR && v.kind != EVS__MK_MAP)
			continue;
		/* every value takes at least one byte */
		uint64_t n = v.kind == EVS__MK_MAP ? 2 * (uint64_t)v.n : v.n;
		if (n > (uint64_t)(r->end - r->p))
			return bad(r, "truncated");
		if (level + k > EVS_MAX_DEPTH)
			return bad(r, "nested too deeply");
		left[++k] = n;
	}
	return true;
}

bool evs__mp_is_map(const void *buf, size_t len, const char **why)
{
	evs__mpr r = {.p = buf, .end = (const uint8_t *)buf + len};
	const uint8_t *p = buf;

	if (len == 0) {
		*why = "empty";
		return false;
	}
	if (!((*p >= 0x80 && *p <= 0x8f) || *p == 0xde || *p == 0xdf)) {
		*why = "not a map";
		return false;
	}
	if (!evs__mp_skip(&r, 1)) {
		*why = r.why;
		return false;
	}
	if (r.p != r.end) {
		*why = "trailing bytes after the map";
		return false;
	}
	return true;
}
