/*
 * main.c - evs-query: the query service daemon. Configuration from
 * EVS_QUERY_<NAME> and flags (the table in evsq.h; --help prints it);
 * logs to stderr with levels; SIGTERM/SIGINT only set a flag, the main
 * thread then stops the server, which finishes the requests in progress.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "evsq.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void log_stderr(void *ctx, int level, const char *message)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	const long *max = ctx;

	if (level <= *max)
		fprintf(stderr, "evs-query: %s: %s\n", names[level], message);
}

static void usage(void)
{
	size_t n, i;
	const evsq_option *o = evsq_options(&n);

	printf("usage: evs-query [--option value]...\n\n"
	       "Serves entity state, history and state as of a time from the PostgreSQL\n"
	       "read models over HTTP/JSON. Every option can also be set as EVS_QUERY_<NAME>.\n\n");
	for (i = 0; i < n; i++) {
		char flag[64];
		size_t j;

		snprintf(flag, sizeof flag, "--%s", o[i].name);
		for (j = 2; flag[j]; j++)
			if (flag[j] == '_')
				flag[j] = '-';
		printf("  %-24s %-4s %s (default \"%s\"", flag,
		       o[i].type == EVSQ_INT ? "int" : "str", o[i].help, o[i].def);
		if (o[i].type == EVSQ_INT)
			printf(", %ld..%ld", o[i].min, o[i].max);
		printf(")\n");
	}
}

int main(int argc, char **argv)
{
	evsq_config cfg;
	evsq_server *srv = NULL;
	struct sigaction sa;
	char err[1024];
	bool help;
	int rc;

	if (evsq_config_init(&cfg)) {
		fprintf(stderr, "evs-query: out of memory\n");
		return 1;
	}
	if ((rc = evsq_config_load(&cfg, argc, argv, &help, err, sizeof err))) {
		fprintf(stderr, "evs-query: %s\n", err);
		evsq_config_free(&cfg);
		return 2;
	}
	if (help) {
		usage();
		evsq_config_free(&cfg);
		return 0;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((rc = evsq_server_start(&cfg, log_stderr, &cfg.log_level, &srv, err, sizeof err))) {
		fprintf(stderr, "evs-query: %s\n", err);
		evsq_config_free(&cfg);
		return 1;
	}
	if (cfg.log_level >= EVSQ_LOG_INFO)
		fprintf(stderr, "evs-query: info: listening on %s port %u\n", cfg.listen,
			evsq_server_port(srv));
	while (!stop)
		pause();
	if (cfg.log_level >= EVSQ_LOG_INFO)
		fprintf(stderr, "evs-query: info: stopping\n");
	evsq_server_stop(srv);
	evsq_config_free(&cfg);
	return 0;
}
