/*
 * jcommit.c - durable commits through the journal, and checkpoints.
 *
 * LMDB is opened MDB_NOSYNC: a commit writes its pages into the page cache
 * and nothing is synced on the way to the caller except the journal. A
 * group commit, under LMDB's writer lock and after every check and every
 * position is decided (group.c), appends ONE record holding the group's
 * event records to the journal (journal.c) at the lsn that the store's
 * "journal" meta key holds, fdatasyncs it (EVS_SYNC_FULL), stores the next
 * lsn in the same LMDB transaction and commits it. Readers see the events
 * only after the journal sync: nothing a reader saw can be lost.
 *
 * A record whose LMDB commit never happened (the process died between the
 * sync and the commit, or the commit failed) is in doubt, as a PostgreSQL
 * commit whose acknowledgement was lost: its caller was never answered.
 * The next writer writes over it at the same lsn (LMDB's head did not
 * move); the first opener after a crash (jopen.c) replays it. Either is a
 * correct outcome of an unacknowledged append; positions stay gap-free.
 *
 * Checkpoints. LMDB without sync is only safe with help: a later commit may
 * recycle pages of the last snapshot that reached the disk, and its meta
 * page may reach the disk before its data. So, off the acknowledgement
 * path (found due by an appender after its own answer, when the journal
 * has grown by a quarter of the ring or EVS_CHECKPOINT_MS, default a
 * second, passed, and run by the environment's checkpointer thread,
 * jckthr.c, so that no caller waits for it): under the
 * writer lock, without a sync, note the newest transaction K, the lsn LMDB
 * holds at K, its last position and copies of both LMDB meta pages, and
 * begin a read transaction pinned at K (LMDB never reuses a page of
 * snapshot K while a reader at or before K exists); then, without the
 * lock, mdb_env_sync: every page of K was written before it began. Then,
 * under the lock again (so the newest checkpoint never goes back), the
 * checkpoint record {K, position, lsn, meta pages, this boot's id} into
 * the journal slot not holding the newest checkpoint, fdatasync, and the
 * new pin replaces this process's previous one. (An inline checkpoint,
 * below, syncs LMDB under the lock it already holds.) Every
 * process makes its own checkpoint (and pin) when it opens the store, and
 * pins only its own checkpoints, so while any process can commit the
 * oldest pin is at or before the newest checkpoint, whose pages therefore
 * stay intact on disk until a newer one is synced.
 *
 * Writes that are not group commits (schemas, snapshots, restore, named
 * checkpoints: txn.c's evs__write_commit, the one door for them) are not
 * journaled: they mark their txnid in the "journal" key and are followed
 * by a checkpoint before their caller returns. A group commit that finds a
 * mark newer than the newest checkpoint first checkpoints inline (the
 * marked transaction is committed; the sync makes it durable), so every
 * journal record follows a checkpoint that includes every unjournaled
 * write before it, and replaying records on top of a checkpoint is exact.
 * A group too large for the ring (over a quarter) takes the same path.
 * So do group commits under EVS_SYNC_NONE, without the checkpoint before
 * the answer: they reach the disk with the next periodic checkpoint (an OS
 * crash loses at most that much; the store stays intact, since recovery
 * goes back to the last checkpoint). EVS_SYNC_META journals without the
 * fdatasync. One process of EVS_SYNC_NONE among full ones makes their
 * next commits checkpoint inline: do not mix them on a busy store.
 *
 * Ring space: the records from the newest durable checkpoint's lsn on are
 * live. A record goes at the head if it fits before the end of the lap
 * (else a skip record goes at the head and the record at the next lap's
 * start), and only if the live span stays within the ring; otherwise the
 * writer checkpoints inline first (rare: a checkpoint every quarter ring).
 * A checkpoint written by another process counts only once it is known
 * to be on disk (it was read before one of our own journal syncs).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void evs__j_boot_id(char out[EVS__J_BOOT])
{
	const char *env = getenv("EVS_BOOT_ID");
	FILE *f;

	memset(out, 0, EVS__J_BOOT);
	if (env && *env) {
		snprintf(out, EVS__J_BOOT, "%s", env);
		return;
	}
	if ((f = fopen("/proc/sys/kernel/random/boot_id", "r")) != NULL) {
		if (fgets(out, EVS__J_BOOT, f) == NULL)
			out[0] = 0;
		fclose(f);
	}
	out[strcspn(out, "\n")] = 0;
}

int evs__j_head_get(evs_store *s, MDB_txn *txn, uint64_t *lsn, uint64_t *unj)
{
	MDB_val k = {strlen(EVS__META_JOURNAL), EVS__META_JOURNAL}, v;
	int rc = mdb_get(txn, s->meta, &k, &v);

	*lsn = *unj = 0;
	if (rc)
		return rc;
	if (v.mv_size != 16)
		return MDB_CORRUPTED;
	*lsn = evs__get_u64(v.mv_data);
	*unj = evs__get_u64((const uint8_t *)v.mv_data + 8);
	return 0;
}

int evs__j_head_put(evs_store *s, MDB_txn *txn, uint64_t lsn, uint64_t unj)
{
	uint8_t b[16];
	MDB_val k = {strlen(EVS__META_JOURNAL), EVS__META_JOURNAL}, v = {16, b};

	evs__put_u64(b, lsn);
	evs__put_u64(b + 8, unj);
	return mdb_put(txn, s->meta, &k, &v, 0);
}

int evs__j_last_position(evs_store *s, MDB_txn *txn, uint64_t *pos)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*pos = 0;
	if ((rc = mdb_cursor_open(txn, s->events, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 8)
		*pos = evs__get_u64(k.mv_data);
	else if (rc == 0)
		rc = MDB_CORRUPTED;
	else if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
	return rc;
}

/*
 * The checkpoint proper, under the writer lock held by wtxn (whose
 * snapshot is K = its id - 1; lsn and position are K's). 0 or an errno /
 * LMDB code.
 */
