"""Create, read, vread, update, delete; conditional requests; Prefer; content types;
request ids; citizen references from compartment resources."""

import datetime
import urllib.parse
import uuid

from . import check, fail
from .common import (NHS_SYSTEM, compartment_resource, create_patient, current_version,
                     expect_absent, expect_etag, expect_json_content_type, expect_meta, expect_oo,
                     expect_resource, expect_status, expect_unchanged, first_difference,
                     history_all, http_date, last_modified, logical_subject, oo_names, patient,
                     sleep_past, strip_meta, subject_ref)

COMPARTMENT_TYPES = ("Observation", "Condition", "Encounter")


def _post_body(nhs, **kw):
    b = patient(nhs, **kw)
    del b["id"]
    return b


def _expect_location(ctx, resp, rtype, rid, version, what):
    loc = resp.header("Location")
    if not loc:
        fail("%s: no Location header" % what)
    u = urllib.parse.urlsplit(loc)
    want_path = "%s/%s/%s/_history/%s" % (ctx.client.base_path, rtype, rid, version)
    if u.scheme not in ("http", "https") or not u.netloc:
        fail("%s: Location %r is not an absolute URL ({base}/%s/%s/_history/%s)"
             % (what, loc, rtype, rid, version))
    if u.path != want_path:
        fail("%s: Location %r, expected {base}/%s/%s/_history/%s" % (what, loc, rtype, rid, version))


@check("crud.patient.create")
def patient_create(ctx):
    nhs = ctx.fresh_nhs()
    sent = _post_body(nhs)
    r = ctx.client.post("Patient", sent)
    w = "POST /Patient"
    body = expect_resource(r, 201, "Patient", w)
    _expect_location(ctx, r, "Patient", nhs, 1, w)
    expect_etag(r, 1, w)
    last_modified(r, w)
    expect_meta(body, 1, w)
    if body.get("id") != nhs:
        fail("%s: id %r, expected the NHS number %s" % (w, body.get("id"), nhs))
    d = first_difference(dict(sent, id=nhs), strip_meta(body))
    if d:
        fail("%s: returned resource differs from what was sent: %s" % (w, d))


@check("crud.patient.create_duplicate")
def patient_create_duplicate(ctx):
    nhs, first = create_patient(ctx)
    r = ctx.client.post("Patient", _post_body(nhs, family="Duplicate"))
    expect_oo(r, 409, "second POST /Patient with the same NHS number")
    expect_unchanged(ctx, "Patient/" + nhs, 1, "duplicate POST", body=first)
    entries, _ = history_all(ctx, "Patient/%s/_history" % nhs, "GET /Patient/%s/_history" % nhs)
    if len(entries) != 1:
        fail("duplicate POST: history has %d entries, expected 1" % len(entries))


@check("crud.patient.create_invalid_nhs")
def patient_create_invalid_nhs(ctx):
    bad = "9000000000"
    r = ctx.client.post("Patient", _post_body(bad))
    oo = expect_oo(r, (400, 422), "POST /Patient with NHS number 9000000000")
    if not oo_names(oo, "Patient.identifier"):
        fail("POST /Patient with NHS number 9000000000: no issue expression mentions "
             "Patient.identifier (%s)" % r.summary())
    r = ctx.client.get("Patient/" + bad)
    if r.status not in (400, 404):
        fail("GET /Patient/9000000000 after refused create: expected 404 (or 400), got %s"
             % r.summary())


@check("crud.patient.put_create")
def patient_put_create(ctx):
    nhs = ctx.fresh_nhs()
    sent = patient(nhs)
    r = ctx.client.put("Patient/" + nhs, sent)
    w = "PUT /Patient/%s (new)" % nhs
    body = expect_resource(r, 201, "Patient", w)
    expect_etag(r, 1, w)
    last_modified(r, w)
    expect_meta(body, 1, w)
    d = first_difference(sent, strip_meta(body))
    if d:
        fail("%s: returned resource differs from what was sent: %s" % (w, d))


@check("crud.patient.put_update")
def patient_put_update(ctx):
    nhs, _ = create_patient(ctx)
    sent = patient(nhs, family="Changed")
    r = ctx.client.put("Patient/" + nhs, sent)
    w = "PUT /Patient/%s (update)" % nhs
    body = expect_resource(r, 200, "Patient", w)
    expect_etag(r, 2, w)
    last_modified(r, w)
    expect_meta(body, 2, w)
    d = first_difference(sent, strip_meta(body))
    if d:
        fail("%s: returned resource differs from what was sent: %s" % (w, d))
    v, got = current_version(ctx, "Patient/" + nhs, "read after update")
    if v != "2" or got.get("name", [{}])[0].get("family") != "Changed":
        fail("read after update: version %r, family %r" % (v, got.get("name", [{}])[0].get("family")))


