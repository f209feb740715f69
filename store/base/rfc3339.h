/*
 * rfc3339.h: RFC 3339 timestamps (section 5.6), read and written by the evs
 * tool, the projector (timestamptz text) and the schema's "date-time"
 * format. Calendar arithmetic is the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil), independent of the process's time zone.
 */
#ifndef EVS_BASE_RFC3339_H
#define EVS_BASE_RFC3339_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define EVS__TIME_LEN 31 /* "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" + NUL */

/* The fields of an RFC 3339 date-time, checked for syntax and ranges
 * (month, day of that month, hours, minutes, second 0..60, offset). */
struct evs__rfc3339 {
	int year, month, day, hour, minute, second;
	int64_t frac_ns; /* the first nine fractional digits, in ns */
	int frac_digits; /* how many were written (may be more than 9) */
	int offset_s;    /* east of UTC, seconds */
};

/* Parse s[0..n): 'T', 't' or ' ' between date and time, any number of
 * fractional digits, "Z"/"z" or "+HH:MM"/"-HH:MM". -1 with *why set
 * (a phrase for messages) on anything else. */
int evs__rfc3339_fields(const char *s, size_t n, struct evs__rfc3339 *f, const char **why);
/* Whole seconds since the epoch of f (UTC, offset applied; years 0000 to
 * 9999 fit easily); the fraction is f->frac_ns. */
int64_t evs__rfc3339_epoch_s(const struct evs__rfc3339 *f);
/* Parse into ns since the epoch: also refuses more than nine fractional
 * digits, leap seconds (the store's clock has none) and times outside
 * int64 nanoseconds (1677-09-21 to 2262-04-11). */
int evs__time_parse(const char *s, size_t n, int64_t *ns, const char **why);
/* UTC with nine fractional digits and "Z": 2024-05-01T12:34:56.000000123Z,
 * so text and int64 nanoseconds convert both ways without loss. */
void evs__time_format(int64_t ns, char out[EVS__TIME_LEN]);
/* PostgreSQL's timestamptz text (microseconds, floored; UTC):
 * 2024-05-01 12:34:56.000000+00. */
void evs__time_pg_text(evs__buf *b, int64_t ns);

#endif
