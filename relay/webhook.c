/*
 * webhook.c - the webhook sink: Standard Webhooks over libcurl, signed
 * with OpenSSL's HMAC-SHA256.
 *
 * One POST per event (batch = 1): the body is the event's CloudEvents JSON
 * (Content-Type: application/cloudevents+json). With batch > 1 one POST
 * carries a JSON array of them (application/cloudevents-batch+json).
 * Headers (https://www.standardwebhooks.com/):
 *
 *   webhook-id         the event id (a batch: "batch_<first>_<last>" by
 *                      position); the same on every retry
 *   webhook-timestamp  seconds since the Unix epoch of this attempt
 *   webhook-signature  "v1,<base64 of HMAC-SHA256(key, id "." timestamp "." body)>"
 *                      for each configured secret, separated by spaces;
 *                      key = the base64-decoded text after "whsec_"
 *
 * Answers: 2xx acknowledges; 410 Gone disables the sink (dead); anything
 * else (3xx: redirects are not followed; 4xx; 5xx; a timeout; a refused
 * connection) is a failure retried with backoff, where a Retry-After
 * (seconds or an HTTP date) on 429 or 503 is the least wait. With batch = 1
 * a batch is one message, so an answer acknowledges all or none.
 */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base64.h"
#include "evs_version.h"
#include "relay.h"

typedef struct webhook {
	CURL *curl;
	evs__buf key[RLY_MAX_SECRETS]; /* decoded secrets */
	size_t nkeys;
	evs__buf body, signed_text, header;
	char curl_err[CURL_ERROR_SIZE];
} webhook;

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
	(void)p;
	(void)ctx;
	return size * n;
}

