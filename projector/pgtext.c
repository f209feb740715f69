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



void evp_copy_field(evs__buf *b, const char *p, size_t n)
{
	size_t i, start = 0;

	if (!p) {
		evs__buf_putn(b, "\\N", 2);
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
		evs__buf_putn(b, p + start, i - start);
		evs__buf_putn(b, esc, 2);
		start = i + 1;
	}
	evs__buf_putn(b, p + start, n - start);
}

void evp_array_elem(evs__buf *b, const char *p, size_t n)
{
	size_t i, start = 0;

	evs__buf_putc(b, '"');
	for (i = 0; i < n; i++) {
		if (p[i] != '\\' && p[i] != '"')
			continue;
		evs__buf_putn(b, p + start, i - start);
		evs__buf_putc(b, '\\');
		evs__buf_putc(b, p[i]);
		start = i + 1;
	}
	evs__buf_putn(b, p + start, n - start);
	evs__buf_putc(b, '"');
}

void evp_time_text(evs__buf *b, int64_t ns)
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
	evs__buf_printf(b, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900, tm.tm_mon + 1,
		       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(frac / 1000));
}

void evp_uuid_text(evs__buf *b, const uint8_t id[16])
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
	evs__buf_putn(b, out, sizeof out);
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

static void put_be(evs__buf *b, uint64_t v, int bytes)
{
	unsigned char x[8];
	int i;

	for (i = bytes - 1; i >= 0; i--) {
		x[i] = (unsigned char)v;
		v >>= 8;
	}
	evs__buf_putn(b, x, (size_t)bytes);
}

void evp_bin_header(evs__buf *b)
{
	evs__buf_putn(b, "PGCOPY\n\377\r\n\0", 11);
	put_be(b, 0, 4);
	put_be(b, 0, 4);
}

void evp_bin_trailer(evs__buf *b)
{
	put_be(b, 0xffff, 2);
}

void evp_bin_row(evs__buf *b, int nfields)
{
	put_be(b, (uint64_t)nfields, 2);
}

void evp_bin_null(evs__buf *b)
{
	put_be(b, 0xffffffffu, 4);
}

void evp_bin_i32(evs__buf *b, int32_t v)
{
	put_be(b, 4, 4);
	put_be(b, (uint32_t)v, 4);
}

void evp_bin_i64(evs__buf *b, int64_t v)
{
	put_be(b, 8, 4);
	put_be(b, (uint64_t)v, 8);
}

void evp_bin_bytes(evs__buf *b, const void *p, size_t n)
{
	put_be(b, (uint32_t)n, 4);
	evs__buf_putn(b, p, n);
}

void evp_bin_time(evs__buf *b, int64_t ns)
{
	int64_t us = ns / 1000;

	if (ns % 1000 < 0)
		us--; /* floor, like the text form */
	evp_bin_i64(b, us - 946684800000000LL);
}

void evp_bin_jsonb(evs__buf *b, const char *json, size_t n)
{
	put_be(b, (uint32_t)(n + 1), 4);
	evs__buf_putc(b, 1);
	evs__buf_putn(b, json, n);
}
