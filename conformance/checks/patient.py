"""The patient-facing endpoint: what a citizen's app meets, checked from outside.

A second base URL (`--patient-base-url`), TLS without a client certificate, where citizens call with
tokens shaped like NHS login's. These checks are specific to a shared care record with caregate's
default policy, so they run only with `--patient-base-url` and an `--identities` file that also names
the citizens, each with a token for the patient endpoint:

  "citizens": {"p9": {"nhs_number": "9990001235", "token": ...},   identity verified to P9: the record
               "p5": {"nhs_number": "9990001235", "token": ...}}   the same citizen at P5: demographics

The tokens are minted before the run, so the NHS numbers are fixed; the checks create those citizens
themselves (PUT as the system identity, registered with the GP practice A81001) and write their
record over the provider endpoint as the GP (`gp_clinician`), so that they run against a fresh or
a used database alike. Another citizen is a fresh random test number each run.

- `cors` (needs `--cors-origin`, an origin the server names): a preflight from that origin is answered
  with it, the API's methods and the headers an app sends (`Authorization`, `Content-Type`,
  `If-Match`, `Prefer`, `X-Act-For`); the citizen's read from it carries it and exposes `ETag`; a
  preflight and a read from another origin carry no `Access-Control-Allow-Origin`; the discovery
  documents answer any origin with `*`; never `Access-Control-Allow-Credentials`.
- `smart_configuration`: `GET [patient base]/.well-known/smart-configuration` without a token: the
  SMART App Launch 2.0 fields, `code_challenge_methods_supported` `["S256"]`, the capabilities.
- `metadata`: the endpoint's own CapabilityStatement: SMART-on-FHIR security, Patient read with
  `$everything`, AuditEvent read and search.
- `own_record`: a P9 citizen reads their Patient, an Observation the GP wrote, and `$everything`.
- `other_citizen`: another citizen's Patient and `$everything` answer 404, as one that does not exist.
- `demographics_only`: P5 reads their Patient (200), not an Observation (403).
- `not_for_patient`: an Observation the GP labelled `meta.security` v3-ActCode NOPAT never appears to
  the citizen: read, search, `$everything` (the GP still reads it).
- `access_log_withheld`: the GP's read of a NOPAT item is in the citizen's access log without the
  item's id; an Observation labelled NOPAT after it was written is in none of their histories.
- `access_log`: the GP's read of the citizen's record, and an acute clinician's break-glass access
  (ETREAT with its reason), appear in the citizen's AuditEvents with the organisation; another
  citizen's trail is empty to them, and a read by id of one of its records is 404.
- `contribution` (needs `p9_write`, the same citizen with `patient/*.cruds`): a home blood pressure
  reading is stored marked as theirs (tag, `meta.source`, performer) and the GP reads it so; the
  citizen cannot delete the GP's Observation (403).
- `carer` (needs `carer`, another citizen at P9): the citizen names the carer (RelatedPerson) and grants
  appointments and medications (Consent); with `X-Act-For` the carer reads the appointment and not an
  Observation (403); after the citizen deletes the grant, not the appointment either (403).
"""

import email.utils
import time

from . import eventually, fail, gated_check, needs_identities
from .access import Callers
from .common import expect_resource, patient
from .search import search
from client import Client

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC = "http://loinc.org"
SMART_CAPABILITIES = ("launch-standalone", "client-public", "context-standalone-patient",
                      "permission-patient", "permission-v1", "permission-v2")
GP = "A81001"


def _why_not(ctx):
    if not getattr(ctx.args, "patient_base_url", None):
        return "no --patient-base-url given (caregate's patient-facing endpoint)"
    if needs_identities(ctx):
        return needs_identities(ctx)
    citizens = _spec(ctx).get("citizens") or {}
    if not all(isinstance(citizens.get(k), dict) and citizens[k].get("token") and citizens[k].get("nhs_number")
               for k in ("p9", "p5")):
        return "the --identities file names no citizens (p9 and p5, each with nhs_number and token)"
    return None


def patient_check(name):
    return gated_check("patient." + name, _why_not)


def _spec(ctx):
    if not hasattr(ctx, "patient_spec"):
        import json
        with open(ctx.args.identities) as f:
            ctx.patient_spec = json.load(f)
    return ctx.patient_spec


