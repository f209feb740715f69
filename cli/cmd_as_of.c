/*
 * cmd_as_of.c - "evs as-of": the store or a stream as of a time.
 *
 * Both answers are index lookups in the library (recorded_at is
 * non-decreasing in position order), never scans.
 */
#include "cli.h"

static int look_up(evs_store *store, struct cli_ctx *ctx, void *arg)
{
	const char *text = ctx->argv[0];
	const int64_t t = *(const int64_t *)arg;
	uint64_t version = 0, position = 0;
	int rc;

	if (ctx->argc == 2) {
		rc = evs_stream_version_at(store, ctx->argv[1], t, &version, &position);
		if (rc == EVS_NOT_FOUND)
			rc = EVS_OK; /* no events then: version 0 */
		if (rc == EVS_OK)
			printf("{\"version\":%llu,\"position\":%llu}\n",
			       (unsigned long long)version, (unsigned long long)position);
		else
			cli_store_error(store, rc, "could not look up stream \"%s\" as of %s",
					ctx->argv[1], text);
	} else {
		rc = evs_position_at(store, t, &position);
		if (rc == EVS_OK)
			printf("{\"position\":%llu}\n", (unsigned long long)position);
		else
			cli_store_error(store, rc, "could not look up the store as of %s", text);
	}
	return rc == EVS_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static int run(struct cli_ctx *ctx, void *state)
{
	const char *why;
	int64_t t;

	(void)state;
	if (cli_time_parse_arg(ctx->argv[0], &t, &why) != 0) {
		cli_error("invalid time \"%s\": %s", ctx->argv[0], why);
		return CLI_EXIT_USAGE;
	}
	return cli_with_store(ctx, CLI_OPEN_READ, NULL, look_up, &t);
}

const struct cli_command cli_cmd_as_of = {
	.name = "as-of",
	.synopsis = "TIME [STREAM]",
	.summary = "find the position (and stream version) as of a time",
	.description = "TIME is RFC 3339 (2024-05-01T12:00:00Z, fraction and offset "
		       "allowed) or integer\nnanoseconds since the epoch. Prints "
		       "{\"position\":..}, the last position recorded\nat or before "
		       "TIME (0 if none), or with STREAM {\"version\":..,"
		       "\"position\":..},\nthe stream's version then and the "
		       "position of that event (both 0 if none).",
	.min_args = 1,
	.max_args = 2,
	.run = run,
};
