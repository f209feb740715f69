/*
 * cmd_state.c - "evs state": the generic state of a stream, now or as of
 * a time or a position.
 *
 *   evs state STREAM [--as-of TIME | --at-position N]
 *
 * prints one line
 *
 *   {"stream":"...","version":V,"position":P,"state":{...}}
 *
 * where state is the RFC 7386 JSON merge patch fold of the stream's events'
 * data maps up to version V (evs_state_load), and P is the position of
 * version V's event (0 and {} when the stream had no events then). A state
 * holding values JSON cannot show (bin, ext, float32, non-string keys) is
 * printed as "state_msgpack":"<base64>" instead.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { OPT_AS_OF, OPT_AT_POSITION };

static const struct cli_option options[] = {[OPT_AS_OF] = {"as-of", "TIME",
							   "the state as of TIME (RFC 3339 or "
							   "integer nanoseconds)"},
					    [OPT_AT_POSITION] = {"at-position", "N",
								 "the state as of global "
								 "position N"},
					    {NULL, NULL, NULL}};

struct state_opts {
	evs_at at;
	const char *text; /* the --as-of or --at-position value */
};

static int on_option(struct cli_ctx *ctx, void *state, int index, const char *value)
{
	struct state_opts *st = state;
	const char *why;

	(void)ctx;
	if (st->at.kind != EVS_AT_LATEST) {
		cli_error("options --as-of and --at-position exclude each other "
			  "and may be given once");
		return CLI_EXIT_USAGE;
	}
	st->text = value;
	switch (index) {
	case OPT_AS_OF:
		st->at.kind = EVS_AT_TIME;
		if (cli_time_parse_arg(value, &st->at.time, &why) != 0)
			return cli_bad_value("as-of", value, why);
		return CLI_EXIT_OK;
	case OPT_AT_POSITION:
		st->at.kind = EVS_AT_POSITION;
		return cli_option_u64("at-position", value, 0, &st->at.position);
	}
	return CLI_EXIT_USAGE;
}

static int print_state(evs_store *store, struct cli_ctx *ctx, void *arg)
{
	struct state_opts *st = arg;
	const char *stream = ctx->argv[0];
	evs_state s = {0};
	evs__buf b;
	int rc, status = CLI_EXIT_OK;

	rc = evs_state_load(store, stream, st->at.kind == EVS_AT_LATEST ? NULL : &st->at, &s);
	if (rc != EVS_OK) {
		if (st->text)
			cli_store_error(store, rc,
					"could not load the state of "
					"stream \"%s\" as of %s",
					stream, st->text);
		else
			cli_store_error(store, rc,
					"could not load the state of "
					"stream \"%s\"",
					stream);
		return rc == EVS_BAD_STREAM ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
	}

	b = (evs__buf){0};
	evs__buf_puts(&b, "{\"stream\":");
	if (evs__json_str(&b, stream, strlen(stream)) != 0) {
		/* the library accepted it, so it is UTF-8; keep a clear error */
		cli_error("stream id is not valid UTF-8");
		status = CLI_EXIT_FAIL;
		goto out;
	}
	evs__buf_puts(&b, ",\"version\":");
	jb_u64(&b, s.version);
	evs__buf_puts(&b, ",\"position\":");
	jb_u64(&b, s.position);
	size_t mark = b.len;
	evs__buf_puts(&b, ",\"state\":");
	if (evs__msgpack_to_json(&b, s.data, s.len, EVS__JSON_EXACT) != 0) {
		b.len = mark;
		evs__buf_puts(&b, ",\"state_msgpack\":\"");
		evs__base64_encode(&b, s.data, s.len);
		evs__buf_putc(&b, '"');
	}
	evs__buf_puts(&b, "}\n");
	if (jb_write(&b, stdout) != 0)
		status = CLI_EXIT_FAIL;
out:
	evs__buf_free(&b);
	evs_state_free(&s);
	return status;
}

const struct cli_command cli_cmd_state = {
	.name = "state",
	.synopsis = "STREAM [--as-of TIME | --at-position N]",
	.summary = "print the merge-patch state of a stream (now or as of)",
	.description = "Prints {\"stream\":..,\"version\":..,\"position\":..,\"state\":{..}}:"
		       " the RFC 7386\nJSON merge patch fold of the stream's events' data "
		       "maps, and the version and\nglobal position it reflects. With "
		       "--as-of, only events recorded at or before\nTIME (RFC 3339 or "
		       "integer nanoseconds); with --at-position, only events at or\n"
		       "before global position N. A stream without events (then) prints "
		       "version 0\nand {}.",
	.options = options,
	.min_args = 1,
	.max_args = 1,
	.state_size = sizeof(struct state_opts),
	.on_option = on_option,
	.run_store = print_state,
};
