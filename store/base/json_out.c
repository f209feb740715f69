/*
 * json_out.c: JSON text of msgpack values, strings and numbers (mpjson.h,
 * where the number policy is drawn).
 *
 * The writer is ours rather than json-c's so that the text is exactly
 * what the tool's export promises and what jsonb keeps: strings escape
 * only '"', '\\' and control characters, and doubles always read back as
 * the same double and as a double.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "base64.h"
#include "mpjson.h"
#include "utf8.h"

/* 2^64: the first double that is integral but cannot be written as a
 * 64-bit integer by anyone. */
#define TWO_64 18446744073709551616.0

static void put_escape(evs__buf *b, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";

	switch (c) {
	case '"': evs__buf_putn(b, "\\\"", 2); break;
	case '\\': evs__buf_putn(b, "\\\\", 2); break;
	case '\b': evs__buf_putn(b, "\\b", 2); break;
	case '\f': evs__buf_putn(b, "\\f", 2); break;
	case '\n': evs__buf_putn(b, "\\n", 2); break;
	case '\r': evs__buf_putn(b, "\\r", 2); break;
	case '\t': evs__buf_putn(b, "\\t", 2); break;
	default: {
		char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

		evs__buf_putn(b, e, sizeof e);
	}
	}
}

/* The string body; on bytes that are not UTF-8, U+FFFD if lossy, else -1. */
static int put_str(evs__buf *b, const char *s, size_t n, bool lossy)
{
	const uint8_t *u = (const uint8_t *)s;
	size_t i = 0, run, mark = b->len;

	evs__buf_reserve(b, n + 2);
	evs__buf_putc(b, '"');
	while (i < n) {
		/* copy the longest run that needs no escape */
		for (run = i; run < n;) {
			size_t k;

			if (u[run] < 0x20 || u[run] == '"' || u[run] == '\\')
				break;
			k = u[run] < 0x80 ? 1 : evs__utf8_seq(u + run, n - run);
			if (k == 0)
				break;
			run += k;
		}
		evs__buf_putn(b, s + i, run - i);
		if (run == n)
			break;
		i = run;
		if (u[i] < 0x20 || u[i] == '"' || u[i] == '\\') {
			put_escape(b, u[i]);
		} else if (lossy) {
			evs__buf_putn(b, "\xef\xbf\xbd", 3);
		} else {
			b->len = mark;
			return -1;
		}
		i++;
	}
	evs__buf_putc(b, '"');
	return 0;
}

int evs__json_str(evs__buf *b, const char *s, size_t n)
{
	return put_str(b, s, n, false);
}

void evs__json_str_lossy(evs__buf *b, const char *s, size_t n)
{
	put_str(b, s, n, true);
}

size_t evs__double_text(double d, char out[EVS__DOUBLE_LEN])
{
	int prec, n = 0;

	/* a whole number in plain digits: %g would write 1e+15, which
	 * PostgreSQL's integer input refuses (a parameter of a bigint) */
	if (d == floor(d) && fabs(d) < TWO_64)
		return (size_t)snprintf(out, EVS__DOUBLE_LEN, "%.0f", d);
	/* DBL_DIG is 15: a normal double that some decimal of 15 or fewer
	 * digits reads back to prints as that decimal under %.15g, so 15,
	 * 16, 17 finds the shortest. Subnormals have fewer digits of
	 * precision (5e-324 is one digit): count up from 1 for them. */
	for (prec = fabs(d) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
		n = snprintf(out, EVS__DOUBLE_LEN, "%.*g", prec, d);
		if (prec == 17 || strtod(out, NULL) == d)
			break;
	}
	return (size_t)n;
}

void evs__json_double_short(evs__buf *b, double d)
{
	char tmp[EVS__DOUBLE_LEN];
	size_t n = evs__double_text(d, tmp);

	evs__buf_putn(b, tmp, n);
	if (!strpbrk(tmp, ".eE"))
		evs__buf_putn(b, ".0", 2);
}

int evs__json_double(evs__buf *b, double d)
{
	if (!isfinite(d))
		return -1;
	if (d == floor(d) && fabs(d) < TWO_64) {
		/* all digits: jsonb would print 1e19 so, and it must keep
		 * the ".0" that says "double" (mpjson.h) */
		evs__buf_printf(b, "%.0f.0", d);
		return 0;
	}
	evs__json_double_short(b, d);
	return 0;
}

/* Decimal digits of an integer without printf's cost (the common value in
 * a projector batch): mag is the magnitude, neg the sign. */
