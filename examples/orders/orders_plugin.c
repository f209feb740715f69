/*
 * orders_plugin.c - the orders example as a plugin of `evs pm run`
 * (evstore_pm.h, "plugins"). --plugin-arg: the payment timeout in
 * seconds (default 900).
 */
#include "orders.h"

#include <stdlib.h>
#include <string.h>

int evs_pm_plugin_open(evs_store *store, const char *arg, evs_pm **pms, size_t max, size_t *n,
		       void **state);
void evs_pm_plugin_close(void *state);

int evs_pm_plugin_open(evs_store *store, const char *arg, evs_pm **pms, size_t max, size_t *n,
		       void **state)
{
	int64_t seconds = 900;
	orders *o;
	int rc;

	if (arg != NULL) {
		char *end;
		long long v = strtoll(arg, &end, 10);
		if (*arg == 0 || *end != 0 || v <= 0 || v > 86400 * 365)
			return EVS_INVALID;
		seconds = v;
	}
	if (max < 1)
		return EVS_INVALID;
	if ((o = calloc(1, sizeof *o)) == NULL)
		return EVS_NOMEM;
	if ((rc = orders_open(o, store, seconds * 1000000000)) != EVS_OK) {
		free(o);
		return rc;
	}
	pms[0] = o->pm;
	*n = 1;
	*state = o;
	return EVS_OK;
}

void evs_pm_plugin_close(void *state)
{
	orders *o = state;

	if (o == NULL)
		return;
	orders_close(o);
	free(o);
}
