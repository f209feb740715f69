/*
 * bench_peers.c - durable appends: evstore beside two PostgreSQL peers,
 * in one run on one machine (issue 15, item 4).
 *
 *   evstore     evs_append(), EVS_SYNC_FULL (the default: acknowledged =
 *               synced), exact expected version, one evs_store handle
 *               shared by the clients (threads of this process), so
 *               concurrent clients share commits (group commit).
 *   plain       a PostgreSQL table (global position bigserial primary key,
 *               stream, version, event id uuid, type, data jsonb,
 *               recorded_at) with UNIQUE (stream, version) - the expected
 *               version check: a transaction writes versions expected+1..
 *               expected+n and a concurrent writer makes it fail - and
 *               UNIQUE (id) (idempotency, as evstore's id index). One
 *               prepared INSERT per transaction: one row, or n rows from
 *               unnest() of arrays, autocommit, one round trip.
 *   messagedb   Message DB (@eventide/message-db): SELECT
 *               message_store.write_message(id, stream, type, data, NULL,
 *               expected) - its only write API - once per event; a batch
 *               is BEGIN, n prepared calls, COMMIT sent as one libpq
 *               pipeline (one round trip).
 *
 * Every side is durable: the PostgreSQL server must run with fsync=on and
 * synchronous_commit=on (read back with SHOW and printed; the program
 * refuses otherwise). Events carry the same ~200 B of data (a JSON object
 * of 200 bytes for PostgreSQL, the msgpack map of the same fields, 200
 * bytes, for evstore) and a UUIDv7 id (evstore makes it; the PostgreSQL
 * clients send one). Each client appends to its own stream
 * ("account-<run>c<client>", one Message DB category "account", as an
 * application's streams of one entity type are), one stream per
 * transaction with an exact expected version.
 *
 * Configurations: 1 event per transaction from 1 client; 1 per
 * transaction from --clients (16) clients, each a thread with its own
 * PostgreSQL connection (over the server's Unix socket, the cheapest
 * hop); 100 and 1000 per transaction from 1 client.
 *
 * Method: a figure is the median of --rounds rounds; in a round every side
 * runs --seconds, in an order that rotates between rounds, so slow spells
 * of the shared disk fall on every side; multiples are medians of the
 * per-round ratios. The evstore store and PostgreSQL's data directory must
 * be on one filesystem (checked with stat; both printed).
 *
 * A benchmark, not a test: it asserts nothing about speed and exits
 * non-zero only when a call fails. scripts/bench-peers.sh starts the
 * cluster, installs Message DB and runs this program.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "evstore.h"
#include "kit.h"

#define DATA_SIZE   200
#define MAX_CLIENTS 64
#define MAX_BATCH   1000
#define NSIDES      3

enum side_id { SIDE_EVS, SIDE_PLAIN, SIDE_MDB };
static const char *const side_name[NSIDES] = {"evstore", "plain PostgreSQL", "Message DB"};

struct config {
	double seconds;
	int rounds;
	int clients;
	bool quick, keep;
	const char *dir;
	const char *dsn;     /* plain table database */
	const char *mdb_dsn; /* Message DB database; NULL: skipped */
};

static struct config cfg = {2.0, 5, 16, false, false, NULL, NULL, NULL};

/* ---- the event ------------------------------------------------------------ */

static msgpack_sbuffer mp_data; /* 200-byte msgpack map */
static char json_data[DATA_SIZE + 1];
static char *json_array; /* "{...,...}": MAX_BATCH copies as a jsonb[] literal */

