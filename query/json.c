/*
 * json.c - the JSON envelope of answers. Read-model values (jsonb) are
 * copied verbatim from PostgreSQL's output, which is valid JSON, so they
 * are never decoded and re-encoded (no loss of number precision, no cost
 * per request); only the envelope's strings are escaped here.
 */
#include <stdio.h>

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

void evsq__json_str(evp_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	evp_buf_putc(b, '"');
	while (*p) {
		size_t n;

		switch (*p) {
		case '"':
			evp_buf_puts(b, "\\\"");
			p++;
			continue;
		case '\\':
			evp_buf_puts(b, "\\\\");
			p++;
			continue;
		case '\n':
			evp_buf_puts(b, "\\n");
			p++;
			continue;
		case '\t':
			evp_buf_puts(b, "\\t");
			p++;
			continue;
		case '\r':
			evp_buf_puts(b, "\\r");
			p++;
			continue;
		default: break;
		}
		if (*p < 0x20) {
			evp_buf_printf(b, "\\u%04x", *p);
			p++;
			continue;
		}
		n = utf8_len(p);
		if (n == 0) {
			evp_buf_puts(b, "\\ufffd");
			p++;
			continue;
		}
		evp_buf_putn(b, p, n);
		p += n;
	}
	evp_buf_putc(b, '"');
}
