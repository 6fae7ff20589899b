#!/usr/bin/env python3
"""The request lists of bench/soak.sh, one file <kind>.tsv a kind for bench/wrk/soak.lua, made from a
population's targets (population.py --targets) and the server it will load: it creates, over TLS
with the caller's client certificate and token, the Observations that the updates rewrite (one a
writer citizen), and sends each kind's first request once, so that a list that answers an error (or a search that finds
nothing) stops the soak before it starts.

The caller's citizens (registered with --practice) are shuffled with --seed and split in two: the
writers' quarter, whose records the creates, updates and transactions grow, and the readers' rest,
whose Observations are read and searched and whose $everything is asked for. A record that grew
all along would make its searches and $everything slower as the soak goes on, which is not what the
soak looks for; Patients are read across both.

  bench/soak_requests.py TARGETS OUT --base URL --token T --cacert CA --cert CRT --key KEY
"""
import argparse
import http.client
import json
import random
import ssl
import sys
import urllib.parse

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SENTINEL = 987654.321  # stands for __VALUE__ while the body is JSON


def vital(nhs, code, display, unit, minute):
    """A vital sign as a GP system records it, about one citizen, now."""
    return {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs", "display": "Vital Signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{nhs}"},
        "effectiveDateTime": "2026-11-01T10:%02d:00Z" % (minute % 60),
        "valueQuantity": {"value": SENTINEL, "unit": unit, "system": UCUM, "code": unit},
    }


def dumps(resource):
    return json.dumps(resource, separators=(",", ":")).replace(str(SENTINEL), "__VALUE__")


class Client:
    def __init__(self, base, token, cacert, cert, key):
        url = urllib.parse.urlsplit(base)
        context = ssl.create_default_context(cafile=cacert)
        context.load_cert_chain(cert, key)
        self.connection = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=60)
        self.path = url.path.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}

    def send(self, method, path, body=None):
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/fhir+json"
        self.connection.request(method, self.path + ("/" + path if path else ""), body=body, headers=headers)
        answer = self.connection.getresponse()
        return answer.status, answer.read().decode("utf-8", "replace")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets")
    parser.add_argument("out")
    parser.add_argument("--base", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--cacert", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--practice", default="A81001")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--readers", type=int, default=2000, help="most citizens in the readers' lists")
    parser.add_argument("--writers", type=int, default=400, help="most citizens in the writers' lists")
    args = parser.parse_args()

    rows = [line.rstrip("\n").split("\t") for line in open(args.targets, encoding="utf-8")]
    rows = [r for r in rows if r[1] == args.practice]
    if len(rows) < 8:
        sys.exit(f"soak_requests.py: the population has {len(rows)} citizens registered with {args.practice}; 8 at least")
    rng = random.Random(args.seed)
    rng.shuffle(rows)
    split = max(1, len(rows) // 4)
    writers, readers = rows[:split][:args.writers], rows[split:][:args.readers]
    everyone = (readers + writers)[:args.readers]
    readers_with_codes = [r for r in readers if r[5]]
    readers_with_meds = [r for r in readers if int(r[6]) > 0]
    client = Client(args.base, args.token, args.cacert, args.cert, args.key)

    # The Observations the updates rewrite: a body weight of each writer, created now as the caller
    # (an organisation may change only what it contributed, so the population's own are not theirs).
    stored = []
    for i, r in enumerate(writers):
        weight = vital(r[0], "29463-7", "Body weight", "kg", i)
        weight["valueQuantity"]["value"] = 70
        status, text = client.send("POST", "Observation", json.dumps(weight))
        if status != 201:
            sys.exit(f"soak_requests.py: POST Observation (a body weight of {r[0]}) answered {status}: {text[:400]}")
        weight["id"] = json.loads(text)["id"]
        weight["valueQuantity"]["value"] = SENTINEL
        stored.append(weight)

    lists = {
        "patient_read": [("GET", f"Patient/{r[0]}") for r in everyone],
        "patient_vread": [("GET", f"Patient/{r[0]}/_history/1") for r in everyone],
        "observation_read": [("GET", f"Observation/{r[0]}-obs-0") for r in readers_with_codes],
        "observation_vread": [("GET", f"Observation/{r[0]}-obs-0/_history/1") for r in readers_with_codes],
        "observation_search": [("GET", f"Observation?patient={r[0]}&code={LOINC}%7C{rng.choice(r[5].split(','))}")
                               for r in readers_with_codes],
        "medication_search": [("GET", f"MedicationRequest?patient={r[0]}&status=active") for r in readers_with_meds],
        "everything": [("GET", f"Patient/{r[0]}/$everything") for r in readers],
        "create": [("POST", "Observation", dumps(vital(r[0], "8867-4", "Heart rate", "/min", i)))
                   for i, r in enumerate(writers)],
        "update": [("PUT", f"Observation/{o['id']}", dumps(o)) for o in stored],
    }
    # A transaction as a GP system sends a consultation's vital signs: two new Observations of one
    # citizen and a correction (PUT) of one stored before, all or nothing.
    transactions = []
    for i, r in enumerate(writers):
        corrected = stored[(i + len(stored) // 2) % len(stored)]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": f"urn:uuid:5a0c{i:08x}-0000-4000-8000-000000000001",
             "resource": vital(r[0], "8867-4", "Heart rate", "/min", i),
             "request": {"method": "POST", "url": "Observation"}},
            {"fullUrl": f"urn:uuid:5a0c{i:08x}-0000-4000-8000-000000000002",
             "resource": vital(r[0], "9279-1", "Respiratory rate", "/min", i),
             "request": {"method": "POST", "url": "Observation"}},
            {"fullUrl": f"{args.base.rstrip('/')}/Observation/{corrected['id']}", "resource": corrected,
             "request": {"method": "PUT", "url": f"Observation/{corrected['id']}"}},
        ]}
        transactions.append(("POST", "", dumps(bundle)))
    lists["transaction"] = transactions

    for kind, requests in lists.items():
        if not requests:
            sys.exit(f"soak_requests.py: no citizen for the {kind} list")
        with open(f"{args.out}/{kind}.tsv", "w", encoding="utf-8") as out:
            out.write("".join("\t".join(request) + "\n" for request in requests))
        # The first request, once: an error, or a search or $everything that finds nothing, stops here.
        method, path, *body = requests[0]
        status, text = client.send(method, path, body[0].replace("__VALUE__", "77.7") if body else None)
        if not 200 <= status < 300:
            sys.exit(f"soak_requests.py: {kind}: {method} {path or '[base]'} answered {status}: {text[:400]}")
        if ("?" in path or path.endswith("$everything")) and not json.loads(text).get("entry"):
            sys.exit(f"soak_requests.py: {kind}: {method} {path} found nothing: {text[:400]}")
    print(f"soak_requests.py: {len(everyone)} citizens read, {len(readers)} searched, {len(writers)} written; "
          f"{len(stored)} stored Observations updated")


if __name__ == "__main__":
    main()
