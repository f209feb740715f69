/*
 * cache.c - every handle keeps the store's schema registry compiled
 * (evs__schemas), an immutable reference-counted snapshot. Before
 * validating, a caller compares the shared commit counter (evs-notify)
 * with the one the cache was checked at; only when it moved does it open a
 * read transaction and compare "schema_gen", and only when that moved does
 * it reload. Registry changes wake the counter like commits do, so a
 * schema added by another process is seen by the next append that starts
 * after the add returned. (The registry's format: registry.c.)
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "schema_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "schema_internal.h"

static void cache_free(evs__schemas *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->ntypes; i++) {
		for (uint32_t k = 0; k < c->types[i].nversions; k++)
			evs_schema_free(c->types[i].v[k]);
		free(c->types[i].v);
		free(c->types[i].name);
	}
	free(c->types);
	free(c);
}

static int cmp_name(const char *a, size_t al, const char *b, size_t bl)
{
	size_t m = al < bl ? al : bl;
	int r = memcmp(a, b, m);
	return r ? r : (al > bl) - (al < bl);
}

const evs__sc_type *evs__schemas_find(const evs__schemas *c, const char *type, size_t len)
{
	size_t lo = 0, hi = c ? c->ntypes : 0;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = cmp_name(c->types[mid].name, c->types[mid].len, type, len);
		if (r == 0)
			return &c->types[mid];
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int evs__schema_meta_u64(evs_store *s, MDB_txn *txn, const char *key, uint64_t *out)
{
	MDB_val k = {strlen(key), (void *)key}, v;
	int rc = mdb_get(txn, s->meta, &k, &v);

	*out = 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (v.mv_size == 8)
		*out = evs__get_u64(v.mv_data);
	else if (v.mv_size == 4)
		*out = evs__get_u32(v.mv_data);
	else
		return MDB_CORRUPTED;
	return 0;
}

/* Split a registry key; false if malformed. */
bool evs__schema_split_key(const MDB_val *k, size_t *tlen, uint32_t *version)
{
	const uint8_t *p = k->mv_data;
	if (k->mv_size < 6 || k->mv_size > EVS_MAX_NAME + 5 || p[k->mv_size - 5] != 0)
		return false;
	*tlen = k->mv_size - 5;
	*version = evs__get_u32(p + *tlen + 1);
	return true;
}

/* Compile the whole registry. */
static int load(evs_store *s, MDB_txn *txn, uint64_t gen, evs__schemas **out)
{
	evs__schemas *c = evs__calloc(1, sizeof *c);
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint64_t unknown;
	char err[256];
	int rc;

	*out = NULL;
	if (c == NULL)
		return evs__fail(s, EVS_NOMEM, "out of memory");
	c->gen = gen;
	if ((rc = evs__schema_meta_u64(s, txn, EVS__META_SCHEMA_UNKNOWN, &unknown)) != 0) {
		rc = evs__fail_mdb(s, rc, "could not read the schema registry");
		goto fail;
	}
	c->unknown = unknown ? EVS_UNKNOWN_REFUSE : EVS_UNKNOWN_ACCEPT;
	if (s->schemas == 0)
		goto done;
	if ((rc = mdb_cursor_open(txn, s->schemas, &cur)) != 0) {
		rc = evs__fail_mdb(s, rc, "could not read the schema registry");
		goto fail;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		size_t tlen;
		uint32_t version;
		evs_schema *sc;
		evs__sc_type *t = c->ntypes ? &c->types[c->ntypes - 1] : NULL;

		if (!evs__schema_split_key(&k, &tlen, &version)) {
			rc = evs__fail(s, EVS_CORRUPT, "malformed key in the schema registry");
			goto fail;
		}
		if (t == NULL || cmp_name(t->name, t->len, k.mv_data, tlen) != 0) {
			void *p = evs__realloc(c->types, (c->ntypes + 1) * sizeof *c->types);
			if (p == NULL)
				goto nomem;
			c->types = p;
			t = &c->types[c->ntypes++];
			memset(t, 0, sizeof *t);
			if ((t->name = evs__malloc(tlen + 1)) == NULL)
				goto nomem;
			memcpy(t->name, k.mv_data, tlen);
			t->name[tlen] = 0;
			t->len = tlen;
		}
		if (version != t->nversions + 1) {
			rc = evs__fail(s, EVS_CORRUPT,
				       "schema registry: type \"%s\" misses version %u", t->name,
				       t->nversions + 1);
			goto fail;
		}
		rc = evs_schema_parse(v.mv_data, v.mv_size, &sc, err, sizeof err);
		if (rc == EVS_NOMEM)
			goto nomem;
		if (rc) {
			rc = evs__fail(s, EVS_CORRUPT,
				       "schema registry: type \"%s\" version %u: %s", t->name,
				       version, err);
			goto fail;
		}
		void *p = evs__realloc(t->v, (t->nversions + 1) * sizeof *t->v);
		if (p == NULL) {
			evs_schema_free(sc);
			goto nomem;
		}
		t->v = p;
		t->v[t->nversions++] = sc;
	}
	if (rc != MDB_NOTFOUND) {
		rc = evs__fail_mdb(s, rc, "could not read the schema registry");
		goto fail;
	}
	mdb_cursor_close(cur);
done:
	c->refs = 1;
	*out = c;
	return EVS_OK;
nomem:
	rc = evs__fail(s, EVS_NOMEM, "out of memory");
fail:
	if (cur)
		mdb_cursor_close(cur);
	cache_free(c);
	return rc;
}

