/*
 * orders.c - the order, stock and payment aggregates of the orders example
 * (see orders.h), on the public API and msgpack-c only.
 */
#include "orders.h"
#include "orders_internal.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- msgpack --------------------------------------------------------- */

int orders_mp(void *buf, size_t size, size_t *len, ...)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	va_list ap;
	uint32_t n = 0;
	const char *k;

	va_start(ap, len);
	while ((k = va_arg(ap, const char *)) != NULL) {
		int t = va_arg(ap, int);
		if (t == 's')
			(void)va_arg(ap, const char *);
		else
			(void)va_arg(ap, int64_t);
		n++;
	}
	va_end(ap);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, n);
	va_start(ap, len);
	while ((k = va_arg(ap, const char *)) != NULL) {
		int t = va_arg(ap, int);
		msgpack_pack_str(&pk, strlen(k));
		msgpack_pack_str_body(&pk, k, strlen(k));
		if (t == 's') {
			const char *v = va_arg(ap, const char *);
			msgpack_pack_str(&pk, strlen(v));
			msgpack_pack_str_body(&pk, v, strlen(v));
		} else {
			msgpack_pack_int64(&pk, va_arg(ap, int64_t));
		}
	}
	va_end(ap);
	int rc = sb.size <= size ? EVS_OK : EVS_EVENT_TOO_LARGE;
	if (rc == EVS_OK)
		memcpy(buf, sb.data, sb.size);
	*len = sb.size;
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static bool key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, name, n) == 0;
}

static void copy_str(const msgpack_object *v, char *out, size_t size)
{
	size_t n = v->via.str.size < size - 1 ? v->via.str.size : size - 1;
	memcpy(out, v->via.str.ptr, n);
	out[n] = 0;
}

int orders_fields_read(const void *data, size_t len, orders_fields *f)
{
	msgpack_zone z;
	msgpack_object o;
	size_t off = 0;
	int rc = EVS_OK;

	memset(f, 0, sizeof *f);
	if (data == NULL || len == 0)
		return EVS_OK;
	if (!msgpack_zone_init(&z, 512))
		return EVS_NOMEM;
	if (msgpack_unpack(data, len, &off, &z, &o) != MSGPACK_UNPACK_SUCCESS ||
	    o.type != MSGPACK_OBJECT_MAP) {
		rc = EVS_BAD_DATA;
		goto out;
	}
	for (uint32_t i = 0; i < o.via.map.size; i++) {
		const msgpack_object *k = &o.via.map.ptr[i].key, *v = &o.via.map.ptr[i].val;
		bool is_int = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
			      v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
		if (v->type == MSGPACK_OBJECT_STR) {
			if (key_is(k, "order"))
				copy_str(v, f->order, sizeof f->order);
			else if (key_is(k, "sku"))
				copy_str(v, f->sku, sizeof f->sku);
			else if (key_is(k, "reason"))
				copy_str(v, f->reason, sizeof f->reason);
		} else if (is_int && key_is(k, "qty")) {
			f->qty = v->via.i64;
		} else if (is_int && key_is(k, "amount")) {
			f->amount = v->via.i64;
		} else if (is_int && key_is(k, "stage")) {
			f->stage = v->via.i64;
		}
	}
out:
	msgpack_zone_destroy(&z);
	return rc;
}

bool orders_type_is(const evs_str *t, const char *name)
{
	return t->len == strlen(name) && memcmp(t->ptr, name, t->len) == 0;
}

static int emit(evs_decision *d, const char *type, const void *data, size_t len)
{
	evs_event_in ev;

	memset(&ev, 0, sizeof ev);
	ev.type = type;
	ev.data = data;
	ev.data_len = len;
	return evs_decision_emit(d, &ev);
}

static int reject(evs_decision *d, const char *fmt, const char *arg)
{
	char msg[256];
	snprintf(msg, sizeof msg, fmt, arg);
	return evs_decision_reject(d, msg);
}

/* ---- order ------------------------------------------------------------ */

typedef struct order_state {
	int status; /* 0 none, 1 placed, 2 shipped, 3 cancelled */
	bool held;
} order_state;

