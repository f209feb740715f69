/*
 * test_pm.c - process managers (issue 14) on the orders example: the pure
 * plan and evolve, the whole process through the runner with an injected
 * clock (happy path, out of stock, payment timeout, declined payment, a
 * customer's cancel), double start, late events and late timers after
 * completion, a rejection that compensates in reverse order, a parked
 * instance that does not block others and resumes, bad input.
 */
#include <pthread.h>
#include <string.h>

#include "evstore_pm.h"
#include "kit_store.h"
#include "orders.h"

#define SEC 1000000000LL

static evs_store *st;
static orders o;
static int64_t fake_now = 1000 * SEC;

static int64_t clock_fn(void *ctx)
{
	(void)ctx;
	return fake_now;
}

static void setup(void)
{
	evs_options opt;
	tu_options(&opt, EVS_SYNC_NONE);
	st = tu_open(kit_dir, &opt);
	tu_ok(st, orders_open(&o, st, 60 * SEC));
	fake_now = 1000 * SEC;
}

static void teardown(void)
{
	orders_close(&o);
	evs_close(st);
}

static void run_idle(evs_pm *pm)
{
	evs_pm_run_opts ro;
	memset(&ro, 0, sizeof ro);
	ro.clock = clock_fn;
	ro.until_idle = 1;
	ro.tick_ms = 5;
	tu_ok(st, evs_pm_run(&pm, 1, &ro));
}

/* Events of `type` in the log whose data says order = id (or any, NULL);
 * *first = the position of the first. */
static int count(const char *type, const char *id, uint64_t *first)
{
	tu_ev *evs;
	size_t n = tu_read_all(st, &evs);
	int c = 0;

	if (first)
		*first = 0;
	for (size_t i = 0; i < n; i++) {
		if (!tu_str_eq(evs[i].ev.type, type))
			continue;
		if (id) {
			char *txt = kit_mp_text(evs[i].ev.data, evs[i].ev.data_len);
			char want[128];
			snprintf(want, sizeof want, "\"order\"=>\"%s\"", id);
			bool stream_match = evs[i].ev.stream.len > 6 &&
					    evs[i].ev.stream.len - 6 == strlen(id) &&
					    memcmp(evs[i].ev.stream.ptr + 6, id, strlen(id)) == 0;
			bool match = strstr(txt, want) != NULL || stream_match;
			free(txt);
			if (!match)
				continue;
		}
		if (c++ == 0 && first)
			*first = evs[i].ev.position;
	}
	tu_evs_free(evs, n);
	return c;
}

static int status_of(const char *id)
{
	int s = -1;
	tu_ok(st, evs_pm_status(o.pm, id, &s, NULL));
	return s;
}

static const char *order_status(const char *id)
{
	const char *s;
	tu_ok(st, orders_order_status(&o, id, &s));
	return s;
}

static const char *payment_status(const char *id)
{
	const char *s;
	tu_ok(st, orders_payment_status(&o, id, &s));
	return s;
}

static int64_t available(const char *sku)
{
	int64_t a;
	tu_ok(st, orders_stock_available(&o, sku, &a));
	return a;
}

static int count_fn(void *ctx, evs_str name, uint64_t pos)
{
	(void)name;
	(void)pos;
	(*(int *)ctx)++;
	return 0;
}

static int timers(void)
{
	int n = 0;
	tu_ok(st, evs_checkpoint_list(st, "pm/orders/timer/", count_fn, &n));
	return n;
}

/* ---- the pure plan ------------------------------------------------------ */

