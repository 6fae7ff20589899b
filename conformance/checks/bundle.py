"""Batch and transaction (https://hl7.org/fhir/R4/http.html#transaction): `POST [base]` with a Bundle.

A transaction is all or nothing: its `urn:uuid:` fullUrls and conditional references
(`Patient?identifier=...`) are replaced by the ids the server assigned or found, everywhere in the
resources; its entries are processed DELETE, POST, PUT, GET, so its GETs see its writes; the
response has one entry per request, in the request's order, with status, location, etag and
lastModified; one failing entry fails it whole, with an OperationOutcome naming the entry. A batch's
entries succeed or fail one by one. Conditional creates (`ifNoneExist`) never duplicate, not even
when the same transaction arrives on many connections at once.

Each check makes its own data, marked with the run token (a `meta.tag`, identifiers), and counts
what was stored through searches scoped to that mark, so it runs on a database with other data.
The checks are skipped (`SKIP`) when the CapabilityStatement declares neither the `transaction` nor
the `batch` interaction they need, unless the server answers it anyway, which fails. The access
checks (`bundle.access.*`) need `--identities` (caregate's default policy).
"""

import json
import re
import uuid

from . import check, fail, gated_check, needs_identities
from .common import (INSTANT_RE, at_once, NHS_SYSTEM, WEAK_ETAG_RE, current_version, expect_oo,
                     expect_resource, first_difference, patient, strip_meta)
from .search import search

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
XHTML = "http://www.w3.org/1999/xhtml"
LOCATION_RE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})/_history/([A-Za-z0-9\-\.]{1,64})$")
TOO_MANY_ENTRIES = 100_000  # far above any sensible limit of entries, well under a 16 MiB body
CONCURRENT_CLIENTS = 8


# ---------------------------------------------------------------------------------------
# Registration: skipped unless the CapabilityStatement declares the interaction
# ---------------------------------------------------------------------------------------
def _why_not(ctx, kind):
    """None if `kind` (transaction or batch) is declared; else the reason to skip. Fails when the
    server processes it without declaring it (the CapabilityStatement must say what it does)."""
    cache = ctx.__dict__.setdefault("bundle_support", {})
    if kind not in cache:
        declared = set()
        for rest in ctx.capability().get("rest") or []:
            if isinstance(rest, dict) and rest.get("mode") == "server":
                declared |= {i.get("code") for i in rest.get("interaction") or [] if isinstance(i, dict)}
        if kind in declared:
            cache[kind] = None
        else:
            r = _post(ctx.client, {"resourceType": "Bundle", "type": kind, "entry": []})
            body = r.json()
            if r.status == 200 and isinstance(body, dict) and body.get("type") == kind + "-response":
                cache[kind] = CheckFailedReason("POST [base] with an empty %s answers a %s-response, but "
                                                "the CapabilityStatement does not declare the %s interaction"
                                                % (kind, kind, kind))
            else:
                cache[kind] = "the CapabilityStatement does not declare %s (an empty one answers %d)" % (kind, r.status)
    why = cache[kind]
    if isinstance(why, CheckFailedReason):
        fail(str(why))
    return why


class CheckFailedReason(str):
    """A cached reason that fails every check that meets it, instead of skipping."""


def bundle_check(name, *kinds, identities=False):
    """Register `fn(ctx)` as check `name`, skipped (a SKIP line) when an interaction of `kinds` is
    not declared, or when it needs `--identities` and none were given."""
    def why_not(ctx):
        if identities and needs_identities(ctx):
            return needs_identities(ctx)
        for kind in kinds:
            why = _why_not(ctx, kind)
            if why:
                return why
        return None
    return gated_check(name, why_not)


# ---------------------------------------------------------------------------------------
# Bundles and their answers
# ---------------------------------------------------------------------------------------
def _post(client, bundle, headers=None):
    return client.request("POST", "", json_body=bundle, headers=headers)


def _urn():
    return "urn:uuid:" + str(uuid.uuid4())


def transaction(*entries, kind="transaction"):
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post_entry(resource, full_url=None, if_none_exist=None):
    e = {"fullUrl": full_url or _urn(), "resource": resource,
         "request": {"method": "POST", "url": resource["resourceType"]}}
    if if_none_exist:
        e["request"]["ifNoneExist"] = if_none_exist
    return e


def put_entry(resource, if_match=None):
    e = {"resource": resource,
         "request": {"method": "PUT", "url": "%s/%s" % (resource["resourceType"], resource["id"])}}
    if if_match:
        e["request"]["ifMatch"] = if_match
    return e


