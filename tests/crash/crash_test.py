#!/usr/bin/env python3
"""The crash test: concurrent writers (creates, updates, transaction Bundles) against `caregate serve`,
the server killed with SIGKILL at a random moment, restarted on the same database, and checked:

- every write answered 2xx is there, with its exact content, at the version it was given;
- every transaction is all there or not there at all (and all there when it was answered 2xx);
- after the last round: PRAGMA integrity_check is ok and the audit chain verifies.

Repeated --rounds times (the reliability issue asks for at least 20 in CI). Exit 0 when every round
passed; 1 naming the first failure. Test data only: the test-range NHS number 9000000009.

    tests/crash/crash_test.py --caregate build/caregate [--rounds 20] [--writers 8] [--seed 1]
"""
import argparse
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

NHS = "9000000009"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fresh_sqlite(work, name):
    """The path of a new SQLite database `name` in `work`: any left there by an earlier run removed."""
    os.makedirs(work, exist_ok=True)
    db = os.path.join(work, name)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    return db


def system_token(caregate, base, user, ttl):
    """A development token of the ICS's integration system (organisation QZZ) for the server at `base`."""
    return subprocess.run([caregate, "token", "--certs", "certs/dev", "--aud", base, "--org", "QZZ", "--role", "system",
                           "--user", user, "--ttl", str(ttl)], check=True, capture_output=True, text=True).stdout.strip()


def patient(family, given):
    """The test citizen's Patient (NHS number 9000000009), named for the test that writes it."""
    return {"resourceType": "Patient", "id": NHS,
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS}],
            "name": [{"family": family, "given": [given]}]}


def observation(marker, id_=None):
    body = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": f"Patient/{NHS}"},
        "valueString": marker,
    }
    if id_:
        body["id"] = id_
    return body


class Server:
    """`caregate serve --plain` on a free loopback port (the same one after each restart), its output
    in `log`; `extra` are more options of serve. tests/crash/export_crash_test.py uses it too."""

    def __init__(self, caregate, db, log, extra=()):
        self.caregate, self.db, self.log, self.extra = caregate, db, log, list(extra)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [self.caregate, "serve", "--plain", "--listen", f"127.0.0.1:{self.port}", "--base-url", self.base,
             "--db", self.db, "--certs", "certs/dev", "--patient-listen", "none",
             "--admin-listen", "none"] + self.extra,
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"caregate serve stopped at start (exit {self.process.returncode})")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/fhir/metadata")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("caregate serve did not answer within 60 s")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Client:
    def __init__(self, port, token):
        self.port, self.token = port, token
        self.connection = None

    def call(self, method, path, body=None):
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/fhir+json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/fhir+json"
            headers["Prefer"] = "return=representation"
        try:
            self.connection.request(method, "/fhir/" + path, body=data, headers=headers)
            response = self.connection.getresponse()
            text = response.read()
            return response.status, (json.loads(text) if text else None)
        except (OSError, http.client.HTTPException):
            self.connection = None
            raise