START_TEST(test_plan)
{
	orders_proc p;
	orders_input in;
	orders_plan pl;

	memset(&p, 0, sizeof p);
	memset(&in, 0, sizeof in);
	in.kind = ORDERS_IN_PLACED;
	in.now = 5;
	orders_plan_next(&p, &in, 100, &pl);
	ck_assert(pl.accept);
	ck_assert_int_eq(pl.command, ORDERS_C_RESERVE);
	ck_assert_int_eq(pl.stage, ORDERS_RESERVING);

	p.stage = ORDERS_RESERVING;
	orders_plan_next(&p, &in, 100, &pl); /* a second OrderPlaced: nothing */
	ck_assert(!pl.accept && pl.command == ORDERS_C_NONE && pl.stage == ORDERS_RESERVING);
	in.kind = ORDERS_IN_RESERVED;
	orders_plan_next(&p, &in, 100, &pl);
	ck_assert_int_eq(pl.command, ORDERS_C_REQUEST_PAYMENT);
	ck_assert(pl.set_timer && pl.timer_due == 105);
	in.kind = ORDERS_IN_RESERVE_FAILED;
	orders_plan_next(&p, &in, 100, &pl);
	ck_assert(pl.fail && pl.cancel_order && !pl.compensate);
	ck_assert_str_eq(pl.reason, "out of stock");

	p.stage = ORDERS_PAYING;
	in.kind = ORDERS_IN_TIMEOUT;
	orders_plan_next(&p, &in, 100, &pl);
	ck_assert(pl.fail && pl.cancel_order && pl.compensate);
	ck_assert_str_eq(pl.reason, "payment timeout");
	in.kind = ORDERS_IN_CAPTURED;
	orders_plan_next(&p, &in, 100, &pl);
	ck_assert(pl.cancel_timer && pl.command == ORDERS_C_SHIP && !pl.fail);
	in.kind = ORDERS_IN_CANCELLED;
	orders_plan_next(&p, &in, 100, &pl);
	ck_assert(pl.fail && pl.compensate && !pl.cancel_order);

	p.stage = ORDERS_SHIPPING;
	in.kind = ORDERS_IN_REJECTED;
	in.reason = "order is on hold";
	orders_plan_next(&p, &in, 100, &pl);
	ck_assert(pl.fail && pl.compensate && pl.cancel_order);
	ck_assert_str_eq(pl.reason, "order is on hold");
	in.kind = ORDERS_IN_SHIPPED;
	orders_plan_next(&p, &in, 100, &pl);
	ck_assert(pl.complete && pl.stage == ORDERS_DONE);

	p.stage = ORDERS_DONE; /* late inputs: nothing */
	for (int k = ORDERS_IN_PLACED; k <= ORDERS_IN_REJECTED; k++) {
		in.kind = k;
		orders_plan_next(&p, &in, 100, &pl);
		ck_assert(!pl.accept && !pl.command && !pl.set_timer && !pl.compensate &&
			  !pl.cancel_order && !pl.complete && !pl.fail && pl.stage == ORDERS_DONE);
	}

	/* evolve: own events only */
	uint8_t buf[256];
	size_t len;
	evs_event ev;
	memset(&ev, 0, sizeof ev);
	memset(&p, 0, sizeof p);
	ck_assert_int_eq(orders_mp(buf, sizeof buf, &len, "order", 's', "o1", "sku", 's', "s1",
				   "qty", 'i', (int64_t)2, "amount", 'i', (int64_t)30, NULL),
			 EVS_OK);
	ev.type.ptr = "OrderProcessStarted";
	ev.type.len = strlen(ev.type.ptr);
	ev.data = buf;
	ev.data_len = len;
	ck_assert_int_eq(orders_proc_evolve(&p, &ev), EVS_OK);
	ck_assert_str_eq(p.order, "o1");
	ck_assert_str_eq(p.sku, "s1");
	ck_assert(p.qty == 2 && p.amount == 30);
	orders_mp(buf, sizeof buf, &len, "stage", 'i', (int64_t)ORDERS_PAYING, "reason", 's', "",
		  NULL);
	ev.type.ptr = "OrderProcessMoved";
	ev.type.len = strlen(ev.type.ptr);
	ev.data_len = len;
	ck_assert_int_eq(orders_proc_evolve(&p, &ev), EVS_OK);
	ck_assert_int_eq(p.stage, ORDERS_PAYING);
	ev.type.ptr = "pm.TimerSet";
	ev.type.len = strlen(ev.type.ptr);
	ck_assert_int_eq(orders_proc_evolve(&p, &ev), EVS_OK);
	ck_assert_int_eq(p.stage, ORDERS_PAYING);
}
END_TEST

