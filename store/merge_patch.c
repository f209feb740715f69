/*
 * merge_patch.c - the generic aggregate: RFC 7386 JSON merge patch over
 * msgpack, folded over a stream's events' data maps.
 *
 *   merge(target, patch):
 *     patch is not a map  -> patch
 *     patch is a map      -> start from target if it is a map, else {};
 *                            for each (key, value) of patch, in order:
 *                              value nil -> remove key
 *                              else      -> key = merge(target[key], value)
 *
 * Keys match when they are equal msgpack values (msgpack_object_equal:
 * strings byte for byte). Kept keys stay in place, new ones are appended
 * in patch order, so the result is deterministic.
 *
 * The state is a msgpack_object tree in a msgpack_zone it owns. A fold
 * step shares every subtree the patch does not touch: it allocates only a
 * new key/value array for each map on a patched path, and copies of the
 * patch's own values (event payloads are views valid during one apply
 * call; the state must not point into them). The zone therefore only
 * grows; when what it holds exceeds twice the live tree (measured at the
 * last compaction) plus COMPACT_SLACK, the tree is deep-copied into a
 * fresh zone and the old one freed: amortised O(1) per allocated byte.
 *
 * Snapshots of it ("evs.merge-patch", format 1) are the tree packed as one
 * msgpack map.
 */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "agg_internal.h"

#define ZONE_CHUNK    8192
#define COMPACT_SLACK ((size_t)64 << 10)

typedef struct mp_state {
	msgpack_zone *zone;    /* owns root */
	msgpack_zone *scratch; /* the patch being applied */
	msgpack_object root;
	size_t used; /* bytes allocated in zone */
	size_t live; /* bytes of root after the last compaction */
} mp_state;

/* ---- the tree ----------------------------------------------------------- */

static void *zalloc(mp_state *st, size_t n)
{
	if (n == 0)
		n = 1;
	st->used += n;
	return msgpack_zone_malloc(st->zone, n);
}

/* n bytes of src copied into st's zone; NULL when out of memory. */
static char *zdup(mp_state *st, const char *src, size_t n)
{
	char *p = zalloc(st, n);

	if (p != NULL && n)
		memcpy(p, src, n);
	return p;
}

/* Deep copy of o into st's zone. */
static int deep_copy(mp_state *st, const msgpack_object *o, msgpack_object *out)
{
	*out = *o;
	switch (o->type) {
	case MSGPACK_OBJECT_STR:
		out->via.str.ptr = zdup(st, o->via.str.ptr, o->via.str.size);
		return out->via.str.ptr ? 0 : -1;
	case MSGPACK_OBJECT_BIN:
		out->via.bin.ptr = zdup(st, o->via.bin.ptr, o->via.bin.size);
		return out->via.bin.ptr ? 0 : -1;
	case MSGPACK_OBJECT_EXT:
		out->via.ext.ptr = zdup(st, o->via.ext.ptr, o->via.ext.size);
		return out->via.ext.ptr ? 0 : -1;
	case MSGPACK_OBJECT_ARRAY: {
		uint32_t n = o->via.array.size;
		msgpack_object *a = zalloc(st, (size_t)n * sizeof *a);
		if (a == NULL)
			return -1;
		for (uint32_t i = 0; i < n; i++)
			if (deep_copy(st, &o->via.array.ptr[i], &a[i]) != 0)
				return -1;
		out->via.array.ptr = a;
		return 0;
	}
	case MSGPACK_OBJECT_MAP: {
		uint32_t n = o->via.map.size;
		msgpack_object_kv *kv = zalloc(st, (size_t)n * sizeof *kv);
		if (kv == NULL)
			return -1;
		for (uint32_t i = 0; i < n; i++)
			if (deep_copy(st, &o->via.map.ptr[i].key, &kv[i].key) != 0 ||
			    deep_copy(st, &o->via.map.ptr[i].val, &kv[i].val) != 0)
				return -1;
		out->via.map.ptr = kv;
		return 0;
	}
	default: return 0;
	}
}

/* out = merge(target, patch); target may be NULL (no value). Shares the
 * target's untouched subtrees, copies the patch's values. */