def request_entry(method, url, **conditions):
    e = {"request": {"method": method, "url": url}}
    e["request"].update(conditions)
    return e


def expect_response_bundle(resp, kind, count, what):
    """A 200 answer with a `{kind}-response` Bundle of `count` entries, each with a response.status."""
    body = expect_resource(resp, 200, "Bundle", what)
    if body.get("type") != kind + "-response":
        fail("%s: Bundle.type %r, expected %r" % (what, body.get("type"), kind + "-response"))
    entries = body.get("entry") or []
    if len(entries) != count:
        fail("%s: %d response entries for %d request entries (one each, in order)" % (what, len(entries), count))
    for i, e in enumerate(entries):
        rsp = e.get("response") if isinstance(e, dict) else None
        if not isinstance(rsp, dict) or not isinstance(rsp.get("status"), str) or not rsp["status"][:3].isdigit():
            fail("%s: entry[%d] has no response.status with an HTTP status code (bdl-4)" % (what, i))
    return entries


def entry_status(entry):
    return int(entry["response"]["status"][:3])


def expect_entry(entry, i, statuses, rtype, what, version=None, resource=True):
    """A response entry of a write: its status, a location {rtype}/{id}/_history/{v}, the etag W/"v",
    lastModified, and the resource itself if `resource` is True (the default Prefer), none if it is
    False (return=minimal), either if it is None. Returns (id, version)."""
    w = "%s: entry[%d]" % (what, i)
    rsp = entry["response"]
    if entry_status(entry) not in statuses:
        fail("%s: response.status %r, expected %s" % (w, rsp["status"], "/".join(map(str, statuses))))
    m = LOCATION_RE.search(rsp.get("location") or "")
    if not m or m.group(1) != rtype:
        fail("%s: response.location %r, expected [{base}/]%s/{id}/_history/{version}" % (w, rsp.get("location"), rtype))
    rid, vid = m.group(2), m.group(3)
    if version is not None and vid != str(version):
        fail("%s: response.location %r names version %s, expected %s" % (w, rsp["location"], vid, version))
    tag = WEAK_ETAG_RE.match((rsp.get("etag") or "").strip())
    if not tag or tag.group(1) != vid:
        fail("%s: response.etag %r, expected W/\"%s\" (the location's version)" % (w, rsp.get("etag"), vid))
    if not isinstance(rsp.get("lastModified"), str) or not INSTANT_RE.match(rsp["lastModified"]):
        fail("%s: response.lastModified %r is not an instant" % (w, rsp.get("lastModified")))
    res = entry.get("resource")
    if resource or (resource is None and res is not None):
        if not isinstance(res, dict) or res.get("resourceType") != rtype or res.get("id") != rid:
            fail("%s: no resource %s/%s (the default, as for single writes, is return=representation)"
                 % (w, rtype, rid))
        if (res.get("meta") or {}).get("versionId") != vid:
            fail("%s: resource meta.versionId %r, the location says %s" % (w, (res.get("meta") or {}).get("versionId"), vid))
    elif resource is False and res is not None:
        fail("%s: a resource with Prefer: return=minimal" % w)
    return rid, vid


def names_entry(oo, i):
    """Whether an OperationOutcome names request entry `i` (e.g. expression Bundle.entry[3]...)."""
    pattern = re.compile(r"entry\[%d\]" % i)
    for issue in oo.get("issue") or []:
        places = list(issue.get("expression") or []) + list(issue.get("location") or []) + [issue.get("diagnostics") or ""]
        if any(isinstance(p, str) and pattern.search(p) for p in places):
            return True
    return False


def oo_text(oo):
    out = []
    for i in oo.get("issue") or []:
        out += [i.get("diagnostics") or "", (i.get("details") or {}).get("text") or ""]
        out += list(i.get("expression") or []) + list(i.get("location") or [])
    return " ".join(str(s) for s in out)


def expect_failed_transaction(resp, statuses, entry_index, what, element=None):
    """A refused transaction: an OperationOutcome with the status of the failing entry, naming it
    (and, if given, the element)."""
    oo = expect_oo(resp, statuses, what)
    if not names_entry(oo, entry_index):
        fail("%s: the OperationOutcome does not name entry[%d]: %s" % (what, entry_index, resp.summary()))
    if element and element not in oo_text(oo):
        fail("%s: the OperationOutcome does not name the element %r: %s" % (what, element, resp.summary()))
    return oo


