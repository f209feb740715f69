/*
 * evstore.h - the public API of libevstore, an append-only event store on
 * LMDB.
 *
 * One store is one directory holding an LMDB environment (data.mdb,
 * lock.mdb) and a wake-up file (evs-notify). Many processes on one host may
 * open the same store; many threads of one process may share one evs_store
 * handle and append concurrently. Concurrent appends in one process are
 * committed together (group commit): one LMDB write transaction and one
 * sync for many callers' batches, each caller still getting its own result.
 *
 * Conventions
 *
 *   Return codes: every function that can fail returns int: EVS_OK (0) on
 *   success, otherwise one of the EVS_* codes below. Some codes are
 *   outcomes the caller branches on (EVS_WRONG_VERSION, EVS_NOT_FOUND,
 *   EVS_END, EVS_TIMEOUT, EVS_ID_CONFLICT and the bad-input codes); the
 *   rest are failures to forward. evs_strerror() names a code;
 *   evs_errmsg() gives the detailed message of the calling thread's last
 *   failed call on a handle.
 *
 *   Ownership: inputs are copied (the caller may free them as soon as the
 *   call returns). Read results are zero-copy views into the store's memory
 *   map: an evs_event filled by an iterator or subscription is valid until
 *   the next call on that iterator or subscription, or until it is freed,
 *   whichever comes first. Whatever a call allocates for the caller has its
 *   own evs_*_free / evs_*_close, and every one of those accepts NULL.
 *
 *   Read transactions: an open iterator (and a subscription between a
 *   returned event and the next call) pins a read snapshot. Keep them
 *   short: while one is open in a process, that process cannot grow the
 *   memory map, so an append that needs more room waits for it (at most
 *   EVS_GROW_WAIT_MS, then EVS_BUSY). Never append from a thread that holds
 *   an iterator open.
 *
 *   Times: nanoseconds since the Unix epoch, as int64_t. 0 means "none".
 *
 *   Strings: stream ids and event types are UTF-8 without NUL bytes, 1 to
 *   EVS_MAX_NAME bytes. Inputs are NUL-terminated C strings; outputs are
 *   (pointer, length) views and are not NUL-terminated.
 *
 *   Payloads: data and metadata are msgpack maps (nesting depth at most
 *   EVS_MAX_DEPTH), at most max_event_size bytes together.
 *
 * The on-disk format is documented in docs/FORMAT.md.
 */
#ifndef EVSTORE_H
#define EVSTORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EVS_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------------
 * Errors
 *
 * One table; the codes are appended to, never renumbered or removed.
 * ------------------------------------------------------------------- */

#define EVS_ERRNO_MAP(XX)                                                   \
	XX(OK, 0, "success")                                                \
	XX(WRONG_VERSION, 1, "expected version does not match")            \
	XX(NOT_FOUND, 2, "not found")                                      \
	XX(END, 3, "no more events")                                       \
	XX(TIMEOUT, 4, "timed out")                                        \
	XX(ID_CONFLICT, 5, "event id already stored with other content")   \
	XX(BAD_STREAM, 6, "invalid stream id")                             \
	XX(BAD_TYPE, 7, "invalid event type")                              \
	XX(BAD_DATA, 8, "data is not a valid msgpack map")                 \
	XX(BAD_METADATA, 9, "metadata is not a valid msgpack map")         \
	XX(EVENT_TOO_LARGE, 10, "event too large")                         \
	XX(BATCH_TOO_LARGE, 11, "too many events in batch")                \
	XX(EMPTY_BATCH, 12, "empty batch")                                 \
	XX(INVALID, 13, "invalid argument")                                \
	XX(FORMAT, 14, "unsupported store format")                         \
	XX(CORRUPT, 15, "store is corrupt")                                \
	XX(IO, 16, "input/output error")                                   \
	XX(NOMEM, 17, "out of memory")                                     \
	XX(BUSY, 18, "resource busy")                                      \
	XX(READONLY, 19, "store is open read-only")                        \
	XX(PERMISSION, 20, "permission denied")                            \
	XX(NO_STORE, 21, "store does not exist")                           \
	XX(FULL, 22, "no space left")                                      \
	XX(RESTORE_ORDER, 23, "restored event does not continue the store")

