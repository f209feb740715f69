/*
 * timefmt.c - a time on the command line: RFC 3339 (the base's reader,
 * rfc3339.h: 'T', 't' or ' ' between date and time, 0 to 9 fractional
 * digits, "Z" or an offset; no leap seconds) or integer nanoseconds since
 * the epoch.
 */
#include <string.h>

#include "cli.h"

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
	return evs__time_parse(s, n, ns, why);
}
