/*
 * nats.c - the NATS JetStream sink (libnats, cnats 3.4).
 *
 * Each event is one message in CloudEvents binary mode (the CloudEvents
 * NATS binding): the subject is the sink's template (default
 * "evstore.{category}.{type}", values made token-safe), the body is the
 * event's data as JSON, and the attributes are headers "ce-<attribute>"
 * (ce-id, ce-source, ce-type, ce-subject = the stream, ce-time,
 * ce-position, ce-streamversion, ce-typeversion, ...) next to
 * Content-Type: application/json and Nats-Msg-Id = the event id (the
 * server drops a re-publish within the stream's duplicate window).
 *
 * Gapless and in position order: the sink owns its JetStream stream (the
 * `stream` key; created with subjects "<template's literal prefix>>" when
 * missing). Before publishing it reads the stream's last sequence and the
 * ce-position of the message there, and then
 *   - skips (acknowledges without publishing) events at or before that
 *     position: they are in the stream already (a relay killed between the
 *     publish and its checkpoint), so the stream holds every event once,
 *     whatever the duplicate window;
 *   - publishes each further event with Nats-Expected-Last-Sequence = the
 *     sequence it knows last, so a publish lands only right after the one
 *     before it: no gap, no reordering, no other writer in between.
 * A stream fed from the whole log (no filter) from position 0 therefore has
 * sequence = position. Any failure (timeout, disconnect, a wrong last
 * sequence) forgets what it knows; the next attempt reads the stream again.
 */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "relay.h"

typedef struct nsink {
	natsConnection *nc;
	jsCtx *js;
	bool synced;
	uint64_t last_seq, last_pos;
	evs__buf subject;
} nsink;