typedef enum evs_code {
#define EVS__ENUM(name, value, text) EVS_##name = value,
	EVS_ERRNO_MAP(EVS__ENUM)
#undef EVS__ENUM
} evs_code;

/* Static text of a code ("expected version does not match"). */
const char *evs_strerror(int code);
/* Name of a code without prefix ("WRONG_VERSION"). */
const char *evs_code_name(int code);

/* ---------------------------------------------------------------------
 * Limits
 * ------------------------------------------------------------------- */

#define EVS_MAX_NAME 255             /* bytes in a stream id or type */
#define EVS_MAX_DEPTH 32             /* nesting of a payload map */
#define EVS_DEFAULT_MAX_EVENT (1u << 20)
#define EVS_LIMIT_MAX_EVENT (64u << 20)
#define EVS_DEFAULT_MAX_BATCH 10000
#define EVS_GROW_WAIT_MS 30000

/* ---------------------------------------------------------------------
 * Opening a store
 * ------------------------------------------------------------------- */

typedef struct evs_store evs_store;

enum evs_sync {
	EVS_SYNC_FULL = 0,   /* default: every commit is on disk when acknowledged */
	EVS_SYNC_META = 1,   /* data synced, meta page lazily: a crash may lose the
	                        last commits but never corrupts the store */
	EVS_SYNC_NONE = 2    /* no sync: an OS crash may lose recent commits */
};

enum evs_log_level { EVS_LOG_ERROR, EVS_LOG_WARNING, EVS_LOG_INFO, EVS_LOG_DEBUG };

/* Log callback. The library never prints; it reports through this. */
typedef void (*evs_log_fn)(void *ctx, int level, const char *message);

typedef struct evs_options {
	size_t map_size;        /* initial map size; 0 = 1 GiB. Grows by itself. */
	unsigned max_readers;   /* LMDB reader slots; 0 = 512 */
	int sync;               /* enum evs_sync */
	int create;             /* create the directory and store if missing */
	int read_only;          /* open without write access */
	size_t max_event_size;  /* data + metadata bytes; 0 = EVS_DEFAULT_MAX_EVENT */
	size_t max_batch;       /* events per append; 0 = EVS_DEFAULT_MAX_BATCH */
	evs_log_fn log;         /* NULL = silent */
	void *log_ctx;
} evs_options;

/* Fill *opts with the defaults (durable, create = 1). */
void evs_options_init(evs_options *opts);

/*
 * Open the store in directory `path` (created when opts->create). opts may
 * be NULL for the defaults. On failure *out is NULL and the returned code
 * says why; evs_open_errmsg() then has the detail.
 * EVS_FORMAT: the store was written by a newer, unknown format version.
 */
int evs_open(const char *path, const evs_options *opts, evs_store **out);
/* Detail of the calling thread's last failed evs_open(). */
const char *evs_open_errmsg(void);
/* Close; accepts NULL. All iterators and subscriptions must be closed. */
void evs_close(evs_store *store);

/* Message of the calling thread's last failed call on `store`. */
const char *evs_errmsg(const evs_store *store);

/* ---------------------------------------------------------------------
 * Events
 * ------------------------------------------------------------------- */

typedef struct evs_str {
	const char *ptr;        /* not NUL-terminated */
	size_t len;
} evs_str;

/* An event to append. Zero-initialise, then set what you have. */
typedef struct evs_event_in {
	const char *type;             /* required */
	uint32_t type_version;        /* 0 = 1 */
	uint8_t id[16];               /* all zero = generate a UUIDv7 */
	const void *data;             /* msgpack map; NULL = empty map */
	size_t data_len;
	const void *metadata;         /* msgpack map; NULL = empty map */
	size_t metadata_len;
	int64_t occurred_at;          /* producer time; 0 = none */
	uint8_t correlation_id[16];   /* all zero = none */
	uint8_t causation_id[16];     /* all zero = none */
} evs_event_in;

