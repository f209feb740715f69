/*
 * store.c - opening and closing a store, transactions, and map growth.
 *
 * A process has one LMDB environment per store (evs__core, found in the
 * registry below); every evs_open() of that store returns a handle on it.
 *
 * The map grows by itself: a write that meets MDB_MAP_FULL is undone, the
 * map is enlarged and the write is redone, so MDB_MAP_FULL never reaches a
 * caller. LMDB lets a process resize only while it has no transaction open,
 * so every transaction holds map_lock shared and growth takes it exclusively
 * (waiting at most EVS_GROW_WAIT_MS for open iterators). A process that sees
 * another process's growth (MDB_MAP_RESIZED) adopts it the same way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

void evs_options_init(evs_options *o)
{
	memset(o, 0, sizeof *o);
	o->create = 1;
	o->sync = EVS_SYNC_FULL;
}

int64_t evs__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Stream ids and types: 1..EVS_MAX_NAME bytes of valid UTF-8, no NUL. */
int evs__check_name(const char *name, size_t *len)
{
	size_t n;

	if (name == NULL || (n = strnlen(name, EVS_MAX_NAME + 1)) == 0)
		return 0;
	if (n > EVS_MAX_NAME)
		return -1;
	if (!evs__utf8_text((const uint8_t *)name, n))
		return -2;
	*len = n;
	return 1;
}

static int open_dbs(evs__core *c, const char *path, bool create)
{
	MDB_txn *txn;
	unsigned flags = create ? MDB_CREATE : 0;
	int rc;

	rc = mdb_txn_begin(c->env, NULL, c->read_only ? MDB_RDONLY : 0, &txn);
	if (rc)
		return evs__fail_mdb(NULL, rc, "could not begin transaction");
	if ((rc = mdb_dbi_open(txn, "meta", flags, &c->meta)) ||
	    (rc = mdb_dbi_open(txn, "events", flags, &c->events)) ||
	    (rc = mdb_dbi_open(txn, "streams", flags, &c->streams)) ||
	    (rc = mdb_dbi_open(txn, "event_ids", flags, &c->ids)) ||
	    (rc = mdb_dbi_open(txn, "time", flags, &c->time))) {
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND)
			return evs__fail(NULL, EVS_NO_STORE,
					 "could not open store \"%s\": not an evstore store", path);
		return evs__fail_mdb(NULL, rc, "could not open sub-databases");
	}
	/*
	 * Aggregate snapshots (snapshot.c) came within format 1: older
	 * libraries never open them. A writable open creates the sub-database;
	 * an older store opened read-only has none, marked by dbi 0.
	 */
	rc = mdb_dbi_open(txn, "snapshots", c->read_only ? 0 : MDB_CREATE, &c->snapshots);
	if (rc == MDB_NOTFOUND) {
		c->snapshots = 0;
	} else if (rc) {
		mdb_txn_abort(txn);
		return evs__fail_mdb(NULL, rc, "could not open sub-database \"snapshots\"");
	}

	/* The schema registry (schema/registry.c), also within format 1. */
	rc = mdb_dbi_open(txn, "schemas", c->read_only ? 0 : MDB_CREATE, &c->schemas);
	if (rc == MDB_NOTFOUND) {
		c->schemas = 0;
	} else if (rc) {
		mdb_txn_abort(txn);
		return evs__fail_mdb(NULL, rc, "could not open sub-database \"schemas\"");
	}

	MDB_val k = {strlen(EVS__META_FORMAT), EVS__META_FORMAT}, v;
	rc = mdb_get(txn, c->meta, &k, &v);
	if (rc == MDB_NOTFOUND && !c->read_only) {
		uint8_t fmt[4], now[8];
		evs__put_u32(fmt, EVS_FORMAT_VERSION);
		evs__put_u64(now, (uint64_t)evs__now_ns());
		MDB_val fv = {4, fmt}, ck = {strlen(EVS__META_CREATED), EVS__META_CREATED},
			cv = {8, now};
		rc = mdb_put(txn, c->meta, &k, &fv, 0);
		if (!rc)
			rc = mdb_put(txn, c->meta, &ck, &cv, 0);
		if (!rc)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		if (rc)
			return evs__fail_mdb(NULL, rc, "could not write store format");
		return EVS_OK;
	}
	if (rc) {
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND)
			return evs__fail(NULL, EVS_NO_STORE,
					 "could not open store \"%s\": not initialised", path);
		return evs__fail_mdb(NULL, rc, "could not read store format");
	}
	if (v.mv_size != 4) {
		mdb_txn_abort(txn);
		return evs__fail(NULL, EVS_CORRUPT, "store \"%s\" has a malformed format record",
				 path);
	}
	uint32_t fmt = evs__get_u32(v.mv_data);
	if (fmt != EVS_FORMAT_VERSION) {
		mdb_txn_abort(txn);
		return evs__fail(
			NULL, EVS_FORMAT,
			"store \"%s\" has format version %u, this library reads version %u%s", path,
			fmt, EVS_FORMAT_VERSION,
			fmt > EVS_FORMAT_VERSION ? ": upgrade evstore" : "");
	}
	/* Commit even a read-only transaction: aborting it would close the
	 * sub-database handles it opened (LMDB keeps them only on commit). */
	rc = mdb_txn_commit(txn);
	return rc ? evs__fail_mdb(NULL, rc, "could not open sub-databases") : EVS_OK;
}