/* ---- the process through the runner ------------------------------------- */

START_TEST(test_happy_path)
{
	setup();
	tu_ok(st, orders_add_stock(&o, "s1", 10));
	tu_ok(st, orders_place(&o, "o1", "s1", 3, 300));
	run_idle(o.pm);
	ck_assert_int_eq(available("s1"), 7);
	ck_assert_str_eq(payment_status("o1"), "requested");
	ck_assert_int_eq(status_of("o1"), EVS_PM_RUNNING);
	ck_assert_int_eq(timers(), 1);
	tu_ok(st, orders_capture(&o, "o1"));
	run_idle(o.pm);
	ck_assert_str_eq(order_status("o1"), "shipped");
	ck_assert_int_eq(status_of("o1"), EVS_PM_COMPLETED);
	ck_assert_int_eq(timers(), 0);
	ck_assert_int_eq(count("pm.Completed", NULL, NULL), 1);

	/* causation and correlation of a commanded event */
	tu_ev *evs;
	size_t n = tu_read_all(st, &evs);
	const evs_event *placed = NULL, *reserved = NULL;
	for (size_t i = 0; i < n; i++) {
		if (tu_str_eq(evs[i].ev.type, "OrderPlaced"))
			placed = &evs[i].ev;
		if (tu_str_eq(evs[i].ev.type, "StockReserved"))
			reserved = &evs[i].ev;
	}
	ck_assert(placed && reserved);
	ck_assert(memcmp(reserved->causation_id, placed->id, 16) == 0);
	ck_assert((reserved->id[6] & 0xf0) == 0x80); /* UUIDv8: derived */
	tu_evs_free(evs, n);

	/* the checkpoint is the manager's own */
	uint64_t pos;
	tu_ok(st, evs_checkpoint_get(st, "pm/orders/pos/1.0", &pos));
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(pos, h.last_position);
	teardown();
}
END_TEST

START_TEST(test_out_of_stock)
{
	setup();
	tu_ok(st, orders_add_stock(&o, "s1", 2));
	tu_ok(st, orders_place(&o, "o1", "s1", 3, 300));
	run_idle(o.pm);
	ck_assert_str_eq(order_status("o1"), "cancelled");
	ck_assert_int_eq(status_of("o1"), EVS_PM_FAILED);
	ck_assert_int_eq(available("s1"), 2);
	ck_assert_int_eq(count("StockReleased", NULL, NULL), 0);
	teardown();
}
END_TEST

START_TEST(test_timeout_and_late_timer)
{
	setup();
	tu_ok(st, orders_add_stock(&o, "s1", 10));
	tu_ok(st, orders_place(&o, "o1", "s1", 4, 300));
	tu_ok(st, orders_place(&o, "o2", "s1", 1, 100));
	run_idle(o.pm);
	ck_assert_int_eq(available("s1"), 5);
	ck_assert_int_eq(timers(), 2);
	fake_now += 30 * SEC;
	tu_ok(st, orders_capture(&o, "o2"));
	run_idle(o.pm); /* not due yet */
	ck_assert_str_eq(payment_status("o1"), "requested");
	ck_assert_int_eq(timers(), 1);
	fake_now += 31 * SEC;
	run_idle(o.pm);
	ck_assert_str_eq(payment_status("o1"), "voided");
	ck_assert_str_eq(order_status("o1"), "cancelled");
	ck_assert_int_eq(available("s1"), 9);
	ck_assert_int_eq(status_of("o1"), EVS_PM_FAILED);
	ck_assert_int_eq(status_of("o2"), EVS_PM_COMPLETED);
	ck_assert_int_eq(timers(), 0);
	ck_assert_int_eq(count("pm.TimerFired", NULL, NULL), 1);

	/* a late timer and a late capture after the end: no-ops */
	uint64_t v1, v2;
	int s;
	evs_pm_result r;
	tu_ok(st, evs_pm_status(o.pm, "o1", &s, &v1));
	tu_ok(st, evs_pm_fire(o.pm, "o1", "payment", 1060 * SEC, fake_now, &r));
	ck_assert(r.skipped && !r.stepped);
	tu_ok(st, evs_pm_fire(o.pm, "o2", "payment", 1060 * SEC, fake_now, &r));
	ck_assert(r.skipped && !r.stepped);
	tu_assert_rc(st, orders_capture(&o, "o1"), EVS_REJECTED);
	run_idle(o.pm);
	tu_ok(st, evs_pm_status(o.pm, "o1", &s, &v2));
	ck_assert_uint_eq(v1, v2);
	teardown();
}
END_TEST

