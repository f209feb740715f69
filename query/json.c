/*
 * json.c - the JSON envelope of answers. Read-model values (jsonb) are
 * copied verbatim from PostgreSQL's output, which is valid JSON, so they
 * are never decoded and re-encoded (no loss of number precision, no cost
 * per request); the envelope's strings (error messages, ids) are made
 * JSON by json-c here.
 */
#include <stdio.h>

#include <json.h>

#include "internal.h"

/* Length of a valid UTF-8 sequence at p, or 0. */
static size_t utf8_len(const unsigned char *p)
{
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f))
			return 0;
		return 3;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
			return 0;
		if ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

bool evsq__utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = utf8_len(p);

		if (!n)
			return false;
		p += n;
	}
	return true;
}

void evsq__json_str(evs__buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	evs__buf clean = {0};
	json_object *o;

	/* json-c copies bytes through as they are: make the text valid
	 * UTF-8 first (a request may carry any bytes) */
	while (*p) {
		size_t n = utf8_len(p);

		if (n) {
			evs__buf_putn(&clean, p, n);
			p += n;
		} else {
			evs__buf_puts(&clean, "\xef\xbf\xbd"); /* U+FFFD */
			p++;
		}
	}
	if (!evs__buf_cstr(&clean)) {
		b->oom = true;
		return;
	}
	o = json_object_new_string(clean.ptr);
	if (!o) {
		b->oom = true;
	} else {
		evs__buf_puts(b,
			     json_object_to_json_string_ext(
				     o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	}
	evs__buf_free(&clean);
}
