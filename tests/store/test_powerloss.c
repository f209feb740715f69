/*
 * test_powerloss.c - a simulated power loss keeps only what was synced;
 * recovery on open must still hold every promise of an acknowledged append.
 *
 * Each round copies the store (B) twice: the real directory R and its
 * shadow S. An appender process (this program re-executed with
 * "--appender", under LD_PRELOAD of powerloss_shim.so, see that file) opens
 * R and appends batches of 1..20 events from 1..3 threads; the shim copies
 * into S only the pages of R's files that a sync covered. The appender
 * reports each acknowledged batch (evs_append returned EVS_OK) over a pipe
 * the parent keeps. At a random moment the parent SIGKILLs it; S is then
 * the store after a power loss. In the adversarial variant the parent also
 * copies into S a random subset of the pages written but never synced
 * (the shim's dirty bitmaps, content from R): a disk may persist any of
 * them, in any order. Then a fresh process ("--recover") opens S as a new
 * boot would (the variable EVS_BOOT_ID_ENV gets a fresh value per
 * simulated boot, inherited by the appenders of that boot and by the
 * recovery: a recovery that tells a power loss from a process crash by the
 * boot id reads it instead of /proc/sys/kernel/random/boot_id), and the
 * test checks:
 *   - every acknowledged batch (of every round so far) is present, whole,
 *     at the positions it was acknowledged with;
 *   - every batch present is whole (no partial batch) and contiguous,
 *     positions run 1..n without a gap, stream versions follow;
 *   - every batch seen after an earlier round is still at its positions
 *     (no position reused);
 *   - evs_verify finds no problem.
 * S becomes the next round's B, so recovery is also appended to again.
 *
 * The self-check runs the same with EVS_SYNC_NONE, which never syncs: the
 * harness must see acknowledged batches lost (or a torn store). Seeds are
 * printed (EVS_TEST_SEED replays); EVS_POWERLOSS_ROUNDS sets the rounds of
 * each durable case (CI default 12; e.g. 500 by hand).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kit_store.h"

/* The variable a reopening process reads for the boot id (wjournal's
 * recovery; unknown variables are harmless today). */
#define EVS_BOOT_ID_ENV  "EVS_BOOT_ID"
#define NSTREAMS         6
#define MAX_BATCH_EVENTS 20
#define PG               4096
#define EPOCH_BYTES      ((off_t)32 << 20)

enum { REC_READY = 1, REC_ACK = 2, REC_ERROR = 3 };

typedef struct rec {
	uint64_t batch, first, last;
	uint32_t size, kind;
} rec;

/* ---- the appender (a separate process under the shim) -------------------- */

typedef struct app_thread {
	evs_store *st;
	int out;
	uint64_t seed, base;
} app_thread;

static void send_rec(int fd, rec r)
{
	if (tu_write_full(fd, &r, sizeof r) != 0)
		_exit(4);
}

static void *appender_thread(void *arg)
{
	app_thread *t = arg;
	uint64_t r = t->seed;
	tu_mp data[MAX_BATCH_EVENTS], meta[MAX_BATCH_EVENTS];
	evs_event_in evs[MAX_BATCH_EVENTS];
	for (int i = 0; i < MAX_BATCH_EVENTS; i++) {
		tu_mp_init(&data[i]);
		tu_mp_init(&meta[i]);
	}
	for (uint64_t j = 0;; j++) {
		uint64_t batch = t->base + j;
		size_t k = kit_rand_range(&r, 1, MAX_BATCH_EVENTS);
		char stream[16];
		snprintf(stream, sizeof stream, "pl-%d", (int)kit_rand_range(&r, 0, NSTREAMS - 1));
		for (size_t i = 0; i < k; i++) {
			tu_mp_reset(&data[i]);
			tu_mp_reset(&meta[i]);
			/* mostly small, sometimes past a page (LMDB overflow pages) */
			size_t len = kit_rand_range(&r, 0, 7) == 0 ? kit_rand_range(&r, 0, 6000)
								   : kit_rand_range(&r, 0, 300);
			tu_mp_blob_map(&data[i], len, kit_rand(&r));
			tu_mp_map_ints(&meta[i], 3, "b", (long long)batch, "k", (long long)k, "i",
				       (long long)i);
			tu_event(&evs[i], "Power", &data[i], &meta[i]);
		}
		uint64_t expected = EVS_ANY;
		if (kit_rand_range(&r, 0, 2) == 0) {
			evs_stream_info h;
			int rc = evs_stream_head(t->st, stream, &h);
			if (rc != EVS_OK && rc != EVS_NOT_FOUND)
				_exit(2);
			expected = h.version;
		}
		evs_append_result res;
		int rc = evs_append(t->st, stream, expected, evs, k, &res);
		if (rc == EVS_OK) {
			send_rec(t->out, (rec){batch, res.first_position, res.last_position,
					       (uint32_t)k, REC_ACK});
		} else if (rc != EVS_WRONG_VERSION || expected == EVS_ANY) {
			fprintf(stderr, "powerloss appender: evs_append: %s: %s\n",
				evs_code_name(rc), evs_errmsg(t->st));
			send_rec(t->out, (rec){(uint64_t)rc, 0, 0, 0, REC_ERROR});
			_exit(2);
		}
	}
	return NULL;
}

