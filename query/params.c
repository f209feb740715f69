/*
 * params.c - the syntax of parameter values: RFC 3339 timestamps and positions.
 * Values are validated here (400 with a message) and then sent to
 * PostgreSQL as statement parameters, never pasted into SQL.
 */
#include <string.h>

#include "internal.h"
#include "rfc3339.h"

/* The base's RFC 3339 reader (rfc3339.h), with what the service
 * accepts on top: years from 0001 (PostgreSQL has no year 0 in
 * timestamptz) and at most nine fractional digits. */
static bool read_time(const char *s, struct evs__rfc3339 *f)
{
	const char *why;

	return evs__rfc3339_fields(s, strlen(s), f, &why) == 0 && f->year >= 1 &&
	       f->frac_digits <= 9;
}

bool evsq__rfc3339_valid(const char *s)
{
	struct evs__rfc3339 f;

	return read_time(s, &f);
}

bool evsq__parse_u63(const char *s, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	/* no length cap: leading zeros are digits like any other, and the
	 * overflow check below bounds the value */
	if (!s[0])
		return false;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* Digits past the microsecond are cut, never rounded up: a time 0.9 us
 * before an event is before it (the read model keeps microseconds; the
 * store adds the rest of the us). */
int64_t evsq__rfc3339_us(const char *s)
{
	struct evs__rfc3339 f;

	if (!read_time(s, &f))
		return 0;
	return evs__rfc3339_epoch_s(&f) * 1000000 + f.frac_ns / 1000;
}