@check("crud.patient.put_unchanged")
def patient_put_unchanged(ctx):
    nhs = ctx.fresh_nhs()
    sent = patient(nhs)
    r = ctx.client.put("Patient/" + nhs, sent)
    expect_status(r, 201, "setup: PUT /Patient/%s" % nhs)
    r = ctx.client.put("Patient/" + nhs, sent)
    w = "PUT /Patient/%s with unchanged content" % nhs
    body = expect_resource(r, 200, "Patient", w)
    expect_etag(r, 1, w)
    expect_meta(body, 1, w)
    entries, _ = history_all(ctx, "Patient/%s/_history" % nhs, "GET /Patient/%s/_history" % nhs)
    if len(entries) != 1:
        fail("%s: history has %d entries, expected 1 (no new version)" % (w, len(entries)))


@check("crud.patient.put_id_mismatch")
def patient_put_id_mismatch(ctx):
    nhs, first = create_patient(ctx)
    other = ctx.fresh_nhs()
    # body id differs from the URL (both valid NHS numbers)
    r = ctx.client.put("Patient/" + nhs, patient(other))
    expect_oo(r, 400, "PUT /Patient/%s with body id %s" % (nhs, other))
    expect_unchanged(ctx, "Patient/" + nhs, 1, "PUT with mismatched id", body=first)
    expect_absent(ctx, "Patient/" + other, "PUT with mismatched id")
    # body without id
    b = patient(nhs, family="NoId")
    del b["id"]
    r = ctx.client.put("Patient/" + nhs, b)
    expect_oo(r, 400, "PUT /Patient/%s with no id in the body" % nhs)
    expect_unchanged(ctx, "Patient/" + nhs, 1, "PUT without id", body=first)


@check("crud.patient.put_id_not_nhs")
def patient_put_id_not_nhs(ctx):
    nhs = ctx.fresh_nhs()
    other = ctx.fresh_nhs()
    # id == URL, but the NHS identifier names a different citizen
    r = ctx.client.put("Patient/" + nhs, patient(other, rid=nhs))
    expect_oo(r, (400, 422), "PUT /Patient/%s whose identifier is NHS number %s" % (nhs, other))
    expect_absent(ctx, "Patient/" + nhs, "PUT with id != identifier")
    expect_absent(ctx, "Patient/" + other, "PUT with id != identifier")
    # id == URL, but not an NHS number at all
    rid = "cg-" + ctx.run_token
    r = ctx.client.put("Patient/" + rid, patient(nhs, rid=rid))
    expect_oo(r, (400, 422), "PUT /Patient/%s (id not an NHS number)" % rid)
    r = ctx.client.get("Patient/" + rid)
    if r.status not in (400, 404):
        fail("GET /Patient/%s after refused PUT: expected 404, got %s" % (rid, r.summary()))
    # no NHS identifier at all
    b = patient(nhs)
    b["identifier"] = [{"system": "https://example.org/mrn", "value": "X1"}]
    r = ctx.client.put("Patient/" + nhs, b)
    expect_oo(r, (400, 422), "PUT /Patient/%s without an NHS number identifier" % nhs)
    expect_absent(ctx, "Patient/" + nhs, "PUT without NHS identifier")


@check("crud.patient.read")
def patient_read(ctx):
    nhs, created = create_patient(ctx)
    r = ctx.client.get("Patient/" + nhs)
    w = "GET /Patient/%s" % nhs
    body = expect_resource(r, 200, "Patient", w)
    expect_etag(r, 1, w)
    lm = last_modified(r, w)
    lu = expect_meta(body, 1, w)
    if abs((lm - lu.replace(microsecond=0)).total_seconds()) > 1:
        fail("%s: Last-Modified %s does not match meta.lastUpdated %s"
             % (w, r.header("Last-Modified"), body["meta"]["lastUpdated"]))
    ids = [i for i in body.get("identifier") or [] if i.get("system") == NHS_SYSTEM]
    if body.get("id") != nhs or not ids or ids[0].get("value") != nhs:
        fail("%s: id/NHS identifier do not both carry %s" % (w, nhs))
    d = first_difference(strip_meta(created), strip_meta(body))
    if d:
        fail("%s: differs from the create response: %s" % (w, d))


