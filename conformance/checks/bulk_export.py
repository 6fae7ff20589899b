"""Bulk Data Access v2.0.0 export (https://hl7.org/fhir/uv/bulkdata/STU2/export.html), from outside.

The protocol checks run against any server whose CapabilityStatement declares the export operation:
kick-off (GET, and POST with a Parameters body), polling, the manifest, the downloads, cancelling,
`_type`, `_since`, `_typeFilter`, `_elements`, the Patient and Group levels, and the errors. Each
export asks only for what the check itself wrote (a Group of its own citizens, or a `_typeFilter` on
its ids), so the checks hold whatever else the server stores.

The access checks need `--identities` (caregate's default policy, with an `analyst` caller: the ICS's
population health platform): who may export, who may see a job, and what never leaves (an objector's
record and a very restricted item in an identifiable export; an opted-out citizen, NHS numbers and
names in a pseudonymised one).
"""

import json
import time
import urllib.parse

from . import fail, gated_check, needs_identities
from .common import patient, random_test_nhs

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
# The names the checks' citizens carry, which a pseudonymised export must not.
FAMILY = "Zyxwvbulk"
GIVEN = "Qwertyexport"


def _declared(ctx):
    cap = ctx.capability()
    if not isinstance(cap, dict):
        return "no CapabilityStatement"
    for rest in cap.get("rest") or []:
        for op in rest.get("operation") or []:
            if op.get("name") == "export":
                return None
    return "the server does not declare the export operation"


def _declared_with_identities(ctx):
    return _declared(ctx) or needs_identities(ctx)


def _relative(ctx, url):
    base = ctx.client.url("")
    if not url.startswith(base):
        fail("%s is not under the base URL %s" % (url, base))
    return url[len(base):].lstrip("/")


def kickoff(ctx, client, path, body=None, headers=None):
    hdrs = dict(ASYNC)
    hdrs.update(headers or {})
    if body is None:
        r = client.get(path, headers=hdrs)
    else:
        r = client.post(path, body, headers=hdrs)
    if r.status != 202:
        fail("kick-off %s: expected 202, got %s" % (path, r.summary()))
    location = r.header("Content-Location")
    if not location:
        fail("kick-off %s: 202 without Content-Location" % path)
    return _relative(ctx, location)


def manifest_of(ctx, client, status, seconds=120):
    """Polls `status` until the job is done; its manifest."""
    deadline = time.monotonic() + seconds
    while True:
        r = client.get(status)
        if r.status == 200:
            break
        if r.status != 202:
            fail("polling %s: expected 202 or 200, got %s" % (status, r.summary()))
        if time.monotonic() > deadline:
            fail("polling %s: not done after %d s (X-Progress: %s)" % (status, seconds, r.header("X-Progress")))
        try:
            wait = float(r.header("Retry-After") or 1)
        except ValueError:
            fail("polling %s: Retry-After %r is not a number of seconds" % (status, r.header("Retry-After")))
        time.sleep(min(max(wait, 0.1), 2.0))
    manifest = r.json()
    if not isinstance(manifest, dict):
        fail("%s: the manifest is not a JSON object: %s" % (status, r.text()))
    for field in ("transactionTime", "request", "requiresAccessToken", "output", "error"):
        if field not in manifest:
            fail("%s: the manifest has no %s" % (status, field))
    if manifest["requiresAccessToken"] is not True:
        fail("%s: requiresAccessToken is %r, expected true" % (status, manifest["requiresAccessToken"]))
    return manifest


def download(ctx, client, manifest):
    """Every output file: {type: [resource, ...]}, each line checked."""
    lines = {}
    for item in manifest["output"]:
        for field in ("type", "url", "count"):
            if field not in item:
                fail("a manifest output has no %s: %s" % (field, item))
        r = client.get(_relative(ctx, item["url"]), headers={"Accept": "application/fhir+ndjson"})
        if r.status != 200:
            fail("GET %s: expected 200, got %s" % (item["url"], r.summary()))
        if r.media_type != "application/fhir+ndjson":
            fail("GET %s: Content-Type %r, expected application/fhir+ndjson" % (item["url"], r.media_type))
        text = r.body.decode("utf-8")
        count = 0
        for line in text.split("\n"):
            if not line:
                continue
            count += 1
            resource = json.loads(line)
            if resource.get("resourceType") != item["type"]:
                fail("%s: a line of type %s in a file of %s" % (item["url"], resource.get("resourceType"), item["type"]))
            lines.setdefault(item["type"], []).append(resource)
        if count != item["count"]:
            fail("%s: %d lines, the manifest says %d" % (item["url"], count, item["count"]))
    return lines


def export(ctx, client, path, body=None):
    manifest = manifest_of(ctx, client, kickoff(ctx, client, path, body))
    return manifest, download(ctx, client, manifest)


def _created(resp, what):
    if resp.status != 201:
        fail("%s: expected 201, got %s" % (what, resp.summary()))
    return resp.json()["id"]


