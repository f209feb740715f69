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
