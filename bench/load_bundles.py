#!/usr/bin/env python3
"""Loads transaction Bundles (bench/bundles.py's NDJSON) into a FHIR server through `POST [base]`
(https://hl7.org/fhir/R4/http.html#transaction) with concurrent clients, and optionally checks what was
stored: the load that bench/ingest.sh and bench/run.sh measure. Not wrk: each Bundle is sent exactly
once (sent twice it would be another workload: its conditional create now matches), and a citizen's
parts in order on one client (the first creates the Patient the others reference).

The Organizations' Bundle goes first, not timed (the records reference them). Then each client, with
its own keep-alive connection, takes the next citizen and sends their Bundles with `Prefer:
return=minimal`. Any answer that is not 200 with a transaction-response whose every entry is 2xx
stops the load. With --seconds, clients take no new citizen after --warmup + --seconds (they finish
the one in hand, and its answers are checked like the others), and the figures count the Bundles
answered within the --seconds after the warm-up, as wrk counts requests: while the clients' first
Bundles are in flight nothing is answered, and the small Bundles are answered first.

Prints "RESULT key=value ..." (latencies in microseconds) or "FAILED <what>"; with --verify, then
"VERIFIED <what>" or "FAILED stored data: <what>":
- each type's count (`GET {type}?_summary=count`) grew by exactly the entries sent (counted before
  and after the timed load, so the database need not be empty; the Organizations are not counted:
  they may exist already);
- for a few citizens, the largest record among those sent, every reference of their Encounters,
  Conditions, Observations, MedicationRequests and CarePlans is a resolved `Type/id` of the same
  citizen (no urn:uuid or search URL left).
The server must have no other writer meanwhile.
"""
import argparse
import collections
import http.client
import json
import queue
import ssl
import sys
import threading
import time
import urllib.parse


def excerpt(data):
    return " ".join(data.decode("utf-8", "replace").split())[:400]


class refused(Exception):
    pass


class server:
    """Where to send: the base URL's host, port and path; TLS with a client certificate if given."""

    def __init__(self, args):
        u = urllib.parse.urlsplit(args.base)
        self.host, self.path = u.hostname, u.path.rstrip("/")
        self.tls = u.scheme == "https"
        self.port = u.port or (443 if self.tls else 80)
        self.timeout = args.timeout
        self.context = None
        if self.tls:
            self.context = ssl.create_default_context(cafile=args.cacert)
            if args.cert:
                self.context.load_cert_chain(args.cert, args.key)
        self.token = args.token

    def connect(self):
        if self.tls:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)


def read_groups(path):
    """The Bundles in order, grouped by the group named in Bundle.identifier (bench/bundles.py):
    (groups: group -> [(line, entries, {type: count})], the groups' order)."""
    groups, order = {}, []
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            bundle = json.loads(line)
            group = bundle["identifier"]["value"].rsplit("-", 3)[0]
            if group not in groups:
                groups[group] = []
                order.append(group)
            types = collections.Counter(e["resource"]["resourceType"] for e in bundle["entry"])
            groups[group].append((line.rstrip(b"\n"), len(bundle["entry"]), types))
    return groups, order


