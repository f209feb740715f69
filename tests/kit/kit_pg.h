/*
 * kit_pg.h - the test kit's PostgreSQL harness: a throwaway cluster per
 * test executable, a fresh database per test case.
 *
 * pgh_start() runs initdb in a temporary directory under /tmp and starts the server
 * on a Unix socket in that directory only (no TCP), with fsync=off; as
 * root (CI) initdb and the server run as the user "postgres" through
 * runuser. EVS_PG_DSN (a key=value libpq string) pointing at an existing
 * server overrides all of it: then databases are created there. The
 * cluster is stopped and removed by pgh_stop(), which main() calls after
 * the suite, and by a SIGTERM/SIGINT handler (meson's timeout); test
 * cases run in forked children, which never stop the cluster.
 *
 * Readiness is a connect loop with a generous bound, never a sleep.
 */
#ifndef EVS_KIT_PG_H
#define EVS_KIT_PG_H

#include <stdbool.h>
#include <stdint.h>

#include <check.h>
#include <libpq-fe.h>

#include <pthread.h>
#include <signal.h>

#include "evsproj.h"
#include "evstore.h"
#include "kit.h"

/* Start the cluster (or adopt EVS_PG_DSN); aborts the process on failure. */
void pgh_start(void);
void pgh_stop(void);
/* kit_main() between pgh_start() and pgh_stop(). */
int pgh_main(const char *name, int timeout_s, const TTest *const *tests);
/* Whether the cluster is ours (restart tests need it). */
bool pgh_own_cluster(void);
/* Stop the server (mode "fast" or "immediate") / start it again. */
void pgh_server_stop(const char *mode);
void pgh_server_start(void);

/* A fresh empty database; returns its DSN (static storage per call site
 * is not kept: the caller frees it). */
char *pgh_new_db(void);
/* Connect or fail the test. */
PGconn *pgh_connect(const char *dsn);
/* One value of a query (malloc'd, NULL for SQL NULL); fails the test on
 * an error. */
char *pgh_value(PGconn *c, const char *sql);
long long pgh_int(PGconn *c, const char *sql);
void pgh_exec(PGconn *c, const char *sql);

/* Directory of the source tree's migrations/ and projector/. */
const char *pgh_migrations_dir(void);
const char *pgh_source_dir(void);
/* The product's migrations and the bank example's ("dir:dir", as
 * --migrations takes them); pgh_config() uses them. */
const char *pgh_bank_migrations(void);
/* Path of the evs-projector binary. */
const char *pgh_projector_bin(void);

/* ---- the projector in tests ----------------------------------------------- */

/* evp_config_init + store dir, dsn and the source tree's migrations with
 * the bank example's. */
void pgh_config(evp_config *cfg, const char *dir, const char *dsn);
/* One evp_run --once (rules and batch optional: NULL, 0); fails the test
 * unless it answers EVP_OK. */
void pgh_project_once(const char *dir, const char *dsn, const char *rules, int batch);

/* evp_run on a thread, stopped through cfg.stop. */
typedef struct pgh_live {
	evp_config cfg;
	volatile sig_atomic_t stop;
	int rc;
	char err[2048];
	pthread_t th;
} pgh_live;

/* pgh_config() of l->cfg with l->stop wired; set more of l->cfg, then
 * pgh_live_start(). */
void pgh_live_init(pgh_live *l, const char *dir, const char *dsn);
void pgh_live_start(pgh_live *l);
/* Wait for the run to end by itself (a rebuild); returns its code. */
int pgh_live_join(pgh_live *l);
/* Ask it to stop, wait: its code (EVP_STOPPED when it was running). */
int pgh_live_stop(pgh_live *l);

/* Release what a test case holds, each may be NULL: the connection, the
 * store, the store's directory (removed, then freed) and the DSN. */
void pgh_release(PGconn *c, evs_store *s, char *dir, char *dsn);

#endif /* EVS_KIT_PG_H */
