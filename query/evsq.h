/*
 * evsq.h - libevsquery: the query service (evs-query) over HTTP/JSON.
 *
 * Internal to the evstore tree (not installed): linked by the evs-query
 * daemon and the http tests. Answers come from the PostgreSQL read models
 * of the projector (evs.state, evs.state_history, evs.events, and the
 * checkpoint of the projection that writes them).
 *
 * Conventions: functions return EVSQ_OK (0) or an EVSQ_* code, with a
 * message in PostgreSQL's voice in err. The library never prints: it logs
 * through the evs_log_fn the host installs. Strings in evsq_config are
 * owned by it (copied in by evsq_config_set) and freed by
 * evsq_config_free.
 *
 * HTTP contract (every body is JSON, every 200 names the position it
 * reflects, i.e. the projection's committed checkpoint, read in the same
 * statement, hence the same snapshot, as the rows):
 *
 *   State answers carry "fold":"json_merge_patch": the generic state is
 *   the RFC 7386 fold of the events' data, not the domain's state.
 *   GET /streams/{id}/state                  current state (evs.state)
 *   GET /streams/{id}/state?as_of=RFC3339    state as of a time (state_history)
 *   GET /streams/{id}/state?at_position=N    state after global position N
 *   ...&source=store                         the same replayed from the LMDB
 *                                            store (--store; else 400)
 *   GET /streams/{id}/history?after_version=V&limit=L   states, paged
 *   GET /streams/{id}/events?after_version=V&limit=L    events, paged
 *   GET /health  /ready  /metrics (Prometheus text)
 *
 *   With --store: GET /events/stream?after=N|earliest|latest&stream=&
 *   stream_prefix=&type=a,b (Last-Event-ID wins over after=): the commit
 *   stream as SSE, or NDJSON for Accept: application/x-ndjson; CloudEvents
 *   bodies, id = global position (query/push.h; README, "Push").
 *
 *   Declared read models (--rules FILE[,FILE]: projection files with
 *   "projection", "schema" and "tables"; position = that projection's
 *   checkpoint, read in the same statement as the rows):
 *   GET /models                          {"models": [{projection, schema,
 *                                        tables: [{name, primary_key, columns}]}]}
 *   GET /models/{projection}             the same for one model
 *   GET /models/{projection}/{table}/{key}   one row by its single-column
 *                                        primary key: {projection, table,
 *                                        position, row}
 *   GET /models/{projection}/{table}?after=K&limit=L&{column}=V...
 *                                        rows in primary-key order, keyset
 *                                        paged: {projection, table, position,
 *                                        rows, next_after} (next_after null
 *                                        on the last page; for a composite
 *                                        key it is a JSON object text); a
 *                                        column=value pair filters on equality
 *   GET /models/{projection}/{table}/{key}?as_of=T | ?at_position=N
 *                                        the row then, from the table's
 *                                        history (contract C1: t_history):
 *                                        {projection, table, position, as_of
 *                                        | at_position, valid_from_position,
 *                                        valid_to_position, valid_from_at,
 *                                        valid_to_at, row}; 404 no row then
 *   GET /models/{projection}/{table}?as_of=T | at_position=N&...
 *                                        the listing then (filters, paging)
 *   GET /models/{projection}/{table}/{key}/history?after=P&limit=L
 *                                        {.., key, versions: [{valid_*,
 *                                        row}], next_after} by position
 *   at_position waits like min_position (409 past the checkpoint); a
 *   table without history answers these with 400.
 *   min_position=N on these as on streams. 404 unknown model, table or
 *   key; 400 unknown column or parameter, a value PostgreSQL cannot
 *   convert to the column's type, a key lookup on a composite key; 503 a
 *   declared table missing from the database.
 *
 *   min_position=N on any stream request: wait up to min_position_wait_ms
 *   for the checkpoint to reach N; else 409 {"error":"projection_behind",
 *   "position":P}. at_position beyond the checkpoint is answered the same
 *   way (the state after N is not known yet). The wait is woken by the
 *   projector's pg_notify('evs_checkpoint', '<projection> <position>') at
 *   each batch COMMIT, seen by one LISTEN session of the server's own
 *   (watch.c); answered at once when the last notified checkpoint already
 *   reaches N; while that session is down (PostgreSQL restarting) the
 *   checkpoint is polled. A 409 names the committed checkpoint.
 *
 *   /ready: 200 {"status":"ready","position":P,"checkpoint_age_seconds":A,
 *   "lag_source":"store"|"postgres","store_head":H,"lag":N,"lag_seconds":S}
 *   where with --store H is the store head read after P, N = H - P and S
 *   the age of event P+1 (0 when caught up); without a store H, N and S
 *   are null and lag_source is "postgres" (only P and A, the time since
 *   the checkpoint last moved, are known). 503 {"error":"unavailable"}
 *   when PostgreSQL or the checkpoint is missing or the store head is
 *   behind the checkpoint (not the store this projection follows); 503
 *   {"error":"projection_behind",...,"lag":N} when N > ready_max_lag > 0.
 *   /metrics adds the gauges evsq_postgres_up (the listener session is
 *   connected), evsq_projection_position (the last notified checkpoint),
 *   evsq_store_head_position, evsq_projection_lag_events and
 *   evsq_projection_lag_seconds (these three with --store), and the counter
 *   evsq_checkpoint_notifications_total; no statement per scrape; a figure
 *   that is not known is left out, never guessed.
 *
 *   Errors: {"error": code, "message": text}: 400 bad_request (malformed
 *   parameter, unknown parameter), 401 unauthorized (bearer token), 404
 *   not_found (unknown stream or route), 405 method_not_allowed, 409
 *   projection_behind, 413 payload_too_large (a body on GET), 503
 *   unavailable (PostgreSQL unreachable), 500 internal.
 */
