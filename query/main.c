/*
 * main.c - evs-query: the query service daemon. Configuration from
 * EVS_QUERY_<NAME> and flags (the table in evsq.h, read by
 * store/base/opt.c; --help prints it); logs through the shared stderr
 * sink (store/base/log.c; --log-format json for machines).
 *
 * Signals: SIGTERM and SIGINT are blocked before the server's threads
 * start (they inherit the mask, so only the main thread ever takes them)
 * and the main thread waits in sigsuspend(), which unblocks them and
 * sleeps in one step: a signal that arrives between the check of the
 * flag and the wait is held pending and ends the wait at once, where
 * "while (!*stop) pause();" would sleep through it. Then the server stops,
 * finishing the requests in progress.
 *
 * Exit status: 0 stopped, 1 error, 2 bad usage.
 */
#include <signal.h>
#include <stdio.h>

#include "evs_version.h"
#include "evsq.h"
#include "log.h"
#include "signals.h"

static void usage(void)
{
	printf("usage: evs-query [--OPTION VALUE]...\n\n"
	       "Serves entity state, history and state as of a time from the PostgreSQL\n"
	       "read models over HTTP/JSON.\n\n"
	       "options (a flag wins over its environment variable):\n");
	evsq_config_help(stdout);
	printf("\nexit status: 0 stopped by SIGTERM or SIGINT, 1 error, 2 bad usage\n");
}

int main(int argc, char **argv)
{
	evsq_config cfg;
	evsq_server *srv = NULL;
	sigset_t block, wait_mask;
	char err[1024];
	volatile sig_atomic_t *stop;
	int rc, action;

	if (evsq_config_init(&cfg)) {
		fprintf(stderr, "evs-query: out of memory\n");
		return 1;
	}
	if ((rc = evsq_config_load(&cfg, argc, argv, &action, err, sizeof err))) {
		fprintf(stderr, "evs-query: %s\n", err);
		fputs("hint: see \"evs-query --help\"\n", stderr);
		evsq_config_free(&cfg);
		return 2;
	}
	if (action != EVSQ_RUN) {
		if (action == EVSQ_HELP)
			usage();
		else
			printf("evs-query %s\n", EVS_VERSION_STRING);
		evsq_config_free(&cfg);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	evs__log_setup("evs-query", (int)cfg.log_level, (int)cfg.log_format);

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGINT);
	stop = evs__stop_flag_signals(true);

	if ((rc = evsq_server_start(&cfg, evs__log, NULL, &srv, err, sizeof err))) {
		evs__log(NULL, EVS_LOG_ERROR, err);
		evsq_config_free(&cfg);
		return 1;
	}
	evs__logf(EVS_LOG_INFO, "listening on %s port %u", cfg.listen, evsq_server_port(srv));
	while (!*stop)
		sigsuspend(&wait_mask);
	evs__logf(EVS_LOG_INFO, "stopping");
	evsq_server_stop(srv);
	evsq_config_free(&cfg);
	return 0;
}
