#!/usr/bin/env python3
"""verify_webhook.py - the receiver's side of evs-relay's webhooks
(Standard Webhooks, https://www.standardwebhooks.com/), with nothing but
Python's standard library. Copy verify() into your service, or run this
file as a small receiver to see what evs-relay sends:

  python3 verify_webhook.py --listen PORT --secret whsec_... [--secret ...]
                            [--count N] [--quiet]

It prints each request it verified (method and path, the headers that
matter, the body as received) and "signature verified", answers 204; a
request whose signature does not verify gets 401 and "signature REFUSED".
With --count N it exits after N verified requests. With --quiet it prints
one line per request instead.

Verifying, in short:
  1. Take the body as received, bytes for bytes. Never re-serialize the
     JSON before checking: any change of whitespace or key order breaks
     the signature.
  2. signed = webhook-id + "." + webhook-timestamp + "." + body
  3. key = base64-decode(the secret without its "whsec_" prefix)
  4. expected = base64(HMAC-SHA256(key, signed))
  5. webhook-signature holds one or more "v1,<base64>" separated by spaces
     (one per secret the relay signs with: during a rotation both the old
     and the new); accept when one equals expected (constant-time compare).
  6. Refuse timestamps more than 5 minutes away from now (replays).
  7. Deduplicate on webhook-id (the event id): delivery is at least once.
"""
import argparse
import base64
import hashlib
import hmac
import http.server
import sys
import time


def verify(secrets, webhook_id, timestamp, signature, body, tolerance=300, now=None):
    """True when one v1 signature of `signature` is HMAC-SHA256 over
    id.timestamp.body with one of the whsec_ secrets, and the timestamp is
    within tolerance seconds of now. body: bytes, as received."""
    if not webhook_id or not timestamp or not signature:
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - ts) > tolerance:
        return False
    signed = webhook_id.encode() + b'.' + timestamp.encode() + b'.' + body
    for secret in secrets:
        key = base64.b64decode(secret[len('whsec_'):] if secret.startswith('whsec_') else secret)
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for part in signature.split():
            version, _, value = part.partition(',')
            if version == 'v1' and hmac.compare_digest(value, expected):
                return True
    return False


SHOWN = ('content-type', 'webhook-id', 'webhook-timestamp', 'webhook-signature')


def main():
    ap = argparse.ArgumentParser(description='receive and verify evs-relay webhooks')
    ap.add_argument('--listen', type=int, required=True, help='port on 127.0.0.1')
    ap.add_argument('--secret', action='append', required=True, help='whsec_... (repeatable)')
    ap.add_argument('--count', type=int, default=0, help='exit after N verified requests')
    ap.add_argument('--quiet', action='store_true', help='one line per request')
    args = ap.parse_args()
    done = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
            h = {k.lower(): v for k, v in self.headers.items()}
            ok = verify(args.secret, h.get('webhook-id'), h.get('webhook-timestamp'),
                        h.get('webhook-signature'), body)
            if args.quiet:
                print('%s %s' % (h.get('webhook-id'), 'verified' if ok else 'REFUSED'),
                      flush=True)
            else:
                lines = ['%s %s' % (self.command, self.path)]
                lines += ['%s: %s' % (k, h[k]) for k in SHOWN if k in h]
                lines += [body.decode(errors='replace'),
                          'signature verified' if ok else 'signature REFUSED', '']
                print('\n'.join(lines), flush=True)
            self.send_response(204 if ok else 401)
            self.send_header('Content-Length', '0')
            self.end_headers()
            if ok:
                done[0] += 1

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(('127.0.0.1', args.listen), Handler)
    print('listening on http://127.0.0.1:%d/' % args.listen, file=sys.stderr, flush=True)
    while not args.count or done[0] < args.count:
        srv.handle_request()
    srv.server_close()


if __name__ == '__main__':
    main()
