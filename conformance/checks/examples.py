"""Official R4 examples round trip: each example of a type the server lists is written (PUT at
its id, made unique per run), read back and compared with what was sent; then its XML twin: read in
XML (application/fhir+xml), written back in XML, and read in JSON again, the same resource."""

import json
import os
import re

from . import check, fail, CheckFailed
from .common import (ID_RE, NHS_SYSTEM, RawNumber, create_patient, first_difference, strip_meta)

# R4 CompartmentDefinition "patient": resource types that can belong to a Patient compartment.
PATIENT_COMPARTMENT = frozenset("""
Account AdverseEvent AllergyIntolerance Appointment AppointmentResponse AuditEvent Basic
BodyStructure CarePlan CareTeam ChargeItem Claim ClaimResponse ClinicalImpression Communication
CommunicationRequest Composition Condition Consent Coverage CoverageEligibilityRequest
CoverageEligibilityResponse DetectedIssue DeviceRequest DeviceUseStatement DiagnosticReport
DocumentManifest DocumentReference Encounter EnrollmentRequest EpisodeOfCare ExplanationOfBenefit
FamilyMemberHistory Flag Goal Group ImagingStudy Immunization ImmunizationEvaluation
ImmunizationRecommendation Invoice List MeasureReport Media MedicationAdministration
MedicationDispense MedicationRequest MedicationStatement MolecularSequence NutritionOrder
Observation Patient Person Procedure Provenance QuestionnaireResponse RelatedPerson RequestGroup
ResearchSubject RiskAssessment Schedule ServiceRequest Specimen SupplyDelivery SupplyRequest
VisionPrescription""".split())

PATIENT_REF_RE = re.compile(r"^Patient/[A-Za-z0-9\-\.]{1,64}(/_history/[A-Za-z0-9\-\.]{1,64})?$")
# A relative literal reference to a resource: Type/id, optionally of one version.
LITERAL_REF_RE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})(/_history/[A-Za-z0-9\-\.]{1,64})?$")


# --- exact JSON: decimals keep their literal text ------------------------------------------
# Official R4 examples that break the R4 definitions themselves. A server may refuse them with 422
# (counted as skipped) or accept them (then they must round-trip like any other).
INVALID_OFFICIAL_EXAMPLES = {
    "MedicationRequest-medrx0301.json":
        "dispenseRequest.performer references a Practitioner; R4 allows Reference(Organization) only",
    "Observation-clinical-gender.json": "performer references an Encounter, which R4 does not allow there",
    "Questionnaire-qs1.json": "nested items have no linkId, which R4 requires (1..1)",
}
# Official examples that name patients, but not where the Patient compartment looks (a server that keeps
# one record per citizen may refuse them as naming no citizen: counted as skipped, like those naming none).
NO_CITIZEN_IN_COMPARTMENT = {
    "List-long.json": "its entries name patients; neither subject nor source does",
}


def loads_exact(data):
    if isinstance(data, bytes):
        data = data.decode("utf-8-sig")
    return json.loads(data, parse_float=RawNumber)