static const char *const order_names[] = {"none", "placed", "shipped", "cancelled"};

static int order_apply(void *ctx, void *state, const evs_event *ev)
{
	order_state *s = state;

	(void)ctx;
	if (orders_type_is(&ev->type, "OrderPlaced"))
		s->status = 1;
	else if (orders_type_is(&ev->type, "OrderShipped"))
		s->status = 2;
	else if (orders_type_is(&ev->type, "OrderCancelled"))
		s->status = 3;
	else if (orders_type_is(&ev->type, "OrderHeld"))
		s->held = true;
	return EVS_OK;
}

static int order_decide(void *ctx, const void *state, const void *command, evs_decision *d)
{
	const order_state *s = state;
	const evs_command *c = command;
	orders_fields f;
	uint8_t buf[512];
	size_t len;
	int rc;

	(void)ctx;
	if ((rc = orders_fields_read(c->data, c->data_len, &f)) != EVS_OK)
		return rc;
	if (strcmp(c->type, "PlaceOrder") == 0) {
		if (s->status != 0)
			return reject(d, "order is %s already", order_names[s->status]);
		if (!f.order[0] || !f.sku[0] || f.qty <= 0 || f.amount <= 0)
			return reject(d, "an order needs order, sku, qty > 0 and amount > 0%s", "");
		orders_mp(buf, sizeof buf, &len, "order", 's', f.order, "sku", 's', f.sku, "qty",
			  'i', f.qty, "amount", 'i', f.amount, NULL);
		return emit(d, "OrderPlaced", buf, len);
	}
	if (s->status == 0)
		return reject(d, "order does not exist%s", "");
	if (strcmp(c->type, "ShipOrder") == 0) {
		if (s->status != 1)
			return reject(d, "order is %s", order_names[s->status]);
		if (s->held)
			return reject(d, "order is on hold%s", "");
		return emit(d, "OrderShipped", NULL, 0);
	}
	if (strcmp(c->type, "CancelOrder") == 0) {
		if (s->status == 3)
			return EVS_OK;
		if (s->status == 2)
			return reject(d, "order is shipped%s", "");
		orders_mp(buf, sizeof buf, &len, "reason", 's',
			  f.reason[0] ? f.reason : "cancelled", NULL);
		return emit(d, "OrderCancelled", buf, len);
	}
	if (strcmp(c->type, "HoldOrder") == 0)
		return s->status == 1 && !s->held ? emit(d, "OrderHeld", NULL, 0) : EVS_OK;
	return reject(d, "unknown order command \"%s\"", c->type);
}

/* ---- stock ------------------------------------------------------------ */

typedef struct stock_state {
	int64_t available;
} stock_state;

static int stock_apply(void *ctx, void *state, const evs_event *ev)
{
	stock_state *s = state;
	orders_fields f;
	int rc;

	(void)ctx;
	if ((rc = orders_fields_read(ev->data, ev->data_len, &f)) != EVS_OK)
		return rc;
	if (orders_type_is(&ev->type, "StockAdded") || orders_type_is(&ev->type, "StockReleased"))
		s->available += f.qty;
	else if (orders_type_is(&ev->type, "StockReserved"))
		s->available -= f.qty;
	return EVS_OK;
}

static int stock_decide(void *ctx, const void *state, const void *command, evs_decision *d)
{
	const stock_state *s = state;
	const evs_command *c = command;
	orders_fields f;
	uint8_t buf[512];
	size_t len;
	int rc;

	(void)ctx;
	if ((rc = orders_fields_read(c->data, c->data_len, &f)) != EVS_OK)
		return rc;
	if (f.qty <= 0)
		return reject(d, "qty must be above 0 (%s)", c->type);
	if (strcmp(c->type, "AddStock") == 0) {
		orders_mp(buf, sizeof buf, &len, "qty", 'i', f.qty, NULL);
		return emit(d, "StockAdded", buf, len);
	}
	if (!f.order[0])
		return reject(d, "%s needs an order", c->type);
	if (strcmp(c->type, "ReserveStock") == 0) {
		if (s->available < f.qty) {
			orders_mp(buf, sizeof buf, &len, "order", 's', f.order, "qty", 'i', f.qty,
				  "reason", 's', "out of stock", NULL);
			return emit(d, "ReserveFailed", buf, len);
		}
		orders_mp(buf, sizeof buf, &len, "order", 's', f.order, "qty", 'i', f.qty, NULL);
		return emit(d, "StockReserved", buf, len);
	}
	if (strcmp(c->type, "ReleaseStock") == 0) {
		orders_mp(buf, sizeof buf, &len, "order", 's', f.order, "qty", 'i', f.qty, NULL);
		return emit(d, "StockReleased", buf, len);
	}
	return reject(d, "unknown stock command \"%s\"", c->type);
}

