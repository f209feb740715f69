/*
 * cmd_read.c - "evs read": print events as JSON Lines.
 */
#include "cli.h"

enum { OPT_FROM, OPT_BACKWARD, OPT_LIMIT, OPT_TYPE, OPT_PREFIX, OPT_UPCAST };

static const struct cli_option options[] = {
	[OPT_FROM] = {"from", "N", "first version (with STREAM) or position to read, inclusive"},
	[OPT_BACKWARD] = {"backward", NULL, "read newest first"},
	[OPT_LIMIT] = {"limit", "N", "print at most N events"},
	[OPT_TYPE] = {"type", "TYPE", "only events of this type (repeatable)"},
	[OPT_PREFIX] = {"prefix", "PREFIX",
			"only streams starting with PREFIX (repeatable; not with STREAM)"},
	[OPT_UPCAST] =
		{"upcast", NULL,
		 "show events in their type's latest schema version (stored bytes unchanged)"},
	{NULL, NULL, NULL}};

struct read_state {
	bool has_from, backward, upcast;
	uint64_t from, limit;
	struct cli_strlist types, prefixes;
};

static int on_option(struct cli_ctx *ctx, void *state, int index, const char *value)
{
	struct read_state *st = state;

	(void)ctx;
	switch (index) {
	case OPT_FROM:
		st->has_from = true;
		if (cli_parse_u64(value, &st->from) != 0)
			return cli_bad_value("from", value, "expected a non-negative integer");
		return CLI_EXIT_OK;
	case OPT_BACKWARD: st->backward = true; return CLI_EXIT_OK;
	case OPT_LIMIT:
		if (cli_parse_u64(value, &st->limit) != 0 || st->limit == 0)
			return cli_bad_value("limit", value, "expected a positive integer");
		return CLI_EXIT_OK;
	case OPT_TYPE: cli_strlist_add(&st->types, value); return CLI_EXIT_OK;
	case OPT_PREFIX: cli_strlist_add(&st->prefixes, value); return CLI_EXIT_OK;
	case OPT_UPCAST: st->upcast = true; return CLI_EXIT_OK;
	}
	return CLI_EXIT_USAGE;
}

static void cleanup(void *state)
{
	struct read_state *st = state;

	cli_strlist_free(&st->types);
	cli_strlist_free(&st->prefixes);
}

static int run(struct cli_ctx *ctx, void *state)
{
	struct read_state *st = state;
	evs_filter filter = {0};
	struct cli_scan scan = {0};
	evs_store *store;
	int status;

	scan.direction = st->backward ? EVS_BACKWARD : EVS_FORWARD;
	scan.from = st->has_from ? st->from : st->backward ? EVS_ANY : 1;
	scan.limit = st->limit;
	scan.upcast = st->upcast;
	if (ctx->argc == 1) {
		if (st->prefixes.n) {
			cli_error("option --prefix cannot be used with a STREAM");
			return CLI_EXIT_USAGE;
		}
		scan.stream = ctx->argv[0];
		scan.types = st->types.items;
		scan.ntypes = st->types.n;
	} else {
		filter.types = st->types.items;
		filter.ntypes = st->types.n;
		filter.stream_prefixes = st->prefixes.items;
		filter.nprefixes = st->prefixes.n;
		scan.filter = &filter;
	}

	store = cli_open_store(ctx, CLI_OPEN_READ, NULL);
	if (!store)
		return CLI_EXIT_FAIL;
	status = cli_scan_print(store, &scan);
	evs_close(store);
	return cli_finish_output(status);
}

const struct cli_command cli_cmd_read = {
	.name = "read",
	.synopsis = "[STREAM]",
	.summary = "print events as JSON Lines",
	.description = "Print the events of STREAM, or of all streams in position "
		       "order, one JSON object\nper line: position, stream, version, "
		       "id, type, type_version, recorded_at,\noccurred_at, "
		       "correlation_id, causation_id (the last three only when set),\n"
		       "metadata and data. A payload JSON cannot carry exactly is "
		       "printed in base64 as\n\"metadata_msgpack\" or \"data_msgpack\".",
	.options = options,
	.min_args = 0,
	.max_args = 1,
	.state_size = sizeof(struct read_state),
	.on_option = on_option,
	.run = run,
	.cleanup = cleanup,
};