static void event_init(void)
{
	static char pad[256];
	memset(pad, 'x', sizeof pad);
	msgpack_sbuffer_init(&mp_data);
	size_t padlen;
	for (padlen = 0; padlen < sizeof pad; padlen++) {
		msgpack_packer pk;
		msgpack_sbuffer_clear(&mp_data);
		msgpack_packer_init(&pk, &mp_data, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 4);
		msgpack_pack_str_with_body(&pk, "account", 7);
		msgpack_pack_str_with_body(&pk, "acct-000042", 11);
		msgpack_pack_str_with_body(&pk, "amount", 6);
		msgpack_pack_int64(&pk, 1234567);
		msgpack_pack_str_with_body(&pk, "currency", 8);
		msgpack_pack_str_with_body(&pk, "EUR", 3);
		msgpack_pack_str_with_body(&pk, "memo", 4);
		msgpack_pack_str_with_body(&pk, pad, padlen);
		if (mp_data.size == DATA_SIZE)
			break;
	}
	if (mp_data.size != DATA_SIZE)
		kit_die("could not build a %d-byte data map", DATA_SIZE);
	const char *head = "{\"account\":\"acct-000042\",\"amount\":1234567,\"currency\":\"EUR\","
			   "\"memo\":\"";
	size_t fill = DATA_SIZE - strlen(head) - 2;
	snprintf(json_data, sizeof json_data, "%s%.*s\"}", head, (int)fill, pad);
	if (strlen(json_data) != DATA_SIZE)
		kit_die("could not build a %d-byte JSON object", DATA_SIZE);
	/* an array literal element: "{\"account\":...}" */
	char elem[2 * DATA_SIZE + 4];
	size_t k = 0;
	elem[k++] = '"';
	for (const char *p = json_data; *p; p++) {
		if (*p == '"' || *p == '\\')
			elem[k++] = '\\';
		elem[k++] = *p;
	}
	elem[k++] = '"';
	elem[k] = '\0';
	json_array = malloc(MAX_BATCH * (k + 1) + 3);
	if (!json_array)
		kit_die("out of memory");
	char *w = json_array;
	*w++ = '{';
	for (int i = 0; i < MAX_BATCH; i++) {
		memcpy(w, elem, k);
		w += k;
		*w++ = ',';
	}
	w[-1] = '}';
	*w = '\0';
}

/* "{elem,...}" of the first n elements: a view of json_array cut short. */
static char *json_array_of(size_t n, char *buf, size_t elem_len)
{
	size_t len = 1 + n * (elem_len + 1);
	memcpy(buf, json_array, len);
	buf[len - 1] = '}';
	buf[len] = '\0';
	return buf;
}

