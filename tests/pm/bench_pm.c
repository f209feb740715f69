/*
 * bench_pm.c - process managers (issue 14): a benchmark, not a test.
 *
 *   ./build/tests/pm/bench_pm [N]        (N orders per phase, default 1000)
 *
 * Every store is durable (EVS_SYNC_FULL) and fresh. Figures, each beside
 * a ceiling measured in the same run:
 *   1. one step that issues one command (the orders manager's OrderPlaced
 *      step: its 4 instance events + ReserveStock on a stock stream, one
 *      evs_append_ex) vs one durable evs_execute (AddStock), both one
 *      thread, one at a time: the step's cost as a multiple of an
 *      evs_execute (floor: at most 2x);
 *   2. the same steps by 16 runners (evs_pm_run, 16 partitions, threads)
 *      vs 16 threads of evs_execute: steps/s, the ratio, and commits per
 *      step (distinct commit times of the steps' events / steps: below 1
 *      means steps share group commits);
 *   3. order processes per second end to end: 16 threads place orders, 16
 *      runners drive them, a provider thread captures every payment
 *      request; until every instance is completed (7 commits per order:
 *      add stock, place, 4 steps, capture; one sku per order).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evstore_pm.h"
#include "kit_store.h"
#include "orders.h"

#define THREADS 16

static size_t N = 1000;

static evs_store *open_fresh(const char *name)
{
	char path[PATH_MAX];
	evs_options o;
	evs_store *s;

	kit_bench_path(path, name);
	evs_options_init(&o);
	o.sync = EVS_SYNC_FULL;
	if (evs_open(path, &o, &s) != EVS_OK)
		kit_die("open %s: %s", path, evs_open_errmsg());
	return s;
}

static double secs(int64_t ns)
{
	return (double)ns / 1e9;
}

/* Append OrderPlaced events for orders prefix0..prefix(n-1) (not timed). */
static void place_raw(evs_store *s, const char *prefix, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char id[32], stream[48];
		uint8_t buf[256];
		size_t len;
		evs_event_in ev;
		snprintf(id, sizeof id, "%s%zu", prefix, i);
		snprintf(stream, sizeof stream, "order-%s", id);
		orders_mp(buf, sizeof buf, &len, "order", 's', id, "sku", 's', id, "qty", 'i',
			  (int64_t)1, "amount", 'i', (int64_t)10, NULL);
		memset(&ev, 0, sizeof ev);
		ev.type = "OrderPlaced";
		ev.data = buf;
		ev.data_len = len;
		if (evs_append(s, stream, EVS_NO_STREAM, &ev, 1, NULL) != EVS_OK)
			kit_die("append: %s", evs_errmsg(s));
	}
}

/* ---- threads of evs_execute -------------------------------------------- */

typedef struct exec_arg {
	orders *o;
	size_t from, n;
} exec_arg;

static void *exec_thread(void *p)
{
	exec_arg *a = p;
	for (size_t i = a->from; i < a->from + a->n; i++) {
		char sku[32];
		snprintf(sku, sizeof sku, "b%zu", i);
		if (orders_add_stock(a->o, sku, 5) != EVS_OK)
			kit_die("execute: %s", evs_errmsg(a->o->store));
	}
	return NULL;
}