/*
 * The registry: every LMDB environment this process has open, keyed by
 * the device and inode of its data.mdb (so relative paths, symlinks and
 * bind mounts of one store meet; an inode cannot be reused while the
 * environment holds the file open). reg_mu is held across the whole of an
 * open and of a last close: a store must never have two environments in
 * the process, not even for the moment between one closing its files
 * (which drops the process's fcntl locks on them) and another opening.
 *
 * fork(): the child inherits the parent's environments, which LMDB forbids
 * it to use. The child handler empties the registry (and the pid check
 * backs it up), so an evs_open() in the child opens a fresh environment;
 * evs_close() of an inherited handle in the child frees the handle only.
 */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static evs__core *reg_head;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void reg_prepare(void)
{
	pthread_mutex_lock(&reg_mu);
}

static void reg_parent(void)
{
	pthread_mutex_unlock(&reg_mu);
}

static void reg_child(void)
{
	reg_head = NULL; /* the parent's environments: never ours */
	pthread_mutex_init(&reg_mu, NULL);
}

static void reg_init(void)
{
	pthread_atfork(reg_prepare, reg_parent, reg_child);
}

static const char *sync_name(int sync)
{
	return sync == EVS_SYNC_FULL ? "full" : sync == EVS_SYNC_META ? "meta" : "none";
}

/* A core of this process on the store at s->path, or NULL. reg_mu held. */
static evs__core *reg_find(const evs_store *s)
{
	char data[4096];
	struct stat st;
	pid_t pid = getpid();

	snprintf(data, sizeof data, "%s/data.mdb", s->path);
	if (stat(data, &st) != 0)
		return NULL; /* no data file yet: not open here either */
	for (evs__core *c = reg_head; c; c = c->next)
		if (c->dev == st.st_dev && c->ino == st.st_ino && c->pid == pid)
			return c;
	return NULL;
}

/* May handle s (options defaulted) share core c? reg_mu held. */
static int compatible(const evs__core *c, const evs_store *s, unsigned want_readers)
{
	unsigned readers = 0;

	if (!s->opts.read_only && c->read_only)
		return evs__fail(NULL, EVS_BUSY,
				 "could not open store \"%s\" read-write: this process has it "
				 "open read-only (one LMDB environment per store per process: "
				 "close the read-only handles first)",
				 s->path);
	if (!s->opts.read_only && s->opts.sync != c->sync)
		return evs__fail(NULL, EVS_INVALID,
				 "could not open store \"%s\" with sync mode \"%s\": this process "
				 "has it open with sync mode \"%s\" (one LMDB environment per "
				 "store per process)",
				 s->path, sync_name(s->opts.sync), sync_name(c->sync));
	mdb_env_get_maxreaders(c->env, &readers);
	if (want_readers > readers)
		return evs__fail(NULL, EVS_INVALID,
				 "could not open store \"%s\" with max_readers %u: this process "
				 "has it open with %u reader slots (one LMDB environment per "
				 "store per process)",
				 s->path, want_readers, readers);
	return EVS_OK;
}

/* Close and free a core no handle uses. reg_mu held (see above). */
static void core_free(evs__core *c)
{
	if (c == NULL)
		return;
	evs__notify_close(&c->notify);
	if (c->env)
		mdb_env_close(c->env);
	pthread_cond_destroy(&c->gather_cv);
	pthread_mutex_destroy(&c->gc_mu);
	pthread_rwlock_destroy(&c->map_lock);
	free(c);
}

