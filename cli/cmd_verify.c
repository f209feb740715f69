/*
 * cmd_verify.c - "evs verify": check the store's indexes.
 */
#include "cli.h"

static void print_problem(void *ctx, const char *problem)
{
	(void)ctx;
	fprintf(stderr, "evs: problem: %s\n", problem);
}

static int run(struct cli_ctx *ctx, void *state)
{
	evs_store_info head;
	uint64_t problems = 0;
	evs_store *store;
	int rc, status = CLI_EXIT_FAIL;

	(void)state;
	store = cli_open_store(ctx, CLI_OPEN_READ, NULL);
	if (!store)
		return CLI_EXIT_FAIL;
	rc = evs_verify(store, print_problem, NULL, &problems);
	if (rc != EVS_OK) {
		cli_store_error(store, rc, "could not verify store \"%s\"", ctx->store_path);
		goto out;
	}
	if (problems) {
		cli_error("verify found %llu problem%s in store \"%s\"",
			  (unsigned long long)problems, problems == 1 ? "" : "s", ctx->store_path);
		goto out;
	}
	rc = evs_head(store, &head);
	if (rc != EVS_OK) {
		cli_store_error(store, rc, "could not read the store head");
		goto out;
	}
	printf("ok: %llu events, no problems\n", (unsigned long long)head.last_position);
	status = CLI_EXIT_OK;
out:
	evs_close(store);
	return cli_finish_output(status);
}

static const struct cli_option no_options[] = {{NULL, NULL, NULL}};

const struct cli_command cli_cmd_verify = {
	.name = "verify",
	.synopsis = "",
	.summary = "check the store's indexes against the event log",
	.description = "Check positions, records, stream versions, the id index and "
		       "the time index.\nPrints each problem on stderr; prints \"ok: N "
		       "events, no problems\" and exits 0\nonly if there are none.",
	.options = no_options,
	.min_args = 0,
	.max_args = 0,
	.run = run,
};
