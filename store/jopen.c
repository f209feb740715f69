/*
 * jopen.c - opening the journal and recovery.
 *
 * Every process that opens a store holds a flock() on <store>/journal:
 * shared while it has the store open, exclusive while it recovers. The
 * opener that gets it exclusively (no other process has the store open)
 * recovers before it shares it:
 *
 *   1. Before LMDB opens: if the newest checkpoint was written under
 *      another boot id, the system went down since (power loss, OS crash:
 *      LMDB's unsynced writes may be torn, its meta pages newer than its
 *      data). The checkpoint's copies of both meta pages go back into
 *      data.mdb (fsync): LMDB opens at the checkpoint's transaction K,
 *      whose pages no later commit could reuse (jcommit.c).
 *   2. After LMDB opens: replay the journal from the lsn LMDB holds (after
 *      step 1, K's), record by record in order, while each record is
 *      valid (magic, lsn, uuid, both checksums) and its first position is
 *      the store's last + 1. Each record is one LMDB transaction writing
 *      the events and their index entries. The first invalid record ends
 *      the journal (a torn or never-synced write; nothing acknowledged).
 *      On the same boot this replays at most the record in doubt (synced,
 *      never committed); LMDB's own state is intact in the page cache.
 *   3. A checkpoint (with this boot's id), as every writable open makes.
 *
 * A read-only opener recovers nothing: it refuses a store that needs
 * step 1 and reads a store that needs only step 2 as LMDB has it.
 *
 * The boot id comes from /proc/sys/kernel/random/boot_id; EVS_BOOT_ID
 * overrides it (tests simulate a restart with it). EVS_JOURNAL_RING sets
 * the ring size of a journal being created (bytes, at least 64 KiB);
 * EVS_CHECKPOINT_MS the time between checkpoints while writing (default
 * 1000; tests make it long to keep records after the checkpoint).
 * A writer of EVS_SYNC_FULL writes records through a second descriptor
 * opened O_DIRECT | O_DSYNC (journal.c); EVS_JOURNAL_DIRECT=0 turns that
 * off (plain writes and fdatasync, as on file systems without O_DIRECT).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "index.h"
#include "journal.h"

static uint64_t ring_size(void)
{
	const char *e = getenv("EVS_JOURNAL_RING");
	unsigned long long v;

	if (e && *e && (v = strtoull(e, NULL, 10)) >= (64u << 10))
		return (v + 4095) & ~(uint64_t)4095;
	return EVS__J_RING;
}

/* Put the checkpoint's meta pages back into data.mdb. */
static int restore_meta(const char *path, const evs__jck *ck)
{
	char data[4096];
	int fd, rc;

	snprintf(data, sizeof data, "%s/data.mdb", path);
	if ((fd = open(data, O_RDWR | O_CLOEXEC)) < 0)
		return errno;
	rc = evs__j_pwrite(fd, ck->meta[0], EVS__J_META, 0);
	if (!rc)
		rc = evs__j_pwrite(fd, ck->meta[1], EVS__J_META, ck->psize);
	if (!rc && fsync(fd) != 0)
		rc = errno;
	close(fd);
	return rc;
}