/* Open a new environment for handle s. reg_mu held. */
static int core_open(const evs_store *s, evs__core **out)
{
	unsigned flags = MDB_NOTLS;
	char err[512], data[4096];
	struct stat st;
	evs__core *c;
	int rc;

	*out = NULL;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return evs__fail(NULL, EVS_NOMEM, "out of memory");
	c->pid = getpid();
	c->read_only = s->opts.read_only != 0;
	c->sync = s->opts.sync;
	c->notify.fd = -1;
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&c->map_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&c->gc_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->gather_cv, &ca);
	pthread_condattr_destroy(&ca);

	if ((rc = mdb_env_create(&c->env)) != 0) {
		c->env = NULL;
		rc = evs__fail_mdb(NULL, rc, "could not create LMDB environment");
		goto fail;
	}
	mdb_env_set_maxdbs(c->env, 8);
	mdb_env_set_maxreaders(c->env, s->opts.max_readers);
	/* 0: the default for a new store; an existing one keeps the size its
	 * meta page records */
	snprintf(data, sizeof data, "%s/data.mdb", s->path);
	if (s->opts.map_size)
		mdb_env_set_mapsize(c->env, s->opts.map_size);
	else if (stat(data, &st) != 0)
		mdb_env_set_mapsize(c->env, EVS_DEFAULT_MAP);
	if (s->opts.sync == EVS_SYNC_META)
		flags |= MDB_NOMETASYNC;
	else if (s->opts.sync == EVS_SYNC_NONE)
		flags |= MDB_NOSYNC;
	if (s->opts.read_only)
		flags |= MDB_RDONLY;
	rc = mdb_env_open(c->env, s->path, flags, 0644);
	if (rc) {
		int code = evs__code_of_mdb(rc);
		rc = evs__fail(NULL, code, "could not open store \"%s\": %s", s->path,
			       mdb_strerror(rc));
		goto fail;
	}
	int fd;
	if (mdb_env_get_fd(c->env, &fd) != 0 || fstat(fd, &st) != 0) {
		rc = evs__fail(NULL, EVS_IO, "could not open store \"%s\": %s", s->path,
			       "cannot identify data.mdb");
		goto fail;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	if ((rc = open_dbs(c, s->path, s->opts.create)) != EVS_OK)
		goto fail;
	if (evs__notify_open(&c->notify, s->path, !s->opts.read_only, err, sizeof err) != 0) {
		rc = evs__fail(NULL, EVS_IO, "%s", err);
		goto fail;
	}
	c->refs = 1;
	c->next = reg_head;
	reg_head = c;
	*out = c;
	return EVS_OK;

fail:
	core_free(c);
	return rc;
}

static void handle_free(evs_store *s)
{
	evs__schema_close(s);
	pthread_mutex_destroy(&s->schema_mu);
	free(s->path);
	free(s);
}

static int map_resize(evs_store *s, size_t size, bool adopt);
static void map_rdlock(evs_store *s);
static void map_unlock(evs_store *s);

