"""Access control for providers, checked from outside (the README's "Who may see what" and caregate's
default policy): who may see and change which part of a citizen's record, and the audit trail.

These checks are specific to a shared care record with caregate's default policy, so they run only
with `--identities FILE`, a JSON object naming the callers:

  {"system": {"cert": ..., "key": ..., "token": ...},          the ICS's integration service (QZZ, system)
   "gp_clinician": {...}, "gp_admin": {...},                  A81001, R8000 / R8008
   "acute_clinician": {...}, "acute_emergency": {...},        RX1, R8000; the second with ETREAT + reason
   "social_worker": {...},                                    8JK23, R8014
   "ig": {...},                                               QZZ, R8012
   "bad_tokens": {"expired": ..., "wrong_audience": ..., "untrusted_key": ...}}   all for gp_clinician's organisation

Each caller gets its own connection with its own client certificate.
"""

import base64
import json

from . import check, eventually, fail
from .common import patient, random_test_nhs
from client import Client

CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


class Callers:
    def __init__(self, ctx):
        self.ctx = ctx
        with open(ctx.args.identities) as f:
            self.spec = json.load(f)
        self.clients = {}

    def __call__(self, name, token=None):
        key = (name, token)
        if key not in self.clients:
            who = self.spec[name]
            a = self.ctx.args
            self.clients[key] = Client(a.base_url, cacert=a.cacert, cert=who["cert"], key=who["key"],
                                       bearer=token or who["token"], insecure=a.insecure, timeout=a.timeout)
        return self.clients[key]

    def close(self):
        for c in self.clients.values():
            c.close()


def _ref(nhs):
    return {"reference": "Patient/%s" % nhs}


def _condition(nhs, status, label=None):
    c = {"resourceType": "Condition",
         "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": status}]},
         "code": {"text": "a condition"}, "subject": _ref(nhs)}
    if label:
        c["meta"] = {"security": [{"system": CONFIDENTIALITY, "code": label}]}
    return c


def _observation(nhs, category):
    return {"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": category}]}],
            "code": {"text": "an observation"}, "subject": _ref(nhs)}


def _encounter(nhs, ods):
    return {"resourceType": "Encounter", "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": _ref(nhs), "serviceProvider": {"reference": "Organization/%s" % ods}}


def _created(resp, what):
    if resp.status != 201:
        fail("%s: expected 201, got %s" % (what, resp.summary()))
    return resp.json()["id"]


def _expect(resp, status, what):
    if resp.status != status:
        fail("%s: expected %d, got %s" % (what, status, resp.summary()))


def _alg_none(token):
    """The same claims with alg none and no signature: must never be accepted."""
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    return "%s.%s." % (header, token.split(".")[1])


