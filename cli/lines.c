/*
 * lines.c - reading JSON Lines input with a bound on line length.
 *
 * getline() would grow without limit on a file without newlines; this
 * reader keeps at most CLI_MAX_LINE bytes of one line (plus one read
 * chunk) and reports longer lines, NUL bytes and read errors with the
 * line number. "\r\n" endings are accepted; blank lines are skipped but
 * counted, so numbers in messages match an editor's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CHUNK ((size_t)64 << 10)

void cli_lines_init(struct cli_lines *r, FILE *f)
{
	memset(r, 0, sizeof *r);
	r->f = f;
}

void cli_lines_free(struct cli_lines *r)
{
	free(r->buf);
	r->buf = NULL;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

/* Read more input into the buffer: 1 read, 0 end of input, -1 error. */
static int fill(struct cli_lines *r)
{
	size_t got;

	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->len - r->start);
		r->len -= r->start;
		r->start = 0;
	}
	if (r->cap - r->len < CHUNK + 1) {
		size_t cap = r->cap ? r->cap * 2 : 4 * CHUNK;

		while (cap - r->len < CHUNK + 1)
			cap *= 2;
		r->buf = cli_xrealloc(r->buf, cap);
		r->cap = cap;
	}
	got = fread(r->buf + r->len, 1, CHUNK, r->f);
	r->len += got;
	if (got == 0) {
		if (ferror(r->f)) {
			cli_error("could not read standard input: %s", strerror(errno));
			return -1;
		}
		r->eof = true;
		return 0;
	}
	return 1;
}

int cli_lines_next(struct cli_lines *r, char **line, size_t *len)
{
	for (;;) {
		size_t seen = 0; /* bytes after start known to have no '\n' */
		char *nl = NULL;
		char *s;
		size_t n;

		for (;;) {
			size_t avail = r->len - r->start;

			if (seen < avail)
				nl = memchr(r->buf + r->start + seen, '\n', avail - seen);
			if (nl || r->eof)
				break;
			seen = avail;
			if (seen > CLI_MAX_LINE) {
				cli_error("line %lu is longer than %zu MiB", r->lineno + 1,
					  CLI_MAX_LINE >> 20);
				return -1;
			}
			if (fill(r) < 0)
				return -1;
		}
		if (!nl && r->start >= r->len)
			return 0;

		s = r->buf + r->start;
		n = nl ? (size_t)(nl - s) : r->len - r->start;
		r->start += n + (nl ? 1 : 0);
		r->lineno++;
		if (n > CLI_MAX_LINE) {
			cli_error("line %lu is longer than %zu MiB", r->lineno, CLI_MAX_LINE >> 20);
			return -1;
		}
		if (memchr(s, '\0', n)) {
			cli_error("line %lu contains a NUL byte", r->lineno);
			return -1;
		}
		if (n > 0 && s[n - 1] == '\r')
			n--;
		/* terminate: the '\n' slot, or the spare byte fill() keeps */
		s[n] = '\0';
		if (blank(s, n))
			continue;
		*line = s;
		*len = n;
		return 1;
	}
}
