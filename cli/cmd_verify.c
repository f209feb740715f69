/*
 * cmd_verify.c - "evs verify": check the store's indexes.
 */
#include "cli.h"

/*
 * The library counts records over the log and its three indexes (about
 * four per event); the line speaks in events, so the figures are scaled
 * to the event count, which keeps the share and the ETA right.
 */
struct verify_progress {
	struct cli_progress *line;
	uint64_t events, shown;
};

static void print_problem(void *ctx, const char *problem)
{
	const struct verify_progress *vp = ctx;

	if (vp->line)
		fputs("\r\033[K", stderr); /* over the progress line; it is redrawn below */
	fprintf(stderr, "evs: problem: %s\n", problem);
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct verify_progress *vp = ctx;
	uint64_t now =
		total ? (uint64_t)((double)done / (double)total * (double)vp->events) : vp->events;

	if (now > vp->shown) {
		cli_progress_add(vp->line, now - vp->shown);
		vp->shown = now;
	}
}

static int verify(evs_store *store, struct cli_ctx *ctx, void *arg)
{
	evs_store_info head;
	uint64_t problems = 0;
	struct verify_progress vp = {0};
	evs_verify_opts opts = {.on_problem = print_problem, .on_progress = on_progress};
	int rc;

	(void)arg;
	if (cli_store_head(store, &head) != EVS_OK)
		return CLI_EXIT_FAIL;
	vp.events = head.last_position;
	vp.line = cli_progress_start("verify", vp.events);
	opts.ctx = &vp;
	opts.progress_every = 4096;
	rc = evs_verify_ex(store, &opts, &problems);
	cli_progress_done(vp.line);
	if (rc != EVS_OK) {
		cli_store_error(store, rc, "could not verify store \"%s\"", ctx->store_path);
		return CLI_EXIT_FAIL;
	}
	if (problems) {
		cli_error("verify found %llu problem%s in store \"%s\"",
			  (unsigned long long)problems, problems == 1 ? "" : "s", ctx->store_path);
		return CLI_EXIT_FAIL;
	}
	printf("ok: %llu events, no problems\n", (unsigned long long)head.last_position);
	return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_verify = {
	.name = "verify",
	.synopsis = "",
	.summary = "check the store's indexes against the event log",
	.description = "Check positions, records, stream versions, the id index and "
		       "the time index.\nPrints each problem on stderr; prints \"ok: N "
		       "events, no problems\" and exits 0\nonly if there are none.",
	.min_args = 0,
	.max_args = 0,
	.run_store = verify,
};