START_TEST(test_double_start_and_late_event)
{
	setup();
	tu_ok(st, orders_add_stock(&o, "s1", 10));
	tu_ok(st, orders_place(&o, "o1", "s1", 2, 300));
	/* the same OrderPlaced twice in the log (a retry from a producer) */
	tu_ev *evs;
	size_t n = tu_read_all(st, &evs);
	evs_event_in again;
	memset(&again, 0, sizeof again);
	again.type = "OrderPlaced";
	again.data = evs[n - 1].ev.data;
	again.data_len = evs[n - 1].ev.data_len;
	tu_ok(st, evs_append(st, "order-o1", EVS_ANY, &again, 1, NULL));
	tu_evs_free(evs, n);
	run_idle(o.pm);
	ck_assert_int_eq(count("pm.Started", NULL, NULL), 1);
	ck_assert_int_eq(count("StockReserved", "o1", NULL), 1);
	ck_assert_int_eq(available("s1"), 8);

	/* twice through evs_pm_handle on one event: the second is skipped */
	evs_iter *it;
	evs_event ev;
	evs_pm_result r;
	tu_ok(st, evs_read_stream(st, "order-o1", 1, EVS_FORWARD, 1, &it));
	tu_ok(st, evs_iter_next(it, &ev));
	tu_ev copy;
	tu_ev_copy(&copy, &ev);
	evs_iter_free(it);
	tu_ok(st, evs_pm_handle(o.pm, &copy.ev, fake_now, NULL, &r));
	ck_assert(r.skipped && !r.stepped && r.route == EVS_PM_START);
	tu_ev_free(&copy);

	tu_ok(st, orders_capture(&o, "o1"));
	run_idle(o.pm);
	ck_assert_int_eq(status_of("o1"), EVS_PM_COMPLETED);
	uint64_t v1, v2;
	int s;
	tu_ok(st, evs_pm_status(o.pm, "o1", &s, &v1));
	/* a late PaymentDeclined after completion */
	uint8_t buf[64];
	size_t len;
	orders_mp(buf, sizeof buf, &len, "order", 's', "o1", NULL);
	again.type = "PaymentDeclined";
	again.data = buf;
	again.data_len = len;
	tu_ok(st, evs_append(st, "payment-o1", EVS_ANY, &again, 1, NULL));
	run_idle(o.pm);
	tu_ok(st, evs_pm_status(o.pm, "o1", &s, &v2));
	ck_assert_uint_eq(v1, v2);
	ck_assert_int_eq(count("StockReleased", NULL, NULL), 0);
	teardown();
}
END_TEST

