/*
 * timefmt.c - RFC 3339 timestamps with nanoseconds.
 *
 * Output is always UTC with nine fractional digits:
 *
 *     2024-05-01T12:34:56.000000123Z
 *
 * so that text and int64 nanoseconds convert both ways without loss
 * (the int64 range is 1677-09-21 to 2262-04-11, four-digit years).
 * Input accepts RFC 3339's full form: 'T', 't' or ' ' between date and
 * time, 0 to 9 fractional digits, "Z"/"z" or a "+HH:MM"/"-HH:MM" offset.
 * Leap seconds (second 60) are refused: the store's clock has none.
 * Calendar arithmetic is the proleptic Gregorian calendar (H. Hinnant's
 * days_from_civil), independent of the process's time zone.
 */
#include <string.h>

#include "cli.h"

#define NS_PER_SEC 1000000000LL

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* v as exactly n decimal digits (v < 10^n) */
static void put_digits(char *out, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		out[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

void cli_time_format(int64_t ns, char out[CLI_TIME_LEN])
{
	int64_t secs = ns / NS_PER_SEC, frac = ns % NS_PER_SEC;
	int64_t days, sod, y;
	unsigned m, d;

	if (frac < 0) {
		frac += NS_PER_SEC;
		secs--;
	}
	days = secs / 86400;
	sod = secs % 86400;
	if (sod < 0) {
		sod += 86400;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	put_digits(out, (uint64_t)y, 4); /* 1677..2262 */
	out[4] = '-';
	put_digits(out + 5, m, 2);
	out[7] = '-';
	put_digits(out + 8, d, 2);
	out[10] = 'T';
	put_digits(out + 11, (uint64_t)(sod / 3600), 2);
	out[13] = ':';
	put_digits(out + 14, (uint64_t)(sod / 60 % 60), 2);
	out[16] = ':';
	put_digits(out + 17, (uint64_t)(sod % 60), 2);
	out[19] = '.';
	put_digits(out + 20, (uint64_t)frac, 9);
	out[29] = 'Z';
	out[30] = '\0';
}

/* n decimal digits at s[*i]; -1 if any is not a digit */
static int digits(const char *s, size_t len, size_t *i, int n, unsigned *out)
{
	unsigned v = 0;

	if (*i + (size_t)n > len)
		return -1;
	for (int k = 0; k < n; k++) {
		char c = s[*i + (size_t)k];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (unsigned)(c - '0');
	}
	*i += (size_t)n;
	*out = v;
	return 0;
}

static int expect(const char *s, size_t len, size_t *i, const char *set)
{
	if (*i >= len || !strchr(set, s[*i]) || s[*i] == '\0')
		return -1;
	(*i)++;
	return 0;
}

static bool leap_year(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int cli_time_parse(const char *s, size_t len, int64_t *ns, const char **why)
{
	static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned year, mon, day, hour, min, sec, oh = 0, om = 0;
	int64_t frac = 0, secs, offset = 0, total;
	size_t i = 0;
	int fdigits = 0;

	*why = "not an RFC 3339 timestamp (like 2024-05-01T12:34:56.5Z)";
	if (digits(s, len, &i, 4, &year) || expect(s, len, &i, "-") ||
	    digits(s, len, &i, 2, &mon) || expect(s, len, &i, "-") || digits(s, len, &i, 2, &day) ||
	    expect(s, len, &i, "Tt ") || digits(s, len, &i, 2, &hour) || expect(s, len, &i, ":") ||
	    digits(s, len, &i, 2, &min) || expect(s, len, &i, ":") || digits(s, len, &i, 2, &sec))
		return -1;
	if (i < len && s[i] == '.') {
		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (++fdigits > 9) {
				*why = "more than 9 fractional digits";
				return -1;
			}
			frac = frac * 10 + (s[i++] - '0');
		}
		if (fdigits == 0)
			return -1;
		for (int k = fdigits; k < 9; k++)
			frac *= 10;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		int sign = s[i++] == '-' ? -1 : 1;

		if (digits(s, len, &i, 2, &oh) || expect(s, len, &i, ":") ||
		    digits(s, len, &i, 2, &om))
			return -1;
		if (oh > 23 || om > 59) {
			*why = "time zone offset out of range";
			return -1;
		}
		offset = sign * (int64_t)(oh * 3600 + om * 60);
	} else {
		if (i >= len)
			*why = "time zone missing (add \"Z\" for UTC)";
		return -1;
	}
	if (i != len)
		return -1;

	if (mon < 1 || mon > 12 || day < 1 ||
	    day > mdays[mon - 1] + (mon == 2 && leap_year(year))) {
		*why = "date out of range";
		return -1;
	}
	if (sec == 60) {
		*why = "leap seconds are not supported";
		return -1;
	}
	if (hour > 23 || min > 59 || sec > 59) {
		*why = "time of day out of range";
		return -1;
	}
	secs = days_from_civil(year, mon, day) * 86400 + (int64_t)(hour * 3600 + min * 60 + sec) -
	       offset;
	if (__builtin_mul_overflow(secs, NS_PER_SEC, &total) ||
	    __builtin_add_overflow(total, frac, &total)) {
		*why = "out of range (1677-09-21 to 2262-04-11)";
		return -1;
	}
	*ns = total;
	return 0;
}

int cli_time_parse_arg(const char *s, int64_t *ns, const char **why)
{
	size_t n = strlen(s);
	size_t i = s[0] == '-' ? 1 : 0;

	if (n > i && strspn(s + i, "0123456789") == n - i) {
		if (cli_parse_i64(s, ns) != 0) {
			*why = "integer nanoseconds out of range";
			return -1;
		}
		return 0;
	}
	return cli_time_parse(s, n, ns, why);
}