static int merge(mp_state *st, const msgpack_object *target, const msgpack_object *patch,
		 msgpack_object *out)
{
	if (patch->type != MSGPACK_OBJECT_MAP)
		return deep_copy(st, patch, out);

	uint32_t tn = target && target->type == MSGPACK_OBJECT_MAP ? target->via.map.size : 0;
	uint32_t pn = patch->via.map.size;
	size_t cap = (size_t)tn + pn, n = tn;
	msgpack_object_kv *kv = zalloc(st, cap * sizeof *kv);

	if (kv == NULL)
		return -1;
	if (tn)
		memcpy(kv, target->via.map.ptr, tn * sizeof *kv);
	for (uint32_t i = 0; i < pn; i++) {
		const msgpack_object_kv *p = &patch->via.map.ptr[i];
		size_t at = n;

		for (size_t j = 0; j < n; j++)
			if (msgpack_object_equal(kv[j].key, p->key)) {
				at = j;
				break;
			}
		if (p->val.type == MSGPACK_OBJECT_NIL) {
			if (at < n) {
				memmove(&kv[at], &kv[at + 1], (n - at - 1) * sizeof *kv);
				n--;
			}
			continue;
		}
		if (at < n) {
			msgpack_object old = kv[at].val;
			if (merge(st, &old, &p->val, &kv[at].val) != 0)
				return -1;
		} else {
			if (deep_copy(st, &p->key, &kv[n].key) != 0 ||
			    merge(st, NULL, &p->val, &kv[n].val) != 0)
				return -1;
			n++;
		}
	}
	out->type = MSGPACK_OBJECT_MAP;
	out->via.map.size = (uint32_t)n;
	out->via.map.ptr = kv;
	return 0;
}

static int compact(mp_state *st)
{
	msgpack_zone *old = st->zone, *fresh = msgpack_zone_new(ZONE_CHUNK);
	msgpack_object root;

	if (fresh == NULL)
		return -1;
	st->zone = fresh;
	st->used = 0;
	if (deep_copy(st, &st->root, &root) != 0) {
		msgpack_zone_free(fresh);
		st->zone = old;
		return -1;
	}
	msgpack_zone_free(old);
	st->root = root;
	st->live = st->used;
	return 0;
}

/* ---- the aggregate definition ------------------------------------------- */

static int mp_init(void *ctx, void *state)
{
	mp_state *st = state;

	(void)ctx;
	st->zone = msgpack_zone_new(ZONE_CHUNK);
	st->scratch = msgpack_zone_new(ZONE_CHUNK);
	if (st->zone == NULL || st->scratch == NULL) {
		msgpack_zone_free(st->zone);
		msgpack_zone_free(st->scratch);
		st->zone = st->scratch = NULL;
		return EVS_NOMEM;
	}
	st->root.type = MSGPACK_OBJECT_MAP;
	st->root.via.map.size = 0;
	st->root.via.map.ptr = NULL;
	return EVS_OK;
}

static void mp_release(void *ctx, void *state)
{
	mp_state *st = state;

	(void)ctx;
	msgpack_zone_free(st->zone);
	msgpack_zone_free(st->scratch);
}

/* Unpack exactly one value of buf into the scratch zone. */
static int unpack_one(msgpack_zone *z, const void *buf, size_t len, msgpack_object *out)
{
	size_t off = 0;

	msgpack_zone_clear(z);
	if (msgpack_unpack(buf, len, &off, z, out) != MSGPACK_UNPACK_SUCCESS || off != len)
		return EVS_BAD_DATA;
	return EVS_OK;
}

/* Fold a patch into the state; the patch's memory may go right after. */
static int fold(mp_state *st, const msgpack_object *patch)
{
	msgpack_object root;

	if (merge(st, &st->root, patch, &root) != 0)
		return EVS_NOMEM;
	st->root = root;
	if (st->used > 2 * st->live + COMPACT_SLACK && compact(st) != 0)
		return EVS_NOMEM;
	return EVS_OK;
}

static int mp_apply(void *ctx, void *state, const evs_event *ev)
{
	mp_state *st = state;
	msgpack_object patch;

	(void)ctx;
	if (unpack_one(st->scratch, ev->data, ev->data_len, &patch) != EVS_OK ||
	    patch.type != MSGPACK_OBJECT_MAP)
		return EVS_CORRUPT;
	return fold(st, &patch);
}