static int wh_open(rly_sink *s, char *err, size_t errlen)
{
	static bool global;
	webhook *w;

	if (!global) { /* main() calls the first open before starting threads */
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
			snprintf(err, errlen, "could not initialise libcurl");
			return -1;
		}
		global = true;
	}
	if ((w = calloc(1, sizeof *w)) == NULL || (w->curl = curl_easy_init()) == NULL) {
		free(w);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < s->cfg->nsecrets; i++) {
		const char *sec = s->cfg->secrets[i] + 6; /* config.c checked "whsec_" + base64 */
		if (evs__base64_decode(&w->key[i], sec, strlen(sec)) != 0) {
			snprintf(err, errlen, "secret %zu is not base64", i + 1);
			return -1;
		}
		w->nkeys++;
	}
	curl_easy_setopt(w->curl, CURLOPT_URL, s->cfg->url);
	curl_easy_setopt(w->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(w->curl, CURLOPT_TIMEOUT_MS, s->cfg->timeout_ms);
	curl_easy_setopt(w->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 s->cfg->timeout_ms < 10000 ? s->cfg->timeout_ms : 10000L);
	curl_easy_setopt(w->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(w->curl, CURLOPT_USERAGENT, "evs-relay/" EVS_VERSION_STRING);
	curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(w->curl, CURLOPT_ERRORBUFFER, w->curl_err);
	s->impl = w;
	return 0;
}

static void wh_close(rly_sink *s)
{
	webhook *w = s->impl;

	if (w == NULL)
		return;
	curl_easy_cleanup(w->curl);
	for (size_t i = 0; i < RLY_MAX_SECRETS; i++)
		evs__buf_free(&w->key[i]);
	evs__buf_free(&w->body);
	evs__buf_free(&w->signed_text);
	evs__buf_free(&w->header);
	free(w);
	s->impl = NULL;
}

/* Retry-After in ms: delta-seconds or an HTTP date; 0 if none. */
static long retry_after(CURL *c)
{
	struct curl_header *h;
	char *end;
	long secs;

	if (curl_easy_header(c, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return 0;
	secs = strtol(h->value, &end, 10);
	if (end == h->value || *end) {
		time_t at = curl_getdate(h->value, NULL);
		if (at < 0)
			return 0;
		secs = (long)(at - time(NULL));
	}
	if (secs <= 0)
		return 0;
	return secs > 86400 ? 86400000L : secs * 1000L;
}

static void sign(webhook *w, const char *id, long long ts, evs__buf *hdr)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen;

	evs__buf_reset(&w->signed_text);
	evs__buf_printf(&w->signed_text, "%s.%lld.", id, ts);
	evs__buf_putn(&w->signed_text, w->body.ptr, w->body.len);
	evs__buf_reset(hdr);
	evs__buf_puts(hdr, "webhook-signature:");
	for (size_t i = 0; i < w->nkeys; i++) {
		HMAC(EVP_sha256(), w->key[i].ptr, (int)w->key[i].len,
		     (const unsigned char *)w->signed_text.ptr, w->signed_text.len, mac, &maclen);
		evs__buf_puts(hdr, i ? " v1," : " v1,");
		evs__base64_encode(hdr, mac, maclen);
	}
	evs__buf_cstr(hdr);
}

static void wh_deliver(rly_sink *s, const rly_batch *b, rly_result *r)
{
	webhook *w = s->impl;
	bool array = s->cfg->batch > 1;
	struct curl_slist *hl = NULL, *t;
	char id[96], line[160];
	long long ts = (long long)time(NULL);
	long status = 0;
	CURLcode cc;

	evs__buf_reset(&w->body);
	if (array)
		evs__buf_putc(&w->body, '[');
	for (size_t i = 0; i < b->n; i++) {
		if (i)
			evs__buf_putc(&w->body, ',');
		evs__buf_putn(&w->body, rly_at(b, b->msgs[i].body), b->msgs[i].body_len);
	}
	if (array)
		evs__buf_putc(&w->body, ']');
	if (array)
		snprintf(id, sizeof id, "batch_%llu_%llu", (unsigned long long)b->msgs[0].position,
			 (unsigned long long)b->msgs[b->n - 1].position);
	else
		snprintf(id, sizeof id, "%s", b->msgs[0].id);
	sign(w, id, ts, &w->header);
	if (w->body.oom || w->header.oom || w->signed_text.oom) {
		r->outcome = RLY_RETRY;
		snprintf(r->why, sizeof r->why, "out of memory");
		return;
	}
	hl = curl_slist_append(hl, array ? "Content-Type: application/cloudevents-batch+json"
					 : "Content-Type: application/cloudevents+json");
	snprintf(line, sizeof line, "webhook-id: %s", id);
	if (hl)
		hl = (t = curl_slist_append(hl, line)) ? t : (curl_slist_free_all(hl), NULL);
	snprintf(line, sizeof line, "webhook-timestamp: %lld", ts);
	if (hl)
		hl = (t = curl_slist_append(hl, line)) ? t : (curl_slist_free_all(hl), NULL);
	if (hl)
		hl = (t = curl_slist_append(hl, w->header.ptr)) ? t
								: (curl_slist_free_all(hl), NULL);
	if (hl)
		hl = (t = curl_slist_append(hl, "Expect:")) ? t : (curl_slist_free_all(hl), NULL);
	if (hl == NULL) {
		r->outcome = RLY_RETRY;
		snprintf(r->why, sizeof r->why, "out of memory");
		return;
	}
	curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, w->body.ptr);
	curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)w->body.len);
	w->curl_err[0] = 0;
	cc = curl_easy_perform(w->curl);
	if (cc == CURLE_OK)
		curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK) {
		r->outcome = RLY_RETRY;
		snprintf(r->why, sizeof r->why, "%s",
			 w->curl_err[0] ? w->curl_err : curl_easy_strerror(cc));
	} else if (status >= 200 && status < 300) {
		r->outcome = RLY_ACKED;
		r->acked = b->n;
	} else if (status == 410) {
		r->outcome = RLY_GONE;
		r->detail = 410;
		snprintf(r->why, sizeof r->why, "HTTP status 410 from \"%s\"", s->cfg->url);
	} else {
		r->outcome = RLY_RETRY;
		r->detail = (unsigned)status;
		if (status == 429 || status == 503)
			r->retry_after_ms = retry_after(w->curl);
		snprintf(r->why, sizeof r->why, "HTTP status %ld", status);
	}
	curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hl);
}

const rly_sink_ops rly_webhook_ops = {wh_open, wh_deliver, wh_close};
