/*
 * bench_relay.c - evs-relay's throughput beside the same client library
 * publishing the same messages directly, in the same run (issue 11, "Done
 * when"). A benchmark, not a test: it asserts nothing about speed and exits
 * non-zero only when something fails.
 *
 *   bench_relay [--events N] [--runs R] [--batch B] [--quick] [--keep]
 *
 * A store of N events (200 B data each, 100 streams) is written once. Then,
 * per run, each side in turn:
 *   NATS JetStream  relay: evs-relay from position 0 to a fresh stream
 *                   (sync js_PublishMsg with Nats-Msg-Id and
 *                   Nats-Expected-Last-Sequence), timed from its start until
 *                   its checkpoint is at the head;
 *                   direct: the same messages (built by the relay's own
 *                   rly_batch_add, same subject, ce- headers and body),
 *                   published by libnats with js_PublishMsg and Nats-Msg-Id
 *                   to another fresh stream, one after the other.
 *   RabbitMQ        relay: batch B, publisher confirms per batch;
 *                   direct: the same messages with amqp_basic_publish, B at
 *                   a time, then waiting for the confirms of the B.
 *   webhook         relay: one POST per event to a local receiver
 *                   (libmicrohttpd, answers 204), deliveries/s; direct: the
 *                   same signed-size bodies posted with libcurl, one at a time.
 * Figures are events/s; the verdict is relay/direct per channel (floor 0.5
 * for the brokers).
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <nats/nats.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "kit.h"
#include "relay.h"

static const char *bin_dir; /* evs-relay's folder */
static long n_events = 20000, runs = 2, batch = 100;

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
	    getsockname(fd, (struct sockaddr *)&a, &len))
		kit_die("no free port");
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* The kit's spawn asserts through Check; a benchmark dies with a message. */
static pid_t spawnp(char *const argv[])
{
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);

	if (rc != 0)
		kit_die("could not run \"%s\": %s", argv[0], strerror(rc));
	return pid;
}

static int wait_exit(pid_t pid)
{
	int status = 0;

	while (waitpid(pid, &status, 0) < 0)
		;
	return status;
}

static bool port_open(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

static void wait_port(int port, const char *what)
{
	int64_t end = kit_mono_ms() + 240000;

	while (!port_open(port)) {
		if (kit_mono_ms() > end)
			kit_die("%s did not listen on %d", what, port);
		usleep(20000);
	}
}

/* ---- the store and its messages ------------------------------------------ */

static evs_store *store;
static rly_batch *msgs; /* every event, encoded by the relay's code */
static size_t nmsgs;

static void make_store(void)
{
	char path[4096], blob[160];
	evs_event_in ev[100];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	evs_iter *it;
	evs_event e;

	kit_bench_path(path, "store");
	if (evs_open(path, NULL, &store) != EVS_OK)
		kit_die("open: %s", evs_open_errmsg());
	memset(blob, 'x', sizeof blob);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "amount", 6);
	msgpack_pack_int(&pk, 1234);
	msgpack_pack_str_with_body(&pk, "note", 4);
	msgpack_pack_str_with_body(&pk, blob, sizeof blob);
	for (long done = 0; done < n_events; done += 100) {
		char stream[32];
		memset(ev, 0, sizeof ev);
		for (int i = 0; i < 100; i++) {
			ev[i].type = "AmountDeposited";
			ev[i].data = sb.data;
			ev[i].data_len = sb.size;
		}
		snprintf(stream, sizeof stream, "account-%ld", (done / 100) % 100);
		if (evs_append(store, stream, EVS_ANY, ev, 100, NULL) != EVS_OK)
			kit_die("append: %s", evs_errmsg(store));
	}
	msgpack_sbuffer_destroy(&sb);
	msgs = calloc((size_t)(n_events + RLY_MAX_BATCH - 1) / RLY_MAX_BATCH, sizeof *msgs);
	if (msgs == NULL || evs_read_all(store, 1, EVS_FORWARD, NULL, 0, &it) != EVS_OK)
		kit_die("read");
	while (evs_iter_next(it, &e) == EVS_OK) {
		rly_batch *b = &msgs[nmsgs / RLY_MAX_BATCH];
		if (rly_batch_add(b, &e, "urn:evstore:bench") != EVS_OK)
			kit_die("encode");
		nmsgs++;
	}
	evs_iter_free(it);
}

