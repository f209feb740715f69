/*
 * main.c - evs-projector: the projector daemon.
 *
 *   evs-projector [--option value]...
 *
 * Configuration is the table below (name, type, default, help): it drives
 * flag parsing, the environment variables (EVS_PROJECTOR_<NAME> in upper
 * case, '-' as '_'; a flag wins over the environment), validation and
 * --help. SIGTERM and SIGINT set a flag; the loop finishes or abandons
 * its batch (an uncommitted batch is rolled back by PostgreSQL) and
 * exits within about 200 ms plus one batch.
 *
 * Exit status: 0 stopped (live) or caught up (--once), 1 error (also a
 * --once run stopped before the head, or PostgreSQL unreachable for
 * --connect-timeout-ms), 2 bad usage, 3 the projection runs elsewhere.
 */
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evsproj.h"

#ifndef EVS_MIGRATIONS_DIR
#define EVS_MIGRATIONS_DIR "migrations"
#endif

enum ctype { C_STR, C_INT, C_BOOL };

struct copt {
	const char *name;
	enum ctype type;
	const char *def;
	long min, max;
	const char *help;
	const char *value; /* resolved */
};

static struct copt opts[] = {
	{"store", C_STR, "./evstore-data", 0, 0, "store directory", NULL},
	{"dsn", C_STR, "", 0, 0, "libpq connection string (empty: PG* environment)", NULL},
	{"projection", C_STR, "", 0, 0, "checkpoint name (default: the rules' name, or builtin)",
	 NULL},
	{"rules", C_STR, "", 0, 0, "declared projection file", NULL},
	{"builtin", C_BOOL, "true", 0, 1, "write the built-in event log (evs.events)", NULL},
	{"state", C_BOOL, "true", 0, 1, "with builtin: also evs.state and evs.state_history", NULL},
	{"rebuild", C_BOOL, "false", 0, 1,
	 "rebuild the rules' projection into a shadow schema, then swap it in", NULL},
	{"migrations", C_STR, EVS_MIGRATIONS_DIR, 0, 0, "migrations directory (empty: none)", NULL},
	{"dead-letter", C_BOOL, "false", 0, 1, "park failing events instead of stopping", NULL},
	{"batch", C_INT, "10000", 1, 100000, "events per transaction", NULL},
	{"batch-wait-ms", C_INT, "0", 0, 10000, "live: wait this long to fill a batch", NULL},
	{"retry-max-ms", C_INT, "5000", 100, 600000, "longest backoff while PostgreSQL is away",
	 NULL},
	{"once", C_BOOL, "false", 0, 1, "catch up to the store's head, then exit", NULL},
	{"connect-timeout-ms", C_INT, "0", 0, 86400000,
	 "give up when PostgreSQL cannot be reached for this long (0: never)", NULL},
	{"bulk-threshold", C_INT, "100000", 0, 2000000000,
	 "start this many events behind or more: catch up with the built-in models' secondary"
	 " indexes dropped, then rebuild them (0: never)",
	 NULL},
	{"log-level", C_STR, "info", 0, 0, "error, warning, info or debug", NULL},
	{NULL, C_STR, NULL, 0, 0, NULL, NULL},
};

static volatile sig_atomic_t stop_flag;
static int log_level = EVP_LOG_INFO;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static const char *const level_names[] = {"error", "warning", "info", "debug"};

static void log_stderr(void *ctx, int level, const char *message)
{
	struct timespec ts;
	struct tm tm;
	char when[32];

	(void)ctx;
	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ evs-projector %s: ", when, ts.tv_nsec / 1000000,
		level_names[level < 0   ? 0
			    : level > 3 ? 3
					: level]);
	/* one line per message: libpq's multi-line details are joined */
	for (; *message; message++) {
		if (*message == '\n') {
			while (message[1] == '\t' || message[1] == '\n' || message[1] == ' ')
				message++;
			if (message[1])
				fputc(' ', stderr);
		} else {
			fputc(*message, stderr);
		}
	}
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	struct copt *o;

	fputs("usage: evs-projector [--OPTION VALUE]... [--once]\n\n"
	      "Follow an evstore and write its read models into PostgreSQL.\n\n"
	      "options (environment variable in brackets):\n",
	      f);
	for (o = opts; o->name; o++) {
		char env[64], *p;

		snprintf(env, sizeof env, "EVS_PROJECTOR_%s", o->name);
		for (p = env; *p; p++)
			*p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		fprintf(f, "  --%-15s %s (%s, default \"%s\") [%s]\n", o->name, o->help,
			o->type == C_INT    ? "integer"
			: o->type == C_BOOL ? "boolean"
					    : "text",
			o->def, env);
	}
	fputs("  -h, --help          show this help and exit\n", f);
}

static struct copt *find(const char *name, size_t len)
{
	struct copt *o;

	for (o = opts; o->name; o++)
		if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
			return o;
	return NULL;
}

