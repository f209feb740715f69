/*
 * storeopen.c - opening the store and reporting library errors.
 *
 * Only "evs init" and "evs import" create a store; every other command
 * opens an existing one, so a mistyped --store is an error instead of a
 * new empty store. Commands that only read open it read-only.
 *
 * The library logs through a callback; the tool hands it the shared
 * stderr sink (store/base/log.c), set up by main() from $EVS_LOG_LEVEL
 * (error, warning, info or debug) and --log-format.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"

evs_store *cli_open_store(const struct cli_ctx *ctx, enum cli_open_mode mode,
			  const evs_options *base)
{
	evs_options opts;
	evs_store *store = NULL;
	const char *detail;
	int rc;

	if (base)
		opts = *base;
	else
		evs_options_init(&opts);
	opts.create = mode == CLI_OPEN_CREATE;
	opts.read_only = mode == CLI_OPEN_READ;
	opts.log = evs__log; /* set up by main() */
	opts.log_ctx = NULL;

	rc = evs_open(ctx->store_path, &opts, &store);
	if (rc == EVS_OK)
		return store;

	detail = evs_open_errmsg();
	if (!detail || !detail[0])
		detail = evs_strerror(rc);
	if (rc == EVS_NO_STORE) {
		cli_error("store \"%s\" does not exist", ctx->store_path);
		cli_hint("create it with \"evs init --store %s\", or set --store or EVS_STORE",
			 ctx->store_path);
	} else {
		cli_error("%s", detail); /* names the store (evs_open) */
	}
	return NULL;
}

int cli_with_store(struct cli_ctx *ctx, enum cli_open_mode mode, const evs_options *opts,
		   cli_store_fn fn, void *arg)
{
	evs_store *store = cli_open_store(ctx, mode, opts);
	int status;

	if (!store)
		return CLI_EXIT_FAIL;
	status = fn(store, ctx, arg);
	evs_close(store);
	return cli_finish_output(status);
}

int cli_store_head(evs_store *store, evs_store_info *head)
{
	int rc = evs_head(store, head);

	if (rc != EVS_OK)
		cli_store_error(store, rc, "could not read the store head");
	return rc;
}

void cli_store_error(evs_store *store, int rc, const char *what, ...)
{
	const char *detail = store ? evs_errmsg(store) : NULL;
	va_list ap;

	if (!detail || !detail[0])
		detail = evs_strerror(rc);
	fflush(stdout);
	fputs("evs: ", stderr);
	va_start(ap, what);
	vfprintf(stderr, what, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", detail);
}