static void uuid_text(char out[37])
{
	uint8_t u[16];
	evs_uuid_v7(u);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

/* ---- PostgreSQL helpers -------------------------------------------------- */

static PGconn *pg_connect(const char *dsn)
{
	PGconn *c = PQconnectdb(dsn);
	if (PQstatus(c) != CONNECTION_OK)
		kit_die("could not connect to \"%s\": %s", dsn, PQerrorMessage(c));
	return c;
}

static void pg_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		kit_die("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
}

/* One value of a one-row query into out (cut to size). */
static const char *pg_value(PGconn *c, const char *sql, char *out, size_t size)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		kit_die("%s: %s", sql, PQerrorMessage(c));
	snprintf(out, size, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return out;
}

static void pg_prepare(PGconn *c, const char *name, const char *sql)
{
	PGresult *r = PQprepare(c, name, sql, 0, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		kit_die("prepare %s: %s", name, PQerrorMessage(c));
	PQclear(r);
}

static const char plain_ddl[] = "DROP TABLE IF EXISTS bench_events;"
				"CREATE TABLE bench_events ("
				" position bigserial PRIMARY KEY,"
				" stream text NOT NULL,"
				" version bigint NOT NULL,"
				" id uuid NOT NULL UNIQUE,"
				" type text NOT NULL,"
				" data jsonb NOT NULL,"
				" recorded_at timestamptz NOT NULL DEFAULT now(),"
				" UNIQUE (stream, version))";

static const char plain_ins1[] =
	"INSERT INTO bench_events (stream, version, id, type, data) VALUES ($1, $2, $3, $4, $5)";
static const char plain_insn[] =
	"INSERT INTO bench_events (stream, version, id, type, data)"
	" SELECT $1, $2::bigint + u.o, u.i, $4, u.d"
	" FROM unnest($3::uuid[], $5::jsonb[]) WITH ORDINALITY AS u(i, d, o)";
static const char mdb_write[] =
	"SELECT message_store.write_message($1, $2, 'MoneyDeposited', $3, NULL, $4)";

/* ---- clients ------------------------------------------------------------- */

struct client {
	int side, index;
	size_t batch;
	char stream[64];
	uint64_t version; /* events in the stream so far */
	evs_store *st;
	PGconn *pg;
	evs_event_in ev[MAX_BATCH];
	char *ids;   /* "{uuid,...}" */
	char *jsons; /* a jsonb[] literal */
	size_t elem_len;
	uint64_t events;
	pthread_t th;
};

static atomic_int stop_flag;
static pthread_barrier_t start_line;

static void evs_txn(struct client *c)
{
	evs_append_result res;
	int rc = evs_append(c->st, c->stream, c->version, c->ev, c->batch, &res);
	if (rc != EVS_OK)
		kit_die("evs_append: %s (%s)", evs_errmsg(c->st), evs_code_name(rc));
	c->version += c->batch;
}

static void plain_txn(struct client *c)
{
	char ver[32], one[37];
	snprintf(ver, sizeof ver, "%" PRIu64, c->version + (c->batch == 1));
	const char *vals[5] = {c->stream, ver, NULL, "MoneyDeposited", NULL};
	PGresult *r;
	if (c->batch == 1) {
		uuid_text(one);
		vals[2] = one;
		vals[4] = json_data;
		r = PQexecPrepared(c->pg, "ins1", 5, vals, NULL, NULL, 0);
	} else {
		char *w = c->ids;
		*w++ = '{';
		for (size_t i = 0; i < c->batch; i++) {
			uuid_text(w);
			w += 36;
			*w++ = ',';
		}
		w[-1] = '}';
		*w = '\0';
		vals[2] = c->ids;
		vals[4] = c->jsons;
		r = PQexecPrepared(c->pg, "insn", 5, vals, NULL, NULL, 0);
	}
	if (PQresultStatus(r) != PGRES_COMMAND_OK || strtoull(PQcmdTuples(r), NULL, 10) != c->batch)
		kit_die("insert into the plain table: %s", PQerrorMessage(c->pg));
	PQclear(r);
	c->version += c->batch;
}

static void pipe_send(struct client *c, const char *name, int n, const char *const *vals)
{
	int ok = name ? PQsendQueryPrepared(c->pg, name, n, vals, NULL, NULL, 0)
		      : PQsendQueryParams(c->pg, vals[0], 0, NULL, NULL, NULL, NULL, 0);
	if (!ok)
		kit_die("pipeline send: %s", PQerrorMessage(c->pg));
}

static void pipe_result(struct client *c, ExecStatusType want)
{
	PGresult *r = PQgetResult(c->pg);
	if (!r || PQresultStatus(r) != want)
		kit_die("Message DB write: %s", r ? PQresultErrorMessage(r) : "no result");
	PQclear(r);
	if (want != PGRES_PIPELINE_SYNC && (r = PQgetResult(c->pg)) != NULL)
		kit_die("Message DB write: an unexpected second result");
}

static void mdb_txn(struct client *c)
{
	char ids[MAX_BATCH][37], ver[MAX_BATCH][24];
	const char *begin = "BEGIN", *commit = "COMMIT";
	bool txn = c->batch > 1;
	if (txn)
		pipe_send(c, NULL, 0, &begin);
	for (size_t i = 0; i < c->batch; i++) {
		uuid_text(ids[i]);
		/* Message DB counts stream positions from 0; -1 = no stream */
		snprintf(ver[i], sizeof ver[i], "%" PRId64, (int64_t)(c->version + i) - 1);
		const char *vals[4] = {ids[i], c->stream, json_data, ver[i]};
		pipe_send(c, "mdbw", 4, vals);
	}
	if (txn)
		pipe_send(c, NULL, 0, &commit);
	if (!PQpipelineSync(c->pg))
		kit_die("pipeline sync: %s", PQerrorMessage(c->pg));
	if (txn)
		pipe_result(c, PGRES_COMMAND_OK);
	for (size_t i = 0; i < c->batch; i++)
		pipe_result(c, PGRES_TUPLES_OK);
	if (txn)
		pipe_result(c, PGRES_COMMAND_OK);
	pipe_result(c, PGRES_PIPELINE_SYNC);
	c->version += c->batch;
}

static void *client_run(void *arg)
{
	struct client *c = arg;
	pthread_barrier_wait(&start_line);
	while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
		if (c->side == SIDE_EVS)
			evs_txn(c);
		else if (c->side == SIDE_PLAIN)
			plain_txn(c);
		else
			mdb_txn(c);
		c->events += c->batch;
	}
	return NULL;
}

static evs_store *store;
static unsigned run_no;
static PGconn *admin; /* the plain database as a superuser: CHECKPOINT */
static int store_fd = -1;

/* Before every slice: PostgreSQL writes its dirty buffers (CHECKPOINT) and
 * the filesystem flushes everything (syncfs), so no side pays for the
 * deferred writes of the one before it (ext4 journal commits flush other
 * files' ordered data too). A side's own background writes during its
 * slice stay in its figure. */
static void quiesce(void)
{
	pg_exec(admin, "CHECKPOINT");
	if (syncfs(store_fd) != 0)
		kit_die("syncfs: %s", strerror(errno));
}

/* One side, one configuration, --seconds: events/s. */
static double measure(int side, int clients, size_t batch)
{
	struct client *cs = calloc((size_t)clients, sizeof *cs);
	if (!cs)
		kit_die("out of memory");
	run_no++;
	for (int i = 0; i < clients; i++) {
		struct client *c = &cs[i];
		c->side = side;
		c->index = i;
		c->batch = batch;
		snprintf(c->stream, sizeof c->stream, "account-%ur%dc%zu", run_no, i, batch);
		if (side == SIDE_EVS) {
			c->st = store;
			for (size_t k = 0; k < batch; k++) {
				c->ev[k].type = "MoneyDeposited";
				c->ev[k].type_version = 1;
				c->ev[k].data = mp_data.data;
				c->ev[k].data_len = mp_data.size;
			}
		} else {
			c->pg = pg_connect(side == SIDE_PLAIN ? cfg.dsn : cfg.mdb_dsn);
			if (side == SIDE_PLAIN) {
				pg_prepare(c->pg, "ins1", plain_ins1);
				pg_prepare(c->pg, "insn", plain_insn);
				c->ids = malloc(batch * 37 + 2);
				c->elem_len = (strlen(json_array) - 1) / MAX_BATCH - 1;
				c->jsons = malloc(1 + batch * (c->elem_len + 1) + 1);
				if (!c->ids || !c->jsons)
					kit_die("out of memory");
				json_array_of(batch, c->jsons, c->elem_len);
			} else {
				pg_prepare(c->pg, "mdbw", mdb_write);
				if (!PQenterPipelineMode(c->pg))
					kit_die("pipeline mode: %s", PQerrorMessage(c->pg));
			}
		}
	}
	quiesce();
	atomic_store(&stop_flag, 0);
	if (pthread_barrier_init(&start_line, NULL, (unsigned)clients + 1) != 0)
		kit_die("pthread_barrier_init failed");
	for (int i = 0; i < clients; i++)
		if (pthread_create(&cs[i].th, NULL, client_run, &cs[i]) != 0)
			kit_die("pthread_create failed");
	pthread_barrier_wait(&start_line);
	int64_t t0 = kit_mono_ns();
	struct timespec ts = {(time_t)cfg.seconds,
			      (long)((cfg.seconds - (double)(time_t)cfg.seconds) * 1e9)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	atomic_store(&stop_flag, 1);
	uint64_t events = 0;
	for (int i = 0; i < clients; i++) {
		pthread_join(cs[i].th, NULL);
		events += cs[i].events;
	}
	double secs = (double)(kit_mono_ns() - t0) / 1e9;
	pthread_barrier_destroy(&start_line);
	for (int i = 0; i < clients; i++) {
		if (cs[i].pg)
			PQfinish(cs[i].pg);
		free(cs[i].ids);
		free(cs[i].jsons);
	}
	free(cs);
	return (double)events / secs;
}

/* ---- setup checks -------------------------------------------------------- */

static void check_durable(PGconn *c, const char *what)
{
	static const char *const need[][2] = {
		{"fsync", "on"},
		{"synchronous_commit", "on"},
		{"full_page_writes", "on"},
	};
	for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
		char sql[64];
		snprintf(sql, sizeof sql, "SHOW %s", need[i][0]);
		char v[64];
		if (strcmp(pg_value(c, sql, v, sizeof v), need[i][1]) != 0)
			kit_die("%s: %s is %s; a durable comparison needs %s", what, need[i][0], v,
				need[i][1]);
	}
}

static const char *fs_name(const char *path, char buf[64])
{
	struct statfs sf;
	if (statfs(path, &sf) != 0)
		return "unknown";
	switch ((unsigned long)sf.f_type) {
	case 0xEF53: return "ext4";
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	case 0x01021994: return "tmpfs";
	case 0x794c7630: return "overlayfs";
	default: snprintf(buf, 64, "fs 0x%lx", (unsigned long)sf.f_type); return buf;
	}
}

static void print_setup(PGconn *c, const char *store_dir)
{
	char ver[128], datadir[PATH_MAX], wsm[64], sb[64];
	pg_value(c, "SHOW server_version", ver, sizeof ver);
	pg_value(c, "SHOW data_directory", datadir, sizeof datadir);
	pg_value(c, "SHOW wal_sync_method", wsm, sizeof wsm);
	pg_value(c, "SHOW shared_buffers", sb, sizeof sb);
	struct stat a, b;
	char f1[64], f2[64];
	if (stat(store_dir, &a) != 0)
		kit_die("stat \"%s\": %s", store_dir, strerror(errno));
	bool same = stat(datadir, &b) == 0 && a.st_dev == b.st_dev;
	printf("evstore: %s, EVS_SYNC_FULL, store %s (%s)\n", EVS_VERSION_STRING, store_dir,
	       fs_name(store_dir, f1));
	printf("postgres: %s, fsync=on synchronous_commit=on full_page_writes=on "
	       "wal_sync_method=%s shared_buffers=%s, data %s (%s)\n",
	       ver, wsm, sb, datadir, fs_name(datadir, f2));
	if (stat(datadir, &b) != 0)
		printf("same filesystem: unknown (cannot stat PostgreSQL's data directory here)\n");
	else if (!same)
		kit_die("the store and PostgreSQL's data directory are on different filesystems; "
			"use --dir on the filesystem of %s",
			datadir);
	else
		printf("same filesystem: yes (device %lu)\n", (unsigned long)a.st_dev);
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void)
{
	printf("usage: bench_peers --dsn DSN [--msgdb-dsn DSN] [--dir DIR] [--seconds S]\n"
	       "                   [--rounds N] [--clients N] [--quick] [--keep]\n"
	       "  --dsn        database for the plain table (fsync and synchronous_commit on)\n"
	       "  --msgdb-dsn  database with Message DB installed (omit: not measured)\n"
	       "  --dir        where the evstore store is made (same filesystem as PostgreSQL)\n"
	       "scripts/bench-peers.sh sets all of it up.\n");
}

static void parse(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dsn", required_argument, NULL, 'd'},
		{"msgdb-dsn", required_argument, NULL, 'm'},
		{"dir", required_argument, NULL, 'D'},
		{"seconds", required_argument, NULL, 's'},
		{"rounds", required_argument, NULL, 'r'},
		{"clients", required_argument, NULL, 'c'},
		{"quick", no_argument, NULL, 'q'},
		{"keep", no_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'd': cfg.dsn = optarg; break;
		case 'm': cfg.mdb_dsn = *optarg ? optarg : NULL; break;
		case 'D': cfg.dir = optarg; break;
		case 's': cfg.seconds = atof(optarg); break;
		case 'r': cfg.rounds = atoi(optarg); break;
		case 'c': cfg.clients = atoi(optarg); break;
		case 'q': cfg.quick = true; break;
		case 'k': cfg.keep = true; break;
		case 'h': usage(); exit(0);
		default: usage(); exit(2);
		}
	}
	if (cfg.quick) {
		cfg.seconds = 0.3;
		cfg.rounds = 1;
	}
	if (!cfg.dsn || cfg.seconds <= 0 || cfg.rounds < 1 || cfg.rounds > 99 || cfg.clients < 1 ||
	    cfg.clients > MAX_CLIENTS) {
		usage();
		exit(2);
	}
}

