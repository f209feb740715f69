/*
 * params.c - the syntax of parameter values: RFC 3339 timestamps and positions.
 * Values are validated here (400 with a message) and then sent to
 * PostgreSQL as statement parameters, never pasted into SQL.
 */
#include <string.h>

#include "internal.h"

static bool digits(const char *s, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

bool evsq__rfc3339_valid(const char *s)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, oh, om;
	size_t n = strlen(s), i;

	if (n < 20 || n > 40)
		return false;
	if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !digits(s + 8, 2, &d))
		return false;
	if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
		return false;
	if (!digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
	    !digits(s + 17, 2, &sec))
		return false;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && leap(y) ? 1 : 0) || h > 23 || mi > 59 || sec > 60)
		return false;
	i = 19;
	if (s[i] == '.') {
		size_t f = ++i;

		while (s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == f || i - f > 9)
			return false;
	}
	if ((s[i] == 'Z' || s[i] == 'z') && s[i + 1] == '\0')
		return true;
	if (s[i] != '+' && s[i] != '-')
		return false;
	if (!digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || !digits(s + i + 4, 2, &om) ||
	    s[i + 6] != '\0')
		return false;
	return oh <= 23 && om <= 59;
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

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int64_t evsq__rfc3339_us(const char *s)
{
	int y = 0, mo = 1, d = 1, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
	int64_t us = 0, t;
	size_t i = 19;

	digits(s, 4, &y);
	digits(s + 5, 2, &mo);
	digits(s + 8, 2, &d);
	digits(s + 11, 2, &h);
	digits(s + 14, 2, &mi);
	digits(s + 17, 2, &sec);
	if (s[i] == '.') {
		int n = 0;

		/* digits past the microsecond are cut, never rounded up: a
		 * time 0.9 us before an event is before it (the read model
		 * keeps microseconds; the store adds the rest of the us) */
		for (i++; s[i] >= '0' && s[i] <= '9'; i++, n++)
			if (n < 6)
				us = us * 10 + (s[i] - '0');
		for (; n < 6; n++)
			us *= 10;
	}
	if (s[i] == '+' || s[i] == '-') {
		digits(s + i + 1, 2, &oh);
		digits(s + i + 4, 2, &om);
		if (s[i] == '-') {
			oh = -oh;
			om = -om;
		}
	}
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - oh * 3600 - om * 60;
	return t * 1000000 + us;
}