static int ck_locked(evs_store *s, MDB_txn *wtxn, uint64_t lsn, uint64_t position)
{
	evs__core *c = s->core;
	evs__jck cks, *ck = &cks;
	MDB_txn *pin = NULL, *old;
	uint64_t seq = 0, unused;
	int fd, rc;

	if ((rc = mdb_env_sync(c->env, 1)) != 0)
		return rc;
	memset(ck, 0, sizeof *ck);
	if (evs__j_peek_ck(c->jfd, &seq, &unused) != 0)
		seq = 0;
	memcpy(ck->uuid, c->juuid, 16);
	ck->ring = c->jring;
	ck->psize = c->jpsize;
	ck->seq = seq + 1;
	ck->txnid = (uint64_t)mdb_txn_id(wtxn) - 1;
	ck->position = position;
	ck->lsn = lsn;
	evs__j_boot_id(ck->boot);
	if ((rc = mdb_env_get_fd(c->env, &fd)) != 0 ||
	    (rc = evs__j_pread(fd, ck->meta[0], EVS__J_META, 0)) != 0 ||
	    (rc = evs__j_pread(fd, ck->meta[1], EVS__J_META, c->jpsize)) != 0)
		goto out;
	if ((rc = evs__j_write_ck(c->jfd, ck)) != 0)
		goto out;
	/* pinned at K: the write transaction is ours, so the newest
	 * committed snapshot is K */
	if ((rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &pin)) != 0)
		goto out;
	pthread_mutex_lock(&c->jmu);
	old = c->pin;
	c->pin = pin;
	if (lsn >= c->ck_lsn) {
		c->ck_lsn = lsn;
		c->ck_txnid = ck->txnid;
	}
	c->ck_ms = mono_ms();
	c->unj_dirty = false;
	pthread_mutex_unlock(&c->jmu);
	if (old)
		mdb_txn_abort(old);
out:
	return rc;
}