@check("crud.patient.vread")
def patient_vread(ctx):
    nhs, v1 = create_patient(ctx)
    r = ctx.client.put("Patient/" + nhs, patient(nhs, family="Second"))
    expect_status(r, 200, "setup: update")
    for ver, fam in (("1", "Conformance"), ("2", "Second")):
        p = "Patient/%s/_history/%s" % (nhs, ver)
        r = ctx.client.get(p)
        body = expect_resource(r, 200, "Patient", "GET /" + p)
        expect_etag(r, ver, "GET /" + p)
        last_modified(r, "GET /" + p)
        expect_meta(body, ver, "GET /" + p)
        if (body.get("name") or [{}])[0].get("family") != fam:
            fail("GET /%s: content is not that of version %s" % (p, ver))
    r = ctx.client.get("Patient/%s/_history/99" % nhs)
    expect_oo(r, 404, "GET /Patient/%s/_history/99 (no such version)" % nhs)


@check("crud.patient.delete")
def patient_delete(ctx):
    nhs, _ = create_patient(ctx)
    r = ctx.client.put("Patient/" + nhs, patient(nhs, family="Second"))
    expect_status(r, 200, "setup: update")
    r = ctx.client.delete("Patient/" + nhs)
    expect_status(r, (200, 204), "DELETE /Patient/%s" % nhs)
    if r.status == 204 and r.body:
        fail("DELETE /Patient/%s: 204 with a body" % nhs)
    r = ctx.client.get("Patient/" + nhs)
    expect_oo(r, 410, "GET /Patient/%s after delete" % nhs)
    for ver in ("1", "2"):
        r = ctx.client.get("Patient/%s/_history/%s" % (nhs, ver))
        b = expect_resource(r, 200, "Patient", "vread version %s after delete" % ver)
        expect_meta(b, ver, "vread version %s after delete" % ver)
    entries, _ = history_all(ctx, "Patient/%s/_history" % nhs, "GET /Patient/%s/_history" % nhs)
    if len(entries) != 3:
        fail("history after delete: %d entries, expected 3 (v1, v2, delete)" % len(entries))
    if entries[0]["request"]["method"] != "DELETE":
        fail("history after delete: newest entry is %s, expected DELETE" % entries[0]["request"]["method"])
    if [e["request"]["method"] == "DELETE" for e in entries[1:]] != [False, False]:
        fail("history after delete: older entries are not the two versions")


@check("crud.conditional.if_match")
def if_match(ctx):
    nhs, _ = create_patient(ctx)
    r = ctx.client.put("Patient/" + nhs, patient(nhs, family="Second"))
    expect_status(r, 200, "setup: update")
    _, v2 = current_version(ctx, "Patient/" + nhs, "setup")
    r = ctx.client.put("Patient/" + nhs, patient(nhs, family="Stale"), headers={"If-Match": 'W/"1"'})
    expect_oo(r, 412, 'PUT with If-Match: W/"1" when current is 2')
    expect_unchanged(ctx, "Patient/" + nhs, 2, "stale If-Match", body=v2)
    r = ctx.client.put("Patient/" + nhs, patient(nhs, family="Third"), headers={"If-Match": 'W/"2"'})
    expect_resource(r, 200, "Patient", 'PUT with If-Match: W/"2" when current is 2')
    expect_etag(r, 3, 'PUT with If-Match: W/"2"')


@check("crud.conditional.if_none_match")
def if_none_match(ctx):
    nhs, _ = create_patient(ctx)
    r = ctx.client.put("Patient/" + nhs, patient(nhs, family="Second"))
    expect_status(r, 200, "setup: update")
    r = ctx.client.get("Patient/" + nhs, headers={"If-None-Match": 'W/"2"'})
    expect_status(r, 304, 'GET with If-None-Match: W/"2" when current is 2')
    if r.body:
        fail("304 response has a body")
    r = ctx.client.get("Patient/" + nhs, headers={"If-None-Match": 'W/"1"'})
    expect_resource(r, 200, "Patient", 'GET with If-None-Match: W/"1" when current is 2')
    expect_etag(r, 2, 'GET with If-None-Match: W/"1"')


