/*
 * pm_inst.c - process managers: names, deterministic ids, and the instance
 * state (the library's fold of an instance stream plus the definition's).
 *
 * An instance stream "pm:<manager>-<instance>" is loaded as an aggregate
 * (evs_aggregate_load with an internal definition named "pm:<manager>"),
 * whose state is evs__pm_inst followed by the definition's state; apply
 * folds the library's part and then calls the definition's evolve.
 *
 * Library events (data: msgpack maps; metadata of every event a step
 * writes: {"input": u64}, the position of the input event, 0 for a timer):
 *
 *   pm.Started          {}
 *   pm.CommandIssued    {"aggregate": str, "stream": str, "type": str,
 *                        "data": bin, "undo"?: {"aggregate", "stream",
 *                        "type", "data"}}
 *   pm.CommandRejected  {"aggregate", "stream", "type": str, "reason": str}
 *   pm.TimerSet         {"timer": str, "due": i64}
 *   pm.TimerCancelled   {"timer": str}
 *   pm.TimerFired       {"timer": str, "due": i64}
 *   pm.Compensating     {"reason": str}
 *   pm.Completed        {}
 *   pm.Failed           {"reason": str}
 *   pm.Parked           {"reason": str, "input": u64}   (metadata input 0)
 *
 * Snapshots (when the definition has snapshot functions): one msgpack
 * array [last_input, status, [[timer, due]...], [[aggregate, stream, type,
 * data: bin]...]] for the library's part, then the bytes of the
 * definition's snapshot_encode, under the definition's snapshot_version
 * and the internal aggregate's name "pm:<manager>".
 *
 * Ids: XXH3-128 of manager NUL instance NUL key NUL a b (big-endian u32),
 * with the UUIDv8 version and variant bits set. The key names the input:
 * "e<position>" for an event, "t<due hex>/<timer>" for a timer, "p<pos>"
 * for a park. a = the part (0 the instance, 1.. the commands), b = the
 * event's index in it.
 */
#define XXH_INLINE_ALL
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "pm_internal.h"

/* ---- names ---------------------------------------------------------------- */

bool evs__pm_name_ok(const char *name, bool timer)
{
	size_t n = 0;

	if (name == NULL)
		return false;
	for (; name[n]; n++) {
		char c = name[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
		if (timer)
			ok = ok || (c >= 'A' && c <= 'Z') || c == '-';
		if (!ok || n >= EVS_PM_MAX_NAME)
			return false;
	}
	return n > 0;
}

bool evs__pm_instance_ok(const char *instance)
{
	size_t len;

	if (instance == NULL || evs__check_name(instance, &len) <= 0)
		return false;
	return len <= EVS_PM_MAX_INSTANCE && strchr(instance, '/') == NULL;
}

void evs__pm_stream(const evs_pm *pm, const char *instance, char *out)
{
	snprintf(out, EVS__PM_CP_MAX, "pm:%s-%s", pm->name, instance);
}

void evs__pm_cp_parked(const char *manager, const char *instance, char *out)
{
	snprintf(out, EVS__PM_CP_MAX, "pm/%s/parked/%s", manager, instance);
}

void evs__pm_cp_resume(const char *manager, const char *instance, char *out)
{
	snprintf(out, EVS__PM_CP_MAX, "pm/%s/resume/%s", manager, instance);
}

void evs__pm_cp_timer(const char *manager, int64_t due, const char *instance, const char *timer,
		      char *out)
{
	snprintf(out, EVS__PM_CP_MAX, "pm/%s/timer/%016llx/%s/%s", manager,
		 (unsigned long long)(uint64_t)(due < 0 ? 0 : due), instance, timer);
}

bool evs__pm_parse_timer(const char *rest, size_t len, int64_t *due, char *instance, char *timer)
{
	const char *slash, *end = rest + len;
	uint64_t v = 0;

	if (len < 18 || rest[16] != '/')
		return false;
	for (int i = 0; i < 16; i++) {
		char c = rest[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	rest += 17;
	slash = memchr(rest, '/', (size_t)(end - rest));
	if (slash == NULL || slash == rest || slash - rest > EVS_PM_MAX_INSTANCE ||
	    end - slash - 1 < 1 || end - slash - 1 > EVS_PM_MAX_NAME)
		return false;
	memcpy(instance, rest, (size_t)(slash - rest));
	instance[slash - rest] = 0;
	memcpy(timer, slash + 1, (size_t)(end - slash - 1));
	timer[end - slash - 1] = 0;
	*due = (int64_t)v;
	return true;
}

unsigned evs__pm_partition(const char *instance, unsigned partitions)
{
	if (partitions <= 1)
		return 0;
	return (unsigned)(XXH3_64bits(instance, strlen(instance)) % partitions);
}

void evs__pm_id(uint8_t out[16], const char *manager, const char *instance, const char *key,
		uint32_t a, uint32_t b)
{
	XXH3_state_t st;
	XXH128_canonical_t c;
	uint8_t ab[8];

	XXH3_128bits_reset(&st);
	XXH3_128bits_update(&st, manager, strlen(manager) + 1);
	XXH3_128bits_update(&st, instance, strlen(instance) + 1);
	XXH3_128bits_update(&st, key, strlen(key) + 1);
	evs__put_u32(ab, a);
	evs__put_u32(ab + 4, b);
	XXH3_128bits_update(&st, ab, sizeof ab);
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&st));
	memcpy(out, c.digest, 16);
	out[6] = (uint8_t)((out[6] & 0x0f) | 0x80); /* version 8 */
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* RFC 9562 variant */
}

/* ---- msgpack helpers -------------------------------------------------- */

void evs__pm_mp_init(evs__pm_mp *m)
{
	msgpack_sbuffer_init(&m->sb);
	msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

void evs__pm_mp_free(evs__pm_mp *m)
{
	msgpack_sbuffer_destroy(&m->sb);
}

void evs__pm_mp_str(evs__pm_mp *m, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(&m->pk, n);
	msgpack_pack_str_body(&m->pk, s, n);
}

void evs__pm_mp_kv_str(evs__pm_mp *m, const char *k, const char *v)
{
	evs__pm_mp_str(m, k);
	evs__pm_mp_str(m, v);
}

void evs__pm_mp_kv_u64(evs__pm_mp *m, const char *k, uint64_t v)
{
	evs__pm_mp_str(m, k);
	msgpack_pack_uint64(&m->pk, v);
}

void evs__pm_mp_kv_i64(evs__pm_mp *m, const char *k, int64_t v)
{
	evs__pm_mp_str(m, k);
	msgpack_pack_int64(&m->pk, v);
}

void evs__pm_mp_kv_bin(evs__pm_mp *m, const char *k, const void *p, size_t n)
{
	evs__pm_mp_str(m, k);
	msgpack_pack_bin(&m->pk, n);
	msgpack_pack_bin_body(&m->pk, p, n);
}

const msgpack_object *evs__pm_mp_get(const msgpack_object *map, const char *key)
{
	size_t n = strlen(key);

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    memcmp(k->via.str.ptr, key, n) == 0)
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

bool evs__pm_mp_cstr(const msgpack_object *o, char *out, size_t size)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size)
		return false;
	memcpy(out, o->via.str.ptr, o->via.str.size);
	out[o->via.str.size] = 0;
	return true;
}

