#!/usr/bin/env python3
"""The synthetic population of bench/population.py as FHIR transaction Bundles, for loading through
the API (`POST [base]`, https://hl7.org/fhir/R4/http.html#transaction): what bench/ingest.sh sends.
Not a general converter: it knows the shapes population.py writes.

Output, NDJSON with one Bundle a line:
1. a transaction with the Organizations (`PUT Organization/{ods}`; several if they are more than
   --max-entries), which the citizens' records reference and which must exist first;
2. for each citizen, one transaction with the Patient and the record, or several when the record has
   more than --max-entries resources (an 85-year-old's has a few hundred):
   - the Patient, first in the citizen's first part, as a conditional create (`POST Patient` with
     `ifNoneExist: identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}`) or, with `--patient put`,
     as `PUT Patient/{nhs}` (caregate's Patient id is the NHS number);
   - each item as `POST {type}` with a `urn:uuid:` fullUrl and no id (the server assigns it); its
     population id is kept as an identifier (system SOURCE_ID_SYSTEM), as a source system's local
     id would be, so that a later part can reference it by a conditional reference and, with
     `--idempotent`, so that `ifNoneExist` makes a resend create nothing new;
   - references between the citizen's items (an Observation's encounter, a CarePlan's addresses)
     by the target's urn:uuid when both are in the same Bundle, else by conditional reference
     (`Encounter?identifier=...`); items that reference each other are kept in the same part where
     the limit allows;
   - references to the citizen (`--citizen-ref`): `fullurl` (default) by the Patient entry's
     urn:uuid in the part that holds it and by conditional reference
     (`Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}`) in later parts; `literal`
     always `Patient/{nhs}`; `conditional` always by conditional reference.
   Each Bundle carries `identifier` (system BUNDLE_SYSTEM, value `{group}-{part}-of-{parts}`, the
   group being the citizen's NHS number or `organisations`): a loader must send a citizen's parts
   in order, the first creating the Patient the others reference. Servers ignore Bundle.identifier
   when processing a transaction.

Deterministic: the same options give the same bytes (urn:uuids are name-based, from the seed and the
population id). The population options are population.py's and mean what they mean there.

    python3 bench/bundles.py --citizens 1000 --out bundles.ndjson --resources resources.ndjson

`--resources FILE` also writes, one resource a line, exactly the resources the Bundles carry (with
their population ids, and the identifiers added), for `caregate import` to load the same data.

Python 3 standard library only.
"""

import argparse
import datetime as dt
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import population  # noqa: E402  (bench/population.py: the same citizens, the same records)

NHS_NUMBER_SYSTEM = population.NHS_NUMBER_SYSTEM
SOURCE_ID_SYSTEM = "http://example.org/fhir/caregate-bench/source-id"
BUNDLE_SYSTEM = "http://example.org/fhir/caregate-bench/bundle"
UUID_NAMESPACE = uuid.UUID("5b0c7b8e-3a51-4c1e-9a3e-6f1f8f0c2a11")  # fixed: urn:uuids are reproducible

# The elements of population.py's resources that reference one of the citizen's other items (the
# Patient, Organizations aside): the resource type, the element, whether it is a list.
ITEM_REFERENCES = {
    "Observation": [("encounter", False)],
    "CarePlan": [("addresses", True)],
}


def dumps(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), check_circular=False)


def urn(seed, source_id):
    return "urn:uuid:%s" % uuid.uuid5(UUID_NAMESPACE, "caregate-bench:%d:%s" % (seed, source_id))


def citizen_conditional(nhs):
    return "Patient?identifier=%s|%s" % (NHS_NUMBER_SYSTEM, nhs)


def item_conditional(rtype, source_id):
    return "%s?identifier=%s|%s" % (rtype, SOURCE_ID_SYSTEM, source_id)


def item_key(resource):
    return "%s/%s" % (resource["resourceType"], resource["id"])


