#!/usr/bin/env python3
"""The export crash test: a Bulk Data export of a population, `caregate serve` killed with SIGKILL at
random moments while the job runs (and while another client creates more), restarted on the same
database each time, until the job completes; then every file is downloaded and checked:

- no line twice, and every Observation current at the job's transactionTime there (none lost);
- nothing written after the transactionTime (the creates during the job) in it;
- the audit chain verifies.

Small output files (--export-file-bytes) make the job commit often, so that a kill lands between
commits. A restarted server resumes the job once the killed worker's lease has run out (10 s).
Exit 0 when it passed; 1 naming the failure. Test data only (bench/population.py's test-range NHS
numbers).

    tests/crash/export_crash_test.py --caregate build/caregate [--kills 3] [--citizens 30] [--db URI]
"""
import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time


from crash_test import Server  # noqa: E402  (the same directory: `caregate serve --plain`, restartable)


def call(port, token, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    hdrs = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    hdrs.update(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/fhir+json"
    c.request(method, "/fhir/" + path, body=data, headers=hdrs)
    r = c.getresponse()
    payload = r.read()
    return r.status, dict(r.getheaders()), payload


def creator(port, token, stop, created):
    """Creates Observations while the export runs: none may be in it."""
    n = 0
    while not stop.is_set():
        n += 1
        try:
            status, _, payload = call(port, token, "POST", "Observation", {
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": "Patient/9001000002"}, "valueQuantity": {"value": n, "unit": "/min"}})
            if status == 201:
                created.append(json.loads(payload)["id"])
        except OSError:
            time.sleep(0.05)  # the server is down for now


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--caregate", default="build/caregate")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--citizens", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", help="a PostgreSQL URI (an empty database); default: a SQLite file")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="caregate-export-crash-")
    db = args.db or os.path.join(work, "export.db")
    population = os.path.join(work, "population.ndjson")
    subprocess.run([sys.executable, "bench/population.py", "--citizens", str(args.citizens), "--seed", "5",
                    "--out", population], check=True, capture_output=True)
    subprocess.run([args.caregate, "import", population, "--db", db], check=True, capture_output=True)
    expected = set()
    with open(population) as f:
        for line in f:
            resource = json.loads(line)
            if resource["resourceType"] == "Observation":
                expected.add(resource["id"])

    log = open(os.path.join(work, "server.log"), "ab")
    # Small output files make the job commit often, so that a kill lands between commits.
    server = Server(args.caregate, db, log, extra=["--export-file-bytes", "4096"])
    token = subprocess.run([args.caregate, "token", "--certs", "certs/dev", "--aud", server.base, "--org", "QZZ",
                            "--role", "system", "--user", "export-crash-test", "--ttl", "7200"],
                           check=True, capture_output=True, text=True).stdout.strip()
    server.start()
    status, headers, payload = call(server.port, token, "GET", "$export?_type=Observation",
                                    headers={"Prefer": "respond-async"})
    if status != 202:
        print(f"export crash test: kick-off answered {status}: {payload[:300]}")
        return 1
    job = headers["Content-Location"].split("/fhir/", 1)[1]
    stop = threading.Event()
    created = []
    # A restart keeps the port (the same --listen), so the creator goes on once the server is back.
    writer = threading.Thread(target=creator, args=(server.port, token, stop, created))
    writer.start()
    kills = 0
    progress = 0
    manifest = None
    deadline = time.time() + 600
    while time.time() < deadline:
        if kills < args.kills:
            # Wait until the job has committed more than before (X-Progress: "N resources written"),
            # then kill it a moment later: mid-job, between commits or inside one.
            status, headers, payload = call(server.port, token, "GET", job)
            if status == 200:
                manifest = json.loads(payload)
                break
            written = int(headers.get("X-Progress", "0").split(" ", 1)[0] or 0)
            if written <= progress:
                time.sleep(0.01)
                continue
            time.sleep(rng.uniform(0, 0.05))
            server.kill()  # SIGKILL, mid-job
            kills += 1
            progress = written
            print(f"kill {kills}: {written} lines committed before it; restarting", flush=True)
            server.start()
            continue
        status, _, payload = call(server.port, token, "GET", job)
        if status == 200:
            manifest = json.loads(payload)
            break
        if status != 202:
            print(f"export crash test: polling answered {status}: {payload[:300]}")
            stop.set()
            writer.join()
            server.stop()
            return 1
        time.sleep(0.5)
    stop.set()
    writer.join()
    if manifest is None:
        print("export crash test: the job did not complete in 10 minutes")
        server.stop()
        return 1

    seen = []
    for item in manifest["output"]:
        path = item["url"].split("/fhir/", 1)[1]
        status, _, payload = call(server.port, token, "GET", path)
        if status != 200:
            print(f"export crash test: {path} answered {status}")
            server.stop()
            return 1
        lines = [line for line in payload.decode().split("\n") if line]
        if len(lines) != item["count"]:
            print(f"export crash test: {path} holds {len(lines)} lines, the manifest says {item['count']}")
            server.stop()
            return 1
        seen.extend(json.loads(line)["id"] for line in lines)
    server.stop()
    problems = []
    twice = len(seen) - len(set(seen))
    if twice:
        problems.append(f"{twice} lines written twice")
    lost = expected - set(seen)
    if lost:
        problems.append(f"{len(lost)} Observations lost, e.g. {sorted(lost)[:3]}")
    late = set(created) & set(seen)
    if late:
        problems.append(f"{len(late)} Observations created after the transaction time are in it")
    extra = set(seen) - expected - set(created)
    if extra:
        problems.append(f"{len(extra)} lines of nothing the test wrote")
    verify = subprocess.run([args.caregate, "audit", "verify", "--db", db], capture_output=True, text=True)
    if verify.returncode != 0:
        problems.append("the audit chain does not verify: " + verify.stdout[-300:])
    print(f"export crash test: {kills} kills, {len(manifest['output'])} files, {len(seen)} lines, "
          f"{len(expected)} expected, {len(created)} created during the job: "
          f"{'FAILED: ' + '; '.join(problems) if problems else 'each exactly once, nothing later'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
