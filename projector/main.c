/*
 * main.c - evs-projector: the projector daemon.
 *
 *   evs-projector [--option value]...
 *
 * Configuration is the table below, read by the shared option table
 * (store/base/opt.c): it drives flag parsing, the environment variables
 * (EVS_PROJECTOR_<NAME> in upper case, '-' as '_'; a flag wins over the
 * environment), validation and --help. Logs go to the shared stderr sink
 * (store/base/log.c; --log-format json for machines).
 *
 * Signals: SIGTERM and SIGINT only set the flag evp_run() reads between
 * steps; its waits for new events are bounded (200 ms live, 1 s with
 * --once or --rebuild), so a signal that lands just after a check is seen
 * at the next one, never slept through (no pause() here). The loop
 * finishes or abandons its batch (an uncommitted batch is rolled back by
 * PostgreSQL) and exits within one wait plus one batch.
 *
 * Exit status: 0 stopped (live) or caught up (--once), 1 error (also a
 * --once run stopped before the head, or PostgreSQL unreachable for
 * --connect-timeout-ms), 2 bad usage, 3 the projection runs elsewhere.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "evs_version.h"
#include "evsproj.h"
#include "log.h"
#include "opt.h"
#include "signals.h"

#ifndef EVS_MIGRATIONS_DIR
#define EVS_MIGRATIONS_DIR "migrations"
#endif

struct settings {
	char *store, *dsn, *projection, *rules, *migrations;
	long builtin, state, rebuild, dead_letter, once;
	long batch, batch_wait_ms, retry_max_ms, connect_timeout_ms, bulk_threshold;
	long log_level, log_format;
};

#define S(field) offsetof(struct settings, field)

static const struct evs__opt rows[] = {
	{"store", EVS__OPT_STR, "./evstore-data", 0, 0, "store directory", S(store), 0},
	{"dsn", EVS__OPT_STR, "", 0, 0, "libpq connection string (empty: PG* environment)", S(dsn),
	 0},
	{"projection", EVS__OPT_STR, "", 0, 0,
	 "checkpoint name (default: the rules' name, or builtin)", S(projection), 0},
	{"rules", EVS__OPT_STR, "", 0, 0, "declared projection file", S(rules), 0},
	{"builtin", EVS__OPT_BOOL, "true", 0, 1, "write the built-in event log (evs.events)",
	 S(builtin), 0},
	{"state", EVS__OPT_BOOL, "true", 0, 1, "with builtin: also evs.state and evs.state_history",
	 S(state), 0},
	{"rebuild", EVS__OPT_BOOL, "false", 0, 1,
	 "rebuild the rules' projection into a shadow schema, then swap it in", S(rebuild), 0},
	{"migrations", EVS__OPT_STR, EVS_MIGRATIONS_DIR, 0, 0, "migrations directory (empty: none)",
	 S(migrations), EVS__OPT_EMPTY_OK},
	{"dead-letter", EVS__OPT_BOOL, "false", 0, 1, "park failing events instead of stopping",
	 S(dead_letter), 0},
	{"batch", EVS__OPT_INT, "10000", 1, 100000, "events per transaction", S(batch), 0},
	{"batch-wait-ms", EVS__OPT_INT, "0", 0, 10000, "live: wait this long to fill a batch",
	 S(batch_wait_ms), 0},
	{"retry-max-ms", EVS__OPT_INT, "5000", 100, 600000,
	 "longest backoff while PostgreSQL is away", S(retry_max_ms), 0},
	{"once", EVS__OPT_BOOL, "false", 0, 1, "catch up to the store's head, then exit", S(once),
	 0},
	{"connect-timeout-ms", EVS__OPT_INT, "0", 0, 86400000,
	 "give up when PostgreSQL cannot be reached for this long (0: never)",
	 S(connect_timeout_ms), 0},
	{"bulk-threshold", EVS__OPT_INT, "100000", 0, 2000000000,
	 "start this many events behind or more: catch up with the built-in models' secondary"
	 " indexes dropped, then rebuild them (0: never)",
	 S(bulk_threshold), 0},
	{"log-level", EVS__OPT_LEVEL, "info", 0, 3, "most verbose level logged", S(log_level), 0},
	{"log-format", EVS__OPT_FORMAT, "text", 0, 1,
	 "log lines as text, or one JSON object per line", S(log_format), 0},
};

static const struct evs__opt_table table = {"evs-projector", "EVS_PROJECTOR_", rows,
					    sizeof rows / sizeof rows[0]};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(void)
{
	fputs("usage: evs-projector [--OPTION VALUE]... [--once]\n\n"
	      "Follow an evstore and write its read models into PostgreSQL.\n\n"
	      "options (a flag wins over its environment variable):\n",
	      stdout);
	evs__opt_help(&table, stdout);
	fputs("\nexit status: 0 stopped (live) or caught up (--once), 1 error (also a --once\n"
	      "run stopped before the head), 2 bad usage, 3 the projection runs elsewhere\n",
	      stdout);
}

static const char *nonempty(const char *s)
{
	return s && s[0] ? s : NULL;
}

/* Parse the command line into *s; -1 run, else the exit status. */
static int configure(struct settings *s, int argc, char **argv)
{
	char err[1024];
	int action;

	memset(s, 0, sizeof *s);
	if (evs__opt_defaults(&table, s, err, sizeof err) ||
	    evs__opt_load(&table, s, argc, argv, &action, err, sizeof err)) {
		fprintf(stderr, "evs-projector: %s\n", err);
		fputs("hint: see \"evs-projector --help\"\n", stderr);
		return 2;
	}
	if (action == EVS__OPT_HELP)
		usage();
	else if (action == EVS__OPT_VERSION)
		printf("evs-projector %s\n", EVS_VERSION_STRING);
	else
		return -1;
	return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct settings s;
	evp_config cfg;
	evp_stats stats;
	char err[2048];
	int rc;

	if ((rc = configure(&s, argc, argv)) >= 0) {
		evs__opt_free(&table, &s);
		return rc;
	}
	evs__log_setup("evs-projector", (int)s.log_level, (int)s.log_format);

	evp_config_init(&cfg);
	cfg.store_path = s.store;
	cfg.dsn = nonempty(s.dsn);
	cfg.projection = nonempty(s.projection);
	cfg.rules_path = nonempty(s.rules);
	cfg.builtin = s.builtin;
	cfg.builtin_state = s.state;
	cfg.rebuild = s.rebuild;
	cfg.migrations_dir = nonempty(s.migrations);
	cfg.dead_letter = s.dead_letter;
	cfg.batch_max = (int)s.batch;
	cfg.batch_wait_ms = (int)s.batch_wait_ms;
	cfg.retry_max_ms = (int)s.retry_max_ms;
	cfg.once = s.once;
	cfg.connect_timeout_ms = (int)s.connect_timeout_ms;
	cfg.bulk_threshold = (uint64_t)s.bulk_threshold;
	cfg.log_level = (int)s.log_level;
	cfg.log = evs__log;
	cfg.stop = &stop_flag;

	evs__stop_signals(on_signal, true);

	rc = evp_run(&cfg, &stats, err, sizeof err);
	if (rc == EVP_STOPPED && (cfg.once || cfg.rebuild)) {
		evs__logf(
			EVS_LOG_ERROR,
			"stopped before reaching the store's head: %llu events applied, checkpoint"
			" %llu of %llu",
			(unsigned long long)stats.events, (unsigned long long)stats.checkpoint,
			(unsigned long long)stats.target);
		rc = 1;
	} else if (rc == EVP_OK || rc == EVP_STOPPED) {
		evs__logf(EVS_LOG_INFO, "%s: applied %llu events in %llu batches, checkpoint %llu",
			  rc == EVP_OK ? "caught up" : "stopped", (unsigned long long)stats.events,
			  (unsigned long long)stats.batches, (unsigned long long)stats.checkpoint);
		rc = 0;
	} else {
		evs__log(NULL, EVS_LOG_ERROR, err);
		rc = rc == EVP_LOCKED ? 3 : 1;
	}
	evs__opt_free(&table, &s);
	return rc;
}