@check("access", multi=True)
def access(ctx):
    if not getattr(ctx.args, "identities", None):
        ctx.emit("SKIP access: no --identities given (the access checks are for caregate's default policy)")
        return
    who = Callers(ctx)
    results = []

    def run(name, fn):
        try:
            fn()
            ctx.result("access." + name)
        except Exception as e:  # CheckFailed or a transport problem: one failure each
            ctx.result("access." + name, str(e))

    system = who("system")
    tom, bunmi = random_test_nhs(), random_test_nhs()
    tom_patient = patient(tom, rid=tom)
    tom_patient["generalPractitioner"] = [{"reference": "Organization/A81001"}]
    setup = system.put("Patient/%s" % tom, tom_patient)
    setup2 = system.put("Patient/%s" % bunmi, patient(bunmi, rid=bunmi))
    if setup.status not in (200, 201) or setup2.status not in (200, 201):
        ctx.result("access.setup", "the system identity could not create citizens: %s / %s"
                   % (setup.summary(), setup2.summary()))
        return
    state = {}

    def tokens():
        gp = who("gp_clinician")
        _expect(gp.get("Patient/%s" % tom), 200, "a valid token")
        bad = who.spec.get("bad_tokens", {})
        for name in ("expired", "wrong_audience", "untrusted_key"):
            if name in bad:
                r = who("gp_clinician", bad[name]).get("Patient/%s" % tom)
                _expect(r, 401, "a token that is %s" % name.replace("_", " "))
                if not (r.header("WWW-Authenticate") or "").startswith("Bearer"):
                    fail("401 without WWW-Authenticate: Bearer")
        token = who.spec["gp_clinician"]["token"]
        tampered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
        _expect(who("gp_clinician", tampered).get("Patient/%s" % tom), 401, "a tampered token")
        _expect(who("gp_clinician", _alg_none(token)).get("Patient/%s" % tom), 401, "an alg none token")
        # A token of another organisation over this organisation's certificate.
        _expect(who("gp_clinician", who.spec["acute_clinician"]["token"]).get("Patient/%s" % tom), 401,
                "another organisation's token")

    def relationship():
        _expect(who("gp_clinician").get("Patient/%s" % tom), 200, "the registered GP")
        hidden = who("acute_clinician").get("Patient/%s" % tom)
        absent = who("acute_clinician").get("Patient/%s" % random_test_nhs())
        _expect(hidden, 404, "an acute trust without a relationship")
        _expect(absent, 404, "a citizen the record does not hold")
        if hidden.body != absent.body:
            fail("a hidden citizen's 404 differs from an absent one's")
        _created(who("acute_clinician").post("Encounter", _encounter(tom, "RX1")), "the trust's own Encounter")
        _expect(who("acute_clinician").get("Patient/%s" % tom), 200, "the trust after its Encounter")

    def policy_roles():
        cid = _created(who("gp_clinician").post("Condition", _condition(tom, "active")), "GP Condition")
        state["gp_condition"] = cid
        _expect(who("gp_admin").get("Patient/%s" % tom), 200, "GP admin reading demographics")
        _expect(who("gp_admin").get("Condition/%s" % cid), 403, "GP admin reading a Condition")
        system.post("EpisodeOfCare", {"resourceType": "EpisodeOfCare", "status": "active", "patient": _ref(tom),
                                      "managingOrganization": {"reference": "Organization/8JK23"}})
        resolved = _created(who("gp_clinician").post("Condition", _condition(tom, "resolved")), "resolved Condition")
        vitals = _created(who("gp_clinician").post("Observation", _observation(tom, "vital-signs")), "vital signs")
        _expect(who("social_worker").get("Condition/%s" % cid), 200, "social care reading an active problem")
        _expect(who("social_worker").get("Condition/%s" % resolved), 404, "social care reading a resolved problem")
        _expect(who("social_worker").get("Observation/%s" % vitals), 404, "social care reading vital signs")
        _expect(who("social_worker").post("Observation", _observation(tom, "vital-signs")), 403,
                "social care writing vital signs")
        _created(who("social_worker").post("Observation", _observation(tom, "social-history")),
                 "social care writing a social history observation")

    def labels():
        r = _created(who("gp_clinician").post("Condition", _condition(tom, "active", "R")), "an R Condition")
        v = _created(who("gp_clinician").post("Condition", _condition(tom, "active", "V")), "a V Condition")
        _expect(who("acute_clinician").get("Condition/%s" % r), 200, "a clinician reading an R item")
        _expect(who("social_worker").get("Condition/%s" % r), 404, "social care reading an R item")
        _expect(who("acute_clinician").get("Condition/%s" % v), 404, "another organisation reading a V item")
        _expect(who("gp_clinician").get("Condition/%s" % v), 200, "the writer reading its V item")
        h = who("acute_clinician").get("Condition/_history?_count=200")
        _expect(h, 200, "type history")
        if v.encode() in h.body:
            fail("a V item appears in another organisation's type history")

    def documents():
        # Composition/{id}/$document, whole or refused: the acute trust (whose Encounter gives it a
        # relationship) sees the GP's summary but not its very restricted section, so it gets a 422
        # naming the Composition's element, never a partial document, and nothing of the hidden item.
        author = _created(system.post("Practitioner", {"resourceType": "Practitioner", "name": [{"family": "Okafor"}]}),
                          "a Practitioner")
        shared = _created(who("gp_clinician").post("Condition", _condition(tom, "active")), "a shared item")
        hidden = _created(who("gp_clinician").post("Condition", _condition(tom, "active", "V")), "a V item")
        summary = {"resourceType": "Composition", "status": "final",
                   "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5"}]},
                   "subject": _ref(tom), "date": "2026-11-30T10:00:00Z",
                   "author": [{"reference": "Practitioner/%s" % author}], "title": "Discharge summary",
                   "section": [{"title": "section %d" % i, "entry": [{"reference": "Condition/%s" % item}]}
                               for i, item in enumerate((shared, hidden))]}
        cid = _created(who("gp_clinician").post("Composition", summary), "a Composition")
        whole = who("gp_clinician").get("Composition/%s/$document" % cid)
        _expect(whole, 200, "the writer's $document")
        document = whole.json() or {}
        entries = document.get("entry", [])
        if document.get("type") != "document" or len(entries) != 5 or \
                entries[0].get("resource", {}).get("resourceType") != "Composition":
            fail("$document: expected a document Bundle of 5 entries, the Composition first")
        _expect(who("acute_clinician").get("Composition/%s" % cid), 200, "the trust reading the summary")
        refused = who("acute_clinician").get("Composition/%s/$document" % cid)
        _expect(refused, 422, "$document with a section the caller may not see")
        issues = (refused.json() or {}).get("issue", [])
        if [i.get("code") for i in issues] != ["incomplete"] or \
                issues[0].get("expression") != ["Composition.section[1].entry[0]"]:
            fail("$document refused without one incomplete issue at Composition.section[1].entry[0]: %s"
                 % refused.summary())
        if hidden.encode() in refused.body:
            fail("the refusal names the hidden item")

    def binaries():
        # A Binary is seen exactly by those who see its securityContext, and one without a context by
        # its writer's organisation alone: raw bytes back for the GP, and for the trust (no
        # relationship with this citizen) a 404 as for nothing, empty searches, nothing in history.
        nhs = random_test_nhs()
        registered = patient(nhs, rid=nhs)
        registered["generalPractitioner"] = [{"reference": "Organization/A81001"}]
        _expect(system.put("Patient/%s" % nhs, registered), 201, "a citizen registered with the GP")
        gp, trust = who("gp_clinician"), who("acute_clinician")
        letter = _created(gp.post("DocumentReference", {
            "resourceType": "DocumentReference", "status": "current", "subject": _ref(nhs),
            "content": [{"attachment": {"contentType": "application/pdf", "title": "Clinic letter"}}]}),
            "a DocumentReference")
        document = bytes(range(256)) * 64 + b"%s-letter" % nhs.encode()
        raw = {"Content-Type": "application/pdf", "X-Security-Context": "DocumentReference/%s" % letter}
        bid = _created(gp.request("POST", "Binary", body=document, headers=raw), "a Binary sent raw")
        back = gp.request("GET", "Binary/%s" % bid, headers={"Accept": None})
        _expect(back, 200, "the GP reading the Binary raw")
        if back.body != document or (back.header("Content-Type") or "") != "application/pdf":
            fail("the raw read is not the bytes sent, in their own type")
        as_fhir = gp.get("Binary/%s" % bid).json() or {}
        if base64.b64decode(as_fhir.get("data", "")) != document:
            fail("the Binary read as FHIR does not carry the bytes sent in base64")
        own = _created(trust.request("POST", "Binary", body=b"a scan before its DocumentReference",
                                     headers={"Content-Type": "image/tiff"}), "a Binary without a context")
        for path in ("Binary/%s" % bid, "Binary/%s/_history/1" % bid):
            hidden = trust.request("GET", path, headers={"Accept": None})
            _expect(hidden, 404, "the trust reading a Binary of a letter it may not see")
            if document[-20:] in hidden.body:
                fail("the refusal carries the document's bytes")
        _expect(gp.get("Binary/%s" % own), 404, "the GP reading another organisation's Binary without a context")
        _expect(trust.get("Binary/%s" % own), 200, "the writer's organisation reading its Binary without a context")
        for caller, hidden_id in ((trust, bid), (gp, own)):
            found = caller.get("Binary?_id=%s&_total=accurate" % hidden_id)
            _expect(found, 200, "a search by _id")
            page = found.json() or {}
            if page.get("total") != 0 or page.get("entry"):  # (its self link repeats the _id asked for)
                fail("a search by _id found a Binary its caller may not see")
            if hidden_id.encode() in caller.get("Binary/_history").body:
                fail("the type history names a Binary its caller may not see")

    def ownership():
        cid = state.get("gp_condition") or _created(who("gp_clinician").post("Condition", _condition(tom, "active")), "c")
        current = who("gp_clinician").get("Condition/%s" % cid).json()
        current["clinicalStatus"]["coding"][0]["code"] = "resolved"
        _expect(who("acute_clinician").put("Condition/%s" % cid, current), 403, "another organisation's update")
        _expect(who("acute_clinician").delete("Condition/%s" % cid), 403, "another organisation's delete")
        _expect(who("gp_clinician").put("Condition/%s" % cid, current), 200, "the contributor's update")

    def break_glass():
        _expect(who("acute_clinician").get("Patient/%s" % bunmi), 404, "no relationship, no emergency")
        _expect(who("acute_emergency").get("Patient/%s" % bunmi), 200, "break-glass with ETREAT and a reason")

    def objection():
        gp_item = _created(who("gp_clinician").post("Condition", _condition(tom, "active")), "GP item")
        acute_item = _created(who("acute_clinician").post("Condition", _condition(tom, "active")), "acute item")
        _expect(who("acute_clinician").get("Condition/%s" % gp_item), 200, "before the objection")
        consent = {"resourceType": "Consent", "status": "active",
                   "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                         "code": "patient-privacy"}]},
                   "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                   "patient": _ref(tom), "provision": {"type": "deny"}}
        cid = _created(who("gp_clinician").post("Consent", consent), "the objection")
        _expect(who("acute_clinician").get("Condition/%s" % gp_item), 404, "another's item after the objection")
        _expect(who("acute_clinician").get("Condition/%s" % acute_item), 200, "its own item after the objection")
        _expect(who("gp_clinician").delete("Consent/%s" % cid), 204, "withdrawing the objection")
        _expect(who("acute_clinician").get("Condition/%s" % gp_item), 200, "after the objection is withdrawn")

    def audit():
        def gp_read_in_trail():  # reads' audit records are committed in batches, within about a second
            trail = who("ig").get("AuditEvent?patient=Patient/%s&_count=200" % tom)
            _expect(trail, 200, "information governance reading the audit trail")
            body = trail.json() or {}
            events = [e["resource"] for e in body.get("entry", [])]
            if not any(e.get("action") == "R" and any(a.get("who", {}).get("identifier", {}).get("value") == "A81001"
                                                      for a in e.get("agent", [])) for e in events):
                fail("the GP's read of the citizen is not in the audit trail")
        eventually(gp_read_in_trail)
        _expect(who("gp_clinician").get("AuditEvent?patient=%s" % tom), 403, "a clinician reading the audit trail")

        def break_glass_flagged():
            glass = who("ig").get("AuditEvent?patient=Patient/%s" % bunmi)
            if not any(any(c.get("code") == "ETREAT" for p in e["resource"].get("purposeOfEvent", [])
                           for c in p.get("coding", [])) for e in (glass.json() or {}).get("entry", [])):
                fail("the break-glass access is not flagged ETREAT in the audit trail")
        eventually(break_glass_flagged)

    def history_restricted():
        # Written unrestricted, then labelled V (the GP's alone): the acute trust, related to the
        # citizen, finds neither version in any history, nor by vread.
        obs = _observation(tom, "laboratory")
        obs["valueString"] = "restricted later"
        oid = _created(who("gp_clinician").post("Observation", obs), "an unrestricted Observation")
        paths = ("Observation/_history?_count=200", "_history?_count=200",
                 "Observation/_history?_since=2000-01-01T00:00:00Z&_count=200")
        if oid.encode() not in who("acute_clinician").get(paths[0]).body:
            fail("the acute trust does not see the unrestricted Observation in its type history")
        obs["id"] = oid
        obs["meta"] = {"security": [{"system": CONFIDENTIALITY, "code": "V"}]}
        _expect(who("gp_clinician").put("Observation/%s" % oid, obs), 200, "the GP labelling it V")
        for path in paths:
            h = who("acute_clinician").get(path)
            _expect(h, 200, path)
            if oid.encode() in h.body or b"restricted later" in h.body:
                fail("%s shows an earlier version of an item restricted since" % path)
        _expect(who("acute_clinician").get("Observation/%s/_history/1" % oid), 404, "vread of an item restricted since")

    def provenance():
        # A Provenance of an item the acute trust may not see (the GP's V Condition) is hidden from it,
        # and ?target= answers the hidden id as one that does not exist.
        v = _created(who("gp_clinician").post("Condition", _condition(tom, "active", "V")), "a V Condition")
        prov = {"resourceType": "Provenance", "target": [{"reference": "Condition/%s" % v}],
                "recorded": "2026-11-01T10:00:00Z", "reason": [{"text": "provenance of a restricted item"}],
                "agent": [{"who": {"reference": "Organization/A81001"}}]}
        pid = _created(who("gp_clinician").post("Provenance", prov), "the GP's Provenance of its V item")
        _expect(who("gp_clinician").get("Provenance/%s" % pid), 200, "the GP reading its Provenance")
        _expect(who("acute_clinician").get("Provenance/%s" % pid), 404, "another organisation reading it")
        hidden = who("acute_clinician").get("Provenance?target=Condition/%s&_total=accurate" % v)
        absent = who("acute_clinician").get("Provenance?target=Condition/no-such-condition&_total=accurate")
        _expect(hidden, 200, "Provenance?target= a hidden item")
        if (hidden.json() or {}).get("total") != 0 or (absent.json() or {}).get("total") != 0:
            fail("Provenance?target= tells a hidden item from an absent one (totals %s and %s)"
                 % ((hidden.json() or {}).get("total"), (absent.json() or {}).get("total")))
        prov["agent"] = [{"who": {"reference": "Organization/RX1"}}]
        refused = who("acute_clinician").post("Provenance", prov)
        prov["target"] = [{"reference": "Condition/no-such-condition"}]
        nothing = who("acute_clinician").post("Provenance", prov)
        _expect(refused, 422, "a Provenance of an item the writer may not see")
        _expect(nothing, 422, "a Provenance of an item that does not exist")
        if refused.body != nothing.body:
            fail("a Provenance of a hidden item is refused differently from one of an absent item")

    def erasure():
        # An erased citizen registered again starts an empty record: nothing of the old one in any
        # history, vread or search.
        nhs = random_test_nhs()
        first = patient(nhs, rid=nhs)
        first["generalPractitioner"] = [{"reference": "Organization/A81001"}]
        first["telecom"] = [{"system": "phone", "value": "erased-telecom"}]
        _expect(system.put("Patient/%s" % nhs, first), 201, "the citizen to erase")
        obs = _observation(nhs, "laboratory")
        obs["valueString"] = "erased content"
        oid = _created(who("gp_clinician").post("Observation", obs), "an item of the record")
        r = system.delete("Patient/%s?_cascade=delete" % nhs)
        if r.status not in (200, 204):
            fail("the erasure: expected 200 or 204, got %s" % r.summary())
        again = patient(nhs)
        again["generalPractitioner"] = [{"reference": "Organization/A81001"}]
        _expect(who("gp_clinician").post("Patient", again), 201, "a new registration of the same NHS number")
        for path in ("Observation/_history?_count=200", "_history?_count=200", "Patient/%s/_history" % nhs,
                     "Observation?subject=Patient/%s" % nhs):
            h = who("gp_clinician").get(path)
            _expect(h, 200, path)
            if oid.encode() in h.body or b"erased content" in h.body or b"erased-telecom" in h.body:
                fail("%s shows the erased record" % path)
        _expect(who("gp_clinician").get("Observation/%s/_history/1" % oid), 404, "vread of an erased item")
        entries = (who("gp_clinician").get("Patient/%s/_history" % nhs).json() or {}).get("entry", [])
        if len(entries) != 1:
            fail("the new registration's history holds %d entries, not 1" % len(entries))

    for name, fn in (("tokens", tokens), ("relationship", relationship), ("policy_roles", policy_roles),
                     ("labels", labels), ("documents", documents), ("binaries", binaries), ("ownership", ownership),
                     ("break_glass", break_glass),
                     ("objection", objection), ("history_restricted", history_restricted),
                     ("provenance", provenance), ("erasure", erasure), ("audit", audit)):
        run(name, fn)
    who.close()
