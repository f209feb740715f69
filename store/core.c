/*
 * core.c - the process's LMDB environments (evs__core): one per store,
 * shared by every handle evs_open() returns on it, found in a registry
 * keyed by data.mdb's device and inode.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index.h"

static int open_dbs(evs__core *c, const char *path, bool create, char catsep)
{
	MDB_txn *txn;
	unsigned flags = create ? MDB_CREATE : 0;
	int rc;

	/* Another process may grow the map while this one opens; nothing of
	 * this process is open yet, so it can adopt the new size at once. */
	for (int tries = 0;; tries++) {
		rc = mdb_txn_begin(c->env, NULL, c->read_only ? MDB_RDONLY : 0, &txn);
		if (rc != MDB_MAP_RESIZED || tries == 8)
			break;
		if ((rc = mdb_env_set_mapsize(c->env, 0)))
			break;
	}
	if (rc)
		return evs__fail_mdb(NULL, rc, "could not begin transaction");
	if ((rc = mdb_dbi_open(txn, "meta", flags, &c->meta)) ||
	    (rc = mdb_dbi_open(txn, "events", flags, &c->events)) ||
	    (rc = mdb_dbi_open(txn, "streams", flags, &c->streams)) ||
	    (rc = mdb_dbi_open(txn, "event_ids", flags, &c->ids)) ||
	    (rc = mdb_dbi_open(txn, "time", flags, &c->time)) ||
	    (rc = mdb_dbi_open(txn, NULL, 0, &c->main_db))) {
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

	/* Durable named checkpoints (checkpoint.c), also within format 1. */
	rc = mdb_dbi_open(txn, "checkpoints", c->read_only ? 0 : MDB_CREATE, &c->checkpoints);
	if (rc == MDB_NOTFOUND) {
		c->checkpoints = 0;
	} else if (rc) {
		mdb_txn_abort(txn);
		return evs__fail_mdb(NULL, rc, "could not open sub-database \"checkpoints\"");
	}

	/* The streams' newest versions (stream_index.c), format 3; a format
	 * 2 store has none and needs none (its "streams" is complete). */
	rc = mdb_dbi_open(txn, "heads", c->read_only ? 0 : MDB_CREATE, &c->heads);
	if (rc == MDB_NOTFOUND) {
		c->heads = 0;
	} else if (rc) {
		mdb_txn_abort(txn);
		return evs__fail_mdb(NULL, rc, "could not open sub-database \"heads\"");
	}

	/* The schema registry (schema/registry.c), also within format 1. */
	rc = mdb_dbi_open(txn, "schemas", c->read_only ? 0 : MDB_CREATE, &c->schemas);
	if (rc == MDB_NOTFOUND) {
		c->schemas = 0;
	} else if (rc) {
		mdb_txn_abort(txn);
		return evs__fail_mdb(NULL, rc, "could not open sub-database \"schemas\"");
	}

	/* The event indexes (index.c), format 3: a writable open creates the
	 * sub-database and builds them for an older store (evs__ix_upgrade);
	 * a read-only open of an older store is refused below. */
	rc = mdb_dbi_open(txn, "index", c->read_only ? 0 : MDB_CREATE, &c->index);
	if (rc == MDB_NOTFOUND) {
		c->index = 0;
	} else if (rc) {
		mdb_txn_abort(txn);
		return evs__fail_mdb(NULL, rc, "could not open sub-database \"index\"");
	}

	/* The category separator, recorded at creation (or by the upgrade to
	 * format 3: the opener's). */
	c->catsep = catsep ? catsep : '-';
	MDB_val sk = {strlen(EVS__META_CATSEP), EVS__META_CATSEP}, sv;
	rc = mdb_get(txn, c->meta, &sk, &sv);
	if (rc == 0 && sv.mv_size == 1 && *(const char *)sv.mv_data) {
		c->catsep = *(const char *)sv.mv_data;
	} else if (rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return rc ? evs__fail_mdb(NULL, rc, "could not read the category separator")
			  : evs__fail(NULL, EVS_CORRUPT,
				      "store \"%s\" has a malformed category separator", path);
	}

	MDB_val k = {strlen(EVS__META_FORMAT), EVS__META_FORMAT}, v;
	rc = mdb_get(txn, c->meta, &k, &v);
	if (rc == MDB_NOTFOUND && !c->read_only) {
		uint8_t fmt[4], now[8];
		evs__put_u32(fmt, EVS_FORMAT_VERSION);
		evs__put_u64(now, (uint64_t)evs__now_ns());
		MDB_val fv = {4, fmt}, ck = {strlen(EVS__META_CREATED), EVS__META_CREATED},
			cv = {8, now};
		sv.mv_size = 1;
		sv.mv_data = &c->catsep;
		rc = mdb_put(txn, c->meta, &k, &fv, 0);
		if (!rc)
			rc = mdb_put(txn, c->meta, &ck, &cv, 0);
		if (!rc)
			rc = mdb_put(txn, c->meta, &sk, &sv, 0);
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
	/* formats 1 (no journal) and 2 (no event indexes): a writable open
	 * upgrades them (jopen.c, then index.c); read-only, the indexes that
	 * reads by type, category, tag and correlation need are missing */
	if (fmt < EVS_FORMAT_VERSION && fmt >= 1 && c->read_only) {
		mdb_txn_abort(txn);
		return evs__fail(NULL, EVS_FORMAT,
				 "store \"%s\" has format version %u, which has no event "
				 "indexes: open it read-write once to upgrade it to version %u "
				 "(evs_open without read_only, or an evs command that writes)",
				 path, fmt, EVS_FORMAT_VERSION);
	}
	if (fmt == EVS_FORMAT_VERSION && c->index == 0) {
		mdb_txn_abort(txn);
		return evs__fail(NULL, EVS_CORRUPT,
				 "store \"%s\" has format version %u but no \"index\" sub-database",
				 path, fmt);
	}
	if (fmt > EVS_FORMAT_VERSION || fmt == 0) {
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
	evs__j_close(c);
	if (c->env)
		mdb_env_close(c->env);
	pthread_cond_destroy(&c->gather_cv);
	pthread_mutex_destroy(&c->gc_mu);
	pthread_mutex_destroy(&c->jmu);
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
	if ((c = evs__calloc(1, sizeof *c)) == NULL)
		return evs__fail(NULL, EVS_NOMEM, "out of memory");
	c->pid = getpid();
	c->read_only = s->opts.read_only != 0;
	c->sync = s->opts.sync;
	c->notify.fd = -1;
	c->jfd = -1;
	c->jdfd = -1;
	pthread_mutex_init(&c->jmu, NULL);
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
	mdb_env_set_maxdbs(c->env, 16);
	mdb_env_set_maxreaders(c->env, s->opts.max_readers);
	/* 0: the default for a new store; an existing one keeps the size its
	 * meta page records */
	snprintf(data, sizeof data, "%s/data.mdb", s->path);
	if (s->opts.map_size)
		mdb_env_set_mapsize(c->env, s->opts.map_size);
	else if (stat(data, &st) != 0)
		mdb_env_set_mapsize(c->env, EVS_DEFAULT_MAP);
	/* the journal makes commits durable; LMDB syncs at checkpoints */
	flags |= MDB_NOSYNC;
	if (s->opts.read_only)
		flags |= MDB_RDONLY;
	if ((rc = evs__j_open(c, s->path, c->read_only)) != EVS_OK)
		goto fail;
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
	if ((rc = open_dbs(c, s->path, s->opts.create, s->opts.category_separator)) != EVS_OK)
		goto fail;
	if (evs__notify_open(&c->notify, s->path, !s->opts.read_only, err, sizeof err) != 0) {
		rc = evs__fail(NULL, EVS_IO, "%s", err);
		goto fail;
	}
	MDB_stat ms;
	if (mdb_env_stat(c->env, &ms) == 0)
		c->jpsize = ms.ms_psize;
	{
		/* recovery and the first checkpoint need a handle on c */
		evs_store h = *s;
		h.core = c;
		h.env = c->env;
		h.meta = c->meta;
		h.events = c->events;
		h.streams = c->streams;
		h.heads = c->heads;
		h.ids = c->ids;
		h.time = c->time;
		h.snapshots = c->snapshots;
		h.schemas = c->schemas;
		h.checkpoints = c->checkpoints;
		h.index = c->index;
		h.notify = c->notify;
		if ((rc = evs__j_start(&h)) != EVS_OK ||
		    (!c->read_only && (rc = evs__ix_upgrade(&h)) != EVS_OK)) {
			snprintf(err, sizeof err, "could not open store \"%s\": %s", s->path,
				 evs_errmsg(&h));
			rc = evs__fail_msg(NULL, rc, err);
			goto fail;
		}
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

int evs__core_acquire(const evs_store *s, unsigned want_readers, evs__core **out, bool *shared)
{
	evs__core *c;
	int rc;

	pthread_once(&reg_once, reg_init);
	pthread_mutex_lock(&reg_mu);
	*shared = (c = reg_find(s)) != NULL;
	if (*shared) {
		if ((rc = compatible(c, s, want_readers)) == EVS_OK)
			c->refs++;
	} else {
		rc = core_open(s, &c);
	}
	pthread_mutex_unlock(&reg_mu);
	*out = rc == EVS_OK ? c : NULL;
	return rc;
}

void evs__core_release(evs__core *c)
{
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
