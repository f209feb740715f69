/*
 * base64.c - RFC 4648 base64 (standard alphabet, '=' padding).
 *
 * Used by export/import for payloads that JSON cannot carry exactly
 * ("data_msgpack"). None of the tool's dependencies (json-c, libuuid,
 * msgpack-c) exposes base64, so it is here: small and strict. The decoder
 * accepts exactly what the encoder writes (padding required, no
 * whitespace, unused trailing bits zero), so decode and encode are
 * inverse and export -> import -> export is byte-identical.
 */
#include <stdlib.h>

#include "cli.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void cli_base64_encode(struct jbuf *b, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;
	char *o;

	jb_reserve(b, (n + 2) / 3 * 4);
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
	b->ptr[b->len] = '\0';
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

int cli_base64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
	uint8_t *buf, *o;
	size_t i;

	if (n % 4 != 0)
		return -1;
	buf = cli_xmalloc(n / 4 * 3);
	o = buf;
	for (i = 0; i < n; i += 4) {
		int a = value_of(s[i]), b = value_of(s[i + 1]);
		int c = value_of(s[i + 2]), d = value_of(s[i + 3]);
		bool last = i + 4 == n;

		if (a < 0 || b < 0)
			goto bad;
		if (last && s[i + 2] == '=' && s[i + 3] == '=') {
			if (b & 15)
				goto bad;
			*o++ = (uint8_t)(a << 2 | b >> 4);
			break;
		}
		if (c < 0)
			goto bad;
		if (last && s[i + 3] == '=') {
			if (c & 3)
				goto bad;
			*o++ = (uint8_t)(a << 2 | b >> 4);
			*o++ = (uint8_t)((b & 15) << 4 | c >> 2);
			break;
		}
		if (d < 0)
			goto bad;
		*o++ = (uint8_t)(a << 2 | b >> 4);
		*o++ = (uint8_t)((b & 15) << 4 | c >> 2);
		*o++ = (uint8_t)((c & 3) << 6 | d);
	}
	*out = buf;
	*outlen = (size_t)(o - buf);
	return 0;
bad:
	free(buf);
	return -1;
}