int evs_open(const char *path, const evs_options *opts, evs_store **out)
{
	evs_store *s = NULL;
	evs__core *c = NULL;
	struct stat st;
	int rc;

	if (out)
		*out = NULL;
	if (path == NULL || *path == 0 || out == NULL)
		return evs__fail(NULL, EVS_INVALID, "evs_open: path and out are required");

	s = calloc(1, sizeof *s);
	if (s == NULL)
		return evs__fail(NULL, EVS_NOMEM, "out of memory");
	if (opts)
		s->opts = *opts;
	else
		evs_options_init(&s->opts);
	unsigned want_readers = s->opts.max_readers;
	if (s->opts.max_readers == 0)
		s->opts.max_readers = 512;
	if (s->opts.max_event_size == 0)
		s->opts.max_event_size = EVS_DEFAULT_MAX_EVENT;
	if (s->opts.max_batch == 0)
		s->opts.max_batch = EVS_DEFAULT_MAX_BATCH;
	s->notify.fd = -1;
	pthread_mutex_init(&s->schema_mu, NULL);
	if (s->opts.max_event_size > EVS_LIMIT_MAX_EVENT || s->opts.sync < EVS_SYNC_FULL ||
	    s->opts.sync > EVS_SYNC_NONE) {
		rc = evs__fail(NULL, EVS_INVALID,
			       "invalid options: max_event_size at most %u, sync 0..2",
			       EVS_LIMIT_MAX_EVENT);
		goto fail;
	}
	if ((s->path = strdup(path)) == NULL) {
		rc = evs__fail(NULL, EVS_NOMEM, "out of memory");
		goto fail;
	}

	if (stat(path, &st) != 0) {
		if (errno != ENOENT || !s->opts.create || s->opts.read_only) {
			rc = evs__fail(NULL,
				       errno == ENOENT ? EVS_NO_STORE : evs__code_of_mdb(errno),
				       "could not open store \"%s\": %s", path, strerror(errno));
			goto fail;
		}
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			rc = evs__fail(NULL, evs__code_of_mdb(errno),
				       "could not create store directory \"%s\": %s", path,
				       strerror(errno));
			goto fail;
		}
	} else if (!S_ISDIR(st.st_mode)) {
		rc = evs__fail(NULL, EVS_INVALID, "could not open store \"%s\": not a directory",
			       path);
		goto fail;
	}
	if (!s->opts.create && !s->opts.read_only) {
		char probe[4096];
		snprintf(probe, sizeof probe, "%s/data.mdb", path);
		if (stat(probe, &st) != 0) {
			rc = evs__fail(NULL, EVS_NO_STORE, "could not open store \"%s\": %s", path,
				       "no data.mdb (run evs init)");
			goto fail;
		}
	}

	pthread_once(&reg_once, reg_init);
	pthread_mutex_lock(&reg_mu);
	bool shared = (c = reg_find(s)) != NULL;
	if (shared) {
		if ((rc = compatible(c, s, want_readers)) == EVS_OK)
			c->refs++;
	} else {
		rc = core_open(s, &c);
	}
	pthread_mutex_unlock(&reg_mu);
	if (rc != EVS_OK)
		goto fail;

	s->core = c;
	s->env = c->env;
	s->meta = c->meta;
	s->events = c->events;
	s->streams = c->streams;
	s->ids = c->ids;
	s->time = c->time;
	s->snapshots = c->snapshots;
	s->schemas = c->schemas;
	s->notify = c->notify;

	/* A larger map than the shared environment has: grow it, as the
	 * first open would have made it. */
	if (shared && s->opts.map_size && !s->opts.read_only) {
		MDB_envinfo info;

		/* under the map lock: another handle may be remapping right now,
		 * and mdb_env_info reads the meta pages through the map */
		map_rdlock(s);
		mdb_env_info(c->env, &info);
		map_unlock(s);
		if (s->opts.map_size > info.me_mapsize &&
		    (rc = map_resize(s, s->opts.map_size, false)) != EVS_OK) {
			char msg[1024];
			snprintf(msg, sizeof msg, "could not open store \"%s\": %s", path,
				 evs_errmsg(s));
			evs_close(s);
			return evs__fail_msg(NULL, rc, msg);
		}
	}
	*out = s;
	return EVS_OK;

fail:
	handle_free(s);
	return rc;
}

void evs_close(evs_store *s)
{
	evs__core *c;

	if (s == NULL)
		return;
	c = s->core;
	handle_free(s);
	/* In a child after fork(): the environment is the parent's (reg_child
	 * forgot it); LMDB forbids touching it, so only the handle goes. */
	if (c == NULL || c->pid != getpid())
		return;
	pthread_mutex_lock(&reg_mu);
	if (--c->refs == 0) {
		for (evs__core **p = &reg_head; *p; p = &(*p)->next) {
			if (*p == c) {
				*p = c->next;
				break;
			}
		}
		core_free(c);
	}
	pthread_mutex_unlock(&reg_mu);
}

/*
 * map_lock prefers writers, or a steady flow of short readers would starve
 * growth. A thread that already holds it shared (an iterator open while it
 * asks for a head) does not take it again: behind a waiting writer that
 * second request would wait for the writer, which waits for the first. The
 * lock is the environment's, so this is counted per core: an iterator on
 * one handle counts for every handle on the same store.
 */
static _Thread_local struct {
	const evs__core *c;
	unsigned n;
} tl_hold;

bool evs__thread_reads(const evs_store *s)
{
	return tl_hold.c == s->core && tl_hold.n > 0;
}

static void map_rdlock(evs_store *s)
{
	evs__core *c = s->core;

	if (tl_hold.c == c && tl_hold.n > 0) {
		tl_hold.n++;
		return;
	}
	pthread_rwlock_rdlock(&c->map_lock);
	if (tl_hold.n == 0) {
		tl_hold.c = c;
		tl_hold.n = 1;
	}
}

static void map_unlock(evs_store *s)
{
	evs__core *c = s->core;

	if (tl_hold.c == c && tl_hold.n > 0) {
		if (--tl_hold.n > 0)
			return;
		tl_hold.c = NULL;
	}
	pthread_rwlock_unlock(&c->map_lock);
}