# ---------------------------------------------------------------------------------------
# Test data, marked so that searches find only this check's
# ---------------------------------------------------------------------------------------
class Marks:
    """A tag and an identifier system of one check in this run; counts what carries the tag."""

    def __init__(self, ctx, label):
        self.ctx = ctx
        self.tag_system = "http://example.org/fhir/conformance-%s/tag" % ctx.run_token
        self.tag = "%s-%s" % (label, uuid.uuid4().hex[:8])
        self.id_system = "http://example.org/fhir/conformance-%s/id" % ctx.run_token

    def mark(self, resource, ident=None):
        """The resource with this check's tag and, if given, an identifier `ident` in id_system."""
        resource = dict(resource)
        resource["meta"] = {"tag": [{"system": self.tag_system, "code": self.tag}]}
        if ident:
            resource["identifier"] = [{"system": self.id_system, "value": ident}]
        return resource

    def ident(self, value):
        return "identifier=%s|%s" % (self.id_system, value)

    def stored(self, rtype, client=None):
        """'Type/id' of the resources of `rtype` carrying this check's tag."""
        return search(self.ctx, "%s?_tag=%s|%s" % (rtype, self.tag_system, self.tag), client=client).match

    def expect_stored(self, counts, what, client=None):
        for rtype, want in counts.items():
            got = self.stored(rtype, client)
            if len(got) != want:
                fail("%s: %d %s stored with this check's tag, expected %d" % (what, len(got), rtype, want))


def citizen(nhs):
    return {"reference": "Patient/" + nhs}


def by_nhs(nhs):
    """A conditional reference to the citizen with this NHS number."""
    return {"reference": "Patient?identifier=%s|%s" % (NHS_SYSTEM, nhs)}


def observation(subject, code="8867-4", value=60, **extra):
    o = {"resourceType": "Observation", "status": "final",
         "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs"}]}],
         "code": {"coding": [{"system": LOINC, "code": code}]}, "subject": subject,
         "effectiveDateTime": "2024-03-01T10:00:00Z",
         "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}
    o.update(extra)
    return o


def condition(subject, code="195967001", **extra):
    c = {"resourceType": "Condition",
         "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
         "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed"}]},
         "code": {"coding": [{"system": SNOMED, "code": code}]}, "subject": subject}
    c.update(extra)
    return c


def encounter(subject, **extra):
    e = {"resourceType": "Encounter", "status": "finished",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
         "subject": subject, "period": {"start": "2024-03-01T09:00:00Z", "end": "2024-03-04T11:00:00Z"}}
    e.update(extra)
    return e


def setup_patient(ctx, what, client=None, **extra):
    """A fresh citizen, PUT as the suite's own caller (or `client`); returns the NHS number."""
    nhs = ctx.fresh_nhs()
    res = patient(nhs)
    res.update(extra)
    r = (client or ctx.client).put("Patient/" + nhs, res)
    if r.status not in (200, 201):
        fail("setup (%s): PUT /Patient/%s: %s" % (what, nhs, r.summary()))
    return nhs


def setup_create(ctx, resource, what, client=None):
    r = (client or ctx.client).post(resource["resourceType"], resource)
    if r.status != 201:
        fail("setup (%s): POST /%s: %s" % (what, resource["resourceType"], r.summary()))
    return r.json()["id"]


def no_unresolved(value, what):
    """Fails if a stored resource still holds a urn:uuid or a conditional reference."""
    text = json.dumps(value)
    for left in ("urn:uuid:", "?identifier="):
        if left in text:
            fail("%s: the stored resource still holds %r: %s" % (what, left, text[:300]))


