/*
 * signals.h: how the programs (evs-projector, evs-query, "evs tail") take
 * their stop signals, in one place so that all stop the same way.
 */
#ifndef EVS_BASE_SIGNALS_H
#define EVS_BASE_SIGNALS_H

#include <stdbool.h>

/*
 * Install handler for SIGTERM and SIGINT without SA_RESTART, so that a
 * blocking call returns EINTR and the caller's loop looks at its stop
 * flag. With ignore_pipe (the daemons), ignore SIGPIPE, so that a peer
 * that went away is an EPIPE error on that connection instead of the end
 * of the process.
 */
void evs__stop_signals(void (*handler)(int), bool ignore_pipe);

#endif /* EVS_BASE_SIGNALS_H */