static void schemas_release(evs_store *s, evs__schemas *c);

/*
 * A reference to the current registry; release with schemas_release.
 * schema_mu is never held across a transaction: a thread holding it would
 * wait behind a map growth that itself waits for this process's readers,
 * one of which may be about to ask for the registry (evs_upcast from an
 * iterator). Two threads may load the same generation at once; the
 * second one's copy is simply dropped.
 */
static int schemas_acquire(evs_store *s, evs__schemas **out)
{
	evs__schemas *cur, *fresh = NULL;
	uint32_t seq = evs__notify_seq(&s->notify);
	uint64_t gen = 0;
	MDB_txn *txn;
	int rc, mrc;

	pthread_mutex_lock(&s->schema_mu);
	cur = s->schema_cache;
	if (cur && seq == s->schema_seq) {
		cur->refs++;
		pthread_mutex_unlock(&s->schema_mu);
		*out = cur;
		return EVS_OK;
	}
	if (cur)
		cur->refs++;
	pthread_mutex_unlock(&s->schema_mu);

	if ((rc = evs__read_begin(s, &txn)) != EVS_OK)
		goto fail;
	if ((mrc = evs__schema_meta_u64(s, txn, EVS__META_SCHEMA_GEN, &gen)) != 0)
		rc = evs__fail_mdb(s, mrc, "could not read the schema registry");
	else if (cur == NULL || cur->gen != gen)
		rc = load(s, txn, gen, &fresh);
	evs__read_end(s, txn);
	if (rc != EVS_OK)
		goto fail;

	pthread_mutex_lock(&s->schema_mu);
	if (fresh) {
		evs__schemas *old = s->schema_cache;
		if (old == NULL || old->gen < fresh->gen) {
			s->schema_cache = fresh;
			fresh->refs++; /* the handle's reference */
			if (old && --old->refs == 0)
				cache_free(old);
		}
		if (cur && --cur->refs == 0)
			cache_free(cur);
		cur = fresh; /* the caller's reference (refs started at 1) */
	}
	if (s->schema_cache && s->schema_cache->gen == gen)
		s->schema_seq = seq;
	pthread_mutex_unlock(&s->schema_mu);
	*out = cur;
	return EVS_OK;
fail:
	if (cur)
		schemas_release(s, cur);
	return rc;
}

static void schemas_release(evs_store *s, evs__schemas *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&s->schema_mu);
	if (--c->refs == 0)
		cache_free(c);
	pthread_mutex_unlock(&s->schema_mu);
}

int evs__schemas_get(evs_store *s, evs__schemas **out)
{
	return schemas_acquire(s, out);
}

void evs__schemas_put(evs_store *s, evs__schemas *c)
{
	schemas_release(s, c);
}

void evs__schema_close(evs_store *s)
{
	if (s->schema_cache && --s->schema_cache->refs == 0)
		cache_free(s->schema_cache);
	s->schema_cache = NULL;
	for (evs__sc_hook *h = s->schema_hooks, *next; h; h = next) {
		next = h->next;
		free(h->type);
		free(h);
	}
	s->schema_hooks = NULL;
}
