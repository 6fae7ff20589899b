#!/usr/bin/env python3
"""A scanned letter as large as a real one, through `caregate serve`: a 50 MiB Binary uploaded raw,
read back raw and as the FHIR Binary (base64), each byte checked by SHA-256, and the server's peak
resident memory measured for each step (Linux: VmHWM of /proc/PID/status, reset before each step by
writing 5 to /proc/PID/clear_refs).

What it shows: the document is held whole in the server's memory at most once at any moment. A step
may raise the server's peak by at most 1.5 times what it must hold once (the bytes for the upload and
the raw read, their base64 for the FHIR read); two copies would take it to 2 times. Prints each
step's figure. Exit 0 when every step is within it; 1 naming the first that is not. Test data only:
patterned bytes, and the test-range NHS number 9000000009.

    tests/crash/large_binary_test.py --caregate build/caregate [--mib 50] [--db-dir DIR] [--postgresql URI]
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_test import NHS, Server, fresh_sqlite, patient, system_token  # noqa: E402

MIB = 1024 * 1024
ALLOWED = 1.5  # the most a step may raise the peak, in copies of what it must hold once


def memory(pid, field):
    """A field of /proc/PID/status in bytes (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def reset_peak(pid):
    with open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")


def patterned(size):
    """Bytes that no compression or text format would pass through unchanged: every byte value."""
    block = bytes((i * 31 + i // 256) & 0xFF for i in range(65536))
    return (block * (size // len(block) + 1))[:size]


class Client:
    def __init__(self, port, token):
        self.port, self.token = port, token

    def call(self, method, path, body=None, headers=None, keep_body=True):
        """(status, headers, body or its SHA-256 and size when keep_body is False)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        sent = {"Authorization": f"Bearer {self.token}"}
        sent.update(headers or {})
        connection.request(method, "/fhir/" + path, body=body, headers=sent)
        response = connection.getresponse()
        if keep_body:
            received = response.read()
        else:
            digest, size = hashlib.sha256(), 0
            while chunk := response.read(MIB):
                digest.update(chunk)
                size += len(chunk)
            received = (digest.hexdigest(), size)
        connection.close()
        return response.status, dict(response.getheaders()), received


def step(name, pid, must_hold, action):
    """Runs `action` with the peak reset before it; returns its result, or raises naming the step."""
    before = memory(pid, "VmRSS")
    reset_peak(pid)
    started = time.monotonic()
    result = action()
    took = time.monotonic() - started
    raised = memory(pid, "VmHWM") - before
    ratio = raised / must_hold
    print(f"{name}: {took:.2f} s, peak RSS +{raised / MIB:.1f} MiB, {ratio:.2f} x the {must_hold / MIB:.1f} MiB it "
          f"must hold once (at most {ALLOWED})", flush=True)
    if ratio > ALLOWED:
        raise AssertionError(f"{name} raised the server's peak memory by {ratio:.2f} times what it must hold once")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--caregate", default="build/caregate")
    parser.add_argument("--mib", type=int, default=50)
    parser.add_argument("--db-dir", help="where the database and the server's log go (default: a new directory)")
    parser.add_argument("--postgresql", help="an empty PostgreSQL database to run on instead of SQLite")
    args = parser.parse_args()
    work = args.db_dir or tempfile.mkdtemp(prefix="caregate-binary-")
    db = args.postgresql or fresh_sqlite(work, "binary.db")
    log = open(os.path.join(work, "server.log"), "ab")
    server = Server(args.caregate, db, log)
    token = system_token(args.caregate, server.base, "binary-test", 3600)
    server.start()
    try:
        client = Client(server.port, token)
        fhir_json = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
        status, _, _ = client.call("PUT", f"Patient/{NHS}", json.dumps(patient("Letter", "Scanned")).encode(), fhir_json)
        assert 200 <= status < 300, f"the Patient could not be written ({status})"
        status, _, body = client.call("POST", "DocumentReference", json.dumps({
            "resourceType": "DocumentReference", "status": "current", "subject": {"reference": f"Patient/{NHS}"},
            "content": [{"attachment": {"contentType": "application/pdf", "title": "Scanned letter"}}]}).encode(),
            fhir_json)
        assert status == 201, f"the DocumentReference could not be written ({status}): {body[:300]!r}"
        letter = json.loads(body)["id"]

        size = args.mib * MIB
        document = patterned(size)
        expected = hashlib.sha256(document).hexdigest()
        pid = server.process.pid

        status, _, body = step(f"upload of {args.mib} MiB raw", pid, size, lambda: client.call(
            "POST", "Binary", document, {"Content-Type": "application/pdf",
                                         "X-Security-Context": f"DocumentReference/{letter}"}))
        assert status == 201, f"the upload answered {status}: {body[:300]!r}"
        binary = json.loads(body)["id"]
        del document

        status, headers, (digest, got) = step("read raw", pid, size, lambda: client.call(
            "GET", f"Binary/{binary}", keep_body=False))
        assert status == 200 and headers.get("Content-Type") == "application/pdf", f"the raw read answered {status}"
        assert (digest, got) == (expected, size), f"the raw read gave {got} bytes of another content"

        encoded_size = (size + 2) // 3 * 4
        status, _, body = step("read as the FHIR Binary (base64)", pid, encoded_size, lambda: client.call(
            "GET", f"Binary/{binary}", headers={"Accept": "application/fhir+json"}))
        assert status == 200, f"the FHIR read answered {status}"
        data = base64.b64decode(json.loads(body)["data"])
        assert hashlib.sha256(data).hexdigest() == expected, "the FHIR read's data are not the bytes uploaded"
        print(f"large Binary: {args.mib} MiB up and down in both representations, every byte the same")
        return 0
    except AssertionError as failure:
        print(f"large Binary test FAILED: {failure}", flush=True)
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