class Ledger:
    """What the writers were told (acknowledged) and what they sent, shared by the writer threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = []         # (type, id, versionId, marker)
        self.transactions = []  # (ids, acked)


def writer(number, round_, port, token, ledger, stop, rng_seed):
    rng = random.Random(rng_seed)
    client = Client(port, token)
    own = None  # an Observation this writer updates
    n = 0
    while not stop.is_set():
        n += 1
        marker = f"round-{round_}-writer-{number}-write-{n}"
        kind = rng.choice(["create", "update", "transaction"]) if own else "create"
        try:
            if kind == "create":
                status, body = client.call("POST", "Observation", observation(marker))
                if 200 <= status < 300:
                    with ledger.lock:
                        ledger.acked.append(("Observation", body["id"], body["meta"]["versionId"], marker))
                    own = body["id"]
            elif kind == "update":
                status, body = client.call("PUT", f"Observation/{own}", observation(marker, own))
                if 200 <= status < 300:
                    with ledger.lock:
                        ledger.acked.append(("Observation", own, body["meta"]["versionId"], marker))
            else:
                ids = [f"tx-{round_}-{number}-{n}-{k}" for k in range(3)]
                bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"resource": observation(f"{marker}-{k}", i), "request": {"method": "PUT", "url": f"Observation/{i}"}}
                    for k, i in enumerate(ids)]}
                with ledger.lock:
                    ledger.transactions.append([ids, False, marker])
                    entry = ledger.transactions[-1]
                status, body = client.call("POST", "", bundle)
                if 200 <= status < 300:
                    with ledger.lock:
                        entry[1] = True
                        for k, i in enumerate(ids):
                            ledger.acked.append(("Observation", i, "1", f"{marker}-{k}"))
        except (OSError, http.client.HTTPException, ValueError):
            if stop.is_set():
                return
            time.sleep(0.01)  # the server is gone (killed): the round ends


def check_round(port, token, ledger):
    client = Client(port, token)
    for type_, id_, version, marker in ledger.acked:
        status, body = client.call("GET", f"{type_}/{id_}/_history/{version}")
        if status != 200:
            return f"{type_}/{id_} version {version} was acknowledged, and after the restart answers {status}"
        if body.get("valueString") != marker:
            return f"{type_}/{id_} version {version} holds {body.get('valueString')!r}, acknowledged as {marker!r}"
    for ids, acked, marker in ledger.transactions:
        present = []
        for i in ids:
            status, body = client.call("GET", f"Observation/{i}")
            present.append(status == 200)
        if any(present) and not all(present):
            return f"the transaction {marker} is there in part: {dict(zip(ids, present))}"
        if acked and not all(present):
            return f"the transaction {marker} was acknowledged and is not there"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--caregate", default="build/caregate")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", help="a directory to keep the database and the server's log in")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = args.keep or tempfile.mkdtemp(prefix="caregate-crash-")
    db = fresh_sqlite(work, "crash.db")
    log = open(os.path.join(work, "server.log"), "ab")
    server = Server(args.caregate, db, log)
    token = system_token(args.caregate, server.base, "crash-test", 7200)
    server.start()
    status, _ = Client(server.port, token).call("PUT", f"Patient/{NHS}", patient("Crash", "Test"))
    if not 200 <= status < 300:
        print(f"crash test: the Patient could not be written ({status})")
        return 1
    totals = [0, 0]
    for round_ in range(1, args.rounds + 1):
        ledger = Ledger()
        stop = threading.Event()
        threads = [threading.Thread(target=writer, args=(w, round_, server.port, token, ledger, stop, rng.random()))
                   for w in range(args.writers)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 1.5))
        server.kill()  # SIGKILL, mid-write
        stop.set()
        for t in threads:
            t.join()
        server.start()
        problem = check_round(server.port, token, ledger)
        totals[0] += len(ledger.acked)
        totals[1] += len(ledger.transactions)
        print(f"round {round_}: killed after {len(ledger.acked)} acknowledged writes, "
              f"{len(ledger.transactions)} transactions sent: {'FAILED: ' + problem if problem else 'all there'}",
              flush=True)
        if problem:
            server.stop()
            return 1
    server.stop()
    integrity = sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0]
    if integrity != "ok":
        print(f"crash test: integrity_check after {args.rounds} kills: {integrity}")
        return 1
    verified = subprocess.run([args.caregate, "audit", "verify", "--db", db], capture_output=True, text=True)
    print(verified.stdout.strip())
    if verified.returncode != 0:
        print("crash test: the audit chain does not verify")
        return 1
    print(f"crash test: {args.rounds} kills, {totals[0]} acknowledged writes all there, "
          f"{totals[1]} transactions whole or absent, integrity ok, audit chain intact")
    return 0


if __name__ == "__main__":
    sys.exit(main())
