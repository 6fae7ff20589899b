"""Error handling: every refusal is an OperationOutcome with the right status, and a refused
write leaves nothing changed."""

import json
import uuid

from . import check, fail
from .common import (create_patient, expect_absent, expect_oo, expect_status, expect_unchanged,
                     oo_names, patient)
from client import TransportError

TWENTY_MIB = 20 * 1024 * 1024


def _refused_put(ctx, body_bytes, statuses, what, content_type=None, names=None):
    """PUT a bad body both at a fresh NHS number and over an existing Patient; each must be
    refused with an OperationOutcome and change nothing.  Returns the first OperationOutcome."""
    c = ctx.client
    hdrs = {"Content-Type": content_type} if content_type else None
    fresh = ctx.fresh_nhs()
    r = c.request("PUT", "Patient/" + fresh, body=body_bytes(fresh), headers=hdrs)
    oo = expect_oo(r, statuses, "%s (PUT /Patient/{new})" % what)
    if names and not oo_names(oo, names, diagnostics_too=True):
        fail("%s: OperationOutcome does not name %s (%s)" % (what, names, r.summary()))
    expect_absent(ctx, "Patient/" + fresh, what)
    nhs, first = create_patient(ctx)
    r = c.request("PUT", "Patient/" + nhs, body=body_bytes(nhs), headers=hdrs)
    expect_oo(r, statuses, "%s (PUT over an existing Patient)" % what)
    expect_unchanged(ctx, "Patient/" + nhs, 1, what, body=first)
    other = ctx.fresh_nhs()
    r = c.request("POST", "Patient", body=body_bytes(other), headers=hdrs)
    expect_oo(r, statuses, "%s (POST /Patient)" % what)
    expect_absent(ctx, "Patient/" + other, what + " (POST)")
    return oo


def _json(res):
    return json.dumps(res).encode("utf-8")


@check("errors.malformed_json")
def malformed_json(ctx):
    _refused_put(ctx, lambda n: ('{"resourceType": "Patient", "id": "%s", "identifier": [' % n).encode(),
                 400, "malformed JSON")
    _refused_put(ctx, lambda n: b"[]", (400, 422), "a JSON array instead of a resource")
    _refused_put(ctx, lambda n: _json(dict(patient(n), resourceType="Observation")), (400, 422),
                 "an Observation body sent to /Patient")


@check("errors.unknown_element")
def unknown_element(ctx):
    _refused_put(ctx, lambda n: _json(dict(patient(n), favouriteColour="blue")), (400, 422),
                 "unknown element Patient.favouriteColour")


@check("errors.bad_date")
def bad_date(ctx):
    _refused_put(ctx, lambda n: _json(dict(patient(n), birthDate="2019-13-45")), (400, 422),
                 "birthDate 2019-13-45", names="Patient.birthDate")


@check("errors.too_large")
def too_large(ctx):
    nhs = ctx.fresh_nhs()
    res = patient(nhs)
    res["text"] = {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">%s</div>"}
    head, tail = json.dumps(res).split("%s", 1)
    pad = TWENTY_MIB - len(head) - len(tail)
    body = (head + "x" * pad + tail).encode("utf-8")
    try:
        r = ctx.client.request("PUT", "Patient/" + nhs, body=body)
    except TransportError as e:
        fail("20 MiB PUT: no response before the connection closed (%s)" % e)
    expect_oo(r, 413, "20 MiB PUT /Patient/{new}")
    ctx.client.close()   # the server may have closed it; start afresh either way
    expect_absent(ctx, "Patient/" + nhs, "20 MiB PUT")


