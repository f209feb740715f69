/*
 * evsproj.h - libevsproj: PostgreSQL read models fed from an evstore.
 *
 * Internal to the evstore tree (not installed): linked by evs-projector,
 * the evs tool (evs migrate, evs project) and the postgres tests. libpq
 * stays out of libevstore; everything that speaks to PostgreSQL is here.
 *
 * Conventions: functions return EVP_OK (0) or an EVP_* code; those that
 * can fail for a reason worth telling take a caller's buffer (char *err,
 * size_t errlen) and write the message of the failure there (PostgreSQL's
 * voice: lowercase, names quoted, no trailing period); evp_strerror()
 * names a code. The library never prints: it logs through the evs_log_fn
 * the host installs (server notices included, by severity).
 *
 * Exactly-once: a batch of events and the projection's checkpoint are
 * written in one PostgreSQL transaction (the checkpoint update checks the
 * position it expects, so two writers can never both advance it); after a
 * crash the projector resumes after the committed checkpoint. A session
 * advisory lock per projection keeps a second instance out.
 */
#ifndef EVSPROJ_H
#define EVSPROJ_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "mpjson.h"
#include "rfc3339.h"

#include <libpq-fe.h>

#include "evstore.h"

#define EVP_ERRNO_MAP(XX)                                 \
	XX(OK, 0, "success")                              \
	XX(CONNECT, 1, "could not connect to the server") \
	XX(SQL, 2, "statement failed")                    \
	XX(EDITED, 3, "applied migration was edited")     \
	XX(IO, 4, "input/output error")                   \
	XX(NOMEM, 5, "out of memory")                     \
	XX(LOCKED, 6, "projection is running elsewhere")  \
	XX(STORE, 7, "event store error")                 \
	XX(SYNTAX, 8, "syntax error in projection file")  \
	XX(INVALID, 9, "invalid argument")                \
	XX(STOPPED, 10, "stopped")

enum {
#define EVP__ENUM(name, value, text) EVP_##name = value,
	EVP_ERRNO_MAP(EVP__ENUM)
#undef EVP__ENUM
};

const char *evp_strerror(int code);

/* Logging: libevstore's callback type and levels (evs_log_fn, EVS_LOG_*
 * in evstore.h), one convention for the three libraries. */

/* ---------------------------------------------------------------------
 * Migrations (migrate.c)
 *
 * Files NNNN_name.sql in a directory, applied in version order, each in
 * its own transaction together with its row in evs.schema_migrations
 * (version, name, checksum = hex SHA-256 of the file computed by
 * PostgreSQL's sha256(), applied_at). An applied file whose checksum
 * changed stops the runner (EVP_EDITED) before anything is applied. Two
 * runners at once serialize on a session advisory lock.
 *
 * dirs is one folder or several separated by ':' ("migrations:
 * examples/bank/migrations"), each run in turn: the product's, then an
 * example's. Version numbers are one space (an example numbers its files
 * 1000 and up; bank keeps 0005, applied by databases before issue 10),
 * but the "pending below an applied one" rule looks only at the folder's
 * own files. An applied migration whose file is not in the folder
 * (another folder's, or one that left it) is left alone; a file with the
 * number of an applied migration of another name is refused.
 * ------------------------------------------------------------------- */

#define EVP_MIGRATE_LOCK 0x65767300 /* advisory lock key ("evs\0") */

typedef struct evp_migrate_result {
	int applied; /* files applied by this call */
	int total;   /* files in the directory */
} evp_migrate_result;

int evp_migrate(PGconn *conn, const char *dirs, evs_log_fn log, void *log_ctx,
		evp_migrate_result *result, char *err, size_t errlen);

/* ---------------------------------------------------------------------
 * Declared projections (rules.c)
 *
 * A projection file:
 *
 *     # comment
 *     projection bank
 *     schema bank
 *     tables accounts ledger
 *     on AccountOpened
 *     INSERT INTO accounts (id, owner, balance)
 *     VALUES (:stream, :data.owner, 0);
 *     on Deposited
 *     UPDATE accounts SET balance = balance + :data.amount::numeric
 *      WHERE id = :stream;
 *
 * "schema S" makes the projector run with search_path = S, so statements
 * name their tables unqualified; "tables" lists them (created by
 * migrations in S). Both are needed to rebuild the projection. Listed
 * tables are temporal (history kept) unless a "current t1 t2" line names
 * them; a statement that writes a temporal table in a way whose history
 * cannot be captured is refused at load (EVP_SYNTAX, naming the line).
 *
 * "on TYPE" starts the statements of one event type; each statement ends
 * with ';' at the end of a line. Named parameters: :stream, :version,
 * :position, :type, :type_version, :recorded_at, :occurred_at, :event_id,
 * :correlation_id, :causation_id, :data, :metadata, and paths into the
 * payload :data.a.b[0].c (also :metadata.x). They become $n parameters
 * sent as text with their type inferred by PostgreSQL from the statement
 * (cast them, ":data.amount::numeric", where the context does not say):
 * strings as is, numbers in decimal, booleans true/false, maps and arrays
 * as JSON, nil or a missing path as NULL. Nothing is pasted into SQL.
 * ------------------------------------------------------------------- */

typedef struct evp_rules evp_rules;

int evp_rules_load(const char *path, evp_rules **out, char *err, size_t errlen);
void evp_rules_free(evp_rules *rules);
const char *evp_rules_name(const evp_rules *rules);
/* "schema NAME" (NULL if none) and "tables a b" (NULL if none). */
const char *evp_rules_schema(const evp_rules *rules);
const char *evp_rules_tables(const evp_rules *rules);
/* "current a b" (NULL if none): listed tables kept without history. */
const char *evp_rules_current(const evp_rules *rules);
/* Whether table (unqualified) is listed and not current-only: the
 * projector keeps its history (when it has a primary key) as
 * <schema>.<table>_history with <table>_as_of() and <table>_at_position()
 * (contract C1; projector/README.md, "Temporal tables"). */
