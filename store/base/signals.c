/*
 * signals.c - the daemons' stop signals (see signals.h).
 */
#include <signal.h>
#include <string.h>

#include "signals.h"

void evs__stop_signals(void (*handler)(int), bool ignore_pipe)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (ignore_pipe)
		signal(SIGPIPE, SIG_IGN);
}

/* The process's stop flag: a signal handler only sets it (STYLE 12). */
static volatile sig_atomic_t stop_flag;

static void set_stop_flag(int sig)
{
	(void)sig;
	stop_flag = 1;
}

volatile sig_atomic_t *evs__stop_flag_signals(bool ignore_pipe)
{
	evs__stop_signals(set_stop_flag, ignore_pipe);
	return &stop_flag;
}
