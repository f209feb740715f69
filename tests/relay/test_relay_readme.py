#!/usr/bin/env python3
"""test_relay_readme.py - README's relay examples are what the code prints.

  usage: test_relay_readme.py README EVS EVS_RELAY NATS_DUMP AMQP_DUMP VERIFY [--print]

For each channel (webhook, nats, rabbitmq) README.md has blocks marked
<!-- relay-example: CHANNEL-config --> (the relay.conf, an ini block) and
<!-- relay-example: CHANNEL-output --> (what the receiver sees). This test
runs the README's scenario with that very configuration (its loopback
ports replaced by the test's servers'): a fresh store, one event appended
with "evs append order-1 OrderPlaced '{"total":42}'", evs-relay with
--source urn:evstore:shop; then it reads what the receiver got (the
webhook receiver is docs/verify_webhook.py itself, so the documented
helper is what verifies the signature) and compares it with the README's
block, ids, times, timestamps and signatures masked. The block marked
<!-- relay-example: status --> must be "evs relay status" after the
webhook run, exactly. --print prints the actual outputs instead.
"""
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relaykit as rk  # noqa: E402

MASKS = [
    (re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'), '<uuid>'),
    (re.compile(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z'), '<time>'),
    (re.compile(r'(webhook-timestamp|timestamp): \d+'), r'\1: <ts>'),
    (re.compile(r'v1,[A-Za-z0-9+/=]+'), 'v1,<signature>'),
]


def mask(text):
    for rx, rep in MASKS:
        text = rx.sub(rep, text)
    return text.strip()


def block(readme, name):
    m = re.search(r'<!-- relay-example: %s -->\s*```[a-z]*\n(.*?)```' % re.escape(name), readme,
                  re.S)
    if not m:
        raise AssertionError('README has no block marked relay-example: %s' % name)
    return m.group(1)


def compare(readme, name, actual, printing, exact=False):
    if printing:
        print('--- %s\n%s' % (name, actual))
        return
    want = block(readme, name)
    a, w = (actual.strip(), want.strip()) if exact else (mask(actual), mask(want))
    if a != w:
        raise AssertionError('README block %s differs from the output:\n--- README\n%s\n'
                             '--- output\n%s' % (name, w, a))
    rk.log('%s: README matches the output' % name)


def scenario(env, conf_text, port_from, port_to):
    conf = env.write_config(conf_text.replace(port_from, port_to))
    env.evs_cmd('append', 'order-1', 'OrderPlaced', '{"total":42}')
    env.start_relay(conf, ['--source', 'urn:evstore:shop'])
    return conf


def wait_checkpoint(env, sink):
    rk.wait_for(lambda: env.status(sink).get('position') == 1, 120, sink + ' at 1', step=0.01)


def main():
    readme_path, evs, relay, nats_dump, amqp_dump, verify = sys.argv[1:7]
    printing = '--print' in sys.argv
    readme = open(readme_path).read()

    env = rk.Env('relay-readme-webhook', evs, relay)
    try:
        port = rk.free_port()
        secret = re.search(r'secret = (whsec_\S+)', block(readme, 'webhook-config')).group(1)
        rcv = subprocess.Popen([sys.executable, verify, '--listen', str(port), '--secret',
                                secret, '--count', '1'], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        rk.wait_for(lambda: _listening(port), 60, 'the receiver')
        scenario(env, block(readme, 'webhook-config'), '127.0.0.1:8080', '127.0.0.1:%d' % port)
        out, _ = rcv.communicate(timeout=120)
        wait_checkpoint(env, 'orders-hook')
        env.stop_relay(signal.SIGTERM, want=0)
        compare(readme, 'webhook-output', out, printing)
        status = env.evs_cmd('relay', 'status').stdout
        compare(readme, 'status', status, printing, exact=True)
    finally:
        env.close()

    env = rk.Env('relay-readme-nats', evs, relay)
    nats = rk.NatsServer(env.dir)
    try:
        nats.start()
        scenario(env, block(readme, 'nats-config'), 'nats://127.0.0.1:4222', nats.url)
        wait_checkpoint(env, 'orders-bus')
        env.stop_relay(signal.SIGTERM, want=0)
        out = subprocess.run([nats_dump, nats.url, 'ORDERS', '--show', '1'], check=True,
                             capture_output=True, text=True, timeout=60).stdout
        compare(readme, 'nats-output', out, printing)
    finally:
        nats.stop()
        env.close()

    env = rk.Env('relay-readme-rabbitmq', evs, relay)
    rabbit = rk.RabbitServer(env.dir)
    try:
        rabbit.start()
        subprocess.run([amqp_dump, rabbit.url, 'orders', 'setup'], check=True, timeout=60)
        scenario(env, block(readme, 'rabbitmq-config'), 'amqp://guest:guest@127.0.0.1:5672',
                 rabbit.url)
        wait_checkpoint(env, 'orders-mq')
        env.stop_relay(signal.SIGTERM, want=0)
        out = subprocess.run([amqp_dump, rabbit.url, 'orders', 'show'], check=True,
                             capture_output=True, text=True, timeout=60).stdout
        compare(readme, 'rabbitmq-output', out, printing)
    finally:
        rabbit.close()
        env.close()


def _listening(port):
    import socket
    with socket.socket() as s:
        return s.connect_ex(('127.0.0.1', port)) == 0


if __name__ == '__main__':
    main()
