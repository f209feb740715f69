/* base64.c: RFC 4648 base64 (base64.h). */
#include "base64.h"

#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void evs__base64_encode(evs__buf *b, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;
	char *o;

	if (n == 0 || evs__buf_reserve(b, (n + 2) / 3 * 4) != 0)
		return;
	o = b->ptr + b->len;
	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = alphabet[(v >> 6) & 63];
		*o++ = alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)s[i] << 16;

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = '=';
		*o++ = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = alphabet[(v >> 6) & 63];
		*o++ = '=';
	}
	b->len = (size_t)(o - b->ptr);
}

static int value_of(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int evs__base64_decode(evs__buf *out, const char *s, size_t n)
{
	size_t mark = out->len, i;
	unsigned char *o;

	if (n % 4 != 0)
		return -1;
	if (n == 0)
		return 0;
	if (evs__buf_reserve(out, n / 4 * 3) != 0)
		return -1;
	o = (unsigned char *)out->ptr + out->len;
	for (i = 0; i < n; i += 4) {
		int a = value_of(s[i]), b = value_of(s[i + 1]);
		int c = value_of(s[i + 2]), d = value_of(s[i + 3]);
		int last = i + 4 == n;

		if (a < 0 || b < 0)
			goto bad;
		if (last && s[i + 2] == '=' && s[i + 3] == '=') {
			if (b & 15)
				goto bad;
			*o++ = (unsigned char)(a << 2 | b >> 4);
			break;
		}
		if (c < 0)
			goto bad;
		if (last && s[i + 3] == '=') {
			if (c & 3)
				goto bad;
			*o++ = (unsigned char)(a << 2 | b >> 4);
			*o++ = (unsigned char)((b & 15) << 4 | c >> 2);
			break;
		}
		if (d < 0)
			goto bad;
		*o++ = (unsigned char)(a << 2 | b >> 4);
		*o++ = (unsigned char)((b & 15) << 4 | c >> 2);
		*o++ = (unsigned char)((c & 3) << 6 | d);
	}
	out->len = (size_t)((char *)o - out->ptr);
	return 0;
bad:
	out->len = mark;
	return -1;
}
