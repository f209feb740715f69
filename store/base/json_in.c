/*
 * json_in.c: msgpack of a JSON text (mpjson.h, where the number policy is
 * drawn). A small reader of its own rather than json-c: json-c clamps
 * integer tokens that overflow 64 bits (PostgreSQL prints the double
 * 1e300 as 301 digits) and decides a number's kind itself, where the
 * policy needs the token's text. It writes msgpack straight into the
 * caller's buffer, so reading a stored state back costs no allocation
 * beyond that buffer's growth.
 *
 * A container's or string's length is known only at its end: the reader
 * leaves room for the largest header (5 bytes), writes the body, then
 * writes the smallest header that holds the count and moves the body
 * down, so the bytes are what msgpack-c's packer would have written.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "mpjson.h"
#include "utf8.h"

#define HOLE 5 /* the largest str/array/map header */

struct reader {
	const char *s;
	size_t n, i;
	evs__buf *out;
	msgpack_packer pk;
	unsigned flags;
	char *err;
	size_t errlen;
};

static int fail(struct reader *r, const char *what)
{
	if (r->err && r->errlen)
		snprintf(r->err, r->errlen, "%s at column %zu", what, r->i + 1);
	return -1;
}

static int buf_write(void *data, const char *p, size_t n)
{
	evs__buf *b = data;

	evs__buf_putn(b, p, n);
	return b->oom ? -1 : 0;
}

static void skip_ws(struct reader *r)
{
	while (r->i < r->n && (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' ||
			       r->s[r->i] == '\r'))
		r->i++;
}

/* Leave room for a header at the end of out; its offset. */
static size_t open_hole(struct reader *r)
{
	size_t at = r->out->len;

	evs__buf_putn(r->out, "\0\0\0\0\0", HOLE);
	return at;
}

/* Write the smallest header of `kind` (fix, 16-bit, 32-bit first bytes)
 * for count into the hole at `at` and close the gap. */
static int close_hole(struct reader *r, size_t at, uint64_t count, unsigned fix, unsigned fixmax,
		      unsigned c8, unsigned c16, unsigned c32)
{
	unsigned char h[HOLE];
	size_t hl, body;
	evs__buf *b = r->out;

	if (b->oom)
		return fail(r, "out of memory");
	if (count > UINT32_MAX)
		return fail(r, "value too long");
	if (count <= fixmax) {
		h[0] = (unsigned char)(fix | count);
		hl = 1;
	} else if (c8 && count <= 0xff) {
		h[0] = (unsigned char)c8;
		h[1] = (unsigned char)count;
		hl = 2;
	} else if (count <= 0xffff) {
		h[0] = (unsigned char)c16;
		h[1] = (unsigned char)(count >> 8);
		h[2] = (unsigned char)count;
		hl = 3;
	} else {
		h[0] = (unsigned char)c32;
		for (int k = 0; k < 4; k++)
			h[1 + k] = (unsigned char)(count >> (24 - 8 * k));
		hl = 5;
	}
	body = b->len - at - HOLE;
	memcpy(b->ptr + at, h, hl);
	memmove(b->ptr + at + hl, b->ptr + at + HOLE, body);
	b->len -= HOLE - hl;
	return 0;
}

