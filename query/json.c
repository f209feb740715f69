/*
 * json.c - the JSON envelope of answers. Read-model values (jsonb) are
 * copied from PostgreSQL's output, which is valid JSON, so they are never
 * decoded into objects (no cost per value beyond one pass over the text);
 * the envelope's strings (error messages, ids) are escaped by the base
 * (mpjson.h), bytes that are not UTF-8 replaced, as a request may carry
 * any bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void evsq__json_str(evs__buf *b, const char *s)
{
	evs__json_str_lossy(b, s, strlen(s));
}

/* Whether the integer token p[0..n) (optional '-', digits) fits int64
 * (negative) or uint64. */
static bool integer_fits(const char *p, size_t n)
{
	bool neg = p[0] == '-';
	const char *lim = neg ? "9223372036854775808" : "18446744073709551615";
	size_t limlen = strlen(lim);

	if (neg) {
		p++;
		n--;
	}
	if (n != limlen)
		return n < limlen;
	return memcmp(p, lim, n) <= 0;
}

/* One number token, rewritten by the base's policy when it is a double. */
static void put_number(evs__buf *out, const char *p, size_t n)
{
	char small[64], *text;
	double d;

	if (!memchr(p, '.', n) && !memchr(p, 'e', n) && !memchr(p, 'E', n) && integer_fits(p, n)) {
		evs__buf_putn(out, p, n);
		return;
	}
	text = n < sizeof small ? small : malloc(n + 1);
	if (!text) {
		out->oom = true;
		return;
	}
	memcpy(text, p, n);
	text[n] = '\0';
	d = strtod(text, NULL);
	if (text != small)
		free(text);
	if (evs__json_double(out, d) != 0)
		evs__buf_putn(out, p, n); /* past the double range: as PostgreSQL wrote it */
}

void evsq__json_numbers(evs__buf *out, const char *s, size_t n)
{
	size_t i = 0, start;

	while (i < n) {
		start = i;
		if (s[i] == '"') {
			/* a string: copy it whole, digits in it are not numbers */
			for (i++; i < n && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			i = i < n ? i + 1 : n;
			evs__buf_putn(out, s + start, i - start);
		} else if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) {
			while (i < n && strchr("+-0123456789.eE", s[i]) && s[i] != '\0')
				i++;
			put_number(out, s + start, i - start);
		} else {
			while (i < n && s[i] != '"' && s[i] != '-' && (s[i] < '0' || s[i] > '9'))
				i++;
			evs__buf_putn(out, s + start, i - start);
		}
	}
}
