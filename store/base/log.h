/*
 * log.h: the one stderr sink of the programs (evs-projector, evs-query,
 * evs). The libraries never print: they log through evstore.h's
 * evs_log_fn with its levels (EVS_LOG_ERROR 0 .. EVS_LOG_DEBUG 3); a
 * program sets the sink up once and installs evs__log as that callback.
 *
 * One message, one line on stderr, written with a single write(2) so
 * lines of concurrent threads never interleave:
 *
 *   text: 2026-12-07T11:28:30.123Z evs-query info: listening on ...
 *   json: {"time":"2026-12-07T11:28:30.123Z","level":"info",
 *          "program":"evs-query","message":"listening on ..."}
 *
 * Time is RFC 3339 UTC with milliseconds. Line breaks inside a message
 * (libpq's multi-line details) are joined with a space. In JSON, quotes,
 * backslashes and control characters are escaped and bytes that are not
 * UTF-8 become U+FFFD, so every line parses.
 */
#ifndef EVS_BASE_LOG_H
#define EVS_BASE_LOG_H

#include <stdbool.h>

enum evs__log_format { EVS__LOG_TEXT, EVS__LOG_JSON };

/* "error", "warning", "info", "debug" for levels 0..3; NULL otherwise. */
const char *evs__log_level_name(int level);

/* Program name (kept, not copied), most verbose level shown, format. */
void evs__log_setup(const char *program, int max_level, int format);
bool evs__log_enabled(int level);

/* An evs_log_fn (ctx unused): one line when level <= the maximum. */
void evs__log(void *ctx, int level, const char *message);
void evs__logf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