/* Set the map to size (0 with adopt: take the size another process set;
 * 0 without: grow by the usual step). */
static int map_resize(evs_store *s, size_t size, bool adopt)
{
	evs__core *c = s->core;
	struct timespec deadline;
	MDB_envinfo info;
	int rc;

	if (tl_hold.c == c && tl_hold.n > 0)
		return evs__fail(s, EVS_BUSY,
				 "could not grow the map of \"%s\": this thread holds a read "
				 "transaction (an open iterator) while appending",
				 s->path);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += EVS_GROW_WAIT_MS / 1000;
	rc = pthread_rwlock_timedwrlock(&c->map_lock, &deadline);
	if (rc == ETIMEDOUT)
		return evs__fail(s, EVS_BUSY,
				 "could not grow the map of \"%s\": a read transaction of this "
				 "process stayed open for %d ms (close iterators before appending)",
				 s->path, EVS_GROW_WAIT_MS);
	if (rc)
		return evs__fail(s, EVS_IO, "could not lock the map: %s", strerror(rc));
	mdb_env_info(c->env, &info);
	if (adopt) {
		rc = mdb_env_set_mapsize(c->env, 0);
	} else {
		if (size == 0) {
			size = info.me_mapsize;
			size += size < ((size_t)4 << 30) ? size : ((size_t)4 << 30);
		}
		rc = 0;
		if (size > info.me_mapsize) /* another thread may have grown it */
			rc = mdb_env_set_mapsize(c->env, size);
		if (!rc && size > info.me_mapsize)
			evs__log(s, EVS_LOG_INFO, "grew map of \"%s\" to %zu bytes", s->path, size);
	}
	pthread_rwlock_unlock(&c->map_lock);
	return rc ? evs__fail_mdb(s, rc, "could not grow the map") : EVS_OK;
}

int evs__grow(evs_store *s, bool adopt)
{
	return map_resize(s, 0, adopt);
}

static int txn_begin(evs_store *s, unsigned flags, MDB_txn **txn)
{
	for (;;) {
		map_rdlock(s);
		int rc = mdb_txn_begin(s->env, NULL, flags, txn);
		if (rc == 0)
			return EVS_OK;
		map_unlock(s);
		if (rc != MDB_MAP_RESIZED)
			return evs__fail_mdb(s, rc, "could not begin transaction");
		if ((rc = evs__grow(s, true)) != EVS_OK)
			return rc;
	}
}

int evs__read_begin(evs_store *s, MDB_txn **txn)
{
	return txn_begin(s, MDB_RDONLY, txn);
}

int evs__write_begin(evs_store *s, MDB_txn **txn)
{
	if (s->opts.read_only)
		return evs__fail(s, EVS_READONLY, "store \"%s\" is open read-only", s->path);
	return txn_begin(s, 0, txn);
}

void evs__read_end(evs_store *s, MDB_txn *txn)
{
	if (txn == NULL)
		return;
	mdb_txn_abort(txn);
	map_unlock(s);
}

int evs__write_commit(evs_store *s, MDB_txn *txn)
{
	int rc = mdb_txn_commit(txn);

	map_unlock(s);
	return rc;
}

int evs_head(evs_store *s, evs_store_info *h)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	MDB_envinfo info;
	MDB_stat st;
	int rc;

	if (s == NULL || h == NULL)
		return EVS_INVALID;
	memset(h, 0, sizeof *h);
	if ((rc = evs__read_begin(s, &txn)) != EVS_OK)
		return rc;
	rc = mdb_cursor_open(txn, s->time, &c);
	if (!rc) {
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		if (rc == 0 && k.mv_size == 8 && v.mv_size == 8) {
			h->last_recorded_at = (int64_t)evs__get_u64(k.mv_data);
			h->last_position = evs__get_u64(v.mv_data);
		} else if (rc == 0) {
			rc = MDB_CORRUPTED;
		} else if (rc == MDB_NOTFOUND) {
			rc = 0;
		}
		mdb_cursor_close(c);
	}
	k.mv_size = strlen(EVS__META_STREAMS);
	k.mv_data = EVS__META_STREAMS;
	if (!rc && mdb_get(txn, s->meta, &k, &v) == 0 && v.mv_size == 8)
		h->streams = evs__get_u64(v.mv_data);
	mdb_env_info(s->env, &info);
	mdb_env_stat(s->env, &st);
	h->map_size = info.me_mapsize;
	h->used_bytes = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
	evs__read_end(s, txn);
	return rc ? evs__fail_mdb(s, rc, "could not read store head") : EVS_OK;
}
