/*
 * orders_internal.h - what the files of the orders example share.
 */
#ifndef ORDERS_INTERNAL_H
#define ORDERS_INTERNAL_H

#include "orders.h"

/* The fields of a command's or event's data the example reads. */
typedef struct orders_fields {
	char order[ORDERS_MAX_ID + 1];
	char sku[ORDERS_MAX_ID + 1];
	char reason[128];
	int64_t qty, amount, stage;
} orders_fields;

int orders_fields_read(const void *data, size_t len, orders_fields *f);
bool orders_type_is(const evs_str *t, const char *name);

/* The process manager's definition (orders_process.c); o->aggs filled. */
void orders_pm_def(orders *o, evs_pm_def *def);

#endif /* ORDERS_INTERNAL_H */
