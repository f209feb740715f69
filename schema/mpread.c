/*
 * mpread.c - reading msgpack in place, without allocation, for the schema
 * validator and the upcaster. Every length is checked against the end of
 * the buffer before it is used.
 */
#include <string.h>

#include "schema_internal.h"

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static bool body(const uint8_t **p, const uint8_t *end, int lenbytes, mpv *v, int kind)
{
	if (end - *p < lenbytes)
		return false;
	uint64_t n = be(*p, lenbytes);
	*p += lenbytes;
	if (kind == MK_EXT) {
		if (end - *p < 1)
			return false;
		(*p)++; /* ext type */
	}
	if ((uint64_t)(end - *p) < n)
		return false;
	v->kind = kind;
	v->ptr = *p;
	v->n = (uint32_t)n;
	*p += n;
	return true;
}

static bool fixed_ext(const uint8_t **p, const uint8_t *end, uint32_t n, mpv *v)
{
	if ((uint64_t)(end - *p) < 1 + (uint64_t)n)
		return false;
	v->kind = MK_EXT;
	v->ptr = *p + 1;
	v->n = n;
	*p += 1 + n;
	return true;
}

static bool count(const uint8_t **p, const uint8_t *end, int lenbytes, mpv *v, int kind)
{
	if (end - *p < lenbytes)
		return false;
	v->kind = kind;
	v->n = (uint32_t)be(*p, lenbytes);
	*p += lenbytes;
	return true;
}

static bool num(const uint8_t **p, const uint8_t *end, int n, mpv *v)
{
	if (end - *p < n)
		return false;
	v->u = be(*p, n);
	*p += n;
	return true;
}

bool evs__mp_read(const uint8_t **p, const uint8_t *end, mpv *v)
{
	uint8_t c;

	/* only the fields of the kind read are set */
	if (*p >= end)
		return false;
	c = *(*p)++;
	if (c <= 0x7f) {
		v->kind = MK_UINT;
		v->u = c;
		return true;
	}
	if (c >= 0xe0) {
		v->kind = MK_NINT;
		v->i = (int8_t)c;
		return true;
	}
	if (c <= 0x8f) {
		v->kind = MK_MAP;
		v->n = c & 0x0f;
		return true;
	}
	if (c <= 0x9f) {
		v->kind = MK_ARR;
		v->n = c & 0x0f;
		return true;
	}
	if (c <= 0xbf) {
		if ((uint64_t)(end - *p) < (c & 0x1fu))
			return false;
		v->kind = MK_STR;
		v->ptr = *p;
		v->n = c & 0x1f;
		*p += v->n;
		return true;
	}
	switch (c) {
	case 0xc0: v->kind = MK_NIL; return true;
	case 0xc2:
		v->kind = MK_BOOL;
		v->b = false;
		return true;
	case 0xc3:
		v->kind = MK_BOOL;
		v->b = true;
		return true;
	case 0xc4: return body(p, end, 1, v, MK_BIN);
	case 0xc5: return body(p, end, 2, v, MK_BIN);
	case 0xc6: return body(p, end, 4, v, MK_BIN);
	case 0xc7: return body(p, end, 1, v, MK_EXT);
	case 0xc8: return body(p, end, 2, v, MK_EXT);
	case 0xc9: return body(p, end, 4, v, MK_EXT);
	case 0xca: {
		if (!num(p, end, 4, v))
			return false;
		uint32_t b = (uint32_t)v->u;
		float f;
		memcpy(&f, &b, 4);
		v->kind = MK_FLOAT;
		v->d = f;
		return true;
	}
	case 0xcb: {
		if (!num(p, end, 8, v))
			return false;
		memcpy(&v->d, &v->u, 8);
		v->kind = MK_FLOAT;
		return true;
	}
	case 0xcc: v->kind = MK_UINT; return num(p, end, 1, v);
	case 0xcd: v->kind = MK_UINT; return num(p, end, 2, v);
	case 0xce: v->kind = MK_UINT; return num(p, end, 4, v);
	case 0xcf: v->kind = MK_UINT; return num(p, end, 8, v);
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3: {
		int n = 1 << (c - 0xd0);
		if (!num(p, end, n, v))
			return false;
		int64_t x = n == 1   ? (int8_t)v->u
			    : n == 2 ? (int16_t)v->u
			    : n == 4 ? (int32_t)v->u
				     : (int64_t)v->u;
		if (x >= 0) {
			v->kind = MK_UINT;
			v->u = (uint64_t)x;
		} else {
			v->kind = MK_NINT;
			v->i = x;
		}
		return true;
	}
	case 0xd4: return fixed_ext(p, end, 1, v);
	case 0xd5: return fixed_ext(p, end, 2, v);
	case 0xd6: return fixed_ext(p, end, 4, v);
	case 0xd7: return fixed_ext(p, end, 8, v);
	case 0xd8: return fixed_ext(p, end, 16, v);
	case 0xd9: return body(p, end, 1, v, MK_STR);
	case 0xda: return body(p, end, 2, v, MK_STR);
	case 0xdb: return body(p, end, 4, v, MK_STR);
	case 0xdc: return count(p, end, 2, v, MK_ARR);
	case 0xdd: return count(p, end, 4, v, MK_ARR);
	case 0xde: return count(p, end, 2, v, MK_MAP);
	case 0xdf: return count(p, end, 4, v, MK_MAP);
	default: return false; /* 0xc1 */
	}
}

bool evs__mp_skip(const uint8_t **p, const uint8_t *end)
{
	uint64_t pending = 1;
	mpv v;

	/* every value takes at least one byte, so this ends with the buffer */
	while (pending > 0) {
		if (!evs__mp_read(p, end, &v))
			return false;
		pending--;
		if (v.kind == MK_ARR)
			pending += v.n;
		else if (v.kind == MK_MAP)
			pending += 2 * (uint64_t)v.n;
		if (pending > (uint64_t)(end - *p))
			return false;
	}
	return true;
}