/* ---- the instance state ----------------------------------------------- */

static int inst_init(void *ctx, void *state)
{
	evs_pm *pm = ctx;

	if (pm->def.init)
		return pm->def.init(pm->def.ctx, evs__pm_user(state));
	return EVS_OK;
}

static void undo_clear(evs__pm_inst *in)
{
	for (size_t i = 0; i < in->nundo; i++)
		free(in->undo[i].aggregate);
	in->nundo = 0;
}

static void inst_release(void *ctx, void *state)
{
	evs_pm *pm = ctx;
	evs__pm_inst *in = state;

	undo_clear(in);
	free(in->undo);
	in->undo = NULL;
	in->capundo = 0;
	if (pm->def.release)
		pm->def.release(pm->def.ctx, evs__pm_user(in));
}

static void timer_remove(evs__pm_inst *in, const char *name)
{
	for (size_t i = 0; i < in->ntimers; i++)
		if (strcmp(in->timers[i].name, name) == 0) {
			in->timers[i] = in->timers[--in->ntimers];
			return;
		}
}

static int undo_push(evs__pm_inst *in, const msgpack_object *u)
{
	char agg[EVS_MAX_NAME + 1], stream[EVS_MAX_NAME + 1], type[EVS_MAX_NAME + 1];
	const msgpack_object *d = evs__pm_mp_get(u, "data");
	size_t la, ls, lt;
	char *block;

	if (!evs__pm_mp_cstr(evs__pm_mp_get(u, "aggregate"), agg, sizeof agg) ||
	    !evs__pm_mp_cstr(evs__pm_mp_get(u, "stream"), stream, sizeof stream) ||
	    !evs__pm_mp_cstr(evs__pm_mp_get(u, "type"), type, sizeof type) || d == NULL ||
	    d->type != MSGPACK_OBJECT_BIN)
		return EVS_CORRUPT;
	if (in->nundo == in->capundo) {
		size_t cap = in->capundo ? in->capundo * 2 : 4;
		evs__pm_undo *u2 = realloc(in->undo, cap * sizeof *u2);
		if (u2 == NULL)
			return EVS_NOMEM;
		in->undo = u2;
		in->capundo = cap;
	}
	la = strlen(agg) + 1;
	ls = strlen(stream) + 1;
	lt = strlen(type) + 1;
	if ((block = malloc(la + ls + lt + d->via.bin.size + 1)) == NULL)
		return EVS_NOMEM;
	evs__pm_undo *x = &in->undo[in->nundo++];
	x->aggregate = memcpy(block, agg, la);
	x->stream = memcpy(block + la, stream, ls);
	x->type = memcpy(block + la + ls, type, lt);
	x->data = memcpy(block + la + ls + lt, d->via.bin.ptr, d->via.bin.size);
	x->len = d->via.bin.size;
	return EVS_OK;
}