def _observation(nhs, label=None):
    o = {"resourceType": "Observation", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
         "subject": {"reference": "Patient/%s" % nhs}, "valueQuantity": {"value": 70, "unit": "/min"}}
    if label:
        o["meta"] = {"security": [{"system": CONFIDENTIALITY, "code": label}]}
    return o


def _consent(nhs, scope):
    return {"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": CONSENT_SCOPE, "code": scope}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/%s" % nhs}, "provision": {"type": "deny"}}


def _citizens(ctx, client, n):
    """`n` new citizens, each with one Observation; their NHS numbers and Observation ids."""
    made = []
    for _ in range(n):
        nhs = random_test_nhs()
        r = client.put("Patient/" + nhs, patient(nhs, family=FAMILY, given=GIVEN))
        if r.status not in (200, 201):
            fail("setup: PUT Patient/%s: %s" % (nhs, r.summary()))
        made.append((nhs, _created(client.post("Observation", _observation(nhs)), "setup: POST Observation")))
    return made


def _group(client, members):
    body = {"resourceType": "Group", "type": "person", "actual": True,
            "member": [{"entity": {"reference": "Patient/%s" % nhs}} for nhs in members]}
    return _created(client.post("Group", body), "setup: POST Group")


def _ids(lines, rtype):
    return sorted(r["id"] for r in lines.get(rtype, []))


@gated_check("bulk_export.system", _declared)
def system(ctx):
    (nhs, obs), = _citizens(ctx, ctx.client, 1)
    flt = urllib.parse.quote("Observation?_id=%s" % obs, safe="")
    manifest, lines = export(ctx, ctx.client, "$export?_type=Observation&_typeFilter=" + flt)
    if _ids(lines, "Observation") != [obs]:
        fail("_typeFilter Observation?_id=%s exported %s" % (obs, _ids(lines, "Observation")))
    if not manifest["request"].endswith("_typeFilter=" + flt):
        fail("the manifest's request %r is not the kick-off's URL" % manifest["request"])
    if manifest["error"]:
        fail("the manifest lists errors: %s" % manifest["error"])


@gated_check("bulk_export.post", _declared)
def post(ctx):
    (nhs, obs), = _citizens(ctx, ctx.client, 1)
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "_outputFormat", "valueString": "application/fhir+ndjson"},
        {"name": "_type", "valueString": "Patient"},
        {"name": "_typeFilter", "valueString": "Patient?_id=%s" % nhs}]}
    _, lines = export(ctx, ctx.client, "$export", body)
    if list(lines) != ["Patient"] or _ids(lines, "Patient") != [nhs]:
        fail("POST $export with _type=Patient and a filter on %s exported %s" % (nhs, {t: _ids(lines, t) for t in lines}))


@gated_check("bulk_export.group_and_type", _declared)
def group_and_type(ctx):
    made = _citizens(ctx, ctx.client, 3)
    group = _group(ctx.client, [made[0][0], made[1][0]])
    _, lines = export(ctx, ctx.client, "Group/%s/$export" % group)
    if _ids(lines, "Patient") != sorted([made[0][0], made[1][0]]):
        fail("Group export: Patients %s, expected the two members" % _ids(lines, "Patient"))
    if _ids(lines, "Observation") != sorted([made[0][1], made[1][1]]):
        fail("Group export: Observations %s, expected the members' two" % _ids(lines, "Observation"))
    _, only = export(ctx, ctx.client, "Group/%s/$export?_type=Observation" % group)
    if list(only) != ["Observation"]:
        fail("_type=Observation exported %s" % list(only))
    _, subset = export(ctx, ctx.client, "Group/%s/$export?_type=Patient&_elements=gender" % group)
    for p in subset.get("Patient", []):
        if "name" in p:
            fail("_elements=gender: a Patient kept its name")
    r = ctx.client.get("Group/no-such-group-%s/$export" % made[2][0], headers=ASYNC)
    if r.status != 404:
        fail("a Group that does not exist: expected 404, got %s" % r.summary())


@gated_check("bulk_export.since", _declared)
def since(ctx):
    made = _citizens(ctx, ctx.client, 1)
    group = _group(ctx.client, [made[0][0]])
    time.sleep(0.05)
    after = ctx.client.get("Observation/" + made[0][1]).json()["meta"]["lastUpdated"]
    time.sleep(0.05)
    newer = _created(ctx.client.post("Observation", _observation(made[0][0])), "setup: POST Observation")
    _, lines = export(ctx, ctx.client, "Group/%s/$export?_type=Observation&_since=%s" % (group, urllib.parse.quote(after)))
    if _ids(lines, "Observation") != [newer]:
        fail("_since=%s exported %s, expected only %s" % (after, _ids(lines, "Observation"), newer))


@gated_check("bulk_export.patient_level", _declared)
def patient_level(ctx):
    (nhs, obs), = _citizens(ctx, ctx.client, 1)
    flt = urllib.parse.quote("Observation?_id=%s" % obs, safe="")
    _, lines = export(ctx, ctx.client, "Patient/$export?_type=Observation&_typeFilter=" + flt)
    if _ids(lines, "Observation") != [obs]:
        fail("Patient/$export exported %s" % _ids(lines, "Observation"))
    r = ctx.client.get("Patient/$export?_type=Organization", headers=ASYNC)
    if r.status != 400:
        fail("Patient/$export?_type=Organization (not in the compartment): expected 400, got %s" % r.summary())


