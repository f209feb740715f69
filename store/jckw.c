/*
 * jckw.c - the checkpoint writes of evs_append_ex(): applied in the group
 * commit's transaction, and carried in the group's journal record so that
 * they survive a crash exactly like its events (replayed by jopen.c).
 *
 * In the record's body they follow the n event records (journal.c draws
 * the whole record):
 *
 *   u8  kind      1 = set, 2 = remove (0 = the zero padding: the end)
 *   u8  len       bytes of the name, 1..255
 *   len name      the checkpoint's name (its key in "checkpoints")
 *   u64 position  big-endian, kind 1 only
 *
 * in the order of the group's requests, each request's in the order its
 * caller gave. A reader that knows only events stops after the n events
 * and never sees them.
 */
#include <errno.h>
#include <string.h>

#include "append_internal.h"
#include "journal.h"

enum { CKW_END = 0, CKW_SET = 1, CKW_REMOVE = 2 };

/* Through the core's handle of "checkpoints": replay runs on a handle
 * that has only the sub-databases of the event log. */
static int put(evs_store *s, MDB_txn *txn, const void *name, size_t len, bool remove,
	       uint64_t position)
{
	MDB_dbi dbi = s->core->checkpoints;
	uint8_t b[8];
	MDB_val k = {len, (void *)name}, v = {8, b};
	int rc;

	if (remove) {
		rc = mdb_del(txn, dbi, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	evs__put_u64(b, position);
	return mdb_put(txn, dbi, &k, &v, 0);
}

int evs__ckw_apply(evs_store *s, MDB_txn *txn, const evs__req *q)
{
	int rc;

	for (size_t i = 0; i < q->nck; i++) {
		const evs__ckw *w = &q->ck[i];
		if ((rc = put(s, txn, q->ck_names.ptr + w->off, w->len, w->remove, w->position)) !=
		    0)
			return rc;
	}
	return 0;
}

int evs__jckw_encode(evs__buf *buf, const evs__req *group)
{
	for (const evs__req *q = group; q; q = q->next) {
		if (q->rc != EVS_OK || q->nck == 0 || (q->nparts && q->parts[0].res.idempotent))
			continue;
		for (size_t i = 0; i < q->nck; i++) {
			const evs__ckw *w = &q->ck[i];
			uint8_t h[2] = {w->remove ? CKW_REMOVE : CKW_SET, (uint8_t)w->len}, pb[8];
			evs__buf_putn(buf, h, 2);
			evs__buf_putn(buf, q->ck_names.ptr + w->off, w->len);
			if (!w->remove) {
				evs__put_u64(pb, w->position);
				evs__buf_putn(buf, pb, 8);
			}
		}
	}
	return buf->oom ? ENOMEM : 0;
}

int evs__jckw_apply(evs_store *s, MDB_txn *txn, const uint8_t *p, const uint8_t *end)
{
	int rc;

	while (p < end && *p != CKW_END) {
		uint8_t kind = p[0];
		if (end - p < 2 || (kind != CKW_SET && kind != CKW_REMOVE) || p[1] == 0)
			return MDB_CORRUPTED;
		size_t len = p[1], need = 2 + len + (kind == CKW_SET ? 8 : 0);
		if ((size_t)(end - p) < need || s->core->checkpoints == 0)
			return MDB_CORRUPTED;
		uint64_t position = kind == CKW_SET ? evs__get_u64(p + 2 + len) : 0;
		if ((rc = put(s, txn, p + 2, len, kind == CKW_REMOVE, position)) != 0)
			return rc;
		p += need;
	}
	return 0;
}
