/*
 * amqp.c - the RabbitMQ sink: AMQP 0-9-1 through librabbitmq (rabbitmq-c
 * 0.11, which has no publisher-confirm helper: the confirms are read
 * frame by frame here).
 *
 * Each event is one persistent message (delivery_mode 2) published with
 * mandatory set to the exchange and routing key of the sink's templates
 * (defaults "evstore" and "{category}.{type}"); exchanges are declared
 * durable topic exchanges on first use. CloudEvents binary mode: the body
 * is the event's data as JSON (content_type application/json), message_id
 * is the event id, type the event type, timestamp recorded_at in seconds,
 * app_id "evs-relay", and the attributes are headers "cloudEvents_<name>"
 * (the CloudEvents AMQP binding's prefix: cloudEvents_id, _source, _type,
 * _subject = the stream, _time, _position, _streamversion, ...).
 *
 * The channel is in confirm mode: a batch is published, then the broker's
 * basic.ack / basic.nack frames are read until every delivery tag of the
 * batch is settled or timeout-ms passes. A message counts as acknowledged
 * only with a basic.ack and no basic.return (mandatory: a message no
 * queue took comes back, which is a failure here, retried with backoff,
 * so nothing is dropped silently for want of a binding). The leading run
 * of acknowledged messages is what the checkpoint may pass; a nack, a
 * return, a timeout or a closed channel or connection ends the attempt
 * (the connection is dropped and opened again on the next one).
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "relay.h"

#define MAX_DECLARED 16

typedef struct asink {
	amqp_connection_state_t conn;
	bool open;
	uint64_t next_tag; /* delivery tag of the last publish on the channel */
	char *declared[MAX_DECLARED];
	size_t ndeclared;
	evs__buf exchange, key, headers;
	bool settled[RLY_MAX_BATCH], acked[RLY_MAX_BATCH];
} asink;

