/*
 * util.c - messages, memory and number parsing for the evs tool.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "utf8.h"

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("evs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_hint(const char *fmt, ...)
{
	va_list ap;

	fputs("hint: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void out_of_memory(void)
{
	cli_error("out of memory");
	exit(CLI_EXIT_FAIL);
}

void *cli_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		out_of_memory();
	return p;
}

void *cli_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		out_of_memory();
	return q;
}

void *cli_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		out_of_memory();
	return p;
}

char *cli_xstrndup(const char *s, size_t n)
{
	char *p = cli_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* The leading decimal digits of s into *v, *end after them: 0, or -1 when
 * s does not start with a digit or the number overflows. strtoull alone
 * accepts spaces, '+' and even '-' (negating): those are refused here. */
static int leading_u64(const char *s, unsigned long long *v, char **end)
{
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoull(s, end, 10);
	return errno != 0 ? -1 : 0;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (leading_u64(s, &v, &end) != 0 || *end != '\0')
		return -1;
	*out = (uint64_t)v;
	return 0;
}

int cli_parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;
	const char *digits = s && *s == '-' ? s + 1 : s;

	if (!digits || *digits < '0' || *digits > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = (int64_t)v;
	return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (leading_u64(s, &v, &end) != 0)
		return -1;
	if (*end != '\0') {
		switch (*end) {
		case 'k':
		case 'K': shift = 10; break;
		case 'm':
		case 'M': shift = 20; break;
		case 'g':
		case 'G': shift = 30; break;
		case 't':
		case 'T': shift = 40; break;
		default: return -1;
		}
		/* allow "64M", "64MB", "64MiB" */
		end++;
		if (*end == 'i')
			end++;
		if (*end == 'B')
			end++;
		if (*end != '\0')
			return -1;
		if (v > (UINT64_MAX >> shift))
			return -1;
	}
	*out = (uint64_t)v << shift;
	return 0;
}

int cli_finish_output(int status)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		int e = errno;

		cli_error("could not write to standard output: %s",
			  e ? strerror(e) : "write error");
		return CLI_EXIT_FAIL;
	}
	return status;
}

void cli_strlist_add(struct cli_strlist *l, const char *s)
{
	l->items = cli_xrealloc(l->items, (l->n + 1) * sizeof *l->items);
	l->items[l->n++] = s;
}

void cli_strlist_free(struct cli_strlist *l)
{
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

const char *cli_name_problem(const char *s, size_t len, size_t max)
{
	static char why[64];

	if (len == 0)
		return "empty";
	if (strnlen(s, len) != len)
		return "contains a NUL byte";
	if (len > max) {
		snprintf(why, sizeof why, "longer than %zu bytes", max);
		return why;
	}
	if (!evs__utf8_text((const uint8_t *)s, len))
		return "not valid UTF-8";
	return NULL;
}