/* argv: --appender DIR SEED ROUND THREADS SYNC FD */
static int appender_main(char **argv)
{
	const char *dir = argv[2];
	uint64_t seed = strtoull(argv[3], NULL, 10);
	int round = atoi(argv[4]), threads = atoi(argv[5]), sync = atoi(argv[6]);
	int out = atoi(argv[7]);
	evs_options o;
	evs_options_init(&o);
	o.sync = sync;
	o.create = 0;
	evs_store *st = NULL;
	int rc = evs_open(dir, &o, &st);
	if (rc != EVS_OK) {
		fprintf(stderr, "powerloss appender: %s\n", evs_open_errmsg());
		send_rec(out, (rec){(uint64_t)rc, 0, 0, 0, REC_ERROR});
		return 2;
	}
	send_rec(out, (rec){0, 0, 0, 0, REC_READY});
	app_thread ts[3];
	pthread_t th[3];
	for (int i = 0; i < threads && i < 3; i++) {
		ts[i].st = st;
		ts[i].out = out;
		ts[i].seed = seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(round * 4 + i + 1));
		ts[i].base = (uint64_t)(round + 1) * 10000000ull + (uint64_t)i * 1000000ull;
		if (i > 0)
			pthread_create(&th[i], NULL, appender_thread, &ts[i]);
	}
	appender_thread(&ts[0]); /* never returns */
	return 5;
}

/* --recover DIR: open the store once (its recovery runs on open), close. */
static int recover_main(const char *dir)
{
	evs_options o;
	evs_options_init(&o);
	o.create = 0;
	evs_store *st = NULL;
	if (evs_open(dir, &o, &st) != EVS_OK) {
		fprintf(stderr, "powerloss recovery: %s\n", evs_open_errmsg());
		return 1;
	}
	evs_close(st);
	return 0;
}

/* ---- files ---------------------------------------------------------------- */

static void copy_file(const char *from, const char *to)
{
	int a = open(from, O_RDONLY | O_CLOEXEC);
	tu_check(a >= 0, "open %s: %s", from, strerror(errno));
	int b = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	tu_check(b >= 0, "open %s: %s", to, strerror(errno));
	static char buf[1 << 16];
	ssize_t k;
	while ((k = read(a, buf, sizeof buf)) > 0)
		tu_check(tu_write_full(b, buf, (size_t)k) == 0, "write %s", to);
	tu_check(k == 0, "read %s: %s", from, strerror(errno));
	close(a);
	close(b);
}