START_TEST(test_rejection_compensates_in_reverse)
{
	setup();
	tu_ok(st, orders_add_stock(&o, "s1", 10));
	tu_ok(st, orders_place(&o, "o1", "s1", 2, 300));
	run_idle(o.pm);
	tu_ok(st, orders_hold(&o, "o1"));
	tu_ok(st, orders_capture(&o, "o1"));
	run_idle(o.pm);
	uint64_t refunded, released, rejected, compensating, cancelled;
	ck_assert_int_eq(count("pm.CommandRejected", NULL, &rejected), 1);
	ck_assert_int_eq(count("pm.Compensating", NULL, &compensating), 1);
	ck_assert_int_eq(count("PaymentRefunded", "o1", &refunded), 1);
	ck_assert_int_eq(count("StockReleased", "o1", &released), 1);
	ck_assert_int_eq(count("OrderCancelled", "o1", &cancelled), 1);
	ck_assert_uint_lt(rejected, compensating);
	ck_assert_uint_lt(refunded, released); /* reverse order of the forward steps */
	ck_assert_uint_lt(released, cancelled);
	ck_assert_int_eq(available("s1"), 10);
	ck_assert_str_eq(payment_status("o1"), "refunded");
	ck_assert_int_eq(status_of("o1"), EVS_PM_FAILED);
	/* one step: the rejection, the compensation and the cancel share a commit */
	evs_iter *it;
	evs_event a, b;
	tu_ok(st, evs_read_all(st, refunded, EVS_FORWARD, NULL, 1, &it));
	tu_ok(st, evs_iter_next(it, &a));
	int64_t t1 = a.recorded_at;
	evs_iter_free(it);
	tu_ok(st, evs_read_all(st, cancelled, EVS_FORWARD, NULL, 1, &it));
	tu_ok(st, evs_iter_next(it, &b));
	ck_assert_int_eq(t1, b.recorded_at);
	evs_iter_free(it);
	teardown();
}
END_TEST

START_TEST(test_declined_and_customer_cancel)
{
	setup();
	tu_ok(st, orders_add_stock(&o, "s1", 10));
	tu_ok(st, orders_place(&o, "o1", "s1", 2, 300));
	tu_ok(st, orders_place(&o, "o2", "s1", 3, 300));
	run_idle(o.pm);
	tu_ok(st, orders_decline(&o, "o1"));
	tu_ok(st, orders_cancel(&o, "o2", "changed my mind"));
	run_idle(o.pm);
	ck_assert_str_eq(order_status("o1"), "cancelled");
	ck_assert_str_eq(order_status("o2"), "cancelled");
	ck_assert_str_eq(payment_status("o2"), "voided");
	ck_assert_int_eq(available("s1"), 10);
	ck_assert_int_eq(status_of("o1"), EVS_PM_FAILED);
	ck_assert_int_eq(status_of("o2"), EVS_PM_FAILED);
	ck_assert_int_eq(timers(), 0);
	ck_assert_int_eq(count("OrderCancelled", "o2", NULL), 1);
	teardown();
}
END_TEST

typedef struct part_arg {
	evs_pm *pm;
	unsigned part;
	int rc;
} part_arg;

static void *part_thread(void *p)
{
	part_arg *a = p;
	evs_pm_run_opts ro;
	memset(&ro, 0, sizeof ro);
	ro.clock = clock_fn;
	ro.until_idle = 1;
	ro.tick_ms = 5;
	ro.partitions = 4;
	ro.partition = a->part;
	a->rc = evs_pm_run(&a->pm, 1, &ro);
	return NULL;
}

/* Four runners in threads share the instances (partitions) and the
 * stock streams they command: every order ends as a lone runner would
 * end it; a second round (captures) too. */
