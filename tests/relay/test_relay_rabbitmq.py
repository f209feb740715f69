#!/usr/bin/env python3
"""test_relay_rabbitmq.py - evs-relay to RabbitMQ under faults, with a real
rabbitmq-server (Debian's, in a temporary directory on free ports):

  usage: test_relay_rabbitmq.py EVS EVS_RELAY AMQP_DUMP

A durable queue is bound to the relay's exchange before it starts. Events
are appended while evs-relay is SIGKILLed at random moments (at least 20
times, seeded) and rabbitmq-server is restarted once while the relay runs.
In the end the queue, drained by amqp_dump (a client of its own on
librabbitmq), has every event at least once, in order per stream, and after
dedup by message_id exactly the store's events; every message persistent,
message_id = cloudEvents_id = the event id, data as stored.
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
    rnd = rk.seeded('relay-rabbitmq')
    env = rk.Env('relay-rabbitmq', evs, relay)
    rabbit = rk.RabbitServer(env.dir)

    def amqp(mode):
        r = subprocess.run([dump, rabbit.url, 'evs-test', mode], capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError('amqp_dump %s: %s' % (mode, r.stderr))
        return r.stdout

    try:
        rabbit.start()
        amqp('setup')
        cfg = env.write_config(
            '[sink mq]\nkind = rabbitmq\nurl = %s\nexchange = evstore\n'
            'routing-key = {category}.{type}\nbatch = %d\ntimeout-ms = 2000\n'
            'retry-min-ms = 5\nretry-max-ms = 300\ncheckpoint-ms = %d\n' %
            (rabbit.url, rnd.choice([1, 10, 100]), rnd.choice([0, 5, 100])))
        streams = ['order-%d' % i for i in range(5)] + ['user.x-1']
        n = kills = 0
        while kills < 22:
            for _ in range(rnd.randrange(1, 4)):
                k = rnd.randrange(1, 15)
                env.append(rnd.choice(streams), [{'n': n + i} for i in range(k)])
                n += k
            env.start_relay(cfg)
            if kills == 11:
                rabbit.stop()
                rabbit.start()
            # kill after k more messages reached the queue (maybe before
            # their checkpoint), or once everything is checkpointed
            head = env.head()
            target = int(amqp('count')) + rnd.randrange(0, 20)
            rk.wait_for(lambda: int(amqp('count')) >= target or
                        env.status('mq').get('position') == head or
                        env.proc.poll() is not None, 300, 'queue at %d' % target, step=0.01)
            if env.proc.poll() is not None:
                raise AssertionError('evs-relay exited: ' + env.last_log())
            env.stop_relay(signal.SIGKILL)
            kills += 1
        env.start_relay(cfg)
        head = env.head()
        rk.wait_for(lambda: env.status('mq').get('position') == head, 300,
                    'checkpoint at head %d' % head, step=0.01)
        env.stop_relay(signal.SIGTERM, want=0)
        events = env.events()
        msgs = [json.loads(l) for l in amqp('drain').splitlines()]
        by_id = {e['id']: e for e in events}
        for m in msgs:
            e = by_id[m['id']]
            assert m['persistent'] and m['ceid'] == m['id'] and m['type'] == e['type'], m
            assert m['position'] == e['position'] and m['data'] == e['data'], (m, e)
        rk.check_deliveries('rabbitmq', events, [(m['id'], m['stream'], m['version'], None)
                                                 for m in msgs])
        rk.log('rabbitmq: %d kills, broker restarted once; rabbitmq-server start %s s' %
               (kills, ', '.join('%.1f' % t for t in rabbit.start_seconds)))
    finally:
        rabbit.close()
        env.close()


if __name__ == '__main__':
    main()
