/*
 * store_source.c - source=store: the state of a stream replayed from the
 * LMDB store on this host (evs_state_load, the generic merge-patch
 * aggregate, using its snapshots), for auditors who want the answer from
 * the system of record rather than from the read model.
 *
 * Time: as_of T (microseconds, as in PostgreSQL) covers the events
 * recorded at or before the last nanosecond of T's microsecond, which is
 * what evs.state_at() answers from recorded_at truncated to microseconds;
 * so both sources agree. The store's times are int64 nanoseconds
 * (1677..2262) while as_of is any RFC 3339 time (0001..9999): a time
 * whose last nanosecond is past the last representable one covers
 * everything, one before the first covers nothing (never an overflow).
 * The answer's "position" is the store's head read after the load (the
 * state reflects no event past it).
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* The store time covering as_of us: the last nanosecond of its
 * microsecond, saturated to INT64_MAX past the store's range; false when
 * it lies before the range (no event can be at or before it). */
static bool as_of_ns(int64_t us, int64_t *ns)
{
	if (__builtin_mul_overflow(us + 1, (int64_t)1000, ns)) {
		*ns = INT64_MAX;
		return us > 0;
	}
	*ns -= 1;
	return true;
}

unsigned evsq__state_from_store(evs_store *store, const char *stream, const char *as_of,
				int64_t at_position, evs__buf *body)
{
	evs_at at = {.kind = EVS_AT_LATEST};
	evs_stream_info sh;
	evs_store_info head;
	evs_state st = {0};
	char msg[512];
	bool before_all = false;
	int rc;

	if (as_of) {
		at.kind = EVS_AT_TIME;
		before_all = !as_of_ns(evsq__rfc3339_us(as_of), &at.time);
	} else if (at_position >= 0) {
		at.kind = EVS_AT_POSITION;
		at.position = (uint64_t)at_position;
	}
	rc = evs_stream_head(store, stream, &sh);
	if (rc == EVS_NOT_FOUND) {
		snprintf(msg, sizeof msg, "stream \"%.200s\" not found", stream);
		evsq__error(body, "not_found", msg);
		return 404;
	}
	if (rc == EVS_OK && !before_all)
		rc = evs_state_load(store, stream, &at, &st);
	if (rc == EVS_BAD_STREAM) {
		snprintf(msg, sizeof msg, "invalid stream id \"%.200s\": %s", stream,
			 evs_strerror(rc));
		evsq__error(body, "bad_request", msg);
		return 400;
	}
	if (rc != EVS_OK) {
		snprintf(msg, sizeof msg, "could not load \"%.200s\" from the store: %s", stream,
			 evs_strerror(rc));
		evsq__error(body, "internal", msg);
		return 500;
	}
	if (st.version == 0) {
		snprintf(msg, sizeof msg, "stream \"%.200s\" has no events at or before %s", stream,
			 as_of ? "as_of" : "at_position");
		evsq__error(body, "not_found", msg);
		evs_state_free(&st);
		return 404;
	}
	if (evs_head(store, &head) != EVS_OK) {
		evs_state_free(&st);
		evsq__error(body, "internal", "could not read the store's head");
		return 500;
	}
	body->len = 0;
	evs__buf_puts(body, "{\"stream\":");
	evsq__json_str(body, stream);
	evs__buf_printf(body,
			",\"source\":\"store\",\"position\":%llu,\"version\":%llu,"
			"\"event_position\":%llu,\"fold\":\"json_merge_patch\",\"data\":",
			(unsigned long long)head.last_position, (unsigned long long)st.version,
			(unsigned long long)st.position);
	if (evs__msgpack_to_json(body, st.data, st.len, 0) < 0) {
		evs_state_free(&st);
		evsq__error(body, "internal", "state does not decode");
		return 500;
	}
	evs__buf_puts(body, "}\n");
	evs_state_free(&st);
	return 200;
}
