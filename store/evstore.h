/*
 * evstore.h - the public API of libevstore, an append-only event store on
 * LMDB.
 *
 * One store is one directory holding an LMDB environment (data.mdb,
 * lock.mdb) and a wake-up file (evs-notify). Many processes on one host may
 * open the same store; many threads of one process may share one evs_store
 * handle and append concurrently. A process has one LMDB environment per
 * store, whatever the number of handles (see evs_open()). Concurrent
 * appends in one process, on one handle or several, are committed together
 * (group commit): one LMDB write transaction and one sync for many callers'
 * batches, each caller still getting its own result.
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
 *   Read transactions: an open iterator pins a read snapshot until it is
 *   freed; use and free it in the thread that created it. Keep iterators
 *   short: while one is open in a process, that process cannot grow the
 *   memory map, so an append that needs more room waits for it (at most
 *   EVS_GROW_WAIT_MS, then EVS_BUSY). evs_append() from a thread that
 *   holds an iterator open is refused (EVS_BUSY). A subscription holds no read transaction
 *   between calls (it copies what it hands out), so a thread may follow
 *   the log and append.
 *
 *   Times: nanoseconds since the Unix epoch, as int64_t. 0 means "none".
 *
 *   Strings: stream ids and event types are UTF-8 without NUL bytes, 1 to
 *   EVS_MAX_NAME bytes. Inputs are NUL-terminated C strings; outputs are
 *   (pointer, length) views and are not NUL-terminated.
 *
 *   Payloads: data and metadata are msgpack maps (nesting depth at most
 *   EVS_MAX_DEPTH), at most max_event_size bytes together, whose strings
 *   (keys and values) are valid UTF-8 without NUL; raw bytes go in bin.
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

#define EVS_ERRNO_MAP(XX)                                                      \
	XX(OK, 0, "success")                                                   \
	XX(WRONG_VERSION, 1, "expected version does not match")                \
	XX(NOT_FOUND, 2, "not found")                                          \
	XX(END, 3, "no more events")                                           \
	XX(TIMEOUT, 4, "timed out")                                            \
	XX(ID_CONFLICT, 5, "event id already stored with other content")       \
	XX(BAD_STREAM, 6, "invalid stream id")                                 \
	XX(BAD_TYPE, 7, "invalid event type")                                  \
	XX(BAD_DATA, 8, "data is not a valid msgpack map")                     \
	XX(BAD_METADATA, 9, "metadata is not a valid msgpack map")             \
	XX(EVENT_TOO_LARGE, 10, "event too large")                             \
	XX(BATCH_TOO_LARGE, 11, "too many events in batch")                    \
	XX(EMPTY_BATCH, 12, "empty batch")                                     \
	XX(INVALID, 13, "invalid argument")                                    \
	XX(FORMAT, 14, "unsupported store format")                             \
	XX(CORRUPT, 15, "store is corrupt")                                    \
	XX(IO, 16, "input/output error")                                       \
	XX(NOMEM, 17, "out of memory")                                         \
	XX(BUSY, 18, "resource busy")                                          \
	XX(READONLY, 19, "store is open read-only")                            \
	XX(PERMISSION, 20, "permission denied")                                \
	XX(NO_STORE, 21, "store does not exist")                               \
	XX(FULL, 22, "no space left")                                          \
	XX(RESTORE_ORDER, 23, "restored event does not continue the store")    \
	XX(REJECTED, 24, "command rejected")                                   \
	XX(SCHEMA_VIOLATION, 25, "data does not match the event's schema")     \
	XX(UNKNOWN_TYPE, 26, "event type has no schema")                       \
	XX(BAD_SCHEMA, 27, "invalid schema document")                          \
	XX(SCHEMA_INCOMPATIBLE, 28, "schema version is not compatible")        \
	XX(SCHEMA_EXISTS, 29, "schema version already registered differently") \
	XX(CONDITION_FAILED, 30, "an event matching the append condition exists")

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

#define EVS_MAX_NAME          255 /* bytes in a stream id or type */
#define EVS_MAX_DEPTH         32  /* nesting of a payload map */
#define EVS_DEFAULT_MAX_EVENT (1u << 20)
#define EVS_LIMIT_MAX_EVENT   (64u << 20)
#define EVS_DEFAULT_MAX_BATCH 10000
#define EVS_GROW_WAIT_MS      30000
#define EVS_MAX_TAGS          16  /* tags on one event */
#define EVS_MAX_TAG           255 /* bytes in one tag */

/* ---------------------------------------------------------------------
 * Opening a store
 * ------------------------------------------------------------------- */

typedef struct evs_store evs_store;

enum evs_sync {
	EVS_SYNC_FULL = 0, /* default: every commit is on disk (in the journal,
	                        one fdatasync per group commit) when acknowledged */
	EVS_SYNC_META = 1, /* the journal is written but not synced per commit;
	                        checkpoints still sync: an OS crash may lose the
	                        last commits but never corrupts the store */
	EVS_SYNC_NONE = 2  /* no journal: commits reach the disk at the next
	                        checkpoint (about a second); an OS crash may lose
	                        them but never corrupts the store */
};

enum evs_log_level { EVS_LOG_ERROR, EVS_LOG_WARNING, EVS_LOG_INFO, EVS_LOG_DEBUG };

/* Log callback. The library never prints; it reports through this. */
typedef void (*evs_log_fn)(void *ctx, int level, const char *message);