# ---------------------------------------------------------------------------------------
# Transactions
# ---------------------------------------------------------------------------------------
def discharge(marks, subject):
    """A hospital discharge of 20 entries: an Encounter, Conditions, Observations, Procedures,
    MedicationRequests, a DocumentReference and a CarePlan, referencing each other by urn:uuid
    (forwards and backwards, in an extension, in the narrative, inside a contained resource) and
    the citizen by `subject`. Returns (entries, urn by label, the labels in entry order)."""
    u = {label: _urn() for label in ["enc", "c1", "c2", "c3", "p1", "p2", "m1", "m2", "m3", "doc", "plan"]
         + ["o%d" % k for k in range(1, 10)]}
    ref = lambda label: {"reference": u[label]}  # noqa: E731
    items = [("enc", encounter(subject))]
    for k, code in enumerate(("38341003", "44054006", "49436004"), 1):
        items.append(("c%d" % k, condition(subject, code, encounter=ref("enc"))))
    for k in range(1, 10):
        items.append(("o%d" % k, observation(subject, value=60 + k, encounter=ref("enc"))))
    o = dict(items)
    o["o1"]["extension"] = [{"url": "http://example.org/fhir/StructureDefinition/cg-seen-at", "valueReference": ref("enc")}]
    o["o2"]["text"] = {"status": "generated",
                       "div": '<div xmlns="%s"><p>Taken during <a href="%s">the admission</a>.</p></div>' % (XHTML, u["enc"])}
    o["o3"]["hasMember"] = [ref("o9"), ref("o4")]   # forwards, to entries later in the Bundle
    o["o9"]["derivedFrom"] = [ref("o3")]           # and backwards
    for k, reason in ((1, "c1"), (2, "c2")):
        items.append(("p%d" % k, {"resourceType": "Procedure", "status": "completed",
                                  "code": {"coding": [{"system": SNOMED, "code": "80146002"}]},
                                  "subject": subject, "encounter": ref("enc"), "reasonReference": [ref(reason)]}))
    for k, reason in ((1, "c1"), (2, "c2"), (3, "c3")):
        items.append(("m%d" % k, {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                                  "medicationCodeableConcept": {"coding": [{"system": "https://dmd.nhs.uk",
                                                                           "code": "39732311000001104"}]},
                                  "subject": subject, "encounter": ref("enc"), "reasonReference": [ref(reason)]}))
    items.append(("doc", {"resourceType": "DocumentReference", "status": "current", "subject": subject,
                          "type": {"coding": [{"system": SNOMED, "code": "373942005"}]},
                          "content": [{"attachment": {"contentType": "text/plain", "title": "Discharge summary",
                                                      "data": "RGlzY2hhcmdlZCBob21l"}}],
                          "context": {"encounter": [ref("enc")]}}))
    items.append(("plan", {"resourceType": "CarePlan", "status": "active", "intent": "plan", "subject": subject,
                           "encounter": ref("enc"), "addresses": [ref("c1"), ref("c2")],
                           "contained": [{"resourceType": "Goal", "id": "goal", "lifecycleStatus": "active",
                                          "description": {"text": "Blood pressure under control"},
                                          "subject": subject, "addresses": [ref("c3")]}],
                           "goal": [{"reference": "#goal"}]}))
    entries = [post_entry(marks.mark(res, "%s-%s" % (marks.tag, label)), u[label]) for label, res in items]
    return entries, u, [label for label, _ in items]


def _substitute(value, replacements):
    """`value` with every string in `replacements` replaced (in reference values and narrative alike)."""
    text = json.dumps(value)
    for old, new in replacements.items():
        text = text.replace(old, new)
    return json.loads(text)


@bundle_check("bundle.transaction.references", "transaction")
def transaction_references(ctx):
    marks = Marks(ctx, "refs")
    nhs = setup_patient(ctx, "the citizen")
    entries, urns, labels = discharge(marks, by_nhs(nhs))
    what = "POST [base] transaction of %d entries (urn:uuid and conditional references)" % len(entries)
    r = _post(ctx.client, transaction(*entries))
    got = expect_response_bundle(r, "transaction", len(entries), what)
    assigned = {}
    for i, (e, label) in enumerate(zip(got, labels)):
        rtype = entries[i]["resource"]["resourceType"]
        rid, _ = expect_entry(e, i, (201,), rtype, what, version=1)
        assigned[urns[label]] = "%s/%s" % (rtype, rid)
    if len(set(assigned.values())) != len(entries):
        fail("%s: the response entries name the same resource twice: %s" % (what, sorted(assigned.values())))
    replacements = dict(assigned)
    replacements[by_nhs(nhs)["reference"]] = "Patient/" + nhs
    base = ctx.client.base_url + "/"
    for i, label in enumerate(labels):
        key = assigned[urns[label]]
        _, stored = current_version(ctx, key, "%s: reading entry[%d] back" % (what, i))
        w = "%s: %s (entry[%d]) as stored" % (what, key, i)
        no_unresolved(stored, w)
        stored = strip_meta(stored)
        if isinstance(stored.get("text"), dict):  # a narrative link may be written as an absolute URL
            stored["text"]["div"] = stored["text"].get("div", "").replace(base, "")
        want = _substitute(dict(entries[i]["resource"], id=key.split("/")[1]), replacements)
        d = first_difference(want, stored)
        if d:
            fail("%s: differs from what was sent with its references resolved: %s" % (w, d))
    # The rewritten references are indexed: a search by the Encounter's id finds its Observations.
    enc = assigned[urns["enc"]]
    found = search(ctx, "Observation?encounter=%s&_tag=%s|%s" % (enc, marks.tag_system, marks.tag)).match
    if len(found) != 9:
        fail("%s: GET Observation?encounter=%s finds %d of the 9 Observations" % (what, enc, len(found)))