static int mp_encode(void *ctx, const void *state, evs_sink *out)
{
	const mp_state *st = state;
	msgpack_packer pk;

	(void)ctx;
	msgpack_packer_init(&pk, out, evs_sink_write);
	return msgpack_pack_object(&pk, st->root) == 0 ? EVS_OK : EVS_NOMEM;
}

static int mp_decode(void *ctx, void *state, const void *data, size_t len)
{
	mp_state *st = state;
	msgpack_object o;
	int rc;

	(void)ctx;
	if ((rc = unpack_one(st->scratch, data, len, &o)) != EVS_OK)
		return EVS_CORRUPT;
	if (o.type != MSGPACK_OBJECT_MAP)
		return EVS_CORRUPT;
	if (deep_copy(st, &o, &st->root) != 0)
		return EVS_NOMEM;
	st->live = st->used;
	return EVS_OK;
}

const evs_aggregate_def evs__merge_patch_def = {
	.name = "evs.merge-patch",
	.state_size = sizeof(mp_state),
	.init = mp_init,
	.release = mp_release,
	.apply = mp_apply,
	.snapshot_version = 1,
	.snapshot_encode = mp_encode,
	.snapshot_decode = mp_decode,
};

/* ---- the public API ----------------------------------------------------- */

static int pack_out(const msgpack_object *o, evs_state *out)
{
	evs__buf b = {0};
	msgpack_packer pk;

	/* into our buffer, so the packing allocates through the library */
	msgpack_packer_init(&pk, &b, evs__mp_buf_write);
	if (msgpack_pack_object(&pk, *o) != 0) {
		evs__buf_free(&b);
		return EVS_NOMEM;
	}
	out->data = b.ptr;
	out->len = b.len;
	return EVS_OK;
}

int evs_state_load(evs_store *s, const char *stream, const evs_at *at, evs_state *out)
{
	evs_aggregate a;
	evs_loaded li;
	mp_state st;
	int rc;

	if (out)
		memset(out, 0, sizeof *out);
	if (s == NULL || out == NULL)
		return EVS_INVALID;
	if ((rc = evs__aggregate_init(&a, s, &evs__merge_patch_def)) != EVS_OK)
		return rc;
	if ((rc = evs_aggregate_load(&a, stream, at, &st, &li)) != EVS_OK)
		return rc;
	rc = pack_out(&st.root, out);
	evs__state_release(&a, &st);
	if (rc != EVS_OK)
		return evs__fail(s, rc, "out of memory");
	out->version = li.version;
	out->position = li.position;
	return EVS_OK;
}

int evs_state_snapshot(evs_store *s, const char *stream)
{
	evs_aggregate a;
	int rc;

	if (s == NULL)
		return EVS_INVALID;
	if ((rc = evs__aggregate_init(&a, s, &evs__merge_patch_def)) != EVS_OK)
		return rc;
	return evs_snapshot_take(&a, stream, NULL);
}

void evs_state_free(evs_state *state)
{
	if (state == NULL)
		return;
	free(state->data);
	memset(state, 0, sizeof *state);
}

int evs_merge_patch(const void *target, size_t target_len, const void *patch, size_t patch_len,
		    evs_state *out)
{
	msgpack_zone *tz = NULL;
	msgpack_object t, p, r;
	mp_state st;
	int rc;

	if (out)
		memset(out, 0, sizeof *out);
	if (out == NULL || patch == NULL || (target == NULL && target_len))
		return EVS_INVALID;
	if (mp_init(NULL, &st) != EVS_OK)
		return EVS_NOMEM;
	if (target && target_len) {
		if ((tz = msgpack_zone_new(ZONE_CHUNK)) == NULL) {
			rc = EVS_NOMEM;
			goto out;
		}
		if ((rc = unpack_one(tz, target, target_len, &t)) != EVS_OK)
			goto out;
	}
	if ((rc = unpack_one(st.scratch, patch, patch_len, &p)) != EVS_OK)
		goto out;
	if (merge(&st, tz ? &t : NULL, &p, &r) != 0) {
		rc = EVS_NOMEM;
		goto out;
	}
	rc = pack_out(&r, out);
out:
	msgpack_zone_free(tz);
	mp_release(NULL, &st);
	return rc;
}