static int am_open(rly_sink *s, char *err, size_t errlen)
{
	struct amqp_connection_info ci;
	char *url = strdup(s->cfg->url);

	if (url == NULL || amqp_parse_url(url, &ci) != AMQP_STATUS_OK) {
		snprintf(err, errlen, "invalid rabbitmq url \"%s\"", s->cfg->url);
		free(url);
		return -1;
	}
	free(url);
	if ((s->impl = calloc(1, sizeof(asink))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static void drop(asink *a)
{
	if (a->conn) {
		if (a->open)
			amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(a->conn);
	}
	a->conn = NULL;
	a->open = false;
	for (size_t i = 0; i < a->ndeclared; i++)
		free(a->declared[i]);
	a->ndeclared = 0;
}

static void am_close(rly_sink *s)
{
	asink *a = s->impl;

	if (a == NULL)
		return;
	drop(a);
	evs__buf_free(&a->exchange);
	evs__buf_free(&a->key);
	evs__buf_free(&a->headers);
	free(a);
	s->impl = NULL;
}

static void fail_reply(rly_result *r, const char *what, amqp_rpc_reply_t x)
{
	r->outcome = RLY_RETRY;
	if (x.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
		snprintf(r->why, sizeof r->why, "%s: %s", what,
			 amqp_error_string2(x.library_error));
	else if (x.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
		 (x.reply.id == AMQP_CONNECTION_CLOSE_METHOD ||
		  x.reply.id == AMQP_CHANNEL_CLOSE_METHOD)) {
		amqp_channel_close_t *c = x.reply.decoded; /* same layout as connection.close */
		snprintf(r->why, sizeof r->why, "%s: server: %d %.*s", what, c->reply_code,
			 (int)c->reply_text.len, (const char *)c->reply_text.bytes);
	} else
		snprintf(r->why, sizeof r->why, "%s: failed", what);
}

static int connect_amqp(rly_sink *s, asink *a, rly_result *r)
{
	struct amqp_connection_info ci;
	struct timeval tv = {s->cfg->timeout_ms / 1000, (s->cfg->timeout_ms % 1000) * 1000};
	amqp_socket_t *sock;
	amqp_rpc_reply_t x;
	amqp_confirm_select_t sel = {0};
	char *url;
	int st;

	if (a->open)
		return 0;
	drop(a);
	if ((url = strdup(s->cfg->url)) == NULL || amqp_parse_url(url, &ci) != AMQP_STATUS_OK) {
		free(url);
		r->outcome = RLY_RETRY;
		snprintf(r->why, sizeof r->why, "out of memory");
		return -1;
	}
	if ((a->conn = amqp_new_connection()) == NULL ||
	    (sock = amqp_tcp_socket_new(a->conn)) == NULL) {
		free(url);
		r->outcome = RLY_RETRY;
		snprintf(r->why, sizeof r->why, "out of memory");
		return -1;
	}
	amqp_set_handshake_timeout(a->conn, &tv);
	amqp_set_rpc_timeout(a->conn, &tv);
	if ((st = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv)) != AMQP_STATUS_OK) {
		r->outcome = RLY_RETRY;
		snprintf(r->why, sizeof r->why, "could not connect to %s:%d: %s", ci.host, ci.port,
			 amqp_error_string2(st));
		free(url);
		return -1;
	}
	x = amqp_login(a->conn, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user,
		       ci.password);
	free(url);
	if (x.reply_type != AMQP_RESPONSE_NORMAL) {
		fail_reply(r, "could not log in", x);
		return -1;
	}
	a->open = true;
	amqp_channel_open(a->conn, 1);
	if ((x = amqp_get_rpc_reply(a->conn)).reply_type != AMQP_RESPONSE_NORMAL) {
		fail_reply(r, "could not open a channel", x);
		return -1;
	}
	amqp_simple_rpc_decoded(a->conn, 1, AMQP_CONFIRM_SELECT_METHOD,
				AMQP_CONFIRM_SELECT_OK_METHOD, &sel);
	if ((x = amqp_get_rpc_reply(a->conn)).reply_type != AMQP_RESPONSE_NORMAL) {
		fail_reply(r, "could not turn on publisher confirms", x);
		return -1;
	}
	a->next_tag = 0;
	return 0;
}

static int declare(asink *a, const char *exchange, rly_result *r)
{
	amqp_rpc_reply_t x;

	for (size_t i = 0; i < a->ndeclared; i++)
		if (!strcmp(a->declared[i], exchange))
			return 0;
	amqp_exchange_declare(a->conn, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes("topic"),
			      0, 1, 0, 0, amqp_empty_table);
	if ((x = amqp_get_rpc_reply(a->conn)).reply_type != AMQP_RESPONSE_NORMAL) {
		fail_reply(r, "could not declare the exchange", x);
		return -1;
	}
	if (a->ndeclared == MAX_DECLARED) {
		free(a->declared[0]);
		memmove(a->declared, a->declared + 1, (MAX_DECLARED - 1) * sizeof a->declared[0]);
		a->ndeclared--;
	}
	if ((a->declared[a->ndeclared] = strdup(exchange)) != NULL)
		a->ndeclared++;
	return 0;
}

/* The attributes as headers: copies in an arena (the callback's values are
 * the caller's scratch), pointed at once all are in. */
struct hdrs {
	amqp_table_entry_t e[16];
	size_t key_off[16], val_off[16], val_len[16];
	evs__buf *arena;
	int n;
};

static int add_header(void *ctx, const char *name, const char *value)
{
	struct hdrs *h = ctx;

	if (h->n == 16)
		return 1;
	h->key_off[h->n] = h->arena->len;
	evs__buf_printf(h->arena, "cloudEvents_%s", name);
	evs__buf_putc(h->arena, 0);
	h->val_off[h->n] = h->arena->len;
	h->val_len[h->n] = strlen(value);
	evs__buf_puts(h->arena, value);
	evs__buf_putc(h->arena, 0);
	h->n++;
	return h->arena->oom;
}

static void point_headers(struct hdrs *h)
{
	for (int i = 0; i < h->n; i++) {
		h->e[i].key = amqp_cstring_bytes(h->arena->ptr + h->key_off[i]);
		h->e[i].value.kind = AMQP_FIELD_KIND_UTF8;
		h->e[i].value.value.bytes.len = h->val_len[i];
		h->e[i].value.value.bytes.bytes = h->arena->ptr + h->val_off[i];
	}
}

static int publish(rly_sink *s, asink *a, const rly_batch *b, size_t i, rly_result *r)
{
	const rly_msg *m = &b->msgs[i];
	amqp_basic_properties_t p = {0};
	struct hdrs h = {.n = 0, .arena = &a->headers};
	int st;

	if (rly_template(&a->exchange, s->cfg->exchange, rly_at(b, m->type), m->type_len,
			 rly_at(b, m->stream), m->stream_len, false) ||
	    rly_template(&a->key, s->cfg->routing_key, rly_at(b, m->type), m->type_len,
			 rly_at(b, m->stream), m->stream_len, false)) {
		r->outcome = RLY_RETRY;
		snprintf(r->why, sizeof r->why, "out of memory");
		return -1;
	}
	if (declare(a, a->exchange.ptr, r) != 0)
		return -1;
	evs__buf_reset(&a->headers);
	if (rly_ce_attributes(b, m, s->source, add_header, &h) != 0) {
		r->outcome = RLY_RETRY;
		snprintf(r->why, sizeof r->why, "out of memory");
		return -1;
	}
	point_headers(&h);
	p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
		   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
		   AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
	p.content_type = amqp_cstring_bytes("application/json");
	p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	p.message_id = amqp_cstring_bytes(m->id);
	p.type = amqp_cstring_bytes(rly_at(b, m->type));
	p.timestamp = (uint64_t)(m->recorded_at / 1000000000);
	p.app_id = amqp_cstring_bytes("evs-relay");
	p.headers.num_entries = h.n;
	p.headers.entries = h.e;
	amqp_bytes_t body = {m->data_len, (void *)rly_at(b, m->data)};
	st = amqp_basic_publish(a->conn, 1, amqp_cstring_bytes(a->exchange.ptr),
				amqp_cstring_bytes(a->key.ptr), 1, 0, &p, body);
	if (st != AMQP_STATUS_OK) {
		r->outcome = RLY_RETRY;
		snprintf(r->why, sizeof r->why, "could not publish: %s", amqp_error_string2(st));
		return -1;
	}
	return 0;
}

/* Read confirms until the n publishes from first_tag are settled. */
static int confirms(rly_sink *s, asink *a, const rly_batch *b, uint64_t first_tag, size_t n,
		    rly_result *r)
{
	int64_t deadline = rly_mono_ms() + s->cfg->timeout_ms;
	size_t settled = 0;

	memset(a->settled, 0, n * sizeof a->settled[0]);
	memset(a->acked, 0, n * sizeof a->acked[0]);
	while (settled < n) {
		int64_t left = deadline - rly_mono_ms();
		struct timeval tv = {left > 0 ? left / 1000 : 0,
				     left > 0 ? (left % 1000) * 1000 : 0};
		amqp_frame_t f;
		int st;

		amqp_maybe_release_buffers(a->conn);
		st = amqp_simple_wait_frame_noblock(a->conn, &f, &tv);
		if (st == AMQP_STATUS_TIMEOUT) {
			r->outcome = RLY_RETRY;
			snprintf(r->why, sizeof r->why, "no publisher confirm in %ld ms",
				 s->cfg->timeout_ms);
			return -1;
		}
		if (st != AMQP_STATUS_OK) {
			r->outcome = RLY_RETRY;
			snprintf(r->why, sizeof r->why, "connection lost: %s",
				 amqp_error_string2(st));
			return -1;
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		if (f.payload.method.id == AMQP_BASIC_ACK_METHOD ||
		    f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
			bool ack = f.payload.method.id == AMQP_BASIC_ACK_METHOD;
			uint64_t tag =
				ack ? ((amqp_basic_ack_t *)f.payload.method.decoded)->delivery_tag
				    : ((amqp_basic_nack_t *)f.payload.method.decoded)->delivery_tag;
			bool multiple =
				ack ? ((amqp_basic_ack_t *)f.payload.method.decoded)->multiple
				    : ((amqp_basic_nack_t *)f.payload.method.decoded)->multiple;
			for (size_t i = 0; i < n; i++) {
				uint64_t t = first_tag + i;
				if (a->settled[i] || (multiple ? t > tag : t != tag))
					continue;
				a->settled[i] = true;
				a->acked[i] = ack;
				settled++;
			}
		} else if (f.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
			amqp_basic_return_t *ret = f.payload.method.decoded;
			amqp_message_t msg;
			int code = ret->reply_code;
			amqp_rpc_reply_t x = amqp_read_message(a->conn, 1, &msg, 0);
			if (x.reply_type != AMQP_RESPONSE_NORMAL) {
				fail_reply(r, "could not read a returned message", x);
				return -1;
			}
			/* the message no queue took: never acknowledged */
			for (size_t i = 0; i < n; i++)
				if (msg.properties.message_id.len == 36 &&
				    !memcmp(msg.properties.message_id.bytes, b->msgs[i].id, 36))
					a->acked[i] = false, a->settled[i] = true, settled++;
			snprintf(r->why, sizeof r->why,
				 "message returned by the broker (%d: no queue bound for it)",
				 code);
			amqp_destroy_message(&msg);
		} else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
			   f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_channel_close_t *c = f.payload.method.decoded;
			r->outcome = RLY_RETRY;
			snprintf(r->why, sizeof r->why, "closed by the broker: %d %.*s",
				 c->reply_code, (int)c->reply_text.len,
				 (const char *)c->reply_text.bytes);
			return -1;
		}
	}
	return 0;
}

static void am_deliver(rly_sink *s, const rly_batch *b, rly_result *r)
{
	asink *a = s->impl;
	uint64_t first;
	size_t i;

	if (connect_amqp(s, a, r) != 0) {
		drop(a);
		return;
	}
	first = a->next_tag + 1;
	for (i = 0; i < b->n; i++) {
		if (publish(s, a, b, i, r) != 0) {
			drop(a);
			return;
		}
		a->next_tag++;
	}
	if (confirms(s, a, b, first, b->n, r) != 0) {
		drop(a);
		return;
	}
	for (i = 0; i < b->n && a->acked[i]; i++)
		;
	r->acked = i;
	if (i == b->n) {
		r->outcome = RLY_ACKED;
		return;
	}
	r->outcome = RLY_RETRY;
	if (!r->why[0])
		snprintf(r->why, sizeof r->why, "the broker refused (basic.nack) a message");
}

const rly_sink_ops rly_amqp_ops = {am_open, am_deliver, am_close};
