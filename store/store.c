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
