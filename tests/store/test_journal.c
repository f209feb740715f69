/*
 * test_journal.c - the journal's recovery paths (store/jcommit.c,
 * store/jopen.c), driven from outside through the documented format
 * (docs/FORMAT.md) and the internal variables EVS_BOOT_ID,
 * EVS_TEST_KILL_AFTER_JOURNAL, EVS_JOURNAL_RING and EVS_CHECKPOINT_MS.
 *
 *   in doubt      a process killed between its journal sync and its LMDB
 *                 commit: the first opener replays the record; a writer
 *                 already running writes over it instead. Either way the
 *                 positions stay gap-free and evs_verify agrees.
 *   restart       a system restart simulated on a copy of a live store:
 *                 the pages written after the last checkpoint are torn
 *                 (garbage) and the meta pages newer than the data, or
 *                 garbage themselves; a new boot id makes the first open
 *                 put back the checkpoint's meta pages and replay the
 *                 journal: the copy holds every event, byte for byte.
 *   ring          a 64 KiB ring with batches of every size (skip records,
 *                 inline checkpoints, groups too large for the ring), then
 *                 the restart again.
 *   verify        evs_verify finds a journal record that differs from the
 *                 store and one that is missing.
 *   sync none     EVS_SYNC_NONE commits lost by a restart before the next
 *                 checkpoint leave a whole store.
 *   checkpointer  with a checkpoint due after every append, the
 *                 checkpointer thread (store/jckthr.c) catches up with one
 *                 appender that waits for nothing, and closing the store
 *                 while it may be checkpointing leaves a whole store.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kit_store.h"
#include "tu_lmdb.h"

static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = ~0u;
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return ~c;
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	tu_check(fd >= 0 && fstat(fd, &st) == 0, "open %s: %s", path, strerror(errno));
	uint8_t *b = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(tu_read_full(fd, b, (size_t)st.st_size, 10000), 0);
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

static void spit(const char *path, const void *b, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	tu_check(fd >= 0, "create %s: %s", path, strerror(errno));
	ck_assert_int_eq(tu_write_full(fd, b, len), 0);
	close(fd);
}

static void file_in(char *out, size_t size, const char *dir, const char *name)
{
	int n = snprintf(out, size, "%s/%s", dir, name);
	tu_check(n > 0 && (size_t)n < size, "path too long");
}

/* Copy the store's files as this process sees them (the page cache):
 * what the disk would hold had every write reached it. */
static char *copy_store(const char *src, const char *tag)
{
	char *dst = kit_tmpdir(tag);
	const char *files[] = {"data.mdb", "journal"};
	for (int i = 0; i < 2; i++) {
		char a[4096], b[4096];
		size_t len;
		file_in(a, sizeof a, src, files[i]);
		file_in(b, sizeof b, dst, files[i]);
		void *buf = slurp(a, &len);
		spit(b, buf, len);
		free(buf);
	}
	return dst;
}

/* The newest valid checkpoint slot of the journal in dir (4096 bytes). */
static uint8_t *newest_slot(const char *dir)
{
	char path[4096];
	size_t len;
	file_in(path, sizeof path, dir, "journal");
	uint8_t *j = slurp(path, &len), *best = NULL;
	ck_assert_uint_ge(len, 8192);
	for (int i = 0; i < 2; i++) {
		uint8_t *s = j + i * 4096;
		if (memcmp(s, "EVSJCKPT", 8) || be32(s + 112) != crc32c(s, 112) ||
		    be32(s + 4092) != crc32c(s, 4092))
			continue;
		if (best == NULL || be64(s + 40) > be64(best + 40))
			best = s;
	}
	ck_assert_ptr_nonnull(best);
	uint8_t *out = malloc(4096);
	memcpy(out, best, 4096);
	free(j);
	return out;
}

/* LMDB's meta record (lmdb.h 0.9, 64-bit): after the 16-byte page header,
 * magic, version, address, mapsize, two 48-byte db records, last_pg at
 * 136 and txnid at 144 (native endian). */