static int hex4(struct reader *r, uint32_t *out)
{
	uint32_t v = 0;

	if (r->n - r->i < 4)
		return -1;
	for (int k = 0; k < 4; k++) {
		char c = r->s[r->i++];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void put_utf8(evs__buf *b, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	evs__buf_putn(b, u, n);
}

/* \uXXXX (the 'u' consumed), with a surrogate pair when it starts one. */
static int unicode_escape(struct reader *r)
{
	uint32_t cp, lo;

	if (hex4(r, &cp) != 0)
		return fail(r, "invalid \\u escape");
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return fail(r, "lone low surrogate in \\u escape");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (r->n - r->i < 2 || r->s[r->i] != '\\' || r->s[r->i + 1] != 'u')
			return fail(r, "lone high surrogate in \\u escape");
		r->i += 2;
		if (hex4(r, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
			return fail(r, "invalid surrogate pair in \\u escape");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	put_utf8(r->out, cp);
	return 0;
}

/* A string (at its opening quote) as msgpack str. */
static int string(struct reader *r)
{
	size_t at = open_hole(r), start;

	r->i++;
	for (;;) {
		const uint8_t *u = (const uint8_t *)r->s;
		size_t k;

		start = r->i;
		while (r->i < r->n && u[r->i] >= 0x20 && u[r->i] < 0x80 && u[r->i] != '"' &&
		       u[r->i] != '\\')
			r->i++;
		evs__buf_putn(r->out, r->s + start, r->i - start);
		if (r->i >= r->n)
			return fail(r, "unterminated string");
		if (u[r->i] == '"')
			break;
		if (u[r->i] < 0x20)
			return fail(r, "control character in string");
		if (u[r->i] >= 0x80) {
			k = evs__utf8_seq(u + r->i, r->n - r->i);
			if (k == 0)
				return fail(r, "invalid UTF-8 in string");
			evs__buf_putn(r->out, r->s + r->i, k);
			r->i += k;
			continue;
		}
		/* a backslash */
		if (++r->i >= r->n)
			return fail(r, "unterminated string");
		switch (r->s[r->i++]) {
		case '"': evs__buf_putc(r->out, '"'); break;
		case '\\': evs__buf_putc(r->out, '\\'); break;
		case '/': evs__buf_putc(r->out, '/'); break;
		case 'b': evs__buf_putc(r->out, '\b'); break;
		case 'f': evs__buf_putc(r->out, '\f'); break;
		case 'n': evs__buf_putc(r->out, '\n'); break;
		case 'r': evs__buf_putc(r->out, '\r'); break;
		case 't': evs__buf_putc(r->out, '\t'); break;
		case 'u':
			if (unicode_escape(r) != 0)
				return -1;
			break;
		default: r->i--; return fail(r, "invalid escape in string");
		}
	}
	r->i++; /* the closing quote */
	return close_hole(r, at, r->out->len - at - HOLE, 0xa0, 31, 0xd9, 0xda, 0xdb);
}

static size_t digits(struct reader *r)
{
	size_t start = r->i;

	while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9')
		r->i++;
	return r->i - start;
}

/* The token's magnitude if it is at most max; false on overflow. */
static bool magnitude(const char *p, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	for (size_t k = 0; k < n; k++) {
		unsigned d = (unsigned)(p[k] - '0');

		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

bool evs__json_integer_fits(const char *p, size_t n)
{
	bool neg = n > 0 && p[0] == '-';
	uint64_t mag;

	if (neg) {
		p++;
		n--;
	}
	return n > 0 && magnitude(p, n, neg ? (uint64_t)INT64_MAX + 1 : UINT64_MAX, &mag);
}

static int number(struct reader *r)
{
	size_t start = r->i, intlen;
	bool neg = false, integer = true;
	char small[64], *text;
	uint64_t mag;
	double d;
	int rc;

	if (r->s[r->i] == '-') {
		neg = true;
		r->i++;
	}
	intlen = digits(r);
	if (intlen == 0 || (intlen > 1 && r->s[r->i - intlen] == '0'))
		return fail(r, "invalid number");
	if (r->i < r->n && r->s[r->i] == '.') {
		integer = false;
		r->i++;
		if (digits(r) == 0)
			return fail(r, "invalid number");
	}
	if (r->i < r->n && (r->s[r->i] == 'e' || r->s[r->i] == 'E')) {
		integer = false;
		r->i++;
		if (r->i < r->n && (r->s[r->i] == '+' || r->s[r->i] == '-'))
			r->i++;
		if (digits(r) == 0)
			return fail(r, "invalid number");
	}
	if (integer) {
		const char *p = r->s + r->i - intlen;

		if (neg && magnitude(p, intlen, (uint64_t)INT64_MAX + 1, &mag))
			return msgpack_pack_int64(&r->pk, (int64_t)(0 - mag));
		if (!neg && magnitude(p, intlen, UINT64_MAX, &mag))
			return msgpack_pack_uint64(&r->pk, mag);
		if (r->flags & EVS__JSON_STRICT) {
			r->i = start;
			return fail(r,
				    "integer out of range (integers must fit in 64 bits; write a "
				    "fraction or exponent for a float)");
		}
	}
	/* strtod needs a terminated copy: the text is not ours to end */
	text = r->i - start < sizeof small ? small : malloc(r->i - start + 1);
	if (!text)
		return fail(r, "out of memory");
	memcpy(text, r->s + start, r->i - start);
	text[r->i - start] = '\0';
	d = strtod(text, NULL);
	if (text != small)
		free(text);
	if (!isfinite(d) && (r->flags & EVS__JSON_STRICT)) {
		r->i = start;
		return fail(r, "number out of range");
	}
	rc = msgpack_pack_double(&r->pk, d);
	return rc;
}

static int value(struct reader *r, int depth);

/* An array or object (at its opening bracket). */
static int container(struct reader *r, int depth)
{
	bool map = r->s[r->i] == '{';
	char close = map ? '}' : ']';
	size_t at = open_hole(r);
	uint64_t count = 0;

	if (depth >= EVS__JSON_DEPTH)
		return fail(r, "JSON nested too deeply");
	r->i++;
	skip_ws(r);
	if (r->i < r->n && r->s[r->i] == close) {
		r->i++;
		goto done;
	}
	for (;;) {
		skip_ws(r);
		if (map) {
			if (r->i >= r->n || r->s[r->i] != '"')
				return fail(r, "expected a string key");
			if (string(r) != 0)
				return -1;
			skip_ws(r);
			if (r->i >= r->n || r->s[r->i] != ':')
				return fail(r, "expected ':'");
			r->i++;
		}
		if (value(r, depth + 1) != 0)
			return -1;
		count++;
		skip_ws(r);
		if (r->i < r->n && r->s[r->i] == ',') {
			r->i++;
			continue;
		}
		if (r->i < r->n && r->s[r->i] == close) {
			r->i++;
			break;
		}
		return fail(r, map ? "expected ',' or '}'" : "expected ',' or ']'");
	}
done:
	if (map)
		return close_hole(r, at, count, 0x80, 15, 0, 0xde, 0xdf);
	return close_hole(r, at, count, 0x90, 15, 0, 0xdc, 0xdd);
}

static int literal(struct reader *r, const char *word, int (*pack)(msgpack_packer *))
{
	size_t len = strlen(word);

	if (r->n - r->i < len || memcmp(r->s + r->i, word, len) != 0)
		return fail(r, "invalid token");
	r->i += len;
	return pack(&r->pk);
}

static int value(struct reader *r, int depth)
{
	skip_ws(r);
	if (r->i >= r->n)
		return fail(r, "unexpected end of JSON input");
	switch (r->s[r->i]) {
	case '{':
	case '[': return container(r, depth);
	case '"': return string(r);
	case 't': return literal(r, "true", msgpack_pack_true);
	case 'f': return literal(r, "false", msgpack_pack_false);
	case 'n': return literal(r, "null", msgpack_pack_nil);
	default:
		if (r->s[r->i] == '-' || (r->s[r->i] >= '0' && r->s[r->i] <= '9'))
			return number(r);
		return fail(r, "invalid token");
	}
}

int evs__json_to_msgpack(const char *s, size_t n, evs__buf *out, unsigned flags, char *err,
			 size_t errlen)
{
	struct reader r = {
		.s = s, .n = n, .out = out, .flags = flags, .err = err, .errlen = errlen};
	size_t mark = out->len;
	int rc;

	if (out->oom)
		return fail(&r, "out of memory");
	msgpack_packer_init(&r.pk, out, buf_write);
	rc = value(&r, 0);
	if (rc == 0) {
		skip_ws(&r);
		if (r.i != n)
			rc = fail(&r, "trailing characters after the JSON value");
	}
	if (out->oom)
		rc = fail(&r, "out of memory");
	if (rc != 0) {
		out->len = mark;
		out->oom = false; /* the caller's buffer stays usable */
		return -1;
	}
	return 0;
}