/* Copy the regular files of directory from into a new directory to. */
static void copy_dir(const char *from, const char *to)
{
	tu_check(mkdir(to, 0755) == 0, "mkdir %s: %s", to, strerror(errno));
	DIR *d = opendir(from);
	tu_check(d != NULL, "opendir %s", from);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char a[2 * PATH_MAX], b[2 * PATH_MAX];
		struct stat st;
		snprintf(a, sizeof a, "%s/%s", from, e->d_name);
		snprintf(b, sizeof b, "%s/%s", to, e->d_name);
		if (e->d_name[0] == '.' || stat(a, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		copy_file(a, b);
	}
	closedir(d);
}

/* The adversarial part: apply a random subset of the still-dirty pages of
 * every tracked file (content from the real directory) to the shadow, in
 * random order. Returns the number of pages applied. */
static size_t apply_unsynced(const char *real, const char *shadow, uint64_t *r, size_t *dirty)
{
	char pl[PATH_MAX + 8];
	snprintf(pl, sizeof pl, "%s/.pl", shadow);
	DIR *d = opendir(pl);
	if (!d)
		return 0;
	size_t applied = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n < 7 || strcmp(e->d_name + n - 6, ".dirty") != 0)
			continue;
		char name[256], bm[2 * PATH_MAX], rp[2 * PATH_MAX], sp[2 * PATH_MAX];
		snprintf(name, sizeof name, "%.*s", (int)(n - 6), e->d_name);
		for (char *c = name; *c; c++)
			if (*c == '%')
				*c = '/';
		snprintf(bm, sizeof bm, "%s/%s", pl, e->d_name);
		snprintf(rp, sizeof rp, "%s/%s", real, name);
		snprintf(sp, sizeof sp, "%s/%s", shadow, name);
		int bfd = open(bm, O_RDONLY | O_CLOEXEC);
		struct stat bst, rst;
		tu_check(bfd >= 0 && fstat(bfd, &bst) == 0, "open %s", bm);
		uint64_t *bits = mmap(NULL, (size_t)bst.st_size, PROT_READ, MAP_SHARED, bfd, 0);
		tu_check(bits != MAP_FAILED, "mmap %s", bm);
		close(bfd);
		int rfd = open(rp, O_RDONLY | O_CLOEXEC);
		if (rfd < 0 || fstat(rfd, &rst) != 0) {
			munmap(bits, (size_t)bst.st_size);
			continue;
		}
		uint64_t npages = ((uint64_t)rst.st_size + PG - 1) / PG;
		uint64_t *pages = NULL;
		size_t np = 0, cap = 0;
		for (uint64_t p = 0; p < npages && p / 64 < (uint64_t)bst.st_size / 8; p++) {
			if (!(bits[p / 64] & ((uint64_t)1 << (p % 64))))
				continue;
			if (np == cap) {
				cap = cap ? cap * 2 : 256;
				pages = realloc(pages, cap * sizeof *pages);
				ck_assert_ptr_nonnull(pages);
			}
			pages[np++] = p;
		}
		munmap(bits, (size_t)bst.st_size);
		*dirty += np;
		/* a random order, cut at a random point */
		for (size_t i = np; i > 1; i--) {
			size_t j = (size_t)kit_rand_range(r, 0, i - 1);
			uint64_t t = pages[i - 1];
			pages[i - 1] = pages[j];
			pages[j] = t;
		}
		size_t take = np ? (size_t)kit_rand_range(r, 0, np) : 0;
		int sfd = open(sp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		tu_check(sfd >= 0, "open %s", sp);
		char page[PG];
		for (size_t i = 0; i < take; i++) {
			ssize_t k = pread(rfd, page, PG, (off_t)(pages[i] * PG));
			tu_check(k >= 0, "pread %s", rp);
			tu_check(pwrite(sfd, page, (size_t)k, (off_t)(pages[i] * PG)) == k,
				 "pwrite");
		}
		applied += take;
		close(sfd);
		close(rfd);
		free(pages);
	}
	closedir(d);
	return applied;
}

/* ---- acknowledgements ------------------------------------------------------ */

typedef struct acks {
	rec *a;
	size_t n, cap;
} acks;

static void push_ack(acks *acc, const rec *r)
{
	if (acc->n == acc->cap) {
		acc->cap = acc->cap ? acc->cap * 2 : 1024;
		acc->a = realloc(acc->a, acc->cap * sizeof *acc->a);
		ck_assert_ptr_nonnull(acc->a);
	}
	acc->a[acc->n++] = *r;
}

typedef struct chan {
	int fd;
	char buf[1 << 16];
	size_t have;
	int ready, failed;
} chan;

/* Read records until the deadline (monotonic ms), or EOF when deadline < 0.
 * Returns 1 at EOF. */