static uint64_t meta_u64(const uint8_t *page, size_t off)
{
	uint64_t v;
	memcpy(&v, page + off, 8);
	return v;
}

/*
 * What a power loss may leave of unsynced LMDB writes: every page past
 * the checkpoint's last page torn (garbage); the meta pages either as the
 * page cache has them (newer than their data) or garbage.
 */
static size_t tear(const char *dir, bool garbage_meta)
{
	uint8_t *slot = newest_slot(dir);
	uint32_t psize = be32(slot + 12);
	const uint8_t *m0 = slot + 128, *m1 = slot + 128 + 1024;
	const uint8_t *k = meta_u64(m0, 144) > meta_u64(m1, 144) ? m0 : m1;
	uint64_t last_pg = meta_u64(k, 136);
	char path[4096];
	size_t len;

	file_in(path, sizeof path, dir, "data.mdb");
	uint8_t *d = slurp(path, &len);
	size_t torn = 0;
	for (uint64_t pg = last_pg + 1; (pg + 1) * psize <= len; pg++, torn++)
		memset(d + pg * psize, 0xa5, psize);
	if (garbage_meta) {
		memset(d + 16, 0x5a, 1024 - 16);
		memset(d + psize + 16, 0x5a, 1024 - 16);
	}
	spit(path, d, len);
	free(d);
	free(slot);
	return torn;
}

/* Both stores hold the same events, byte for byte. */
static void same_events(evs_store *a, evs_store *b)
{
	tu_ev *x, *y;
	size_t n = tu_read_all(a, &x), m = tu_read_all(b, &y);
	tu_check_u64_eq(m, n);
	for (size_t i = 0; i < n; i++) {
		const evs_event *e = &x[i].ev, *f = &y[i].ev;
		tu_check(e->position == f->position && e->version == f->version &&
				 e->recorded_at == f->recorded_at && !memcmp(e->id, f->id, 16) &&
				 e->data_len == f->data_len &&
				 !memcmp(e->data, f->data, e->data_len) &&
				 e->stream.len == f->stream.len &&
				 !memcmp(e->stream.ptr, f->stream.ptr, e->stream.len),
			 "event %zu differs after recovery", i + 1);
	}
	tu_evs_free(x, n);
	tu_evs_free(y, m);
}

/* Append random batches (1..maxn events of 0..maxdata bytes) to 5 streams. */
static void fill(evs_store *st, uint64_t *r, int batches, int maxn, int maxdata)
{
	tu_mp data[40];
	evs_event_in evs[40];
	ck_assert_int_le(maxn, 40);
	for (int i = 0; i < maxn; i++)
		tu_mp_init(&data[i]);
	for (int b = 0; b < batches; b++) {
		size_t n = kit_rand_range(r, 1, (uint64_t)maxn);
		char stream[16];
		snprintf(stream, sizeof stream, "s%d", (int)kit_rand_range(r, 0, 4));
		for (size_t i = 0; i < n; i++) {
			tu_mp_reset(&data[i]);
			tu_mp_blob_map(&data[i], kit_rand_range(r, 0, (uint64_t)maxdata),
				       kit_rand(r));
			tu_event(&evs[i], "J", &data[i], NULL);
		}
		tu_ok(st, evs_append(st, stream, EVS_ANY, evs, n, NULL));
	}
	for (int i = 0; i < maxn; i++)
		tu_mp_destroy(&data[i]);
}

