#!/usr/bin/env python3
"""A real full disk under a running server: `caregate serve` on a database in a small tmpfs (a
size-limited file system), written to until the file system is full, then the file system grown
(`mount -o remount,size=...`) while the server still runs. Checks:

- once the disk is full, writes get 503 with Retry-After and an OperationOutcome, and reads go on;
- once it has room again, the same server (no restart) accepts writes again;
- every write answered 2xx is there with its exact content, none of the refused ones is;
- after a clean stop: PRAGMA integrity_check is ok and the audit chain verifies.

Needs root (or CAP_SYS_ADMIN) to mount a tmpfs; where it cannot mount, it says so and exits 0
without testing (the same faults are injected in every run by tests/storage/faults_test.cpp and
tests/gateway/faults_test.cpp). Exit 1 naming the first failure. Test data only: NHS number 9000000009.

    tests/crash/disk_full_test.py --caregate build/caregate [--size-kib 6144]
"""
import argparse
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_test import NHS, Client, Server, observation, patient  # noqa: E402


def mount_tmpfs(directory, size_kib):
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", directory],
                          capture_output=True, text=True)
    return done.returncode == 0, done.stderr.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--caregate", default="build/caregate")
    parser.add_argument("--size-kib", type=int, default=6144, help="the file system's size while it fills")
    args = parser.parse_args()
    caregate = os.path.abspath(args.caregate)
    work = tempfile.mkdtemp(prefix="caregate-disk-full-")
    disk = os.path.join(work, "disk")
    os.makedirs(disk)
    mounted, why = mount_tmpfs(disk, args.size_kib)
    if not mounted:
        print(f"disk full test: not run: cannot mount a tmpfs here ({why or 'mount failed'}); "
              "the fault VFS tests cover a full disk in every run")
        return 0
    log = open(os.path.join(work, "server.log"), "ab")
    server = None
    try:
        db = os.path.join(disk, "full.db")
        server = Server(caregate, db, log)
        token = subprocess.run([caregate, "token", "--certs", "certs/dev", "--aud", server.base, "--org", "QZZ",
                                "--role", "system", "--user", "disk-full-test", "--ttl", "3600"],
                               check=True, capture_output=True, text=True).stdout.strip()
        server.start()
        client = Client(server.port, token)
        status, _ = client.call("PUT", f"Patient/{NHS}", patient("Full", "Disk"))
        if status != 201:
            print(f"disk full test: FAILED: the Patient could not be written ({status})")
            return 1

        acked = {}  # id -> marker
        refused = None
        padding = "x" * 20000  # each write about 20 KB: the disk fills in a few hundred
        for n in range(5000):
            marker = f"fill-{n}-{padding}"
            status, body = client.call("POST", "Observation", observation(marker))
            if status == 201:
                acked[body["id"]] = marker
                continue
            refused = (status, body)
            break
        if refused is None:
            print("disk full test: FAILED: 5,000 writes of 20 KB fitted; the file system never filled")
            return 1
        status, body = refused
        if status != 503 or (body or {}).get("resourceType") != "OperationOutcome":
            print(f"disk full test: FAILED: a write to a full disk got {status} {str(body)[:300]}, not 503 with an OperationOutcome")
            return 1
        # Retry-After: one more write, on a connection of its own, to read the header (Client keeps none).
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        c.request("POST", "/fhir/Observation", body=json.dumps(observation("refused-" + padding)).encode(),
                  headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})
        response = c.getresponse()
        response.read()
        if response.status != 503 or response.getheader("Retry-After") != "1":
            print(f"disk full test: FAILED: a second write to the full disk got {response.status}, "
                  f"Retry-After {response.getheader('Retry-After')!r}")
            return 1
        diagnostics = body["issue"][0].get("diagnostics", "")
        status, _ = client.call("GET", f"Patient/{NHS}")
        if status != 200:
            print(f"disk full test: FAILED: a read while the disk is full got {status}")
            return 1
        print(f"disk full: {len(acked)} writes acknowledged, then 503 Retry-After: 1 ({diagnostics}); reads go on")

        subprocess.run(["mount", "-o", f"remount,size={args.size_kib * 16}k", disk], check=True)
        accepted = False
        for _ in range(50):  # Retry-After says 1 s; the writer retries the backlog on its own
            status, body = client.call("POST", "Observation", observation("after-" + padding))
            if status == 201:
                acked[body["id"]] = "after-" + padding
                accepted = True
                break
            time.sleep(0.2)
        if not accepted:
            print(f"disk full test: FAILED: writes still refused ({status}) after the file system grew")
            return 1
        print("room again: the same server accepts writes (no restart)")

        for id_, marker in acked.items():
            status, body = client.call("GET", f"Observation/{id_}")
            if status != 200 or body.get("valueString") != marker:
                print(f"disk full test: FAILED: acknowledged Observation/{id_} reads back {status}")
                return 1
        status, bundle = client.call("GET", f"Observation?patient={NHS}&_summary=count")
        if status != 200 or bundle.get("total") != len(acked):
            print(f"disk full test: FAILED: {bundle.get('total') if bundle else status} Observations stored, "
                  f"{len(acked)} acknowledged")
            return 1
        server.stop()
        if server.process.returncode != 0:
            print(f"disk full test: FAILED: caregate serve exited {server.process.returncode} on SIGTERM")
            return 1
        server = None
        integrity = sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            print(f"disk full test: FAILED: integrity_check: {integrity}")
            return 1
        verified = subprocess.run([caregate, "audit", "verify", "--db", db], capture_output=True, text=True)
        if verified.returncode != 0:
            print(f"disk full test: FAILED: the audit chain does not verify: {verified.stdout.strip()}")
            return 1
        print(f"disk full test: {len(acked)} acknowledged writes all there, the refused ones absent, "
              "integrity ok, audit chain intact")
        return 0
    finally:
        if server is not None:
            server.kill()
        subprocess.run(["umount", disk], capture_output=True)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