START_TEST(test_partitions)
{
	pthread_t t[4];
	part_arg a[4];
	char id[16];

	setup();
	tu_ok(st, orders_add_stock(&o, "shared", 30));
	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof id, "p%d", i);
		tu_ok(st, orders_place(&o, id, "shared", 1, 10));
	}
	for (int round = 0; round < 2; round++) {
		for (unsigned i = 0; i < 4; i++) {
			a[i] = (part_arg){o.pm, i, -1};
			ck_assert_int_eq(pthread_create(&t[i], NULL, part_thread, &a[i]), 0);
		}
		for (unsigned i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			ck_assert_int_eq(a[i].rc, EVS_OK);
		}
		for (int i = 0; round == 0 && i < 40; i++) {
			snprintf(id, sizeof id, "p%d", i);
			if (strcmp(payment_status(id), "requested") == 0)
				tu_ok(st, orders_capture(&o, id));
		}
	}
	int shipped = 0, cancelled = 0;
	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof id, "p%d", i);
		const char *os = order_status(id);
		shipped += strcmp(os, "shipped") == 0;
		cancelled += strcmp(os, "cancelled") == 0;
		int want = strcmp(os, "shipped") == 0 ? EVS_PM_COMPLETED : EVS_PM_FAILED;
		ck_assert_msg(status_of(id) == want, "%s: order %s, process %d", id, os,
			      status_of(id));
	}
	ck_assert_int_eq(shipped, 30); /* 30 units: 30 reserved, 10 out of stock */
	ck_assert_int_eq(cancelled, 10);
	ck_assert_int_eq(available("shared"), 0);
	ck_assert_int_eq(count("StockReserved", NULL, NULL), 30);
	ck_assert_int_eq(count("ReserveFailed", NULL, NULL), 10);
	ck_assert_int_eq(timers(), 0);
	int parked = 0;
	tu_ok(st, evs_checkpoint_list(st, "pm/orders/parked/", count_fn, &parked));
	ck_assert_int_eq(parked, 0);
	teardown();
}
END_TEST

/* ---- a manager of its own: parking ---------------------------------------- */

static int poison; /* decide fails for instance "bad" while set */

typedef struct tally {
	int64_t seen;
} tally;

static int t_correlate(void *ctx, const evs_event *ev, char *instance)
{
	(void)ctx;
	if (!tu_str_eq(ev->type, "Ping"))
		return EVS_PM_IGNORE;
	memcpy(instance, ev->stream.ptr + 5, ev->stream.len - 5); /* "ping-" */
	instance[ev->stream.len - 5] = 0;
	return ev->version == 1 ? EVS_PM_START : EVS_PM_CONTINUE;
}

static int t_evolve(void *ctx, void *state, const evs_event *ev)
{
	(void)ctx;
	if (tu_str_eq(ev->type, "Counted"))
		((tally *)state)->seen++;
	return EVS_OK;
}

static int t_decide(void *ctx, const void *state, const evs_pm_input *in, evs_pm_step *step)
{
	(void)ctx;
	if (poison && strcmp(in->instance, "bad") == 0)
		return EVS_INVALID;
	if (strcmp(in->instance, "unknown-agg") == 0) {
		evs_command c = {"X", NULL, 0};
		return evs_pm_command(step, "nope", "x-1", &c, NULL);
	}
	tu_mp m;
	tu_mp_init(&m);
	tu_mp_map_ints(&m, 1, "n", (long long)((const tally *)state)->seen + 1);
	int rc = evs_pm_emit(step, "Counted", m.sb.data, m.sb.size);
	tu_mp_destroy(&m);
	return rc;
}

static int t_encode(void *ctx, const void *state, evs_sink *out)
{
	(void)ctx;
	return evs_sink_write(out, (const char *)state, sizeof(tally)) == 0 ? EVS_OK : EVS_NOMEM;
}

static int t_decode(void *ctx, void *state, const void *data, size_t len)
{
	(void)ctx;
	if (len != sizeof(tally))
		return EVS_CORRUPT;
	memcpy(state, data, len);
	return EVS_OK;
}

static void tally_def(evs_pm_def *d)
{
	memset(d, 0, sizeof *d);
	d->name = "tally";
	d->state_size = sizeof(tally);
	d->correlate = t_correlate;
	d->decide = t_decide;
	d->evolve = t_evolve;
	d->max_attempts = 2;
}

static void ping(const char *inst)
{
	char stream[64];
	evs_event_in ev;
	memset(&ev, 0, sizeof ev);
	ev.type = "Ping";
	snprintf(stream, sizeof stream, "ping-%s", inst);
	tu_ok(st, evs_append(st, stream, EVS_ANY, &ev, 1, NULL));
}

