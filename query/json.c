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

/* One number token, rewritten by the base's policy when it is a double. */
static void put_number(evs__buf *out, const char *p, size_t n)
{
	char small[64], *text;
	double d;

	if (!memchr(p, '.', n) && !memchr(p, 'e', n) && !memchr(p, 'E', n) &&
	    evs__json_integer_fits(p, n)) {
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
	evsq__json_copy(out, s, n, true, false);
}

void evsq__json_copy(evs__buf *out, const char *s, size_t n, bool numbers, bool compact)
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
			if (numbers)
				put_number(out, s + start, i - start);
			else
				evs__buf_putn(out, s + start, i - start);
		} else if (compact && strchr(" \t\r\n", s[i]) && s[i] != '\0') {
			i++; /* white space between tokens */
		} else {
			while (i < n && s[i] != '"' && s[i] != '-' && (s[i] < '0' || s[i] > '9') &&
			       !(compact && strchr(" \t\r\n", s[i]) && s[i] != '\0'))
				i++;
			evs__buf_putn(out, s + start, i - start);
		}
	}
}
