/*
 * internal.h - what the files of libevstore share with each other (evs__
 * names). Nothing here is part of the public API.
 */
#ifndef EVS_INTERNAL_H
#define EVS_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/types.h>

#include "alloc.h"
#include "buf.h"
#include "evstore.h"
#include "mpread.h"

#define EVS_FORMAT_VERSION \
	3u                     /* 2: the journal (store/jcommit.c); 3: tags,
				  * producer and the event indexes (index.c),
				  * "heads" (stream_index.c) */
#define EVS_FORMAT_JOURNAL  2u /* the first format with the journal */
#define EVS_RECORD_VERSION  2u /* 1 in format 1 and 2 stores */
#define EVS_MAX_BATCH_BYTES ((size_t)256 << 20)
#define EVS_GROUP_BYTES     ((size_t)64 << 20)
#define EVS_DEFAULT_MAP     ((size_t)1 << 30)

/* Big-endian fixed-width integers, so LMDB's byte order is numeric order. */
static inline void evs__put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint64_t evs__get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline void evs__put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint32_t evs__get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline bool evs__is_zero16(const uint8_t id[16])
{
	for (int i = 0; i < 16; i++)
		if (id[i])
			return false;
	return true;
}

/* ---- notify.c: the cross-process commit counter (a shared futex word) --- */

typedef struct evs__notify {
	int fd;
	volatile uint32_t *word; /* in a MAP_SHARED page of <dir>/evs-notify */
} evs__notify;

int evs__notify_open(evs__notify *n, const char *dir, bool create, char *err, size_t errlen);
void evs__notify_close(evs__notify *n);
uint32_t evs__notify_seq(const evs__notify *n);
void evs__notify_wake(evs__notify *n);
/* Wait while the word still equals seq, at most timeout_ms. */
void evs__notify_wait(const evs__notify *n, uint32_t seq, int timeout_ms);

/* ---- the shared environment and the store handle -------------------- */

struct evs__req;
struct evs__schemas;
struct evs__sc_hook;

/*
 * One LMDB environment of this process (core.c keeps the registry): every
 * evs_open() of the same store in the process gets a handle on the same
 * core (LMDB forbids a second environment on one store in a process), so
 * what must be one per environment lives here: the map lock, the
 * group-commit queue and the commit counter. Immutable after the first
 * open except where marked.
 */