static int drain(chan *c, acks *acc, int64_t deadline_ms)
{
	for (;;) {
		int timeout = 30000;
		if (deadline_ms >= 0) {
			int64_t now = kit_mono_ms();
			if (now >= deadline_ms)
				return 0;
			timeout = (int)(deadline_ms - now);
		}
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int k = poll(&p, 1, timeout);
		if (k < 0 && errno == EINTR)
			continue;
		tu_check(k >= 0, "poll: %s", strerror(errno));
		if (k == 0) {
			tu_check(deadline_ms >= 0, "no EOF from a dead appender");
			continue;
		}
		ssize_t got = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
		if (got < 0 && errno == EINTR)
			continue;
		tu_check(got >= 0, "read: %s", strerror(errno));
		if (got == 0)
			return 1;
		c->have += (size_t)got;
		size_t off = 0;
		for (; c->have - off >= sizeof(rec); off += sizeof(rec)) {
			rec rr;
			memcpy(&rr, c->buf + off, sizeof rr);
			if (rr.kind == REC_READY)
				c->ready = 1;
			else if (rr.kind == REC_ACK)
				push_ack(acc, &rr);
			else
				c->failed = (int)rr.batch;
		}
		memmove(c->buf, c->buf + off, c->have - off);
		c->have -= off;
	}
}

/* ---- the checks ------------------------------------------------------------ */

typedef struct seen {
	uint64_t batch, size, index, position, version;
	char name[16];
} seen;