static int ns_open(rly_sink *s, char *err, size_t errlen)
{
	const char *brace = strchr(s->cfg->subject, '{');

	if (brace && (brace == s->cfg->subject || brace[-1] != '.')) {
		snprintf(err, errlen,
			 "subject template \"%s\" must start with literal tokens (\"name.{...}\") "
			 "so the stream's subjects can be derived",
			 s->cfg->subject);
		return -1;
	}
	if ((s->impl = calloc(1, sizeof(nsink))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static void disconnect(nsink *n)
{
	jsCtx_Destroy(n->js);
	n->js = NULL;
	if (n->nc) {
		natsConnection_Close(n->nc);
		natsConnection_Destroy(n->nc);
	}
	n->nc = NULL;
	n->synced = false;
}

static void ns_close(rly_sink *s)
{
	nsink *n = s->impl;

	if (n == NULL)
		return;
	disconnect(n);
	evs__buf_free(&n->subject);
	free(n);
	s->impl = NULL;
}

static int why(rly_result *r, const char *what, natsStatus st, jsErrCode jerr)
{
	r->outcome = RLY_RETRY;
	snprintf(r->why, sizeof r->why, "%s: %s%s", what, natsStatus_GetText(st),
		 jerr ? " (JetStream error)" : "");
	if (jerr)
		snprintf(r->why + strlen(r->why), sizeof r->why - strlen(r->why), " %d", (int)jerr);
	return -1;
}

static int connect_js(rly_sink *s, nsink *n, rly_result *r)
{
	natsOptions *o = NULL;
	natsStatus st;
	jsOptions jo;

	if (n->nc && natsConnection_Status(n->nc) == NATS_CONN_STATUS_CONNECTED)
		return 0;
	disconnect(n);
	if ((st = natsOptions_Create(&o)) != NATS_OK ||
	    (st = natsOptions_SetURL(o, s->cfg->url)) != NATS_OK ||
	    (st = natsOptions_SetTimeout(o, s->cfg->timeout_ms)) != NATS_OK ||
	    (st = natsOptions_SetMaxReconnect(o, 0)) != NATS_OK ||
	    (st = natsConnection_Connect(&n->nc, o)) != NATS_OK) {
		natsOptions_Destroy(o);
		n->nc = NULL;
		return why(r, "could not connect", st, 0);
	}
	natsOptions_Destroy(o);
	jsOptions_Init(&jo);
	jo.Wait = s->cfg->timeout_ms;
	if ((st = natsConnection_JetStream(&n->js, n->nc, &jo)) != NATS_OK) {
		disconnect(n);
		return why(r, "could not start JetStream", st, 0);
	}
	return 0;
}

/* The stream's last sequence and the position of the event there. */
static int sync_stream(rly_sink *s, nsink *n, rly_result *r)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsMsg *m = NULL;
	natsStatus st;
	const char *pos = NULL;

	st = js_GetStreamInfo(&si, n->js, s->cfg->stream, NULL, &jerr);
	if (st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
		jsStreamConfig sc;
		char subj[512];
		const char *brace = strchr(s->cfg->subject, '{');
		size_t lit = brace ? (size_t)(brace - s->cfg->subject) : strlen(s->cfg->subject);
		const char *subjects[1] = {subj};

		snprintf(subj, sizeof subj, "%.*s%s", (int)lit, s->cfg->subject, brace ? ">" : "");
		jsStreamConfig_Init(&sc);
		sc.Name = s->cfg->stream;
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		jerr = 0;
		st = js_AddStream(&si, n->js, &sc, NULL, &jerr);
		if (st == NATS_OK)
			evs__logf(EVS_LOG_INFO, "sink \"%s\": created JetStream stream \"%s\" (%s)",
				  s->cfg->name, s->cfg->stream, subj);
	}
	if (st != NATS_OK)
		return why(r, "could not read the JetStream stream", st, jerr);
	n->last_seq = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	n->last_pos = 0;
	if (n->last_seq > 0) {
		if ((st = js_GetMsg(&m, n->js, s->cfg->stream, n->last_seq, NULL, &jerr)) !=
		    NATS_OK)
			return why(r, "could not read the stream's last message", st, jerr);
		if (natsMsgHeader_Get(m, "ce-position", &pos) != NATS_OK || pos == NULL) {
			natsMsg_Destroy(m);
			r->outcome = RLY_RETRY;
			snprintf(
				r->why, sizeof r->why,
				"stream \"%s\" holds a message without ce-position (not written by "
				"evs-relay)",
				s->cfg->stream);
			return -1;
		}
		n->last_pos = strtoull(pos, NULL, 10);
		natsMsg_Destroy(m);
	}
	n->synced = true;
	return 0;
}

struct hdr_ctx {
	natsMsg *m;
	natsStatus st;
};

static int set_header(void *ctx, const char *name, const char *value)
{
	struct hdr_ctx *h = ctx;
	char key[64];

	snprintf(key, sizeof key, "ce-%s", name);
	h->st = natsMsgHeader_Set(h->m, key, value);
	return h->st != NATS_OK;
}

static void ns_deliver(rly_sink *s, const rly_batch *b, rly_result *r)
{
	nsink *n = s->impl;

	if (connect_js(s, n, r) != 0)
		return;
	if (!n->synced && sync_stream(s, n, r) != 0)
		return;
	for (size_t i = 0; i < b->n; i++) {
		const rly_msg *m = &b->msgs[i];
		struct hdr_ctx h = {NULL, NATS_OK};
		jsPubOptions po;
		jsPubAck *ack = NULL;
		jsErrCode jerr = 0;
		natsStatus st;

		if (m->position <= n->last_pos) {
			r->acked = i + 1; /* in the stream already */
			continue;
		}
		if (rly_template(&n->subject, s->cfg->subject, rly_at(b, m->type), m->type_len,
				 rly_at(b, m->stream), m->stream_len, true) != 0) {
			r->outcome = RLY_RETRY;
			snprintf(r->why, sizeof r->why, "out of memory");
			return;
		}
		st = natsMsg_Create(&h.m, n->subject.ptr, NULL, rly_at(b, m->data),
				    (int)m->data_len);
		if (st == NATS_OK)
			st = natsMsgHeader_Set(h.m, "Content-Type", "application/json");
		if (st == NATS_OK && rly_ce_attributes(b, m, s->source, set_header, &h) != 0)
			st = h.st;
		if (st != NATS_OK) {
			natsMsg_Destroy(h.m);
			why(r, "could not build a message", st, 0);
			return;
		}
		jsPubOptions_Init(&po);
		po.MsgId = m->id;
		po.ExpectLastSeq = n->last_seq; /* 0 (an empty stream): not checked */
		po.MaxWait = s->cfg->timeout_ms;
		st = js_PublishMsg(&ack, n->js, h.m, &po, &jerr);
		natsMsg_Destroy(h.m);
		if (st != NATS_OK) {
			n->synced = false; /* it may have landed: read the stream again */
			if (jerr == 0 && natsConnection_Status(n->nc) != NATS_CONN_STATUS_CONNECTED)
				disconnect(n);
			why(r, "could not publish", st, jerr);
			return;
		}
		if (!ack->Duplicate || ack->Sequence > n->last_seq)
			n->last_seq = ack->Sequence;
		n->last_pos = m->position;
		jsPubAck_Destroy(ack);
		r->acked = i + 1;
	}
	r->outcome = RLY_ACKED;
}

const rly_sink_ops rly_nats_ops = {ns_open, ns_deliver, ns_close};
