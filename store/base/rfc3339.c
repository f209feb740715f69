/* rfc3339.c: RFC 3339 timestamps (rfc3339.h). */
#include "rfc3339.h"

#include <string.h>

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

/* n decimal digits at s[*i]; -1 if any is not a digit */
static int digits(const char *s, size_t len, size_t *i, int n, int *out)
{
	int v = 0;

	if (*i + (size_t)n > len)
		return -1;
	for (int k = 0; k < n; k++) {
		char c = s[*i + (size_t)k];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*i += (size_t)n;
	*out = v;
	return 0;
}

static int expect(const char *s, size_t len, size_t *i, const char *set)
{
	if (*i >= len || s[*i] == '\0' || !strchr(set, s[*i]))
		return -1;
	(*i)++;
	return 0;
}

static bool leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int evs__rfc3339_fields(const char *s, size_t len, struct evs__rfc3339 *f, const char **why)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int oh = 0, om = 0;
	size_t i = 0;

	*why = "not an RFC 3339 timestamp (like 2024-05-01T12:34:56.5Z)";
	memset(f, 0, sizeof *f);
	if (digits(s, len, &i, 4, &f->year) || expect(s, len, &i, "-") ||
	    digits(s, len, &i, 2, &f->month) || expect(s, len, &i, "-") ||
	    digits(s, len, &i, 2, &f->day) || expect(s, len, &i, "Tt ") ||
	    digits(s, len, &i, 2, &f->hour) || expect(s, len, &i, ":") ||
	    digits(s, len, &i, 2, &f->minute) || expect(s, len, &i, ":") ||
	    digits(s, len, &i, 2, &f->second))
		return -1;
	if (i < len && s[i] == '.') {
		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (++f->frac_digits <= 9)
				f->frac_ns = f->frac_ns * 10 + (s[i] - '0');
			i++;
		}
		if (f->frac_digits == 0)
			return -1;
		for (int k = f->frac_digits; k < 9; k++)
			f->frac_ns *= 10;
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
		f->offset_s = sign * (oh * 3600 + om * 60);
	} else {
		if (i >= len)
			*why = "time zone missing (add \"Z\" for UTC)";
		return -1;
	}
	if (i != len)
		return -1;
	if (f->month < 1 || f->month > 12 || f->day < 1 ||
	    f->day > mdays[f->month - 1] + (f->month == 2 && leap_year(f->year))) {
		*why = "date out of range";
		return -1;
	}
	if (f->hour > 23 || f->minute > 59 || f->second > 60) {
		*why = "time of day out of range";
		return -1;
	}
	return 0;
}

int64_t evs__rfc3339_epoch_s(const struct evs__rfc3339 *f)
{
	return days_from_civil(f->year, (unsigned)f->month, (unsigned)f->day) * 86400 +
	       (int64_t)(f->hour * 3600 + f->minute * 60 + f->second) - f->offset_s;
}

int evs__time_parse(const char *s, size_t len, int64_t *ns, const char **why)
{
	struct evs__rfc3339 f;
	int64_t secs, total;

	if (evs__rfc3339_fields(s, len, &f, why) != 0)
		return -1;
	if (f.frac_digits > 9) {
		*why = "more than 9 fractional digits";
		return -1;
	}
	if (f.second == 60) {
		*why = "leap seconds are not supported";
		return -1;
	}
	secs = evs__rfc3339_epoch_s(&f);
	if (__builtin_mul_overflow(secs, NS_PER_SEC, &total) ||
	    __builtin_add_overflow(total, f.frac_ns, &total)) {
		*why = "out of range (1677-09-21 to 2262-04-11)";
		return -1;
	}
	*ns = total;
	return 0;
}

/* v as exactly n decimal digits (v < 10^n) */
static void put_digits(char *out, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		out[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* The UTC calendar fields of ns: "YYYY-MM-DD?HH:MM:SS" into out[0..19),
 * with `sep` between date and time; the nanoseconds of the second. */
static int64_t split(int64_t ns, char sep, char out[19])
{
	int64_t secs = ns / NS_PER_SEC, frac = ns % NS_PER_SEC, days, sod, y;
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
	out[10] = sep;
	put_digits(out + 11, (uint64_t)(sod / 3600), 2);
	out[13] = ':';
	put_digits(out + 14, (uint64_t)(sod / 60 % 60), 2);
	out[16] = ':';
	put_digits(out + 17, (uint64_t)(sod % 60), 2);
	return frac;
}

void evs__time_format(int64_t ns, char out[EVS__TIME_LEN])
{
	int64_t frac = split(ns, 'T', out);

	out[19] = '.';
	put_digits(out + 20, (uint64_t)frac, 9);
	out[29] = 'Z';
	out[30] = '\0';
}

void evs__time_pg_text(evs__buf *b, int64_t ns)
{
	char out[30];
	int64_t frac = split(ns, ' ', out);

	out[19] = '.';
	put_digits(out + 20, (uint64_t)(frac / 1000), 6);
	memcpy(out + 26, "+00", 3);
	evs__buf_putn(b, out, 29);
}
