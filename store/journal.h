/*
 * journal.h - the write-ahead journal of a store (format at the top of
 * journal.c, protocol at the top of jcommit.c). Not public.
 */
#ifndef EVS_JOURNAL_H
#define EVS_JOURNAL_H

#include "internal.h"

#define EVS__J_SLOT  4096u /* one checkpoint slot; two at the start of the file */
#define EVS__J_LOG   8192u /* file offset of the ring */
#define EVS__J_META  1024u /* bytes kept of each LMDB meta page */
#define EVS__J_HEAD  48u   /* record header (also the whole skip record) */
#define EVS__J_RING  ((uint64_t)16 << 20)
#define EVS__J_BOOT  40u
#define EVS__J_CK_MS 1000 /* a checkpoint at least this often while writing */

/* A checkpoint: LMDB transaction txnid is on disk, and the journal's
 * records from lsn on hold everything committed after it. */
typedef struct evs__jck {
	uint8_t uuid[16]; /* the journal's */
	uint64_t ring;    /* bytes in the ring */
	uint32_t psize;   /* LMDB page size: where meta page 1 starts */
	uint64_t seq;     /* checkpoint number, +1 each */
	uint64_t txnid, position, lsn;
	char boot[EVS__J_BOOT];
	uint8_t meta[2][EVS__J_META];
} evs__jck;

/* A record read back from the ring. */
typedef struct evs__jrec {
	uint64_t lsn, next;  /* where it starts and where the next one does */
	uint64_t first;      /* position of its first event */
	uint32_t n;          /* events */
	const uint8_t *body; /* n times (u32 length, event record) */
	size_t body_len;
} evs__jrec;

uint32_t evs__crc32c(uint32_t crc, const void *p, size_t n);

/* Physical file offset of lsn. */
static inline uint64_t evs__j_off(uint64_t ring, uint64_t lsn)
{
	return EVS__J_LOG + lsn % ring;
}

/* Create the file's layout on fd (empty): two slots with checkpoint 0 and
 * a ring of `ring` bytes of zeros. */
int evs__j_format(int fd, uint64_t ring, const uint8_t uuid[16]);
/* The newest valid checkpoint (0), -1 when no slot is valid, or an errno
 * when it could not read. */
int evs__j_read_ck(int fd, evs__jck *ck);
/* Only the newest valid slot's seq and lsn (its header checksum). */
int evs__j_peek_ck(int fd, uint64_t *seq, uint64_t *lsn);
int evs__j_peek_ck3(int fd, uint64_t *seq, uint64_t *lsn, uint64_t *txnid);
/* Write ck into slot ck->seq % 2 and fdatasync. 0 or an errno. */
int evs__j_write_ck(int fd, const evs__jck *ck);
/* Size of a record whose body is body_len bytes. */
static inline size_t evs__j_rec_size(size_t body_len)
{
	return (EVS__J_HEAD + body_len + 4 + 7) & ~(size_t)7;
}
/* Fill the header, padding and checksum of a record of size len whose
 * body is already at rec + EVS__J_HEAD. */
void evs__j_rec_seal(uint8_t *rec, size_t len, size_t body_len, const uint8_t uuid[16],
		     uint64_t lsn, uint64_t first, uint32_t n);
/* A skip record at lsn (EVS__J_HEAD bytes): the chain goes on at the
 * start of the next lap. */
void evs__j_skip_seal(uint8_t rec[EVS__J_HEAD], const uint8_t uuid[16], uint64_t lsn);
/* Read the record at lsn (following a skip record to the next lap) into
 * buf. 1 with *r, 0 when there is no valid record at lsn (the end of the
 * chain), -1 on I/O error or out of memory. */
int evs__j_read_rec(int fd, uint64_t ring, const uint8_t uuid[16], uint64_t lsn, evs__buf *buf,
		    evs__jrec *r);
/* pwrite/pread the whole range: 0 or an errno. */
int evs__j_pwrite(int fd, const void *p, size_t n, uint64_t off);
int evs__j_pread(int fd, void *p, size_t n, uint64_t off);

/* ---- jckw.c: checkpoint writes in a record, after its events --------- */

/* Apply the entries in [p, end) (the body after the events; zero padding
 * ends them) in txn: 0, or MDB_CORRUPTED / an LMDB code. */
int evs__jckw_apply(evs_store *s, MDB_txn *txn, const uint8_t *p, const uint8_t *end);

/* ---- jcommit.c, jopen.c: the protocol ---------------------------------- */

/* This boot's id (EVS_BOOT_ID overrides /proc/sys/kernel/random/boot_id). */
void evs__j_boot_id(char out[EVS__J_BOOT]);

#endif /* EVS_JOURNAL_H */
