/*
 * store.c - small things every file of the store uses: default options,
 * the clock, and the rules for names (stream ids and event types).
 */
#include <string.h>
#include <time.h>

#include "internal.h"

void evs_options_init(evs_options *o)
{
	memset(o, 0, sizeof *o);
	o->create = 1;
	o->sync = EVS_SYNC_FULL;
}

int64_t evs__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF)
 * and no NUL. */
bool evs__utf8_text(const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n;

	while (p < end) {
		uint8_t c = *p;
		if (c >= 0x01 && c < 0x80) {
			p++;
			continue;
		}
		int k;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false; /* NUL, continuation byte or invalid lead */
		}
		if (end - p <= k)
			return false;
		for (int i = 1; i <= k; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		p += k + 1;
	}
	return true;
}

/* Stream ids and types: 1..EVS_MAX_NAME bytes of valid UTF-8, no NUL. */
int evs__check_name(const char *name, size_t *len)
{
	size_t n;

	if (name == NULL || (n = strnlen(name, EVS_MAX_NAME + 1)) == 0)
		return 0;
	if (n > EVS_MAX_NAME)
		return -1;
	if (!evs__utf8_text((const uint8_t *)name, n))
		return -2;
	*len = n;
	return 1;
}