/* A restart simulated on copies of the live store st: both tears. */
static void check_restart(evs_store *st, bool torn_pages)
{
	char *torn = copy_store(kit_dir, "torn");
	char *gone = copy_store(kit_dir, "gone");
	size_t pages = tear(torn, false);
	tear(gone, true);
	tu_check(pages > 0 || !torn_pages, "nothing written since the checkpoint: no page to tear");
	/* the control: on the same boot nothing is put back, and LMDB
	 * cannot open garbage meta pages */
	evs_store *bad = NULL;
	ck_assert_int_ne(evs_open(gone, NULL, &bad), EVS_OK);
	ck_assert_ptr_null(bad);
	setenv("EVS_BOOT_ID", "test-journal-after-restart", 1);

	evs_options o;
	evs_options_init(&o);
	o.read_only = 1;
	evs_store *ro = NULL;
	tu_assert_rc(NULL, evs_open(torn, &o, &ro), EVS_BUSY);
	ck_assert_ptr_null(ro);
	ck_assert_ptr_nonnull(strstr(evs_open_errmsg(), "recovery"));

	const char *dirs[] = {torn, gone};
	for (int i = 0; i < 2; i++) {
		evs_store *rec = tu_open(dirs[i], NULL);
		same_events(st, rec);
		tu_check_u64_eq(tu_verify(rec), 0);
		/* and it goes on: positions continue */
		evs_append_result res;
		evs_store_info h;
		tu_ok(rec, evs_head(rec, &h));
		tu_ok(rec, tu_append_simple(rec, "after", EVS_ANY, "T", 2, 0, 0, &res));
		tu_check_u64_eq(res.first_position, h.last_position + 1);
		evs_close(rec);
	}
	unsetenv("EVS_BOOT_ID");
	kit_rmrf(torn);
	kit_rmrf(gone);
	free(torn);
	free(gone);
}

START_TEST(test_restart_restores_meta)
{
	uint64_t r = kit_seed("test_restart_restores_meta");
	setenv("EVS_CHECKPOINT_MS", "3600000", 1);
	evs_store *st = tu_open(kit_dir, NULL);
	fill(st, &r, 20, 20, 300);
	/* a checkpoint in the middle (a reopen makes one), more after it */
	evs_close(st);
	st = tu_open(kit_dir, NULL);
	fill(st, &r, 40, 20, 300);
	check_restart(st, true);
	evs_close(st);
	unsetenv("EVS_CHECKPOINT_MS");
}
END_TEST

typedef struct filler {
	evs_store *st;
	uint64_t seed;
} filler;

static void *fill_thread(void *arg)
{
	filler *f = arg;
	fill(f->st, &f->seed, 300, 40, 900);
	return NULL;
}

START_TEST(test_ring_wraps)
{
	uint64_t r = kit_seed("test_ring_wraps");
	setenv("EVS_JOURNAL_RING", "65536", 1);
	evs_store *st = tu_open(kit_dir, NULL);
	filler f[2] = {{st, r}, {st, r ^ 0x5555}};
	pthread_t th;
	pthread_create(&th, NULL, fill_thread, &f[1]);
	fill_thread(&f[0]);
	pthread_join(th, NULL);
	tu_check_u64_eq(tu_verify(st), 0);
	fill(st, &r, 3, 2, 50); /* records after the last checkpoint, most likely */
	check_restart(st, false);
	evs_close(st);
	size_t n = 0;
	uint8_t *v = tu_mdb_get(kit_dir, "meta", "journal", 7, &n);
	ck_assert_uint_eq(n, 16);
	tu_check(be64(v) > 4 * 65536, "the ring did not wrap: lsn %llu",
		 (unsigned long long)be64(v));
	free(v);
	unsetenv("EVS_JOURNAL_RING");
}
END_TEST

/* A child that appends a 2-event batch with ids tu_id(77, 1..2) and is
 * killed after its journal sync, before the LMDB commit. */
static void append_killed(void)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setenv("EVS_TEST_KILL_AFTER_JOURNAL", "1", 1);
		evs_store *st = NULL;
		if (evs_open(kit_dir, NULL, &st) != EVS_OK)
			_exit(2);
		tu_append_simple(st, "doubt", EVS_ANY, "T", 2, 77, 1, NULL);
		_exit(3); /* the hook did not fire */
	}
	int status = kit_wait_child(pid, 60000, 0);
	tu_check(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		 "the child was not killed by the hook (status %d)", status);
}

