/*
 * ledger.c - the test aggregate (see ledger.h).
 */
#include "ledger.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, name, n) == 0;
}

static bool as_i64(const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
		*v = (int64_t)o->via.u64;
	else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		*v = o->via.i64;
	else
		return false;
	return true;
}

bool ledger_event_fields(const evs_event *ev, uint64_t *cmd, int64_t *delta)
{
	msgpack_zone z;
	msgpack_object o;
	size_t off = 0;
	bool has_c = false;
	int64_t c = 0;

	*cmd = 0;
	*delta = 0;
	if (!msgpack_zone_init(&z, 256))
		return false;
	if (msgpack_unpack(ev->data, ev->data_len, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS &&
	    o.type == MSGPACK_OBJECT_MAP) {
		for (uint32_t i = 0; i < o.via.map.size; i++) {
			const msgpack_object_kv *kv = &o.via.map.ptr[i];
			if (key_is(&kv->key, "c") && as_i64(&kv->val, &c))
				has_c = true;
			else if (key_is(&kv->key, "d"))
				as_i64(&kv->val, delta);
		}
	}
	msgpack_zone_destroy(&z);
	*cmd = (uint64_t)c;
	return has_c;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static bool type_is(const evs_event *ev, const char *t)
{
	size_t n = strlen(t);
	return ev->type.len == n && memcmp(ev->type.ptr, t, n) == 0;
}

static int push_cmd(ledger *l, uint64_t id)
{
	if (l->ncmds == l->capcmds) {
		size_t cap = l->capcmds ? l->capcmds * 2 : 16;
		uint64_t *p = realloc(l->cmds, cap * sizeof *p);
		if (p == NULL)
			return EVS_NOMEM;
		l->cmds = p;
		l->capcmds = cap;
	}
	l->cmds[l->ncmds++] = id;
	return EVS_OK;
}

int ledger_fold(ledger *l, const evs_event *ev)
{
	uint64_t cmd, v = ev->version;
	int64_t delta;

	if (l->hash == 0)
		l->hash = 0xcbf29ce484222325ull;
	l->hash = fnv(l->hash, &v, sizeof v);
	l->hash = fnv(l->hash, ev->type.ptr, ev->type.len);
	l->hash = fnv(l->hash, ev->data, ev->data_len);
	l->count++;
	if (type_is(ev, "Poison"))
		return EVS_CORRUPT;
	if (!type_is(ev, "Added") && !type_is(ev, "Taken"))
		return EVS_OK;
	if (!ledger_event_fields(ev, &cmd, &delta))
		return EVS_BAD_DATA;
	l->balance += delta;
	return push_cmd(l, cmd);
}

void ledger_free(ledger *l)
{
	free(l->cmds);
	memset(l, 0, sizeof *l);
}

bool ledger_equal(const ledger *a, const ledger *b)
{
	return a->balance == b->balance && a->count == b->count && a->hash == b->hash &&
	       a->ncmds == b->ncmds &&
	       (a->ncmds == 0 || memcmp(a->cmds, b->cmds, a->ncmds * sizeof *a->cmds) == 0);
}

const char *ledger_str(const ledger *l, char *buf, size_t len)
{
	snprintf(buf, len, "{balance %lld, count %llu, hash %016llx, cmds %zu}",
		 (long long)l->balance, (unsigned long long)l->count, (unsigned long long)l->hash,
		 l->ncmds);
	return buf;
}

void ledger_event_id(uint8_t id[16], uint64_t cmd, unsigned i)
{
	memset(id, 0, 16);
	id[0] = 0x1e; /* "le"dger */
	for (int k = 0; k < 8; k++)
		id[1 + k] = (uint8_t)(cmd >> (56 - 8 * k));
	id[12] = (uint8_t)(i >> 8);
	id[13] = (uint8_t)i;
	id[15] = 1;
}

/* ---- the definition ----------------------------------------------------- */

static int l_apply(void *ctx, void *state, const evs_event *ev)
{
	(void)ctx;
	return ledger_fold(state, ev);
}

static void l_release(void *ctx, void *state)
{
	(void)ctx;
	ledger_free(state);
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static int l_emit(evs_decision *d, const ledger_cmd *c, const char *type, unsigned i, bool delta)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	evs_event_in ev;
	int rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1 + (delta ? 1 : 0) + (c->big && i == 0 ? 1 : 0));
	pack_str(&pk, "c");
	msgpack_pack_uint64(&pk, c->id);
	if (delta) {
		pack_str(&pk, "d");
		msgpack_pack_int64(&pk, c->delta);
	}
	if (c->big && i == 0) {
		char *blob = calloc(1, c->big);
		if (blob == NULL)
			return EVS_NOMEM;
		pack_str(&pk, "blob");
		msgpack_pack_bin(&pk, c->big);
		msgpack_pack_bin_body(&pk, blob, c->big);
		free(blob);
	}
	memset(&ev, 0, sizeof ev);
	ev.type = type;
	ev.data = sb.data;
	ev.data_len = sb.size;
	if (c->fixed_ids)
		ledger_event_id(ev.id, c->id, i);
	rc = evs_decision_emit(d, &ev);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static int l_decide(void *ctx, const void *state, const void *command, evs_decision *d)
{
	const ledger *l = state;
	const ledger_cmd *c = command;
	char msg[128];
	int rc;

	(void)ctx;
	if (c->hook && (rc = c->hook(c->hook_ctx, l)) != 0)
		return rc;
	if (c->fail)
		return c->fail;
	if (c->delta < 0 && l->balance + c->delta < 0) {
		snprintf(msg, sizeof msg, "insufficient balance %lld for %lld",
			 (long long)l->balance, (long long)c->delta);
		return evs_decision_reject(d, msg);
	}
	if (c->delta == 0 && c->notes == 0)
		return EVS_OK; /* nothing to do */
	if (c->delta != 0 &&
	    (rc = l_emit(d, c, c->delta > 0 ? "Added" : "Taken", 0, true)) != EVS_OK)
		return rc;
	for (unsigned i = 0; i < c->notes; i++)
		if ((rc = l_emit(d, c, "Noted", i + 1, false)) != EVS_OK)
			return rc;
	return EVS_OK;
}

static int l_encode(void *ctx, const void *state, evs_sink *out)
{
	const ledger *l = state;
	msgpack_packer pk;

	(void)ctx;
	msgpack_packer_init(&pk, out, evs_sink_write);
	if (msgpack_pack_array(&pk, 4) || msgpack_pack_int64(&pk, l->balance) ||
	    msgpack_pack_uint64(&pk, l->count) || msgpack_pack_uint64(&pk, l->hash) ||
	    msgpack_pack_array(&pk, l->ncmds))
		return EVS_NOMEM;
	for (size_t i = 0; i < l->ncmds; i++)
		if (msgpack_pack_uint64(&pk, l->cmds[i]))
			return EVS_NOMEM;
	return EVS_OK;
}

static int l_decode(void *ctx, void *state, const void *data, size_t len)
{
	ledger *l = state;
	msgpack_zone z;
	msgpack_object o;
	size_t off = 0;
	int rc = EVS_CORRUPT;

	(void)ctx;
	if (!msgpack_zone_init(&z, 4096))
		return EVS_NOMEM;
	if (msgpack_unpack(data, len, &off, &z, &o) != MSGPACK_UNPACK_SUCCESS || off != len ||
	    o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != 4)
		goto out;
	const msgpack_object *a = o.via.array.ptr;
	if (!as_i64(&a[0], &l->balance) || a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    a[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[3].type != MSGPACK_OBJECT_ARRAY)
		goto out;
	l->count = a[1].via.u64;
	l->hash = a[2].via.u64;
	for (uint32_t i = 0; i < a[3].via.array.size; i++) {
		if (a[3].via.array.ptr[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			goto out;
		if ((rc = push_cmd(l, a[3].via.array.ptr[i].via.u64)) != EVS_OK)
			goto out;
	}
	rc = EVS_OK;
out:
	msgpack_zone_destroy(&z);
	return rc;
}

void ledger_def(evs_aggregate_def *def, uint64_t every, uint32_t fmt)
{
	memset(def, 0, sizeof *def);
	def->name = "test.ledger";
	def->state_size = sizeof(ledger);
	def->release = l_release;
	def->apply = l_apply;
	def->decide = l_decide;
	if (fmt > 0 || every > 0) {
		def->snapshot_version = fmt ? fmt : 1;
		def->snapshot_every = every;
		def->snapshot_encode = l_encode;
		def->snapshot_decode = l_decode;
	}
}
