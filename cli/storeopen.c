/*
 * storeopen.c - opening the store and reporting library errors.
 *
 * Only "evs init" and "evs import" create a store; every other command
 * opens an existing one, so a mistyped --store is an error instead of a
 * new empty store. Commands that only read open it read-only.
 *
 * The library logs through a callback; the tool prints its warnings and
 * errors on stderr ($EVS_LOG_LEVEL = error, warning, info or debug).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const level_names[] = {"error", "warning", "info", "debug"};

static void log_to_stderr(void *ctx, int level, const char *message)
{
	int max = *(const int *)ctx;

	if (level < 0 || level > max)
		return;
	fprintf(stderr, "evs: %s: %s\n", level <= EVS_LOG_DEBUG ? level_names[level] : "log",
		message);
}

static int log_level(void)
{
	const char *env = getenv("EVS_LOG_LEVEL");

	if (env)
		for (int i = 0; i <= EVS_LOG_DEBUG; i++)
			if (strcmp(env, level_names[i]) == 0)
				return i;
	return EVS_LOG_WARNING;
}

evs_store *cli_open_store(const struct cli_ctx *ctx, enum cli_open_mode mode,
			  const evs_options *base)
{
	static int level;
	evs_options opts;
	evs_store *store = NULL;
	const char *detail;
	int rc;

	if (base)
		opts = *base;
	else
		evs_options_init(&opts);
	level = log_level();
	opts.create = mode == CLI_OPEN_CREATE;
	opts.read_only = mode == CLI_OPEN_READ;
	opts.log = log_to_stderr;
	opts.log_ctx = &level;

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
	} else if (strstr(detail, ctx->store_path)) {
		/* the library's message names the store already */
		cli_error("%s", detail);
	} else {
		cli_error("could not open store \"%s\": %s", ctx->store_path, detail);
	}
	return NULL;
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
