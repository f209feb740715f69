/*
 * journal.c - the journal file: layout, checksums, reading and writing.
 *
 * <store>/journal (format 1 of the journal, store format 2). All integers
 * big-endian; crc = CRC-32C (Castagnoli), initial value 0, as iSCSI/ext4.
 *
 *   offset 0      checkpoint slot 0 (4096 bytes)
 *   offset 4096   checkpoint slot 1
 *   offset 8192   the ring: `ring` bytes of records
 *
 * Checkpoint slot (the one with the higher seq whose two checksums hold is
 * the current checkpoint; a checkpoint seq goes into slot seq % 2):
 *   0    8  magic "EVSJCKPT"
 *   8    4  journal format, 1
 *   12   4  LMDB page size (where meta page 1 starts in data.mdb)
 *   16  16  journal uuid (random at creation; every record repeats it)
 *   32   8  ring bytes
 *   40   8  seq: checkpoint number
 *   48   8  txnid: the LMDB transaction that was on disk
 *   56   8  position: the store's last position in that transaction
 *   64   8  lsn: where the first record committed after it starts
 *   72  40  boot id of the system that wrote it (ASCII, NUL padded)
 *   112  4  crc of bytes 0..111
 *   128 1024  bytes 0..1023 of data.mdb's page 0 (an LMDB meta page)
 *   1152 1024 bytes 0..1023 of data.mdb's page 1
 *   4092 4  crc of bytes 0..4091
 *
 * A record lives at lsn (a byte count that only grows: 64 bits never
 * wrap); its physical offset is 8192 + lsn % ring, and it never crosses
 * the end of the ring:
 *   0    4  magic "EVSR" (a commit) or "EVSS" (skip: the chain goes on at
 *           the start of the next lap; a skip record is these 48 bytes)
 *   4    4  length L of the whole record, a multiple of 8
 *   8    8  lsn (its own: a stale record of an earlier lap never matches)
 *   16  16  journal uuid
 *   32   8  position of the first event
 *   40   4  n: events
 *   44   4  crc of bytes 0..43
 *   48   .  n times: u32 length, then the event record exactly as stored
 *           in "events" (docs/FORMAT.md), positions first, first+1, ...
 *           (n may be 0: a commit of checkpoint writes only)
 *   .    .  the commit's checkpoint writes, if any (jckw.c), in order:
 *           u8 kind (1 set, 2 remove), u8 name length (1..255), the name,
 *           and for kind 1 the u64 position; a kind 0 (the padding) or the
 *           end of the body ends them
 *   .    .  zeros up to L - 4
 *   L-4  4  crc of bytes 0..L-5
 * The next record starts at lsn + L.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"

/* ---- CRC-32C: SSE4.2 when the CPU has it, else a table ---------------- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[0][i] = c;
	}
	for (int t = 1; t < 8; t++)
		for (int i = 0; i < 256; i++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = crc;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		n -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (n--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return c32;
}
#endif

uint32_t evs__crc32c(uint32_t crc, const void *data, size_t n)
{
	const uint8_t *p = data;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc_sse(crc, p, n);
#endif
	while (n >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				     (uint32_t)p[3] << 24);
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
		      crc_table[0][p[7]];
		p += 8;
		n -= 8;
	}
	while (n--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

/* ---- plain I/O ---------------------------------------------------------- */

