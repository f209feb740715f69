/*
 * test_pm_crash.c - SIGKILL of the process-manager runner at random
 * moments (issue 14, "Done when").
 *
 * The parent plays the customers and the payment provider; a child process
 * runs the orders manager (evs_pm_run, durable store) with a clock in
 * shared memory that only the parent moves. Orders come in waves; each
 * order has a seeded fate: paid, declined, cancelled by the customer, held
 * then paid (its ShipOrder is rejected: compensation), out of stock, or
 * never paid (its payment timer fires). In every phase of a wave the child
 * is started and killed after a random 0-20 ms (longer after every 8
 * lives without the phase done, up to 0-2 s, so that a loaded machine
 * still progresses), at least 3 times and until the phase's condition
 * holds; the clock jumps past the payment
 * timeout while the child is dead, so the timers are due during the
 * downtime. At the end every order must be in the final state a clean run
 * reaches for its fate, no command applied twice (each effect event at
 * most once per order), every timer fired exactly once or cancelled, no
 * timer row left, and evs_verify clean. The seed is printed
 * (EVS_TEST_SEED=<n> replays the fates and the kill moments);
 * EVS_PM_WAVES sets the number of waves (default 6, 10 orders each).
 */
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "evstore_pm.h"
#include "kit_store.h"
#include "orders.h"

#define SEC     1000000000LL
#define TIMEOUT (60 * SEC)
#define PER     10

enum fate { PAID, DECLINED, CANCELLED, HELD, NO_STOCK, NEVER_PAID, NFATES };
static const char *const fate_names[] = {"paid", "declined", "cancelled",
					 "held", "no-stock", "never-paid"};

static volatile int64_t *shared_now;
static evs_store *st;
static orders o;
static uint64_t rng;
static unsigned kills;

static int64_t shared_clock(void *ctx)
{
	(void)ctx;
	return __atomic_load_n(shared_now, __ATOMIC_SEQ_CST);
}

static void child_run(void)
{
	evs_store *cs;
	orders co;
	evs_pm_run_opts ro;
	int rc;

	kit_child_check(evs_open(kit_dir, NULL, &cs) == EVS_OK, "open: %s", evs_open_errmsg());
	kit_child_check(orders_open(&co, cs, TIMEOUT) == EVS_OK, "orders_open: %s", evs_errmsg(cs));
	memset(&ro, 0, sizeof ro);
	ro.clock = shared_clock;
	ro.tick_ms = 2;
	rc = evs_pm_run(&co.pm, 1, &ro);
	kit_child_check(0, "evs_pm_run returned %s: %s", evs_code_name(rc), evs_errmsg(cs));
}

/* Start a runner, let it work a random 0..20 ms, SIGKILL it. Lives
 * without progress (round: the lives so far in this phase) get longer, up
 * to 0..2 s: on a loaded machine (sanitizers, other tests) a runner may
 * need more than 20 ms just to start. */
static void one_kill(unsigned round)
{
	long max_ns = 20000000L * (long)(1 + round / 8);
	pid_t pid = fork();
	struct timespec ts;
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		child_run();
		_exit(0);
	}
	if (max_ns > 2000000000L)
		max_ns = 2000000000L;
	ts.tv_nsec = (long)kit_rand_range(&rng, 0, (uint64_t)max_ns);
	ts.tv_sec = ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	nanosleep(&ts, NULL);
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		      "the runner ended by itself (status %d) before the kill", status);
	kills++;
}

typedef struct order_t {
	char id[16];
	int fate;
} order_t;

static int pm_status(const char *id)
{
	int s;
	uint64_t v;
	ck_assert_int_eq(evs_pm_status(o.pm, id, &s, &v), EVS_OK);
	return s;
}

static bool finished(const char *id)
{
	int s = pm_status(id);
	return s == EVS_PM_COMPLETED || s == EVS_PM_FAILED;
}