@bundle_check("bundle.transaction.prefer-minimal", "transaction")
def transaction_prefer_minimal(ctx):
    marks = Marks(ctx, "minimal")
    nhs = setup_patient(ctx, "the citizen")
    entries = [post_entry(marks.mark(encounter(citizen(nhs)))), post_entry(marks.mark(observation(citizen(nhs))))]
    what = "POST [base] transaction with Prefer: return=minimal"
    got = expect_response_bundle(_post(ctx.client, transaction(*entries), {"Prefer": "return=minimal"}),
                                 "transaction", 2, what)
    expect_entry(got[0], 0, (201,), "Encounter", what, version=1, resource=False)
    expect_entry(got[1], 1, (201,), "Observation", what, version=1, resource=False)


@bundle_check("bundle.transaction.patient-in-bundle", "transaction")
def transaction_patient_in_bundle(ctx):
    """The citizen created in the same transaction (a conditional create), referenced by its fullUrl;
    the same transaction again creates nothing (every entry a conditional create that now matches)."""
    marks = Marks(ctx, "idem")
    nhs = ctx.fresh_nhs()
    bundle = _citizen_bundle(marks, nhs)
    what = "POST [base] transaction creating Patient/%s and items referencing it by urn:uuid" % nhs
    got = expect_response_bundle(_post(ctx.client, bundle), "transaction", 4, what)
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    ids = [expect_entry(e, i, (201,), t, what, version=1)[0] for i, (e, t) in enumerate(zip(got, types))]
    if ids[0] != nhs:
        fail("%s: the Patient was given id %r, expected its NHS number" % (what, ids[0]))
    _, obs = current_version(ctx, "Observation/" + ids[2], what)
    no_unresolved(obs, what + ": Observation/" + ids[2])
    if obs.get("subject", {}).get("reference") != "Patient/" + nhs \
            or obs.get("encounter", {}).get("reference") != "Encounter/" + ids[1]:
        fail("%s: Observation/%s references %r and %r, expected Patient/%s and Encounter/%s"
             % (what, ids[2], obs.get("subject"), obs.get("encounter"), nhs, ids[1]))

    what = "the same transaction again (ifNoneExist on every entry)"
    again = expect_response_bundle(_post(ctx.client, bundle), "transaction", 4, what)
    for i, (e, t) in enumerate(zip(again, types)):
        rid, _ = expect_entry(e, i, (200,), t, what, version=1, resource=None)
        if rid != ids[i]:
            fail("%s: entry[%d] names %s/%s, expected the existing %s/%s" % (what, i, t, rid, t, ids[i]))
    marks.expect_stored({"Encounter": 1, "Observation": 1, "Condition": 1}, what)
    v, _ = current_version(ctx, "Patient/" + nhs, what)
    if v != "1":
        fail("%s: Patient/%s is at version %s, expected 1" % (what, nhs, v))


def _citizen_bundle(marks, nhs):
    """A Patient (conditional create on the NHS number) and three items referencing it by urn:uuid,
    each a conditional create on its identifier."""
    p, enc = _urn(), _urn()
    pat = patient(nhs)
    del pat["id"]
    return transaction(
        post_entry(pat, p, "identifier=%s|%s" % (NHS_SYSTEM, nhs)),
        post_entry(marks.mark(encounter({"reference": p}), "enc-" + nhs), enc, marks.ident("enc-" + nhs)),
        post_entry(marks.mark(observation({"reference": p}, encounter={"reference": enc}), "obs-" + nhs),
                   None, marks.ident("obs-" + nhs)),
        post_entry(marks.mark(condition({"reference": p}), "cond-" + nhs), None, marks.ident("cond-" + nhs)))


@bundle_check("bundle.transaction.concurrent", "transaction")
def transaction_concurrent(ctx):
    """The same conditional transaction on CONCURRENT_CLIENTS connections at once: one of each
    resource, and each answer either created it or found it."""
    marks = Marks(ctx, "race")
    nhs = ctx.fresh_nhs()
    bundle = _citizen_bundle(marks, nhs)
    answers = at_once(ctx, CONCURRENT_CLIENTS, lambda client: _post(client, bundle))
    what = "%d concurrent POST [base] of one conditional transaction" % CONCURRENT_CLIENTS
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    created, ids = [0] * len(types), [set() for _ in types]
    for k, r in enumerate(answers):
        if isinstance(r, Exception):
            fail("%s: client %d: %s" % (what, k, r))
        got = expect_response_bundle(r, "transaction", len(types), "%s (client %d)" % (what, k))
        for i, (e, t) in enumerate(zip(got, types)):
            rid, _ = expect_entry(e, i, (200, 201), t, "%s (client %d)" % (what, k), version=1,
                                  resource=None if entry_status(e) == 200 else True)
            ids[i].add(rid)
            created[i] += entry_status(e) == 201
    for i, t in enumerate(types):
        if created[i] != 1 or len(ids[i]) != 1:
            fail("%s: entry[%d] (%s) was created %d times, answers name %d resources; expected exactly one"
                 % (what, i, t, created[i], len(ids[i])))
    marks.expect_stored({"Encounter": 1, "Observation": 1, "Condition": 1}, what)