/* A stored event: a zero-copy view (see Ownership above). */
typedef struct evs_event {
	uint64_t position;            /* global, gap-free, from 1 */
	uint64_t version;             /* in its stream, from 1 */
	evs_str stream;
	evs_str type;
	uint32_t type_version;
	uint8_t id[16];
	int64_t recorded_at;          /* store commit time */
	int64_t occurred_at;          /* 0 = none */
	uint8_t correlation_id[16];   /* all zero = none */
	uint8_t causation_id[16];     /* all zero = none */
	const void *data;             /* msgpack map */
	size_t data_len;
	const void *metadata;         /* msgpack map */
	size_t metadata_len;
} evs_event;

/* Expected versions for evs_append(); any other value is an exact version
 * (0 = the stream must have no events). */
#define EVS_ANY UINT64_MAX
#define EVS_NO_STREAM ((uint64_t)0)
#define EVS_STREAM_EXISTS (UINT64_MAX - 1)

typedef struct evs_append_result {
	uint64_t first_position;  /* of the batch's first event */
	uint64_t last_position;
	uint64_t version;         /* stream version after the batch; on
	                             EVS_WRONG_VERSION, the actual version */
	int idempotent;           /* 1: every event was already stored (a
	                             retry); the original result is returned */
} evs_append_result;

/*
 * Append n events (1..max_batch) to `stream`, atomically: all or none.
 *
 * Outcomes:
 *   EVS_OK             appended (or an exact retry: result->idempotent = 1)
 *   EVS_WRONG_VERSION  expected does not match; result->version holds the
 *                      actual version; nothing written
 *   EVS_ID_CONFLICT    an event id is stored already with other content, or
 *                      only part of the batch was stored before, or an id
 *                      repeats in the batch; nothing written
 *   EVS_BAD_STREAM, EVS_BAD_TYPE, EVS_BAD_DATA, EVS_BAD_METADATA,
 *   EVS_EVENT_TOO_LARGE, EVS_BATCH_TOO_LARGE, EVS_EMPTY_BATCH
 *                      bad input, the message names the event's index in
 *                      the batch; nothing written
 * Failures: EVS_IO, EVS_NOMEM, EVS_FULL, EVS_BUSY, EVS_READONLY, EVS_CORRUPT.
 *
 * Returns once the batch is durable as the store's sync mode promises.
 * Thread-safe; concurrent callers share commits.
 */
int evs_append(evs_store *store, const char *stream, uint64_t expected,
               const evs_event_in *events, size_t n,
               evs_append_result *result);

/* A fresh UUIDv7 (RFC 9562): time-ordered, 74 random bits. */
void evs_uuid_v7(uint8_t out[16]);

/* ---------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------- */

typedef struct evs_iter evs_iter;

enum evs_direction { EVS_FORWARD = 0, EVS_BACKWARD = 1 };

/* Filter for reading all events; NULL or zeroed = everything. An event
 * passes when its type is one of `types` (if ntypes > 0) and its stream
 * starts with one of `stream_prefixes` (if nprefixes > 0). The arrays are
 * copied. */
typedef struct evs_filter {
	const char *const *types;
	size_t ntypes;
	const char *const *stream_prefixes;
	size_t nprefixes;
} evs_filter;

/*
 * Read `stream` from version `from` (inclusive) in `direction`, at most
 * `limit` events (0 = no limit). Backward from EVS_ANY starts at the last
 * event. A stream that does not exist yields no events (EVS_END at once).
 * The iterator holds a read snapshot until evs_iter_free().
 */
int evs_read_stream(evs_store *store, const char *stream, uint64_t from,
                    int direction, size_t limit, evs_iter **out);

/* Read all events from global position `from` (inclusive; backward from
 * EVS_ANY starts at the last), filtered, at most `limit` (0 = no limit). */
int evs_read_all(evs_store *store, uint64_t from, int direction,
                 const evs_filter *filter, size_t limit, evs_iter **out);

