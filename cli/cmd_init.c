/*
 * cmd_init.c - "evs init": create a store.
 */
#include "cli.h"

struct init_state {
	uint64_t map_size;
};

static const struct cli_option options[] = {{"map-size", "BYTES",
					     "initial map size (suffix k, M, G or T; "
					     "default 1G; the map grows by itself)"},
					    {NULL, NULL, NULL}};

static int on_option(struct cli_ctx *ctx, void *state, int index, const char *value)
{
	struct init_state *st = state;

	(void)ctx;
	(void)index; /* the only option */
	if (cli_parse_size(value, &st->map_size) != 0 || st->map_size == 0 ||
	    st->map_size > SIZE_MAX)
		return cli_bad_value("map-size", value, "expected a positive byte count like 64M");
	return CLI_EXIT_OK;
}

static int run(struct cli_ctx *ctx, void *state)
{
	struct init_state *st = state;
	evs_options opts;
	evs_store *store = NULL;

	/* refuse to "create" a store that is there already */
	evs_options_init(&opts);
	opts.create = 0;
	opts.read_only = 1;
	if (evs_open(ctx->store_path, &opts, &store) == EVS_OK) {
		evs_close(store);
		cli_error("store \"%s\" already exists", ctx->store_path);
		return CLI_EXIT_FAIL;
	}

	evs_options_init(&opts);
	opts.map_size = (size_t)st->map_size;
	store = cli_open_store(ctx, CLI_OPEN_CREATE, &opts);
	if (!store)
		return CLI_EXIT_FAIL;
	evs_close(store);
	return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_init = {
	.name = "init",
	.synopsis = "",
	.summary = "create a store",
	.description = "Create a new, empty store in the store directory "
		       "(created if missing).\nFails if a store is there already.",
	.options = options,
	.min_args = 0,
	.max_args = 0,
	.state_size = sizeof(struct init_state),
	.on_option = on_option,
	.run = run,
};
