/*
 * cmd_project.c - "evs project": run the projector in this process
 * (--once: catch up to the store's head and exit; otherwise follow until
 * SIGINT/SIGTERM). The daemon is evs-projector; both use libevsproj.
 *
 * With --once a cron job must be able to trust the exit status: 0 only
 * when the head was reached; 1 when PostgreSQL could not be reached
 * within --connect-timeout (default 30 s with --once) or when stopped by
 * a signal before the head (the message says how far it got).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "evsproj.h"
#include "signals.h"

enum {
	OPT_DSN,
	OPT_RULES,
	OPT_PROJECTION,
	OPT_MIGRATIONS,
	OPT_BATCH,
	OPT_ONCE,
	OPT_NO_BUILTIN,
	OPT_DEAD_LETTER,
	OPT_REBUILD,
	OPT_BULK_THRESHOLD,
	OPT_CONNECT_TIMEOUT,
	OPT_VERBOSE
};

static const struct cli_option options[] = {
	[OPT_DSN] = {"dsn", "DSN",
		     "libpq connection string (default: $EVS_PG_DSN, else the PG* environment)"},
	[OPT_RULES] = {"rules", "FILE", "declared projection file"},
	[OPT_PROJECTION] = {"projection", "NAME",
			    "checkpoint name (default: the rules' name, or builtin)"},
	[OPT_MIGRATIONS] = {"migrations", "DIR", "apply migrations from DIR first"},
	[OPT_BATCH] = {"batch", "N", "events per transaction (default 10000)"},
	[OPT_ONCE] = {"once", NULL, "catch up to the store's head, then exit"},
	[OPT_NO_BUILTIN] = {"no-builtin", NULL, "do not write the built-in read models"},
	[OPT_DEAD_LETTER] = {"dead-letter", NULL, "park failing events in evs.dead_letters"},
	[OPT_REBUILD] = {"rebuild", NULL,
			 "rebuild the --rules projection into a shadow schema, then swap it in"},
	[OPT_BULK_THRESHOLD] = {"bulk-threshold", "N",
				"load without the built-in models' secondary indexes when at "
				"least N events behind (default 100000; 0 = never)"},
	[OPT_CONNECT_TIMEOUT] = {"connect-timeout", "SECONDS",
				 "give up when PostgreSQL cannot be reached for this long (default"
				 " 30 with --once, else 0 = retry for ever)"},
	[OPT_VERBOSE] = {"verbose", NULL, "log every batch"},
	{NULL, NULL, NULL}};

struct project_state {
	evp_config cfg;
	bool init;
	bool timeout_given;
	/* the progress line (a terminal only): started at the first report,
	 * when the projector knows where it starts and where the head is */
	struct cli_progress *progress;
	bool progress_started;
	uint64_t progress_shown;
};

const char *cli_pg_dsn(const char *given);

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void on_progress(void *ctx, const evp_stats *stats)
{
	struct project_state *st = ctx;

	if (!st->progress_started) {
		st->progress_started = true;
		st->progress = cli_progress_start(
			"project", stats->target > stats->start ? stats->target - stats->start : 0);
	}
	if (stats->events > st->progress_shown) {
		cli_progress_add(st->progress, stats->events - st->progress_shown);
		st->progress_shown = stats->events;
	}
}

static void log_stderr(void *ctx, int level, const char *message)
{
	(void)ctx;
	if (level <= EVS_LOG_WARNING)
		cli_error("%s", message);
	else
		fprintf(stderr, "evs: %s\n", message);
}

