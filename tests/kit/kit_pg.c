/*
 * kit_pg.c - the test kit's PostgreSQL harness (see kit_pg.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "kit_pg.h"

#define PG_BIN        "/usr/lib/postgresql/15/bin"
#define READY_SECONDS 120

static pid_t owner_pid;
static bool own;
static char base[256], datadir[300], logfile[300];
static char *admin_dsn;
static unsigned db_counter;
static uid_t pg_uid;
static gid_t pg_gid;
static bool as_root;

/* Run argv (prefixed with runuser when root); returns the exit status. */
static int run(char *const argv[], bool quiet)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		char *full[32];
		int i = 0, j = 0;

		if (as_root) {
			full[i++] = "runuser";
			full[i++] = "-u";
			full[i++] = "postgres";
			full[i++] = "--";
		}
		while (argv[j] && i < 31)
			full[i++] = argv[j++];
		full[i] = NULL;
		if (quiet) {
			int fd = open("/dev/null", O_WRONLY);

			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
		}
		execvp(full[0], full);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void on_signal(int sig)
{
	/* only async-signal-safe calls: fork, execv, waitpid, _exit */
	if (getpid() == owner_pid && own) {
		pid_t pid = fork();

		if (pid == 0) {
			char *argv[] = {"runuser", "-u", "postgres",  "--", PG_BIN "/pg_ctl", "-D",
					datadir,   "-m", "immediate", "-w", "stop",           NULL};

			execvp(as_root ? argv[0] : argv[4], as_root ? argv : argv + 4);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static PGconn *wait_ready(const char *dsn)
{
	time_t until = time(NULL) + READY_SECONDS;

	for (;;) {
		PGconn *c = PQconnectdb(dsn);

		if (PQstatus(c) == CONNECTION_OK)
			return c;
		if (time(NULL) > until) {
			fprintf(stderr, "pgh: server not ready after %d s: %s", READY_SECONDS,
				PQerrorMessage(c));
			PQfinish(c);
			return NULL;
		}
		PQfinish(c);
		{
			struct timespec ts = {0, 50 * 1000000L};

			nanosleep(&ts, NULL);
		}
	}
}

void pgh_server_start(void)
{
	char opts[512];
	PGconn *c;

	snprintf(opts, sizeof opts,
		 "-k %s -c listen_addresses= -p 5432 -c fsync=off -c synchronous_commit=off"
		 " -c full_page_writes=off -c max_connections=60 -c shared_buffers=256MB"
		 " -c max_wal_size=4GB",
		 base);
	{
		char *argv[] = {PG_BIN "/pg_ctl",
				"-D",
				datadir,
				"-l",
				logfile,
				"-w",
				"-t",
				"120",
				"-o",
				opts,
				"start",
				NULL};

		if (run(argv, true) != 0) {
			fprintf(stderr, "pgh: could not start the server (log: %s)\n", logfile);
			abort();
		}
	}
	if (!(c = wait_ready(admin_dsn)))
		abort();
	PQfinish(c);
}

void pgh_server_stop(const char *mode)
{
	char *argv[] = {PG_BIN "/pg_ctl", "-D", datadir, "-m", (char *)mode, "-w", "-t", "120",
			"stop",           NULL};

	if (run(argv, true) != 0)
		fprintf(stderr, "pgh: pg_ctl stop failed\n");
}

bool pgh_own_cluster(void)
{
	return own;
}

void pgh_start(void)
{
	const char *env = getenv("EVS_PG_DSN");
	struct sigaction sa;
	PGconn *c;

	owner_pid = getpid();
	if (env && env[0]) {
		admin_dsn = strdup(env);
		if (!(c = wait_ready(admin_dsn)))
			abort();
		PQfinish(c);
		return;
	}
	as_root = geteuid() == 0;
	if (as_root) {
		struct passwd *pw = getpwnam("postgres");

		if (!pw) {
			fprintf(stderr, "pgh: running as root needs a \"postgres\" user\n");
			abort();
		}
		pg_uid = pw->pw_uid;
		pg_gid = pw->pw_gid;
	}
	/* the socket path must stay under 108 bytes, and as root the
	 * "postgres" user must reach the directory: the cluster always lives
	 * in /tmp (sticky, world-traversable), whatever TMPDIR says */
	snprintf(base, sizeof base, "/tmp/evs-pg-XXXXXX");
	if (!mkdtemp(base)) {
		perror("pgh: mkdtemp");
		abort();
	}
	if (as_root && chown(base, pg_uid, pg_gid) != 0) {
		perror("pgh: chown");
		abort();
	}
	snprintf(datadir, sizeof datadir, "%s/data", base);
	snprintf(logfile, sizeof logfile, "%s/server.log", base);
	own = true;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	{
		char *argv[] = {PG_BIN "/initdb",
				"-D",
				datadir,
				"-A",
				"trust",
				"-U",
				"postgres",
				"-E",
				"UTF8",
				"--no-sync",
				"--no-instructions",
				NULL};

		if (run(argv, true) != 0) {
			fprintf(stderr, "pgh: initdb failed in %s\n", base);
			abort();
		}
	}
	if (asprintf(&admin_dsn, "host=%s port=5432 user=postgres dbname=postgres", base) < 0)
		abort();
	pgh_server_start();
	fprintf(stderr, "pgh: PostgreSQL started in %s\n", base);
}

void pgh_stop(void)
{
	if (getpid() != owner_pid)
		return;
	if (own) {
		pgh_server_stop("fast");
		kit_rmrf(base);
		own = false;
	}
	free(admin_dsn);
	admin_dsn = NULL;
}

char *pgh_new_db(void)
{
	PGconn *c = pgh_connect(admin_dsn);
	char name[64], sql[128], *dsn;

	snprintf(name, sizeof name, "evs_t_%d_%u", (int)getpid(), db_counter++);
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", name);
	pgh_exec(c, sql);
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
	pgh_exec(c, sql);
	PQfinish(c);
	if (asprintf(&dsn, "%s dbname=%s", admin_dsn, name) < 0)
		abort();
	return dsn;
}

PGconn *pgh_connect(const char *dsn)
{
	PGconn *c = PQconnectdb(dsn);

	if (PQstatus(c) != CONNECTION_OK) {
		char msg[512];

		snprintf(msg, sizeof msg, "could not connect: %s", PQerrorMessage(c));
		PQfinish(c);
		ck_abort_msg("%s", msg);
	}
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	return c;
}

char *pgh_value(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	char *v = NULL;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		char msg[1024];

		snprintf(msg, sizeof msg, "%s: %s (%d rows)", sql, PQresultErrorMessage(r),
			 PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : -1);
		PQclear(r);
		ck_abort_msg("%s", msg);
	}
	if (!PQgetisnull(r, 0, 0))
		v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

long long pgh_int(PGconn *c, const char *sql)
{
	char *v = pgh_value(c, sql);
	long long n = v ? atoll(v) : -1;

	free(v);
	return n;
}

void pgh_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		char msg[1024];

		snprintf(msg, sizeof msg, "%s: %s", sql, PQresultErrorMessage(r));
		PQclear(r);
		ck_abort_msg("%s", msg);
	}
	PQclear(r);
}

const char *pgh_source_dir(void)
{
	return EVS_SOURCE_DIR;
}

const char *pgh_migrations_dir(void)
{
	return EVS_SOURCE_DIR "/migrations";
}

const char *pgh_bank_migrations(void)
{
	return EVS_SOURCE_DIR "/migrations:" EVS_SOURCE_DIR "/examples/bank/migrations";
}

const char *pgh_projector_bin(void)
{
	const char *env = getenv("EVS_PROJECTOR_BIN");

	return env && env[0] ? env : EVS_PROJECTOR_BIN;
}

int pgh_main(const char *name, int timeout_s, const TTest *const *tests)
{
	int rc;

	pgh_start();
	rc = kit_main(name, timeout_s, tests);
	pgh_stop();
	return rc;
}

/* ---- the projector in tests ----------------------------------------------- */

void pgh_config(evp_config *cfg, const char *dir, const char *dsn)
{
	evp_config_init(cfg);
	cfg->store_path = dir;
	cfg->dsn = dsn;
	cfg->migrations_dir = pgh_bank_migrations();
}

void pgh_project_once(const char *dir, const char *dsn, const char *rules, int batch)
{
	evp_config cfg;
	evp_stats st;
	char err[2048];
	int rc;

	pgh_config(&cfg, dir, dsn);
	cfg.rules_path = rules;
	if (batch > 0)
		cfg.batch_max = batch;
	cfg.once = true;
	rc = evp_run(&cfg, &st, err, sizeof err);
	ck_assert_msg(rc == EVP_OK, "evp_run: %s", err);
}

static void *live_main(void *arg)
{
	pgh_live *l = arg;

	l->rc = evp_run(&l->cfg, NULL, l->err, sizeof l->err);
	return NULL;
}

void pgh_live_init(pgh_live *l, const char *dir, const char *dsn)
{
	memset(l, 0, sizeof *l);
	pgh_config(&l->cfg, dir, dsn);
	l->cfg.stop = &l->stop;
}

void pgh_live_start(pgh_live *l)
{
	ck_assert_int_eq(pthread_create(&l->th, NULL, live_main, l), 0);
}

int pgh_live_join(pgh_live *l)
{
	ck_assert_int_eq(pthread_join(l->th, NULL), 0);
	return l->rc;
}

int pgh_live_stop(pgh_live *l)
{
	l->stop = 1;
	return pgh_live_join(l);
}

void pgh_release(PGconn *c, evs_store *s, char *dir, char *dsn)
{
	if (c)
		PQfinish(c);
	evs_close(s);
	if (dir)
		kit_rmrf(dir);
	free(dir);
	free(dsn);
}
