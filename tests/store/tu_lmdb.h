/*
 * tu_lmdb.h - direct liblmdb access for white-box tests that build stores
 * the library would refuse (a newer format) or damage indexes behind its
 * back (evs_verify). The evs_store must be closed while these run: one
 * process must not open an LMDB environment twice.
 *
 * Layout (see store/record.c and docs/FORMAT.md): sub-databases "meta"
 * ("format" -> u32 BE), "events" (u64 BE position -> record), "streams"
 * (DUPSORT|DUPFIXED: stream id -> version u64 BE | position u64 BE),
 * "event_ids" (16-byte id -> u64 BE position), "time" (u64 BE recorded_at
 * -> u64 BE last position of the commit).
 */
#ifndef EVS_TU_LMDB_H
#define EVS_TU_LMDB_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

/* Flags the library opens each sub-database with. */
unsigned tu_mdb_flags(const char *db);

/* Put key -> val into sub-database db of the store in dir. */
void tu_mdb_put(const char *dir, const char *db, const void *key, size_t klen, const void *val,
		size_t vlen);

/* Delete key (all its values) from db; it must exist. */
void tu_mdb_del(const char *dir, const char *db, const void *key, size_t klen);

/* Get a copy of key's value (malloc'd, *vlen set); NULL if absent. */
void *tu_mdb_get(const char *dir, const char *db, const void *key, size_t klen, size_t *vlen);

/* Delete the n-th entry (0-based, in key/duplicate order) of db; returns
 * the deleted key's length and copies up to kcap bytes of it to key. */
size_t tu_mdb_del_nth(const char *dir, const char *db, size_t n, void *key, size_t kcap);

/* Number of entries (duplicates counted) in db. */
size_t tu_mdb_count(const char *dir, const char *db);

/* Delete sub-database db and its contents (an older format's store). */
void tu_mdb_drop(const char *dir, const char *db);

void tu_put_u64(uint8_t *p, uint64_t v);
uint64_t tu_get_u64(const uint8_t *p);

#endif