typedef struct parked_seen {
	int n;
	char reason[256];
	uint64_t pos;
} parked_seen;

static int parked_fn(void *ctx, const char *instance, uint64_t position, const char *reason)
{
	parked_seen *p = ctx;
	ck_assert_str_eq(instance, "bad");
	p->n++;
	p->pos = position;
	snprintf(p->reason, sizeof p->reason, "%s", reason);
	return 0;
}

START_TEST(test_parked_and_resumed)
{
	evs_options opt;
	evs_pm_def d;
	evs_pm *pm;
	int s;
	uint64_t v;

	tu_options(&opt, EVS_SYNC_NONE);
	st = tu_open(kit_dir, &opt);
	tally_def(&d);
	tu_ok(st, evs_pm_new(st, &d, &pm));
	poison = 1;
	ping("bad");
	ping("good");
	ping("bad");
	ping("good");
	run_idle(pm);
	/* the good one went on; the bad one is parked at its first input */
	tu_ok(st, evs_pm_status(pm, "good", &s, &v));
	ck_assert_int_eq(s, EVS_PM_RUNNING);
	ck_assert_uint_eq(v, 3); /* Started, Counted, Counted */
	parked_seen p;
	memset(&p, 0, sizeof p);
	tu_ok(st, evs_pm_list_parked(st, "tally", parked_fn, &p));
	ck_assert_int_eq(p.n, 1);
	ck_assert_uint_eq(p.pos, 1);
	ck_assert_msg(strstr(p.reason, "decide failed") != NULL, "reason: %s", p.reason);
	ping("good");
	run_idle(pm);
	tu_ok(st, evs_pm_status(pm, "good", &s, &v));
	ck_assert_uint_eq(v, 4);

	tu_assert_rc(st, evs_pm_resume(st, "tally", "good"), EVS_NOT_FOUND);
	poison = 0;
	tu_ok(st, evs_pm_resume(st, "tally", "bad"));
	run_idle(pm);
	tu_ok(st, evs_pm_status(pm, "bad", &s, &v));
	ck_assert_int_eq(s, EVS_PM_RUNNING);
	ck_assert_uint_eq(v, 4); /* Parked, Started, Counted, Counted: both inputs */
	memset(&p, 0, sizeof p);
	tu_ok(st, evs_pm_list_parked(st, "tally", parked_fn, &p));
	ck_assert_int_eq(p.n, 0);
	ping("bad");
	run_idle(pm);
	tu_ok(st, evs_pm_status(pm, "bad", &s, &v));
	ck_assert_uint_eq(v, 5);

	/* a command to an aggregate the manager does not have: parked too */
	ping("unknown-agg");
	run_idle(pm);
	tu_ok(st, evs_pm_status(pm, "unknown-agg", &s, &v));
	ck_assert_uint_eq(v, 1); /* pm.Parked only */
	evs_pm_free(pm);
	evs_close(st);
}
END_TEST

/* The last Counted event's n in the instance stream. */
static int64_t last_n(const char *inst)
{
	char stream[64];
	evs_iter *it;
	evs_event ev;
	int64_t n = -1;
	snprintf(stream, sizeof stream, "pm:tally-%s", inst);
	tu_ok(st, evs_read_stream(st, stream, EVS_ANY, EVS_BACKWARD, 0, &it));
	while (evs_iter_next(it, &ev) == EVS_OK)
		if (tu_str_eq(ev.type, "Counted")) {
			ck_assert_int_eq(tu_mp_get_int(ev.data, ev.data_len, "n", &n), 0);
			break;
		}
	evs_iter_free(it);
	return n;
}