/* ---- payment ---------------------------------------------------------- */

typedef struct payment_state {
	int status; /* index into payment_names */
	char order[ORDERS_MAX_ID + 1];
} payment_state;

static const char *const payment_names[] = {"none",     "requested", "captured",
					    "declined", "refunded",  "voided"};
static const char *const payment_events[] = {"",
					     "PaymentRequested",
					     "PaymentCaptured",
					     "PaymentDeclined",
					     "PaymentRefunded",
					     "PaymentVoided"};

static int payment_apply(void *ctx, void *state, const evs_event *ev)
{
	payment_state *s = state;

	(void)ctx;
	for (int i = 1; i < 6; i++)
		if (orders_type_is(&ev->type, payment_events[i])) {
			orders_fields f;
			s->status = i;
			if (i == 1 && orders_fields_read(ev->data, ev->data_len, &f) == EVS_OK)
				memcpy(s->order, f.order, sizeof s->order);
		}
	return EVS_OK;
}

static int payment_emit(evs_decision *d, int status, const char *order)
{
	uint8_t buf[256];
	size_t len;

	orders_mp(buf, sizeof buf, &len, "order", 's', order, NULL);
	return emit(d, payment_events[status], buf, len);
}

static int payment_decide(void *ctx, const void *state, const void *command, evs_decision *d)
{
	const payment_state *s = state;
	const evs_command *c = command;
	orders_fields f;
	uint8_t buf[256];
	size_t len;
	int rc;

	(void)ctx;
	if ((rc = orders_fields_read(c->data, c->data_len, &f)) != EVS_OK)
		return rc;
	if (strcmp(c->type, "RequestPayment") == 0) {
		if (s->status != 0)
			return EVS_OK;
		if (!f.order[0] || f.amount <= 0)
			return reject(d, "a payment needs an order and amount > 0%s", "");
		orders_mp(buf, sizeof buf, &len, "order", 's', f.order, "amount", 'i', f.amount,
			  NULL);
		return emit(d, "PaymentRequested", buf, len);
	}
	if (strcmp(c->type, "CapturePayment") == 0 || strcmp(c->type, "DeclinePayment") == 0) {
		if (s->status != 1)
			return reject(d, "payment is %s", payment_names[s->status]);
		return payment_emit(d, c->type[0] == 'C' ? 2 : 3, s->order);
	}
	if (strcmp(c->type, "CancelPayment") == 0) {
		if (s->status == 2)
			return payment_emit(d, 4, s->order);
		if (s->status == 1)
			return payment_emit(d, 5, s->order);
		return EVS_OK;
	}
	return reject(d, "unknown payment command \"%s\"", c->type);
}

/* ---- binding ------------------------------------------------------------ */

static int agg_new(evs_store *s, const char *name, size_t size,
		   int (*apply)(void *, void *, const evs_event *),
		   int (*decide)(void *, const void *, const void *, evs_decision *),
		   evs_aggregate **out)
{
	evs_aggregate_def def;

	memset(&def, 0, sizeof def);
	def.name = name;
	def.state_size = size;
	def.apply = apply;
	def.decide = decide;
	return evs_aggregate_new(s, &def, out);
}