static bool requested(const char *id)
{
	const char *p;
	ck_assert_int_eq(orders_payment_status(&o, id, &p), EVS_OK);
	return strcmp(p, "requested") == 0;
}

/* Kill runners until cond holds for every order of the wave (3 at least). */
static void phase(const order_t *w, size_t n, bool (*cond)(const order_t *))
{
	for (unsigned round = 0;; round++) {
		bool all = true;
		for (size_t i = 0; i < n && all; i++)
			all = cond(&w[i]);
		if (all && round >= 3)
			return;
		ck_assert_msg(round < 3000, "no progress after 3000 runner lives");
		one_kill(round);
	}
}

static bool asked_or_done(const order_t *x)
{
	return finished(x->id) || requested(x->id);
}

static bool done_unless_never_paid(const order_t *x)
{
	return x->fate == NEVER_PAID || finished(x->id);
}

static bool done(const order_t *x)
{
	return finished(x->id);
}

/* Effect events per order in the whole log. */
static void check_effects(const order_t *all, size_t n)
{
	static const char *const once[] = {"OrderPlaced",     "StockReserved",    "ReserveFailed",
					   "StockReleased",   "PaymentRequested", "PaymentCaptured",
					   "PaymentRefunded", "PaymentVoided",    "PaymentDeclined",
					   "OrderShipped",    "OrderCancelled"};
	enum { NT = sizeof once / sizeof once[0] };
	int(*c)[NT] = calloc(n, sizeof *c);
	int *fired = calloc(n, sizeof *fired);
	tu_ev *evs;
	size_t ne = tu_read_all(st, &evs);

	for (size_t i = 0; i < ne; i++) {
		const evs_event *ev = &evs[i].ev;
		char *txt = kit_mp_text(ev->data, ev->data_len);
		for (size_t k = 0; k < n; k++) {
			char want[64], stream[64];
			snprintf(want, sizeof want, "\"order\"=>\"%s\"", all[k].id);
			snprintf(stream, sizeof stream, "-%s", all[k].id);
			bool mine =
				strstr(txt, want) != NULL ||
				(ev->stream.len > strlen(stream) &&
				 memcmp(ev->stream.ptr + ev->stream.len - strlen(stream), stream,
					strlen(stream)) == 0 &&
				 !(ev->stream.len >= 3 && memcmp(ev->stream.ptr, "pm:", 3) == 0));
			char pmstream[64];
			snprintf(pmstream, sizeof pmstream, "pm:orders-%s", all[k].id);
			if (tu_str_eq(ev->stream, pmstream) && tu_str_eq(ev->type, "pm.TimerFired"))
				fired[k]++;
			if (!mine)
				continue;
			for (size_t t = 0; t < NT; t++)
				if (tu_str_eq(ev->type, once[t]))
					c[k][t]++;
		}
		free(txt);
	}
	tu_evs_free(evs, ne);
	for (size_t k = 0; k < n; k++) {
		for (size_t t = 0; t < NT; t++)
			ck_assert_msg(c[k][t] <= 1, "order %s (%s): %d x %s", all[k].id,
				      fate_names[all[k].fate], c[k][t], once[t]);
		ck_assert_msg(fired[k] == (all[k].fate == NEVER_PAID),
			      "order %s (%s): timer fired %d times", all[k].id,
			      fate_names[all[k].fate], fired[k]);
	}
	free(c);
	free(fired);
}

