/*
 * uuid.c - UUIDv7 event ids (RFC 9562 section 5.7).
 *
 * Debian 12's libuuid (2.38) predates UUIDv7, so the 16 bytes are laid out
 * here: 48-bit Unix time in milliseconds, version 7, 74 bits from
 * getrandom(). Time-ordered ids keep inserts into the id index local.
 */
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

void evs_uuid_v7(uint8_t out[16])
{
	struct timespec ts;
	uint64_t ms;
	size_t got = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	while (got < 10) {
		ssize_t n = getrandom(out + 6 + got, 10 - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
	for (int i = 5; i >= 0; i--, ms >>= 8)
		out[i] = (uint8_t)ms;
	out[6] = (uint8_t)(0x70 | (out[6] & 0x0f));
	out[8] = (uint8_t)(0x80 | (out[8] & 0x3f));
}

void evs__uuid_text(const uint8_t id[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	int j = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[id[i] >> 4];
		out[j++] = hex[id[i] & 15];
	}
	out[j] = 0;
}
