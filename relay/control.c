/*
 * control.c - a sink's records in the store's checkpoints (see control.h).
 */
#include <stdio.h>
#include <string.h>

#include "control.h"

const char *rly_state_name(int state)
{
	switch (state) {
	case RLY_RUNNING: return "running";
	case RLY_PAUSED: return "paused";
	case RLY_DEAD: return "dead";
	}
	return "unknown";
}

bool rly_sink_name_ok(const char *name, const char **why)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0) {
		*why = "it is empty";
		return false;
	}
	if (n > RLY_MAX_SINK_NAME) {
		*why = "it is longer than 64 characters";
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-')) {
			*why = "only letters, digits, '.', '_' and '-' are allowed";
			return false;
		}
	}
	return true;
}

void rly_key(char out[RLY_KEY_MAX], const char *sink, const char *suffix)
{
	snprintf(out, RLY_KEY_MAX, "relay/%s%s", sink, suffix);
}

static int get(evs_store *st, const char *sink, const char *suffix, uint64_t *v, bool *found)
{
	char key[RLY_KEY_MAX];
	int rc;

	rly_key(key, sink, suffix);
	rc = evs_checkpoint_get(st, key, v);
	if (found)
		*found = rc == EVS_OK;
	return rc == EVS_NOT_FOUND ? EVS_OK : rc;
}

int rly_control_read(evs_store *st, const char *sink, rly_control *c)
{
	uint64_t state = 0;
	int rc;

	memset(c, 0, sizeof *c);
	if ((rc = get(st, sink, "", &c->position, &c->exists)) != EVS_OK ||
	    (rc = get(st, sink, "#state", &state, NULL)) != EVS_OK ||
	    (rc = get(st, sink, "#reset", &c->reset_to, NULL)) != EVS_OK ||
	    (rc = get(st, sink, "#reset-seq", &c->reset_seq, NULL)) != EVS_OK ||
	    (rc = get(st, sink, "#reset-done", &c->reset_done, NULL)) != EVS_OK)
		return rc;
	c->state = (int)(state & 0xff);
	c->detail = (unsigned)((state >> 8) & 0xffff);
	return EVS_OK;
}

int rly_control_set_state(evs_store *st, const char *sink, int state, unsigned detail)
{
	char key[RLY_KEY_MAX];

	rly_key(key, sink, "#state");
	return evs_checkpoint_set(st, key,
				  (uint64_t)(state & 0xff) | (uint64_t)(detail & 0xffff) << 8);
}

int rly_control_request_reset(evs_store *st, const char *sink, uint64_t position)
{
	char key[RLY_KEY_MAX];
	uint64_t seq = 0;
	int rc;

	if ((rc = get(st, sink, "#reset-seq", &seq, NULL)) != EVS_OK)
		return rc;
	rly_key(key, sink, "#reset");
	if ((rc = evs_checkpoint_set(st, key, position)) != EVS_OK)
		return rc;
	rly_key(key, sink, "#reset-seq");
	return evs_checkpoint_set(st, key, seq + 1);
}