@check("errors.xml_body")
def xml_body(ctx):
    # FHIR XML is read (and written: errors.accept_xml); a DTD, an entity or a body labelled as
    # neither format is refused and changes nothing.
    c = ctx.client

    def xml(n, extra=""):
        return ('<Patient xmlns="http://hl7.org/fhir"><id value="%s"/><identifier>'
                '<system value="https://fhir.nhs.uk/Id/nhs-number"/><value value="%s"/>'
                '</identifier>%s</Patient>' % (n, n, extra)).encode()
    nhs = ctx.fresh_nhs()
    r = c.request("PUT", "Patient/" + nhs, body=xml(nhs, '<birthDate value="1950-02-01"/>'),
                  headers={"Content-Type": "application/fhir+xml"})
    expect_status(r, (200, 201), "PUT /Patient/{new} in XML")
    got = c.get("Patient/" + nhs).json() or {}
    if got.get("birthDate") != "1950-02-01":
        fail("a Patient written in XML reads back in JSON without its birthDate")
    bomb = ('<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaaaaaaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            '<Patient xmlns="http://hl7.org/fhir"><id value="%s"/><identifier>'
            '<system value="https://fhir.nhs.uk/Id/nhs-number"/><value value="%s"/></identifier>'
            '<gender value="&b;"/></Patient>')
    _refused_put(ctx, lambda n: (bomb % (n, n)).encode(), 400, "XML with a DTD and entities",
                 content_type="application/fhir+xml")
    _refused_put(ctx, lambda n: _json(patient(n)), 415, "JSON body labelled text/plain",
                 content_type="text/plain")


@check("errors.accept_xml")
def accept_xml(ctx):
    r = ctx.client.get("metadata", headers={"Accept": "application/fhir+xml"})
    expect_status(r, 200, "GET /metadata with Accept: application/fhir+xml")
    if not (r.header("Content-Type") or "").startswith("application/fhir+xml") or \
            b'<CapabilityStatement xmlns="http://hl7.org/fhir">' not in r.body:
        fail("GET /metadata with Accept: application/fhir+xml did not answer a CapabilityStatement in XML")
    nhs, _ = create_patient(ctx)
    for target, headers in (("Patient/" + nhs, {"Accept": "application/fhir+xml"}),
                            ("Patient/%s?_format=xml" % nhs, None)):
        r = ctx.client.get(target, headers=headers)
        expect_status(r, 200, "GET %s in XML" % target)
        if ('<value value="%s"/>' % nhs).encode() not in r.body:
            fail("GET %s in XML does not carry the NHS number as a value attribute" % target)
    r = ctx.client.get("Patient/" + nhs, headers={"Accept": "text/turtle"})
    expect_oo(r, 406, "GET /Patient/{nhs} with Accept: text/turtle")


@check("errors.unknown_id")
def unknown_id(ctx):
    c = ctx.client
    nhs = ctx.fresh_nhs()
    expect_oo(c.get("Patient/" + nhs), 404, "GET /Patient/{unknown NHS number}")
    expect_oo(c.get("Patient/%s/_history/1" % nhs), 404, "GET /Patient/{unknown}/_history/1")
    rid = "cg-absent-" + uuid.uuid4().hex[:12]
    for t in ("Observation", "Condition", "Encounter"):
        expect_oo(c.get("%s/%s" % (t, rid)), 404, "GET /%s/{unknown id}" % t)


@check("errors.unknown_type")
def unknown_type(ctx):
    c = ctx.client
    expect_oo(c.get("NotAResourceType/x"), 404, "GET /NotAResourceType/x")
    expect_oo(c.get("NotAResourceType"), 404, "GET /NotAResourceType")
    expect_oo(c.get("patient/9000000009"), 404, "GET /patient/9000000009 (type names are case-sensitive)")
    r = c.post("NotAResourceType", {"resourceType": "NotAResourceType"})
    expect_oo(r, (404, 405), "POST /NotAResourceType")


@check("errors.wrong_method")
def wrong_method(ctx):
    c = ctx.client
    for method in ("PATCH", "DELETE", "PUT", "POST"):
        body = b'{"resourceType":"CapabilityStatement"}' if method != "DELETE" else None
        r = c.request(method, "metadata", body=body)
        expect_oo(r, 405, "%s /metadata" % method)
        if not r.header("Allow"):
            fail("%s /metadata: 405 without an Allow header (RFC 9110 15.5.6)" % method)
    nhs, first = create_patient(ctx)
    r = c.post("Patient/" + nhs, patient(nhs, family="Posted"))
    expect_oo(r, 405, "POST /Patient/{nhs}")
    if not r.header("Allow"):
        fail("POST /Patient/{nhs}: 405 without an Allow header (RFC 9110 15.5.6)")
    expect_unchanged(ctx, "Patient/" + nhs, 1, "POST /Patient/{nhs}", body=first)
    r = c.request("DELETE", "Patient/%s/_history/1" % nhs)
    expect_status(r, (400, 404, 405), "DELETE /Patient/{nhs}/_history/1")
    expect_unchanged(ctx, "Patient/" + nhs, 1, "DELETE of a version", body=first)