def send(to, conn, body, entries):
    """POSTs one Bundle; returns (seconds, None) or (seconds, what went wrong)."""
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json",
               "Authorization": "Bearer " + to.token, "Prefer": "return=minimal"}
    started = time.perf_counter()
    try:
        conn.request("POST", to.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
    except (OSError, http.client.HTTPException) as e:
        return time.perf_counter() - started, "no answer: %s: %s" % (type(e).__name__, e)
    took = time.perf_counter() - started
    if r.status != 200:
        return took, "%d %s" % (r.status, excerpt(data))
    try:
        answer = json.loads(data)
    except ValueError:
        return took, "200 but not JSON: %s" % excerpt(data)
    if answer.get("resourceType") != "Bundle" or answer.get("type") != "transaction-response":
        return took, "200 but not a transaction-response: %s" % excerpt(data)
    got = answer.get("entry") or []
    if len(got) != entries:
        return took, "200 with %d response entries for %d entries" % (len(got), entries)
    for i, e in enumerate(got):
        status = str((e.get("response") or {}).get("status", ""))
        if not status.startswith("2"):
            return took, "200 but entry %d answered %r: %s" % (i, status, excerpt(json.dumps(e).encode()))
    return took, None


def get(to, conn, target):
    """GET a path and query under the base (or a link's absolute URL): the JSON body of a 200."""
    if target.startswith("http"):
        u = urllib.parse.urlsplit(target)
        target = u.path + ("?" + u.query if u.query else "")
    else:
        target = to.path + "/" + target
    conn.request("GET", target, headers={"Accept": "application/fhir+json", "Authorization": "Bearer " + to.token})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise refused("GET %s answered %d: %s" % (target, r.status, excerpt(data)))
    return json.loads(data)


def count_types(to, conn, types):
    return {t: get(to, conn, "%s?_summary=count" % t).get("total") for t in sorted(types)}


def load(to, groups, order, connections, seconds, warmup):
    """Sends every group's Bundles with `connections` clients (for `warmup` + `seconds`, if given);
    returns a dict of what was sent and measured, with "failures" (the first is reported)."""
    work = queue.Queue()
    for g in order:
        work.put(g)
    lock, stop = threading.Lock(), threading.Event()
    done = []  # (finished at, seconds taken, entries) of each Bundle answered without error
    failures, sent_groups, sent_types = [], [], collections.Counter()
    started = time.perf_counter()
    window_start = started + warmup if seconds else started
    deadline = window_start + seconds if seconds else None

    def client():
        conn = to.connect()
        while not stop.is_set() and (deadline is None or time.perf_counter() < deadline):
            try:
                group = work.get_nowait()
            except queue.Empty:
                break
            with lock:
                sent_groups.append(group)
            for body, entries, types in groups[group]:
                took, problem = send(to, conn, body, entries)
                with lock:
                    if problem:
                        failures.append("citizen %s: POST [base] answered %s" % (group, problem))
                        stop.set()
                    else:
                        done.append((time.perf_counter(), took, entries))
                        sent_types.update(types)
                if problem:
                    break
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ended = time.perf_counter()
    window_end = min(ended, deadline) if deadline else ended
    counted = [d for d in done if window_start <= d[0] <= window_end]
    return {"failures": failures, "seconds": window_end - window_start, "counted": counted, "all": done,
            "groups": sent_groups, "types": sent_types}


def verify(to, groups, sent_groups, before, after, expected):
    problems = []
    for rtype in sorted(expected):
        grown = (after.get(rtype) or 0) - (before.get(rtype) or 0)
        if grown != expected[rtype]:
            problems.append("%s: %s stored (%s before, %s after), %d sent" % (
                rtype, grown, before.get(rtype), after.get(rtype), expected[rtype]))
    sizes = {g: sum(entries for _, entries, _ in groups[g]) for g in sent_groups}
    sample = sorted(set(sent_groups[:4] + [max(sent_groups, key=lambda g: (sizes[g], g))])) if sent_groups else []
    conn = to.connect()
    checked = 0
    for nhs in sample:
        items = []
        for rtype in ("Encounter", "Condition", "Observation", "MedicationRequest", "CarePlan"):
            url = "%s?patient=%s&_count=1000" % (rtype, nhs)
            while url:
                page = get(to, conn, url)
                items += [e["resource"] for e in page.get("entry") or []
                          if (e.get("search") or {}).get("mode", "match") == "match"]
                url = next((l["url"] for l in page.get("link") or [] if l.get("relation") == "next"), None)
        mine = {"%s/%s" % (r["resourceType"], r["id"]) for r in items}
        for r in items:
            key = "%s/%s" % (r["resourceType"], r["id"])
            text = json.dumps(r)
            if "urn:uuid:" in text or "?identifier=" in text:
                problems.append("%s keeps a reference the server did not resolve" % key)
            subject = (r.get("subject") or r.get("patient") or {}).get("reference")
            if subject != "Patient/" + nhs:
                problems.append("%s: subject %r, expected Patient/%s" % (key, subject, nhs))
            targets = [(r.get("encounter") or {}).get("reference")] + [a.get("reference") for a in r.get("addresses") or []]
            for t in filter(None, targets):
                if t not in mine:
                    problems.append("%s references %s, not an item of Patient/%s" % (key, t, nhs))
            checked += 1
    conn.close()
    if problems:
        raise refused("; ".join(problems[:5]) + (" (+%d more)" % (len(problems) - 5) if len(problems) > 5 else ""))
    return "%d resources counted by type; the references of %d resources of %d citizens (largest record %d resources)" % (
        sum(expected.values()), checked, len(sample), max(sizes[g] for g in sample) if sample else 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundles", help="the NDJSON of Bundles (bench/bundles.py --out)")
    parser.add_argument("--base", required=True, help="the server's FHIR base URL (http:// or https://)")
    parser.add_argument("--token", required=True, help="the bearer token sent with every request")
    parser.add_argument("--connections", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--timeout", type=float, default=120,
                        help="seconds to wait for one answer; slower counts as an error (default 120)")
    parser.add_argument("--seconds", type=float,
                        help="count the Bundles answered in this long after --warmup, and take no new citizen "
                             "after it (default: send all, count all)")
    parser.add_argument("--warmup", type=float, default=0,
                        help="with --seconds: seconds of load before those counted (default 0)")
    parser.add_argument("--cacert", help="https: the CA that signed the server's certificate")
    parser.add_argument("--cert", help="https: the client certificate to present")
    parser.add_argument("--key", help="https: the client certificate's key")
    parser.add_argument("--verify", action="store_true", help="then check what was stored (see above)")
    args = parser.parse_args()
    if args.connections < 1:
        parser.error("--connections must be at least 1")

    to = server(args)
    groups, order = read_groups(args.bundles)
    conn = to.connect()
    for body, entries, _ in groups.pop("organisations", []):
        _, problem = send(to, conn, body, entries)
        if problem:
            print("FAILED the Organizations' Bundle: POST [base] answered " + problem)
            return
    order = [g for g in order if g != "organisations"]
    types = {t for g in order for _, _, counted in groups[g] for t in counted}
    before = {}
    try:
        if args.verify:
            before = count_types(to, conn, types)
    except (refused, OSError, http.client.HTTPException, ValueError) as e:
        print("FAILED stored data: counting before the load: %s" % e)
        return
    conn.close()

    sent = load(to, groups, order, args.connections, args.seconds, args.warmup)
    if sent["failures"]:
        print("FAILED after %d Bundles stored; the first error: %s" % (len(sent["all"]), sent["failures"][0]))
        return
    counted, seconds = sent["counted"], sent["seconds"]
    if not counted:
        print("FAILED no Bundle was answered in the %.1f s counted (too few Bundles for the time?)" % seconds)
        return
    latencies = sorted(took for _, took, _ in counted)
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    resources = sum(entries for _, _, entries in counted)
    print("RESULT bundles=%d resources=%d seconds=%.3f resources_per_s=%.1f bundles_per_s=%.1f p50_us=%d p99_us=%d"
          " citizens_sent=%d bundles_sent=%d resources_sent=%d"
          % (len(counted), resources, seconds, resources / seconds, len(counted) / seconds,
             pick(0.50) * 1e6, pick(0.99) * 1e6, len(sent["groups"]), len(sent["all"]),
             sum(entries for _, _, entries in sent["all"])), flush=True)
    if args.verify:
        try:
            conn = to.connect()
            after = count_types(to, conn, types)
            conn.close()
            print("VERIFIED " + verify(to, groups, sent["groups"], before, after, sent["types"]))
        except (refused, OSError, http.client.HTTPException, ValueError, KeyError) as e:
            print("FAILED stored data: %s" % e)


if __name__ == "__main__":
    main()
