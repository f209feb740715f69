/*
 * orders.h - an example domain with a process manager (issue 14): orders,
 * stock and payments, and the order process that drives them.
 *
 * Aggregates (public API only; each decide() takes a `const evs_command *`):
 *
 *   "order-<id>"    PlaceOrder {order, sku, qty, amount} -> OrderPlaced
 *                   ShipOrder {} -> OrderShipped
 *                   CancelOrder {reason} -> OrderCancelled (nothing when
 *                   cancelled already; rejected once shipped)
 *                   HoldOrder {} -> OrderHeld (a held order cannot ship)
 *   "stock-<sku>"   AddStock {qty} -> StockAdded
 *                   ReserveStock {order, qty} -> StockReserved, or
 *                   ReserveFailed {order, qty, reason} when too few left
 *                   ReleaseStock {order, qty} -> StockReleased
 *   "payment-<id>"  RequestPayment {order, amount} -> PaymentRequested
 *                   CapturePayment {} -> PaymentCaptured (the provider's
 *                   answer, from outside: a relay delivers the request)
 *                   DeclinePayment {} -> PaymentDeclined
 *                   CancelPayment {} -> PaymentRefunded when captured,
 *                   PaymentVoided when requested, else nothing
 *
 * The process "orders" (one instance per order id):
 *   OrderPlaced     -> ReserveStock (undo: ReleaseStock)
 *   StockReserved   -> RequestPayment (undo: CancelPayment), timer
 *                      "payment" due after the payment timeout
 *   ReserveFailed   -> CancelOrder; failed
 *   PaymentCaptured -> cancel the timer; ShipOrder
 *   OrderShipped    -> completed
 *   PaymentDeclined, timer "payment", OrderCancelled (by the customer),
 *   ShipOrder rejected (a held order)
 *                   -> compensate (CancelPayment, then ReleaseStock),
 *                      CancelOrder; failed
 *
 * The process logic is a pure function (orders_plan) from the instance
 * state and an input to a plan; decide() only turns the plan into calls.
 */
#ifndef ORDERS_H
#define ORDERS_H

#include <stdbool.h>
#include <stdint.h>

#include <evstore.h>
#include <evstore_pm.h>

#define ORDERS_MAX_ID 63

/* ---- the process: state, inputs, plans (pure) ------------------------ */

enum orders_stage {
	ORDERS_NEW = 0,
	ORDERS_RESERVING, /* ReserveStock issued */
	ORDERS_PAYING,    /* RequestPayment issued, timer set */
	ORDERS_SHIPPING,  /* ShipOrder issued */
	ORDERS_DONE,      /* shipped */
	ORDERS_CANCELLED  /* failed: cancelled and compensated */
};

typedef struct orders_proc {
	int stage; /* enum orders_stage */
	char order[ORDERS_MAX_ID + 1];
	char sku[ORDERS_MAX_ID + 1];
	int64_t qty, amount;
	char reason[128];
} orders_proc;

/* What reached the process (decoded from the evs_pm_input). */
enum orders_in {
	ORDERS_IN_PLACED = 1,
	ORDERS_IN_RESERVED,
	ORDERS_IN_RESERVE_FAILED,
	ORDERS_IN_CAPTURED,
	ORDERS_IN_DECLINED,
	ORDERS_IN_SHIPPED,
	ORDERS_IN_CANCELLED, /* the customer cancelled */
	ORDERS_IN_TIMEOUT,   /* timer "payment" */
	ORDERS_IN_REJECTED   /* one of the process's commands was rejected */
};

typedef struct orders_input {
	int kind; /* enum orders_in */
	const char *order, *sku;
	int64_t qty, amount;
	const char *reason; /* rejection reason */
	int64_t now;
} orders_input;

enum orders_cmd {
	ORDERS_C_NONE = 0,
	ORDERS_C_RESERVE,
	ORDERS_C_REQUEST_PAYMENT,
	ORDERS_C_SHIP,
	ORDERS_C_CANCEL_ORDER
};

/* What the process does about an input. */
typedef struct orders_plan {
	bool accept;    /* emit OrderProcessStarted (the order's terms) */
	int command;    /* enum orders_cmd */
	bool set_timer; /* timer "payment" at timer_due */
	int64_t timer_due;
	bool cancel_timer;
	bool compensate;   /* undo the earlier commands (reverse order) */
	bool cancel_order; /* CancelOrder after compensating */
	bool complete, fail;
	char reason[128];
	int stage; /* the new stage (emitted as OrderProcessMoved) */
} orders_plan;

/* The process logic. payment_timeout in ns. */
void orders_plan_next(const orders_proc *p, const orders_input *in, int64_t payment_timeout,
		      orders_plan *out);
/* Fold one of the process's own events (evolve). */
int orders_proc_evolve(orders_proc *p, const evs_event *ev);

/* ---- the domain -------------------------------------------------------- */

typedef struct orders {
	evs_store *store;
	evs_aggregate *order, *stock, *payment;
	evs_aggregate *aggs[3]; /* the three, for the manager's definition */
	evs_pm *pm;
	int64_t payment_timeout;
} orders;

/* Bind the aggregates and the process manager "orders" to a store. */
int orders_open(orders *o, evs_store *store, int64_t payment_timeout_ns);
void orders_close(orders *o);

/* Commands from outside the process (customers, the payment provider).
 * EVS_OK, EVS_REJECTED (evs_errmsg says why) or a failure. */
int orders_place(orders *o, const char *order, const char *sku, int64_t qty, int64_t amount);
int orders_add_stock(orders *o, const char *sku, int64_t qty);
int orders_capture(orders *o, const char *order);
int orders_decline(orders *o, const char *order);
int orders_hold(orders *o, const char *order);
int orders_cancel(orders *o, const char *order, const char *reason);

/* Available units of a sku; the state of an order ("none", "placed",
 * "shipped", "cancelled") and of its payment ("none", "requested",
 * "captured", "declined", "refunded", "voided"). */
int orders_stock_available(orders *o, const char *sku, int64_t *available);
int orders_order_status(orders *o, const char *order, const char **status);
int orders_payment_status(orders *o, const char *order, const char **status);

/* A msgpack map of string keys and values (str or int) for commands:
 * orders_mp(buf, size, &len, "order", 's', "o1", "qty", 'i', (int64_t)2, NULL). */
int orders_mp(void *buf, size_t size, size_t *len, ...);

#endif /* ORDERS_H */