#define NCONF 4

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	parse(argc, argv);
	const char *root = kit_bench_root("bench_peers", cfg.dir, "bench-peers", cfg.keep);
	event_init();

	PGconn *c = pg_connect(cfg.dsn);
	check_durable(c, "plain table server");
	pg_exec(c, "SET client_min_messages = warning");
	pg_exec(c, plain_ddl);
	printf("bench_peers: durable appends, %d-byte events, one stream per transaction with "
	       "an exact expected version\n",
	       DATA_SIZE);
	print_setup(c, root);
	admin = c;
	store_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (store_fd < 0)
		kit_die("open \"%s\": %s", root, strerror(errno));
	int nsides = 2;
	if (cfg.mdb_dsn) {
		c = pg_connect(cfg.mdb_dsn);
		check_durable(c, "Message DB server");
		char v[64];
		printf("message db: %s (write_message per event; a batch is one pipelined "
		       "transaction)\n",
		       pg_value(c, "SELECT message_store.message_store_version()", v, sizeof v));
		PQfinish(c);
		nsides = 3;
	} else {
		printf("message db: not measured (no --msgdb-dsn)\n");
	}
	printf("fairness: one machine, one run, every side durable, data on one filesystem; "
	       "sides alternate within each round (order rotates); before each slice CHECKPOINT "
	       "+ syncfs, so no side pays for another's deferred writes; clients are threads "
	       "of this process, PostgreSQL over its Unix socket\n");
	printf("figures: median of %d round(s) of %.1f s per side\n", cfg.rounds, cfg.seconds);
	kit_print_load("start");

	char sdir[PATH_MAX];
	kit_bench_path(sdir, "store");
	evs_options o;
	evs_options_init(&o);
	o.sync = EVS_SYNC_FULL;
	int rc = evs_open(sdir, &o, &store);
	if (rc != EVS_OK)
		kit_die("%s", evs_open_errmsg());

	struct {
		const char *label;
		int clients;
		size_t batch;
	} conf[NCONF] = {
		{"1 per txn, 1 client", 1, 1},
		{"1 per txn, N clients", 0, 1},
		{"100 per txn, 1 client", 1, 100},
		{"1000 per txn, 1 client", 1, 1000},
	};
	conf[1].clients = cfg.clients;
	char label1[64];
	snprintf(label1, sizeof label1, "1 per txn, %d clients", cfg.clients);
	conf[1].label = label1;

	double rate[NCONF][NSIDES][100];
	double ratio[NCONF][NSIDES][100];
	for (int k = 0; k < NCONF; k++) {
		for (int r = 0; r < cfg.rounds; r++) {
			for (int j = 0; j < nsides; j++) {
				int s = (j + r) % nsides;
				rate[k][s][r] = measure(s, conf[k].clients, conf[k].batch);
			}
			for (int s = 1; s < nsides; s++)
				ratio[k][s][r] = rate[k][0][r] / rate[k][s][r];
			printf("  %-24s round %d:", conf[k].label, r + 1);
			for (int s = 0; s < nsides; s++) {
				char b[32];
				printf(" %s %s/s%s", side_name[s], kit_num(rate[k][s][r], b),
				       s + 1 < nsides ? "," : "\n");
			}
		}
	}
	evs_close(store);
	PQfinish(admin);
	close(store_fd);

	printf("\nevents/s (median of %d), evstore's multiple of each peer:\n\n", cfg.rounds);
	printf("| batch | evstore | plain PostgreSQL | Message DB | vs plain | vs Message DB |\n");
	printf("|---|---:|---:|---:|---:|---:|\n");
	for (int k = 0; k < NCONF; k++) {
		char b[NSIDES][32];
		double med[NSIDES] = {0}, mult[NSIDES] = {0};
		for (int s = 0; s < nsides; s++) {
			med[s] = kit_median(rate[k][s], (size_t)cfg.rounds);
			kit_num(med[s], b[s]);
			if (s > 0)
				mult[s] = kit_median(ratio[k][s], (size_t)cfg.rounds);
		}
		printf("| %s | %s | %s | %s | %.2fx |", conf[k].label, b[0], b[1],
		       nsides > 2 ? b[2] : "-", mult[1]);
		if (nsides > 2)
			printf(" %.2fx |\n", mult[2]);
		else
			printf(" - |\n");
	}
	kit_print_load("end");
	free(json_array);
	msgpack_sbuffer_destroy(&mp_data);
	kit_bench_cleanup();
	return 0;
}