def dumps_exact(v):
    if isinstance(v, RawNumber):
        return str(v)
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + dumps_exact(x) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(dumps_exact(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)


# --- rewriting -----------------------------------------------------------------------------
def _literal_refs(node, found):
    """Every relative literal reference (Type/id) in `node`, into the set `found`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                m = LITERAL_REF_RE.match(value)
                if m:
                    found.add("%s/%s" % (m.group(1), m.group(2)))
            else:
                _literal_refs(value, found)
    elif isinstance(node, list):
        for item in node:
            _literal_refs(item, found)
    return found


def _dangling(ctx, res, listed):
    """Whether `res` refers to a resource of a served type that the server does not hold (the
    official examples refer to each other): a server that keeps referential integrity refuses it."""
    for ref in sorted(_literal_refs(res, set())):
        rtype = ref.split("/")[0]
        if rtype in listed and rtype != "Patient" and ctx.client.get(ref).status in (404, 410):
            return ref
    return None


def _contains_unlisted(res, listed):
    """Whether `res` contains a resource of a type the server's CapabilityStatement does not list (an
    official List holds a contained Binary): a server may refuse what it cannot hold."""
    return any(isinstance(c, dict) and c.get("resourceType") not in listed for c in res.get("contained") or [])


def rewrite_patient_refs(node, nhs):
    """Point every Patient reference at Patient/{nhs} (and NHS-number identifier references at
    {nhs}); returns how many were rewritten."""
    n = 0
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and PATIENT_REF_RE.match(ref):
            node["reference"] = "Patient/" + nhs
            n += 1
        ident = node.get("identifier")
        if isinstance(ident, dict) and ident.get("system") == NHS_SYSTEM and \
                (node.get("type") in (None, "Patient")) and "reference" not in node and \
                isinstance(ident.get("value"), str):
            ident["value"] = nhs
            n += 1
        for k, v in node.items():
            if k == "contained":
                continue   # contained resources are resolved inside the resource
            n += rewrite_patient_refs(v, nhs)
    elif isinstance(node, list):
        for v in node:
            n += rewrite_patient_refs(v, nhs)
    return n


def drop_added_references(sent, got):
    """Copy of `got` without the `reference` a server adds beside a logical identifier reference."""
    if isinstance(sent, dict) and isinstance(got, dict):
        out = {}
        for k, v in got.items():
            if k == "reference" and "reference" not in sent and isinstance(sent.get("identifier"), dict):
                continue
            out[k] = drop_added_references(sent[k], v) if k in sent else v
        return out
    if isinstance(sent, list) and isinstance(got, list) and len(sent) == len(got):
        return [drop_added_references(a, b) for a, b in zip(sent, got)]
    return got


def _diagnostics(resp):
    body = None
    try:
        body = loads_exact(resp.body) if resp.body else None
    except ValueError:
        pass
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return resp.summary()
    return "%d %s" % (resp.status, resp.text(160))


def _examples_dir(ctx):
    d = getattr(ctx.args, "examples", None)
    if d:
        return d, True
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(repo, "tests", "data", "r4-examples"), False


def _files(root):
    out = []
    for dirpath, _, names in os.walk(root):
        for nm in names:
            if nm.lower().endswith(".json"):
                out.append(os.path.join(dirpath, nm))
    return sorted(out)


@check("examples", multi=True)
def examples(ctx):
    root, _ = _examples_dir(ctx)
    if not os.path.isdir(root):
        ctx.result("examples", "examples directory %s not found (use --examples DIR)" % root)
        return
    try:
        listed = ctx.listed_types()
    except CheckFailed as e:
        ctx.result("examples", "cannot read the CapabilityStatement: %s" % e)
        return
    selectors = [s for s in ctx.only if s.startswith("examples.")] if ctx.only else []
    counts = {"pass": 0, "fail": 0, "no_citizen": 0, "dangling": 0, "unlisted": 0, "audit": 0, "not_resource": 0,
              "not_writable": 0, "invalid_official": 0, "contained_unlisted": 0, "outside_record": 0}
    files = _files(root)
    if not files:
        ctx.result("examples", "no *.json files under %s" % root)
        return
    for path in files:
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        name = "examples." + rel
        if selectors and not any(name == s or name.startswith(s) for s in selectors):
            continue
        try:
            with open(path, "rb") as f:
                res = loads_exact(f.read())
        except (OSError, ValueError) as e:
            ctx.result(name, "cannot parse the example: %s" % e)
            counts["fail"] += 1
            continue
        rtype = res.get("resourceType") if isinstance(res, dict) else None
        if not isinstance(rtype, str):
            counts["not_resource"] += 1
            ctx.log("SKIP %s: not a resource" % name)
            continue
        if rtype == "AuditEvent":
            counts["audit"] += 1
            ctx.log("SKIP %s: AuditEvent is written by the server only" % name)
            continue
        if rtype not in listed:
            counts["unlisted"] += 1
            ctx.log("SKIP %s: %s not in the CapabilityStatement" % (name, rtype))
            continue
        codes = listed[rtype]
        if "update" not in codes and "create" not in codes:
            counts["not_writable"] += 1
            ctx.log("SKIP %s: %s claims neither create nor update" % (name, rtype))
            continue
        try:
            outcome = _round_trip(ctx, res, rtype, codes,
                                  known_invalid=os.path.basename(path) in INVALID_OFFICIAL_EXAMPLES, listed=listed,
                                  known_no_citizen=os.path.basename(path) in NO_CITIZEN_IN_COMPARTMENT)
        except CheckFailed as e:
            ctx.result(name, str(e))
            counts["fail"] += 1
            continue
        except Exception as e:  # transport errors and the like
            ctx.result(name, "%s: %s" % (type(e).__name__, e))
            counts["fail"] += 1
            continue
        if outcome == "invalid_official":
            counts["invalid_official"] += 1
            ctx.log("SKIP %s: refused with 422; the official example is invalid: %s"
                    % (name, INVALID_OFFICIAL_EXAMPLES[os.path.basename(path)]))
            continue
        if outcome == "dangling":
            counts["dangling"] += 1
            ctx.log("SKIP %s: refers to a resource the server does not hold, refused with 422" % name)
            continue
        if outcome == "contained_unlisted":
            counts["contained_unlisted"] += 1
            ctx.log("SKIP %s: contains a type the server does not list, refused with 422" % name)
            continue
        if outcome == "citizen_outside_record":
            counts["outside_record"] += 1
            ctx.log("SKIP %s: a %s names a patient outside the Patient compartment, refused with 422" % (name, rtype))
            continue
        if outcome == "no_citizen":
            counts["no_citizen"] += 1
            ctx.log("SKIP %s: no citizen referenced, refused with 422" % name)
            continue
        ctx.result(name)
        counts["pass"] += 1
    ctx.emit("examples summary: %d round-tripped (JSON, and their XML twins), %d failed, %d skipped (no citizen), "
             "%d skipped (refers to a resource not held), %d skipped (invalid official example), "
             "%d skipped (type not in CapabilityStatement), %d skipped (AuditEvent), "
             "%d skipped (not writable), %d skipped (not a resource), %d skipped (contains an unlisted type), "
             "%d skipped (names a patient outside the Patient compartment)"
             % (counts["pass"], counts["fail"], counts["no_citizen"], counts["dangling"], counts["invalid_official"],
                counts["unlisted"], counts["audit"], counts["not_writable"], counts["not_resource"],
                counts["contained_unlisted"], counts["outside_record"]))


def _round_trip(ctx, res, rtype, codes, known_invalid=False, listed=None, known_no_citizen=False):
    c = ctx.client
    needs_patient = rewrite_patient_refs(_copy(res), "0000000000") > 0
    nhs = None
    if needs_patient:
        nhs, _ = create_patient(ctx)
        rewrite_patient_refs(res, nhs)
    if rtype == "Patient":
        rid = ctx.fresh_nhs()
        res["id"] = rid
        idents = [i for i in res.get("identifier") or []
                  if not (isinstance(i, dict) and i.get("system") == NHS_SYSTEM)]
        res["identifier"] = [{"system": NHS_SYSTEM, "value": rid}] + idents
        has_citizen = True
    else:
        orig = res.get("id") if isinstance(res.get("id"), str) else ""
        rid = ("%s-%s" % (ctx.run_token, orig))[:64] if orig else ctx.fresh_id()
        if not ID_RE.match(rid):
            rid = ctx.fresh_id()
        res["id"] = rid
        has_citizen = needs_patient
    body = dumps_exact(res).encode("utf-8")
    if "update" in codes:
        r = c.request("PUT", "%s/%s" % (rtype, rid), body=body)
        ok = (200, 201)
    else:
        res.pop("id")
        body = dumps_exact(res).encode("utf-8")
        r = c.request("POST", rtype, body=body)
        ok = (201,)
    if r.status not in ok:
        if r.status == 422 and rtype in PATIENT_COMPARTMENT and \
                (not has_citizen or known_no_citizen):
            return "no_citizen"
        if r.status == 422 and rtype not in PATIENT_COMPARTMENT and has_citizen:
            # A type outside the Patient compartment naming a patient: a server that keeps a
            # citizen's data in their record alone may refuse it.
            return "citizen_outside_record"
        if r.status == 422 and listed is not None and _contains_unlisted(res, listed):
            return "contained_unlisted"
        if r.status == 422 and known_invalid:
            return "invalid_official"
        if r.status == 422 and listed is not None and _dangling(ctx, res, listed):
            return "dangling"
        fail("%s refused: %s" % (r.method, _diagnostics(r)))
    if "id" not in res:
        try:
            rid = loads_exact(r.body).get("id") if r.body else None
        except ValueError:
            rid = None
        if not rid:
            fail("POST: response carries no id")
        res["id"] = rid
    if "read" not in codes:
        return "pass"
    g = c.get("%s/%s" % (rtype, rid))
    if g.status != 200:
        fail("read back %s/%s: %s" % (rtype, rid, _diagnostics(g)))
    if g.media_type != "application/fhir+json":
        fail("read back: Content-Type %r" % g.header("Content-Type"))
    try:
        got = loads_exact(g.body)
    except ValueError as e:
        fail("read back: body is not JSON: %s" % e)
    sent = strip_meta(res)
    got = drop_added_references(sent, strip_meta(got) if isinstance(got, dict) else got)
    d = first_difference(sent, got)
    if d:
        fail("read back differs from what was sent: %s" % d)
    if "update" in codes:
        _xml_twin(c, rtype, rid, sent)
    return "pass"


def _xml_twin(c, rtype, rid, sent):
    """The example's XML twin: read in XML, written back in XML, read in JSON: the same resource."""
    x = c.request("GET", "%s/%s" % (rtype, rid), headers={"Accept": "application/fhir+xml"})
    if x.status != 200 or x.media_type != "application/fhir+xml":
        fail("read as XML: %s, Content-Type %r" % (x.status, x.header("Content-Type")))
    if not x.body.lstrip().startswith(b"<?xml") or (b"<%s xmlns=\"http://hl7.org/fhir\"" % rtype.encode()) not in x.body:
        fail("read as XML: not a %s in the FHIR namespace" % rtype)
    w = c.request("PUT", "%s/%s" % (rtype, rid), body=x.body, headers={"Content-Type": "application/fhir+xml"})
    if w.status not in (200, 201):
        fail("its XML written back: %s" % _diagnostics(w))
    g = c.get("%s/%s" % (rtype, rid))
    try:
        got = loads_exact(g.body)
    except ValueError as e:
        fail("read back after the XML: body is not JSON: %s" % e)
    got = drop_added_references(sent, strip_meta(got) if isinstance(got, dict) else got)
    d = first_difference(sent, got)
    if d:
        fail("its XML twin differs from what was sent: %s" % d)


def _copy(v):
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v