int evs__j_checkpoint(evs_store *s)
{
	evs__core *c = s->core;
	evs__jck ck;
	MDB_txn *txn, *pin = NULL, *old;
	uint64_t unj, seq = 0, ntx = 0, nlsn;
	int fd, rc;

	if (c->jfd < 0)
		return 0;
	memset(&ck, 0, sizeof ck);
	/* 1. under the writer lock, without a sync: which transaction K is
	 * the newest, its lsn, position and meta pages, and a pin on it */
	if ((rc = evs__write_begin(s, &txn)) != EVS_OK)
		return rc;
	ck.txnid = (uint64_t)mdb_txn_id(txn) - 1;
	if ((rc = evs__j_head_get(s, txn, &ck.lsn, &unj)) == 0 &&
	    (rc = evs__j_last_position(s, txn, &ck.position)) == 0 &&
	    (rc = mdb_env_get_fd(c->env, &fd)) == 0 &&
	    (rc = evs__j_pread(fd, ck.meta[0], EVS__J_META, 0)) == 0 &&
	    (rc = evs__j_pread(fd, ck.meta[1], EVS__J_META, c->jpsize)) == 0)
		rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &pin);
	evs__read_end(s, txn);
	if (rc)
		goto fail;
	/* 2. the sync, without the lock: every page of K was written before
	 * it began, and the pin keeps later commits off them */
	if ((rc = mdb_env_sync(c->env, 1)) != 0)
		goto fail;
	/* 3. the record, under the lock again, so that the newest checkpoint
	 * never goes back to an older transaction */
	if ((rc = evs__write_begin(s, &txn)) != EVS_OK) {
		mdb_txn_abort(pin);
		return rc;
	}
	if (evs__j_peek_ck3(c->jfd, &seq, &nlsn, &ntx) != 0)
		seq = ntx = 0;
	/* after a restore the newest checkpoint is K itself, but under the
	 * old boot id: rewrite it under this one, or every later opener
	 * would restore K again and lose what was committed since without
	 * the journal (EVS_SYNC_NONE, evs__write_commit) */
	if (ntx < ck.txnid || seq == 0 || c->jrestored) {
		memcpy(ck.uuid, c->juuid, 16);
		ck.ring = c->jring;
		ck.psize = c->jpsize;
		ck.seq = seq + 1;
		evs__j_boot_id(ck.boot);
		rc = evs__j_write_ck(c->jfd, &ck);
		if (rc == 0)
			c->jrestored = false;
	}
	evs__read_end(s, txn);
	if (rc)
		goto fail;
	pthread_mutex_lock(&c->jmu);
	old = c->pin;
	c->pin = pin; /* at or before the newest checkpoint either way */
	if (ck.lsn >= c->ck_lsn) {
		c->ck_lsn = ck.lsn;
		c->ck_txnid = ck.txnid;
	}
	c->ck_ms = mono_ms();
	c->unj_dirty = false;
	pthread_mutex_unlock(&c->jmu);
	if (old)
		mdb_txn_abort(old);
	return EVS_OK;
fail:
	if (pin)
		mdb_txn_abort(pin);
	return evs__fail_mdb(s, rc, "could not checkpoint the journal");
}

/* The test hook: EVS_TEST_KILL_AFTER_JOURNAL=n kills the process after its
 * n-th journal sync, before the LMDB commit (docs/FORMAT.md). */
static void kill_hook(evs__core *c)
{
	const char *e = getenv("EVS_TEST_KILL_AFTER_JOURNAL");
	long at = e ? atol(e) : 0;

	if (at > 0 && (long)__atomic_add_fetch(&c->jwrites, 1, __ATOMIC_RELAXED) == at)
		raise(SIGKILL);
}

/* Build the group's record (events first..last as written in txn, then
 * the checkpoint writes ckw: jckw.c) into buf at EVS__J_HEAD; its body
 * length in *body. */
