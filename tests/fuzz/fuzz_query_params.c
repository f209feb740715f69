/*
 * fuzz_query_params.c - libFuzzer target over evs-query's query-parameter
 * parsers (query/params.c): evsq__rfc3339_valid, evsq__rfc3339_us and
 * evsq__parse_u63.
 *
 * Input: the whole input as a C string (an exact-size NUL-terminated
 * copy, so ASan sees any read past the NUL). Properties:
 *
 *   - evsq__rfc3339_valid agrees with a reference validator written
 *     independently here, which checks the calendar date with timegm():
 *     a date is real when timegm() + gmtime_r() give the same Y-M-D back.
 *   - a valid text converts to the same microsecond every time, whatever
 *     follows its NUL, and to the reference value: timegm() of the fields
 *     minus the offset, plus the fraction cut to the microsecond (digits
 *     past the 6th never round up: 0.9 us before an event is before it).
 *   - the canonical "YYYY-MM-DDTHH:MM:SS.ffffffZ" rendering of that
 *     microsecond (when its year is 0001..9999) is valid again and maps to
 *     the same microsecond.
 *   - evsq__parse_u63 agrees with a reference: non-empty, digits only,
 *     value <= INT64_MAX (strtoll without ERANGE); no sign, no space.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "fuzz.h"

static bool num(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* The reference: RFC 3339 section 5.6 date-time (with 't', ' ', 'z'),
 * years 0001..9999, second 60 allowed (leap second), offsets up to
 * +-23:59. On success *us_out is its microsecond since the epoch. */
static bool ref_rfc3339(const char *s, int64_t *us_out)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	int64_t frac = 0;
	size_t p, len = strlen(s);
	struct tm tm, back;
	time_t t;

	if (len < 20)
		return false;
	if (!num(s, 4, &y) || s[4] != '-' || !num(s + 5, 2, &mo) || s[7] != '-' ||
	    !num(s + 8, 2, &d) || !strchr("Tt ", s[10]) || !num(s + 11, 2, &h) || s[13] != ':' ||
	    !num(s + 14, 2, &mi) || s[16] != ':' || !num(s + 17, 2, &sec))
		return false;
	p = 19;
	if (s[p] == '.') {
		size_t first = ++p;
		int digits = 0;

		while (s[p] >= '0' && s[p] <= '9') {
			if (digits < 6) /* past the microsecond: cut, never rounded */
				frac = frac * 10 + (s[p] - '0');
			digits++;
			p++;
		}
		if (p == first || digits > 9)
			return false;
		for (; digits < 6; digits++)
			frac *= 10;
	}
	if ((s[p] == 'Z' || s[p] == 'z') && s[p + 1] == '\0') {
		sign = 0;
	} else if (s[p] == '+' || s[p] == '-') {
		sign = s[p] == '-' ? -1 : 1;
		if (!num(s + p + 1, 2, &oh) || s[p + 3] != ':' || !num(s + p + 4, 2, &om) ||
		    s[p + 6] != '\0' || oh > 23 || om > 59)
			return false;
	} else {
		return false;
	}
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	/* the date part: a real day when timegm() does not move it */
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = 0;
	t = timegm(&tm);
	CHECK(gmtime_r(&t, &back) != NULL);
	if (back.tm_year != y - 1900 || back.tm_mon != mo - 1 || back.tm_mday != d)
		return false;
	/* second 60 is the leap second: timegm() counts it as the next
	 * minute's :00, as PostgreSQL does */
	t += sec;
	*us_out = ((int64_t)t - (int64_t)sign * (oh * 3600 + om * 60)) * 1000000 + frac;
	return true;
}

static void check_rfc3339(const char *s, size_t len)
{
	bool valid = evsq__rfc3339_valid(s);
	int64_t ref = 0, us;
	char other[64], canon[40];
	int64_t secs, sub;
	time_t tt;
	struct tm tm;

	CHECK(valid == ref_rfc3339(s, &ref));
	if (!valid)
		return;
	us = evsq__rfc3339_us(s);
	CHECK(us == ref);
	CHECK(us == evsq__rfc3339_us(s));
	/* the same text, different bytes after its NUL */
	CHECK(len < sizeof other);
	memset(other, 0x5a, sizeof other);
	memcpy(other, s, len + 1);
	CHECK(evsq__rfc3339_valid(other) && evsq__rfc3339_us(other) == us);

	/* canonical rendering (UTC, 6 fraction digits) round-trips */
	secs = us / 1000000;
	sub = us % 1000000;
	if (sub < 0) {
		sub += 1000000;
		secs--;
	}
	tt = (time_t)secs;
	CHECK(gmtime_r(&tt, &tm) != NULL);
	if (tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
		return;
	snprintf(canon, sizeof canon, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)sub);
	CHECK(strlen(canon) == 27);
	CHECK(evsq__rfc3339_valid(canon));
	CHECK(evsq__rfc3339_us(canon) == us);
}

static void check_u63(const char *s)
{
	int64_t got = -1, want = 0;
	bool ok = s[0] != '\0';

	for (const char *p = s; ok && *p; p++)
		ok = *p >= '0' && *p <= '9';
	if (ok) {
		char *end;

		errno = 0;
		want = strtoll(s, &end, 10);
		ok = errno == 0 && *end == '\0';
	}
	CHECK(evsq__parse_u63(s, &got) == ok);
	if (ok)
		CHECK(got == want && got >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t len = nul ? (size_t)(nul - data) : size;
	char *s = malloc(len + 1);

	if (s == NULL)
		return 0;
	memcpy(s, data, len);
	s[len] = '\0';
	check_rfc3339(s, len);
	check_u63(s);
	free(s);
	return 0;
}