def _client(ctx, token=None):
    """A connection to the patient endpoint: no client certificate, the citizen's token (or none)."""
    a = ctx.args
    clients = ctx.__dict__.setdefault("patient_clients", {})
    if token not in clients:
        clients[token] = Client(a.patient_base_url, cacert=a.cacert, bearer=token, insecure=a.insecure,
                                timeout=a.timeout)
    return clients[token]


def _citizen(ctx, level="p9"):
    who = _spec(ctx)["citizens"][level]
    return who["nhs_number"], _client(ctx, who["token"])


def _observation(nhs, label=None):
    o = {"resourceType": "Observation", "status": "final",
         "code": {"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}]},
         "subject": {"reference": "Patient/%s" % nhs},
         "valueQuantity": {"value": 64, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}
    if label:
        o["meta"] = {"security": [{"system": ACT_CODE, "code": label}]}
    return o


def _expect(resp, status, what):
    if resp.status != status:
        fail("%s: expected %d, got %s" % (what, status, resp.summary()))


def _record(ctx):
    """The citizen's record, made once a run over the provider endpoint: their Patient registered
    with the GP, an Observation and a NOPAT one by the GP, and another citizen held at the same GP."""
    if "patient_record" not in ctx.__dict__:
        ctx.patient_record = None
        who = Callers(ctx)
        ctx.patient_callers = who
        nhs, _ = _citizen(ctx)
        ctx.used_nhs.add(nhs)
        other = ctx.fresh_nhs()
        for number in (nhs, other):
            p = patient(number, rid=number)
            p["generalPractitioner"] = [{"reference": "Organization/%s" % GP}]
            r = who("system").put("Patient/%s" % number, p)
            if r.status not in (200, 201):
                fail("setup: the system identity could not PUT Patient/%s: %s" % (number, r.summary()))
        gp = who("gp_clinician")
        made = {}
        for key, label in (("observation", None), ("hidden", "NOPAT")):
            r = gp.post("Observation", _observation(nhs, label))
            if r.status != 201:
                fail("setup: the GP could not write an Observation%s: %s"
                     % (" labelled NOPAT" if label else "", r.summary()))
            made[key] = r.json()["id"]
        ctx.patient_record = dict(made, nhs=nhs, other=other)
    if ctx.patient_record is None:
        fail("setup failed earlier in this run")
    return ctx.patient_record


def _server_time(resp):
    """The server's clock at an answer (its Date header), as a FHIR instant one second earlier; without
    a Date header, this machine's clock five minutes earlier."""
    try:
        when = email.utils.parsedate_to_datetime(resp.header("Date") or "").timestamp() - 1
    except (TypeError, ValueError):
        when = time.time() - 300
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


@patient_check("smart_configuration")
def smart_configuration(ctx):
    r = _client(ctx).get(".well-known/smart-configuration")   # no token: discovery comes first
    _expect(r, 200, "GET .well-known/smart-configuration without a token")
    if r.media_type not in ("application/json", "application/fhir+json"):
        fail("smart-configuration: Content-Type %r, expected application/json" % r.header("Content-Type"))
    doc = r.json()
    if not isinstance(doc, dict):
        fail("smart-configuration: not a JSON object")
    for field in ("issuer", "jwks_uri", "authorization_endpoint", "token_endpoint"):
        if not isinstance(doc.get(field), str) or not doc[field]:
            fail("smart-configuration: %s missing or empty" % field)
    for field in ("jwks_uri", "authorization_endpoint", "token_endpoint"):
        if not doc[field].startswith(("https://", "http://")):
            fail("smart-configuration: %s %r is not a URL" % (field, doc[field]))
    if doc.get("code_challenge_methods_supported") != ["S256"]:
        fail("smart-configuration: code_challenge_methods_supported %r, expected [\"S256\"]"
             % doc.get("code_challenge_methods_supported"))
    if "authorization_code" not in (doc.get("grant_types_supported") or []):
        fail("smart-configuration: grant_types_supported lacks authorization_code")
    missing = [c for c in SMART_CAPABILITIES if c not in (doc.get("capabilities") or [])]
    if missing:
        fail("smart-configuration: capabilities lack %s" % ", ".join(missing))
    scopes = doc.get("scopes_supported") or []
    if "patient/*.rs" not in scopes or "patient/*.read" not in scopes:
        fail("smart-configuration: scopes_supported lacks patient/*.rs or patient/*.read: %r" % scopes)


@patient_check("metadata")
def metadata(ctx):
    cap = expect_resource(_client(ctx).get("metadata"), 200, "CapabilityStatement",
                          "GET [patient base]/metadata")
    rest = [x for x in cap.get("rest") or [] if isinstance(x, dict) and x.get("mode") == "server"]
    if not rest:
        fail("the patient endpoint's CapabilityStatement has no rest[mode=server]")
    services = [c.get("code") for s in (rest[0].get("security") or {}).get("service") or []
                for c in s.get("coding") or []]
    if "SMART-on-FHIR" not in services:
        fail("rest.security.service does not name SMART-on-FHIR: %r" % services)
    resources = {r.get("type"): r for r in rest[0].get("resource") or [] if isinstance(r, dict)}

    def codes(rtype):
        return {i.get("code") for i in (resources.get(rtype) or {}).get("interaction") or []}
    for rtype, needed in (("Patient", {"read"}), ("Observation", {"read", "search-type"}),
                          ("AuditEvent", {"read", "search-type"})):
        if not needed <= codes(rtype):
            fail("the patient endpoint's CapabilityStatement lists %s with %s, expected at least %s"
                 % (rtype, sorted(codes(rtype)), sorted(needed)))
    ops = {o.get("name") for o in resources["Patient"].get("operation") or []}
    if "everything" not in ops:
        fail("Patient does not declare $everything on the patient endpoint")


@patient_check("own_record")
def own_record(ctx):
    rec = _record(ctx)
    nhs, me = _citizen(ctx)
    body = expect_resource(me.get("Patient/%s" % nhs), 200, "Patient", "the citizen reading their Patient")
    if body.get("id") != nhs:
        fail("the citizen's Patient has id %r, expected %s" % (body.get("id"), nhs))
    expect_resource(me.get("Observation/%s" % rec["observation"]), 200, "Observation",
                    "the citizen reading the GP's Observation")
    everything = search(ctx, "Patient/%s/$everything" % nhs, client=me)
    seen = set(everything.match) | set(everything.include)
    for key in ("Patient/%s" % nhs, "Observation/%s" % rec["observation"]):
        if key not in seen:
            fail("the citizen's $everything lacks %s" % key)


@patient_check("other_citizen")
def other_citizen(ctx):
    rec = _record(ctx)
    _, me = _citizen(ctx)
    held = me.get("Patient/%s" % rec["other"])
    absent = me.get("Patient/%s" % ctx.fresh_nhs())
    _expect(held, 404, "the citizen reading another citizen's Patient")
    _expect(absent, 404, "the citizen reading a Patient the record does not hold")
    if held.body != absent.body:
        fail("another citizen's 404 differs from an absent one's: %s / %s" % (held.text(), absent.text()))
    _expect(me.get("Patient/%s/$everything" % rec["other"]), 404, "the citizen's $everything of another citizen")
    found = search(ctx, "Observation?patient=Patient/%s" % rec["other"], client=me)
    if found.match:
        fail("a search for another citizen's Observations found %s" % found.match)


@patient_check("demographics_only")
def demographics_only(ctx):
    rec = _record(ctx)
    nhs, p5 = _citizen(ctx, "p5")
    if nhs != rec["nhs"]:
        fail("the p5 and p9 citizens of --identities must be the same NHS number")
    expect_resource(p5.get("Patient/%s" % nhs), 200, "Patient", "a P5 citizen reading their Patient")
    _expect(p5.get("Observation/%s" % rec["observation"]), 403, "a P5 citizen reading an Observation")
    _expect(p5.get("Observation"), 403, "a P5 citizen searching Observations")


@patient_check("not_for_patient")
def not_for_patient(ctx):
    rec = _record(ctx)
    nhs, me = _citizen(ctx)
    hidden = "Observation/%s" % rec["hidden"]
    _expect(me.get(hidden), 404, "the citizen reading an item labelled NOPAT")
    found = search(ctx, "Observation?patient=Patient/%s&_count=100" % nhs, client=me)
    if hidden in found.match or "Observation/%s" % rec["observation"] not in found.match:
        fail("the citizen's Observation search: %s (expected the GP's Observation and never the NOPAT one)"
             % found.match)
    everything = search(ctx, "Patient/%s/$everything" % nhs, client=me)
    if hidden in set(everything.match) | set(everything.include):
        fail("an item labelled NOPAT appears in the citizen's $everything")
    _expect(ctx.patient_callers("gp_clinician").get(hidden), 200, "the GP reading its NOPAT item")


def _events(ctx, client, query):
    return [r for r in search(ctx, query, client=client).resources.values() if r.get("resourceType") == "AuditEvent"]


def _organisation(event):
    for agent in event.get("agent") or []:
        if not agent.get("requestor"):
            return agent.get("who") or {}
    return {}


@patient_check("access_log")
def access_log(ctx):
    rec = _record(ctx)
    nhs, me = _citizen(ctx)
    who = ctx.patient_callers
    gp_read = who("gp_clinician").get("Patient/%s" % nhs)
    _expect(gp_read, 200, "the GP reading the citizen's Patient")
    since = _server_time(gp_read)
    _expect(who("acute_emergency").get("Patient/%s" % nhs), 200, "an acute clinician's break-glass read")

    def both_reads_logged():  # reads' audit records are committed in batches, within about a second
        events = _events(ctx, me, "AuditEvent?patient=Patient/%s&date=ge%s&_count=50" % (nhs, since))
        if not events:
            fail("the citizen's AuditEvent search since %s found nothing" % since)
        for e in events:
            refs = [(x.get("what") or {}).get("reference") for x in e.get("entity") or []]
            if "Patient/%s" % nhs not in refs:
                fail("AuditEvent/%s in the citizen's log does not name them (entities %s)" % (e.get("id"), refs))

        def by(ods):
            return [e for e in events if (_organisation(e).get("identifier") or {}).get("value") == ods]
        gp = [e for e in by(GP) if e.get("action") == "R" and e.get("outcome") == "0"]
        if not gp:
            fail("the GP's read is not in the citizen's access log")
        if not _organisation(gp[0]).get("display"):
            fail("the citizen's access log names the GP practice by code only (no display)")
        reason = None
        for e in by("RX1"):
            for p in e.get("purposeOfEvent") or []:
                if any(c.get("code") == "ETREAT" for c in p.get("coding") or []):
                    reason = p.get("text")
        if not reason:
            fail("the break-glass access is not in the citizen's access log, flagged ETREAT with its reason")
    eventually(both_reads_logged)

    # Another citizen's trail: empty to them; one of its records by id: 404.
    other = _events(ctx, me, "AuditEvent?patient=Patient/%s" % rec["other"])
    if other:
        fail("the citizen sees %d AuditEvents of another citizen" % len(other))
    theirs = _events(ctx, who("ig"), "AuditEvent?patient=Patient/%s&_count=5" % rec["other"])
    if not theirs:
        fail("information governance finds no AuditEvent of the other citizen (written at setup)")
    _expect(me.get("AuditEvent/%s" % theirs[0]["id"]), 404, "the citizen reading another citizen's AuditEvent")
    _, p5 = _citizen(ctx, "p5")
    _expect(p5.get("AuditEvent?patient=Patient/%s" % nhs), 403, "a P5 citizen reading the access log")


@patient_check("access_log_withheld")
def access_log_withheld(ctx):
    """The GP's read of an item withheld from the citizen (NOPAT) is in their access log, without
    naming the item; an item restricted after it was written leaves their history."""
    rec = _record(ctx)
    nhs, me = _citizen(ctx)
    who = ctx.patient_callers
    hidden = "Observation/%s" % rec["hidden"]
    read = who("gp_clinician").get(hidden)
    _expect(read, 200, "the GP reading its NOPAT item")
    since = _server_time(read)

    def gp_read_logged():  # reads' audit records are committed in batches, within about a second
        events = _events(ctx, me, "AuditEvent?patient=Patient/%s&date=ge%s&_count=50" % (nhs, since))
        if not [e for e in events if (_organisation(e).get("identifier") or {}).get("value") == GP
                and e.get("action") == "R"]:
            fail("the GP's read of a withheld item is not in the citizen's access log")
        return events
    events = eventually(gp_read_logged)
    for e in events:
        if hidden in [(x.get("what") or {}).get("reference") for x in e.get("entity") or []]:
            fail("AuditEvent/%s names an item withheld from the citizen" % e.get("id"))
        if rec["hidden"] in str(e):
            fail("AuditEvent/%s mentions the id of an item withheld from the citizen" % e.get("id"))

    obs = _observation(nhs)
    del obs["valueQuantity"]
    obs["valueString"] = "withheld later"
    made = who("gp_clinician").post("Observation", obs)
    _expect(made, 201, "the GP writing an Observation")
    oid = made.json()["id"]
    obs["id"] = oid
    obs["meta"] = {"security": [{"system": ACT_CODE, "code": "NOPAT"}]}
    _expect(who("gp_clinician").put("Observation/%s" % oid, obs), 200, "the GP withholding it")
    for path in ("Observation/_history?_count=200", "_history?_count=200", "Observation/%s/_history/1" % oid):
        r = me.get(path)
        if oid.encode() in r.body or b"withheld later" in r.body:
            fail("%s on the patient endpoint shows an item withheld since it was written" % path)


# ---------------------------------------------------------------------------------------
# Contributions and carers: these need two more tokens in the identities file,
#   "citizens": {..., "p9_write": {"nhs_number": <the p9 citizen>, "token": ... patient/*.cruds},
#                     "carer": {"nhs_number": <another citizen>, "token": ... P9, patient/*.rs}}
# ---------------------------------------------------------------------------------------

PROVENANCE = "https://fhir.caregate.nhs.uk/CodeSystem/provenance"
PROXY_ACCESS = "https://fhir.caregate.nhs.uk/CodeSystem/proxy-access"
PROXY_BASIS = "https://fhir.caregate.nhs.uk/CodeSystem/proxy-basis"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"


def _why_not_writing(ctx):
    why = _why_not(ctx)
    if why:
        return why
    citizens = _spec(ctx).get("citizens") or {}
    if not all(isinstance(citizens.get(k), dict) and citizens[k].get("token") for k in ("p9_write", "carer")):
        return "the --identities file names no p9_write and carer citizens"
    return None


def writing_check(name):
    return gated_check("patient." + name, _why_not_writing)


@writing_check("contribution")
def contribution(ctx):
    """A P9 citizen's home blood pressure reading is stored marked as theirs, and the GP reads it with
    that provenance (tag, meta.source, performer)."""
    _record(ctx)
    nhs, me = _citizen(ctx, "p9_write")
    reading = {"resourceType": "Observation", "status": "final",
               "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                         "code": "vital-signs"}]}],
               "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}]},
               "subject": {"reference": "Patient/%s" % nhs}, "effectiveDateTime": "2026-11-20T08:00:00Z",
               "component": [{"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                              "valueQuantity": {"value": 128, "unit": "mmHg", "system": "http://unitsofmeasure.org",
                                                "code": "mm[Hg]"}}]}
    made = me.post("Observation", reading)
    _expect(made, 201, "the citizen contributing a blood pressure reading")
    rid = made.json()["id"]
    seen = expect_resource(ctx.patient_callers("gp_clinician").get("Observation/%s" % rid), 200, "Observation",
                           "the GP reading the citizen's contribution")
    meta = seen.get("meta") or {}
    if not any(t.get("system") == PROVENANCE and t.get("code") == "patient-contributed" for t in meta.get("tag") or []):
        fail("the contribution lacks the patient-contributed tag: meta %s" % meta)
    if not meta.get("source"):
        fail("the contribution has no meta.source")
    if {"reference": "Patient/%s" % nhs} not in (seen.get("performer") or []):
        fail("the contribution does not name the citizen as performer: %s" % seen.get("performer"))
    # What a professional wrote stays theirs.
    rec = _record(ctx)
    _expect(me.delete("Observation/%s" % rec["observation"]), 403, "the citizen deleting the GP's Observation")


@writing_check("carer")
def carer(ctx):
    """A carer with an appointments-and-medications grant reads the citizen's appointments and nothing
    else; after the citizen revokes the grant, nothing."""
    rec = _record(ctx)
    nhs, me = _citizen(ctx, "p9_write")
    carer_nhs, carer_client = _citizen(ctx, "carer")
    gp = ctx.patient_callers("gp_clinician")
    booked = gp.post("Appointment", {"resourceType": "Appointment", "status": "booked",
                                     "participant": [{"actor": {"reference": "Patient/%s" % nhs}, "status": "accepted"}]})
    _expect(booked, 201, "the GP booking an appointment")
    appointment = booked.json()["id"]
    named = me.post("RelatedPerson", {"resourceType": "RelatedPerson", "patient": {"reference": "Patient/%s" % nhs},
                                      "identifier": [{"system": NHS_NUMBER, "value": carer_nhs}],
                                      "name": [{"family": "Carer"}]})
    _expect(named, 201, "the citizen naming a carer (RelatedPerson)")
    granted = me.post("Consent", {
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": PROXY_ACCESS, "code": "appointments-and-medications"}]}],
        "patient": {"reference": "Patient/%s" % nhs},
        "policyRule": {"coding": [{"system": PROXY_BASIS, "code": "citizen-consent"}]},
        "provision": {"type": "permit", "actor": [{
            "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "DAU"}]},
            "reference": {"reference": "RelatedPerson/%s" % named.json()["id"]}}]}})
    _expect(granted, 201, "the citizen granting the carer appointments and medications")
    acting = {"X-Act-For": nhs}
    expect_resource(carer_client.get("Appointment/%s" % appointment, headers=acting), 200, "Appointment",
                    "the carer reading the citizen's appointment")
    _expect(carer_client.get("Observation/%s" % rec["observation"], headers=acting), 403,
            "the carer reading an Observation the grant does not cover")
    _expect(me.delete("Consent/%s" % granted.json()["id"]), 204, "the citizen revoking the grant")
    _expect(carer_client.get("Appointment/%s" % appointment, headers=acting), 403,
            "the carer after the grant was revoked")


def _why_not_cors(ctx):
    return _why_not(ctx) or (None if getattr(ctx.args, "cors_origin", None) else
                             "no --cors-origin given (an origin the server names in --cors-origins)")


@gated_check("patient.cors", _why_not_cors)
def cors(ctx):
    origin = ctx.args.cors_origin
    other = "https://not-named.example.com"
    record = _record(ctx)
    anonymous = _client(ctx)
    _, citizen = _citizen(ctx)
    answers = []

    def ask(client, method, path, headers):
        r = client.request(method, path, headers=headers)
        answers.append(r)
        return r

    def allow_origin(r):
        return r.header("Access-Control-Allow-Origin")

    asks = {"Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, if-match, prefer, x-act-for"}
    r = ask(anonymous, "OPTIONS", "Observation", dict(asks, Origin=origin))
    _expect(r, 204, "a preflight from %s" % origin)
    if allow_origin(r) != origin:
        fail("preflight: Access-Control-Allow-Origin %r, expected %r" % (allow_origin(r), origin))
    methods = r.header("Access-Control-Allow-Methods") or ""
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        if method not in methods:
            fail("preflight: Access-Control-Allow-Methods %r lacks %s" % (methods, method))
    allowed = (r.header("Access-Control-Allow-Headers") or "").lower()
    for header in ("authorization", "content-type", "if-match", "prefer", "x-act-for"):
        if header not in allowed:
            fail("preflight: Access-Control-Allow-Headers %r lacks %s" % (allowed, header))
    r = ask(anonymous, "OPTIONS", "Observation", dict(asks, Origin=other))
    if r.status < 400 or allow_origin(r):
        fail("a preflight from an origin not named: %s, Access-Control-Allow-Origin %r" % (r.summary(), allow_origin(r)))

    r = ask(citizen, "GET", "Patient/%s" % record["nhs"], {"Origin": origin})
    _expect(r, 200, "the citizen's read from %s" % origin)
    exposed = (r.header("Access-Control-Expose-Headers") or "").lower()
    if allow_origin(r) != origin or "etag" not in exposed:
        fail("the citizen's read from %s: Access-Control-Allow-Origin %r, Access-Control-Expose-Headers %r"
             % (origin, allow_origin(r), exposed))
    r = ask(citizen, "GET", "Patient/%s" % record["nhs"], {"Origin": other})
    if allow_origin(r):
        fail("a read from an origin not named carries Access-Control-Allow-Origin %r" % allow_origin(r))

    for path in (".well-known/smart-configuration", "metadata"):
        r = ask(anonymous, "GET", path, {"Origin": other})
        _expect(r, 200, "GET %s from any origin" % path)
        if allow_origin(r) != "*":
            fail("GET %s from any origin: Access-Control-Allow-Origin %r, expected *" % (path, allow_origin(r)))
    if any(r.header("Access-Control-Allow-Credentials") for r in answers):
        fail("Access-Control-Allow-Credentials sent: the API takes a bearer token, never cookies")
