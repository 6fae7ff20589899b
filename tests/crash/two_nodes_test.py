#!/usr/bin/env python3
"""Visibility is never stale across nodes: two `caregate serve` processes on one PostgreSQL database
(as behind one load balancer), each with its standing cache on; a write that narrows what a caller may
see is acknowledged through node A, and the very next request, through node B, is answered with the
narrowed visibility. Node B has just served the same caller the same item, so its cached standing is
warm: only the database's access generation (the engine's invariant 27) keeps it from answering stale.

Checked, each many times over (`--rounds`), alternating which node writes:
- an objection (a Consent with provision deny) hides another organisation's item at once; withdrawing
  it shows the item again at once;
- a label that restricts an item to its writer (V) hides it from another organisation at once, in a
  read and in a search total;
- hidden and absent answer alike (404 with the same body).
Then, with the nodes' processes: 32 conditional creates of one item (If-None-Exist), sent at the same
moment and spread over both nodes, make exactly one resource (one 201, the others 200 naming it),
three times over; and once both nodes have stopped, `caregate audit verify` finds the one audit chain
they both wrote whole.

Exit 0 when every check passed; 1 naming the first failure. Test data only: test-range NHS numbers.

    tests/crash/two_nodes_test.py --caregate build/caregate --db postgresql://caregate@127.0.0.1:PORT/DB
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_test import Client  # noqa: E402
from failover_test import Node  # noqa: E402

TOM = "9000000009"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def condition(text, label=None):
    resource = {"resourceType": "Condition", "code": {"text": text}, "subject": {"reference": f"Patient/{TOM}"},
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                               "code": "active"}]}}
    if label:
        resource["meta"] = {"security": [{"system": CONFIDENTIALITY, "code": label}]}
    return resource


OBJECTION = {"resourceType": "Consent", "status": "active",
             "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                   "code": "patient-privacy"}]},
             "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
             "patient": {"reference": f"Patient/{TOM}"}, "provision": {"type": "deny"}}


class Failed(Exception):
    pass


def conditional_creates(nodes, token, count, value):
    """`count` conditional creates of one Observation (If-None-Exist on its identifier), each on a
    connection of its own, released at one moment and spread over the nodes: (status, id) each."""
    observation = {"resourceType": "Observation", "status": "final",
                   "identifier": [{"system": "https://two-nodes.example/observation", "value": value}],
                   "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                   "subject": {"reference": f"Patient/{TOM}"}, "valueQuantity": {"value": 70}}
    body = json.dumps(observation).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json",
               "Accept": "application/fhir+json", "Prefer": "return=representation",
               "If-None-Exist": f"identifier=https://two-nodes.example/observation|{value}"}
    start = threading.Barrier(count)
    answers = [None] * count

    def send(i):
        connection = http.client.HTTPConnection("127.0.0.1", nodes[i % len(nodes)].port, timeout=60)
        try:
            connection.connect()
            start.wait()
            connection.request("POST", "/fhir/Observation", body=body, headers=headers)
            response = connection.getresponse()
            text = response.read()
            answers[i] = (response.status, (json.loads(text) if text else {}).get("id"))
        except (OSError, http.client.HTTPException, threading.BrokenBarrierError) as e:
            answers[i] = (None, str(e))
        finally:
            connection.close()
    threads = [threading.Thread(target=send, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def expect(answer, status, what):
    if answer[0] != status:
        raise Failed(f"{what}: expected {status}, got {answer[0]} {answer[1]}")
    return answer[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--caregate", default="build/caregate")
    parser.add_argument("--db", required=True, help="a PostgreSQL database URI, empty or caregate's")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="caregate-two-nodes-")
    log = open(os.path.join(work, "nodes.log"), "ab")
    nodes = [Node(args.caregate, args.db, log), Node(args.caregate, args.db, log)]
    try:
        for node in nodes:
            node.base = nodes[0].base  # one base URL for both, as behind one load balancer
            node.start()

        def token(org, role, user):
            return subprocess.run([args.caregate, "token", "--certs", "certs/dev", "--aud", nodes[0].base, "--org", org,
                                   "--role", role, "--user", user, "--ttl", "3600"],
                                  check=True, capture_output=True, text=True).stdout.strip()

        tokens = {"system": token("QZZ", "system", "two-nodes-test"), "gp": token("A81001", "R8000", "gp-doctor-1"),
                  "acute": token("RX1", "R8000", "acute-doctor-1")}
        # clients[who][n]: who, through node n (a connection each, kept open as an app's would be).
        clients = {who: [Client(node.port, t) for node in nodes] for who, t in tokens.items()}
        a, b = 0, 1
        patient = {"resourceType": "Patient", "id": TOM,
                   "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": TOM}],
                   "name": [{"family": "Nodes", "given": ["Tom"]}],
                   "generalPractitioner": [{"reference": "Organization/A81001"}]}
        expect(clients["system"][a].call("PUT", f"Patient/{TOM}", patient), 201, "the citizen, through A")
        encounter = {"resourceType": "Encounter", "status": "in-progress",
                     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                     "subject": {"reference": f"Patient/{TOM}"}, "serviceProvider": {"reference": "Organization/RX1"}}
        expect(clients["acute"][a].call("POST", "Encounter", encounter), 201, "the trust's Encounter, through A")
        gp_item = expect(clients["gp"][a].call("POST", "Condition", condition("the GP's")), 201, "the GP's item")["id"]
        absent = clients["acute"][b].call("GET", "Condition/no-such-condition")

        for round_ in range(1, args.rounds + 1):
            writer, reader = (a, b) if round_ % 2 else (b, a)
            acute = clients["acute"][reader]
            where = f"round {round_} (written through {'AB'[writer]}, read through {'AB'[reader]})"
            # Warm: the reader node has just shown the trust the GP's item, so its standing is cached.
            for _ in range(2):
                expect(acute.call("GET", f"Condition/{gp_item}"), 200, f"{where}: before the objection")
            consent = expect(clients["gp"][writer].call("POST", "Consent", OBJECTION), 201, f"{where}: the objection")
            hidden = acute.call("GET", f"Condition/{gp_item}")
            expect(hidden, 404, f"{where}: another organisation's item, the request after the objection")
            if hidden != absent:
                raise Failed(f"{where}: the hidden item's 404 differs from an absent one's")
            expect(clients["gp"][writer].call("DELETE", f"Consent/{consent['id']}"), 204, f"{where}: withdrawing it")
            expect(acute.call("GET", f"Condition/{gp_item}"), 200, f"{where}: the request after the withdrawal")

            # A label that keeps an item to its writer: hidden from the trust at once, in a read and a total.
            item = expect(clients["gp"][writer].call("POST", "Condition", condition(f"labelled in round {round_}")),
                          201, f"{where}: an item to be labelled")
            expect(acute.call("GET", f"Condition/{item['id']}"), 200, f"{where}: before the label")
            search = f"Condition?_id={item['id']}&_total=accurate"
            if expect(acute.call("GET", search), 200, f"{where}: a search before the label").get("total") != 1:
                raise Failed(f"{where}: the search before the label does not find the item")
            item["meta"] = {"security": [{"system": CONFIDENTIALITY, "code": "V"}]}
            expect(clients["gp"][writer].call("PUT", f"Condition/{item['id']}", item), 200, f"{where}: the label")
            expect(acute.call("GET", f"Condition/{item['id']}"), 404, f"{where}: the request after the label")
            if expect(acute.call("GET", search), 200, f"{where}: a search after the label").get("total") != 0:
                raise Failed(f"{where}: the search after the label still counts the item")
        print(f"two nodes test: {args.rounds} rounds, every narrowing write seen through the other node at once")

        for race in range(1, 4):
            value = f"race-{race}-{os.getpid()}"
            answers = conditional_creates(nodes, tokens["system"], 32, value)
            made = [a for a in answers if a[0] == 201]
            matched = [a for a in answers if a[0] == 200]
            if len(made) != 1 or len(matched) != 31 or any(a[1] != made[0][1] for a in matched):
                raise Failed(f"race {race}: 32 conditional creates over two nodes answered {sorted(answers, key=str)}")
            for n in (a, b):
                found = expect(clients["system"][n].call(
                    "GET", f"Observation?identifier=https://two-nodes.example/observation|{value}&_total=accurate"),
                    200, f"race {race}: searching for the item through node {'AB'[n]}")
                if found.get("total") != 1:
                    raise Failed(f"race {race}: node {'AB'[n]} finds {found.get('total')} items, not 1")
        print("two nodes test: 3 times 32 conditional creates at once over two nodes made one resource each")

        for node in nodes:
            if node.stop() != 0:
                raise Failed("a node did not stop cleanly")
        verified = subprocess.run([args.caregate, "audit", "verify", "--db", args.db], capture_output=True, text=True)
        if verified.returncode != 0:
            raise Failed(f"the audit chain both nodes wrote does not verify: {verified.stdout.strip()}")
        print(f"two nodes test: {verified.stdout.strip().splitlines()[0]}")
        return 0
    except Failed as failure:
        print(f"two nodes test: FAILED: {failure}")
        return 1
    finally:
        for node in nodes:
            if node.alive():
                node.stop()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
