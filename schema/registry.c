/*
 * registry.c - the schema registry inside the store: adding, checking,
 * reading and listing schema documents, and the unknown-type policy.
 *
 * Format (sub-database "schemas", see docs/FORMAT.md):
 *
 *   key   = event type (UTF-8, 1..255 bytes) | 0x00 | version u32 BE
 *   value = the document as canonical JSON text (json-c, plain, no
 *           trailing NUL): {"type":..,"version":..,"schema":{..},..}
 *
 *   meta "schema_gen"     u64 BE, +1 on every registry change
 *   meta "schema_unknown" u32 BE, enum evs_unknown_types (absent = 0)
 *
 * A type's versions sort together and in order. Versions are 1..N without
 * gaps; version k+1 is added only if it is a compatible change of k
 * (compile.c, evs__schema_compatible) or carries an upcaster.
 *
 * The compiled cache of the registry is cache.c; validation on append
 * admit.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "schema_internal.h"

static int registry_key(uint8_t *key, const char *type, size_t len, uint32_t version)
{
	memcpy(key, type, len);
	key[len] = 0;
	evs__put_u32(key + len + 1, version);
	return (int)(len + 5);
}

/* Latest version of type in txn (0 = none) and, when want > 0, the
 * document of version `want`. */
static int latest(evs_store *s, MDB_txn *txn, const char *type, size_t len, uint32_t *out)
{
	uint8_t key[EVS_MAX_NAME + 5];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*out = 0;
	if (s->schemas == 0)
		return 0;
	registry_key(key, type, len, UINT32_MAX);
	k.mv_size = len + 5;
	k.mv_data = key;
	if ((rc = mdb_cursor_open(txn, s->schemas, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == 0) {
		size_t tl;
		uint32_t ver;
		if (evs__schema_split_key(&k, &tl, &ver) && tl == len &&
		    memcmp(k.mv_data, type, len) == 0)
			*out = ver;
	} else if (rc == MDB_NOTFOUND) {
		rc = 0;
	}
	mdb_cursor_close(cur);
	return rc;
}

static int bump_gen(evs_store *s, MDB_txn *txn)
{
	uint64_t gen;
	uint8_t b[8];
	int rc = evs__schema_meta_u64(s, txn, EVS__META_SCHEMA_GEN, &gen);
	MDB_val k = {strlen(EVS__META_SCHEMA_GEN), EVS__META_SCHEMA_GEN}, v = {8, b};

	if (rc)
		return rc;
	evs__put_u64(b, gen + 1);
	return mdb_put(txn, s->meta, &k, &v, 0);
}

/* Decide an add inside txn; writes when `write`. */
static int add_txn(evs_store *s, MDB_txn *txn, const evs_schema *sc, bool write, int *mrc)
{
	uint8_t key[EVS_MAX_NAME + 5];
	MDB_val k, v;
	uint32_t last;
	char why[256];
	int rc;

	*mrc = 0;
	if ((rc = latest(s, txn, sc->type, sc->type_len, &last)) != 0) {
		*mrc = rc;
		return EVS_IO;
	}
	k.mv_size = (size_t)registry_key(key, sc->type, sc->type_len, sc->version);
	k.mv_data = key;
	if (sc->version <= last) {
		if ((rc = mdb_get(txn, s->schemas, &k, &v)) != 0) {
			*mrc = rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
			return EVS_IO;
		}
		if (v.mv_size == sc->canon_len && memcmp(v.mv_data, sc->canon, v.mv_size) == 0)
			return EVS_OK; /* the same document again */
		return evs__fail(s, EVS_SCHEMA_EXISTS,
				 "schema \"%s\" version %u is already registered with another "
				 "document",
				 sc->type, sc->version);
	}
	if (sc->version != last + 1)
		return evs__fail(s, EVS_SCHEMA_INCOMPATIBLE,
				 "schema \"%s\" version %u skips version %u (the latest is %u)",
				 sc->type, sc->version, last + 1, last);
	if (sc->version > 1 && sc->upcast == UPCAST_NONE) {
		uint8_t pkey[EVS_MAX_NAME + 5];
		MDB_val pk = {(size_t)registry_key(pkey, sc->type, sc->type_len, last), pkey}, pv;
		evs_schema *prev;
		char err[256];
		if ((rc = mdb_get(txn, s->schemas, &pk, &pv)) != 0) {
			*mrc = rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
			return EVS_IO;
		}
		rc = evs_schema_parse(pv.mv_data, pv.mv_size, &prev, err, sizeof err);
		if (rc)
			return evs__fail(s, rc == EVS_NOMEM ? EVS_NOMEM : EVS_CORRUPT,
					 "schema registry: \"%s\" version %u: %s", sc->type, last,
					 err);
		bool ok = evs__schema_compatible(prev, sc, why, sizeof why);
		evs_schema_free(prev);
		if (!ok)
			return evs__fail(s, EVS_SCHEMA_INCOMPATIBLE,
					 "schema \"%s\" version %u is not a compatible change of "
					 "version %u (%s) and has no upcaster",
					 sc->type, sc->version, last, why);
	}
	if (!write)
		return EVS_OK;
	v.mv_size = sc->canon_len;
	v.mv_data = sc->canon;
	if ((rc = mdb_put(txn, s->schemas, &k, &v, 0)) != 0 || (rc = bump_gen(s, txn)) != 0) {
		*mrc = rc;
		return EVS_IO;
	}
	return EVS_OK;
}

/* Run fn in a write (or read) transaction, growing the map when full. */
static int in_txn(evs_store *s, bool write,
		  int (*fn)(evs_store *, MDB_txn *, const void *, bool, int *), const void *arg)
{
	for (;;) {
		MDB_txn *txn;
		int rc, mrc;

		rc = write ? evs__write_begin(s, &txn) : evs__read_begin(s, &txn);
		if (rc)
			return rc;
		mrc = 0;
		rc = fn(s, txn, arg, write, &mrc);
		if (rc != EVS_OK || !write) {
			evs__read_end(s, txn);
			if (mrc == MDB_MAP_FULL && write) {
				if ((rc = evs__grow(s, false)) != EVS_OK)
					return rc;
				continue;
			}
			if (mrc)
				return evs__fail_mdb(s, mrc,
						     "could not update the schema registry");
			return rc;
		}
		if ((mrc = evs__write_commit(s, txn)) == MDB_MAP_FULL) {
			if ((rc = evs__grow(s, false)) != EVS_OK)
				return rc;
			continue;
		}
		evs__notify_wake(&s->notify);
		return mrc ? evs__fail_mdb(s, mrc, "could not update the schema registry") : EVS_OK;
	}
}

static int add_fn(evs_store *s, MDB_txn *txn, const void *arg, bool write, int *mrc)
{
	return add_txn(s, txn, arg, write, mrc);
}

static int add_or_check(evs_store *s, const char *json, size_t len, bool write)
{
	evs_schema *sc;
	char err[512];
	int rc;

	if (s == NULL || (json == NULL && len))
		return EVS_INVALID;
	if ((rc = evs_schema_parse(json, len, &sc, err, sizeof err)) != EVS_OK)
		return evs__fail(s, rc, "invalid schema document: %s", err);
	if (write && s->opts.read_only)
		rc = evs__fail(s, EVS_READONLY, "store \"%s\" is open read-only", s->path);
	else if (write && s->schemas == 0)
		rc = evs__fail(s, EVS_READONLY, "store \"%s\" has no schema registry", s->path);
	else
		rc = in_txn(s, write, add_fn, sc);
	evs_schema_free(sc);
	return rc;
}

int evs_schema_add(evs_store *s, const char *json, size_t len)
{
	return add_or_check(s, json, len, true);
}

int evs_schema_check(evs_store *s, const char *json, size_t len)
{
	return add_or_check(s, json, len, false);
}

static int unknown_fn(evs_store *s, MDB_txn *txn, const void *arg, bool write, int *mrc)
{
	uint8_t b[4];
	MDB_val k = {strlen(EVS__META_SCHEMA_UNKNOWN), EVS__META_SCHEMA_UNKNOWN}, v = {4, b};

	(void)write;
	evs__put_u32(b, (uint32_t) * (const int *)arg);
	if ((*mrc = mdb_put(txn, s->meta, &k, &v, 0)) != 0 || (*mrc = bump_gen(s, txn)) != 0)
		return EVS_IO;
	return EVS_OK;
}

int evs_schema_set_unknown(evs_store *s, int policy)
{
	if (s == NULL || (policy != EVS_UNKNOWN_ACCEPT && policy != EVS_UNKNOWN_REFUSE))
		return EVS_INVALID;
	if (s->opts.read_only)
		return evs__fail(s, EVS_READONLY, "store \"%s\" is open read-only", s->path);
	return in_txn(s, true, unknown_fn, &policy);
}

int evs_schema_get_unknown(evs_store *s, int *policy)
{
	evs__schemas *c;
	int rc;

	if (s == NULL || policy == NULL)
		return EVS_INVALID;
	if ((rc = evs__schemas_get(s, &c)) != EVS_OK)
		return rc;
	*policy = c->unknown;
	evs__schemas_put(s, c);
	return EVS_OK;
}

int evs_schema_get(evs_store *s, const char *type, uint32_t version, char **json, size_t *len)
{
	uint8_t key[EVS_MAX_NAME + 5];
	MDB_txn *txn;
	MDB_val k, v;
	size_t tlen;
	int rc;

	if (json)
		*json = NULL;
	if (len)
		*len = 0;
	if (s == NULL || json == NULL)
		return EVS_INVALID;
	if (evs__check_name(type, &tlen) <= 0)
		return evs__fail(s, EVS_BAD_TYPE, "invalid event type");
	if (s->schemas == 0)
		return evs__fail(s, EVS_NOT_FOUND, "type \"%s\" has no schema", type);
	if ((rc = evs__read_begin(s, &txn)) != EVS_OK)
		return rc;
	if (version == 0 && (rc = latest(s, txn, type, tlen, &version)) != 0) {
		evs__read_end(s, txn);
		return evs__fail_mdb(s, rc, "could not read the schema registry");
	}
	k.mv_size = (size_t)registry_key(key, type, tlen, version);
	k.mv_data = key;
	rc = version ? mdb_get(txn, s->schemas, &k, &v) : MDB_NOTFOUND;
	if (rc == 0) {
		if ((*json = evs__malloc(v.mv_size + 1)) == NULL) {
			rc = -1;
		} else {
			memcpy(*json, v.mv_data, v.mv_size);
			(*json)[v.mv_size] = 0;
			if (len)
				*len = v.mv_size;
		}
	}
	evs__read_end(s, txn);
	if (rc == MDB_NOTFOUND)
		return evs__fail(s, EVS_NOT_FOUND,
				 version ? "type \"%s\" has no schema version %u"
					 : "type \"%s\" has no schema%.0u",
				 type, version);
	if (rc == -1)
		return evs__fail(s, EVS_NOMEM, "out of memory");
	return rc ? evs__fail_mdb(s, rc, "could not read the schema registry") : EVS_OK;
}

void evs_schema_text_free(char *json)
{
	free(json);
}

int evs_schema_list(evs_store *s, int (*fn)(void *, const evs_schema_entry *), void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, ret = 0;

	if (s == NULL || fn == NULL)
		return EVS_INVALID;
	if (s->schemas == 0)
		return EVS_OK;
	if ((rc = evs__read_begin(s, &txn)) != EVS_OK)
		return rc;
	if ((rc = mdb_cursor_open(txn, s->schemas, &cur)) != 0) {
		evs__read_end(s, txn);
		return evs__fail_mdb(s, rc, "could not read the schema registry");
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && ret == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		evs_schema_entry e = {.json = v.mv_data, .json_len = v.mv_size};
		if (!evs__schema_split_key(&k, &e.type.len, &e.version)) {
			rc = MDB_CORRUPTED;
			break;
		}
		e.type.ptr = k.mv_data;
		/* cheap look for an upcaster without compiling */
		if (memmem(v.mv_data, v.mv_size, "\"upcast\":\"hook\"", 15))
			e.upcast = UPCAST_HOOK;
		else if (memmem(v.mv_data, v.mv_size, "\"upcast\":[", 10))
			e.upcast = UPCAST_STEPS;
		ret = fn(ctx, &e);
	}
	mdb_cursor_close(cur);
	evs__read_end(s, txn);
	if (ret)
		return ret;
	if (rc && rc != MDB_NOTFOUND)
		return evs__fail_mdb(s, rc, "could not read the schema registry");
	return EVS_OK;
}