static void put_integer(evs__buf *b, bool neg, uint64_t mag)
{
	char tmp[21];
	size_t i = sizeof tmp;

	do {
		tmp[--i] = (char)('0' + mag % 10);
		mag /= 10;
	} while (mag);
	if (neg)
		tmp[--i] = '-';
	evs__buf_putn(b, tmp + i, sizeof tmp - i);
}

static int put_value(evs__buf *b, const msgpack_object *o, unsigned flags, int depth);

/* A non-string map key (lenient mode): its JSON text, as a string. */
static int put_key_text(evs__buf *b, const msgpack_object *key, unsigned flags, int depth)
{
	size_t mark = b->len;
	evs__buf tmp = {0};
	int rc;

	if (put_value(b, key, flags, depth) != 0)
		return -1;
	evs__buf_putn(&tmp, b->ptr + mark, b->len - mark);
	b->len = mark;
	rc = tmp.oom ? -1 : 0;
	if (rc == 0)
		put_str(b, tmp.ptr ? tmp.ptr : "", tmp.len, true);
	evs__buf_free(&tmp);
	return rc;
}

static int put_value(evs__buf *b, const msgpack_object *o, unsigned flags, int depth)
{
	bool exact = flags & EVS__JSON_EXACT;
	uint32_t i;

	if (depth > EVS__JSON_DEPTH)
		return -1;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: evs__buf_putn(b, "null", 4); return 0;
	case MSGPACK_OBJECT_BOOLEAN: evs__buf_puts(b, o->via.boolean ? "true" : "false"); return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER: put_integer(b, false, o->via.u64); return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		put_integer(b, true, 0 - (uint64_t)o->via.i64);
		return 0;
	case MSGPACK_OBJECT_FLOAT32:
		if (exact)
			return -1; /* would read back as float64 */
				   /* fall through */
	case MSGPACK_OBJECT_FLOAT64:
		if (evs__json_double(b, o->via.f64) == 0)
			return 0;
		if (exact)
			return -1;
		evs__buf_putn(b, "null", 4);
		return 0;
	case MSGPACK_OBJECT_STR: return put_str(b, o->via.str.ptr, o->via.str.size, !exact);
	case MSGPACK_OBJECT_BIN:
	case MSGPACK_OBJECT_EXT:
		if (exact)
			return -1;
		evs__buf_putc(b, '"');
		if (o->type == MSGPACK_OBJECT_BIN)
			evs__base64_encode(b, o->via.bin.ptr, o->via.bin.size);
		else
			evs__base64_encode(b, o->via.ext.ptr, o->via.ext.size);
		evs__buf_putc(b, '"');
		return 0;
	case MSGPACK_OBJECT_ARRAY:
		evs__buf_putc(b, '[');
		for (i = 0; i < o->via.array.size; i++) {
			if (i)
				evs__buf_putc(b, ',');
			if (put_value(b, &o->via.array.ptr[i], flags, depth + 1) != 0)
				return -1;
		}
		evs__buf_putc(b, ']');
		return 0;
	case MSGPACK_OBJECT_MAP:
		evs__buf_putc(b, '{');
		for (i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			int rc;

			if (i)
				evs__buf_putc(b, ',');
			if (kv->key.type == MSGPACK_OBJECT_STR)
				rc = put_value(b, &kv->key, flags, depth + 1);
			else if (exact)
				rc = -1;
			else
				rc = put_key_text(b, &kv->key, flags, depth + 1);
			if (rc != 0)
				return -1;
			evs__buf_putc(b, ':');
			if (put_value(b, &kv->val, flags, depth + 1) != 0)
				return -1;
		}
		evs__buf_putc(b, '}');
		return 0;
	}
	return -1;
}

int evs__msgpack_to_json_z(evs__buf *b, const void *p, size_t n, unsigned flags, msgpack_zone *zone)
{
	msgpack_object obj;
	size_t off = 0, mark = b->len;
	int rc = -1;

	if (b->oom)
		return -1;
	if (msgpack_unpack(p, n, &off, zone, &obj) == MSGPACK_UNPACK_SUCCESS && off == n)
		rc = put_value(b, &obj, flags, 0);
	msgpack_zone_clear(zone);
	if (rc != 0 || b->oom) {
		if (!b->oom)
			b->len = mark;
		return -1;
	}
	return 0;
}

int evs__msgpack_to_json(evs__buf *b, const void *p, size_t n, unsigned flags)
{
	msgpack_zone zone;
	int rc;

	if (!msgpack_zone_init(&zone, 2048))
		return -1;
	rc = evs__msgpack_to_json_z(b, p, n, flags, &zone);
	msgpack_zone_destroy(&zone);
	return rc;
}
