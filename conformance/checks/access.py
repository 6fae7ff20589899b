"""Access control for providers, checked from outside (caregate's DESIGN.md section 4 and its default
policy): who may see and change which part of a citizen's record, and the audit trail.

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
import time

from . import check, fail
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
        time.sleep(1.2)  # reads' audit records are committed within a second
        trail = who("ig").get("AuditEvent?patient=Patient/%s&_count=200" % tom)
        _expect(trail, 200, "information governance reading the audit trail")
        body = trail.json() or {}
        events = [e["resource"] for e in body.get("entry", [])]
        if not any(e.get("action") == "R" and any(a.get("who", {}).get("identifier", {}).get("value") == "A81001"
                                                  for a in e.get("agent", [])) for e in events):
            fail("the GP's read of the citizen is not in the audit trail")
        _expect(who("gp_clinician").get("AuditEvent?patient=%s" % tom), 403, "a clinician reading the audit trail")
        glass = who("ig").get("AuditEvent?patient=Patient/%s" % bunmi)
        if not any(any(c.get("code") == "ETREAT" for p in e["resource"].get("purposeOfEvent", [])
                       for c in p.get("coding", [])) for e in (glass.json() or {}).get("entry", [])):
            fail("the break-glass access is not flagged ETREAT in the audit trail")

    for name, fn in (("tokens", tokens), ("relationship", relationship), ("policy_roles", policy_roles),
                     ("labels", labels), ("ownership", ownership), ("break_glass", break_glass),
                     ("objection", objection), ("audit", audit)):
        run(name, fn)
    who.close()