static int build(evs_store *s, MDB_txn *txn, uint64_t first, uint64_t last, const void *ckw,
		 size_t ckw_len, evs__buf *buf, size_t *body)
{
	uint8_t pk[8];
	MDB_val k = {8, pk}, v;
	MDB_cursor *cur;
	uint64_t p = first;
	uint64_t guess = first <= last ? last - first + 1 : 0;
	int rc = 0;

	/* one cursor walk over the group's positions (consecutive keys: the
	 * next is on the same leaf or the next one), instead of two lookups
	 * from the root per event */
	buf->len = 0;
	if (guess > 4096)
		guess = 4096;
	if (evs__buf_reserve(buf, EVS__J_HEAD + ckw_len + 16 + (size_t)guess * 320) != 0)
		return ENOMEM;
	buf->len = EVS__J_HEAD;
	if (first <= last) {
		if ((rc = mdb_cursor_open(txn, s->events, &cur)) != 0)
			return rc;
		evs__put_u64(pk, first);
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			if (k.mv_size != 8 || evs__get_u64(k.mv_data) != p) {
				rc = MDB_CORRUPTED;
				break;
			}
			if (evs__buf_reserve(buf, 4 + v.mv_size + ckw_len + 16) != 0) {
				rc = ENOMEM;
				break;
			}
			evs__put_u32((uint8_t *)buf->ptr + buf->len, (uint32_t)v.mv_size);
			memcpy(buf->ptr + buf->len + 4, v.mv_data, v.mv_size);
			buf->len += 4 + v.mv_size;
			if (p++ == last)
				break;
		}
		mdb_cursor_close(cur);
		if (rc)
			return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
	}
	if (ckw_len)
		memcpy(buf->ptr + buf->len, ckw, ckw_len);
	buf->len += ckw_len;
	*body = buf->len - EVS__J_HEAD;
	return 0;
}

int evs__j_commit(evs_store *s, MDB_txn *txn, uint64_t first, uint64_t last, const void *ckw,
		  size_t ckw_len, bool *ck_after)
{
	evs__core *c = s->core;
	uint64_t lsn, unj, at, end, ck_lsn, ck_txnid, fseq, flsn;
	size_t body, len;
	bool skip, fresh = false;
	evs__buf buf = {0};
	int rc;

	*ck_after = false;
	if ((rc = evs__j_head_get(s, txn, &lsn, &unj)) != 0)
		goto abort;
	if (c->sync == EVS_SYNC_NONE) {
		/* no promise past the process: not journaled, like the writes
		 * of evs__write_commit, but on disk only by the periodic
		 * checkpoint */
		if ((rc = evs__j_head_put(s, txn, lsn, (uint64_t)mdb_txn_id(txn))) != 0)
			goto abort;
		pthread_mutex_lock(&c->jmu);
		c->unj_dirty = true;
		pthread_mutex_unlock(&c->jmu);
		return evs__txn_commit_raw(s, txn);
	}
	pthread_mutex_lock(&c->jmu);
	ck_lsn = c->ck_lsn;
	ck_txnid = c->ck_txnid;
	pthread_mutex_unlock(&c->jmu);
	/* an unjournaled write since the newest checkpoint we know of: is
	 * there a newer one? else make it (see above) */
	if (unj > ck_txnid) {
		if ((rc = ck_locked(s, txn, lsn, first - 1)) != 0)
			goto abort;
		ck_lsn = lsn;
	}
	if ((rc = build(s, txn, first, last, ckw, ckw_len, &buf, &body)) != 0)
		goto abort;
	len = evs__j_rec_size(body);
	if (len + EVS__J_HEAD > c->jring / 4) {
		/* too large for the ring: LMDB's own sync, by a checkpoint */
		if ((rc = evs__j_head_put(s, txn, lsn, (uint64_t)mdb_txn_id(txn))) != 0)
			goto abort;
		evs__buf_free(&buf);
		*ck_after = true;
		return evs__txn_commit_raw(s, txn);
	}
	skip = lsn % c->jring + len + EVS__J_HEAD > c->jring;
	at = skip ? lsn - lsn % c->jring + c->jring : lsn;
	end = at + len;
	if (end - ck_lsn > c->jring) {
		if (evs__j_peek_ck(c->jfd, &fseq, &flsn) == 0 && flsn <= lsn &&
		    end - flsn <= c->jring) {
			fresh = true;
			ck_lsn = flsn;
		} else {
			if ((rc = ck_locked(s, txn, lsn, first - 1)) != 0)
				goto abort;
			ck_lsn = lsn;
		}
	}
	if ((rc = evs__j_head_put(s, txn, end, unj)) != 0)
		goto abort;
	evs__j_rec_seal((uint8_t *)buf.ptr, len, body, c->juuid, at, first,
			(uint32_t)(last - first + 1));
	/* a checkpoint of another process frees the space we write into:
	 * it must be on disk before our record can be */
	if (fresh && fdatasync(c->jfd) != 0) {
		rc = errno;
		goto abort;
	}
	if (skip) {
		uint8_t sk[EVS__J_HEAD];
		evs__j_skip_seal(sk, c->juuid, lsn);
		if ((rc = evs__j_pwrite(c->jfd, sk, sizeof sk, evs__j_off(c->jring, lsn))) != 0)
			goto abort;
		/* one sync covers both: until then neither was acknowledged */
	}
	if (!skip && c->jdfd >= 0) {
		/* durable when it returns (journal.c) */
		rc = evs__j_write_direct(c, (const uint8_t *)buf.ptr, len, at);
		if (rc == EINVAL) { /* no O_DIRECT here after all */
			close(c->jdfd);
			c->jdfd = -1;
		} else if (rc) {
			goto abort;
		} else {
			goto synced;
		}
	}
	c->jtail_lsn = UINT64_MAX; /* written around jdbuf */
	if ((rc = evs__j_pwrite(c->jfd, buf.ptr, len, evs__j_off(c->jring, at))) != 0)
		goto abort;
	if (c->sync == EVS_SYNC_FULL && fdatasync(c->jfd) != 0) {
		rc = errno;
		goto abort;
	}
synced:
	evs__buf_free(&buf);
	kill_hook(c);
	pthread_mutex_lock(&c->jmu);
	if (ck_lsn > c->ck_lsn)
		c->ck_lsn = ck_lsn;
	c->head_lsn = end;
	pthread_mutex_unlock(&c->jmu);
	return evs__txn_commit_raw(s, txn);

abort:
	evs__buf_free(&buf);
	evs__read_end(s, txn);
	return rc;
}