typedef struct evs_options {
	size_t map_size;       /* map size; 0 = 1 GiB for a new store, the current
	                           size for an existing one. Grows by itself. */
	unsigned max_readers;  /* LMDB reader slots; 0 = 512 */
	int sync;              /* enum evs_sync */
	int create;            /* create the directory and store if missing */
	int read_only;         /* open without write access */
	size_t max_event_size; /* data + metadata bytes; 0 = EVS_DEFAULT_MAX_EVENT */
	size_t max_batch;      /* events per append; 0 = EVS_DEFAULT_MAX_BATCH */
	evs_log_fn log;        /* NULL = silent */
	void *log_ctx;
	/* A stream's category is its id up to the first category_separator
	 * (KurrentDB's convention; the whole id when there is none). 0 = '-'.
	 * Recorded by the store at creation; opening an existing store with
	 * another non-zero value is EVS_INVALID. */
	char category_separator;
} evs_options;

/* Fill *opts with the defaults (durable, create = 1). */
void evs_options_init(evs_options *opts);

/*
 * Open the store in directory `path` (created when opts->create). opts may
 * be NULL for the defaults. On failure *out is NULL and the returned code
 * says why; evs_open_errmsg() then has the whole message, naming the
 * store ("could not open store \"x\": ..."), fit to print as it is.
 * EVS_FORMAT: the store was written by a newer, unknown format version.
 *
 * One environment per store per process. LMDB forbids opening one
 * environment twice in a process (closing either would drop the other's
 * file locks), so opening a store this process has open already, by any
 * spelling of its path (relative, through a symlink: the store is known by
 * the device and inode of its data.mdb), returns a new handle on the same
 * environment. Any thread may open and close handles at any time.
 *   Shared by the handles of one store: the LMDB environment and its map
 *   (growth included), the group-commit queue (appends through any of them
 *   are committed together, positions stay gap-free), the commit counter
 *   that wakes followers, and read transactions: an iterator open in a
 *   thread counts for every handle, so evs_append() on another handle of
 *   the same store from that thread is refused too (EVS_BUSY).
 *   Per handle: read_only, max_event_size, max_batch, the log callback,
 *   the path spelling in messages, evs_errmsg(), upcasters registered with
 *   evs_upcaster_register(), and the cached schema registry. One
 *   exception: a commit group is run by one of its callers (the leader),
 *   so a failed group commit or a map growth is logged through the
 *   leader's handle (its callback, its path spelling); every caller in the
 *   group still gets the error code.
 *   Opening and the last close of a store hold a process-wide lock while
 *   LMDB opens (or closes) the environment, which may wait for another
 *   process's write transaction: opens and closes of other stores, and
 *   fork(), wait meanwhile.
 *   Environment options come from the first open. A later open may differ
 *   only where the environment can honour it; otherwise it fails and the
 *   message names the reason:
 *     EVS_BUSY     read-write open of a store this process has open only
 *                  read-only (close those handles first); a read-only open
 *                  of a read-write environment is fine
 *     EVS_INVALID  read-write open with another sync mode than the open
 *                  environment's (read-only opens ignore sync), or
 *                  max_readers above the environment's reader slots
 *   A larger map_size on a read-write open grows the shared map to it
 *   (or fails as a growth does: EVS_BUSY while this thread holds an
 *   iterator); a smaller one changes nothing. create is moot for a store
 *   open already.
 *
 * fork(): a child must not use the parent's environment (LMDB's rule),
 * nor any handle it inherited, except to evs_close() it, which then frees
 * the handle's memory only. evs_open() in the child opens a fresh
 * environment: the child forgets the parent's (pthread_atfork).
 */
int evs_open(const char *path, const evs_options *opts, evs_store **out);
/* Detail of the calling thread's last failed evs_open(). */
const char *evs_open_errmsg(void);
/* Close a handle; accepts NULL. Its iterators, subscriptions and
 * aggregates must be closed first; other handles on the same store are
 * unaffected and keep working (even with iterators open). The last handle
 * of a store in the process closes the environment. */
void evs_close(evs_store *store);

/* Message of the calling thread's last failed call on `store`. */
const char *evs_errmsg(const evs_store *store);

/* ---------------------------------------------------------------------
 * Events
 * ------------------------------------------------------------------- */

typedef struct evs_str {
	const char *ptr; /* not NUL-terminated */
	size_t len;
} evs_str;

/* An event to append. Zero-initialise, then set what you have. */
typedef struct evs_event_in {
	const char *type;      /* required */
	uint32_t type_version; /* 0 = 1 */
	uint8_t id[16];        /* all zero = generate a UUIDv7 */
	const void *data;      /* msgpack map; NULL = empty map */
	size_t data_len;
	const void *metadata; /* msgpack map; NULL = empty map */
	size_t metadata_len;
	int64_t occurred_at;        /* producer time; 0 = none */
	uint8_t correlation_id[16]; /* all zero = none; indexed: see below */
	uint8_t causation_id[16];   /* all zero = none */
	/* Correlation ids that sort by time (evs_uuid_v7) keep the correlation
	 * index's writes at its end; random ones cost a page each. */
	/* Tags: 0..EVS_MAX_TAGS distinct strings of 1..EVS_MAX_TAG bytes of
	 * UTF-8 without NUL ("account:42"), stored in the record as a set
	 * (sorted, so order does not matter). Indexed; see evs_query. */
	const char *const *tags;
	size_t ntags;
	/* The service that produced the event: 1..EVS_MAX_NAME bytes of UTF-8
	 * without NUL; NULL = none. */
	const char *producer;
} evs_event_in;

