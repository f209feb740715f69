/*
 * orders_process.c - the order process (process manager "orders"): the
 * pure plan, its own events, and the callbacks that bind them to
 * evstore_pm.h.
 *
 * Own events: OrderProcessStarted {order, sku, qty, amount},
 * OrderProcessMoved {stage: int, reason: str}.
 */
#include "orders_internal.h"

#include <stdio.h>
#include <string.h>

/* ---- the plan (pure) ---------------------------------------------------- */

static void set_reason(orders_plan *out, const char *r)
{
	snprintf(out->reason, sizeof out->reason, "%s", r ? r : "");
}

/* Undo what was done, cancel the order, fail. */
static void give_up(const orders_proc *p, orders_plan *out, const char *reason, bool cancel)
{
	out->compensate = p->stage == ORDERS_PAYING || p->stage == ORDERS_SHIPPING;
	out->cancel_order = cancel;
	out->fail = true;
	out->stage = ORDERS_CANCELLED;
	set_reason(out, reason);
}

void orders_plan_next(const orders_proc *p, const orders_input *in, int64_t payment_timeout,
		      orders_plan *out)
{
	memset(out, 0, sizeof *out);
	out->stage = p->stage;
	switch (in->kind) {
	case ORDERS_IN_PLACED:
		if (p->stage != ORDERS_NEW)
			return;
		out->accept = true;
		out->command = ORDERS_C_RESERVE;
		out->stage = ORDERS_RESERVING;
		return;
	case ORDERS_IN_RESERVED:
		if (p->stage != ORDERS_RESERVING)
			return;
		out->command = ORDERS_C_REQUEST_PAYMENT;
		out->set_timer = true;
		out->timer_due = in->now + payment_timeout;
		out->stage = ORDERS_PAYING;
		return;
	case ORDERS_IN_RESERVE_FAILED:
		if (p->stage == ORDERS_RESERVING) /* nothing reserved: nothing to undo */
			give_up(p, out, "out of stock", true);
		return;
	case ORDERS_IN_CAPTURED:
		if (p->stage != ORDERS_PAYING)
			return;
		out->cancel_timer = true;
		out->command = ORDERS_C_SHIP;
		out->stage = ORDERS_SHIPPING;
		return;
	case ORDERS_IN_SHIPPED:
		if (p->stage != ORDERS_SHIPPING)
			return;
		out->complete = true;
		out->stage = ORDERS_DONE;
		return;
	case ORDERS_IN_DECLINED:
	case ORDERS_IN_TIMEOUT:
		if (p->stage == ORDERS_PAYING)
			give_up(p, out,
				in->kind == ORDERS_IN_TIMEOUT ? "payment timeout"
							      : "payment declined",
				true);
		return;
	case ORDERS_IN_CANCELLED:
		if (p->stage == ORDERS_RESERVING || p->stage == ORDERS_PAYING)
			give_up(p, out, "cancelled by the customer", false);
		return;
	case ORDERS_IN_REJECTED:
		if (p->stage != ORDERS_DONE && p->stage != ORDERS_CANCELLED)
			give_up(p, out, in->reason, true);
		return;
	default: return;
	}
}

int orders_proc_evolve(orders_proc *p, const evs_event *ev)
{
	orders_fields f;
	int rc;

	if (!orders_type_is(&ev->type, "OrderProcessStarted") &&
	    !orders_type_is(&ev->type, "OrderProcessMoved"))
		return EVS_OK; /* the library's pm.* events */
	if ((rc = orders_fields_read(ev->data, ev->data_len, &f)) != EVS_OK)
		return rc;
	if (orders_type_is(&ev->type, "OrderProcessStarted")) {
		memcpy(p->order, f.order, sizeof p->order);
		memcpy(p->sku, f.sku, sizeof p->sku);
		p->qty = f.qty;
		p->amount = f.amount;
	} else {
		p->stage = (int)f.stage;
		memcpy(p->reason, f.reason, sizeof p->reason);
	}
	return EVS_OK;
}

/* ---- binding to evstore_pm.h ---------------------------------------------- */

static const struct {
	const char *type;
	int kind;
} inputs[] = {
	{"OrderPlaced", ORDERS_IN_PLACED},           {"StockReserved", ORDERS_IN_RESERVED},
	{"ReserveFailed", ORDERS_IN_RESERVE_FAILED}, {"PaymentCaptured", ORDERS_IN_CAPTURED},
	{"PaymentDeclined", ORDERS_IN_DECLINED},     {"OrderShipped", ORDERS_IN_SHIPPED},
	{"OrderCancelled", ORDERS_IN_CANCELLED},
};

static int input_kind(const evs_event *ev)
{
	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
		if (orders_type_is(&ev->type, inputs[i].type))
			return inputs[i].kind;
	return 0;
}

/* The order id of an input event: the stream's suffix for order streams,
 * else the data's "order". */
static bool order_of(const evs_event *ev, char *out, size_t size)
{
	orders_fields f;

	if (ev->stream.len > 6 && memcmp(ev->stream.ptr, "order-", 6) == 0) {
		if (ev->stream.len - 6 >= size || ev->stream.len - 6 > ORDERS_MAX_ID)
			return false;
		memcpy(out, ev->stream.ptr + 6, ev->stream.len - 6);
		out[ev->stream.len - 6] = 0;
		return true;
	}
	if (orders_fields_read(ev->data, ev->data_len, &f) != EVS_OK || !f.order[0])
		return false;
	snprintf(out, size, "%s", f.order);
	return true;
}