@bundle_check("bundle.transaction.atomic", "transaction")
def transaction_atomic(ctx):
    """One invalid entry: nothing is stored (not the creates, not the update), and the answer names it."""
    marks = Marks(ctx, "atomic")
    existing = setup_patient(ctx, "a citizen updated in the transaction")
    v_before, before = current_version(ctx, "Patient/" + existing, "setup")
    nhs = ctx.fresh_nhs()
    p = _urn()
    pat = patient(nhs)
    del pat["id"]
    bad = marks.mark(observation({"reference": p}))
    bad["status"] = "cg-not-a-status"
    entries = [post_entry(pat, p),
               post_entry(marks.mark(encounter({"reference": p}))),
               post_entry(marks.mark(observation({"reference": p}))),
               post_entry(bad),
               post_entry(marks.mark(condition({"reference": p}))),
               put_entry(patient(existing, family="ChangedInAFailedTransaction"))]
    what = "POST [base] transaction whose entry[3] has Observation.status 'cg-not-a-status'"
    expect_failed_transaction(_post(ctx.client, transaction(*entries)), (400, 422), 3, what)
    r = ctx.client.get("Patient/" + nhs)
    if r.status != 404:
        fail("%s: the Patient created in entry[0] is there: GET /Patient/%s -> %s" % (what, nhs, r.summary()))
    marks.expect_stored({"Encounter": 0, "Observation": 0, "Condition": 0}, what)
    v, after = current_version(ctx, "Patient/" + existing, what)
    if v != v_before or first_difference(strip_meta(before), strip_meta(after)):
        fail("%s: the update in entry[5] was kept: Patient/%s is at version %s (was %s)" % (what, existing, v, v_before))


@bundle_check("bundle.transaction.missing-reference", "transaction")
def transaction_missing_reference(ctx):
    marks = Marks(ctx, "missing")
    nhs = setup_patient(ctx, "the citizen")
    cases = (("Encounter/cg-%s-no-such-encounter" % ctx.run_token, (422,)),
             (_urn(), (400, 422)))  # a urn:uuid that no entry has as its fullUrl
    for target, statuses in cases:
        entries = [post_entry(marks.mark(observation(citizen(nhs)))),
                   post_entry(marks.mark(observation(citizen(nhs), encounter={"reference": target})))]
        what = "POST [base] transaction whose entry[1] references %s, which does not exist" % target
        expect_failed_transaction(_post(ctx.client, transaction(*entries)), statuses, 1, what, element="encounter")
        marks.expect_stored({"Observation": 0}, what)


@bundle_check("bundle.transaction.conditional-reference", "transaction")
def transaction_conditional_reference(ctx):
    """A conditional reference that matches nothing, or more than one resource, fails the transaction
    with 412. A citizen's by NHS number that the server does not hold (nor the Bundle creates) may
    instead be refused as a reference to a citizen not held: 422 (the spec fixes no status for it)."""
    marks = Marks(ctx, "condref")
    nhs = setup_patient(ctx, "the citizen")
    nobody = ctx.fresh_nhs()  # never created
    for _ in range(2):
        setup_create(ctx, marks.mark(encounter(citizen(nhs)), "twice"), "two Encounters with one identifier")
    cases = ((by_nhs(nobody), {}, (412, 422), "no citizen the server holds"),
             (citizen(nhs), {"encounter": {"reference": "Encounter?" + marks.ident("nothing")}}, (412,),
              "no Encounter"),
             (citizen(nhs), {"encounter": {"reference": "Encounter?" + marks.ident("twice")}}, (412,),
              "two Encounters"))
    for subject, extra, statuses, matches in cases:
        entries = [post_entry(marks.mark(condition(citizen(nhs)))),
                   post_entry(marks.mark(observation(subject, **extra)))]
        what = "POST [base] transaction whose entry[1] has a conditional reference matching %s" % matches
        expect_failed_transaction(_post(ctx.client, transaction(*entries)), statuses, 1, what)
        marks.expect_stored({"Condition": 0, "Observation": 0}, what)