#ifndef EVSQ_H
#define EVSQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "evstore.h"

/* The page's folder as installed (meson sets it from the prefix). */
#ifndef EVSQ_WWW_DIR
#define EVSQ_WWW_DIR "/usr/local/share/evstore/www"
#endif

#define EVSQ_ERRNO_MAP(XX)                         \
	XX(OK, 0, "success")                       \
	XX(INVALID, 1, "invalid argument")         \
	XX(NOMEM, 2, "out of memory")              \
	XX(LISTEN, 3, "could not listen")          \
	XX(UNAVAILABLE, 4, "database unavailable") \
	XX(SQL, 5, "statement failed")

enum {
#define EVSQ__ENUM(name, value, text) EVSQ_##name = value,
	EVSQ_ERRNO_MAP(EVSQ__ENUM)
#undef EVSQ__ENUM
};

const char *evsq_strerror(int code);

/* Logging: libevstore's callback type and levels (evs_log_fn, EVS_LOG_*
 * in evstore.h), one convention for the three libraries. */

/* ---------------------------------------------------------------------
 * Configuration (config.c): one typed table (name, type, default, bounds,
 * help) drives defaults, flags (--name value, --name=value; '-' or '_'),
 * environment variables EVS_QUERY_<NAME>, validation and --help.
 * ------------------------------------------------------------------- */

#define EVSQ_CONFIG_MAP(XX)                                                                        \
	XX(listen, STR, "127.0.0.1", 0, 0, "address to listen on (loopback by default)")           \
	XX(port, INT, "8080", 0, 65535, "TCP port (0: any free port)")                             \
	XX(dsn, STR, "", 0, 0,                                                                     \
	   "libpq connection string of the read-model database (empty: none, with --store"         \
	   " only the store's routes are served)")                                                 \
	XX(store, STR, "", 0, 0,                                                                   \
	   "store directory for source=store answers (opened read-only; empty: off)")              \
	XX(projection, STR, "", 0, 0,                                                              \
	   "checkpoint name of the projection writing the built-in models (empty: "                \
	   "the --rules file's projection, or builtin; as evs project names it)")                  \
	XX(rules, STR, "", 0, 0, "projection files served at /models (comma-separated)")           \
	XX(token, STR, "", 0, 0,                                                                   \
	   "bearer token callers must send (empty: none; prefer the environment)")                 \
	XX(threads, INT, "2", 1, 256, "HTTP event loops (threads; they never block)")              \
	XX(batch_connections, INT, "2", 1, 64,                                                     \
	   "PostgreSQL connections per event loop for batched state lookups")                      \
	XX(batch_depth, INT, "2", 1, 4, "statements in flight per batcher connection (pipelined)") \
	XX(loop_slice_us, INT, "0", 0, 100000,                                                     \
	   "CPU slice an event loop asks the kernel for, microseconds (Linux 6.12+ EEVDF:"         \
	   " picked sooner when it wakes, same share; 0: the kernel's default)")                   \
	XX(pg_connections, INT, "4", 1, 256,                                                       \
	   "worker threads, each with a PostgreSQL connection, for the other requests")            \
	XX(max_connections, INT, "512", 1, 65536, "concurrent HTTP connections")                   \
	XX(max_per_ip, INT, "0", 0, 65536, "HTTP connections per client address (0: any)")         \
	XX(timeout_s, INT, "30", 1, 3600, "idle HTTP connection timeout, seconds")                 \
	XX(request_memory, INT, "16384", 4096, 1048576,                                            \
	   "bytes per connection for the request line and headers")                                \
	XX(min_position_wait_ms, INT, "2000", 0, 60000,                                            \
	   "longest wait for min_position before answering 409")                                   \
	XX(ready_max_lag, INT, "0", 0, 1000000000000,                                              \
	   "events the projection may trail the store before /ready answers 503 "                  \
	   "(needs --store; 0: lag does not affect readiness)")                                    \
	XX(page_max, INT, "1000", 1, 100000, "largest limit of a page")                            \
	XX(statement_timeout_ms, INT, "5000", 0, 600000, "PostgreSQL statement_timeout")           \
	XX(push_heartbeat, INT, "15", 1, 3600,                                                     \
	   "seconds between heartbeats on an idle GET /events/stream")                             \
	XX(push_max_streams, INT, "256", 1, 65536,                                                 \
	   "concurrent GET /events/stream answers (beyond: 503)")                                  \
	XX(push_window, INT, "16384", 1024, 1048576,                                               \
	   "newest events kept encoded for the streams; a stream further behind is cut")           \
	XX(push_source, STR, "", 0, 0,                                                             \
	   "CloudEvents source of pushed events (empty: urn:evstore: and the store's path)")       \
	XX(log_level, LEVEL, "info", 0, 3, "most verbose level logged")                            \
	XX(log_format, FORMAT, "text", 0, 1, "log lines as text, or one JSON object per line")     \
	XX(www, STR, EVSQ_WWW_DIR, 0, 0,                                                           \
	   "folder of the auditor's page served at / (empty: no page)")