#define EACH_MSG(b, m)                                             \
	for (size_t bi_ = 0; bi_ * RLY_MAX_BATCH < nmsgs; bi_++)   \
		for (const rly_batch *b = &msgs[bi_]; b; b = NULL) \
			for (const rly_msg *m = b->msgs; m < b->msgs + b->n; m++)

/* ---- evs-relay, timed until its checkpoint is at the head --------------- */

static double run_relay(const char *sink, const char *config_text)
{
	char conf[4096], spath[4096], relay[4096], key[RLY_KEY_MAX];
	uint64_t pos = 0;
	FILE *f;

	kit_bench_path(conf, "relay.conf");
	kit_bench_path(spath, "store");
	snprintf(relay, sizeof relay, "%s/evs-relay", bin_dir);
	if ((f = fopen(conf, "w")) == NULL || fputs(config_text, f) < 0 || fclose(f))
		kit_die("config");
	rly_key(key, sink, "");
	evs_checkpoint_delete(store, key);
	int64_t t0 = kit_mono_ns();
	char *argv[] = {relay, "--store", spath, "--config", conf, "--log-level", "warning", NULL};
	pid_t pid = spawnp(argv);
	while (evs_checkpoint_get(store, key, &pos) != EVS_OK || pos < nmsgs) {
		if (kit_mono_ns() - t0 > (int64_t)600e9)
			kit_die("relay \"%s\" stuck at %llu", sink, (unsigned long long)pos);
		usleep(2000);
	}
	double s = (double)(kit_mono_ns() - t0) / 1e9;
	kill(pid, SIGTERM);
	if (wait_exit(pid) != 0)
		kit_die("evs-relay failed");
	return (double)nmsgs / s;
}

/* ---- NATS JetStream ------------------------------------------------------ */

static int nats_port;

static int nats_hdr(void *ctx, const char *name, const char *value)
{
	char key[64];

	snprintf(key, sizeof key, "ce-%s", name);
	return natsMsgHeader_Set(ctx, key, value) != NATS_OK;
}