static int cmp_seen(const void *a, const void *b)
{
	const seen *x = a, *y = b;
	if (x->batch != y->batch)
		return x->batch < y->batch ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static int cmp_batch_key(const void *key, const void *elem)
{
	uint64_t b = *(const uint64_t *)key;
	const seen *s = elem;
	return b < s->batch ? -1 : b > s->batch;
}

/* A batch as it was seen after a round: (batch, first position). */
typedef struct kept {
	uint64_t batch, first, size;
} kept;

#define PROBLEM(...)                                                \
	do {                                                        \
		if (problems++ < 10) {                              \
			fprintf(stderr, "powerloss: " __VA_ARGS__); \
			fputc('\n', stderr);                        \
		}                                                   \
	} while (0)

/* Check the store after a power loss; returns the number of problems and
 * replaces *prev with the batches found. lost counts missing acks. */
static size_t check_store(const char *dir, const acks *acc, kept **prev, size_t *nprev,
			  size_t *lost)
{
	size_t problems = 0;
	evs_options o;
	evs_options_init(&o);
	o.create = 0;
	evs_store *st = NULL;
	int rc = evs_open(dir, &o, &st);
	if (rc != EVS_OK) {
		PROBLEM("the store does not open after the power loss: %s", evs_open_errmsg());
		return problems;
	}
	tu_ev *evs = NULL;
	size_t n = 0;
	evs_iter *it = NULL;
	rc = evs_read_all(st, 1, EVS_FORWARD, NULL, 0, &it);
	if (rc == EVS_OK) {
		evs_event ev;
		size_t cap = 0;
		while ((rc = evs_iter_next(it, &ev)) == EVS_OK) {
			if (n == cap) {
				cap = cap ? cap * 2 : 1024;
				evs = realloc(evs, cap * sizeof *evs);
				ck_assert_ptr_nonnull(evs);
			}
			tu_ev_copy(&evs[n++], &ev);
		}
		evs_iter_free(it);
	}
	if (rc != EVS_END)
		PROBLEM("reading the log: %s: %s", evs_code_name(rc), evs_errmsg(st));
	seen *s = calloc(n ? n : 1, sizeof *s);
	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < n; i++) {
		const evs_event *e = &evs[i].ev;
		if (e->position != i + 1)
			PROBLEM("position %llu where %zu was expected (a gap)",
				(unsigned long long)e->position, i + 1);
		int64_t b = -1, k = -1, idx = -1;
		if (tu_mp_get_int(e->metadata, e->metadata_len, "b", &b) != 0 ||
		    tu_mp_get_int(e->metadata, e->metadata_len, "k", &k) != 0 ||
		    tu_mp_get_int(e->metadata, e->metadata_len, "i", &idx) != 0 || b <= 0 ||
		    k < 1 || idx < 0 || idx >= k)
			PROBLEM("position %zu: bad metadata", i + 1);
		s[i] = (seen){(uint64_t)b, (uint64_t)k, (uint64_t)idx, e->position, e->version, ""};
		snprintf(s[i].name, sizeof s[i].name, "%.*s",
			 (int)(e->stream.len < 15 ? e->stream.len : 15), e->stream.ptr);
	}
	tu_evs_free(evs, n);
	qsort(s, n, sizeof *s, cmp_seen);
	kept *now = calloc(n ? n : 1, sizeof *now);
	ck_assert_ptr_nonnull(now);
	size_t nnow = 0;
	for (size_t i = 0; i < n;) {
		size_t k = s[i].size ? s[i].size : 1, j = 0;
		for (; j < k && i + j < n; j++) {
			const seen *x = &s[i + j];
			if (x->batch != s[i].batch || x->index != j || x->size != k ||
			    x->position != s[i].position + j || x->version != s[i].version + j ||
			    strcmp(x->name, s[i].name) != 0)
				break;
		}
		if (j < k || (i + k < n && s[i + k].batch == s[i].batch)) {
			PROBLEM("batch %llu is partial or doubled (%zu of %zu events in order)",
				(unsigned long long)s[i].batch, j, k);
			uint64_t b = s[i].batch;
			while (i < n && s[i].batch == b)
				i++;
			continue;
		}
		now[nnow++] = (kept){s[i].batch, s[i].position, k};
		i += k;
	}
	for (size_t i = 0; i < acc->n; i++) {
		const rec *a = &acc->a[i];
		const seen *x = bsearch(&a->batch, s, n, sizeof *s, cmp_batch_key);
		if (!x) {
			(*lost)++;
			PROBLEM("acknowledged batch %llu (positions %llu..%llu) is lost",
				(unsigned long long)a->batch, (unsigned long long)a->first,
				(unsigned long long)a->last);
			continue;
		}
		while (x > s && x[-1].batch == a->batch)
			x--;
		if (x->position != a->first || x->size != a->size)
			PROBLEM("acknowledged batch %llu moved: at %llu, acknowledged at %llu",
				(unsigned long long)a->batch, (unsigned long long)x->position,
				(unsigned long long)a->first);
	}
	for (size_t i = 0; i < *nprev; i++) {
		const kept *p = &(*prev)[i];
		const seen *x = bsearch(&p->batch, s, n, sizeof *s, cmp_batch_key);
		while (x && x > s && x[-1].batch == p->batch)
			x--;
		if (!x || x->position != p->first)
			PROBLEM("batch %llu, recovered at %llu before, is %s",
				(unsigned long long)p->batch, (unsigned long long)p->first,
				x ? "elsewhere (a position reused)" : "gone");
	}
	uint64_t bad = 0;
	rc = evs_verify(st, NULL, NULL, &bad);
	if (rc != EVS_OK || bad != 0)
		PROBLEM("evs verify: %s, %llu problem(s)", evs_code_name(rc),
			(unsigned long long)bad);
	evs_close(st);
	free(s);
	free(*prev);
	*prev = now;
	*nprev = nnow;
	return problems;
}

/* ---- the rounds ------------------------------------------------------------- */

typedef struct outcome {
	size_t rounds, acked, problems, lost, dirty, applied, first_bad_round, epochs;
} outcome;

/* The first open after the power loss, in a fresh process of the new boot
 * (EVS_BOOT_ID_ENV set by the caller): 1 when it opened the store. */