/* A stored event: a zero-copy view (see Ownership above). */
typedef struct evs_event {
	uint64_t position; /* global, gap-free, from 1 */
	uint64_t version;  /* in its stream, from 1 */
	evs_str stream;
	evs_str type;
	uint32_t type_version;
	uint8_t id[16];
	int64_t recorded_at;        /* store commit time */
	int64_t occurred_at;        /* 0 = none */
	uint8_t correlation_id[16]; /* all zero = none */
	uint8_t causation_id[16];   /* all zero = none */
	const void *data;           /* msgpack map */
	size_t data_len;
	const void *metadata; /* msgpack map */
	size_t metadata_len;
	const evs_str *tags; /* sorted by bytes; valid as the rest of the view */
	size_t ntags;
	evs_str producer; /* len 0 = none */
} evs_event;

/* Expected versions for evs_append(); any other value is an exact version
 * (0 = the stream must have no events). */
#define EVS_ANY           UINT64_MAX
#define EVS_NO_STREAM     ((uint64_t)0)
#define EVS_STREAM_EXISTS (UINT64_MAX - 1)

typedef struct evs_append_result {
	uint64_t first_position; /* of the batch's first event */
	uint64_t last_position;
	uint64_t version; /* stream version after the batch; on
	                             EVS_WRONG_VERSION, the actual version */
	int idempotent;   /* 1: every event was already stored (a
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
 *   EVS_SCHEMA_VIOLATION, EVS_UNKNOWN_TYPE
 *                      data breaks its type's schema (the message names the
 *                      event's index, the JSON path and the rule), or the
 *                      type or stated version has no schema where one is
 *                      needed (see "Schemas" below); nothing written
 * Failures: EVS_IO, EVS_NOMEM, EVS_FULL, EVS_READONLY, EVS_CORRUPT, and
 * EVS_BUSY (the calling thread holds an open iterator on the store, or the
 * map could not grow past other threads' iterators in EVS_GROW_WAIT_MS).
 *
 * Returns once the batch is durable as the store's sync mode promises.
 * Thread-safe; concurrent callers share commits.
 */
int evs_append(evs_store *store, const char *stream, uint64_t expected, const evs_event_in *events,
	       size_t n, evs_append_result *result);

/*
 * A query in the sense of Dynamic Consistency Boundaries (dcb.events): a
 * list of items OR'd together; an event matches an item when its type is
 * one of the item's types (any type when ntypes = 0) AND it carries every
 * one of the item's tags. A query with no items matches every event.
 */
typedef struct evs_query_item {
	const char *const *types;
	size_t ntypes;
	const char *const *tags;
	size_t ntags;
} evs_query_item;

typedef struct evs_query {
	const evs_query_item *items;
	size_t nitems;
} evs_query;

/* One stream's part of evs_append_ex(). */
typedef struct evs_append_part {
	const char *stream;
	uint64_t expected; /* as for evs_append() */
	const evs_event_in *events;
	size_t n; /* 1..max_batch; all parts together at most max_batch */
} evs_append_part;

/* A named checkpoint written in the same transaction as the events. */
typedef struct evs_checkpoint_write {
	const char *name; /* rules of evs_checkpoint_set() */
	uint64_t position;
	int remove; /* 1: delete the checkpoint (no error if absent) */
} evs_checkpoint_write;

/* The condition of an append (dcb.events "append condition"): fail if any
 * event matching `fail_if` has a position after `after` (0 = anywhere in
 * the log). */
typedef struct evs_condition {
	const evs_query *fail_if;
	uint64_t after;
} evs_condition;

/*
 * Append to several streams at once, atomically: every part's checks
 * pass and all their events and checkpoint writes are committed in one
 * transaction (sharing a group commit with other appends), or nothing is.
 * Parts are written in the order given; each stream at most once.
 * results (nparts, may be NULL) get each part's evs_append_result.
 * cond (may be NULL) is checked in the write transaction, in commit order.
 * nparts may be 0 when there are checkpoint writes: they commit alone
 * (as durable as an append; cheaper than evs_checkpoint_set, which
 * checkpoints the journal). Checkpoint names are distinct; at most
 * max_batch parts and max_batch checkpoint writes.
 *
 * Outcomes: those of evs_append() (the message names the part; on
 * EVS_WRONG_VERSION the failing part's result holds its actual version),
 *   EVS_INVALID           a stream or checkpoint name twice, a bad
 *                         checkpoint name, a malformed condition query
 *                         (NULL arrays with counts, more than EVS_MAX_TAGS
 *                         tags in an item, an empty type or tag)
 *   EVS_EMPTY_BATCH       no part and no checkpoint write, or a part of
 *                         no events
 *   EVS_CONDITION_FAILED  an event matching cond->fail_if exists after
 *                         cond->after; *conflict (may be NULL) is the
 *                         first such position; nothing written.
 * An exact retry (every event id stored with the same content, in the
 * same parts) is answered as the original (idempotent = 1) before the
 * condition is looked at: its own events would fail it.
 */
int evs_append_ex(evs_store *store, const evs_append_part *parts, size_t nparts,
		  const evs_checkpoint_write *checkpoints, size_t ncheckpoints,
		  const evs_condition *cond, evs_append_result *results, uint64_t *conflict);

/* A fresh UUIDv7 (RFC 9562): millisecond time, its fraction in rand_a (strictly
 * increasing within a thread), 62 random bits. */
void evs_uuid_v7(uint8_t out[16]);

/* ---------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------- */

typedef struct evs_iter evs_iter;

enum evs_direction { EVS_FORWARD = 0, EVS_BACKWARD = 1 };

/* Filter for reading all events; NULL or zeroed = everything. An event
 * passes when every part that is set holds: its type is one of `types`,
 * its stream starts with one of `stream_prefixes`, its stream's category
 * is one of `categories`, it carries every tag in `tags`, its correlation
 * id is `correlation_id`. Reads use the store's indexes (type, category,
 * tag, correlation) where the filter allows, instead of a scan. The
 * arrays are copied. */
typedef struct evs_filter {
	const char *const *types;
	size_t ntypes;
	const char *const *stream_prefixes;
	size_t nprefixes;
	const char *const *categories;
	size_t ncategories;
	const char *const *tags;
	size_t ntags;
	const uint8_t *correlation_id; /* 16 bytes; NULL = any */
} evs_filter;

/*
 * Read `stream` from version `from` (inclusive) in `direction`, at most
 * `limit` events (0 = no limit). Backward from EVS_ANY starts at the last
 * event. A stream that does not exist yields no events (EVS_END at once).
 * The iterator holds a read snapshot until evs_iter_free().
 */
int evs_read_stream(evs_store *store, const char *stream, uint64_t from, int direction,
		    size_t limit, evs_iter **out);

/* Read all events from global position `from` (inclusive; backward from
 * EVS_ANY starts at the last), filtered, at most `limit` (0 = no limit). */
int evs_read_all(evs_store *store, uint64_t from, int direction, const evs_filter *filter,
		 size_t limit, evs_iter **out);

/* Read the events matching q from position `from` (inclusive; backward
 * from EVS_ANY starts at the last) in position order, at most `limit`
 * (0 = no limit), through the indexes. q is copied. */
int evs_read_query(evs_store *store, const evs_query *q, uint64_t from, int direction, size_t limit,
		   evs_iter **out);

/* Next event: EVS_OK and *ev filled, or EVS_END, or a failure. */
int evs_iter_next(evs_iter *it, evs_event *ev);
void evs_iter_free(evs_iter *it);

/* The event with this id: its position, or EVS_NOT_FOUND. */
int evs_find_id(evs_store *store, const uint8_t id[16], uint64_t *position);

typedef struct evs_stream_info {
	uint64_t version;       /* 0 if the stream does not exist */
	uint64_t last_position; /* 0 if the stream does not exist */
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

/* The store's category separator (evs_options.category_separator as
 * recorded at creation): '-' unless the store was created with another.
 * Readers that derive a category themselves use it to agree with the
 * store's category index. */
char evs_category_separator(evs_store *store);

/* ---------------------------------------------------------------------
 * As of a time. recorded_at is non-decreasing in position order, so the
 * store as of T is every event up to the last one recorded at or before T.
 * Both are O(log n) index lookups.
 * ------------------------------------------------------------------- */

/* Last position recorded at or before t (0 if none). */
int evs_position_at(evs_store *store, int64_t t, uint64_t *position);

/* The stream's version as of time t, and the position of that version's
 * event (both 0 if the stream had no events then). */
int evs_stream_version_at(evs_store *store, const char *stream, int64_t t, uint64_t *version,
			  uint64_t *position);

/* The stream's version as of global position p (same, by position). */
int evs_stream_version_at_position(evs_store *store, const char *stream, uint64_t p,
				   uint64_t *version, uint64_t *position);

/* ---------------------------------------------------------------------
 * Following the commit stream
 *
 * A subscription delivers every event after `after` (0 = from the start),
 * catching up from the log and then waiting for new commits, which wake it
 * within milliseconds from any process on the host (a futex on the shared
 * evs-notify file; a periodic re-check bounds any missed wake-up).
 * ------------------------------------------------------------------- */

typedef struct evs_sub evs_sub;

int evs_subscribe(evs_store *store, uint64_t after, const evs_filter *filter, evs_sub **out);
/* Next event (EVS_OK), or EVS_TIMEOUT after timeout_ms (-1 = forever)
 * without one, or a failure. The view is valid until the next call. */
int evs_sub_next(evs_sub *sub, evs_event *ev, int timeout_ms);
/* Position up to which the subscription has read: the last event it
 * delivered or its filter skipped (or `after`). Resuming after it misses
 * nothing that passes the filter. */
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
 * index monotonic and matching commit boundaries, the type, category, tag
 * and correlation indexes holding exactly the entries the events call for
 * (a missing entry and an extra one are both reported). *problems receives the
 * count; EVS_OK means the check ran (look at *problems).
 */
int evs_verify(evs_store *store, evs_problem_fn fn, void *ctx, uint64_t *problems);

/* Called by evs_verify_ex() while it runs: `done` of `total` records
 * checked so far. Records are the entries of the event log and of the
 * stream, id, time and event (type, category, tag, correlation) indexes
 * together (each walked once), so total is about five times the event
 * count, more with tags. total is known before the
 * first call and never changes, done only rises, and a check that runs
 * to the end makes one last call with done == total (0 of 0 for an
 * empty store). */
typedef void (*evs_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/* Options of evs_verify_ex(). Zero it first (or use designated
 * initializers): a zero field keeps its default. */
typedef struct evs_verify_opts {
	evs_problem_fn on_problem;   /* NULL = only count problems */
	evs_progress_fn on_progress; /* NULL = no progress */
	void *ctx;                   /* passed to both callbacks */
	uint64_t progress_every;     /* records between progress calls; 0 = 65536 */
} evs_verify_opts;

/*
 * evs_verify() with options (opts NULL = none): the same check, and a
 * progress callback for long runs. Callbacks run on the calling thread
 * inside the read snapshot; they must not call back into the store.
 */
int evs_verify_ex(evs_store *store, const evs_verify_opts *opts, uint64_t *problems);

/* =====================================================================
 * Aggregates
 *
 * An aggregate is the state of one stream, rebuilt by folding the stream's
 * events in version order. A service describes its domain once, as an
 * evs_aggregate_def: the state (a struct of state_size bytes with optional
 * init and release), apply (state + event -> state) and decide (state +
 * command -> new events, or a rejection). evs_execute() then does load ->
 * decide -> append with the loaded version as the expected version, and on
 * a version conflict catches up and decides again, a bounded number of
 * times.
 *
 * Snapshots make loads of long streams fast and are never needed for
 * correctness: a load starts from the newest usable snapshot at or before
 * the version it wants (same definition name, same snapshot format
 * version, still matching the stream) and replays the events after it.
 * Any other snapshot is ignored, so deleting every snapshot changes no
 * result. evs_execute() stores one when a stream's version crosses a
 * multiple of snapshot_every; evs_snapshot_take() stores one on demand.
 *
 * As of a time or a position: a load can stop at the stream's version as
 * of a time (the as-of index, see evs_stream_version_at) or a global
 * position, and then uses only snapshots at or before that version:
 * exactly the state an auditor would have seen then.
 *
 * Callbacks return EVS_OK or an EVS_* code; any other code than EVS_OK is
 * handed back to the caller of the library function that called them.
 * apply and the snapshot functions must not call the library (a read
 * transaction may be open); decide runs with none open and may read the
 * store (an append of its own would only make its command conflict).
 * ===================================================================== */

/* Bytes of one snapshot's state, at most. */
#define EVS_MAX_SNAPSHOT (64u << 20)
/* evs_execute() attempts when the definition says 0. */
#define EVS_DEFAULT_ATTEMPTS 16

/*
 * A growable output buffer owned by the library, handed to snapshot
 * encoders. evs_sink_write() appends len bytes and returns 0, or -1 when
 * out of memory or past EVS_MAX_SNAPSHOT. Its signature is msgpack-c's
 * msgpack_packer_write, so an encoder can pack straight into the sink:
 *     msgpack_packer_init(&pk, sink, evs_sink_write);
 */
typedef struct evs_sink evs_sink;
int evs_sink_write(void *sink, const char *data, size_t len);

/*
 * What decide() answers, filled through these calls: zero or more events
 * to append (in order, atomically), or a rejection. Both copy their
 * inputs. evs_decision_emit() returns EVS_OK, EVS_INVALID (no type, NULL
 * payload with a length), EVS_EVENT_TOO_LARGE, EVS_BATCH_TOO_LARGE (more
 * than the store's max_batch) or EVS_NOMEM; the event is checked in full
 * by the append. evs_decision_reject() records the message (NULL = none)
 * and returns EVS_REJECTED, so decide() can end with
 *     return evs_decision_reject(d, "insufficient funds");
 * A rejection wins over emitted events: nothing is written.
 */
typedef struct evs_decision evs_decision;
int evs_decision_emit(evs_decision *d, const evs_event_in *event);
int evs_decision_reject(evs_decision *d, const char *message);

typedef struct evs_aggregate_def {
	/* Required: 1..EVS_MAX_NAME bytes of UTF-8. Names the definition in
	 * messages and marks its snapshots (copied). */
	const char *name;
	size_t state_size; /* bytes of the state, > 0 */
	void *ctx;         /* handed to every callback */

	/* The initial state (version 0). The state is zeroed before; NULL:
	 * all zero is the initial state. */
	int (*init)(void *ctx, void *state);
	/* Free what the state owns; NULL: it owns nothing. */
	void (*release)(void *ctx, void *state);
	/* Required: fold one event into the state. The event is a view
	 * valid during the call. Events of unknown types should be ignored
	 * (return EVS_OK) so that old code can load new streams. */
	int (*apply)(void *ctx, void *state, const evs_event *event);
	/* Required by evs_execute(): decide a command against the state.
	 * EVS_OK with the decision filled (no event = nothing to do), or
	 * EVS_REJECTED through evs_decision_reject(), or a failure. */
	int (*decide)(void *ctx, const void *state, const void *command, evs_decision *d);

	/* Snapshots (optional; both functions or neither). */
	uint32_t snapshot_version; /* format of encode's output, >= 1 */
	uint64_t snapshot_every;   /* evs_execute() snapshots when the
	                                 version crosses a multiple; 0 = never */
	/* Write the state into out (evs_sink_write). */
	int (*snapshot_encode)(void *ctx, const void *state, evs_sink *out);
	/* Read a state written by encode with the same snapshot_version into
	 * a freshly initialised state. data is valid during the call only.
	 * A failure makes the load ignore this snapshot (the state is
	 * released and initialised again) and use an older one or replay. */
	int (*snapshot_decode)(void *ctx, void *state, const void *data, size_t len);

	unsigned max_attempts; /* evs_execute() decide rounds per call;
	                                 0 = EVS_DEFAULT_ATTEMPTS */
} evs_aggregate_def;

/* A definition bound to a store. Immutable once made: any number of
 * threads may use one handle at once. Free it before closing the store. */
typedef struct evs_aggregate evs_aggregate;

/* Check and copy def. EVS_INVALID (message says which field) on a bad
 * definition. */
int evs_aggregate_new(evs_store *store, const evs_aggregate_def *def, evs_aggregate **out);
void evs_aggregate_free(evs_aggregate *agg);

/* Which moment a load reflects; a NULL evs_at means the latest. */
enum evs_at_kind {
	EVS_AT_LATEST = 0,
	EVS_AT_TIME = 1,    /* as of `time`: events recorded at or before */
	EVS_AT_POSITION = 2 /* as of `position`: events at or before */
};

typedef struct evs_at {
	int kind; /* enum evs_at_kind */
	int64_t time;
	uint64_t position;
} evs_at;

/* What a load reflects and how it got there. */
typedef struct evs_loaded {
	uint64_t version;          /* stream version folded; 0 = no events */
	uint64_t position;         /* global position of that version's event */
	uint64_t snapshot_version; /* snapshot the load started from; 0 = none */
	uint64_t replayed;         /* events applied on top of it */
} evs_loaded;

/*
 * Load the aggregate of `stream` as of `at` (NULL = latest) into `state`,
 * caller memory of the definition's state_size bytes. A stream without
 * events (then) loads as the initial state at version 0. On EVS_OK the
 * state must be released with evs_aggregate_release(); on any other code
 * there is nothing to release. info may be NULL.
 * Outcomes: EVS_BAD_STREAM. Failures: EVS_CORRUPT, EVS_IO, EVS_NOMEM, and
 * whatever init or apply returned.
 */
int evs_aggregate_load(evs_aggregate *agg, const char *stream, const evs_at *at, void *state,
		       evs_loaded *info);
/* Release a loaded state (the definition's release); accepts NULL. */
void evs_aggregate_release(evs_aggregate *agg, void *state);

typedef struct evs_execute_result {
	uint64_t version;        /* stream version after the command (the
	                              loaded one when nothing was appended) */
	uint64_t first_position; /* of the appended events; 0 = none */
	uint64_t last_position;
	size_t events;     /* events appended */
	unsigned attempts; /* decide rounds: 1 + conflicts retried */
	int idempotent;    /* the events' ids were stored before: an
	                              exact retry, answered as the original */
} evs_execute_result;

/*
 * Execute a command on the aggregate of `stream`: load it (snapshot, then
 * the events after it), decide, and append the decided events expecting
 * the loaded version. On a version conflict fold the events that won and
 * decide again, at most max_attempts rounds in all. `command` is handed to
 * decide() as is. result may be NULL.
 *
 * Outcomes:
 *   EVS_OK             appended (result says where), or nothing to do
 *   EVS_REJECTED       decide() rejected the command; evs_errmsg() is
 *                      its message; nothing written
 *   EVS_WRONG_VERSION  still conflicting after max_attempts rounds;
 *                      result->version is the last version seen; nothing
 *                      written by this call
 *   the bad-input codes of evs_append() for decided events
 * Failures: those of evs_aggregate_load() and evs_append(), and whatever
 * decide() returned.
 */
int evs_execute(evs_aggregate *agg, const char *stream, const void *command,
		evs_execute_result *result);

/* Load the latest state and store a snapshot of it (unless the load
 * started from a snapshot at that very version). EVS_INVALID if the
 * definition has no snapshot functions; info may be NULL. */
int evs_snapshot_take(evs_aggregate *agg, const char *stream, evs_loaded *info);

/* Delete this definition's snapshots of `stream` (NULL = every stream)
 * that it cannot use (another format version, or no longer matching the
 * stream), and of the usable ones all but the newest `keep` per stream.
 * Snapshots of other definitions are left alone. */
int evs_snapshot_prune(evs_aggregate *agg, const char *stream, uint64_t keep, uint64_t *removed);

/* Delete every snapshot of `stream` (NULL = of every stream), of any
 * definition. Changes no load's result, only its speed. */
int evs_snapshot_clear(evs_store *store, const char *stream, uint64_t *removed);

/* ---------------------------------------------------------------------
 * Decisions over a query (Dynamic Consistency Boundaries): evs_decide()
 *
 * The counterpart of evs_execute() when a decision spans what a query
 * selects rather than one stream (a unique username, a course's capacity,
 * a transfer between two accounts). evs_decide() reads the events
 * matching `query` in position order and folds each into the caller's
 * state (apply, with ctx), calls decide, and appends what it emitted with
 * evs_append_ex() under the condition "fail if an event matching `query`
 * exists after the last matching position read" (0 when none matched).
 * On EVS_CONDITION_FAILED it folds just the matching events that came in
 * meanwhile (the fold so far stays valid: events never change and come
 * in position order) and decides again, at most max_attempts rounds.
 *
 * decide emits events with evs_dcb_emit() into any streams (EVS_ANY:
 * the condition, not a version, guards the decision), grouped into one
 * part per stream in the order streams were first emitted to, or rejects
 * with evs_dcb_reject() (nothing written). Both copy their inputs;
 * evs_dcb_emit() returns EVS_OK, EVS_INVALID, EVS_BAD_STREAM,
 * EVS_EVENT_TOO_LARGE, EVS_BATCH_TOO_LARGE (more than max_batch events in
 * the decision) or EVS_NOMEM, and the append checks the rest. A decision
 * with no events appends nothing (EVS_OK, events = 0).
 *
 * init (optional) resets the state once, before the first read; apply
 * must not call the library (a read transaction is open); decide runs
 * with none open. Callbacks return EVS_OK or a code, which evs_decide()
 * returns.
 *
 * Outcomes: EVS_OK; EVS_REJECTED (the message is decide's);
 * EVS_CONDITION_FAILED (every attempt lost: result->conflict is the last
 * conflicting position); the append's outcomes for bad events; EVS_INVALID
 * (no query, apply or decide; a malformed query). Failures: those of
 * reading and appending.
 * ------------------------------------------------------------------- */

typedef struct evs_dcb_decision evs_dcb_decision;
int evs_dcb_emit(evs_dcb_decision *d, const char *stream, const evs_event_in *event);
int evs_dcb_reject(evs_dcb_decision *d, const char *message);

typedef struct evs_decider {
	const evs_query *query; /* what the decision depends on; no items =
	                           every event */
	void *ctx;              /* handed to every callback */
	int (*init)(void *ctx); /* optional */
	int (*apply)(void *ctx, const evs_event *event);
	int (*decide)(void *ctx, evs_dcb_decision *d);
	unsigned max_attempts; /* 0 = EVS_DEFAULT_ATTEMPTS */
} evs_decider;

typedef struct evs_decide_result {
	uint64_t after;          /* last matching position folded (the
	                            condition's); 0 = none matched */
	uint64_t folded;         /* events folded over all attempts */
	uint64_t first_position; /* of the appended events; 0 = none */
	uint64_t last_position;
	size_t events;     /* events appended */
	unsigned attempts; /* decide rounds: 1 + conditions failed */
	uint64_t conflict; /* the last EVS_CONDITION_FAILED's position */
	int idempotent;    /* an exact retry of stored events (fixed ids) */
} evs_decide_result;

/* result may be NULL. */
int evs_decide(evs_store *store, const evs_decider *decider, evs_decide_result *result);

/* ---------------------------------------------------------------------
 * The generic aggregate: every stream has it, without code. Its state is
 * the RFC 7386 JSON merge patch fold of the stream's events' data maps,
 * starting from the empty map: a key with nil removes the key, a map
 * merges into a map, anything else replaces. On msgpack, map keys match
 * when they are equal msgpack values (strings byte for byte); new keys
 * come after the existing ones, in patch order. Its snapshots are marked
 * "evs.merge-patch" (format version 1).
 * ------------------------------------------------------------------- */

typedef struct evs_state {
	void *data; /* one msgpack value (a map for states);
	                              owned: evs_state_free() */
	size_t len;
	uint64_t version;  /* stream version it reflects; 0 = none */
	uint64_t position; /* position of that version's event */
} evs_state;

/* The generic state of `stream` as of `at` (NULL = latest). A stream
 * without events (then) is the empty map at version 0. Outcomes:
 * EVS_BAD_STREAM; failures: EVS_CORRUPT (an event's data does not
 * decode), EVS_IO, EVS_NOMEM. */
int evs_state_load(evs_store *store, const char *stream, const evs_at *at, evs_state *out);
/* Free out->data and zero it; accepts NULL. */
void evs_state_free(evs_state *state);
/* Store a snapshot of the latest generic state of `stream`. */
int evs_state_snapshot(evs_store *store, const char *stream);

/* RFC 7386 on msgpack: out = merge_patch(target, patch). target may be
 * NULL (length 0): no value. Both must be one well-formed msgpack value
 * each (EVS_BAD_DATA otherwise). out->version and position are 0. */
int evs_merge_patch(const void *target, size_t target_len, const void *patch, size_t patch_len,
		    evs_state *out);

/* =====================================================================
 * Schemas (schema/)
 *
 * A schema document describes one version of one event type, in JSON:
 *
 *   {"type": "MoneyDeposited", "version": 2,
 *    "schema": { JSON Schema subset, see schema/README.md },
 *    "upcast": [ steps from version 1, see below ] }
 *
 * The store keeps a registry of documents (sub-database "schemas", see
 * docs/FORMAT.md), so every process and reader sees the same schemas.
 * When an event's type has schemas, evs_append() validates its data
 * against the version the event states (type_version), or the latest
 * version when it states none (0), and stores that version number. A
 * violation refuses the whole batch (EVS_SCHEMA_VIOLATION) and the message
 * names the event's index, the JSON path and the rule:
 *   event 2: data at "$.amount" breaks rule "minimum" of schema
 *   "MoneyDeposited" version 1: -5 is less than 1
 * Types without schemas are accepted or refused (EVS_UNKNOWN_TYPE) as the
 * store's setting says (evs_schema_set_unknown).
 * evs_restore() writes events back exactly as they were stored and does
 * not validate them.
 *
 * Versions of a type are 1, 2, 3, ... without gaps. Version k+1 is added
 * only if it is a compatible change of k (it only adds optional
 * properties) or comes with an upcaster from k: declarative steps, or
 * "upcast": "hook" for a C function registered with
 * evs_upcaster_register() by every process that reads upcast events.
 * Upcast steps, applied to the top level of the data map in order:
 *   {"op": "rename",  "from": "a", "to": "b"}
 *   {"op": "add",     "field": "a", "value": <JSON default>}
 *   {"op": "remove",  "field": "a"}
 *   {"op": "convert", "field": "a", "rule": R}   R: "to-string",
 *       "to-integer", "to-number", or {"multiply": N} (integers)
 * Upcasting never changes stored bytes: a reader asks for an event in its
 * type's latest version and gets a converted copy.
 * ===================================================================== */

#define EVS_MAX_SCHEMA_BYTES   (256u << 10) /* one schema document */
#define EVS_MAX_SCHEMA_DEPTH   16           /* nesting inside "schema" */
#define EVS_MAX_SCHEMA_PROPS   256          /* properties of one object */
#define EVS_MAX_SCHEMA_VERSION 10000        /* versions of one type */

/* A parsed, compiled schema document; immutable, any thread may use it. */
typedef struct evs_schema evs_schema;

/* Parse and compile a schema document of len bytes. EVS_BAD_SCHEMA with
 * the reason (and where) in err, EVS_NOMEM. */
int evs_schema_parse(const char *json, size_t len, evs_schema **out, char *err, size_t errlen);
void evs_schema_free(evs_schema *schema);
/* The document's type (NUL-terminated) and version. */
const char *evs_schema_type(const evs_schema *schema);
uint32_t evs_schema_version(const evs_schema *schema);
/* Validate a msgpack payload: EVS_OK, or EVS_SCHEMA_VIOLATION with
 * 'at "$.path" breaks rule "name": detail' in err (err may be NULL), or
 * EVS_BAD_DATA when the walk meets bytes that are not msgpack as the
 * store takes it (strings UTF-8 without NUL, nesting at most
 * EVS_MAX_DEPTH). */
int evs_schema_validate(const evs_schema *schema, const void *data, size_t len, char *err,
			size_t errlen);

/* Register a document (idempotent for the same document). Outcomes:
 * EVS_BAD_SCHEMA, EVS_SCHEMA_INCOMPATIBLE (version k+1 is neither a
 * compatible change nor has an upcaster; or a version is skipped),
 * EVS_SCHEMA_EXISTS (that version holds another document). */
int evs_schema_add(evs_store *store, const char *json, size_t len);
/* What evs_schema_add would answer, writing nothing. */
int evs_schema_check(evs_store *store, const char *json, size_t len);

/* The stored document of type's version (0 = latest): *json is
 * NUL-terminated, freed with evs_schema_text_free(). EVS_NOT_FOUND. */
int evs_schema_get(evs_store *store, const char *type, uint32_t version, char **json, size_t *len);
void evs_schema_text_free(char *json);

typedef struct evs_schema_entry {
	evs_str type;
	uint32_t version;
	int upcast;       /* 0 none, 1 declarative, 2 C hook */
	const char *json; /* the document, not NUL-terminated */
	size_t json_len;
} evs_schema_entry;

/* Call fn for every registered document, by type then version (views
 * valid during the call; fn must not call the library). A non-zero
 * return from fn stops the walk and is returned. */
int evs_schema_list(evs_store *store, int (*fn)(void *ctx, const evs_schema_entry *entry),
		    void *ctx);

enum evs_unknown_types {
	EVS_UNKNOWN_ACCEPT = 0, /* default: types without schemas pass */
	EVS_UNKNOWN_REFUSE = 1  /* they are refused: EVS_UNKNOWN_TYPE */
};
/* The store's setting for types without schemas (kept in the store). */
int evs_schema_set_unknown(evs_store *store, int policy);
int evs_schema_get_unknown(evs_store *store, int *policy);

/* A C upcaster from version `from` of `type` to from + 1: write the new
 * data map into out (evs_sink_write). Registered per handle (not stored);
 * it takes precedence over declarative steps of that version. */
typedef int (*evs_upcast_fn)(void *ctx, const evs_event *event, evs_sink *out);
int evs_upcaster_register(evs_store *store, const char *type, uint32_t from, evs_upcast_fn fn,
			  void *ctx);

/* Buffers of upcast events: one per reader thread. */
typedef struct evs_upcaster evs_upcaster;
int evs_upcaster_new(evs_store *store, evs_upcaster **out);
void evs_upcaster_free(evs_upcaster *u);
/*
 * *out = *in upcast to the latest version of its type: data and
 * type_version replaced, the rest the same. Events already latest, or of
 * types without schemas, are copied as they are. out->data is valid until
 * the next call on u. May be called from an aggregate's apply().
 * Failures: EVS_UNKNOWN_TYPE (a step needs a C hook that is not
 * registered), EVS_CORRUPT (a step does not fit the data), EVS_NOMEM.
 */
int evs_upcast(evs_upcaster *u, const evs_event *in, evs_event *out);
/* Make an iterator return events upcast (on = 1) from its next call. */
int evs_iter_upcast(evs_iter *it, int on);

/* =====================================================================
 * Checkpoints (checkpoint.c)
 *
 * Durable named u64 values in the store's own environment, for followers
 * outside the store that must resume where they stopped (evs-relay keeps
 * one per sink: the position its sink acknowledged). A set is durable when
 * it returns, exactly as an append is under the store's sync mode. Names
 * follow the rules of stream ids (1..EVS_MAX_NAME bytes of UTF-8, no NUL;
 * EVS_INVALID otherwise) and sort as bytes. Format: the sub-database
 * "checkpoints", drawn at the top of store/checkpoint.c.
 * ===================================================================== */

/* The value of checkpoint `name`: EVS_OK, or EVS_NOT_FOUND (*position 0). */
int evs_checkpoint_get(evs_store *store, const char *name, uint64_t *position);
/* Create or replace checkpoint `name`. EVS_READONLY on a read-only handle. */
int evs_checkpoint_set(evs_store *store, const char *name, uint64_t position);
/* Remove checkpoint `name`: EVS_OK, or EVS_NOT_FOUND if there was none. */
int evs_checkpoint_delete(evs_store *store, const char *name);
/* Call fn for every checkpoint whose name starts with prefix (NULL or ""
 * = all), in byte order of names. The name is a view valid during the
 * call; fn must not call the library (a read transaction is open). A
 * non-zero return from fn stops the walk and is returned. */
int evs_checkpoint_list(evs_store *store, const char *prefix,
			int (*fn)(void *ctx, evs_str name, uint64_t position), void *ctx);

/* ===================================================================== */

#ifdef __cplusplus
}
#endif

#endif /* EVSTORE_H */