static double nats_direct(const char *stream)
{
	char url[64], subj[512];
	natsConnection *nc;
	jsCtx *js;
	jsStreamConfig sc;
	jsErrCode jerr;
	const char *subjects[1] = {"direct.>"};
	evs__buf s = {0};

	snprintf(url, sizeof url, "nats://127.0.0.1:%d", nats_port);
	if (natsConnection_ConnectTo(&nc, url) != NATS_OK ||
	    natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
		kit_die("nats connect");
	js_DeleteStream(js, stream, NULL, &jerr);
	jsStreamConfig_Init(&sc);
	sc.Name = stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	if (js_AddStream(NULL, js, &sc, NULL, &jerr) != NATS_OK)
		kit_die("nats add stream %d", (int)jerr);
	int64_t t0 = kit_mono_ns();
	EACH_MSG(b, m)
	{
		natsMsg *msg;
		jsPubOptions po;
		jsPubAck *ack = NULL;
		rly_template(&s, "direct.{category}.{type}", rly_at(b, m->type), m->type_len,
			     rly_at(b, m->stream), m->stream_len, true);
		snprintf(subj, sizeof subj, "%s", s.ptr);
		if (natsMsg_Create(&msg, subj, NULL, rly_at(b, m->data), (int)m->data_len) !=
			    NATS_OK ||
		    natsMsgHeader_Set(msg, "Content-Type", "application/json") != NATS_OK ||
		    rly_ce_attributes(b, m, "urn:evstore:bench", nats_hdr, msg) != 0)
			kit_die("nats message");
		jsPubOptions_Init(&po);
		po.MsgId = m->id;
		if (js_PublishMsg(&ack, js, msg, &po, &jerr) != NATS_OK)
			kit_die("nats publish %d", (int)jerr);
		jsPubAck_Destroy(ack);
		natsMsg_Destroy(msg);
	}
	double rate = (double)nmsgs / ((double)(kit_mono_ns() - t0) / 1e9);
	js_DeleteStream(js, stream, NULL, &jerr);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	evs__buf_free(&s);
	return rate;
}

static double nats_relay(int run)
{
	char conf[512], stream[32];

	snprintf(stream, sizeof stream, "RELAY%d", run);
	snprintf(conf, sizeof conf,
		 "[sink natsbench]\nkind = nats\nurl = nats://127.0.0.1:%d\nstream = %s\n"
		 "subject = relay%d.{category}.{type}\nbatch = %ld\n",
		 nats_port, stream, run, batch);
	return run_relay("natsbench", conf);
}

/* ---- RabbitMQ ------------------------------------------------------------ */

static int amqp_port;

struct amqp_hdrs {
	amqp_table_entry_t e[16];
	char k[16][48], v[16][128];
	int n;
};

static int amqp_hdr(void *ctx, const char *name, const char *value)
{
	struct amqp_hdrs *h = ctx;

	snprintf(h->k[h->n], sizeof h->k[0], "cloudEvents_%s", name);
	snprintf(h->v[h->n], sizeof h->v[0], "%s", value);
	h->e[h->n].key = amqp_cstring_bytes(h->k[h->n]);
	h->e[h->n].value.kind = AMQP_FIELD_KIND_UTF8;
	h->e[h->n].value.value.bytes = amqp_cstring_bytes(h->v[h->n]);
	h->n++;
	return 0;
}

static amqp_connection_state_t amqp_connect_bench(void)
{
	amqp_connection_state_t c = amqp_new_connection();
	amqp_socket_t *sock = amqp_tcp_socket_new(c);
	amqp_confirm_select_t sel = {0};

	if (amqp_socket_open(sock, "127.0.0.1", amqp_port) != AMQP_STATUS_OK ||
	    amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type !=
		    AMQP_RESPONSE_NORMAL)
		kit_die("amqp connect");
	amqp_channel_open(c, 1);
	amqp_simple_rpc_decoded(c, 1, AMQP_CONFIRM_SELECT_METHOD, AMQP_CONFIRM_SELECT_OK_METHOD,
				&sel);
	amqp_exchange_declare(c, 1, amqp_cstring_bytes("bench"), amqp_cstring_bytes("topic"), 0, 1,
			      0, 0, amqp_empty_table);
	amqp_queue_declare(c, 1, amqp_cstring_bytes("bench"), 0, 1, 0, 0, amqp_empty_table);
	amqp_queue_bind(c, 1, amqp_cstring_bytes("bench"), amqp_cstring_bytes("bench"),
			amqp_cstring_bytes("#"), amqp_empty_table);
	if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
		kit_die("amqp setup");
	return c;
}

static void amqp_purge(amqp_connection_state_t c)
{
	amqp_queue_purge(c, 1, amqp_cstring_bytes("bench"));
}

static double amqp_direct(void)
{
	amqp_connection_state_t c = amqp_connect_bench();
	evs__buf key = {0};
	uint64_t tag = 0;
	long inflight = 0;

	amqp_purge(c);
	int64_t t0 = kit_mono_ns();
	EACH_MSG(b, m)
	{
		amqp_basic_properties_t p = {0};
		struct amqp_hdrs h = {.n = 0};
		rly_ce_attributes(b, m, "urn:evstore:bench", amqp_hdr, &h);
		rly_template(&key, "{category}.{type}", rly_at(b, m->type), m->type_len,
			     rly_at(b, m->stream), m->stream_len, false);
		p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
			   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG |
			   AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG |
			   AMQP_BASIC_HEADERS_FLAG;
		p.content_type = amqp_cstring_bytes("application/json");
		p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
		p.message_id = amqp_cstring_bytes(m->id);
		p.type = amqp_cstring_bytes(rly_at(b, m->type));
		p.timestamp = (uint64_t)(m->recorded_at / 1000000000);
		p.app_id = amqp_cstring_bytes("evs-relay");
		p.headers.num_entries = h.n;
		p.headers.entries = h.e;
		amqp_bytes_t body = {m->data_len, (void *)rly_at(b, m->data)};
		if (amqp_basic_publish(c, 1, amqp_cstring_bytes("bench"),
				       amqp_cstring_bytes(key.ptr), 1, 0, &p,
				       body) != AMQP_STATUS_OK)
			kit_die("amqp publish");
		tag++;
		if (++inflight == batch || tag == nmsgs) {
			/* wait for the confirm of the last one (the broker confirms in order) */
			for (;;) {
				amqp_frame_t f;
				if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK)
					kit_die("amqp confirms");
				if (f.frame_type == AMQP_FRAME_METHOD &&
				    f.payload.method.id == AMQP_BASIC_ACK_METHOD &&
				    ((amqp_basic_ack_t *)f.payload.method.decoded)->delivery_tag ==
					    tag)
					break;
			}
			inflight = 0;
			amqp_maybe_release_buffers(c);
		}
	}
	double rate = (double)nmsgs / ((double)(kit_mono_ns() - t0) / 1e9);
	amqp_purge(c);
	amqp_destroy_connection(c);
	evs__buf_free(&key);
	return rate;
}