typedef struct evs__core {
	struct evs__core *next; /* in the registry (registry mutex) */
	dev_t dev;              /* of data.mdb: the registry's key */
	ino_t ino;
	pid_t pid;     /* the process that opened env (fork: see core.c) */
	unsigned refs; /* handles on this core (registry mutex) */
	bool read_only;
	int sync;
	MDB_env *env;
	MDB_dbi meta, events, streams, ids, time, snapshots, schemas;
	MDB_dbi main_db;     /* LMDB's main tree (pgread.c reads tree records in it) */
	MDB_dbi checkpoints; /* 0: absent (older store opened read-only) */
	MDB_dbi index;       /* the event indexes (index.c) */
	char catsep;         /* the store's category separator */
	MDB_dbi heads;       /* stream_index.c; 0: absent, as checkpoints */
	evs__notify notify;

	/*
	 * Held shared by every transaction of this process and exclusively to
	 * resize the map, which LMDB allows only with no transaction active in
	 * the process.
	 */
	pthread_rwlock_t map_lock;

	/* Group commit: callers queue requests; one leader commits them
	 * (append.c). All under gc_mu. */
	pthread_mutex_t gc_mu;
	struct evs__req *queue_head, *queue_tail;
	bool leader_active;
	unsigned queued;          /* requests in the queue */
	unsigned appenders;       /* callers inside evs_append() (atomic) */
	bool gathering;           /* the leader waits in gather_cv (atomic; set under gc_mu) */
	pthread_cond_t gather_cv; /* CLOCK_MONOTONIC */
	int64_t commit_ns;        /* moving average of a group's commit */
	uint32_t answered;        /* +1 per answered group: waiters' futex */

	/* The journal (journal.c, jopen.c, jcommit.c); jfd -1: none (a
	 * read-only open of a store without one). */
	int jfd;
	bool jrecover;  /* holds the journal's lock exclusively: recover */
	bool jrestored; /* put a checkpoint's meta pages back: its next
			 * checkpoint is due even at the same transaction */
	uint8_t juuid[16];
	uint64_t jring;
	uint32_t jpsize;
	unsigned long jwrites; /* journal syncs (the test hook's count) */
	/* Records go through jdfd (O_DIRECT | O_DSYNC, whole 4 KiB blocks;
	 * -1: plain writes and fdatasync) from jdbuf; jtail holds the block
	 * the last record written through it ended in, valid for a record
	 * starting at jtail_lsn (journal.c). Under LMDB's writer lock. */
	int jdfd;
	uint8_t *jdbuf, *jtail;
	size_t jdcap;
	uint64_t jtail_lsn;
	pthread_mutex_t jmu; /* the fields below */
	MDB_txn *pin;        /* a read transaction at our last checkpoint */
	uint64_t ck_lsn;     /* the newest checkpoint known to be on disk */
	uint64_t ck_txnid;
	int64_t ck_ms;    /* when this process last checkpointed */
	int64_t ck_every; /* ms between checkpoints while writing */
	bool ck_running;
	/* The checkpointer thread (jckthr.c): started by the first due
	 * checkpoint, runs them off the appenders' threads; ck_h is its own
	 * handle on this core, ck_err the failure it leaves for an appender
	 * to log. All under jmu. */
	bool ck_thread, ck_stop, ck_wanted;
	pthread_t ck_thr;
	pthread_cond_t ck_cv;
	struct evs_store *ck_h;
	char ck_err[256];
	bool unj_dirty;    /* EVS_SYNC_NONE commits since our checkpoint */
	uint64_t head_lsn; /* after our last journal record */
} evs__core;

/*
 * A handle: the caller's options, path spelling and schema state, and
 * copies of the core's immutable LMDB handles (so that code reads s->env,
 * s->events). notify is a copy of core->notify (the same mapped word); the
 * core owns and unmaps it.
 */
struct evs_store {
	evs__core *core;
	MDB_env *env;
	MDB_dbi meta, events, streams, ids, time;
	MDB_dbi snapshots;   /* 0: absent (older store opened read-only) */
	MDB_dbi checkpoints; /* checkpoint.c; 0: absent, as snapshots */
	MDB_dbi index;       /* index.c */
	MDB_dbi heads;       /* stream_index.c; 0: absent (format 2 read-only) */
	char *path;
	evs_options opts;
	evs__notify notify;

	/* Schema registry (schema/registry.c, cached by schema/cache.c): dbi 0 when absent (an older
	 * store opened read-only); a cache of the compiled registry, reloaded
	 * when the commit counter moved and the registry's generation in
	 * "meta" changed; C upcasters registered on this handle. */
	MDB_dbi schemas;
	pthread_mutex_t schema_mu;
	struct evs__schemas *schema_cache;
	uint32_t schema_seq;
	struct evs__sc_hook *schema_hooks;
};

/* ---- error.c ----------------------------------------------------------- */

/* Record a message for the calling thread (as the last error of `s`; NULL
 * for evs_open) and return code. */
