/*
 * cmd_export.c - "evs export": every event, losslessly, as JSON Lines.
 *
 * The format is the one "evs read" prints (see event_json.c); "evs
 * import" reads it back, and export -> import into an empty store ->
 * export gives the same bytes.
 */
#include "cli.h"

struct export_state {
	uint64_t from;
};

static const struct cli_option options[] = {{"from", "N", "first position to export (default 1)"},
					    {NULL, NULL, NULL}};

static int on_option(struct cli_ctx *ctx, void *state, int index, const char *value)
{
	struct export_state *st = state;

	(void)ctx;
	(void)index;
	return cli_option_u64("from", value, 0, &st->from);
}

static int run(struct cli_ctx *ctx, void *state)
{
	struct export_state *st = state;
	struct cli_scan scan = {
		.from = st->from ? st->from : 1,
		.direction = EVS_FORWARD,
	};

	return cli_scan_store(ctx, &scan, "export");
}

const struct cli_command cli_cmd_export = {
	.name = "export",
	.synopsis = "",
	.summary = "write all events as JSON Lines, losslessly",
	.description = "Write every event in position order, one JSON object per line "
		       "with every field\n(the format of \"evs read\"). Payloads JSON "
		       "cannot carry exactly (bin, ext,\nfloat32, non-string keys, "
		       "non-minimal encodings) are written in base64 as\n"
		       "\"data_msgpack\" / \"metadata_msgpack\". \"evs import\" reads "
		       "this format back.",
	.options = options,
	.min_args = 0,
	.max_args = 0,
	.state_size = sizeof(struct export_state),
	.on_option = on_option,
	.run = run,
};