static int recover(const char *dir)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *argv[] = {"/proc/self/exe", "--recover", (char *)dir, NULL};
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	int status = kit_wait_child(pid, 600000, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static const char *shim_path(void)
{
	const char *p = getenv("EVS_PL_SHIM");
	ck_assert_msg(p && *p, "EVS_PL_SHIM must name powerloss_shim.so (meson sets it)");
	return p;
}

static void set_env(const char *k, const char *v)
{
	tu_check(setenv(k, v, 1) == 0, "setenv %s", k);
}

/* Run rounds; stop at the first round with a problem when stop_at_problem. */
static outcome run_rounds(const char *what, int sync, int adversarial, size_t rounds,
			  int stop_at_problem)
{
	uint64_t r, seed = r = kit_seed(what);
	outcome out = {0, 0, 0, 0, 0, 0, 0, 0};
	char base[PATH_MAX];
	tu_path(base, sizeof base, "b0");
	char bootid[64];
	snprintf(bootid, sizeof bootid, "pl-%llu-0", (unsigned long long)seed);
	set_env(EVS_BOOT_ID_ENV, bootid);
	evs_close(tu_open(base, NULL));
	acks acc = {NULL, 0, 0};
	kept *prev = NULL;
	size_t nprev = 0;
	for (size_t round = 0; round < rounds; round++) {
		char real[PATH_MAX], shadow[PATH_MAX];
		char name[32];
		snprintf(name, sizeof name, "r%zu", round);
		tu_path(real, sizeof real, name);
		snprintf(name, sizeof name, "s%zu", round);
		tu_path(shadow, sizeof shadow, name);
		copy_dir(base, real);
		copy_dir(base, shadow);
		int threads = (int)kit_rand_range(&r, 1, 3);
		int64_t delay_ms = (int64_t)kit_rand_range(&r, 0, 150);

		int fds[2];
		tu_check(pipe2(fds, O_CLOEXEC) == 0, "pipe");
		fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			char a_seed[32], a_round[32], a_thr[16], a_sync[16], a_fd[16];
			int wfd = dup(fds[1]); /* without O_CLOEXEC */
			snprintf(a_seed, sizeof a_seed, "%llu", (unsigned long long)seed);
			snprintf(a_round, sizeof a_round, "%zu", round);
			snprintf(a_thr, sizeof a_thr, "%d", threads);
			snprintf(a_sync, sizeof a_sync, "%d", sync);
			snprintf(a_fd, sizeof a_fd, "%d", wfd);
			const char *asan = getenv("ASAN_OPTIONS");
			char asan_opts[512];
			snprintf(asan_opts, sizeof asan_opts, "%s%sverify_asan_link_order=0",
				 asan ? asan : "", asan && *asan ? ":" : "");
			setenv("ASAN_OPTIONS", asan_opts, 1);
			setenv("LD_PRELOAD", shim_path(), 1);
			setenv("EVS_PL_DIR", real, 1);
			setenv("EVS_PL_SHADOW", shadow, 1);
			char *argv[] = {"/proc/self/exe", "--appender", real,
					a_seed,           a_round,      a_thr,
					a_sync,           a_fd,         NULL};
			execv("/proc/self/exe", argv);
			_exit(127);
		}
		close(fds[1]);
		chan *c = calloc(1, sizeof *c);
		ck_assert_ptr_nonnull(c);
		c->fd = fds[0];
		size_t before = acc.n;
		int64_t limit = kit_mono_ms() + 60000;
		int eof = 0;
		while (!c->ready && !c->failed && !eof && kit_mono_ms() < limit)
			eof = drain(c, &acc, kit_mono_ms() + 50);
		tu_check(c->ready, "%s round %zu: the appender did not open the store (%s)", what,
			 round, c->failed ? evs_code_name(c->failed) : "no answer");
		/* the random moment, after at least one acknowledgement */
		int64_t until = kit_mono_ms() + delay_ms;
		while (!eof && !c->failed && (kit_mono_ms() < until || acc.n == before) &&
		       kit_mono_ms() < limit)
			eof = drain(c, &acc, kit_mono_ms() + 10);
		kill(pid, SIGKILL);
		int status = kit_wait_child(pid, 60000, 0);
		if (!eof)
			drain(c, &acc, -1);
		close(c->fd);
		tu_check(!c->failed, "%s round %zu: the appender failed: %s", what, round,
			 evs_code_name(c->failed));
		free(c);
		tu_check(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			 "%s round %zu: the appender ended by itself (status %d)", what, round,
			 status);

		size_t applied = 0;
		if (adversarial)
			applied = apply_unsynced(real, shadow, &r, &out.dirty);
		out.applied += applied;
		char pl[PATH_MAX + 8];
		snprintf(pl, sizeof pl, "%s/.pl", shadow);
		kit_rmrf(pl);
		/* power comes back: a new boot */
		snprintf(bootid, sizeof bootid, "pl-%llu-%zu", (unsigned long long)seed, round + 1);
		set_env(EVS_BOOT_ID_ENV, bootid);
		size_t lost = 0, p = 0;
		if (!recover(shadow)) {
			fprintf(stderr,
				"powerloss: %s round %zu: recovery (the first open after "
				"the power loss) failed\n",
				what, round);
			p++;
		}
		p += check_store(shadow, &acc, &prev, &nprev, &lost);
		out.rounds++;
		out.lost += lost;
		if (p && !out.problems)
			out.first_bad_round = round;
		out.problems += p;
		kit_rmrf(real);
		kit_rmrf(base);
		snprintf(base, sizeof base, "%s", shadow);
		if (p && stop_at_problem)
			break;
		/* a long run starts over on a fresh store now and then: each round
		 * copies the store twice */
		char data[PATH_MAX + 16];
		struct stat st;
		snprintf(data, sizeof data, "%s/data.mdb", base);
		if (stat(data, &st) == 0 && st.st_size > EPOCH_BYTES) {
			kit_rmrf(base);
			snprintf(name, sizeof name, "e%zu", round);
			tu_path(base, sizeof base, name);
			evs_close(tu_open(base, NULL));
			out.acked += acc.n;
			acc.n = 0;
			free(prev);
			prev = NULL;
			nprev = 0;
			out.epochs++;
		}
	}
	out.acked += acc.n;
	fprintf(stderr,
		"%s: seed %llu, %zu rounds on %zu store(s), %zu acknowledged batches, %zu of "
		"them lost, %zu other problems (torn, gaps, verify), %zu unsynced pages at the "
		"kills, %zu of them applied\n",
		what, (unsigned long long)seed, out.rounds, out.epochs + 1, out.acked, out.lost,
		out.problems - out.lost, out.dirty, out.applied);
	free(acc.a);
	free(prev);
	return out;
}