@bundle_check("bundle.transaction.response", "transaction")
def transaction_response(ctx):
    """Entries processed DELETE, POST, PUT, GET whatever their order in the Bundle; answered in the
    Bundle's order; the GETs see the writes."""
    marks = Marks(ctx, "order")
    nhs = setup_patient(ctx, "the citizen")
    gone = setup_create(ctx, marks.mark(condition(citizen(nhs)), "gone"), "a Condition to delete")
    search_url = "Observation?subject=Patient/%s&_tag=%s|%s" % (nhs, marks.tag_system, marks.tag)
    entries = [request_entry("GET", search_url),
               request_entry("GET", "Patient/" + nhs),
               post_entry(marks.mark(observation(citizen(nhs)))),
               put_entry(patient(nhs, family="UpdatedInTheTransaction")),
               # Processed after the DELETE below, so it matches nothing and creates.
               post_entry(marks.mark(condition(citizen(nhs)), "gone"), None, marks.ident("gone")),
               request_entry("DELETE", "Condition/" + gone)]
    what = "POST [base] transaction GET search, GET, POST, PUT, conditional POST, DELETE"
    got = expect_response_bundle(_post(ctx.client, transaction(*entries)), "transaction", len(entries), what)

    if entry_status(got[0]) != 200 or (got[0].get("resource") or {}).get("type") != "searchset":
        fail("%s: entry[0] (GET %s): status %r, expected 200 with a searchset Bundle"
             % (what, search_url, got[0]["response"]["status"]))
    if len(got[0]["resource"].get("entry") or []) != 1:
        fail("%s: entry[0] (GET %s) found %d Observations: the GET does not see the POST of entry[2]"
             % (what, search_url, len(got[0]["resource"].get("entry") or [])))
    read = got[1].get("resource") or {}
    if entry_status(got[1]) != 200 or read.get("resourceType") != "Patient" \
            or (read.get("name") or [{}])[0].get("family") != "UpdatedInTheTransaction":
        fail("%s: entry[1] (GET Patient/%s): status %r, family %r: the GET does not see the PUT of entry[3]"
             % (what, nhs, got[1]["response"]["status"], (read.get("name") or [{}])[0].get("family")))
    obs, _ = expect_entry(got[2], 2, (201,), "Observation", what, version=1)
    pid, _ = expect_entry(got[3], 3, (200,), "Patient", what, version=2)
    if pid != nhs:
        fail("%s: entry[3] names Patient/%s, expected Patient/%s" % (what, pid, nhs))
    if got[0]["resource"]["entry"][0].get("resource", {}).get("id") != obs:
        fail("%s: entry[0]'s search found another Observation than entry[2]'s Observation/%s" % (what, obs))
    cond, _ = expect_entry(got[4], 4, (201,), "Condition", what, version=1)
    if cond == gone:
        fail("%s: entry[4] names the deleted Condition/%s" % (what, gone))
    if entry_status(got[5]) not in (200, 204):
        fail("%s: entry[5] (DELETE Condition/%s): response.status %r, expected 200 or 204"
             % (what, gone, got[5]["response"]["status"]))
    r = ctx.client.get("Condition/" + gone)
    if r.status != 410:
        fail("%s: GET /Condition/%s after the DELETE: expected 410, got %s" % (what, gone, r.summary()))


@bundle_check("bundle.transaction.if-match", "transaction")
def transaction_if_match(ctx):
    marks = Marks(ctx, "ifmatch")
    nhs = setup_patient(ctx, "the citizen")
    r = ctx.client.put("Patient/" + nhs, patient(nhs, family="Second"))
    if r.status != 200:
        fail("setup: PUT /Patient/%s (version 2): %s" % (nhs, r.summary()))
    _, before = current_version(ctx, "Patient/" + nhs, "setup")
    entries = [post_entry(marks.mark(observation(citizen(nhs)))),
               put_entry(patient(nhs, family="Third"), if_match='W/"1"')]
    what = "POST [base] transaction whose entry[1] is a PUT with ifMatch W/\"1\" (current: 2)"
    expect_failed_transaction(_post(ctx.client, transaction(*entries)), (412,), 1, what)
    marks.expect_stored({"Observation": 0}, what)
    v, after = current_version(ctx, "Patient/" + nhs, what)
    if v != "2" or first_difference(strip_meta(before), strip_meta(after)):
        fail("%s: Patient/%s changed (version %s)" % (what, nhs, v))

    entries[1]["request"]["ifMatch"] = 'W/"2"'
    what = "the same transaction with ifMatch W/\"2\""
    got = expect_response_bundle(_post(ctx.client, transaction(*entries)), "transaction", 2, what)
    expect_entry(got[0], 0, (201,), "Observation", what, version=1)
    expect_entry(got[1], 1, (200,), "Patient", what, version=3)


