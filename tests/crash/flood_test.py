#!/usr/bin/env python3
"""Connection floods and slow clients against a real `caregate serve` over TLS (the reliability issue):
thousands of idle TCP connections that never start the TLS handshake, and slowloris clients that
finish the handshake and then send their request a byte at a time. Checks:

- meanwhile, a normal client (client certificate and token) is served: every read answered 200, each
  within a second;
- the idle connections are closed by the server once the handshake timeout (10 s) has passed, and the
  slowloris clients get 408 or are closed once the read timeout has passed;
- afterwards the normal client is still served, and the server stops cleanly on SIGTERM.

Also: started with a low limit of open files (as many systems start processes: a soft limit of 1,024),
the server raises it to the hard limit and lowers --max-connections to what fits, saying so.
Exit 0 when all hold, 1 naming the first failure. Test data only: NHS number 9000000009.

    tests/crash/flood_test.py --caregate build/caregate [--idle 3000] [--slow 200]
"""
import argparse
import json
import os
import resource
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_test import NHS, free_port, patient  # noqa: E402

CERTS = "certs/dev"


def tls_context():
    context = ssl.create_default_context(cafile=f"{CERTS}/ca.crt")
    context.load_cert_chain(f"{CERTS}/client-QZZ.crt", f"{CERTS}/client-QZZ.key")
    return context


def request(context, port, method, path, token, body=None, timeout=5.0):
    """One request on a fresh TLS connection: (status, body, seconds)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as s:
            data = json.dumps(body).encode() if body is not None else b""
            head = (f"{method} /fhir/{path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
                    f"Accept: application/fhir+json\r\nConnection: close\r\nContent-Length: {len(data)}\r\n")
            if body is not None:
                head += "Content-Type: application/fhir+json\r\n"
            s.sendall(head.encode() + b"\r\n" + data)
            reply = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0
    return status, reply.partition(b"\r\n\r\n")[2], time.monotonic() - started


def start_server(caregate, db, port, log, nofile=None):
    def limit_files():
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, nofile)
    return subprocess.Popen(
        [caregate, "serve", "--listen", f"127.0.0.1:{port}", "--base-url", f"https://localhost:{port}/fhir",
         "--db", db, "--certs", CERTS, "--patient-listen", "none", "--admin-listen", "none", "--read-timeout", "2", "--idle-timeout", "2"],
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit_files)


def await_server(process, port, context, token):
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"caregate serve stopped at start (exit {process.returncode})")
        try:
            if request(context, port, "GET", "metadata", token)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("caregate serve did not answer within 60 s")


def closed_by_server(sockets, deadline):
    """How many of `sockets` the server has closed (EOF or reset) by `deadline`."""
    selector = selectors.DefaultSelector()
    for s in sockets:
        s.setblocking(False)
        selector.register(s, selectors.EVENT_READ)
    closed = 0
    while closed < len(sockets) and time.time() < deadline:
        for key, _ in selector.select(timeout=0.5):
            try:
                data = key.fileobj.recv(4096)
            except ssl.SSLWantReadError:
                continue
            except OSError:
                data = b""
            if not data or data.startswith(b"HTTP/1.1 408"):
                selector.unregister(key.fileobj)
                closed += 1
    selector.close()
    return closed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--caregate", default="build/caregate")
    parser.add_argument("--idle", type=int, default=3000, help="idle connections that never start TLS")
    parser.add_argument("--slow", type=int, default=200, help="slowloris connections")
    args = parser.parse_args()
    caregate = os.path.abspath(args.caregate)
    # This process holds every flooding connection: as many files as the hard limit allows.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    idle_count = min(args.idle, max(100, hard - args.slow - 200))

    work = tempfile.mkdtemp(prefix="caregate-flood-")
    log_path = os.path.join(work, "server.log")
    log = open(log_path, "ab")
    port = free_port()
    token = subprocess.run([caregate, "token", "--certs", CERTS, "--aud", f"https://localhost:{port}/fhir",
                            "--org", "QZZ", "--role", "system", "--user", "flood-test", "--ttl", "3600"],
                           check=True, capture_output=True, text=True).stdout.strip()
    context = tls_context()
    server = start_server(caregate, os.path.join(work, "flood.db"), port, log)
    idle, slow = [], []
    try:
        await_server(server, port, context, token)
        status, _, _ = request(context, port, "PUT", f"Patient/{NHS}", token, patient("Flood", "Test"))
        if status != 201:
            print(f"flood test: FAILED: the Patient could not be written ({status})")
            return 1

        flood_started = time.time()
        for _ in range(idle_count):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        for _ in range(args.slow):
            s = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                                    server_hostname="localhost")
            s.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: localhost\r\n")
            slow.append(s)
        print(f"flood: {len(idle)} idle connections (no TLS handshake) and {len(slow)} slowloris clients open",
              flush=True)

        # While they hold on: slowloris clients send a byte each half second; a normal client reads.
        slowest, reads = 0.0, 0
        for i in range(16):
            for s in slow:
                try:
                    s.send(b"X")
                except OSError:
                    pass
            status, body, seconds = request(context, port, "GET", f"Patient/{NHS}", token)
            if status != 200 or b"Flood" not in body:
                print(f"flood test: FAILED: a normal read during the flood got {status}")
                return 1
            slowest = max(slowest, seconds)
            reads += 1
            time.sleep(0.5)
        if slowest > 1.0:
            print(f"flood test: FAILED: a normal read during the flood took {slowest:.2f} s")
            return 1
        print(f"during the flood: {reads} normal reads all 200, the slowest {slowest * 1000:.0f} ms", flush=True)

        slow_closed = closed_by_server(slow, time.time() + 10)
        idle_closed = closed_by_server(idle, flood_started + 10 + 15)
        print(f"after the timeouts: {slow_closed}/{len(slow)} slowloris clients answered 408 or closed, "
              f"{idle_closed}/{len(idle)} idle connections closed by the server", flush=True)
        if slow_closed != len(slow) or idle_closed != len(idle):
            print("flood test: FAILED: the server kept connections past its timeouts")
            return 1
        status, _, seconds = request(context, port, "GET", f"Patient/{NHS}", token)
        if status != 200:
            print(f"flood test: FAILED: a read after the flood got {status}")
            return 1
        server.send_signal(signal.SIGTERM)
        if server.wait(timeout=30) != 0:
            print(f"flood test: FAILED: caregate serve exited {server.returncode} on SIGTERM")
            return 1

        # A low limit of open files: raised to the hard one, and --max-connections lowered to fit.
        port2 = free_port()
        low = start_server(caregate, os.path.join(work, "low.db"), port2, log, nofile=(1024, 2048))
        try:
            await_server(low, port2, context, token)
        except RuntimeError:
            pass
        low.send_signal(signal.SIGTERM)
        low.wait(timeout=30)
        log.flush()
        text = open(log_path, errors="replace").read()
        if "--max-connections lowered from 10000 to 1792 a listener: the process may open 2048 files" not in text:
            print("flood test: FAILED: with ulimit -n 1024/2048 the server did not say it raised the limit to "
                  "2048 and lowered --max-connections to 1792")
            return 1
        print("flood test: normal reads served throughout, every idle and slow connection cut off by its timeout, "
              "and a low open-file limit raised and --max-connections fitted to it")
        return 0
    finally:
        for s in idle + slow:
            try:
                s.close()
            except OSError:
                pass
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