/* Next event: EVS_OK and *ev filled, or EVS_END, or a failure. */
int evs_iter_next(evs_iter *it, evs_event *ev);
void evs_iter_free(evs_iter *it);

/* The event with this id: its position, or EVS_NOT_FOUND. */
int evs_find_id(evs_store *store, const uint8_t id[16], uint64_t *position);

typedef struct evs_stream_info {
	uint64_t version;         /* 0 if the stream does not exist */
	uint64_t last_position;   /* 0 if the stream does not exist */
} evs_stream_info;

/* EVS_OK, or EVS_NOT_FOUND (head zeroed) if the stream has no events. */
int evs_stream_head(evs_store *store, const char *stream, evs_stream_info *head);

typedef struct evs_store_info {
	uint64_t last_position;   /* = number of events; 0 when empty */
	int64_t last_recorded_at; /* 0 when empty */
	uint64_t streams;         /* number of streams */
	size_t map_size;          /* current map size in bytes */
	size_t used_bytes;        /* pages in use */
} evs_store_info;

int evs_head(evs_store *store, evs_store_info *head);

/* ---------------------------------------------------------------------
 * As of a time. recorded_at is non-decreasing in position order, so the
 * store as of T is every event up to the last one recorded at or before T.
 * Both are O(log n) index lookups.
 * ------------------------------------------------------------------- */

/* Last position recorded at or before t (0 if none). */
int evs_position_at(evs_store *store, int64_t t, uint64_t *position);

/* The stream's version as of time t, and the position of that version's
 * event (both 0 if the stream had no events then). */
int evs_stream_version_at(evs_store *store, const char *stream, int64_t t,
                          uint64_t *version, uint64_t *position);

/* The stream's version as of global position p (same, by position). */
int evs_stream_version_at_position(evs_store *store, const char *stream,
                                   uint64_t p, uint64_t *version,
                                   uint64_t *position);

/* ---------------------------------------------------------------------
 * Following the commit stream
 *
 * A subscription delivers every event after `after` (0 = from the start),
 * catching up from the log and then waiting for new commits, which wake it
 * within milliseconds from any process on the host (a futex on the shared
 * evs-notify file; a periodic re-check bounds any missed wake-up).
 * ------------------------------------------------------------------- */

typedef struct evs_sub evs_sub;

int evs_subscribe(evs_store *store, uint64_t after, const evs_filter *filter,
                  evs_sub **out);
/* Next event (EVS_OK), or EVS_TIMEOUT after timeout_ms (-1 = forever)
 * without one, or a failure. The view is valid until the next call. */
int evs_sub_next(evs_sub *sub, evs_event *ev, int timeout_ms);
/* Position of the last event delivered (or `after`). */
uint64_t evs_sub_position(const evs_sub *sub);
void evs_sub_close(evs_sub *sub);

/* Wait until the store's last position is past `position`, or timeout_ms
 * passes (-1 = forever): EVS_OK or EVS_TIMEOUT. */
int evs_wait(evs_store *store, uint64_t position, int timeout_ms);

/* ---------------------------------------------------------------------
 * Restore and verification
 * ------------------------------------------------------------------- */

/*
 * Write already-stored events back with their positions, versions, ids and
 * recorded times (import from an export). Each event must continue the
 * store: position = last position + 1, version = its stream's version + 1,
 * recorded_at not before the last. Atomic per call; the message says which
 * event broke the rule (EVS_RESTORE_ORDER) and nothing is written.
 */
int evs_restore(evs_store *store, const evs_event *events, size_t n);

/* Called once per problem found by evs_verify(). */
typedef void (*evs_problem_fn)(void *ctx, const char *problem);

/*
 * Check every index against the event log: positions gap-free, records
 * decodable, stream versions contiguous and indexed, ids indexed, time
 * index monotonic and matching commit boundaries. *problems receives the
 * count; EVS_OK means the check ran (look at *problems).
 */
int evs_verify(evs_store *store, evs_problem_fn fn, void *ctx,
               uint64_t *problems);

#ifdef __cplusplus
}
#endif

#endif /* EVSTORE_H */
