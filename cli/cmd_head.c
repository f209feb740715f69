/*
 * cmd_head.c - "evs head" and "evs stat": where the store or a stream is.
 */
#include <string.h>

#include "cli.h"

static int print_store_head(evs_store *store)
{
	evs_store_info h;
	evs__buf b;

	if (cli_store_head(store, &h) != EVS_OK)
		return CLI_EXIT_FAIL;
	b = (evs__buf){0};
	evs__buf_puts(&b, "{\"last_position\":");
	jb_u64(&b, h.last_position);
	evs__buf_puts(&b, ",\"last_recorded_at\":");
	if (h.last_recorded_at != 0)
		jb_time(&b, h.last_recorded_at);
	else
		evs__buf_puts(&b, "null");
	evs__buf_puts(&b, ",\"streams\":");
	jb_u64(&b, h.streams);
	evs__buf_puts(&b, ",\"map_size\":");
	jb_u64(&b, h.map_size);
	evs__buf_puts(&b, ",\"used_bytes\":");
	jb_u64(&b, h.used_bytes);
	evs__buf_puts(&b, "}\n");
	jb_write(&b, stdout);
	evs__buf_free(&b);
	return CLI_EXIT_OK;
}

static int print_stream_head(evs_store *store, const char *stream)
{
	evs_stream_info h;
	evs__buf b;
	int rc = evs_stream_head(store, stream, &h);
	int status = CLI_EXIT_OK;

	if (rc == EVS_NOT_FOUND) {
		h.version = 0;
		h.last_position = 0;
	} else if (rc != EVS_OK) {
		cli_store_error(store, rc, "could not read stream \"%s\"", stream);
		return CLI_EXIT_FAIL;
	}
	b = (evs__buf){0};
	evs__buf_puts(&b, "{\"stream\":");
	if (evs__json_str(&b, stream, strlen(stream)) != 0) {
		cli_error("stream id \"%s\" is not valid UTF-8", stream);
		status = CLI_EXIT_FAIL;
		goto out;
	}
	evs__buf_puts(&b, ",\"version\":");
	jb_u64(&b, h.version);
	evs__buf_puts(&b, ",\"last_position\":");
	jb_u64(&b, h.last_position);
	evs__buf_puts(&b, "}\n");
	jb_write(&b, stdout);
out:
	evs__buf_free(&b);
	return status;
}

static int print_head(evs_store *store, struct cli_ctx *ctx, void *arg)
{
	(void)arg;
	if (ctx->argc == 1)
		return print_stream_head(store, ctx->argv[0]);
	return print_store_head(store);
}

const struct cli_command cli_cmd_head = {
	.name = "head",
	.synopsis = "[STREAM]",
	.summary = "print the head of the store or of a stream",
	.description = "With STREAM, print {\"stream\":..,\"version\":..,"
		       "\"last_position\":..}\n(version 0 if the stream has no "
		       "events). Without, print the store head as\n\"evs stat\" does.",
	.min_args = 0,
	.max_args = 1,
	.run_store = print_head,
};

const struct cli_command cli_cmd_stat = {
	.name = "stat",
	.synopsis = "",
	.summary = "print the store head and size",
	.description = "Print {\"last_position\":..,\"last_recorded_at\":..,"
		       "\"streams\":..,\"map_size\":..,\n\"used_bytes\":..}; "
		       "last_recorded_at is null while the store is empty.",
	.min_args = 0,
	.max_args = 0,
	.run_store = print_head,
};