static int correlate(void *ctx, const evs_event *ev, char *instance)
{
	int kind = input_kind(ev);

	(void)ctx;
	if (kind == 0 || !order_of(ev, instance, EVS_PM_MAX_INSTANCE + 1))
		return EVS_PM_IGNORE;
	return kind == ORDERS_IN_PLACED ? EVS_PM_START : EVS_PM_CONTINUE;
}

static int evolve(void *ctx, void *state, const evs_event *ev)
{
	(void)ctx;
	return orders_proc_evolve(state, ev);
}

static int command(evs_pm_step *st, const char *agg, const char *stream, const char *type,
		   const void *data, size_t len, const char *utype, const void *udata, size_t ulen)
{
	evs_command c = {type, data, len}, u = {utype, udata, ulen};
	return evs_pm_command(st, agg, stream, &c, utype ? &u : NULL);
}

static int decide(void *ctx, const void *state, const evs_pm_input *in, evs_pm_step *st)
{
	const orders *o = ctx;
	const orders_proc *p = state;
	char stream[EVS_MAX_NAME + 1];
	uint8_t buf[512], ubuf[512];
	size_t len, ulen;
	orders_fields f;
	orders_input oi;
	orders_plan plan;
	int rc = EVS_OK;

	memset(&oi, 0, sizeof oi);
	memset(&f, 0, sizeof f);
	oi.now = in->now;
	if (in->kind == EVS_PM_EVENT) {
		oi.kind = input_kind(in->event);
		if ((rc = orders_fields_read(in->event->data, in->event->data_len, &f)) != EVS_OK)
			return rc;
	} else if (in->kind == EVS_PM_TIMER) {
		oi.kind = strcmp(in->timer, "payment") == 0 ? ORDERS_IN_TIMEOUT : 0;
	} else {
		oi.kind = ORDERS_IN_REJECTED;
		oi.reason = in->reason;
	}
	oi.order = in->instance;
	oi.sku = f.sku;
	oi.qty = f.qty;
	oi.amount = f.amount;
	if (in->status == EVS_PM_COMPLETED || in->status == EVS_PM_FAILED)
		return EVS_OK;
	orders_plan_next(p, &oi, o->payment_timeout, &plan);

	if (plan.accept) {
		orders_mp(buf, sizeof buf, &len, "order", 's', in->instance, "sku", 's', f.sku,
			  "qty", 'i', f.qty, "amount", 'i', f.amount, NULL);
		rc = evs_pm_emit(st, "OrderProcessStarted", buf, len);
	}
	if (rc == EVS_OK && plan.compensate && in->status == EVS_PM_RUNNING)
		rc = evs_pm_compensate(st, plan.reason);
	if (rc == EVS_OK && plan.command == ORDERS_C_RESERVE) {
		snprintf(stream, sizeof stream, "stock-%s", p->sku);
		orders_mp(buf, sizeof buf, &len, "order", 's', p->order, "qty", 'i', p->qty, NULL);
		rc = command(st, "stock", stream, "ReserveStock", buf, len, "ReleaseStock", buf,
			     len);
	} else if (rc == EVS_OK && plan.command == ORDERS_C_REQUEST_PAYMENT) {
		snprintf(stream, sizeof stream, "payment-%s", p->order);
		orders_mp(buf, sizeof buf, &len, "order", 's', p->order, "amount", 'i', p->amount,
			  NULL);
		orders_mp(ubuf, sizeof ubuf, &ulen, NULL);
		rc = command(st, "payment", stream, "RequestPayment", buf, len, "CancelPayment",
			     ubuf, ulen);
	} else if (rc == EVS_OK && plan.command == ORDERS_C_SHIP) {
		snprintf(stream, sizeof stream, "order-%s", p->order);
		rc = command(st, "order", stream, "ShipOrder", NULL, 0, NULL, NULL, 0);
	}
	if (rc == EVS_OK && plan.cancel_order) {
		snprintf(stream, sizeof stream, "order-%s", in->instance);
		orders_mp(buf, sizeof buf, &len, "reason", 's', plan.reason, NULL);
		rc = command(st, "order", stream, "CancelOrder", buf, len, NULL, NULL, 0);
	}
	if (rc == EVS_OK && plan.set_timer)
		rc = evs_pm_timer_set(st, "payment", plan.timer_due);
	if (rc == EVS_OK && plan.cancel_timer)
		rc = evs_pm_timer_cancel(st, "payment");
	if (rc == EVS_OK && plan.stage != p->stage) {
		orders_mp(buf, sizeof buf, &len, "stage", 'i', (int64_t)plan.stage, "reason", 's',
			  plan.reason, NULL);
		rc = evs_pm_emit(st, "OrderProcessMoved", buf, len);
	}
	if (rc == EVS_OK && plan.complete)
		rc = evs_pm_complete(st);
	if (rc == EVS_OK && plan.fail)
		rc = evs_pm_fail(st, plan.reason);
	return rc;
}

static const char *const input_types[] = {"OrderPlaced",     "StockReserved",   "ReserveFailed",
					  "PaymentCaptured", "PaymentDeclined", "OrderShipped",
					  "OrderCancelled"};

void orders_pm_def(orders *o, evs_pm_def *def)
{
	o->aggs[0] = o->order;
	o->aggs[1] = o->stock;
	o->aggs[2] = o->payment;
	memset(def, 0, sizeof *def);
	def->name = "orders";
	def->state_size = sizeof(orders_proc);
	def->ctx = o;
	def->correlate = correlate;
	def->decide = decide;
	def->evolve = evolve;
	def->aggregates = o->aggs;
	def->naggregates = 3;
	def->types = input_types;
	def->ntypes = sizeof input_types / sizeof input_types[0];
}