int orders_open(orders *o, evs_store *store, int64_t payment_timeout_ns)
{
	evs_pm_def def;
	int rc;

	memset(o, 0, sizeof *o);
	o->store = store;
	o->payment_timeout = payment_timeout_ns;
	if ((rc = agg_new(store, "order", sizeof(order_state), order_apply, order_decide,
			  &o->order)) != EVS_OK ||
	    (rc = agg_new(store, "stock", sizeof(stock_state), stock_apply, stock_decide,
			  &o->stock)) != EVS_OK ||
	    (rc = agg_new(store, "payment", sizeof(payment_state), payment_apply, payment_decide,
			  &o->payment)) != EVS_OK)
		goto fail;
	orders_pm_def(o, &def);
	if ((rc = evs_pm_new(store, &def, &o->pm)) != EVS_OK)
		goto fail;
	return EVS_OK;
fail:
	orders_close(o);
	return rc;
}

void orders_close(orders *o)
{
	evs_pm_free(o->pm);
	evs_aggregate_free(o->order);
	evs_aggregate_free(o->stock);
	evs_aggregate_free(o->payment);
	memset(o, 0, sizeof *o);
}

static int exec(evs_aggregate *a, const char *prefix, const char *id, const char *type,
		const void *data, size_t len)
{
	char stream[EVS_MAX_NAME + 1];
	evs_command c = {type, data, len};

	if (snprintf(stream, sizeof stream, "%s-%s", prefix, id) >= (int)sizeof stream)
		return EVS_BAD_STREAM;
	return evs_execute(a, stream, &c, NULL);
}

int orders_place(orders *o, const char *order, const char *sku, int64_t qty, int64_t amount)
{
	uint8_t buf[512];
	size_t len;

	if (orders_mp(buf, sizeof buf, &len, "order", 's', order, "sku", 's', sku, "qty", 'i', qty,
		      "amount", 'i', amount, NULL) != EVS_OK)
		return EVS_INVALID;
	return exec(o->order, "order", order, "PlaceOrder", buf, len);
}

int orders_add_stock(orders *o, const char *sku, int64_t qty)
{
	uint8_t buf[64];
	size_t len;

	orders_mp(buf, sizeof buf, &len, "qty", 'i', qty, NULL);
	return exec(o->stock, "stock", sku, "AddStock", buf, len);
}

int orders_capture(orders *o, const char *order)
{
	return exec(o->payment, "payment", order, "CapturePayment", NULL, 0);
}

int orders_decline(orders *o, const char *order)
{
	return exec(o->payment, "payment", order, "DeclinePayment", NULL, 0);
}

int orders_hold(orders *o, const char *order)
{
	return exec(o->order, "order", order, "HoldOrder", NULL, 0);
}

int orders_cancel(orders *o, const char *order, const char *reason)
{
	uint8_t buf[256];
	size_t len;

	if (orders_mp(buf, sizeof buf, &len, "reason", 's', reason, NULL) != EVS_OK)
		return EVS_INVALID;
	return exec(o->order, "order", order, "CancelOrder", buf, len);
}

/* Load "<prefix>-<id>" from a, one of o's three aggregates, and read what
 * its getter below returns: the units available of a stock, the status of
 * an order or of a payment. */
static int peek(orders *o, evs_aggregate *a, const char *prefix, const char *id, int64_t *available,
		const char **status)
{
	char stream[EVS_MAX_NAME + 1];
	union {
		stock_state stock;
		order_state order;
		payment_state payment;
	} s;
	int rc;

	snprintf(stream, sizeof stream, "%s-%s", prefix, id);
	if ((rc = evs_aggregate_load(a, stream, NULL, &s, NULL)) != EVS_OK)
		return rc;
	if (a == o->stock)
		*available = s.stock.available;
	else if (a == o->order)
		*status = order_names[s.order.status];
	else
		*status = payment_names[s.payment.status];
	evs_aggregate_release(a, &s);
	return EVS_OK;
}

int orders_stock_available(orders *o, const char *sku, int64_t *available)
{
	return peek(o, o->stock, "stock", sku, available, NULL);
}

int orders_order_status(orders *o, const char *order, const char **status)
{
	return peek(o, o->order, "order", order, NULL, status);
}

int orders_payment_status(orders *o, const char *order, const char **status)
{
	return peek(o, o->payment, "payment", order, NULL, status);
}
