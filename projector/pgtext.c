/*
 * pgtext.c - a growable buffer and PostgreSQL's text formats.
 *
 * COPY text format (one row per line, fields separated by tabs): a field
 * escapes backslash, newline, carriage return and tab with a backslash;
 * NULL is \N. Array literals ({"a","b"}): every element is quoted with
 * backslash and double quote escaped. Values reach PostgreSQL only
 * through COPY data or statement parameters, never through SQL text.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evsproj.h"

#define EVP_BUF_MAX ((size_t)1 << 31) /* one buffer never grows past 2 GiB */

static bool reserve(evp_buf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	if (b->len + more + 1 > EVP_BUF_MAX) {
		b->oom = true;
		return false;
	}
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	p = realloc(b->ptr, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->ptr = p;
	b->cap = cap;
	return true;
}

void evp_buf_free(evp_buf *b)
{
	free(b->ptr);
	memset(b, 0, sizeof *b);
}

void evp_buf_putn(evp_buf *b, const void *p, size_t n)
{
	if (n == 0 || !reserve(b, n))
		return;
	memcpy(b->ptr + b->len, p, n);
	b->len += n;
}

void evp_buf_puts(evp_buf *b, const char *s)
{
	evp_buf_putn(b, s, strlen(s));
}

void evp_buf_putc(evp_buf *b, char c)
{
	if (!reserve(b, 1))
		return;
	b->ptr[b->len++] = c;
}

void evp_buf_printf(evp_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

bool evp_buf_cstr(evp_buf *b)
{
	if (!reserve(b, 0))
		return false;
	b->ptr[b->len] = '\0';
	return true;
}

void evp_copy_field(evp_buf *b, const char *p, size_t n)
{
	size_t i, start = 0;

	if (!p) {
		evp_buf_putn(b, "\\N", 2);
		return;
	}
	for (i = 0; i < n; i++) {
		const char *esc = NULL;

		switch (p[i]) {
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default: continue;
		}
		evp_buf_putn(b, p + start, i - start);
		evp_buf_putn(b, esc, 2);
		start = i + 1;
	}
	evp_buf_putn(b, p + start, n - start);
}

void evp_array_elem(evp_buf *b, const char *p, size_t n)
{
	size_t i, start = 0;

	evp_buf_putc(b, '"');
	for (i = 0; i < n; i++) {
		if (p[i] != '\\' && p[i] != '"')
			continue;
		evp_buf_putn(b, p + start, i - start);
		evp_buf_putc(b, '\\');
		evp_buf_putc(b, p[i]);
		start = i + 1;
	}
	evp_buf_putn(b, p + start, n - start);
	evp_buf_putc(b, '"');
}

void evp_time_text(evp_buf *b, int64_t ns)
{
	int64_t s = ns / 1000000000, frac = ns % 1000000000;
	time_t t;
	struct tm tm;

	if (frac < 0) {
		frac += 1000000000;
		s--;
	}
	t = (time_t)s;
	gmtime_r(&t, &tm);
	evp_buf_printf(b, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900, tm.tm_mon + 1,
		       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(frac / 1000));
}

void evp_uuid_text(evp_buf *b, const uint8_t id[16])
{
	static const char hex[] = "0123456789abcdef";
	char out[36];
	int i, o = 0;

	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[id[i] >> 4];
		out[o++] = hex[id[i] & 15];
	}
	evp_buf_putn(b, out, sizeof out);
}

bool evp_uuid_is_nil(const uint8_t id[16])
{
	int i;

	for (i = 0; i < 16; i++)
		if (id[i])
			return false;
	return true;
}

bool evp_retryable(PGconn *conn, const PGresult *res)
{
	const char *ss = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (PQstatus(conn) != CONNECTION_OK || !ss)
		return true;
	return strncmp(ss, "08", 2) == 0 || strncmp(ss, "57P", 3) == 0 ||
	       strcmp(ss, "40001") == 0 || strcmp(ss, "40P01") == 0;
}

static void put_be(evp_buf *b, uint64_t v, int bytes)
{
	unsigned char x[8];
	int i;

	for (i = bytes - 1; i >= 0; i--) {
		x[i] = (unsigned char)v;
		v >>= 8;
	}
	evp_buf_putn(b, x, (size_t)bytes);
}

void evp_bin_header(evp_buf *b)
{
	evp_buf_putn(b, "PGCOPY\n\377\r\n\0", 11);
	put_be(b, 0, 4);
	put_be(b, 0, 4);
}

void evp_bin_trailer(evp_buf *b)
{
	put_be(b, 0xffff, 2);
}

void evp_bin_row(evp_buf *b, int nfields)
{
	put_be(b, (uint64_t)nfields, 2);
}

void evp_bin_null(evp_buf *b)
{
	put_be(b, 0xffffffffu, 4);
}

void evp_bin_i32(evp_buf *b, int32_t v)
{
	put_be(b, 4, 4);
	put_be(b, (uint32_t)v, 4);
}

void evp_bin_i64(evp_buf *b, int64_t v)
{
	put_be(b, 8, 4);
	put_be(b, (uint64_t)v, 8);
}

void evp_bin_bytes(evp_buf *b, const void *p, size_t n)
{
	put_be(b, (uint32_t)n, 4);
	evp_buf_putn(b, p, n);
}

void evp_bin_time(evp_buf *b, int64_t ns)
{
	int64_t us = ns / 1000;

	if (ns % 1000 < 0)
		us--; /* floor, like the text form */
	evp_bin_i64(b, us - 946684800000000LL);
}

void evp_bin_jsonb(evp_buf *b, const char *json, size_t n)
{
	put_be(b, (uint32_t)(n + 1), 4);
	evp_buf_putc(b, 1);
	evp_buf_putn(b, json, n);
}