int evs__j_pwrite(int fd, const void *p, size_t n, uint64_t off)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t k = pwrite(fd, b, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? errno : EIO;
		b += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

int evs__j_pread(int fd, void *p, size_t n, uint64_t off)
{
	uint8_t *b = p;
	while (n > 0) {
		ssize_t k = pread(fd, b, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno;
		if (k == 0) { /* past the end: reads as zeros (no valid data) */
			memset(b, 0, n);
			return 0;
		}
		b += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/* ---- checkpoint slots ----------------------------------------------------- */

static void slot_encode(uint8_t *b, const evs__jck *ck)
{
	memset(b, 0, EVS__J_SLOT);
	memcpy(b, "EVSJCKPT", 8);
	evs__put_u32(b + 8, 1);
	evs__put_u32(b + 12, ck->psize);
	memcpy(b + 16, ck->uuid, 16);
	evs__put_u64(b + 32, ck->ring);
	evs__put_u64(b + 40, ck->seq);
	evs__put_u64(b + 48, ck->txnid);
	evs__put_u64(b + 56, ck->position);
	evs__put_u64(b + 64, ck->lsn);
	memcpy(b + 72, ck->boot, EVS__J_BOOT);
	evs__put_u32(b + 112, evs__crc32c(0, b, 112));
	memcpy(b + 128, ck->meta[0], EVS__J_META);
	memcpy(b + 128 + EVS__J_META, ck->meta[1], EVS__J_META);
	evs__put_u32(b + EVS__J_SLOT - 4, evs__crc32c(0, b, EVS__J_SLOT - 4));
}

static bool slot_head_ok(const uint8_t *b)
{
	return memcmp(b, "EVSJCKPT", 8) == 0 && evs__get_u32(b + 8) == 1 &&
	       evs__get_u32(b + 112) == evs__crc32c(0, b, 112);
}

static void slot_decode(const uint8_t *b, evs__jck *ck)
{
	ck->psize = evs__get_u32(b + 12);
	memcpy(ck->uuid, b + 16, 16);
	ck->ring = evs__get_u64(b + 32);
	ck->seq = evs__get_u64(b + 40);
	ck->txnid = evs__get_u64(b + 48);
	ck->position = evs__get_u64(b + 56);
	ck->lsn = evs__get_u64(b + 64);
	memcpy(ck->boot, b + 72, EVS__J_BOOT);
	ck->boot[EVS__J_BOOT - 1] = 0;
	memcpy(ck->meta[0], b + 128, EVS__J_META);
	memcpy(ck->meta[1], b + 128 + EVS__J_META, EVS__J_META);
}

int evs__j_read_ck(int fd, evs__jck *ck)
{
	uint8_t b[2 * EVS__J_SLOT];
	int best;

	if ((best = evs__j_pread(fd, b, sizeof b, 0)) != 0)
		return best;
	best = -1;
	for (int i = 0; i < 2; i++) {
		const uint8_t *s = b + i * EVS__J_SLOT;
		if (!slot_head_ok(s) ||
		    evs__get_u32(s + EVS__J_SLOT - 4) != evs__crc32c(0, s, EVS__J_SLOT - 4) ||
		    evs__get_u64(s + 32) == 0)
			continue;
		if (best < 0 || evs__get_u64(s + 40) > evs__get_u64(b + best * EVS__J_SLOT + 40))
			best = i;
	}
	if (best >= 0)
		slot_decode(b + best * EVS__J_SLOT, ck);
	return best >= 0 ? 0 : -1;
}

int evs__j_peek_ck(int fd, uint64_t *seq, uint64_t *lsn)
{
	uint64_t txnid;

	return evs__j_peek_ck3(fd, seq, lsn, &txnid);
}

int evs__j_peek_ck3(int fd, uint64_t *seq, uint64_t *lsn, uint64_t *txnid)
{
	uint8_t b[2][128];
	bool found = false;

	if (evs__j_pread(fd, b[0], 128, 0) != 0 || evs__j_pread(fd, b[1], 128, EVS__J_SLOT) != 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		if (!slot_head_ok(b[i]))
			continue;
		if (!found || evs__get_u64(b[i] + 40) > *seq) {
			*seq = evs__get_u64(b[i] + 40);
			*txnid = evs__get_u64(b[i] + 48);
			*lsn = evs__get_u64(b[i] + 64);
			found = true;
		}
	}
	return found ? 0 : -1;
}

int evs__j_write_ck(int fd, const evs__jck *ck)
{
	uint8_t b[EVS__J_SLOT]; /* no allocation: a checkpoint after a commit
				 * must not fail for memory */
	int rc;

	slot_encode(b, ck);
	rc = evs__j_pwrite(fd, b, EVS__J_SLOT, (ck->seq % 2) * EVS__J_SLOT);
	if (rc == 0 && fdatasync(fd) != 0)
		rc = errno;
	return rc;
}

int evs__j_format(int fd, uint64_t ring, const uint8_t uuid[16])
{
	evs__jck ck;
	uint8_t *zero;
	int rc = 0;

	memset(&ck, 0, sizeof ck);
	memcpy(ck.uuid, uuid, 16);
	ck.ring = ring;
	/*
	 * Zeros written, not a hole or fallocate()'s unwritten extents: a
	 * commit's sync then changes no file metadata (PostgreSQL zero-fills
	 * its WAL segments for the same reason).
	 */
	if ((zero = evs__calloc(1, (size_t)1 << 20)) == NULL)
		return ENOMEM;
	for (uint64_t off = EVS__J_LOG; off < EVS__J_LOG + ring && !rc;) {
		size_t n = EVS__J_LOG + ring - off < ((uint64_t)1 << 20)
				   ? (size_t)(EVS__J_LOG + ring - off)
				   : (size_t)1 << 20;
		rc = evs__j_pwrite(fd, zero, n, off);
		off += n;
	}
	free(zero);
	/* checkpoint 0 (txnid 0: nothing of LMDB to restore) in slot 0 */
	if (!rc)
		rc = evs__j_write_ck(fd, &ck);
	if (!rc && fsync(fd) != 0)
		rc = errno;
	return rc;
}

/* ---- records ---------------------------------------------------------------- */

static void rec_head(uint8_t *r, const char magic[4], uint32_t len, const uint8_t uuid[16],
		     uint64_t lsn, uint64_t first, uint32_t n)
{
	memcpy(r, magic, 4);
	evs__put_u32(r + 4, len);
	evs__put_u64(r + 8, lsn);
	memcpy(r + 16, uuid, 16);
	evs__put_u64(r + 32, first);
	evs__put_u32(r + 40, n);
	evs__put_u32(r + 44, evs__crc32c(0, r, 44));
}

void evs__j_rec_seal(uint8_t *rec, size_t len, size_t body_len, const uint8_t uuid[16],
		     uint64_t lsn, uint64_t first, uint32_t n)
{
	rec_head(rec, "EVSR", (uint32_t)len, uuid, lsn, first, n);
	memset(rec + EVS__J_HEAD + body_len, 0, len - 4 - EVS__J_HEAD - body_len);
	evs__put_u32(rec + len - 4, evs__crc32c(0, rec, len - 4));
}

void evs__j_skip_seal(uint8_t rec[EVS__J_HEAD], const uint8_t uuid[16], uint64_t lsn)
{
	rec_head(rec, "EVSS", EVS__J_HEAD, uuid, lsn, 0, 0);
}

int evs__j_read_rec(int fd, uint64_t ring, const uint8_t uuid[16], uint64_t lsn, evs__buf *buf,
		    evs__jrec *r)
{
	uint8_t h[EVS__J_HEAD];
	uint32_t len;

	for (int hop = 0; hop < 2; hop++) {
		if (ring - lsn % ring < EVS__J_HEAD)
			return 0;
		if (evs__j_pread(fd, h, EVS__J_HEAD, evs__j_off(ring, lsn)) != 0)
			return -1;
		if (evs__get_u32(h + 44) != evs__crc32c(0, h, 44) || evs__get_u64(h + 8) != lsn ||
		    memcmp(h + 16, uuid, 16) != 0)
			return 0;
		len = evs__get_u32(h + 4);
		if (memcmp(h, "EVSS", 4) == 0 && len == EVS__J_HEAD && hop == 0) {
			lsn += ring - lsn % ring; /* the next lap */
			continue;
		}
		if (memcmp(h, "EVSR", 4) != 0 || len < EVS__J_HEAD + 4 || len % 8 ||
		    len > ring - lsn % ring)
			return 0;
		buf->len = 0;
		if (evs__buf_reserve(buf, len) != 0)
			return -1;
		if (evs__j_pread(fd, buf->ptr, len, evs__j_off(ring, lsn)) != 0)
			return -1;
		const uint8_t *p = (const uint8_t *)buf->ptr;
		if (evs__get_u32(p + len - 4) != evs__crc32c(0, p, len - 4))
			return 0;
		r->lsn = lsn;
		r->next = lsn + len;
		r->first = evs__get_u64(p + 32);
		r->n = evs__get_u32(p + 40);
		r->body = p + EVS__J_HEAD;
		r->body_len = len - 4 - EVS__J_HEAD;
		return 1;
	}
	return 0;
}