static size_t rounds_wanted(void)
{
	const char *v = getenv("EVS_POWERLOSS_ROUNDS");
	return v && *v ? (size_t)strtoull(v, NULL, 10) : 12;
}

START_TEST(test_powerloss_synced)
{
	outcome o = run_rounds("powerloss_synced", EVS_SYNC_FULL, 0, rounds_wanted(), 1);
	ck_assert_msg(o.problems == 0, "round %zu lost or tore acknowledged data (see above)",
		      o.first_bad_round);
	ck_assert_uint_gt(o.acked, 0);
}
END_TEST

START_TEST(test_powerloss_adversarial)
{
	outcome o = run_rounds("powerloss_adversarial", EVS_SYNC_FULL, 1, rounds_wanted(), 1);
	ck_assert_msg(o.problems == 0, "round %zu lost or tore acknowledged data (see above)",
		      o.first_bad_round);
	ck_assert_uint_gt(o.acked, 0);
}
END_TEST

/* The harness must see what no sync loses. */
START_TEST(test_powerloss_detects_nosync)
{
	outcome o = run_rounds("powerloss_detects_nosync", EVS_SYNC_NONE, 0, 3, 1);
	ck_assert_msg(o.problems > 0 && o.lost > 0,
		      "EVS_SYNC_NONE lost nothing under a simulated power loss: the harness "
		      "does not see unsynced writes");
}
END_TEST

START_TEST(test_powerloss_detects_nosync_torn)
{
	outcome o = run_rounds("powerloss_detects_nosync_torn", EVS_SYNC_NONE, 1, 8, 1);
	ck_assert_msg(o.problems > 0, "EVS_SYNC_NONE with unsynced pages applied at random "
				      "showed no problem in 8 rounds");
}
END_TEST

int main(int argc, char **argv)
{
	if (argc == 8 && strcmp(argv[1], "--appender") == 0)
		return appender_main(argv);
	if (argc == 3 && strcmp(argv[1], "--recover") == 0)
		return recover_main(argv[2]);
	const TTest *tests[] = {
		test_powerloss_synced,
		test_powerloss_adversarial,
		test_powerloss_detects_nosync,
		test_powerloss_detects_nosync_torn,
		NULL,
	};
	return kit_main("store-powerloss", 3600, tests);
}