int evs__j_open(evs__core *c, const char *path, bool read_only)
{
	char jpath[4096], boot[EVS__J_BOOT];
	evs__jck *ck = NULL;
	int fd, rc = EVS_OK;

	const char *ev = getenv("EVS_CHECKPOINT_MS");
	c->ck_every = ev && *ev ? atol(ev) : EVS__J_CK_MS;
	c->jfd = -1;
	snprintf(jpath, sizeof jpath, "%s/journal", path);
	fd = open(jpath, (read_only ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC, 0644);
	if (fd < 0) {
		if (read_only && errno == ENOENT)
			return EVS_OK; /* a format 1 store; LMDB alone is the store */
		return evs__fail(NULL, evs__code_of_mdb(errno), "could not open \"%s\": %s", jpath,
				 strerror(errno));
	}
	c->jfd = fd;
	if ((ck = evs__calloc(1, sizeof *ck)) == NULL)
		return evs__fail(NULL, EVS_NOMEM, "out of memory");
	for (int attempt = 0;; attempt++) {
		c->jrecover = flock(fd, LOCK_EX | LOCK_NB) == 0;
		if (!c->jrecover && flock(fd, LOCK_SH) != 0) {
			rc = evs__fail(NULL, EVS_IO, "could not lock \"%s\": %s", jpath,
				       strerror(errno));
			goto out;
		}
		int got = evs__j_read_ck(fd, ck);
		if (got == 0)
			break;
		if (got > 0) {
			rc = evs__fail(NULL, evs__code_of_mdb(got), "could not read \"%s\": %s",
				       jpath, strerror(got));
			goto out;
		}
		if (read_only) { /* nothing written through it yet */
			close(fd);
			c->jfd = -1;
			goto out;
		}
		/* no valid checkpoint: a new journal (or one whose creator
		 * died creating it); only an exclusive holder makes it */
		if (c->jrecover) {
			uint8_t uuid[16];
			evs_uuid_v7(uuid);
			if (ftruncate(fd, 0) != 0 || (rc = evs__j_format(fd, ring_size(), uuid))) {
				rc = rc ? rc : errno;
				rc = evs__fail(NULL, evs__code_of_mdb(rc),
					       "could not create \"%s\": %s", jpath, strerror(rc));
				goto out;
			}
			continue;
		}
		flock(fd, LOCK_UN);
		if (attempt > 100) {
			rc = evs__fail(NULL, EVS_CORRUPT, "journal \"%s\" has no valid checkpoint",
				       jpath);
			goto out;
		}
		usleep(10000); /* another process is creating it */
	}
	memcpy(c->juuid, ck->uuid, 16);
	c->jring = ck->ring;
	c->jtail_lsn = UINT64_MAX;
	ev = getenv("EVS_JOURNAL_DIRECT");
	if (!read_only && c->sync == EVS_SYNC_FULL && !(ev && strcmp(ev, "0") == 0))
		c->jdfd = open(jpath, O_RDWR | O_DIRECT | O_DSYNC | O_CLOEXEC); /* -1: none */
	c->jpsize = ck->psize ? ck->psize : (uint32_t)sysconf(_SC_PAGESIZE);
	c->ck_lsn = ck->lsn;
	c->ck_txnid = ck->txnid;
	evs__j_boot_id(boot);
	if (!c->jrecover || ck->txnid == 0 || strcmp(boot, ck->boot) == 0)
		goto out;
	if (read_only) {
		rc = evs__fail(NULL, EVS_BUSY,
			       "store \"%s\" needs recovery after a system restart: open it "
			       "read-write once",
			       path);
		goto out;
	}
	if ((rc = restore_meta(path, ck)) != 0) {
		rc = evs__fail(NULL, evs__code_of_mdb(rc),
			       "could not restore the checkpoint of \"%s\": %s", path,
			       strerror(rc));
		goto out;
	}
	c->jrestored = true;
out:
	free(ck);
	return rc;
}

/* Write one record's events and checkpoint writes into txn (its first
 * position is the store's last + 1). */
static int replay_rec(evs_store *s, MDB_txn *txn, const evs__jrec *r, uint64_t *last)
{
	const uint8_t *p = r->body, *end = r->body + r->body_len;
	uint64_t pos = r->first, added = 0;
	int64_t at = 0;
	evs_str tags[EVS_MAX_TAGS];
	evs_event ev;
	int rc;

	for (uint32_t i = 0; i < r->n; i++, pos++) {
		if (end - p < 4 || (size_t)(end - p - 4) < evs__get_u32(p))
			return MDB_CORRUPTED;
		uint32_t len = evs__get_u32(p);
		const uint8_t *rec = p + 4;
		p += 4 + len;
		if (!evs__record_decode(rec, len, pos, &ev, tags))
			return MDB_CORRUPTED;
		uint8_t pk[8];
		MDB_val k = {8, pk}, v = {len, (void *)rec};
		evs__put_u64(pk, pos);
		if ((rc = mdb_put(txn, s->events, &k, &v, MDB_APPEND)) != 0 ||
		    (rc = evs__sx_put(s, txn, ev.stream.ptr, ev.stream.len, ev.version, pos)) != 0)
			return rc;
		MDB_val ik = {16, ev.id}, iv = {8, pk};
		if ((rc = mdb_put(txn, s->ids, &ik, &iv, MDB_NOOVERWRITE)) != 0)
			return rc == MDB_KEYEXIST ? MDB_CORRUPTED : rc;
		if ((rc = evs__ix_add(s, txn, pos, &ev)) != 0)
			return rc;
		if (ev.version == 1)
			added++;
		at = ev.recorded_at;
	}
	uint8_t tk[8], tv[8];
	MDB_val k = {8, tk}, v = {8, tv};
	evs__put_u64(tk, (uint64_t)at);
	evs__put_u64(tv, pos - 1);
	if ((r->n && (rc = mdb_put(txn, s->time, &k, &v, MDB_APPEND)) != 0) ||
	    (added && (rc = evs__count_streams(s, txn, added)) != 0))
		return rc;
	/* the checkpoint writes after the events (jckw.c) */
	if ((rc = evs__jckw_apply(s, txn, p, end)) != 0)
		return rc;
	*last = pos - 1;
	return 0;
}

/* Replay the journal from LMDB's lsn on (step 2). */
static int replay(evs_store *s)
{
	evs__core *c = s->core;
	evs__buf buf = {0};
	evs__jrec r;
	MDB_txn *txn;
	uint64_t lsn, unj, last, n = 0;
	int rc;

	for (;;) {
		if ((rc = evs__write_begin(s, &txn)) != EVS_OK)
			break;
		if ((rc = evs__j_head_get(s, txn, &lsn, &unj)) != 0 ||
		    (rc = evs__j_last_position(s, txn, &last)) != 0) {
			evs__read_end(s, txn);
			rc = evs__fail_mdb(s, rc, "could not read the journal head");
			break;
		}
		int got = evs__j_read_rec(c->jfd, c->jring, c->juuid, lsn, &buf, &r);
		if (got <= 0 || r.first != last + 1) {
			evs__read_end(s, txn);
			rc = got < 0 ? evs__fail(s, EVS_IO, "could not read the journal of \"%s\"",
						 s->path)
				     : EVS_OK;
			break;
		}
		if ((rc = replay_rec(s, txn, &r, &last)) == 0 &&
		    (rc = evs__j_head_put(s, txn, r.next, unj)) == 0)
			rc = evs__txn_commit_raw(s, txn);
		else
			evs__read_end(s, txn);
		if (rc == MDB_MAP_FULL) {
			if ((rc = evs__grow(s, false)) != EVS_OK)
				break;
			continue;
		}
		if (rc) {
			rc = evs__fail_mdb(s, rc, "could not replay the journal");
			break;
		}
		n++;
	}
	if (n && rc == EVS_OK)
		evs__log(s, EVS_LOG_INFO, "replayed %llu journal records into \"%s\"",
			 (unsigned long long)n, s->path);
	evs__buf_free(&buf);
	return rc;
}

/* A store without the journal's head (new, or format 1): start it at the
 * checkpoint's lsn and mark format 2 (at least; index.c goes on to 3). */
static int upgrade(evs_store *s)
{
	MDB_txn *txn;
	uint64_t lsn, unj;
	uint8_t fmt[4];
	MDB_val k = {strlen(EVS__META_FORMAT), EVS__META_FORMAT}, v = {4, fmt};
	int rc;

	if ((rc = evs__write_begin(s, &txn)) != EVS_OK)
		return rc;
	rc = evs__j_head_get(s, txn, &lsn, &unj);
	MDB_val cur;
	bool old = mdb_get(txn, s->meta, &k, &cur) != 0 || cur.mv_size != 4 ||
		   evs__get_u32(cur.mv_data) < EVS_FORMAT_JOURNAL;
	if (rc == MDB_NOTFOUND || (rc == 0 && old)) {
		evs__put_u32(fmt, EVS_FORMAT_JOURNAL);
		rc = evs__j_head_put(s, txn, rc == 0 ? lsn : s->core->ck_lsn, 0);
		if (!rc && old)
			rc = mdb_put(txn, s->meta, &k, &v, 0);
		if (!rc)
			return (rc = evs__txn_commit_raw(s, txn))
				       ? evs__fail_mdb(s, rc, "could not start the journal")
				       : EVS_OK;
	}
	evs__read_end(s, txn);
	return rc ? evs__fail_mdb(s, rc, "could not read the journal head") : EVS_OK;
}

int evs__j_start(evs_store *s)
{
	evs__core *c = s->core;
	int rc;

	if (c->jfd < 0 || c->read_only)
		goto shared;
	if ((rc = upgrade(s)) != EVS_OK)
		return rc;
	if (c->jrecover && (rc = replay(s)) != EVS_OK)
		return rc;
	if ((rc = evs__j_checkpoint(s)) != EVS_OK)
		return rc;
shared:
	if (c->jfd >= 0 && c->jrecover) {
		flock(c->jfd, LOCK_SH);
		c->jrecover = false;
	}
	return EVS_OK;
}

void evs__j_close(evs__core *c)
{
	evs__j_ck_stop(c); /* before anything it uses goes */
	if (c->jdfd >= 0)
		close(c->jdfd);
	c->jdfd = -1;
	free(c->jdbuf);
	free(c->jtail);
	c->jdbuf = c->jtail = NULL;
	c->jdcap = 0;
	if (c->pin)
		mdb_txn_abort(c->pin);
	c->pin = NULL;
	if (c->jfd >= 0)
		close(c->jfd);
	c->jfd = -1;
}