static double execs(orders *o, size_t threads, size_t n)
{
	pthread_t t[THREADS];
	exec_arg a[THREADS];
	int64_t t0 = kit_mono_ns();

	for (size_t i = 0; i < threads; i++) {
		a[i].o = o;
		a[i].from = i * (n / threads);
		a[i].n = n / threads;
		pthread_create(&t[i], NULL, exec_thread, &a[i]);
	}
	for (size_t i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	return secs(kit_mono_ns() - t0);
}

/* ---- runners ------------------------------------------------------------ */

typedef struct run_arg {
	evs_pm *pm;
	unsigned part;
	int until_idle;
	atomic_int *stop;
} run_arg;

static int stop_fn(void *ctx)
{
	return atomic_load((atomic_int *)ctx);
}

static void *run_thread(void *p)
{
	run_arg *a = p;
	evs_pm_run_opts ro;
	int rc;

	memset(&ro, 0, sizeof ro);
	ro.partitions = THREADS;
	ro.partition = a->part;
	ro.until_idle = a->until_idle;
	ro.tick_ms = 20;
	ro.progress_ms = 3600000;
	if (a->stop) {
		ro.stop = stop_fn;
		ro.stop_ctx = a->stop;
	}
	if ((rc = evs_pm_run(&a->pm, 1, &ro)) != EVS_OK)
		kit_die("evs_pm_run: %s", evs_code_name(rc));
	return NULL;
}

/* Steps (pm.Started events, one per OrderPlaced step) and the distinct
 * commit times among them. */
static void commits_per_step(evs_store *s, uint64_t *steps, uint64_t *commits, int64_t *last_at)
{
	const char *types[] = {"pm.Started"};
	evs_filter f;
	evs_iter *it;
	evs_event ev;
	int64_t last = 0;

	memset(&f, 0, sizeof f);
	f.types = types;
	f.ntypes = 1;
	*steps = *commits = 0;
	if (evs_read_all(s, 1, EVS_FORWARD, &f, 0, &it) != EVS_OK)
		kit_die("read: %s", evs_errmsg(s));
	while (evs_iter_next(it, &ev) == EVS_OK) {
		(*steps)++;
		if (ev.recorded_at != last)
			(*commits)++;
		last = ev.recorded_at;
	}
	*last_at = last;
	evs_iter_free(it);
}

/* ---- end to end --------------------------------------------------------- */

typedef struct e2e {
	orders *o;
	size_t from, n;
	atomic_int *stop;
} e2e;

static void *placer(void *p)
{
	e2e *a = p;
	for (size_t i = a->from; i < a->from + a->n; i++) {
		char id[32];
		snprintf(id, sizeof id, "e%zu", i);
		if (orders_add_stock(a->o, id, 5) != EVS_OK ||
		    orders_place(a->o, id, id, 1, 10) != EVS_OK)
			kit_die("place: %s", evs_errmsg(a->o->store));
	}
	return NULL;
}

/* The payment provider: captures every PaymentRequested it sees. */
static void *provider(void *p)
{
	e2e *a = p;
	const char *types[] = {"PaymentRequested"};
	evs_filter f;
	evs_sub *sub;
	evs_event ev;
	size_t done = 0;

	memset(&f, 0, sizeof f);
	f.types = types;
	f.ntypes = 1;
	if (evs_subscribe(a->o->store, 0, &f, &sub) != EVS_OK)
		kit_die("subscribe: %s", evs_errmsg(a->o->store));
	while (done < a->n && !atomic_load(a->stop)) {
		int rc = evs_sub_next(sub, &ev, 100);
		if (rc == EVS_TIMEOUT)
			continue;
		if (rc != EVS_OK)
			kit_die("sub: %s", evs_code_name(rc));
		char id[64];
		snprintf(id, sizeof id, "%.*s", (int)ev.stream.len - 8, ev.stream.ptr + 8);
		if (orders_capture(a->o, id) != EVS_OK)
			kit_die("capture %s: %s", id, evs_errmsg(a->o->store));
		done++;
	}
	evs_sub_close(sub);
	return NULL;
}

static size_t completed(evs_store *s)
{
	const char *types[] = {"pm.Completed"};
	evs_filter f;
	evs_iter *it;
	evs_event ev;
	size_t n = 0;

	memset(&f, 0, sizeof f);
	f.types = types;
	f.ntypes = 1;
	if (evs_read_all(s, 1, EVS_FORWARD, &f, 0, &it) != EVS_OK)
		kit_die("read: %s", evs_errmsg(s));
	while (evs_iter_next(it, &ev) == EVS_OK)
		n++;
	evs_iter_free(it);
	return n;
}

int main(int argc, char **argv)
{
	char buf[32], buf2[32];
	orders o;
	evs_store *s;
	evs_pm_result r;

	if (argc > 1 && (N = strtoul(argv[1], NULL, 10)) < THREADS)
		kit_die("N must be at least %d", THREADS);
	N -= N % THREADS;
	kit_bench_root("bench_pm", NULL, "bench-pm", false);
	kit_print_load("before");
	printf("bench_pm: N = %zu, durable (EVS_SYNC_FULL), %d threads in phases 2-3\n", N,
	       THREADS);

	/* 1. one at a time */
	s = open_fresh("one");
	if (orders_open(&o, s, 3600LL * 1000000000) != EVS_OK)
		kit_die("orders_open: %s", evs_errmsg(s));
	place_raw(s, "a", N);
	double t_exec = execs(&o, 1, N);
	evs_iter *it;
	evs_event ev;
	tu_ev *evs = calloc(N, sizeof *evs);
	const char *types[] = {"OrderPlaced"};
	evs_filter f;
	memset(&f, 0, sizeof f);
	f.types = types;
	f.ntypes = 1;
	if (evs_read_all(s, 1, EVS_FORWARD, &f, N, &it) != EVS_OK)
		kit_die("read");
	for (size_t i = 0; i < N && evs_iter_next(it, &ev) == EVS_OK; i++)
		tu_ev_copy(&evs[i], &ev);
	evs_iter_free(it);
	int64_t t0 = kit_mono_ns();
	for (size_t i = 0; i < N; i++)
		if (evs_pm_handle(o.pm, &evs[i].ev, 0, NULL, &r) != EVS_OK || !r.stepped ||
		    r.commands != 1)
			kit_die("step %zu: %s", i, evs_errmsg(s));
	double t_step = secs(kit_mono_ns() - t0);
	for (size_t i = 0; i < N; i++)
		tu_ev_free(&evs[i]);
	free(evs);
	printf("1. one thread: evs_execute %.1f us, step with one command %.1f us: a step costs "
	       "%.2fx an evs_execute (floor <= 2x: %s)\n",
	       t_exec / (double)N * 1e6, t_step / (double)N * 1e6, t_step / t_exec,
	       t_step / t_exec <= 2.0 ? "met" : "MISSED");
	orders_close(&o);
	evs_close(s);

	/* 2. 16 runners */
	s = open_fresh("sixteen");
	if (orders_open(&o, s, 3600LL * 1000000000) != EVS_OK)
		kit_die("orders_open: %s", evs_errmsg(s));
	place_raw(s, "c", N);
	double t_exec16 = execs(&o, THREADS, N);
	pthread_t th[THREADS];
	run_arg ra[THREADS];
	int64_t t0_real = kit_now_ns();
	t0 = kit_mono_ns();
	for (unsigned i = 0; i < THREADS; i++) {
		ra[i] = (run_arg){o.pm, i, 1, NULL};
		pthread_create(&th[i], NULL, run_thread, &ra[i]);
	}
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	double t_run16 = secs(kit_mono_ns() - t0);
	uint64_t steps, commits;
	int64_t last_at;
	commits_per_step(s, &steps, &commits, &last_at);
	double t_steps16 = secs(last_at - t0_real); /* to the last step's commit */
	if (steps != N)
		kit_die("%llu steps for %zu orders", (unsigned long long)steps, N);
	printf("2. 16 threads: evs_execute %s/s, steps %s/s (from the runners' start to the last "
	       "step's commit; %.2f s until all 16 returned): ratio %.2f; %.3f commits per step "
	       "(%llu commits, %llu steps)\n",
	       kit_num((double)N / t_exec16, buf), kit_num((double)N / t_steps16, buf2), t_run16,
	       t_exec16 / t_steps16, (double)commits / (double)steps, (unsigned long long)commits,
	       (unsigned long long)steps);
	orders_close(&o);
	evs_close(s);

	/* 3. end to end */
	s = open_fresh("e2e");
	if (orders_open(&o, s, 3600LL * 1000000000) != EVS_OK)
		kit_die("orders_open: %s", evs_errmsg(s));
	atomic_int stop = 0;
	pthread_t pl[THREADS], pv;
	e2e ea[THREADS], pa = {&o, 0, N, &stop};
	t0 = kit_mono_ns();
	for (unsigned i = 0; i < THREADS; i++) {
		ra[i] = (run_arg){o.pm, i, 0, &stop};
		pthread_create(&th[i], NULL, run_thread, &ra[i]);
	}
	pthread_create(&pv, NULL, provider, &pa);
	for (unsigned i = 0; i < THREADS; i++) {
		ea[i] = (e2e){&o, i * (N / THREADS), N / THREADS, &stop};
		pthread_create(&pl[i], NULL, placer, &ea[i]);
	}
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(pl[i], NULL);
	while (completed(s) < N) {
		if (secs(kit_mono_ns() - t0) > 600)
			kit_die("end to end: not done after 600 s");
		evs_wait(s, UINT64_MAX - 1, 20);
	}
	double t_e2e = secs(kit_mono_ns() - t0);
	atomic_store(&stop, 1);
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_join(pv, NULL);
	evs_store_info h;
	evs_head(s, &h);
	printf("3. end to end: %s order processes/s (%zu orders in %.2f s, %llu events; each order "
	       "= add stock + place + 4 steps + capture)\n",
	       kit_num((double)N / t_e2e, buf), N, t_e2e, (unsigned long long)h.last_position);
	orders_close(&o);
	evs_close(s);
	kit_print_load("after");
	kit_bench_cleanup();
	return 0;
}