static bool type_is(const evs_event *ev, const char *t)
{
	size_t n = strlen(t);
	return ev->type.len == n && memcmp(ev->type.ptr, t, n) == 0;
}

/* The library's part of the fold. */
static int lib_apply(evs__pm_inst *in, const evs_event *ev, msgpack_zone *z)
{
	msgpack_object data, meta;
	const msgpack_object *o;
	char timer[EVS_PM_MAX_NAME + 1];
	size_t off = 0;

	if (ev->type.len < 3 || memcmp(ev->type.ptr, "pm.", 3) != 0) {
		data.type = MSGPACK_OBJECT_NIL;
	} else if (msgpack_unpack(ev->data, ev->data_len, &off, z, &data) !=
		   MSGPACK_UNPACK_SUCCESS) {
		return EVS_CORRUPT;
	}
	off = 0;
	if (ev->metadata_len &&
	    msgpack_unpack(ev->metadata, ev->metadata_len, &off, z, &meta) ==
		    MSGPACK_UNPACK_SUCCESS &&
	    (o = evs__pm_mp_get(&meta, "input")) != NULL &&
	    o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 > in->last_input)
		in->last_input = o->via.u64;

	if (type_is(ev, EVS__PM_STARTED)) {
		if (in->status == EVS_PM_NEW)
			in->status = EVS_PM_RUNNING;
	} else if (type_is(ev, EVS__PM_ISSUED)) {
		o = evs__pm_mp_get(&data, "undo");
		if (o != NULL && o->type == MSGPACK_OBJECT_MAP && in->status == EVS_PM_RUNNING)
			return undo_push(in, o);
	} else if (type_is(ev, EVS__PM_TIMER_SET)) {
		o = evs__pm_mp_get(&data, "due");
		if (!evs__pm_mp_cstr(evs__pm_mp_get(&data, "timer"), timer, sizeof timer) ||
		    o == NULL ||
		    (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
		     o->type != MSGPACK_OBJECT_NEGATIVE_INTEGER))
			return EVS_CORRUPT;
		timer_remove(in, timer);
		if (in->ntimers == EVS_PM_MAX_TIMERS)
			return EVS_CORRUPT;
		memcpy(in->timers[in->ntimers].name, timer, sizeof timer);
		in->timers[in->ntimers++].due = o->via.i64;
	} else if (type_is(ev, EVS__PM_TIMER_CANCEL) || type_is(ev, EVS__PM_TIMER_FIRED)) {
		if (!evs__pm_mp_cstr(evs__pm_mp_get(&data, "timer"), timer, sizeof timer))
			return EVS_CORRUPT;
		timer_remove(in, timer);
	} else if (type_is(ev, EVS__PM_COMPENSATING)) {
		in->status = EVS_PM_COMPENSATING;
		undo_clear(in);
	} else if (type_is(ev, EVS__PM_COMPLETED) || type_is(ev, EVS__PM_FAILED)) {
		in->status = type_is(ev, EVS__PM_COMPLETED) ? EVS_PM_COMPLETED : EVS_PM_FAILED;
		in->ntimers = 0;
		undo_clear(in);
	}
	return EVS_OK;
}

int evs__pm_inst_apply(void *ctx, void *state, const evs_event *ev)
{
	evs_pm *pm = ctx;
	msgpack_zone z;
	int rc;

	if (!msgpack_zone_init(&z, 1024))
		return EVS_NOMEM;
	rc = lib_apply(state, ev, &z);
	msgpack_zone_destroy(&z);
	if (rc != EVS_OK)
		return rc;
	return pm->def.evolve(pm->def.ctx, evs__pm_user(state), ev);
}