@check("crud.conditional.if_modified_since")
def if_modified_since(ctx):
    nhs, body = create_patient(ctx)
    lu = expect_meta(body, 1, "setup")
    sleep_past(2.1)   # so that lastUpdated + 1 s is not in the server's future
    later = http_date(lu.replace(microsecond=0) + datetime.timedelta(seconds=1))
    r = ctx.client.get("Patient/" + nhs, headers={"If-Modified-Since": later})
    expect_status(r, 304, "GET with If-Modified-Since %s (after lastUpdated %s)"
                  % (later, body["meta"]["lastUpdated"]))
    if r.body:
        fail("304 response has a body")
    earlier = http_date(lu - datetime.timedelta(days=1))
    r = ctx.client.get("Patient/" + nhs, headers={"If-Modified-Since": earlier})
    expect_resource(r, 200, "Patient", "GET with If-Modified-Since a day before lastUpdated")


@check("crud.prefer_return")
def prefer_return(ctx):
    c = ctx.client
    # minimal
    nhs = ctx.fresh_nhs()
    r = c.post("Patient", _post_body(nhs), headers={"Prefer": "return=minimal"})
    w = "POST /Patient with Prefer: return=minimal"
    expect_status(r, 201, w)
    if r.body:
        fail("%s: body is not empty (%d bytes)" % (w, len(r.body)))
    _expect_location(ctx, r, "Patient", nhs, 1, w)
    expect_etag(r, 1, w)
    r = c.put("Patient/" + nhs, patient(nhs, family="Minimal"), headers={"Prefer": "return=minimal"})
    w = "PUT /Patient/%s with Prefer: return=minimal" % nhs
    expect_status(r, 200, w)
    if r.body:
        fail("%s: body is not empty (%d bytes)" % (w, len(r.body)))
    expect_etag(r, 2, w)
    # OperationOutcome
    nhs2 = ctx.fresh_nhs()
    r = c.post("Patient", _post_body(nhs2), headers={"Prefer": "return=OperationOutcome"})
    w = "POST /Patient with Prefer: return=OperationOutcome"
    expect_status(r, 201, w)
    expect_json_content_type(r, w)
    b = r.json()
    if not isinstance(b, dict) or b.get("resourceType") != "OperationOutcome":
        fail("%s: body is not an OperationOutcome: %s" % (w, r.text(120)))
    r = c.put("Patient/" + nhs2, patient(nhs2, family="OO"), headers={"Prefer": "return=OperationOutcome"})
    w = "PUT with Prefer: return=OperationOutcome"
    expect_status(r, 200, w)
    b = r.json()
    if not isinstance(b, dict) or b.get("resourceType") != "OperationOutcome":
        fail("%s: body is not an OperationOutcome: %s" % (w, r.text(120)))
    # representation (explicit and default)
    r = c.put("Patient/" + nhs2, patient(nhs2, family="Repr"), headers={"Prefer": "return=representation"})
    b = expect_resource(r, 200, "Patient", "PUT with Prefer: return=representation")
    expect_meta(b, 3, "PUT with Prefer: return=representation")
    r = c.put("Patient/" + nhs2, patient(nhs2, family="Default"))
    b = expect_resource(r, 200, "Patient", "PUT without Prefer (default representation)")
    expect_meta(b, 4, "PUT without Prefer")


@check("crud.content_types")
def content_types(ctx):
    c = ctx.client
    for ct in ("application/fhir+json", "application/json", "application/fhir+json; charset=utf-8"):
        nhs = ctx.fresh_nhs()
        r = c.request("POST", "Patient", json_body=_post_body(nhs), headers={"Content-Type": ct})
        body = expect_resource(r, 201, "Patient", "POST /Patient with Content-Type %s" % ct)
        expect_meta(body, 1, "POST /Patient with Content-Type %s" % ct)
    # Accept variants all answered as FHIR JSON
    for acc in ("application/fhir+json", "*/*", "application/fhir+json;q=1.0, */*;q=0.1", None):
        r = c.get("Patient/" + nhs, headers={"Accept": acc})
        expect_resource(r, 200, "Patient", "GET /Patient with Accept: %s" % acc)
    # a client asking for plain JSON may get either JSON media type
    r = c.get("Patient/" + nhs, headers={"Accept": "application/json"})
    expect_status(r, 200, "GET /Patient with Accept: application/json")
    expect_json_content_type(r, "GET /Patient with Accept: application/json", fhir_only=False)
    if (r.json() or {}).get("resourceType") != "Patient":
        fail("GET /Patient with Accept: application/json: body is not a Patient")