START_TEST(test_snapshots)
{
	evs_options opt;
	evs_pm_def d;
	evs_pm *pm;
	uint64_t removed, v;
	int s;

	tu_options(&opt, EVS_SYNC_NONE);
	st = tu_open(kit_dir, &opt);
	tally_def(&d);
	d.snapshot_version = 1;
	d.snapshot_every = 3;
	d.snapshot_encode = t_encode;
	tu_assert_rc(st, evs_pm_new(st, &d, &pm), EVS_INVALID); /* both or neither */
	d.snapshot_decode = t_decode;
	tu_ok(st, evs_pm_new(st, &d, &pm));
	poison = 0;
	for (int i = 0; i < 7; i++)
		ping("snap");
	run_idle(pm);
	ck_assert_int_eq(last_n("snap"), 7); /* the states loaded from snapshots counted on */
	tu_ok(st, evs_pm_status(pm, "snap", &s, &v));
	ck_assert_uint_eq(v, 8);
	tu_ok(st, evs_snapshot_clear(st, "pm:tally-snap", &removed));
	ck_assert_uint_ge(removed, 2);
	ping("snap");
	run_idle(pm);
	ck_assert_int_eq(last_n("snap"), 8); /* and the same by replay */
	evs_pm_free(pm);
	evs_close(st);
}
END_TEST

START_TEST(test_bad_input)
{
	evs_options opt;
	evs_pm_def d;
	evs_pm *pm;

	tu_options(&opt, EVS_SYNC_NONE);
	st = tu_open(kit_dir, &opt);
	tally_def(&d);
	const char *bad[] = {"", "Upper", "has-dash", "has/slash",
			     "a23456789012345678901234567890123"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		d.name = bad[i];
		tu_assert_rc(st, evs_pm_new(st, &d, &pm), EVS_INVALID);
		ck_assert(pm == NULL);
	}
	tally_def(&d);
	d.decide = NULL;
	tu_assert_rc(st, evs_pm_new(st, &d, &pm), EVS_INVALID);
	tally_def(&d);
	d.state_size = 0;
	tu_assert_rc(st, evs_pm_new(st, &d, &pm), EVS_INVALID);
	tally_def(&d);
	d.ntypes = 1;
	tu_assert_rc(st, evs_pm_new(st, &d, &pm), EVS_INVALID);
	const char *empty[] = {""};
	d.types = empty;
	tu_assert_rc(st, evs_pm_new(st, &d, &pm), EVS_INVALID);
	tally_def(&d);
	tu_ok(st, evs_pm_new(st, &d, &pm));
	evs_pm_result r;
	tu_assert_rc(st, evs_pm_fire(pm, "a/b", "t", 1, 1, &r), EVS_INVALID);
	tu_assert_rc(st, evs_pm_fire(pm, "", "t", 1, 1, &r), EVS_INVALID);
	tu_assert_rc(st, evs_pm_fire(pm, "a", "t/x", 1, 1, &r), EVS_INVALID);
	tu_assert_rc(st, evs_pm_fire(pm, "a", "t", -1, 1, &r), EVS_INVALID);
	tu_assert_rc(st, evs_pm_resume(st, "tally", "a/b"), EVS_INVALID);
	tu_assert_rc(st, evs_pm_resume(st, "Tally", "a"), EVS_INVALID);
	evs_pm_run_opts ro;
	memset(&ro, 0, sizeof ro);
	ro.partitions = 2;
	ro.partition = 2;
	tu_assert_rc(st, evs_pm_run(&pm, 1, &ro), EVS_INVALID);
	/* a timer that is not set: stale, nothing happens */
	tu_ok(st, evs_pm_fire(pm, "a", "t", 1, 1, &r));
	ck_assert(r.skipped && !r.stepped);
	evs_pm_free(pm);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_plan,
		test_happy_path,
		test_out_of_stock,
		test_timeout_and_late_timer,
		test_double_start_and_late_event,
		test_rejection_compensates_in_reverse,
		test_declined_and_customer_cancel,
		test_partitions,
		test_parked_and_resumed,
		test_snapshots,
		test_bad_input,
		NULL,
	};

	return kit_main("pm", 600, tests);
}
