/*
 * pgarray.c - the array parameters of set-based statements (setexec.c):
 * one element per event, in PostgreSQL's binary format when every
 * element converts exactly from the text the event gave, else as text.
 *
 * Binary (the server's array_recv), big-endian:
 *
 *     int32 ndim = 1 | int32 has-NULL | Oid element type | int32 length |
 *     int32 lower bound = 1 | per element: int32 byte length (-1: NULL),
 *     then its bytes
 *
 * Elements sent binary: int2, int4, int8 (decimal digits with an
 * optional '-', in range), text and varchar (the bytes; the server
 * checks their encoding as it does text input), bool ("t", "f", "true",
 * "false") and timestamptz in the one form the projector writes
 * (evs__time_pg_text: "YYYY-MM-DD HH:MM:SS.ffffff+00", sent as
 * microseconds since 2000-01-01). Any other type, or one element that
 * does not convert, and the array goes as text, parsed by the server as
 * before: the same value or the same error. Binary saves the server the
 * parse of every element (timestamptz_in, int8in, array_in's scan).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum {
	OID_BOOL = 16,
	OID_INT8 = 20,
	OID_INT2 = 21,
	OID_INT4 = 23,
	OID_TEXT = 25,
	OID_VARCHAR = 1043,
	OID_TIMESTAMPTZ = 1184
};

static void put32(evs__buf *b, uint32_t v)
{
	unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 8), (unsigned char)v};

	evs__buf_putn(b, x, 4);
}

static void put64(evs__buf *b, uint64_t v)
{
	put32(b, (uint32_t)(v >> 32));
	put32(b, (uint32_t)v);
}

static bool binary_type(Oid t)
{
	return t == OID_BOOL || t == OID_INT8 || t == OID_INT2 || t == OID_INT4 || t == OID_TEXT ||
	       t == OID_VARCHAR || t == OID_TIMESTAMPTZ;
}

void evp__array_start(struct evp__array *a, Oid elem)
{
	evs__buf_reset(&a->txt);
	evs__buf_putc(&a->txt, '{');
	evs__buf_reset(&a->bin);
	a->elem = elem;
	a->binary = binary_type(elem);
	a->n = 0;
	a->nulls = false;
	if (a->binary) /* header, completed by finish */
		evs__buf_putn(&a->bin, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
}

static bool digits(const char *s, size_t n, size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++)
		if (i >= n || s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int num(const char *s, size_t from, size_t to)
{
	int v = 0;

	for (; from < to; from++)
		v = v * 10 + (s[from] - '0');
	return v;
}

/* days from 1970-01-01 to y-m-d (proleptic Gregorian) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* "YYYY-MM-DD HH:MM:SS.ffffff+00" as microseconds since 2000-01-01 */
static bool timestamptz(const char *s, size_t n, int64_t *us)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, se;

	if (n != 29 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' ||
	    s[19] != '.' || memcmp(s + 26, "+00", 3) != 0 || !digits(s, n, 0, 4) ||
	    !digits(s, n, 5, 7) || !digits(s, n, 8, 10) || !digits(s, n, 11, 13) ||
	    !digits(s, n, 14, 16) || !digits(s, n, 17, 19) || !digits(s, n, 20, 26))
		return false;
	y = num(s, 0, 4), mo = num(s, 5, 7), d = num(s, 8, 10);
	h = num(s, 11, 13), mi = num(s, 14, 16), se = num(s, 17, 19);
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
	    se > 59 || (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
		return false;
	*us = ((days_from_civil(y, mo, d) - 10957) * 86400 + h * 3600 + mi * 60 + se) * 1000000 +
	      num(s, 20, 26);
	return true;
}

static bool integer(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out)
{
	size_t i = s[0] == '-' ? 1 : 0;
	uint64_t v = 0, lim = s[0] == '-' ? (uint64_t)0 - (uint64_t)lo : (uint64_t)hi;

	if (n == i || n - i > 19 || !digits(s, n, i, n))
		return false;
	for (; i < n; i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > lim)
			return false;
	}
	*out = s[0] == '-' ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

/* v[0, n) as the binary element; false: it does not convert */
static bool element(struct evp__array *a, const char *v, size_t n)
{
	evs__buf *b = &a->bin;
	int64_t x;

	switch (a->elem) {
	case OID_INT8:
		if (!integer(v, n, INT64_MIN, INT64_MAX, &x))
			return false;
		put32(b, 8);
		put64(b, (uint64_t)x);
		return true;
	case OID_INT4:
		if (!integer(v, n, INT32_MIN, INT32_MAX, &x))
			return false;
		put32(b, 4);
		put32(b, (uint32_t)x);
		return true;
	case OID_INT2:
		if (!integer(v, n, INT16_MIN, INT16_MAX, &x))
			return false;
		put32(b, 2);
		evs__buf_putc(b, (char)(((uint64_t)x >> 8) & 0xff));
		evs__buf_putc(b, (char)((uint64_t)x & 0xff));
		return true;
	case OID_BOOL:
		if ((n == 1 && (v[0] == 't' || v[0] == 'f')) || (n == 4 && !memcmp(v, "true", 4)) ||
		    (n == 5 && !memcmp(v, "false", 5))) {
			put32(b, 1);
			evs__buf_putc(b, v[0] == 't' ? 1 : 0);
			return true;
		}
		return false;
	case OID_TIMESTAMPTZ:
		if (!timestamptz(v, n, &x))
			return false;
		put32(b, 8);
		put64(b, (uint64_t)x);
		return true;
	default: /* text, varchar */
		put32(b, (uint32_t)n);
		evs__buf_putn(b, v, n);
		return true;
	}
}

void evp__array_add(struct evp__array *a, const char *v, size_t n)
{
	if (a->n++)
		evs__buf_putc(&a->txt, ',');
	if (!v) {
		evs__buf_puts(&a->txt, "NULL");
		a->nulls = true;
		if (a->binary)
			put32(&a->bin, UINT32_MAX);
		return;
	}
	evp_array_elem(&a->txt, v, n);
	if (a->binary && !element(a, v, n))
		a->binary = false;
}

int evp__array_finish(struct evp__array *a, const char **val, int *len, int *fmt)
{
	evs__buf_putc(&a->txt, '}');
	if (a->binary && !a->bin.oom && a->bin.len <= INT32_MAX) {
		evs__buf h = {0};

		put32(&h, 1);
		put32(&h, a->nulls ? 1 : 0);
		put32(&h, a->elem);
		put32(&h, a->n);
		put32(&h, 1);
		if (h.oom) {
			evs__buf_free(&h);
			return EVP_NOMEM;
		}
		memcpy(a->bin.ptr, h.ptr, 20);
		evs__buf_free(&h);
		*val = a->bin.ptr;
		*len = (int)a->bin.len;
		*fmt = 1;
		return EVP_OK;
	}
	if (!evs__buf_cstr(&a->txt))
		return EVP_NOMEM;
	*val = a->txt.ptr;
	*len = 0;
	*fmt = 0;
	return EVP_OK;
}

void evp__array_free(struct evp__array *a)
{
	evs__buf_free(&a->txt);
	evs__buf_free(&a->bin);
}