START_TEST(test_in_doubt_replayed)
{
	evs_store *st = tu_open(kit_dir, NULL);
	tu_ok(st, tu_append_simple(st, "a", EVS_ANY, "T", 3, 1, 1, NULL));
	evs_close(st);
	append_killed();
	/* the first opener replays the record LMDB lacks */
	st = tu_open(kit_dir, NULL);
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	tu_check_u64_eq(h.last_position, 5);
	uint8_t id[16];
	uint64_t pos = 0;
	tu_id(id, 77, 2);
	tu_ok(st, evs_find_id(st, id, &pos));
	tu_check_u64_eq(pos, 5);
	tu_check_u64_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

START_TEST(test_in_doubt_overwritten)
{
	evs_store *st = tu_open(kit_dir, NULL);
	tu_ok(st, tu_append_simple(st, "a", EVS_ANY, "T", 3, 1, 1, NULL));
	append_killed(); /* while this process has the store open */
	evs_append_result res;
	tu_ok(st, tu_append_simple(st, "b", EVS_ANY, "T", 1, 2, 1, &res));
	tu_check_u64_eq(res.first_position, 4);
	uint8_t id[16];
	uint64_t pos = 0;
	tu_id(id, 77, 1);
	tu_assert_rc(st, evs_find_id(st, id, &pos), EVS_NOT_FOUND);
	tu_check_u64_eq(tu_verify(st), 0);
	evs_close(st);
	st = tu_open(kit_dir, NULL);
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	tu_check_u64_eq(h.last_position, 4);
	tu_check_u64_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

/* EVS_SYNC_NONE journals nothing: a restart before the next checkpoint
 * loses its commits, and leaves a store that is whole and goes on. */
START_TEST(test_sync_none_restart)
{
	setenv("EVS_CHECKPOINT_MS", "3600000", 1);
	evs_options o;
	evs_options_init(&o);
	o.create = 1;
	o.sync = EVS_SYNC_NONE;
	evs_store *st = tu_open(kit_dir, &o);
	tu_ok(st, tu_append_simple(st, "a", EVS_ANY, "T", 5, 1, 1, NULL));
	char *copy = copy_store(kit_dir, "none");
	tear(copy, false);
	setenv("EVS_BOOT_ID", "test-journal-none-restart", 1);
	evs_store *rec = tu_open(copy, NULL);
	evs_store_info h;
	tu_ok(rec, evs_head(rec, &h));
	tu_check_u64_eq(h.last_position, 0);
	tu_check_u64_eq(tu_verify(rec), 0);
	evs_append_result res;
	tu_ok(rec, tu_append_simple(rec, "b", EVS_ANY, "T", 2, 2, 1, &res));
	tu_check_u64_eq(res.first_position, 1);
	evs_close(rec);
	evs_close(st);
	unsetenv("EVS_BOOT_ID");
	unsetenv("EVS_CHECKPOINT_MS");
	kit_rmrf(copy);
	free(copy);
}
END_TEST

typedef struct count_ctx {
	unsigned n, journal;
} count_ctx;

static void count_problem(void *ctx, const char *msg)
{
	count_ctx *c = ctx;
	c->n++;
	c->journal += strncmp(msg, "journal:", 8) == 0;
}

START_TEST(test_verify_checks_journal)
{
	setenv("EVS_CHECKPOINT_MS", "3600000", 1);
	evs_store *st = tu_open(kit_dir, NULL);
	tu_ok(st, tu_append_simple(st, "a", EVS_ANY, "T", 4, 1, 1, NULL));
	tu_ok(st, tu_append_simple(st, "a", EVS_ANY, "T", 4, 1, 5, NULL));
	tu_check_u64_eq(tu_verify(st), 0);

	/* the first record after the checkpoint: change one byte of its last
	 * event and seal it again (a journal that disagrees with LMDB) */
	uint8_t *slot = newest_slot(kit_dir);
	uint64_t ring = be64(slot + 32), lsn = be64(slot + 64);
	free(slot);
	char path[4096];
	file_in(path, sizeof path, kit_dir, "journal");
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	uint8_t h[48];
	off_t off = (off_t)(8192 + lsn % ring);
	ck_assert_int_eq(pread(fd, h, 48, off), 48);
	ck_assert_mem_eq(h, "EVSR", 4);
	uint32_t len = be32(h + 4);
	uint8_t *rec = malloc(len);
	ck_assert_int_eq(pread(fd, rec, len, off), (ssize_t)len);
	uint8_t saved = rec[len - 12];
	rec[len - 12] ^= 0x01; /* inside the last event's data (4 bytes of padding at most + crc) */
	put32(rec + len - 4, crc32c(rec, len - 4));
	ck_assert_int_eq(pwrite(fd, rec, len, off), (ssize_t)len);
	count_ctx c = {0, 0};
	uint64_t problems = 0;
	tu_ok(st, evs_verify(st, count_problem, &c, &problems));
	tu_check(c.journal >= 1, "verify found %u problems, %u of the journal", c.n, c.journal);

	/* the same record torn: no valid record before the store's lsn */
	rec[len - 12] = saved;
	put32(rec + len - 4, crc32c(rec, len - 4) ^ 1);
	ck_assert_int_eq(pwrite(fd, rec, len, off), (ssize_t)len);
	c = (count_ctx){0, 0};
	tu_ok(st, evs_verify(st, count_problem, &c, &problems));
	tu_check(c.journal >= 1, "verify found %u problems, %u of the journal", c.n, c.journal);

	/* put back: no problem */
	put32(rec + len - 4, crc32c(rec, len - 4));
	ck_assert_int_eq(pwrite(fd, rec, len, off), (ssize_t)len);
	tu_check_u64_eq(tu_verify(st), 0);
	close(fd);
	free(rec);
	evs_close(st);
	unsetenv("EVS_CHECKPOINT_MS");
}
END_TEST

/* The newest checkpoint's position (slot offset 56: docs/FORMAT.md). */
static uint64_t checkpoint_position(void)
{
	uint8_t *slot = newest_slot(kit_dir);
	uint64_t pos = be64(slot + 56);
	free(slot);
	return pos;
}

START_TEST(test_checkpointer_thread)
{
	setenv("EVS_CHECKPOINT_MS", "0", 1); /* due after every append */
	uint64_t total = 0;
	for (int round = 0; round < 12; round++) {
		evs_store *st = tu_open(kit_dir, NULL);
		tu_ok(st, tu_append_simple(st, "ck", EVS_ANY, "T", 3, 0, 1, NULL));
		total += 3;
		if (round % 2 == 0) {
			/* no further append: only the thread can catch up */
			int64_t t0 = kit_mono_ns();
			uint64_t at = checkpoint_position();
			while (at != total && kit_mono_ns() - t0 < 120 * 1000000000LL) {
				struct timespec ts = {0, 5 * 1000000};
				nanosleep(&ts, NULL);
				at = checkpoint_position();
			}
			tu_check_u64_eq(at, total);
		}
		/* odd rounds close at once, a checkpoint maybe running */
		evs_store_info h;
		tu_ok(st, evs_head(st, &h));
		tu_check_u64_eq(h.last_position, total);
		tu_check_u64_eq(tu_verify(st), 0);
		evs_close(st);
	}
	unsetenv("EVS_CHECKPOINT_MS");
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_in_doubt_replayed,     test_in_doubt_overwritten,
		test_restart_restores_meta, test_ring_wraps,
		test_verify_checks_journal, test_sync_none_restart,
		test_checkpointer_thread,   NULL,
	};

	return kit_main("store-journal", 600, tests);
}
