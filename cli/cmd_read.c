/*
 * cmd_read.c - "evs read": print events as JSON Lines.
 */
#include "cli.h"

enum {
	OPT_FROM,
	OPT_BACKWARD,
	OPT_LIMIT,
	OPT_TYPE,
	OPT_PREFIX,
	OPT_UPCAST,
	OPT_CATEGORY,
	OPT_TAG,
	OPT_CORRELATION
};

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
	[OPT_CATEGORY] = {"category", "NAME",
			  "only streams of this category: the id up to its first \"-\" "
			  "(repeatable; not with STREAM)"},
	[OPT_TAG] = {"tag", "TAG",
		     "only events carrying this tag (repeatable: all of them; not with STREAM)"},
	[OPT_CORRELATION] = {"correlation", "UUID",
			     "only events with this correlation id (not with STREAM)"},
	{NULL, NULL, NULL}};

struct read_state {
	struct cli_select sel; /* first: cleanup frees it through the state */
	bool backward, upcast;
	uint64_t limit;
};

static int on_option(struct cli_ctx *ctx, void *state, int index, const char *value)
{
	struct read_state *st = state;

	(void)ctx;
	switch (index) {
	case OPT_FROM: return cli_select_option(&st->sel, CLI_SELECT_FROM, value);
	case OPT_BACKWARD: st->backward = true; return CLI_EXIT_OK;
	case OPT_LIMIT: return cli_option_u64("limit", value, 1, &st->limit);
	case OPT_TYPE: return cli_select_option(&st->sel, CLI_SELECT_TYPE, value);
	case OPT_PREFIX: return cli_select_option(&st->sel, CLI_SELECT_PREFIX, value);
	case OPT_UPCAST: st->upcast = true; return CLI_EXIT_OK;
	case OPT_CATEGORY: return cli_select_option(&st->sel, CLI_SELECT_CATEGORY, value);
	case OPT_TAG: return cli_select_option(&st->sel, CLI_SELECT_TAG, value);
	case OPT_CORRELATION: return cli_select_option(&st->sel, CLI_SELECT_CORRELATION, value);
	}
	return CLI_EXIT_USAGE;
}

static int run(struct cli_ctx *ctx, void *state)
{
	struct read_state *st = state;
	evs_filter filter = cli_select_filter(&st->sel);
	struct cli_scan scan = {0};

	scan.direction = st->backward ? EVS_BACKWARD : EVS_FORWARD;
	scan.from = st->sel.has_from ? st->sel.from : st->backward ? EVS_ANY : 1;
	scan.limit = st->limit;
	scan.upcast = st->upcast;
	if (ctx->argc == 1) {
		const char *opt = st->sel.prefixes.n        ? "prefix"
				  : st->sel.categories.n    ? "category"
				  : st->sel.tags.n          ? "tag"
				  : st->sel.has_correlation ? "correlation"
							    : NULL;

		if (opt) {
			cli_error("option --%s cannot be used with a STREAM", opt);
			return CLI_EXIT_USAGE;
		}
		scan.stream = ctx->argv[0];
		scan.types = filter.types;
		scan.ntypes = filter.ntypes;
	} else {
		scan.filter = &filter;
	}
	return cli_scan_store(ctx, &scan, NULL);
}

const struct cli_command cli_cmd_read = {
	.name = "read",
	.synopsis = "[STREAM]",
	.summary = "print events as JSON Lines",
	.description = "Print the events of STREAM, or of all streams in position "
		       "order, one JSON object\nper line: position, stream, version, "
		       "id, type, type_version, recorded_at,\noccurred_at, "
		       "correlation_id, causation_id, producer, tags (the last five only\n"
		       "when set), metadata and data. A payload JSON cannot carry exactly "
		       "is printed in\nbase64 as \"metadata_msgpack\" or \"data_msgpack\".\n\n"
		       "Filters of all events (--type, --prefix, --category, --tag, "
		       "--correlation) are\nanswered from the store's indexes where they "
		       "allow; together, an event must pass\nevery one given.",
	.options = options,
	.min_args = 0,
	.max_args = 1,
	.state_size = sizeof(struct read_state),
	.on_option = on_option,
	.run = run,
	.cleanup = cli_select_cleanup,
};