@check("crud.format_parameter")
def format_parameter(ctx):
    nhs, _ = create_patient(ctx)
    for fmt in ("json", "application/fhir+json", "application/json"):
        q = urllib.parse.quote(fmt, safe="")
        r = ctx.client.get("metadata?_format=" + q)
        expect_resource(r, 200, "CapabilityStatement", "GET /metadata?_format=" + fmt)
        r = ctx.client.get("Patient/%s?_format=%s" % (nhs, q))
        expect_resource(r, 200, "Patient", "GET /Patient/{nhs}?_format=" + fmt)


@check("crud.request_id")
def request_id(ctx):
    c = ctx.client
    rid = str(uuid.uuid4())
    r = c.get("metadata", headers={"X-Request-ID": rid})
    expect_status(r, 200, "GET /metadata")
    if r.header("X-Request-ID") != rid:
        fail("X-Request-ID %s not echoed (got %r)" % (rid, r.header("X-Request-ID")))
    rid = str(uuid.uuid4())
    r = c.get("Patient/%s" % ctx.fresh_nhs(), headers={"X-Request-ID": rid})
    if r.header("X-Request-ID") != rid:
        fail("X-Request-ID %s not echoed on a %d (got %r)" % (rid, r.status, r.header("X-Request-ID")))
    r1 = c.get("metadata")
    r2 = c.get("metadata")
    a, b = r1.header("X-Request-ID"), r2.header("X-Request-ID")
    if not a or not b:
        fail("no X-Request-ID generated when the request has none")
    if a == b:
        fail("generated X-Request-ID %r repeated for two requests" % a)


@check("crud.compartment.reference")
def compartment_reference(ctx):
    nhs, _ = create_patient(ctx)
    for t in COMPARTMENT_TYPES:
        sent = compartment_resource(t, subject_ref(nhs))
        r = ctx.client.post(t, sent)
        w = "POST /%s with subject Patient/%s" % (t, nhs)
        body = expect_resource(r, 201, t, w)
        expect_meta(body, 1, w)
        expect_etag(r, 1, w)
        if not body.get("id"):
            fail("%s: no id assigned" % w)
        _expect_location(ctx, r, t, body["id"], 1, w)
        r = ctx.client.get("%s/%s" % (t, body["id"]))
        got = expect_resource(r, 200, t, "read back " + t)
        d = first_difference(dict(sent, id=body["id"]), strip_meta(got))
        if d:
            fail("read back %s differs from what was sent: %s" % (t, d))


@check("crud.compartment.unknown_citizen")
def compartment_unknown_citizen(ctx):
    unknown = ctx.fresh_nhs()
    r = ctx.client.get("Patient/" + unknown)
    if r.status != 404:
        fail("setup: GET /Patient/%s of a fresh NHS number: expected 404, got %s" % (unknown, r.summary()))
    for t in COMPARTMENT_TYPES:
        r = ctx.client.post(t, compartment_resource(t, subject_ref(unknown)))
        w = "POST /%s with subject Patient/%s (not held)" % (t, unknown)
        oo = expect_oo(r, 422, w)
        if not oo_names(oo, "%s.subject" % t, diagnostics_too=True):
            fail("%s: OperationOutcome does not name %s.subject (%s)" % (w, t, r.summary()))
        # the same by PUT, so that "nothing was written" can be verified by id
        rid = ctx.fresh_id(t.lower())
        r = ctx.client.put("%s/%s" % (t, rid), dict(compartment_resource(t, subject_ref(unknown)), id=rid))
        expect_oo(r, 422, "PUT /%s/{id} with subject Patient/%s (not held)" % (t, unknown))
        expect_absent(ctx, "%s/%s" % (t, rid), "refused PUT of %s" % t)
    r = ctx.client.get("Patient/" + unknown)
    if r.status != 404:
        fail("refused writes created Patient/%s: GET -> %s" % (unknown, r.summary()))


@check("crud.compartment.logical_reference")
def compartment_logical_reference(ctx):
    nhs, _ = create_patient(ctx)
    for t in COMPARTMENT_TYPES:
        r = ctx.client.post(t, compartment_resource(t, logical_subject(nhs)))
        w = "POST /%s with subject identifier NHS %s" % (t, nhs)
        body = expect_resource(r, 201, t, w)
        rid = body.get("id")
        if not rid:
            fail("%s: no id assigned" % w)
        r = ctx.client.get("%s/%s" % (t, rid))
        got = expect_resource(r, 200, t, "read back %s/%s" % (t, rid))
        subj = got.get("subject") or {}
        if subj.get("reference") != "Patient/" + nhs:
            fail("read back %s: subject.reference %r, expected 'Patient/%s'"
                 % (t, subj.get("reference"), nhs))