static int on_option(struct cli_ctx *ctx, void *state, int index, const char *value)
{
	struct project_state *st = state;
	uint64_t n;

	(void)ctx;
	if (!st->init) {
		evp_config_init(&st->cfg);
		st->init = true;
	}
	switch (index) {
	case OPT_DSN: st->cfg.dsn = value; break;
	case OPT_RULES: st->cfg.rules_path = value; break;
	case OPT_PROJECTION: st->cfg.projection = value; break;
	case OPT_MIGRATIONS: st->cfg.migrations_dir = value; break;
	case OPT_BATCH:
		if (cli_parse_u64(value, &n) != 0 || n == 0 || n > 100000)
			return cli_bad_value("batch", value, "expected an integer in 1..100000");
		st->cfg.batch_max = (int)n;
		break;
	case OPT_ONCE: st->cfg.once = true; break;
	case OPT_NO_BUILTIN: st->cfg.builtin = false; break;
	case OPT_DEAD_LETTER: st->cfg.dead_letter = true; break;
	case OPT_REBUILD: st->cfg.rebuild = true; break;
	case OPT_BULK_THRESHOLD:
		return cli_option_u64("bulk-threshold", value, 0, &st->cfg.bulk_threshold);
	case OPT_CONNECT_TIMEOUT:
		if (cli_parse_u64(value, &n) != 0 || n > 86400)
			return cli_bad_value("connect-timeout", value,
					     "expected an integer number of seconds in 0..86400");
		st->cfg.connect_timeout_ms = (int)n * 1000;
		st->timeout_given = true;
		break;
	case OPT_VERBOSE: st->cfg.log_level = EVS_LOG_DEBUG; break;
	default: return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

static int run(struct cli_ctx *ctx, void *state)
{
	struct project_state *st = state;
	evp_stats stats;
	char err[2048];
	int rc;

	if (!st->init) {
		evp_config_init(&st->cfg);
		st->init = true;
	}
	st->cfg.store_path = ctx->store_path;
	st->cfg.dsn = cli_pg_dsn(st->cfg.dsn);
	if (!st->timeout_given && (st->cfg.once || st->cfg.rebuild))
		st->cfg.connect_timeout_ms = 30000;
	st->cfg.log = log_stderr;
	st->cfg.stop = &stop_requested;
	if (st->cfg.once || st->cfg.rebuild) { /* live mode has no end to show */
		st->cfg.on_progress = on_progress;
		st->cfg.progress_ctx = st;
	}
	evs__stop_signals(on_signal, false);
	rc = evp_run(&st->cfg, &stats, err, sizeof err);
	cli_progress_done(st->progress);
	if (rc == EVP_STOPPED && (st->cfg.once || st->cfg.rebuild)) {
		cli_error(
			"stopped before reaching the store's head: %llu events applied, checkpoint"
			" %llu of %llu",
			(unsigned long long)stats.events, (unsigned long long)stats.checkpoint,
			(unsigned long long)stats.target);
		return CLI_EXIT_FAIL;
	}
	if (rc != EVP_OK && rc != EVP_STOPPED) {
		cli_error("%s", err);
		if (rc == EVP_CONNECT && !st->cfg.dsn[0])
			cli_hint("no --dsn or EVS_PG_DSN was given, so libpq's defaults (PG*"
				 " environment, local socket) were tried");
		return CLI_EXIT_FAIL;
	}
	printf("ok: %llu events applied in %llu batches, checkpoint %llu\n",
	       (unsigned long long)stats.events, (unsigned long long)stats.batches,
	       (unsigned long long)stats.checkpoint);
	return cli_finish_output(CLI_EXIT_OK);
}

const struct cli_command cli_cmd_project = {
	.name = "project",
	.synopsis = "[--once] [--dsn DSN] [--rules FILE]",
	.summary = "project the store into PostgreSQL read models",
	.description =
		"Apply the store's events after the projection's checkpoint to PostgreSQL:\n"
		"the built-in read models (schema evs) and, with --rules, a declared\n"
		"projection; each batch and its checkpoint in one transaction. With --once,\n"
		"stop at the store's head; otherwise follow new commits until interrupted.\n"
		"With --once the exit status is 0 only when the head was reached: 1 when\n"
		"PostgreSQL stays unreachable for --connect-timeout, or when interrupted first.",
	.options = options,
	.min_args = 0,
	.max_args = 0,
	.state_size = sizeof(struct project_state),
	.on_option = on_option,
	.run = run,
};
