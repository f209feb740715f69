/*
 * signals.h: how the programs (evs-projector, evs-query, "evs tail") take
 * their stop signals, in one place so that all stop the same way.
 */
#ifndef EVS_BASE_SIGNALS_H
#define EVS_BASE_SIGNALS_H

#include <signal.h>
#include <stdbool.h>

/*
 * Install handler for SIGTERM and SIGINT without SA_RESTART, so that a
 * blocking call returns EINTR and the caller's loop looks at its stop
 * flag. With ignore_pipe (the daemons), ignore SIGPIPE, so that a peer
 * that went away is an EPIPE error on that connection instead of the end
 * of the process.
 */
void evs__stop_signals(void (*handler)(int), bool ignore_pipe);

/*
 * The same with the one handler every daemon needs: it only sets the
 * process's stop flag, whose address is returned (0 until SIGTERM or
 * SIGINT arrives). A daemon's loops read that flag; none keeps its own.
 */
volatile sig_atomic_t *evs__stop_flag_signals(bool ignore_pipe);

#endif /* EVS_BASE_SIGNALS_H */