static void check_final(const order_t *x)
{
	const char *os, *ps;
	int64_t avail;
	char sku[32];
	int s = pm_status(x->id);

	ck_assert_int_eq(orders_order_status(&o, x->id, &os), EVS_OK);
	ck_assert_int_eq(orders_payment_status(&o, x->id, &ps), EVS_OK);
	snprintf(sku, sizeof sku, "sku-%s", x->id);
	ck_assert_int_eq(orders_stock_available(&o, sku, &avail), EVS_OK);
	static const char *const want_pay[] = {"captured", "declined", "voided",
					       "refunded", "none",     "voided"};
	bool ok = x->fate == PAID
			  ? s == EVS_PM_COMPLETED && strcmp(os, "shipped") == 0 && avail == 3
			  : s == EVS_PM_FAILED && strcmp(os, "cancelled") == 0 && avail == 5;
	ck_assert_msg(ok && strcmp(ps, want_pay[x->fate]) == 0,
		      "order %s (%s): process %d, order %s, payment %s, stock %lld", x->id,
		      fate_names[x->fate], s, os, ps, (long long)avail);
}

static int count_fn(void *ctx, evs_str name, uint64_t pos)
{
	(void)name;
	(void)pos;
	(*(int *)ctx)++;
	return 0;
}

START_TEST(test_kills)
{
	uint64_t seed = kit_seed("pm-crash");
	const char *env = getenv("EVS_PM_WAVES");
	size_t waves = env ? strtoul(env, NULL, 10) : 6;
	order_t *all;

	rng = seed;
	ck_assert_msg(waves >= 1 && waves <= 1000, "EVS_PM_WAVES out of range");
	shared_now = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(shared_now != MAP_FAILED);
	*shared_now = 1000 * SEC;
	st = tu_open(kit_dir, NULL);
	tu_ok(st, orders_open(&o, st, TIMEOUT));
	all = calloc(waves * PER, sizeof *all);

	for (size_t wv = 0; wv < waves; wv++) {
		order_t *w = &all[wv * PER];
		for (size_t i = 0; i < PER; i++) {
			char sku[32];
			snprintf(w[i].id, sizeof w[i].id, "o%zu", wv * PER + i);
			w[i].fate = (int)kit_rand_range(&rng, 0, NFATES - 1);
			snprintf(sku, sizeof sku, "sku-%s", w[i].id);
			tu_ok(st, orders_add_stock(&o, sku, 5));
			tu_ok(st,
			      orders_place(&o, w[i].id, sku, w[i].fate == NO_STOCK ? 9 : 2, 100));
		}
		phase(w, PER, asked_or_done);
		for (size_t i = 0; i < PER; i++) {
			if (w[i].fate == PAID)
				tu_ok(st, orders_capture(&o, w[i].id));
			else if (w[i].fate == DECLINED)
				tu_ok(st, orders_decline(&o, w[i].id));
			else if (w[i].fate == CANCELLED)
				tu_ok(st, orders_cancel(&o, w[i].id, "changed my mind"));
			else if (w[i].fate == HELD) {
				tu_ok(st, orders_hold(&o, w[i].id));
				tu_ok(st, orders_capture(&o, w[i].id));
			}
		}
		phase(w, PER, done_unless_never_paid);
		/* no runner is alive here: the timers fall due in the downtime */
		__atomic_add_fetch(shared_now, TIMEOUT + SEC, __ATOMIC_SEQ_CST);
		phase(w, PER, done);
		printf("pm-crash: wave %zu done, %u kills so far\n", wv + 1, kills);
	}
	printf("pm-crash: %u runner kills, seed %llu\n", kills, (unsigned long long)seed);
	ck_assert_uint_ge(kills, 50);

	for (size_t k = 0; k < waves * PER; k++)
		check_final(&all[k]);
	check_effects(all, waves * PER);
	int rows = 0;
	tu_ok(st, evs_checkpoint_list(st, "pm/orders/timer/", count_fn, &rows));
	ck_assert_int_eq(rows, 0);
	rows = 0;
	tu_ok(st, evs_checkpoint_list(st, "pm/orders/parked/", count_fn, &rows));
	ck_assert_int_eq(rows, 0);
	ck_assert_uint_eq(tu_verify(st), 0);
	free(all);
	orders_close(&o);
	evs_close(st);
	munmap((void *)shared_now, 4096);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {test_kills, NULL};

	return kit_main("pm-crash", 1200, tests);
}
