/*
 * append_ex.c - evs_append_ex(): several streams, checkpoint writes and an
 * append condition in one group-commit request (contract K4 of issue 12).
 * The request is checked and encoded by batch.c, queued by append.c and
 * applied by group.c like any other; this file only hands the caller its
 * parts' results and the conflicting position.
 */
#include <string.h>

#include "append_internal.h"

int evs_append_ex(evs_store *s, const evs_append_part *parts, size_t nparts,
		  const evs_checkpoint_write *cks, size_t ncks, const evs_condition *cond,
		  evs_append_result *results, uint64_t *conflict)
{
	evs__req q;
	int rc;

	memset(&q, 0, sizeof q);
	if (results && nparts)
		memset(results, 0, nparts * sizeof *results);
	if (conflict)
		*conflict = 0;
	if (s == NULL)
		return EVS_INVALID;
	rc = evs__append_run(s, &q, parts, nparts, cks, ncks, cond, true);
	if (results)
		for (size_t i = 0; i < q.nparts && i < nparts; i++)
			results[i] = q.parts[i].res;
	if (conflict && rc == EVS_CONDITION_FAILED)
		*conflict = q.conflict;
	evs__batch_free(&q);
	return rc;
}