static int check(const struct copt *o, const char *v, long *num)
{
	char *end;

	if (o->type == C_STR)
		return 0;
	if (o->type == C_BOOL) {
		if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on"))
			*num = 1;
		else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") ||
			 !strcmp(v, "off"))
			*num = 0;
		else
			goto bad;
		return 0;
	}
	*num = strtol(v, &end, 10);
	if (end == v || *end || *num < o->min || *num > o->max)
		goto bad;
	return 0;
bad:
	if (o->type == C_INT)
		fprintf(stderr,
			"evs-projector: invalid value \"%s\" for option --%s: not an integer in "
			"%ld..%ld\n",
			v, o->name, o->min, o->max);
	else
		fprintf(stderr,
			"evs-projector: invalid value \"%s\" for option --%s: not a boolean\n", v,
			o->name);
	return -1;
}

static long num(const char *name)
{
	struct copt *o = find(name, strlen(name));
	long n = 0;

	check(o, o->value, &n);
	return n;
}

static const char *str(const char *name)
{
	const char *v = find(name, strlen(name))->value;

	return v && v[0] ? v : NULL;
}

int main(int argc, char **argv)
{
	struct copt *o;
	evp_config cfg;
	evp_stats stats;
	struct sigaction sa;
	char err[2048];
	long n;
	int i, rc;

	/* defaults, then environment, then flags */
	for (o = opts; o->name; o++) {
		char env[64], *p;
		const char *v;

		snprintf(env, sizeof env, "EVS_PROJECTOR_%s", o->name);
		for (p = env; *p; p++)
			*p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		v = getenv(env);
		o->value = v ? v : o->def;
		if (v && check(o, v, &n) < 0)
			return 2;
	}
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *v;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "evs-projector: unexpected argument \"%s\"\n", a);
			return 2;
		}
		a += 2;
		eq = strchr(a, '=');
		o = find(a, eq ? (size_t)(eq - a) : strlen(a));
		if (!o) {
			fprintf(stderr, "evs-projector: unknown option \"%s\"\n", argv[i]);
			fputs("hint: see \"evs-projector --help\"\n", stderr);
			return 2;
		}
		if (eq)
			v = eq + 1;
		else if (o->type == C_BOOL)
			v = "true";
		else if (i + 1 < argc)
			v = argv[++i];
		else {
			fprintf(stderr, "evs-projector: option \"--%s\" requires a value\n",
				o->name);
			return 2;
		}
		if (check(o, v, &n) < 0)
			return 2;
		o->value = v;
	}

	evp_config_init(&cfg);
	cfg.store_path = str("store");
	cfg.dsn = str("dsn");
	cfg.projection = str("projection");
	cfg.rules_path = str("rules");
	cfg.builtin = num("builtin");
	cfg.builtin_state = num("state");
	cfg.rebuild = num("rebuild");
	cfg.migrations_dir = str("migrations");
	cfg.dead_letter = num("dead-letter");
	cfg.batch_max = (int)num("batch");
	cfg.batch_wait_ms = (int)num("batch-wait-ms");
	cfg.retry_max_ms = (int)num("retry-max-ms");
	cfg.once = num("once");
	cfg.connect_timeout_ms = (int)num("connect-timeout-ms");
	cfg.bulk_threshold = (uint64_t)num("bulk-threshold");
	cfg.log_level = -1;
	for (i = 0; i < 4; i++)
		if (!strcmp(str("log-level") ? str("log-level") : "", level_names[i]))
			cfg.log_level = i;
	if (cfg.log_level < 0 || !cfg.store_path) {
		fprintf(stderr, "evs-projector: invalid value \"%s\" for option --log-level\n",
			str("log-level") ? str("log-level") : "");
		return 2;
	}
	log_level = cfg.log_level;
	cfg.log = log_stderr;
	cfg.stop = &stop_flag;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = evp_run(&cfg, &stats, err, sizeof err);
	if (rc == EVP_STOPPED && (cfg.once || cfg.rebuild)) {
		snprintf(err, sizeof err,
			 "stopped before reaching the store's head: %llu events applied, checkpoint"
			 " %llu of %llu",
			 (unsigned long long)stats.events, (unsigned long long)stats.checkpoint,
			 (unsigned long long)stats.target);
		log_stderr(NULL, EVP_LOG_ERROR, err);
		return 1;
	}
	if (rc == EVP_OK || rc == EVP_STOPPED) {
		log_stderr(NULL, EVP_LOG_INFO, rc == EVP_OK ? "caught up" : "stopped");
		if (cfg.log_level >= EVP_LOG_INFO)
			fprintf(stderr,
				"evs-projector: applied %llu events in %llu batches, checkpoint %llu\n",
				(unsigned long long)stats.events, (unsigned long long)stats.batches,
				(unsigned long long)stats.checkpoint);
		return 0;
	}
	log_stderr(NULL, EVP_LOG_ERROR, err);
	return rc == EVP_LOCKED ? 3 : 1;
}
