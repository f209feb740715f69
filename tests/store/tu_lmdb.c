/*
 * tu_lmdb.c - direct liblmdb access for white-box tests; see tu_lmdb.h.
 */
#include "tu_lmdb.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define MDB_OK(call)                                                                 \
	do {                                                                         \
		int mdb_rc_ = (call);                                                \
		ck_assert_msg(mdb_rc_ == 0, "%s: %s", #call, mdb_strerror(mdb_rc_)); \
	} while (0)

unsigned tu_mdb_flags(const char *db)
{
	(void)db; /* every sub-database is a plain B-tree (docs/FORMAT.md) */
	return 0;
}

static void env_begin(const char *dir, const char *db, unsigned txnflags, MDB_env **env,
		      MDB_txn **txn, MDB_dbi *dbi)
{
	MDB_OK(mdb_env_create(env));
	MDB_OK(mdb_env_set_maxdbs(*env, 8));
	MDB_OK(mdb_env_open(*env, dir, 0, 0644));
	MDB_OK(mdb_txn_begin(*env, NULL, txnflags, txn));
	MDB_OK(mdb_dbi_open(*txn, db, tu_mdb_flags(db), dbi));
}

static void env_end(MDB_env *env, MDB_txn *txn, int commit)
{
	if (commit)
		MDB_OK(mdb_txn_commit(txn));
	else
		mdb_txn_abort(txn);
	mdb_env_close(env);
}

void tu_mdb_put(const char *dir, const char *db, const void *key, size_t klen, const void *val,
		size_t vlen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	env_begin(dir, db, 0, &env, &txn, &dbi);
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	MDB_OK(mdb_put(txn, dbi, &k, &v, 0));
	env_end(env, txn, 1);
}

void tu_mdb_del(const char *dir, const char *db, const void *key, size_t klen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	env_begin(dir, db, 0, &env, &txn, &dbi);
	MDB_val k = {klen, (void *)key};
	MDB_OK(mdb_del(txn, dbi, &k, NULL));
	env_end(env, txn, 1);
}

void *tu_mdb_get(const char *dir, const char *db, const void *key, size_t klen, size_t *vlen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	void *out = NULL;
	env_begin(dir, db, MDB_RDONLY, &env, &txn, &dbi);
	MDB_val k = {klen, (void *)key}, v;
	int rc = mdb_get(txn, dbi, &k, &v);
	if (rc == 0) {
		out = malloc(v.mv_size + 1);
		ck_assert_ptr_nonnull(out);
		memcpy(out, v.mv_data, v.mv_size);
		*vlen = v.mv_size;
	} else {
		ck_assert_msg(rc == MDB_NOTFOUND, "mdb_get: %s", mdb_strerror(rc));
	}
	env_end(env, txn, 0);
	return out;
}

size_t tu_mdb_del_nth(const char *dir, const char *db, size_t n, void *key, size_t kcap)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *c;
	MDB_val k, v;
	env_begin(dir, db, 0, &env, &txn, &dbi);
	MDB_OK(mdb_cursor_open(txn, dbi, &c));
	MDB_OK(mdb_cursor_get(c, &k, &v, MDB_FIRST));
	for (size_t i = 0; i < n; i++)
		MDB_OK(mdb_cursor_get(c, &k, &v, MDB_NEXT));
	size_t klen = k.mv_size;
	if (key != NULL)
		memcpy(key, k.mv_data, klen < kcap ? klen : kcap);
	MDB_OK(mdb_cursor_del(c, 0));
	mdb_cursor_close(c);
	env_end(env, txn, 1);
	return klen;
}

size_t tu_mdb_count(const char *dir, const char *db)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat st;
	env_begin(dir, db, MDB_RDONLY, &env, &txn, &dbi);
	MDB_OK(mdb_stat(txn, dbi, &st));
	env_end(env, txn, 0);
	return st.ms_entries;
}

void tu_put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

uint64_t tu_get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

void tu_mdb_drop(const char *dir, const char *db)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	env_begin(dir, db, 0, &env, &txn, &dbi);
	MDB_OK(mdb_drop(txn, dbi, 1));
	env_end(env, txn, 1);
}