static double amqp_relay(void)
{
	char conf[512];
	amqp_connection_state_t c = amqp_connect_bench();
	double rate;

	amqp_purge(c);
	snprintf(conf, sizeof conf,
		 "[sink amqpbench]\nkind = rabbitmq\nurl = amqp://guest:guest@127.0.0.1:%d\n"
		 "exchange = bench\nbatch = %ld\n",
		 amqp_port, batch);
	rate = run_relay("amqpbench", conf);
	amqp_purge(c);
	amqp_destroy_connection(c);
	return rate;
}

/* ---- webhooks ------------------------------------------------------------ */

static int hook_port;

static enum MHD_Result hook_answer(void *cls, struct MHD_Connection *c, const char *url,
				   const char *method, const char *version, const char *upload,
				   size_t *upload_len, void **req)
{
	static int marker;
	struct MHD_Response *r;
	enum MHD_Result rc;

	(void)cls, (void)url, (void)method, (void)version, (void)upload;
	if (*req == NULL) {
		*req = &marker;
		return MHD_YES;
	}
	if (*upload_len) {
		*upload_len = 0; /* the body is read and dropped */
		return MHD_YES;
	}
	r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	rc = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, r);
	MHD_destroy_response(r);
	return rc;
}

static size_t sink_body(char *p, size_t s, size_t n, void *u)
{
	(void)p, (void)u;
	return s * n;
}

static double hook_direct(void)
{
	char url[64];
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;

	snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", hook_port);
	hl = curl_slist_append(hl, "Content-Type: application/cloudevents+json");
	hl = curl_slist_append(
		hl, "webhook-signature: v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_body);
	int64_t t0 = kit_mono_ns();
	EACH_MSG(b, m)
	{
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, rly_at(b, m->body));
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)m->body_len);
		if (curl_easy_perform(c) != CURLE_OK)
			kit_die("curl");
	}
	double rate = (double)nmsgs / ((double)(kit_mono_ns() - t0) / 1e9);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return rate;
}

static double hook_relay(void)
{
	char conf[512];

	snprintf(conf, sizeof conf,
		 "[sink hookbench]\nkind = webhook\nurl = http://127.0.0.1:%d/hook\n"
		 "secret = whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
		 hook_port);
	return run_relay("hookbench", conf);
}

/* ---- main ------------------------------------------------------------------ */

static pid_t start_nats(void)
{
	char port[16], dir[4096];

	nats_port = free_port();
	snprintf(port, sizeof port, "%d", nats_port);
	kit_bench_path(dir, "nats");
	char *argv[] = {"nats-server", "-js", "-a", "127.0.0.1", "-p", port,
			"-sd",         dir,   "-l", "/dev/null", NULL};
	int64_t t0 = kit_mono_ms();
	pid_t pid = spawnp(argv);
	wait_port(nats_port, "nats-server");
	printf("nats-server ready in %lld ms\n", (long long)(kit_mono_ms() - t0));
	return pid;
}

static pid_t start_rabbit(void)
{
	char dir[4096], path[4096 + 64], env[8][4200];
	FILE *f;

	amqp_port = free_port();
	kit_bench_path(dir, "rabbit");
	mkdir(dir, 0755);
	snprintf(path, sizeof path, "%s/rabbitmq.conf", dir);
	if ((f = fopen(path, "w")) == NULL)
		kit_die("rabbit conf");
	fprintf(f, "listeners.tcp.default = 127.0.0.1:%d\n", amqp_port);
	fclose(f);
	snprintf(path, sizeof path, "%s/enabled_plugins", dir);
	if ((f = fopen(path, "w")) == NULL)
		kit_die("rabbit plugins");
	fputs("[].\n", f);
	fclose(f);
	snprintf(env[0], sizeof env[0], "HOME=%s", dir);
	snprintf(env[1], sizeof env[1], "RABBITMQ_MNESIA_BASE=%s/mnesia", dir);
	snprintf(env[2], sizeof env[2], "RABBITMQ_LOG_BASE=%s/log", dir);
	snprintf(env[3], sizeof env[3], "RABBITMQ_NODENAME=bench%d@localhost", amqp_port);
	snprintf(env[4], sizeof env[4], "RABBITMQ_CONFIG_FILE=%s/rabbitmq", dir);
	snprintf(env[5], sizeof env[5], "RABBITMQ_ENABLED_PLUGINS_FILE=%s/enabled_plugins", dir);
	snprintf(env[6], sizeof env[6], "RABBITMQ_DIST_PORT=%d", free_port());
	snprintf(env[7], sizeof env[7], "ERL_EPMD_PORT=%d", free_port());
	for (int i = 0; i < 8; i++)
		putenv(env[i]);
	int64_t t0 = kit_mono_ms();
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		setsid();
		if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
			_exit(127);
		execl("/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server", (char *)NULL);
		_exit(127);
	}
	wait_port(amqp_port, "rabbitmq-server");
	printf("rabbitmq-server ready in %lld ms\n", (long long)(kit_mono_ms() - t0));
	return pid;
}