@gated_check("bulk_export.cancel", _declared)
def cancel(ctx):
    (nhs, obs), = _citizens(ctx, ctx.client, 1)
    status = kickoff(ctx, ctx.client, "$export?_type=Patient&_typeFilter=" + urllib.parse.quote("Patient?_id=" + nhs, safe=""))
    manifest = manifest_of(ctx, ctx.client, status)
    files = [_relative(ctx, item["url"]) for item in manifest["output"]]
    r = ctx.client.delete(status)
    if r.status != 202:
        fail("DELETE %s: expected 202, got %s" % (status, r.summary()))
    r = ctx.client.get(status)
    if r.status != 404:
        fail("a cancelled job's status: expected 404, got %s" % r.summary())
    for f in files:
        r = ctx.client.get(f)
        if r.status != 404:
            fail("a cancelled job's file %s: expected 404, got %s" % (f, r.summary()))


@gated_check("bulk_export.errors", _declared)
def errors(ctx):
    r = ctx.client.get("$export", headers={"Accept": "application/fhir+json"})
    if r.status != 400:
        fail("a kick-off without Prefer: respond-async: expected 400, got %s" % r.summary())
    for query, name in (("includeAssociatedData=LatestProvenanceResources", "includeAssociatedData"),
                        ("_outputFormat=text/csv", "_outputFormat"),
                        ("_since=not-a-date", "_since"),
                        ("_type=NoSuchType", "_type"),
                        ("_typeFilter=" + urllib.parse.quote("Observation?no-such-param=1", safe=""), "_typeFilter")):
        r = ctx.client.get("$export?" + query, headers=ASYNC)
        if r.status != 400:
            fail("$export?%s: expected 400, got %s" % (query, r.summary()))
        if name not in r.text(2000):
            fail("$export?%s: the OperationOutcome does not name %s: %s" % (query, name, r.text()))
    r = ctx.client.get("$export-status/no-such-job")
    if r.status != 404:
        fail("an unknown job's status: expected 404, got %s" % r.summary())


@gated_check("bulk_export.access", _declared_with_identities)
def access(ctx):
    from .access import Callers
    callers = Callers(ctx)
    try:
        system = callers("system")
        # Who may not export at all.
        for name in ("gp_clinician", "social_worker", "ig"):
            r = callers(name).get("$export", headers=ASYNC)
            if r.status != 403:
                fail("%s kicks off $export: expected 403, got %s" % (name, r.summary()))
        # Three citizens: one objects to sharing, one has opted out of planning and research use,
        # one has a very restricted item.
        (objector, obj_o), (opted, opt_o), (plain, plain_o) = _citizens(ctx, system, 3)
        _created(system.post("Consent", _consent(objector, "patient-privacy")), "setup: objection")
        _created(system.post("Consent", _consent(opted, "research")), "setup: opt-out")
        secret = _created(system.post("Observation", _observation(plain, "V")), "setup: V item")
        group = _group(system, [objector, opted, plain])

        status = kickoff(ctx, system, "Group/%s/$export" % group)
        for name in ("gp_clinician", "social_worker"):
            r = callers(name).get(status)
            if r.status != 404:
                fail("%s polls the system's job: expected 404, got %s" % (name, r.summary()))
        manifest = manifest_of(ctx, system, status)
        for item in manifest["output"]:
            r = callers("gp_clinician").get(_relative(ctx, item["url"]))
            if r.status != 404:
                fail("gp_clinician downloads the system's file: expected 404, got %s" % r.summary())
        lines = download(ctx, system, manifest)
        text = json.dumps(lines)
        if objector in text or obj_o in text:
            fail("an identifiable export holds the record of a citizen who objects to sharing")
        if secret in text:
            fail("an identifiable export holds a very restricted (V) item")
        if plain_o not in text or opt_o not in text:
            fail("an identifiable export lacks what it should hold (direct care ignores the opt-out)")

        if "analyst" not in callers.spec:
            return
        analyst = callers("analyst")
        _, pseudo = export(ctx, analyst, "Group/%s/$export" % group)
        text = json.dumps(pseudo)
        for nhs in (objector, opted, plain):
            if nhs in text:
                fail("a pseudonymised export holds the NHS number %s" % nhs)
        for ident in (obj_o, opt_o, plain_o, secret):
            if ident in text:
                fail("a pseudonymised export holds the id %s" % ident)
        if FAMILY in text or GIVEN in text:
            fail("a pseudonymised export holds a citizen's name")
        if len(pseudo.get("Patient", [])) != 1:
            fail("a pseudonymised export of 3 members (one objecting, one opted out) holds %d Patients, expected 1"
                 % len(pseudo.get("Patient", [])))
    finally:
        callers.close()