bool evp_rules_temporal(const evp_rules *rules, const char *table);

/* ---------------------------------------------------------------------
 * The projector (run.c and the files named in internal.h)
 * ------------------------------------------------------------------- */

typedef struct evp_stats evp_stats;

typedef struct evp_config {
	const char *store_path;
	const char *dsn;
	const char *projection;     /* checkpoint name; default from rules or "builtin" */
	const char *rules_path;     /* declared projection file, or NULL */
	const char *migrations_dir; /* NULL: do not migrate */
	bool builtin;               /* write the built-in event log (evs.events) */
	bool builtin_state;         /* with builtin: also evs.state and evs.state_history */
	bool dead_letter;           /* park failing events instead of stopping */
	int batch_max;              /* events per transaction */
	int batch_wait_ms;          /* live: wait this long to fill a batch */
	int retry_max_ms;           /* backoff ceiling while PostgreSQL is away */
	/* Give up (EVP_CONNECT, "... (gave up after N s)") when no session
	 * could be set up for this long, at start or after a lost
	 * connection; 0: retry for ever (the daemon's default). */
	int connect_timeout_ms;
	bool once; /* catch up to the head, then return */
	/* Bulk mode (built-in models only): when the projector starts at
	 * least this many events behind the store's head (0: never), the
	 * secondary indexes of the built-in models are dropped (one
	 * transaction) before the catch-up and recreated by CREATE INDEX
	 * (one transaction, sort-based) once the checkpoint reaches the head
	 * seen at start, before going live or returning. A start that finds
	 * them missing (a crash mid-bulk) continues the bulk load when still
	 * far behind, and otherwise recreates them first. */
	uint64_t bulk_threshold;
	/* Rebuild the rules' projection from position 0 into a shadow schema
	 * S__rebuild (tables LIKE the live ones) while S keeps serving; when
	 * caught up, take the live projection's lock (waiting while its
	 * projector runs), catch up the last events and swap the schemas and
	 * the checkpoint in one transaction. Built-in models are not touched. */
	bool rebuild;
	volatile sig_atomic_t *stop; /* set by the host (signal handler) */
	evs_log_fn log;
	void *log_ctx;
	int log_level;
	/* Optional: called after each committed batch (benchmarks, tests). */
	void (*on_commit)(void *ctx, uint64_t first, uint64_t last);
	void *commit_ctx;
	/* Optional progress for a display: called once connected (stats with
	 * start, checkpoint and target set) and after each committed batch.
	 * Events still to apply: target - checkpoint; done: events. */
	void (*on_progress)(void *ctx, const evp_stats *stats);
	void *progress_ctx;
} evp_config;

void evp_config_init(evp_config *cfg);

struct evp_stats {
	uint64_t events; /* applied by this run */
	uint64_t batches;
	uint64_t checkpoint; /* last committed position */
	uint64_t reconnects;
	uint64_t dead_letters;
	uint64_t set_batches; /* batches whose declared statements ran set-based */
	uint64_t start;       /* the checkpoint this run started from */
	uint64_t target;      /* once/rebuild: the store's head seen at start, where the
			  * run ends; live: the highest position seen so far */
};

/* Run until the store's head is reached (cfg->once) or *cfg->stop is set.
 * EVP_OK, EVP_STOPPED (stop requested; stats say how far it got), or a
 * failure with err filled. */
int evp_run(const evp_config *cfg, evp_stats *stats, char *err, size_t errlen);

/* Whether a failed result means "the server went away or asked us to
 * retry" (connection lost, class 08, 57P0x shutdown, 40001/40P01, or a
 * client-side error without SQLSTATE) rather than "this SQL is wrong". */
bool evp_retryable(PGconn *conn, const PGresult *res);

/* ---------------------------------------------------------------------
 * msgpack -> JSON and times (the base: mpjson.h, rfc3339.h), PostgreSQL
 * text formats (pgtext.c)
 * ------------------------------------------------------------------- */

/* JSON text of a payload: evs__msgpack_to_json(b, p, n, 0) (mpjson.h), the
 * lenient mode (bin and ext as base64 strings, non-finite floats null,
 * non-string keys their JSON text), so a number keeps its kind and value
 * through jsonb. Stored state read back: evs__json_to_msgpack(text, n,
 * out, 0, NULL, 0). timestamptz text: evs__time_pg_text (rfc3339.h). */

/* COPY text format: one field with \\, \n, \r, \t escaped; NULL is \N. */
void evp_copy_field(evs__buf *b, const char *p, size_t n);
/* An element of an array literal: quoted, \\ and \" escaped. */
void evp_array_elem(evs__buf *b, const char *p, size_t n);
/* COPY binary format: the header, a row's field count, and fields. */
void evp_bin_header(evs__buf *b);
void evp_bin_trailer(evs__buf *b);
void evp_bin_row(evs__buf *b, int nfields);
void evp_bin_null(evs__buf *b);
void evp_bin_i32(evs__buf *b, int32_t v);
void evp_bin_i64(evs__buf *b, int64_t v);
void evp_bin_bytes(evs__buf *b, const void *p, size_t n); /* text, bytea, uuid */
void evp_bin_time(evs__buf *b, int64_t ns);               /* timestamptz */
void evp_bin_jsonb(evs__buf *b, const char *json, size_t n);
void evp_uuid_text(evs__buf *b, const uint8_t id[16]);
bool evp_uuid_is_nil(const uint8_t id[16]);

#endif /* EVSPROJ_H */