# ---------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------
@bundle_check("bundle.batch.independent", "batch")
def batch_independent(ctx):
    marks = Marks(ctx, "batch")
    nhs = setup_patient(ctx, "the citizen")
    version, _ = current_version(ctx, "Patient/" + nhs, "setup")
    bad = marks.mark(observation(citizen(nhs)))
    bad["status"] = "cg-not-a-status"
    entries = [post_entry(marks.mark(observation(citizen(nhs)))),
               post_entry(bad),
               post_entry(marks.mark(condition(citizen(nhs)))),
               request_entry("GET", "Patient/" + nhs, ifNoneMatch='W/"%s"' % version),
               request_entry("GET", "Patient/" + ctx.fresh_nhs())]
    what = "POST [base] batch: a valid POST, an invalid one, a valid one, a GET with ifNoneMatch, a GET of nobody"
    got = expect_response_bundle(_post(ctx.client, transaction(*entries, kind="batch")), "batch", len(entries), what)
    expect_entry(got[0], 0, (201,), "Observation", what, version=1)
    expect_entry(got[2], 2, (201,), "Condition", what, version=1)
    for i, statuses in ((1, (400, 422)), (4, (404,))):
        if entry_status(got[i]) not in statuses:
            fail("%s: entry[%d]: response.status %r, expected %s"
                 % (what, i, got[i]["response"]["status"], "/".join(map(str, statuses))))
        outcome = got[i]["response"].get("outcome")
        if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome" or not outcome.get("issue"):
            fail("%s: entry[%d] (%s) has no response.outcome OperationOutcome" % (what, i, got[i]["response"]["status"]))
    if entry_status(got[3]) != 304:
        fail("%s: entry[3] (GET with ifNoneMatch of the current version): response.status %r, expected 304"
             % (what, got[3]["response"]["status"]))
    marks.expect_stored({"Observation": 1, "Condition": 1}, what)


# ---------------------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------------------
@bundle_check("bundle.limits.entries", "transaction")
def limits_entries(ctx):
    nhs = setup_patient(ctx, "the citizen")
    entries = [request_entry("GET", "Patient/" + nhs)] * TOO_MANY_ENTRIES
    what = "POST [base] transaction of %d entries" % TOO_MANY_ENTRIES
    expect_oo(_post(ctx.client, transaction(*entries)), (400, 413), what)


# ---------------------------------------------------------------------------------------
# Access (--identities, caregate's default policy): each entry checked as if sent alone
# ---------------------------------------------------------------------------------------
@bundle_check("bundle.access.denied-entry", "transaction", "batch", identities=True)
def access_denied_entry(ctx):
    """GP admin staff may book an Appointment for a citizen registered at their practice, not record
    a Condition: a transaction with both fails whole (403 naming the Condition), a batch only there."""
    from .access import Callers
    who = Callers(ctx)
    try:
        marks = Marks(ctx, "denied")
        nhs = setup_patient(ctx, "a citizen registered at A81001", who("system"),
                            generalPractitioner=[{"reference": "Organization/A81001"}])
        appointment = marks.mark({"resourceType": "Appointment", "status": "booked",
                                  "start": "2030-01-10T09:00:00Z", "end": "2030-01-10T09:10:00Z",
                                  "participant": [{"actor": citizen(nhs), "status": "accepted"}]})
        entries = [post_entry(appointment), post_entry(marks.mark(condition(citizen(nhs))))]
        admin = who("gp_admin")
        what = "POST [base] transaction by GP admin staff: an Appointment, then a Condition"
        expect_failed_transaction(_post(admin, transaction(*entries)), (403,), 1, what)
        marks.expect_stored({"Appointment": 0, "Condition": 0}, what, who("system"))

        what = "POST [base] batch by GP admin staff: an Appointment, then a Condition"
        got = expect_response_bundle(_post(admin, transaction(*entries, kind="batch")), "batch", 2, what)
        expect_entry(got[0], 0, (201,), "Appointment", what, version=1)
        if entry_status(got[1]) != 403 or (got[1]["response"].get("outcome") or {}).get("resourceType") != "OperationOutcome":
            fail("%s: entry[1]: response.status %r, expected 403 with an OperationOutcome"
                 % (what, got[1]["response"]["status"]))
        marks.expect_stored({"Appointment": 1, "Condition": 0}, what, who("system"))
    finally:
        who.close()


