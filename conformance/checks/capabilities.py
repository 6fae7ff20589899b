"""CapabilityStatement: its shape, and its claims checked against behaviour."""

import uuid

from . import check, fail
from .common import (INTERACTIONS, compartment_resource, create_patient, expect_etag,
                     expect_json_content_type, expect_meta, expect_oo, expect_resource,
                     expect_status, history_all, patient, strip_meta, first_difference,
                     subject_ref)

CORE_TYPES = ("Patient", "Observation", "Condition", "Encounter")
EXERCISED = ("create", "read", "vread", "update", "history-instance", "history-type", "delete")

# R4 resource types used to find one the server does not list (unknown-type probe).
R4_SAMPLE_TYPES = ("Claim", "ClaimResponse", "ExplanationOfBenefit", "CoverageEligibilityRequest",
                   "EnrollmentRequest", "PaymentNotice", "PaymentReconciliation", "Invoice",
                   "ResearchStudy", "SubstanceSpecification", "MedicinalProductIngredient",
                   "EffectEvidenceSynthesis", "TestScript", "ImplementationGuide", "Task", "Subscription",
                   "Parameters", "OperationOutcome")


@check("capabilities.metadata")
def metadata(ctx):
    r = ctx.client.get("metadata")
    cap = expect_resource(r, 200, "CapabilityStatement", "GET /metadata")
    problems = []
    if cap.get("status") not in ("draft", "active", "retired", "unknown"):
        problems.append("status %r is not a PublicationStatus code" % cap.get("status"))
    if not isinstance(cap.get("date"), str):
        problems.append("date missing (1..1 in R4)")
    if cap.get("kind") != "instance":
        problems.append("kind %r, expected 'instance'" % cap.get("kind"))
    if cap.get("fhirVersion") != "4.0.1":
        problems.append("fhirVersion %r, expected '4.0.1'" % cap.get("fhirVersion"))
    fmts = cap.get("format")
    if not isinstance(fmts, list) or not any(
            isinstance(f, str) and f in ("json", "application/fhir+json", "application/json")
            for f in fmts):
        problems.append("format %r does not include json" % (fmts,))
    sw = cap.get("software")
    if not isinstance(sw, dict) or not isinstance(sw.get("name"), str) or not sw.get("name"):
        problems.append("software.name missing")
    elif not isinstance(sw.get("version"), str) or not sw.get("version"):
        problems.append("software.version missing")
    rest = cap.get("rest")
    if not isinstance(rest, list) or not rest or not isinstance(rest[0], dict):
        problems.append("rest[0] missing")
    else:
        if rest[0].get("mode") != "server":
            problems.append("rest[0].mode %r, expected 'server'" % rest[0].get("mode"))
        resources = rest[0].get("resource")
        if not isinstance(resources, list) or not resources:
            problems.append("rest[0].resource is empty")
        else:
            seen = set()
            for i, res in enumerate(resources):
                if not isinstance(res, dict) or not isinstance(res.get("type"), str):
                    problems.append("rest[0].resource[%d] has no type" % i)
                    continue
                if res["type"] in seen:
                    problems.append("type %s listed twice" % res["type"])
                seen.add(res["type"])
                inter = res.get("interaction")
                if not isinstance(inter, list) or not inter:
                    problems.append("%s has no interaction" % res["type"])
                    continue
                for j, it in enumerate(inter):
                    code = it.get("code") if isinstance(it, dict) else None
                    if code not in INTERACTIONS:
                        problems.append("%s interaction[%d].code %r is not a TypeRestfulInteraction"
                                        % (res["type"], j, code))
    if problems:
        fail("; ".join(problems))


@check("capabilities.core_types")
def core_types(ctx):
    listed = ctx.listed_types()
    problems = []
    for t in CORE_TYPES:
        if t not in listed:
            problems.append("%s not listed" % t)
            continue
        missing = [i for i in EXERCISED if i not in listed[t]]
        if missing:
            problems.append("%s lacks %s" % (t, ", ".join(missing)))
    if problems:
        fail("; ".join(problems))


@check("capabilities.unlisted_type")
def unlisted_type(ctx):
    listed = ctx.listed_types()
    candidates = [t for t in R4_SAMPLE_TYPES if t not in listed]
    if not candidates:
        fail("every probe type is listed; cannot test an unlisted type")
    t = candidates[0]
    r = ctx.client.get("%s/x" % t)
    expect_oo(r, 404, "GET /%s/x (type not in CapabilityStatement)" % t)
    r = ctx.client.get("NotAResourceType/x")
    expect_oo(r, 404, "GET /NotAResourceType/x (not a FHIR type)")


