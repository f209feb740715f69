/*
 * signals.h: how the daemons (evs-projector, evs-query) take their stop
 * signals, in one place so that both stop the same way.
 */
#ifndef EVS_BASE_SIGNALS_H
#define EVS_BASE_SIGNALS_H

/*
 * Install handler for SIGTERM and SIGINT without SA_RESTART, so that a
 * blocking call returns EINTR and the caller's loop looks at its stop
 * flag, and ignore SIGPIPE, so that a peer that went away is an EPIPE
 * error on that connection instead of the end of the process.
 */
void evs__stop_signals(void (*handler)(int));

#endif /* EVS_BASE_SIGNALS_H */