int evs__fail(const evs_store *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Same, with a message already formatted. */
int evs__fail_msg(const evs_store *s, int code, const char *msg);
/* Map an LMDB or errno code to ours, with "what: detail" as the message. */
int evs__fail_mdb(const evs_store *s, int rc, const char *what);
int evs__code_of_mdb(int rc);
void evs__log(const evs_store *s, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- core.c: the process's environments ------------------------------ */

/* A core for handle s (options defaulted): the one this process has open
 * on the store (*shared), or a new one. */
int evs__core_acquire(const evs_store *s, unsigned want_readers, evs__core **out, bool *shared);
/* Drop a handle's reference; the last closes the environment. */
void evs__core_release(evs__core *c);

/* ---- txn.c: transactions and map growth ------------------------------- */

int evs__read_begin(evs_store *s, MDB_txn **txn);
void evs__read_end(evs_store *s, MDB_txn *txn);
int evs__write_begin(evs_store *s, MDB_txn **txn);
/* Does the calling thread hold a read transaction (an iterator) on s? */
bool evs__thread_reads(const evs_store *s);
/* Commit a write transaction from evs__write_begin durably (the door for
 * every write that is not a group commit: it marks the transaction in the
 * journal's head and checkpoints; in jcommit.c, like evs__write_txn, so
 * that txn.c needs nothing of the journal): 0 or an LMDB/errno code. */
int evs__write_commit(evs_store *s, MDB_txn *txn);
/* mdb_txn_commit and the map lock, nothing else (jcommit.c, jopen.c). */
int evs__txn_commit_raw(evs_store *s, MDB_txn *txn);
/* Grow the map (or adopt another process's growth when `adopt`). Call with
 * no transaction of this thread open. */
int evs__grow(evs_store *s, bool adopt);
/* One write transaction: fn writes in txn and returns 0 or an LMDB code,
 * and sets *commit (false: abort, nothing to keep). MDB_MAP_FULL from fn
 * or the commit grows the map and runs fn again. EVS_OK, or a code with
 * the message "<what>: <LMDB's reason>". */
int evs__write_txn(evs_store *s, int (*fn)(evs_store *s, MDB_txn *txn, void *arg, bool *commit),
		   void *arg, const char *what);
/* Grow the map to at least size bytes (a later open asked for more). */
int evs__map_at_least(evs_store *s, size_t size);

/* ---- jopen.c, jcommit.c: the journal (protocol at the top of jcommit.c) */

/* Before mdb_env_open: open or create the journal, take its lock, and
 * after a system restart put back LMDB's meta pages of the checkpoint. */
int evs__j_open(evs__core *c, const char *path, bool read_only);
/* After the sub-databases are open (s a handle on a new core): upgrade,
 * replay, checkpoint. */
int evs__j_start(evs_store *s);
void evs__j_close(evs__core *c);
/* Journal and commit a group's write transaction (events first..last in
 * txn; first = last + 1 when it has none, only checkpoint writes); the
 * transaction ends either way. ckw: the group's checkpoint writes encoded
 * for the record's body (jckw.c), ckw_len 0 = none. *ck_after: checkpoint
 * before answering (the group went through LMDB's own sync). 0 or a code. */
int evs__j_commit(evs_store *s, MDB_txn *txn, uint64_t first, uint64_t last, const void *ckw,
		  size_t ckw_len, bool *ck_after);
/* Checkpoint now (EVS_ code); or when one is due, on the checkpointer
 * thread (jckthr.c; errors only logged). */
int evs__j_checkpoint(evs_store *s);
void evs__j_maybe_checkpoint(evs_store *s);
/* jckthr.c: evs__j_maybe_checkpoint hands a due checkpoint to the
 * environment's checkpointer thread; stop it (evs__j_close). */
void evs__j_ck_stop(evs__core *c);
int evs__j_head_get(evs_store *s, MDB_txn *txn, uint64_t *lsn, uint64_t *unj);
int evs__j_head_put(evs_store *s, MDB_txn *txn, uint64_t lsn, uint64_t unj);
int evs__j_last_position(evs_store *s, MDB_txn *txn, uint64_t *pos);
/* Add to the stream count kept in "meta" (group.c). */
int evs__count_streams(evs_store *s, MDB_txn *txn, uint64_t added);

/* ---- store.c: the clock and names ------------------------------------- */

int64_t evs__now_ns(void);
int evs__check_name(const char *name, size_t *len);
/* evs__utf8_text (names and payload strings alike): the base's utf8.h. */
#include "utf8.h"

/* ---- record.c: the event record (format at the top of record.c) ------ */

#define EVS__RECORD_HEAD 20 /* array marker, record version, recorded_at, version */

/* msgpack-c's writer callback into an evs__buf (-1 once it is out of
 * memory or past its limit). */
int evs__mp_buf_write(void *data, const char *buf, size_t len);
/* Encode the part of a record that is known before commit (the tail).
 * Tags and producer must have been checked (evs__tags_check); the tags are
 * stored sorted. */
int evs__record_tail(evs__buf *out, const char *stream, size_t stream_len, const evs_event_in *ev,
		     const uint8_t id[16]);
/* The same with tags and producer given as views (ev's are ignored). */
int evs__record_tail_ex(evs__buf *out, const char *stream, size_t stream_len,
			const evs_event_in *ev, const uint8_t id[16], const evs_str *tags,
			size_t ntags, evs_str producer);
void evs__record_head(uint8_t head[EVS__RECORD_HEAD], int64_t recorded_at, uint64_t version);
/* Decode a record value (version 1 or 2) into a view; false if it is
 * malformed. ev->tags points into `tags`, the caller's array (an iterator
 * owns one), so the view lives as long as both. */
bool evs__record_decode(const void *val, size_t len, uint64_t position, evs_event *ev,
			evs_str tags[EVS_MAX_TAGS]);
/* Decode a tail from evs__record_tail (position, version, recorded_at 0). */
bool evs__record_decode_tail(const void *tail, size_t len, evs_event *ev,
			     evs_str tags[EVS_MAX_TAGS]);
/* Check a tag set: SIZE_MAX if fine, else the index of the first bad tag
 * with *why ("is empty", ...; "repeats tag": *other is the earlier one). */
size_t evs__tags_check(const evs_str *tags, size_t n, const char **why, size_t *other);
void evs__tags_sort(evs_str *tags, size_t n);
/* Quick peeks used by indexes and verification. */
static inline int64_t evs__record_recorded_at(const void *val)
{
	return (int64_t)evs__get_u64((const uint8_t *)val + 3);
}

/* ---- uuid.c ----------------------------------------------------------- */

/* The 36-character text of a 16-byte id (8-4-4-4-12 lowercase hex). */
void evs__uuid_text(const uint8_t id[16], char out[37]);

/* ---- read.c ------------------------------------------------------------ */

/* ---- stream_index.c: (stream, version) -> position ------------------- */

/* Versions kept in a stream's "heads" entry move to "streams" EVS__SX_TAIL
 * at a time, when it holds 2 * EVS__SX_TAIL (stream_index.c). */
#define EVS__SX_TAIL 16

/* A stream's "heads" entry, copied: positions of versions v0..v0+n-1. */
typedef struct evs__sxtail {
	uint64_t v0;
	size_t n;
	uint64_t pos[2 * EVS__SX_TAIL];
} evs__sxtail;

size_t evs__sx_key(uint8_t *out, const char *stream, size_t len, uint64_t version);
bool evs__sx_split(const MDB_val *k, size_t *stream_len, uint64_t *version);
/* Check a "heads" value: 0 with its v0 and n, or MDB_CORRUPTED. */
int evs__sx_heads_value(const MDB_val *v, uint64_t *v0, size_t *n);
/* Index the stream's next version (its head + 1). */
int evs__sx_put(evs_store *s, MDB_txn *txn, const char *stream, size_t len, uint64_t version,
		uint64_t position);
int evs__sx_put_run(evs_store *s, MDB_txn *txn, const char *stream, size_t len, uint64_t version,
		    uint64_t position, size_t n);
int evs__sx_get(evs_store *s, MDB_txn *txn, const char *stream, size_t len, uint64_t version,
		uint64_t *position);
/* In "streams" only, through cursor c (cheaper for probes that stay
 * close). */
int evs__sx_cursor_get(MDB_cursor *c, const char *stream, size_t len, uint64_t version,
		       uint64_t *position);
/* In "streams" only: position cursor c on the stream's entry at version
 * `from` (forward: the first at or after; backward: the last at or
 * before). 0 with version and position, MDB_NOTFOUND past its end. */
int evs__sx_seek(MDB_cursor *c, const char *stream, size_t len, uint64_t from, int dir,
		 uint64_t *version, uint64_t *position);

/* A stream's versions over "streams" and "heads", as of txn: open it with
 * a cursor on "streams" (the caller's, used and left open) and the stream
 * id (not copied: it must outlive x). get: one version; seek: the first
 * version at or after `from` (forward) or at or before it (backward);
 * step: the next one in that direction. 0, MDB_NOTFOUND past the ends, or
 * a failure. */
typedef struct evs__sxc {
	MDB_cursor *c;
	const char *stream;
	size_t len;
	evs__sxtail t;     /* v0 UINT64_MAX: no heads entry */
	uint64_t head, at; /* the last version; the one seek/step returned */
} evs__sxc;

int evs__sxc_open(evs_store *s, MDB_txn *txn, MDB_cursor *c, const char *stream, size_t len,
		  evs__sxc *x);
int evs__sxc_get(evs__sxc *x, uint64_t version, uint64_t *position);
int evs__sxc_seek(evs__sxc *x, uint64_t from, int dir, uint64_t *version, uint64_t *position);
int evs__sxc_step(evs__sxc *x, int dir, uint64_t *version, uint64_t *position);
/* The stream's last version and its position; MDB_NOTFOUND if none. */
int evs__stream_head_txn(evs_store *s, MDB_txn *txn, const char *stream, size_t len,
			 uint64_t *version, uint64_t *position);

/* ---- filter.c: copied filters and queries ------------------------------ */

/* Keys one filter or query may name in all (types, categories, tags,
 * items): bounds the index walk's cursors. */
#define EVS__PLAN_MAX_KEYS 1024

/* A copied evs_filter. */
typedef struct evs__filter {
	char **types;
	size_t *type_lens;
	size_t ntypes;
	char **prefixes;
	size_t *prefix_lens;
	size_t nprefixes;
	char **categories;
	size_t *category_lens;
	size_t ncategories;
	char **tags;
	size_t *tag_lens;
	size_t ntags;
	bool has_correlation;
	uint8_t correlation[16];
	char catsep; /* the store's category separator */
} evs__filter;

int evs__filter_copy(const evs_store *s, evs__filter *dst, const evs_filter *src);
void evs__filter_free(evs__filter *f);
bool evs__filter_pass(const evs__filter *f, const evs_event *ev);

/* A copied evs_query; all: it matches every event (no items, or an item
 * with neither types nor tags). */
typedef struct evs__qitem {
	char **types;
	size_t *type_lens;
	size_t ntypes;
	char **tags;
	size_t *tag_lens;
	size_t ntags;
} evs__qitem;

typedef struct evs__query {
	evs__qitem *items;
	size_t nitems;
	bool all;
} evs__query;

int evs__query_copy(const evs_store *s, evs__query *dst, const evs_query *src);
void evs__query_free(evs__query *q);
bool evs__query_pass(const evs__query *q, const evs_event *ev);

/* ---- schema/admit.c, schema/cache.c ------------------------------ */

/* Check every event's data (admit.c): a malformed payload fails the call
 * (EVS_BAD_DATA); a schema outcome (EVS_SCHEMA_VIOLATION, EVS_UNKNOWN_TYPE)
 * is returned only when every payload is well-formed. On EVS_OK,
 * *versions is NULL or a malloc'ed array of the type version to store for
 * each event (the latest when it stated 0). */
int evs__schema_prepare(evs_store *s, const evs_event_in *events, size_t n, uint32_t **versions);
/* Free the cache and hooks (evs_close). */
void evs__schema_close(evs_store *s);

/* ---- meta keys ---------------------------------------------------------- */

#define EVS__META_FORMAT         "format"
#define EVS__META_STREAMS        "streams"
#define EVS__META_CREATED        "created_at"
#define EVS__META_SCHEMA_GEN     "schema_gen"
#define EVS__META_SCHEMA_UNKNOWN "schema_unknown"
#define EVS__META_JOURNAL        "journal"
#define EVS__META_CATSEP         "category_separator"
#define EVS__META_INDEX_BUILT    "index_built"

#endif /* EVS_INTERNAL_H */