static int inst_encode(void *ctx, const void *state, evs_sink *out)
{
	evs_pm *pm = ctx;
	const evs__pm_inst *in = state;
	msgpack_packer pk;

	msgpack_packer_init(&pk, out, evs_sink_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint64(&pk, in->last_input);
	msgpack_pack_int(&pk, in->status);
	msgpack_pack_array(&pk, in->ntimers);
	for (size_t i = 0; i < in->ntimers; i++) {
		msgpack_pack_array(&pk, 2);
		msgpack_pack_str(&pk, strlen(in->timers[i].name));
		msgpack_pack_str_body(&pk, in->timers[i].name, strlen(in->timers[i].name));
		msgpack_pack_int64(&pk, in->timers[i].due);
	}
	msgpack_pack_array(&pk, in->nundo);
	for (size_t i = 0; i < in->nundo; i++) {
		const evs__pm_undo *u = &in->undo[i];
		const char *f[3] = {u->aggregate, u->stream, u->type};
		msgpack_pack_array(&pk, 4);
		for (int k = 0; k < 3; k++) {
			msgpack_pack_str(&pk, strlen(f[k]));
			msgpack_pack_str_body(&pk, f[k], strlen(f[k]));
		}
		msgpack_pack_bin(&pk, u->len);
		msgpack_pack_bin_body(&pk, u->data, u->len);
	}
	return pm->def.snapshot_encode(pm->def.ctx, evs__pm_user((evs__pm_inst *)in), out);
}

static int inst_decode_lib(evs__pm_inst *in, const msgpack_object *o)
{
	const msgpack_object *a, *t;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4)
		return EVS_CORRUPT;
	a = o->via.array.ptr;
	if (a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[2].type != MSGPACK_OBJECT_ARRAY ||
	    a[3].type != MSGPACK_OBJECT_ARRAY || a[2].via.array.size > EVS_PM_MAX_TIMERS)
		return EVS_CORRUPT;
	in->last_input = a[0].via.u64;
	in->status = (int)a[1].via.u64;
	for (uint32_t i = 0; i < a[2].via.array.size; i++) {
		t = &a[2].via.array.ptr[i];
		if (t->type != MSGPACK_OBJECT_ARRAY || t->via.array.size != 2 ||
		    !evs__pm_mp_cstr(&t->via.array.ptr[0], in->timers[i].name,
				     sizeof in->timers[i].name) ||
		    (t->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
		     t->via.array.ptr[1].type != MSGPACK_OBJECT_NEGATIVE_INTEGER))
			return EVS_CORRUPT;
		in->timers[i].due = t->via.array.ptr[1].via.i64;
		in->ntimers = i + 1;
	}
	for (uint32_t i = 0; i < a[3].via.array.size; i++) {
		msgpack_object_kv kv[4];
		msgpack_object map;
		static const char *const keys[4] = {"aggregate", "stream", "type", "data"};
		t = &a[3].via.array.ptr[i];
		if (t->type != MSGPACK_OBJECT_ARRAY || t->via.array.size != 4)
			return EVS_CORRUPT;
		for (int k = 0; k < 4; k++) {
			kv[k].key.type = MSGPACK_OBJECT_STR;
			kv[k].key.via.str.ptr = keys[k];
			kv[k].key.via.str.size = (uint32_t)strlen(keys[k]);
			kv[k].val = t->via.array.ptr[k];
		}
		map.type = MSGPACK_OBJECT_MAP;
		map.via.map.size = 4;
		map.via.map.ptr = kv;
		int rc = undo_push(in, &map);
		if (rc != EVS_OK)
			return rc;
	}
	return EVS_OK;
}

static int inst_decode(void *ctx, void *state, const void *data, size_t len)
{
	evs_pm *pm = ctx;
	msgpack_zone z;
	msgpack_object o;
	size_t off = 0;
	int rc;

	if (!msgpack_zone_init(&z, 1024))
		return EVS_NOMEM;
	if (msgpack_unpack(data, len, &off, &z, &o) != MSGPACK_UNPACK_SUCCESS)
		rc = EVS_CORRUPT;
	else
		rc = inst_decode_lib(state, &o);
	msgpack_zone_destroy(&z);
	if (rc != EVS_OK)
		return rc;
	return pm->def.snapshot_decode(pm->def.ctx, evs__pm_user(state), (const char *)data + off,
				       len - off);
}

int evs__pm_inst_def(evs_pm *pm, evs_aggregate **out)
{
	char name[EVS__PM_CP_MAX];
	evs_aggregate_def d;

	snprintf(name, sizeof name, "pm:%s", pm->name);
	memset(&d, 0, sizeof d);
	d.name = name;
	d.state_size = pm->inst_size;
	d.ctx = pm;
	d.init = inst_init;
	d.release = inst_release;
	d.apply = evs__pm_inst_apply;
	if (pm->def.snapshot_encode || pm->def.snapshot_decode || pm->def.snapshot_every) {
		d.snapshot_version = pm->def.snapshot_version;
		d.snapshot_every = pm->def.snapshot_every;
		d.snapshot_encode = pm->def.snapshot_encode ? inst_encode : NULL;
		d.snapshot_decode = pm->def.snapshot_decode ? inst_decode : NULL;
	}
	return evs_aggregate_new(pm->s, &d, out);
}
