#!/usr/bin/env python3
"""test_relay_nats.py - evs-relay to NATS JetStream under faults, with a
real nats-server (Debian's, -js, in a temporary directory on a free port):

  usage: test_relay_nats.py EVS EVS_RELAY NATS_DUMP

Events are appended while evs-relay is SIGKILLed at random moments (at
least 20 times, seeded) and nats-server is restarted once while the relay
runs. In the end the sink's JetStream stream, read back by nats_dump (a
reader of its own on libnats), holds message k = the event at position k
for every k up to the store's head: gapless, in position order, each event
once (the relay skips what a killed run published before its checkpoint,
and Nats-Expected-Last-Sequence keeps every publish right after the one
before). Nats-Msg-Id and ce-id are the event id; data and ce- headers
match the store.
"""
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relaykit as rk  # noqa: E402


def main():
    evs, relay, dump = sys.argv[1:4]
    rnd = rk.seeded('relay-nats')
    env = rk.Env('relay-nats', evs, relay)
    nats = rk.NatsServer(env.dir)
    try:
        nats.start()

        def last_seq():
            r = subprocess.run([dump, nats.url, 'EVS', '--last'], capture_output=True,
                               text=True, timeout=60)
            return int(r.stdout) if r.returncode == 0 else -1

        cfg = env.write_config(
            '[sink bus]\nkind = nats\nurl = %s\nstream = EVS\nsubject = evstore.{category}.{type}\n'
            'timeout-ms = 1000\nretry-min-ms = 5\nretry-max-ms = 200\ncheckpoint-ms = %d\n' %
            (nats.url, rnd.choice([0, 5, 100])))
        streams = ['order-%d' % i for i in range(5)] + ['user.x-1', 'odd stream*>']
        n = kills = 0
        while kills < 22:
            for _ in range(rnd.randrange(1, 4)):
                k = rnd.randrange(1, 15)
                env.append(rnd.choice(streams), [{'n': n + i} for i in range(k)])
                n += k
            before = max(last_seq(), 0)
            env.start_relay(cfg)
            if kills == 11:
                # the broker goes away under a running relay and comes back
                nats.stop()
                nats.start()
            target = min(before + rnd.randrange(0, 20), env.head())
            rk.wait_for(lambda: last_seq() >= target or env.proc.poll() is not None, 120,
                        'the stream to reach %d' % target, step=0.01)
            if env.proc.poll() is not None:
                raise AssertionError('evs-relay exited: ' + env.last_log())
            env.stop_relay(signal.SIGKILL)
            kills += 1
        env.start_relay(cfg)
        head = env.head()
        rk.wait_for(lambda: env.status('bus').get('position') == head, 300,
                    'checkpoint at head %d' % head, step=0.01)
        env.stop_relay(signal.SIGTERM, want=0)
        events = env.events()
        out = subprocess.run([dump, nats.url, 'EVS'], capture_output=True, text=True,
                             timeout=120, check=True).stdout
        msgs = [json.loads(l) for l in out.splitlines()]
        assert len(msgs) == len(events) == head, (len(msgs), len(events), head)
        for m, e in zip(msgs, events):
            assert m['seq'] == m['position'] == e['position'], (m, e)
            assert m['msgid'] == m['id'] == e['id'] and m['stream'] == e['stream'], (m, e)
            assert m['version'] == e['version'] and m['data'] == e['data'], (m, e)
        rk.check_deliveries('nats', events, [(m['id'], m['stream'], m['version'], None)
                                             for m in msgs])
        rk.log('nats: %d kills, broker restarted once, stream = the log (%d messages); '
               'nats-server start %s s' % (kills, len(msgs),
                                          ', '.join('%.2f' % t for t in nats.start_seconds)))
    finally:
        nats.stop()
        env.close()


if __name__ == '__main__':
    main()