/* The types of store/base/opt.h, in its order: STR is a char *, the others
 * a long (LEVEL: EVS_LOG_*, FORMAT: 0 text, 1 json). */
enum evsq_option_type { EVSQ_STR, EVSQ_INT, EVSQ_BOOL, EVSQ_LEVEL, EVSQ_FORMAT };

typedef struct evsq_config {
#define EVSQ__FIELD_STR(name)                        char *name;
#define EVSQ__FIELD_INT(name)                        long name;
#define EVSQ__FIELD_LEVEL(name)                      long name;
#define EVSQ__FIELD_FORMAT(name)                     long name;
#define EVSQ__FIELD(name, type, def, min, max, help) EVSQ__FIELD_##type(name)
	EVSQ_CONFIG_MAP(EVSQ__FIELD)
#undef EVSQ__FIELD
#undef EVSQ__FIELD_FORMAT
#undef EVSQ__FIELD_LEVEL
#undef EVSQ__FIELD_INT
#undef EVSQ__FIELD_STR
} evsq_config;

typedef struct evsq_option {
	const char *name;
	int type;
	const char *def;
	long min, max;
	const char *help;
} evsq_option;

/* The table, for --help. */
const evsq_option *evsq_options(size_t *count);
/* Defaults; EVSQ_NOMEM. */
int evsq_config_init(evsq_config *cfg);
void evsq_config_free(evsq_config *cfg);
/* Set one option by name ('-' and '_' alike), validated against its
 * bounds; EVSQ_INVALID with err filled. */
int evsq_config_set(evsq_config *cfg, const char *name, const char *value, char *err,
		    size_t errlen);
/* What the command line asks for besides the options. */
enum { EVSQ_RUN, EVSQ_HELP, EVSQ_VERSION };
/* EVS_QUERY_<NAME> variables, then flags; *action is EVSQ_HELP for
 * --help/-h, EVSQ_VERSION for --version. Refused (EVSQ_INVALID, err
 * filled): an unknown or repeated flag, a missing or empty value, a value
 * out of its bounds (store/base/opt.h). */
int evsq_config_load(evsq_config *cfg, int argc, char **argv, int *action, char *err,
		     size_t errlen);
/* The table as opt.c reads it, for --help. */
void evsq_config_help(FILE *f);

/* ---------------------------------------------------------------------
 * The server (server.c and the files of server.h)
 * ------------------------------------------------------------------- */

typedef struct evsq_server evsq_server;

/* Listen and serve from internal threads; the configuration is copied.
 * PostgreSQL is connected lazily, so the server starts (and answers 503)
 * while the database is away. */
int evsq_server_start(const evsq_config *cfg, evs_log_fn log, void *log_ctx, evsq_server **out,
		      char *err, size_t errlen);
/* The bound port (useful with port 0). */
unsigned evsq_server_port(const evsq_server *srv);
/* Stop listening, finish the requests in progress, free. NULL is fine. */
void evsq_server_stop(evsq_server *srv);

#endif
