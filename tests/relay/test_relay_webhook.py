#!/usr/bin/env python3
"""test_relay_webhook.py - evs-relay to webhooks under faults, with real
processes: the store written by the evs tool, evs-relay, and a receiver
in this test (Python's http.server) that checks every Standard Webhooks
signature itself (Python's hmac, independent of the relay's OpenSSL code).

  usage: test_relay_webhook.py EVS EVS_RELAY

kill:   events are appended while evs-relay is SIGKILLed at random moments
        (at least 20 times, seeded: after a random number of deliveries,
        0 = right after start), the receiver answers 500, 429 with
        Retry-After, and too late (the relay times out) for a while; in the
        end every event arrived at least once, in order per stream, and
        after dedup by id exactly the store's events; "evs relay status"
        shows the sink at the head.
gone:   a 410 makes the sink dead (persisted, seen by "evs relay status"),
        "evs relay resume" delivers again; pause holds delivery back,
        "reset --to 0" delivers everything again.
config: bad configuration files are refused with exit status 2 and a
        message naming the file and line.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relaykit as rk  # noqa: E402


def make_secret(rnd):
    return 'whsec_' + base64.b64encode(bytes(rnd.randrange(256) for _ in range(32))).decode()


def verify(secrets, headers, body):
    """The receiver's side of Standard Webhooks: True when one v1 signature
    matches HMAC-SHA256 over id.timestamp.body with one of the secrets."""
    mid, ts, sig = (headers.get('webhook-id'), headers.get('webhook-timestamp'),
                    headers.get('webhook-signature'))
    if not mid or not ts or not sig or abs(time.time() - int(ts)) > 300:
        return False
    text = mid.encode() + b'.' + ts.encode() + b'.' + body
    for secret in secrets:
        key = base64.b64decode(secret[len('whsec_'):])
        want = base64.b64encode(hmac.new(key, text, hashlib.sha256).digest()).decode()
        for part in sig.split(' '):
            version, _, value = part.partition(',')
            if version == 'v1' and hmac.compare_digest(value, want):
                return True
    return False


class Receiver:
    """A webhook endpoint. faults: a list of answers to give next, one per
    request ('500', '429', 'late', '410'); then 200."""

    def __init__(self, secrets):
        self.secrets = secrets
        self.lock = threading.Lock()
        self.deliveries = []  # (id, stream, version, body) of 2xx answers
        self.requests = 0
        self.bad_signatures = 0
        self.faults = []
        self.late = threading.Event()  # never set: a bounded wait
        rcv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers['Content-Length']))
                with rcv.lock:
                    rcv.requests += 1
                    fault = rcv.faults.pop(0) if rcv.faults else None
                    good = verify(rcv.secrets, self.headers, body)
                    if not good:
                        rcv.bad_signatures += 1
                if not good:
                    return self.answer(401)
                if fault == 'late':
                    # past the relay's timeout-ms (300): the relay gave up,
                    # so this receiver drops the work (not a delivery)
                    rcv.late.wait(1.0)
                    return self.answer(504)
                if fault in ('500', '410'):
                    return self.answer(int(fault))
                elif fault == '429':
                    return self.answer(429, {'Retry-After': '1'})
                ev = json.loads(body)
                assert self.headers['webhook-id'] == ev['id']
                assert self.headers['Content-Type'] == 'application/cloudevents+json'
                with rcv.lock:
                    rcv.deliveries.append((ev['id'], ev['subject'], int(ev['streamversion']),
                                           ev))
                self.answer(200)

            def answer(self, code, headers=None):
                try:
                    self.send_response(code)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the relay gave up on a late answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self):
        with self.lock:
            return len(self.deliveries)

    def ids(self):
        with self.lock:
            return {d[0] for d in self.deliveries}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def config(port, secrets, extra='', timeout_ms=300):
    """timeout_ms: 300 where a 'late' answer must time out (duplicates are
    then allowed); a test that counts deliveries exactly gives a bound no
    loaded machine reaches, or a slow answer would be retried (a duplicate)."""
    return ('# test sink\n[sink hook]\nkind = webhook\nurl = http://127.0.0.1:%d/hook\n'
            '%s\ntimeout-ms = %d\nretry-min-ms = 5\nretry-max-ms = 200\n%s' %
            (port, ''.join('secret = %s\n' % s for s in secrets), timeout_ms, extra))


def test_kill(env, rnd):
    secrets = [make_secret(rnd), make_secret(rnd)]
    # the receiver knows only the new secret: the relay signs with both
    # (rotation), so one matching signature is enough
    rcv = Receiver([secrets[1]])
    cfg = env.write_config(config(rcv.port, secrets,
                                  'checkpoint-ms = %d\n' % rnd.choice([0, 5, 100])))
    streams = ['order-%d' % i for i in range(6)]
    n = 0
    kills = 0
    try:
        while kills < 24:
            for _ in range(rnd.randrange(1, 4)):
                s = rnd.choice(streams)
                k = rnd.randrange(1, 12)
                env.append(s, [{'n': n + i} for i in range(k)])
                n += k
            if kills in (5, 6):
                with rcv.lock:
                    rcv.faults += ['500'] * rnd.randrange(2, 6)
            elif kills == 10:
                with rcv.lock:
                    rcv.faults += ['429'] * 2
            elif kills in (14, 15):
                with rcv.lock:
                    rcv.faults += ['late'] * rnd.randrange(1, 3)
            before = rcv.count()
            env.start_relay(cfg)
            target = before + rnd.randrange(0, 15)
            want = {e['id'] for e in env.events()}
            rk.wait_for(lambda: rcv.count() >= target or want <= rcv.ids() or
                        env.proc.poll() is not None, 120, 'deliveries to reach %d' % target)
            if env.proc.poll() is not None:
                raise AssertionError('evs-relay exited %d: %s' % (env.proc.returncode,
                                                                   env.last_log()))
            env.stop_relay(signal.SIGKILL)
            kills += 1
        env.start_relay(cfg)
        events = env.events()
        # the checkpoint reaches the head (written within checkpoint-ms of
        # the last acknowledgement, which the receiver gives after recording)
        head = env.head()
        rk.wait_for(lambda: env.status('hook').get('position') == head, 300,
                    'checkpoint at head')
        env.stop_relay(signal.SIGTERM, want=0)
        assert rcv.bad_signatures == 0, 'bad signatures: %d' % rcv.bad_signatures
        st = env.status('hook')
        assert st['state'] == 'running' and st['lag'] == 0, st
        rk.check_deliveries('kill', events, rcv.deliveries)
        rk.log('kill: %d kills, %d requests' % (kills, rcv.requests))
    finally:
        rcv.close()


def test_gone_pause_reset(env, rnd):
    secret = make_secret(rnd)
    rcv = Receiver([secret])
    cfg = env.write_config(config(rcv.port, [secret], timeout_ms=120000))
    env.append('a-1', [{'n': i} for i in range(5)])
    with rcv.lock:
        rcv.faults = ['410']
    env.start_relay(cfg, ['--metrics-port', str(rk.free_port())])
    try:
        rk.wait_for(lambda: env.status('hook').get('state') == 'dead', 60, 'the sink dead')
        st = env.status('hook')
        assert st['detail'] == 410 and st['position'] == 0 and st['lag'] == 5, st
        assert rcv.count() == 0
        env.evs_cmd('relay', 'resume', 'hook')
        rk.wait_for(lambda: rcv.count() == 5, 60, '5 deliveries after resume')
        env.evs_cmd('relay', 'pause', 'hook')
        rk.wait_for(lambda: env.status('hook').get('state') == 'paused', 60, 'paused')
        # a paused sink holds new events back; its state survives a restart
        env.stop_relay(signal.SIGTERM, want=0)
        env.append('a-2', [{'n': 9}])
        env.start_relay(cfg)
        rk.wait_for(lambda: 'paused from position 5' in env.last_log(), 60, 'paused start')
        assert rcv.count() == 5
        # reset while paused, then resume: everything again, in order
        env.evs_cmd('relay', 'reset', 'hook', '--to', '0')
        env.evs_cmd('relay', 'resume', 'hook')
        rk.wait_for(lambda: rcv.count() == 11, 60, 'all 6 events again')
        rk.wait_for(lambda: env.status('hook').get('position') == 6, 60, 'checkpoint 6')
        env.stop_relay(signal.SIGTERM, want=0)
        rk.check_deliveries('gone', env.events(), rcv.deliveries)
        r = env.evs_cmd('relay', 'reset', 'hook', '--to', '99', check=False)
        assert r.returncode == 1 and 'past the store' in r.stderr, r.stderr
        # the command line is checked before the store is touched
        for args, code, why in [(['frob', 'hook'], 2, 'unknown relay action "frob"'),
                                (['pause'], 2, 'needs one SINK'),
                                (['reset', 'hook'], 2, 'needs --to N'),
                                (['pause', 'hook', '--to', '1'], 2, '--to is only for'),
                                (['pause', 'a b'], 2, 'only letters, digits'),
                                (['status', 'nosuch'], 1, 'no relay sink "nosuch"')]:
            r = env.evs_cmd('relay', *args, check=False)
            assert r.returncode == code and why in r.stderr, (args, r.returncode, r.stderr)
    finally:
        rcv.close()


BAD_CONFIGS = [
    ('', 'no "[sink NAME]" section'),
    ('kind = webhook\n', ':1: key "kind" outside a "[sink NAME]" section'),
    ('[sink a]\nkind = webhook\nkind = webhook\n', ':3: key "kind" given twice'),
    ('[sink a]\nkind = \n', ':2: key "kind" has an empty value'),
    ('[sink a]\nkind = ftp\n', ':2: key "kind": "ftp" is not webhook, nats or rabbitmq'),
    ('[sink a]\nbatch = 0\n', ':2: key "batch": 0 is out of range (1 to 1000)'),
    ('[sink a]\nbatch = 1x\n', ':2: key "batch": "1x" is not a number'),
    ('[sink a]\ncolour = red\n', ':2: unknown key "colour"'),
    ('[sink a b]\n', ':1: invalid sink name "a b"'),
    ('[sink a]\nkind = webhook\nurl = http://x\nsecret = whsec_AAAA\n',
     ':4: key "secret": a secret is 24 to 64 bytes'),
    ('[sink a]\nkind = webhook\nurl = http://x\n', 'webhook sink "a" has no "secret"'),
    ('[sink a]\nkind=webhook\nurl=http://x\nsecret=whsec_%s\n[sink a]\n' % ('A' * 32),
     ':5: sink "a" defined twice'),
    ('[sink a]\nkind = web\x00hook\n', ':2: NUL byte in the file'),
    ('[sink a]\ntag = a\ntag = a\n', ':3: key "tag": "a" given twice'),
    ('[sink a]\ntag = \n', ':2: key "tag" has an empty value'),
    ('[sink a]\n' + ''.join('tag = t%d\n' % i for i in range(17)),
     ':18: key "tag" given more than 16 times'),
    ('[sink a]\ncategory = %s\n' % ('c' * 256), ':2: key "category": not 1 to 255 bytes of UTF-8'),
]


def test_config(env, rnd):
    for text, want in BAD_CONFIGS:
        path = env.write_config(text)
        env.start_relay(path)
        rc = env.proc.wait(timeout=60)
        env.proc = None
        log = env.last_log()
        assert rc == 2 and want in log, 'config %r: exit %d, log %r' % (text, rc, log)
    rk.log('config: %d bad files refused' % len(BAD_CONFIGS))


def main():
    evs, relay = sys.argv[1], sys.argv[2]
    rnd = rk.seeded('relay-webhook')
    which = sys.argv[3:] or ['config', 'gone', 'kill']
    for name in which:
        env = rk.Env('relay-' + name, evs, relay)
        try:
            {'config': test_config, 'gone': test_gone_pause_reset, 'kill': test_kill}[name](
                env, rnd)
            rk.log('%s: ok' % name)
        finally:
            env.close()


if __name__ == '__main__':
    main()
