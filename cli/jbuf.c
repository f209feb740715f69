/*
 * jbuf.c - the tool's JSON values that the base does not write: UUIDs and
 * times as quoted strings, and writing a finished buffer out. Strings and
 * payloads are the base's writer (mpjson.h): strings escape only '"',
 * '\\' and control characters, doubles read back as the same double.
 */
#include <stdlib.h>

#include <uuid/uuid.h>

#include "cli.h"

void jb_u64(evs__buf *b, uint64_t v)
{
	evs__buf_printf(b, "%llu", (unsigned long long)v);
}

void jb_uuid(evs__buf *b, const uint8_t id[16])
{
	char text[37];

	uuid_unparse_lower(id, text);
	evs__buf_putc(b, '"');
	evs__buf_putn(b, text, 36);
	evs__buf_putc(b, '"');
}

void jb_time(evs__buf *b, int64_t ns)
{
	char text[EVS__TIME_LEN];

	evs__time_format(ns, text);
	evs__buf_putc(b, '"');
	evs__buf_putn(b, text, EVS__TIME_LEN - 1);
	evs__buf_putc(b, '"');
}

int jb_write(const evs__buf *b, FILE *f)
{
	if (b->oom) {
		cli_error("out of memory");
		exit(CLI_EXIT_FAIL);
	}
	if (b->len && fwrite(b->ptr, 1, b->len, f) != b->len)
		return -1;
	return 0;
}
