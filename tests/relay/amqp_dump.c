/*
 * amqp_dump.c - the relay tests' RabbitMQ client (librabbitmq), independent
 * of evs-relay's code:
 *
 *   amqp_dump URL QUEUE setup   declare the durable topic exchange "evstore",
 *                               the durable QUEUE and bind it with "#"
 *   amqp_dump URL QUEUE count   the messages waiting in QUEUE
 *   amqp_dump URL QUEUE show    take the first message and print it as a
 *                               consumer sees it: exchange, routing key,
 *                               properties, headers in their order, body
 *                               (README's example output)
 *   amqp_dump URL QUEUE drain   take every message (basic.get), one JSON line
 *                               each: {"id":message_id,"type":..,"persistent":
 *                               bool,"stream":..,"version":..,"position":..,
 *                               "ceid":..,"data":<the body as it is>}
 *
 * Exit status 0, or 1 with a message on stderr.
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ok(amqp_rpc_reply_t x, const char *what)
{
	if (x.reply_type == AMQP_RESPONSE_NORMAL)
		return 1;
	fprintf(stderr, "amqp_dump: %s failed (%d)\n", what, (int)x.reply_type);
	return 0;
}

static void header(const amqp_table_t *t, const char *key, char *out, size_t n)
{
	out[0] = 0;
	for (int i = 0; i < t->num_entries; i++) {
		const amqp_table_entry_t *e = &t->entries[i];
		if (e->key.len == strlen(key) && !memcmp(e->key.bytes, key, e->key.len) &&
		    (e->value.kind == AMQP_FIELD_KIND_UTF8 ||
		     e->value.kind == AMQP_FIELD_KIND_BYTES))
			snprintf(out, n, "%.*s", (int)e->value.value.bytes.len,
				 (const char *)e->value.value.bytes.bytes);
	}
}

int main(int argc, char **argv)
{
	struct amqp_connection_info ci;
	amqp_connection_state_t c;
	amqp_socket_t *sock;

	if (argc != 4) {
		fputs("usage: amqp_dump URL QUEUE setup|count|drain\n", stderr);
		return 2;
	}
	if (amqp_parse_url(argv[1], &ci) != AMQP_STATUS_OK)
		return 2;
	c = amqp_new_connection();
	sock = amqp_tcp_socket_new(c);
	if (amqp_socket_open(sock, ci.host, ci.port) != AMQP_STATUS_OK) {
		fputs("amqp_dump: could not connect\n", stderr);
		return 1;
	}
	if (!ok(amqp_login(c, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password),
		"login"))
		return 1;
	amqp_channel_open(c, 1);
	if (!ok(amqp_get_rpc_reply(c), "channel.open"))
		return 1;
	amqp_bytes_t q = amqp_cstring_bytes(argv[2]);
	if (!strcmp(argv[3], "setup")) {
		amqp_exchange_declare(c, 1, amqp_cstring_bytes("evstore"),
				      amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
		if (!ok(amqp_get_rpc_reply(c), "exchange.declare"))
			return 1;
		amqp_queue_declare(c, 1, q, 0, 1, 0, 0, amqp_empty_table);
		if (!ok(amqp_get_rpc_reply(c), "queue.declare"))
			return 1;
		amqp_queue_bind(c, 1, q, amqp_cstring_bytes("evstore"), amqp_cstring_bytes("#"),
				amqp_empty_table);
		if (!ok(amqp_get_rpc_reply(c), "queue.bind"))
			return 1;
	} else if (!strcmp(argv[3], "count")) {
		amqp_queue_declare_ok_t *r =
			amqp_queue_declare(c, 1, q, 1, 0, 0, 0, amqp_empty_table);
		if (!ok(amqp_get_rpc_reply(c), "queue.declare passive"))
			return 1;
		printf("%u\n", r->message_count);
	} else if (!strcmp(argv[3], "show")) {
		amqp_rpc_reply_t x = amqp_basic_get(c, 1, q, 1);
		amqp_message_t m;
		if (!ok(x, "basic.get") || x.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
			return 1;
		amqp_basic_get_ok_t *g = x.reply.decoded;
		printf("exchange: %.*s\nrouting key: %.*s\n", (int)g->exchange.len,
		       (const char *)g->exchange.bytes, (int)g->routing_key.len,
		       (const char *)g->routing_key.bytes);
		if (!ok(amqp_read_message(c, 1, &m, 0), "read message"))
			return 1;
		amqp_basic_properties_t *p = &m.properties;
		printf("content_type: %.*s\ndelivery_mode: %d\nmessage_id: %.*s\ntype: %.*s\n"
		       "timestamp: %llu\napp_id: %.*s\n",
		       (int)p->content_type.len, (const char *)p->content_type.bytes,
		       p->delivery_mode, (int)p->message_id.len, (const char *)p->message_id.bytes,
		       (int)p->type.len, (const char *)p->type.bytes,
		       (unsigned long long)p->timestamp, (int)p->app_id.len,
		       (const char *)p->app_id.bytes);
		for (int i = 0; i < p->headers.num_entries; i++) {
			amqp_table_entry_t *e = &p->headers.entries[i];
			printf("%.*s: %.*s\n", (int)e->key.len, (const char *)e->key.bytes,
			       (int)e->value.value.bytes.len,
			       (const char *)e->value.value.bytes.bytes);
		}
		printf("body: %.*s\n", (int)m.body.len, (const char *)m.body.bytes);
		amqp_destroy_message(&m);
	} else {
		for (;;) {
			amqp_rpc_reply_t x = amqp_basic_get(c, 1, q, 1);
			amqp_message_t m;
			char stream[512], version[32], position[32], ceid[64];
			if (!ok(x, "basic.get"))
				return 1;
			if (x.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
				break;
			if (!ok(amqp_read_message(c, 1, &m, 0), "read message"))
				return 1;
			header(&m.properties.headers, "cloudEvents_subject", stream, sizeof stream);
			header(&m.properties.headers, "cloudEvents_streamversion", version,
			       sizeof version);
			header(&m.properties.headers, "cloudEvents_position", position,
			       sizeof position);
			header(&m.properties.headers, "cloudEvents_id", ceid, sizeof ceid);
			printf("{\"id\":\"%.*s\",\"type\":\"%.*s\",\"persistent\":%s,\"stream\":\"%s\","
			       "\"version\":%s,\"position\":%s,\"ceid\":\"%s\",\"data\":%.*s}\n",
			       (int)m.properties.message_id.len,
			       (const char *)m.properties.message_id.bytes,
			       (int)m.properties.type.len, (const char *)m.properties.type.bytes,
			       m.properties.delivery_mode == 2 ? "true" : "false", stream,
			       version[0] ? version : "0", position[0] ? position : "0", ceid,
			       (int)m.body.len, (const char *)m.body.bytes);
			amqp_destroy_message(&m);
			amqp_maybe_release_buffers(c);
		}
	}
	amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
	return fflush(stdout) == 0 ? 0 : 1;
}
