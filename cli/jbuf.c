/*
 * jbuf.c - a growable output buffer and the JSON text the tool writes.
 *
 * The writer is ours rather than json-c's so that the text is exactly
 * what export promises: strings escape only '"', '\\' and control
 * characters (UTF-8 passes through, '/' is not escaped), and floats use
 * the shortest digits that read back as the same double, always with a
 * '.' or an exponent so they read back as floats and not integers.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "cli.h"

void jb_init(struct jbuf *b)
{
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
}

void jb_free(struct jbuf *b)
{
	free(b->ptr);
	jb_init(b);
}

void jb_reserve(struct jbuf *b, size_t more)
{
	size_t need = b->len + more + 1; /* room for a NUL */
	size_t cap = b->cap ? b->cap : 256;

	if (need <= b->cap)
		return;
	if (need < b->len) {
		cli_error("out of memory");
		exit(CLI_EXIT_FAIL);
	}
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	b->ptr = cli_xrealloc(b->ptr, cap);
	b->cap = cap;
}

void jb_putc(struct jbuf *b, char c)
{
	jb_reserve(b, 1);
	b->ptr[b->len++] = c;
	b->ptr[b->len] = '\0';
}

void jb_putn(struct jbuf *b, const void *p, size_t n)
{
	jb_reserve(b, n);
	memcpy(b->ptr + b->len, p, n);
	b->len += n;
	b->ptr[b->len] = '\0';
}

void jb_puts(struct jbuf *b, const char *s)
{
	jb_putn(b, s, strlen(s));
}

void jb_printf(struct jbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof tmp) {
		jb_putn(b, tmp, (size_t)n);
		return;
	}
	jb_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int jb_str(struct jbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t mark = b->len, i = 0, run;

	jb_reserve(b, n + 2);
	jb_putc(b, '"');
	while (i < n) {
		/* copy the longest run that needs no escape */
		for (run = i; run < n;) {
			size_t k;

			if (u[run] < 0x20 || u[run] == '"' || u[run] == '\\')
				break;
			k = utf8_seq(u + run, n - run);
			if (k == 0) {
				b->len = mark;
				b->ptr[mark] = '\0';
				return -1;
			}
			run += k;
		}
		jb_putn(b, s + i, run - i);
		if (run == n)
			break;
		i = run;
		switch (u[i]) {
		case '"': jb_puts(b, "\\\""); break;
		case '\\': jb_puts(b, "\\\\"); break;
		case '\b': jb_puts(b, "\\b"); break;
		case '\f': jb_puts(b, "\\f"); break;
		case '\n': jb_puts(b, "\\n"); break;
		case '\r': jb_puts(b, "\\r"); break;
		case '\t': jb_puts(b, "\\t"); break;
		default: {
			char e[6] = {'\\', 'u', '0', '0', hex[u[i] >> 4], hex[u[i] & 15]};

			jb_putn(b, e, sizeof e);
		}
		}
		i++;
	}
	jb_putc(b, '"');
	return 0;
}

void jb_u64(struct jbuf *b, uint64_t v)
{
	jb_printf(b, "%llu", (unsigned long long)v);
}

void jb_i64(struct jbuf *b, int64_t v)
{
	jb_printf(b, "%lld", (long long)v);
}

int jb_f64(struct jbuf *b, double d)
{
	char tmp[40];
	int prec;

	if (!isfinite(d))
		return -1;
	for (prec = 15; prec < 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	if (prec == 17)
		snprintf(tmp, sizeof tmp, "%.17g", d);
	jb_puts(b, tmp);
	if (!strpbrk(tmp, ".eE"))
		jb_puts(b, ".0");
	return 0;
}

void jb_uuid(struct jbuf *b, const uint8_t id[16])
{
	char text[37];

	uuid_unparse_lower(id, text);
	jb_putc(b, '"');
	jb_putn(b, text, 36);
	jb_putc(b, '"');
}

void jb_time(struct jbuf *b, int64_t ns)
{
	char text[CLI_TIME_LEN];

	cli_time_format(ns, text);
	jb_putc(b, '"');
	jb_puts(b, text);
	jb_putc(b, '"');
}

int jb_write(const struct jbuf *b, FILE *f)
{
	if (b->len && fwrite(b->ptr, 1, b->len, f) != b->len)
		return -1;
	return 0;
}