def item_targets(resource):
    """The 'Type/id' keys of the citizen's other items that `resource` references."""
    out = []
    for element, is_list in ITEM_REFERENCES.get(resource["resourceType"], ()):
        value = resource.get(element)
        for ref in (value if is_list else [value]) if value else ():
            out.append(ref["reference"])
    return out


def with_source_id(resource):
    """The resource with its population id kept as an identifier (first, before any it has)."""
    out = dict(resource)
    out["identifier"] = [{"system": SOURCE_ID_SYSTEM, "value": resource["id"]}] + list(resource.get("identifier") or [])
    return out


def groups_of(items):
    """The items in groups that reference each other (an Encounter with its Observations, Conditions
    with the CarePlans that address them), each group in population order, groups ordered by their
    first item: packing whole groups keeps references inside one Bundle."""
    parent = list(range(len(items)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    index = {item_key(r): i for i, r in enumerate(items)}
    for i, resource in enumerate(items):
        for target in item_targets(resource):
            j = index.get(target)
            if j is not None:
                a, b = find(i), find(j)
                parent[max(a, b)] = min(a, b)
    groups = {}
    for i in range(len(items)):
        groups.setdefault(find(i), []).append(items[i])
    return [groups[k] for k in sorted(groups)]


def pack(groups, first_capacity, capacity):
    """Whole groups into parts of at most `capacity` items (`first_capacity` for the first, which
    also holds the Patient), greedily in order; a group larger than a part is cut."""
    parts, current, room = [], [], first_capacity
    for group in groups:
        if len(group) > room and current:
            parts.append(current)
            current, room = [], capacity
        while len(group) > room:  # larger than a whole part: cut it
            parts.append(current + group[:room])
            group = group[room:]
            current, room = [], capacity
        current += group
        room -= len(group)
    if current or not parts:
        parts.append(current)
    return parts


class bundle_writer:
    """Turns one citizen's Patient and items into transaction Bundles."""

    def __init__(self, args):
        self.args = args

    def organisations(self):
        resources = population.organisation_resources()
        entries = [{"resource": r, "request": {"method": "PUT", "url": item_key(r)}} for r in resources]
        size = self.args.max_entries
        parts = [entries[i:i + size] for i in range(0, len(entries), size)]
        return resources, [self.bundle("organisations", k + 1, len(parts), part) for k, part in enumerate(parts)]

    def bundle(self, group, part, parts, entries):
        return {"resourceType": "Bundle", "type": "transaction",
                "identifier": {"system": BUNDLE_SYSTEM, "value": "%s-%d-of-%d" % (group, part, parts)},
                "entry": entries}

    def citizen(self, resources):
        """(the resources as stored by an import, the Bundles) for one citizen's record."""
        args = self.args
        patient, items = resources[0], [with_source_id(r) for r in resources[1:]]
        nhs = patient["id"]
        patient_urn = urn(args.seed, item_key(patient))
        if args.max_entries == 1:
            parts = [[]] + [[item] for item in items]
        else:
            parts = pack(groups_of(items), args.max_entries - 1, args.max_entries)
        where = {item_key(item): k for k, part in enumerate(parts) for item in part}

        def citizen_ref(part_index):
            if args.citizen_ref == "literal" or (args.patient == "put" and args.citizen_ref == "fullurl"):
                return "Patient/%s" % nhs
            if args.citizen_ref == "fullurl" and part_index == 0:
                return patient_urn
            return citizen_conditional(nhs)

        def rewrite(value, part_index):
            """A copy of `value` with its references to the citizen and the citizen's items rewritten."""
            if isinstance(value, dict):
                out = {k: rewrite(v, part_index) for k, v in value.items()}
                ref = value.get("reference")
                if isinstance(ref, str):
                    if ref == "Patient/%s" % nhs:
                        out["reference"] = citizen_ref(part_index)
                    elif ref in where:
                        rtype, source_id = ref.split("/", 1)
                        out["reference"] = urn(args.seed, ref) if where[ref] == part_index \
                            else item_conditional(rtype, source_id)
                return out
            if isinstance(value, list):
                return [rewrite(v, part_index) for v in value]
            return value

        bundles = []
        for k, part in enumerate(parts):
            entries = []
            if k == 0:
                body = dict(patient)
                if args.patient == "put":
                    entries.append({"resource": body, "request": {"method": "PUT", "url": "Patient/%s" % nhs}})
                else:
                    del body["id"]
                    entries.append({"fullUrl": patient_urn, "resource": body,
                                    "request": {"method": "POST", "url": "Patient",
                                                "ifNoneExist": "identifier=%s|%s" % (NHS_NUMBER_SYSTEM, nhs)}})
            for item in part:
                body = rewrite({key: v for key, v in item.items() if key != "id"}, k)
                request = {"method": "POST", "url": item["resourceType"]}
                if args.idempotent:
                    request["ifNoneExist"] = "identifier=%s|%s" % (SOURCE_ID_SYSTEM, item["id"])
                entries.append({"fullUrl": urn(args.seed, item_key(item)), "resource": body, "request": request})
            bundles.append(self.bundle(nhs, k + 1, len(parts), entries))
        return [patient] + items, bundles


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--citizens", type=int, default=1000, help="how many citizens (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="the population's seed (default 1)")
    parser.add_argument("--mean-resources", type=float, default=100, help="mean resources per citizen (default 100)")
    parser.add_argument("--home-share", type=float, default=0.8, help="share of citizens registered with A81001 (default 0.8)")
    parser.add_argument("--as-of", default="2026-11-01", help="the day the records end (default 2026-11-01)")
    parser.add_argument("--max-entries", type=int, default=500,
                        help="most entries in one Bundle (default 500); a larger record is split into parts")
    parser.add_argument("--patient", choices=("create", "put"), default="create",
                        help="the Patient as a conditional create (default) or as PUT Patient/{nhs}")
    parser.add_argument("--citizen-ref", choices=("fullurl", "literal", "conditional"), default="fullurl",
                        help="how items reference their citizen (default fullurl: the Patient entry's urn:uuid in "
                             "its own Bundle, a conditional reference in later parts; with --patient put, "
                             "Patient/{nhs})")
    parser.add_argument("--idempotent", action="store_true",
                        help="every item a conditional create on its source id (ifNoneExist), so that sending "
                             "the Bundles again creates nothing")
    parser.add_argument("--out", default="-", help="the NDJSON of Bundles to write (default stdout)")
    parser.add_argument("--resources", help="also write the resources the Bundles carry as NDJSON, for caregate import")
    args = parser.parse_args()
    if args.citizens < 0 or args.citizens > 3_000_000:
        parser.error("--citizens must be between 0 and 3000000")
    if not 0 <= args.home_share <= 1:
        parser.error("--home-share must be between 0 and 1")
    if args.max_entries < 1:
        parser.error("--max-entries must be at least 1")
    as_of = dt.date.fromisoformat(args.as_of)
    mean_weight = population.mean_record_weight()

    writer = bundle_writer(args)
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8", newline="\n")
    flat = open(args.resources, "w", encoding="utf-8", newline="\n") if args.resources else None
    count = {"bundles": 0, "entries": 0, "split": 0}

    def emit(resources, bundles):
        for b in bundles:
            out.write(dumps(b) + "\n")
            count["entries"] += len(b["entry"])
        count["bundles"] += len(bundles)
        if flat:
            flat.write("".join(dumps(r) + "\n" for r in resources))

    try:
        emit(*writer.organisations())
        for index in range(args.citizens):
            citizen = population.citizen_record(args.seed, index, args.mean_resources, args.home_share, as_of,
                                                mean_weight)
            resources, bundles = writer.citizen(citizen.build())
            count["split"] += len(bundles) > 1
            emit(resources, bundles)
    finally:
        if out is not sys.stdout:
            out.close()
        if flat:
            flat.close()
    print("bundles.py: %d citizens, %d bundles, %d entries (%d records split over several bundles)"
          % (args.citizens, count["bundles"], count["entries"], count["split"]), file=sys.stderr)


if __name__ == "__main__":
    main()