@check("capabilities.listed_types_answer")
def listed_types_answer(ctx):
    """For every listed type, the cheap generic claims hold: read of an unknown id is 404,
    history-type and search-type answer a Bundle of the right type. A server with access control may
    answer 403 (with an OperationOutcome) for a type the caller's role may never use: that type is
    then not checked further."""
    problems = []
    for t, codes in sorted(ctx.listed_types().items()):
        try:
            if "read" in codes:
                r = ctx.client.get("%s/%s" % (t, "cg-absent-" + uuid.uuid4().hex[:12]))
                if r.status == 403:
                    expect_oo(r, 403, "GET /%s/{unknown id}" % t)
                    ctx.log("%s: 403 for this caller, not checked further" % t)
                    continue
                expect_oo(r, 404, "GET /%s/{unknown id}" % t)
            if "history-type" in codes:
                r = ctx.client.get("%s/_history?_count=1" % t)
                b = expect_resource(r, 200, "Bundle", "GET /%s/_history" % t)
                if b.get("type") != "history":
                    fail("GET /%s/_history: Bundle.type %r" % (t, b.get("type")))
            if "search-type" in codes:
                r = ctx.client.get("%s?_count=1" % t)
                b = expect_resource(r, 200, "Bundle", "GET /%s?_count=1" % t)
                if b.get("type") != "searchset":
                    fail("GET /%s: Bundle.type %r" % (t, b.get("type")))
        except Exception as e:  # collect all types' problems into one line
            problems.append(str(e))
    if problems:
        fail("; ".join(problems[:8]) + (" (+%d more)" % (len(problems) - 8) if len(problems) > 8 else ""))


def _exercise(ctx, rtype):
    """Create, read, update, vread, history-instance, history-type, delete for one type,
    each step only if the CapabilityStatement claims it."""
    codes = ctx.claimed(rtype)
    if codes is None:
        fail("%s is not listed in the CapabilityStatement" % rtype)
    c = ctx.client
    if rtype == "Patient":
        nhs = ctx.fresh_nhs()
        rid = nhs
        v1 = patient(nhs)
        v2 = patient(nhs, family="Updated")
    else:
        nhs, _ = create_patient(ctx)
        rid = ctx.fresh_id(rtype.lower())
        v1 = compartment_resource(rtype, subject_ref(nhs), 0)
        v2 = compartment_resource(rtype, subject_ref(nhs), 1)
    path = "%s/%s" % (rtype, rid)

    # create (POST) or, failing a claim, create-by-update (PUT)
    if "create" in codes and rtype != "Patient":
        r = c.post(rtype, v1)
        body = expect_resource(r, 201, rtype, "create POST /%s" % rtype)
        rid = body.get("id")
        if not rid:
            fail("create POST /%s: response has no id" % rtype)
        path = "%s/%s" % (rtype, rid)
    elif "create" in codes:
        b = dict(v1)
        del b["id"]
        r = c.post(rtype, b)
        body = expect_resource(r, 201, rtype, "create POST /Patient")
        if body.get("id") != rid:
            fail("create POST /Patient: id %r, expected the NHS number %s" % (body.get("id"), rid))
    elif "update" in codes:
        r = c.put(path, dict(v1, id=rid))
        body = expect_resource(r, 201, rtype, "update-as-create PUT /%s" % path)
    else:
        fail("%s claims neither create nor update; cannot exercise it" % rtype)
    expect_etag(r, 1, "create %s" % rtype)
    expect_meta(body, 1, "create %s" % rtype)
    v1 = dict(v1, id=rid)
    v2 = dict(v2, id=rid)

    if "read" in codes:
        r = c.get(path)
        got = expect_resource(r, 200, rtype, "read GET /%s" % path)
        expect_etag(r, 1, "read GET /%s" % path)
        d = first_difference(strip_meta(v1), strip_meta(got))
        if d and rtype == "Patient":
            fail("read GET /%s differs from what was created: %s" % (path, d))
    if "update" in codes:
        r = c.put(path, v2)
        got = expect_resource(r, 200, rtype, "update PUT /%s" % path)
        expect_etag(r, 2, "update PUT /%s" % path)
        expect_meta(got, 2, "update PUT /%s" % path)
    if "vread" in codes:
        r = c.get(path + "/_history/1")
        got = expect_resource(r, 200, rtype, "vread GET /%s/_history/1" % path)
        expect_meta(got, 1, "vread GET /%s/_history/1" % path)
    if "history-instance" in codes:
        entries, _ = history_all(ctx, path + "/_history", "history-instance GET /%s/_history" % path)
        want = 2 if "update" in codes else 1
        if len(entries) != want:
            fail("history-instance /%s/_history: %d entries, expected %d" % (path, len(entries), want))
    if "history-type" in codes:
        r = c.get("%s/_history?_count=1" % rtype)
        b = expect_resource(r, 200, "Bundle", "history-type GET /%s/_history" % rtype)
        if b.get("type") != "history":
            fail("history-type GET /%s/_history: Bundle.type %r" % (rtype, b.get("type")))
        if not b.get("entry"):
            fail("history-type GET /%s/_history: no entries although one was just written" % rtype)
    if "delete" in codes:
        r = c.delete(path)
        expect_status(r, (200, 204), "delete DELETE /%s" % path)
        if r.status == 200 and r.body:
            expect_json_content_type(r, "delete DELETE /%s" % path, fhir_only=False)
        if "read" in codes:
            r = c.get(path)
            expect_oo(r, 410, "read after delete GET /%s" % path)


for _t in CORE_TYPES:
    def _mk(t):
        @check("capabilities.claims.%s" % t)
        def _claims(ctx):
            _exercise(ctx, t)
        return _claims
    _mk(_t)