int main(int argc, char **argv)
{
	bool keep = false;
	struct MHD_Daemon *hook;
	pid_t nats, rabbit;
	char epmd[64];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--events") && i + 1 < argc)
			n_events = atol(argv[++i]) / 100 * 100;
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atol(argv[++i]);
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			batch = atol(argv[++i]);
		else if (!strcmp(argv[i], "--quick"))
			n_events = 1000, runs = 1;
		else if (!strcmp(argv[i], "--keep"))
			keep = true;
		else if (!strcmp(argv[i], "--bin") && i + 1 < argc)
			bin_dir = argv[++i];
		else
			kit_die("usage: bench_relay --bin DIR [--events N] [--runs R] [--batch B] "
				"[--quick] [--keep]");
	}
	if (bin_dir == NULL || n_events < 100 || runs < 1 || batch < 1 || batch > RLY_MAX_BATCH)
		kit_die("bad arguments (--bin is evs-relay's folder)");
	kit_bench_root("bench_relay", NULL, "bench-relay", keep);
	printf("bench_relay: %ld events (200 B data), %ld runs, batch %ld\n", n_events, runs,
	       batch);
	kit_print_load("start");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	make_store();
	hook_port = free_port();
	hook = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)hook_port, NULL, NULL,
				hook_answer, NULL, MHD_OPTION_END);
	if (hook == NULL)
		kit_die("receiver");
	nats = start_nats();
	rabbit = start_rabbit();
	snprintf(epmd, sizeof epmd, "%s", getenv("ERL_EPMD_PORT"));
	double worst_nats = 1e9, worst_amqp = 1e9;
	for (long r = 1; r <= runs; r++) {
		double nd = nats_direct("DIRECT"), nr = nats_relay((int)r);
		double ad = amqp_direct(), ar = amqp_relay();
		double hd = hook_direct(), hr = hook_relay();
		printf("run %ld: NATS JetStream  relay %9.0f/s  direct %9.0f/s  ratio %.2f\n", r,
		       nr, nd, nr / nd);
		printf("run %ld: RabbitMQ        relay %9.0f/s  direct %9.0f/s  ratio %.2f\n", r,
		       ar, ad, ar / ad);
		printf("run %ld: webhook         relay %9.0f/s  direct %9.0f/s  ratio %.2f "
		       "(deliveries/s to a local receiver)\n",
		       r, hr, hd, hr / hd);
		fflush(stdout);
		worst_nats = nr / nd < worst_nats ? nr / nd : worst_nats;
		worst_amqp = ar / ad < worst_amqp ? ar / ad : worst_amqp;
	}
	printf("verdict: NATS ratio %.2f (floor 0.5: %s), RabbitMQ ratio %.2f (floor 0.5: %s)\n",
	       worst_nats, worst_nats >= 0.5 ? "holds" : "MISSED", worst_amqp,
	       worst_amqp >= 0.5 ? "holds" : "MISSED");
	kit_print_load("end");
	MHD_stop_daemon(hook);
	kill(nats, SIGTERM);
	waitpid(nats, NULL, 0);
	kill(-rabbit, SIGTERM);
	waitpid(rabbit, NULL, 0);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "epmd -port %s -kill >/dev/null", epmd);
	char *kill_epmd[] = {"sh", "-c", cmd, NULL};
	wait_exit(spawnp(kill_epmd));
	evs_close(store);
	kit_bench_cleanup();
	return 0;
}