/* ---- the door for every other write (internal.h, txn.c's section) ---- */

int evs__write_commit(evs_store *s, MDB_txn *txn)
{
	uint64_t lsn, unj;
	int rc;

	if (s->core->jfd < 0)
		return evs__txn_commit_raw(s, txn);
	/* not journaled: marked, then on disk by a checkpoint (jcommit.c) */
	rc = evs__j_head_get(s, txn, &lsn, &unj);
	if (rc == 0)
		rc = evs__j_head_put(s, txn, lsn, (uint64_t)mdb_txn_id(txn));
	if (rc) {
		evs__read_end(s, txn);
		return rc;
	}
	if ((rc = evs__txn_commit_raw(s, txn)) != 0)
		return rc;
	rc = evs__j_checkpoint(s);
	return rc == EVS_OK ? 0 : rc == EVS_NOMEM ? ENOMEM : EIO;
}

int evs__write_txn(evs_store *s, int (*fn)(evs_store *s, MDB_txn *txn, void *arg, bool *commit),
		   void *arg, const char *what)
{
	MDB_txn *txn;
	bool commit;
	int rc;

	for (;;) {
		if ((rc = evs__write_begin(s, &txn)) != EVS_OK)
			return rc;
		commit = false;
		rc = fn(s, txn, arg, &commit);
		if (rc == 0 && commit)
			rc = evs__write_commit(s, txn);
		else
			evs__read_end(s, txn);
		if (rc != MDB_MAP_FULL)
			return rc ? evs__fail_mdb(s, rc, what) : EVS_OK;
		if ((rc = evs__grow(s, false)) != EVS_OK)
			return rc;
	}
}
