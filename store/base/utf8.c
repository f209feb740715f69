/* utf8.c: the UTF-8 validator (utf8.h). */
#include "utf8.h"

size_t evs__utf8_seq(const uint8_t *s, size_t n)
{
	uint8_t c;
	size_t len, i;
	uint32_t cp;

	if (n == 0)
		return 0;
	c = s[0];
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
		return 0; /* continuation byte, overlong lead or past U+10FFFF */
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool evs__utf8_text(const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n;

	while (p < end) {
		size_t k;

		/* the ASCII run is the common case: no call per byte */
		if (*p >= 0x01 && *p < 0x80) {
			p++;
			continue;
		}
		if (*p == 0 || (k = evs__utf8_seq(p, (size_t)(end - p))) == 0)
			return false;
		p += k;
	}
	return true;
}
