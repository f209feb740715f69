/*
 * pm_shim.c - TEMPORARY stand-in for evs_append_ex() until branch dcb
 * (issue 12, contract K4) is merged: a weak definition the real one
 * replaces. NOT atomic (checks the expected versions, then appends part
 * by part, then writes the checkpoints): enough for the pure and
 * single-runner tests, not for the crash test. Deleted at the merge.
 */
#include "internal.h"

__attribute__((weak)) int evs_append_ex(evs_store *s, const evs_append_part *parts, size_t nparts,
					const evs_checkpoint_write *cps, size_t ncps,
					const evs_condition *cond, evs_append_result *results,
					uint64_t *conflict)
{
	evs_append_result tmp;
	int rc;

	(void)cond;
	(void)conflict;
	for (size_t i = 0; i < nparts; i++) {
		evs_stream_info h;
		rc = evs_stream_head(s, parts[i].stream, &h);
		if (rc == EVS_NOT_FOUND)
			h.version = 0;
		else if (rc != EVS_OK)
			return rc;
		if (parts[i].expected != EVS_ANY && parts[i].expected != h.version) {
			if (results)
				results[i].version = h.version;
			return EVS_WRONG_VERSION;
		}
	}
	for (size_t i = 0; i < nparts; i++) {
		rc = evs_append(s, parts[i].stream, parts[i].expected, parts[i].events, parts[i].n,
				results ? &results[i] : &tmp);
		if (rc != EVS_OK)
			return rc;
	}
	for (size_t i = 0; i < ncps; i++) {
		rc = cps[i].remove ? evs_checkpoint_delete(s, cps[i].name)
				   : evs_checkpoint_set(s, cps[i].name, cps[i].position);
		if (rc != EVS_OK && rc != EVS_NOT_FOUND)
			return rc;
	}
	return EVS_OK;
}
