"""Conditional create, update and delete, and PATCH (https://hl7.org/fhir/R4/http.html#ccreate,
#cond-update, #3.1.0.7.1, #patch).

Conditional create (`If-None-Exist`): no match 201, one match 200 with that resource (nothing
written), several 412; the same request on many connections at once makes exactly one resource.
Conditional update (`PUT [type]?criteria`): no match creates, one match is updated (a body id must be
the match's, else 400), several 412. Conditional delete (`DELETE [type]?criteria`): no match 200/204,
one match deleted, several 412 unless the server declares `conditionalDelete: multiple`. PATCH with
JSON Patch (`application/json-patch+json`) and FHIRPath Patch (a Parameters resource): the result is
an update like any other, so a patch that makes the resource invalid is 422 and changes nothing;
If-Match is honoured.

Each check makes its own Observations for a fresh test Patient, with an identifier in a code system
named after the run token, so that criteria select only its own data. A check is skipped (`SKIP`)
when the CapabilityStatement does not declare what it relies on for Observation (conditionalCreate,
conditionalUpdate, conditionalDelete, the patch interaction).
"""

import json
import urllib.parse
import uuid

from . import check, fail, gated_check
from .common import (at_once, compartment_resource, create_patient, current_version, expect_etag, expect_oo,
                     expect_resource, expect_status, expect_unchanged, subject_ref)

JSON_PATCH = "application/json-patch+json"
FHIR_JSON = "application/fhir+json"
CONCURRENT_CLIENTS = 16


# ---------------------------------------------------------------------------------------
# What the CapabilityStatement declares for Observation
# ---------------------------------------------------------------------------------------
def _declared(ctx):
    for rest in ctx.capability().get("rest") or []:
        if not isinstance(rest, dict) or rest.get("mode") != "server":
            continue
        for res in rest.get("resource") or []:
            if isinstance(res, dict) and res.get("type") == "Observation":
                return res
    return {}


def _why_not(ctx, needs):
    res = _declared(ctx)
    codes = {i.get("code") for i in res.get("interaction") or [] if isinstance(i, dict)}
    for need in needs:
        if need == "create" and not res.get("conditionalCreate"):
            return "Observation.conditionalCreate is not declared"
        if need == "update" and not res.get("conditionalUpdate"):
            return "Observation.conditionalUpdate is not declared"
        if need == "delete" and res.get("conditionalDelete") not in ("single", "multiple"):
            return "Observation.conditionalDelete is not declared"
        if need == "patch" and "patch" not in codes:
            return "the patch interaction is not declared for Observation"
    return None


def conditional_check(name, *needs):
    """Register `fn(ctx)` as check `name`, skipped (a SKIP line) when `needs` are not declared."""
    return gated_check(name, lambda ctx: _why_not(ctx, needs))


# ---------------------------------------------------------------------------------------
# Data: Observations marked with an identifier in the run's own code system
# ---------------------------------------------------------------------------------------
class Marked:
    """A fresh Patient, and Observations of theirs identified in a system of this run."""

    def __init__(self, ctx, hint):
        self.ctx = ctx
        self.system = "https://caregate.dev/conformance/%s/%s" % (ctx.run_token, hint)
        self.nhs, _ = create_patient(ctx)

    def observation(self, value, variant=0, rid=None):
        res = compartment_resource("Observation", subject_ref(self.nhs), variant)
        res["identifier"] = [{"system": self.system, "value": value}]
        if rid is not None:
            res["id"] = rid
        return res

    def criteria(self, value):
        """The criteria as a query string, escaped for a request target."""
        return "identifier=" + urllib.parse.quote("%s|%s" % (self.system, value), safe=":/")

    def header(self, value):
        """The criteria as an If-None-Exist header value."""
        return "identifier=%s|%s" % (self.system, value)

    def ids(self, value):
        """The ids of the Observations with this identifier (following next links)."""
        url, ids = "Observation?%s&_count=50" % self.criteria(value), []
        for _ in range(20):
            r = self.ctx.client.get(url)
            b = expect_resource(r, 200, "Bundle", "GET /Observation?identifier=... (counting)")
            ids += [e["resource"]["id"] for e in b.get("entry") or []
                    if (e.get("search") or {}).get("mode", "match") == "match"]
            url = next((lk["url"] for lk in b.get("link") or [] if lk.get("relation") == "next"), None)
            if not url:
                return ids
        fail("counting Observations: too many pages")

    def expect_count(self, value, n, what):
        ids = self.ids(value)
        if len(ids) != n:
            fail("%s: %d Observations with the identifier, expected %d" % (what, len(ids), n))
        return ids


def _id(resp, what):
    body = expect_resource(resp, (200, 201), "Observation", what)
    if not body.get("id"):
        fail("%s: the answer has no id" % what)
    return body["id"]


def _patch(client, path, body, content_type, headers=None):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.request("PATCH", path, body=data, headers=dict(headers or {}, **{"Content-Type": content_type}))


def _fhirpath_patch(*operations):
    """A FHIRPath Patch Parameters resource; each operation a list of (name, value-key, value)."""
    return {"resourceType": "Parameters", "parameter": [
        {"name": "operation", "part": [dict({"name": n}, **{k: v}) for n, k, v in op]} for op in operations]}


# ---------------------------------------------------------------------------------------
# Conditional create
# ---------------------------------------------------------------------------------------
@conditional_check("conditional.create", "create")
def create(ctx):
    c, m = ctx.client, Marked(ctx, "create")
    w = "POST /Observation with If-None-Exist (no match)"
    r = c.post("Observation", m.observation("a"), headers={"If-None-Exist": m.header("a")})
    expect_status(r, 201, w)
    rid = _id(r, w)
    w = "the same POST again (one match)"
    r = c.post("Observation", m.observation("a", 1), headers={"If-None-Exist": m.header("a")})
    expect_status(r, 200, w)
    if r.json() is not None and _id(r, w) != rid:
        fail("%s: answered with %s, not the match %s" % (w, _id(r, w), rid))
    expect_unchanged(ctx, "Observation/" + rid, 1, w)
    m.expect_count("a", 1, w)
    for _ in range(2):
        expect_status(c.post("Observation", m.observation("b")), 201, "setup: POST /Observation")
    w = "POST /Observation with If-None-Exist matching two"
    expect_oo(c.post("Observation", m.observation("b"), headers={"If-None-Exist": m.header("b")}), 412, w)
    m.expect_count("b", 2, w)


@conditional_check("conditional.create.concurrent", "create")
def create_concurrent(ctx):
    """The same conditional create on CONCURRENT_CLIENTS connections at once: one resource, one 201."""
    m = Marked(ctx, "race")
    body, header = m.observation("race"), m.header("race")
    answers = at_once(ctx, CONCURRENT_CLIENTS,
                      lambda client: client.post("Observation", body, headers={"If-None-Exist": header}))
    what = "%d concurrent conditional creates" % CONCURRENT_CLIENTS
    for k, r in enumerate(answers):
        if isinstance(r, Exception):
            fail("%s: client %d: %s" % (what, k, r))
        expect_status(r, (200, 201), "%s (client %d)" % (what, k))
    created = sum(1 for r in answers if r.status == 201)
    if created != 1:
        fail("%s: %d answered 201, expected exactly 1" % (what, created))
    m.expect_count("race", 1, what)


@conditional_check("conditional.create.criteria", "create")
def create_criteria(ctx):
    """Criteria that select nothing (only result parameters) or cannot be read are refused, never
    taken as 'no match' (which would create regardless)."""
    c, m = ctx.client, Marked(ctx, "criteria")
    for bad in ("_count=1", "%s&_sort=date" % m.header("x"), "no-such-parameter=1"):
        expect_oo(c.post("Observation", m.observation("x"), headers={"If-None-Exist": bad}), 400,
                  "POST /Observation with If-None-Exist: %s" % bad)
    m.expect_count("x", 0, "refused conditional creates")


# ---------------------------------------------------------------------------------------
# Conditional update
# ---------------------------------------------------------------------------------------
@conditional_check("conditional.update", "update")
def update(ctx):
    c, m = ctx.client, Marked(ctx, "update")
    w = "PUT /Observation?identifier=... (no match)"
    r = c.put("Observation?" + m.criteria("u"), m.observation("u"))
    expect_status(r, 201, w)
    rid = _id(r, w)
    w = "PUT /Observation?identifier=... (one match)"
    r = c.put("Observation?" + m.criteria("u"), m.observation("u", 1))
    expect_status(r, 200, w)
    expect_etag(r, 2, w)
    if r.json() is not None and _id(r, w) != rid:
        fail("%s: updated %s, not the match %s" % (w, _id(r, w), rid))
    w = "PUT /Observation?identifier=... with another id in the body"
    expect_oo(c.put("Observation?" + m.criteria("u"), m.observation("u", 2, rid=ctx.fresh_id("other"))), 400, w)
    expect_unchanged(ctx, "Observation/" + rid, 2, w)
    m.expect_count("u", 1, "conditional updates")
    for _ in range(2):
        expect_status(c.post("Observation", m.observation("v")), 201, "setup: POST /Observation")
    w = "PUT /Observation?identifier=... matching two"
    expect_oo(c.put("Observation?" + m.criteria("v"), m.observation("v", 3)), 412, w)
    m.expect_count("v", 2, w)


# ---------------------------------------------------------------------------------------
# Conditional delete
# ---------------------------------------------------------------------------------------
@conditional_check("conditional.delete", "delete")
def delete(ctx):
    c, m = ctx.client, Marked(ctx, "delete")
    expect_status(c.delete("Observation?" + m.criteria("none")), (200, 204), "DELETE /Observation?identifier=... (no match)")
    rid = _id(c.post("Observation", m.observation("d")), "setup: POST /Observation")
    expect_status(c.delete("Observation?" + m.criteria("d")), (200, 204), "DELETE /Observation?identifier=... (one match)")
    expect_oo(c.get("Observation/" + rid), 410, "GET after a conditional delete")
    for _ in range(2):
        expect_status(c.post("Observation", m.observation("e")), 201, "setup: POST /Observation")
    w = "DELETE /Observation?identifier=... matching two"
    r = c.delete("Observation?" + m.criteria("e"))
    if _declared(ctx).get("conditionalDelete") == "multiple":
        expect_status(r, (200, 204), w + " (conditionalDelete: multiple)")
        m.expect_count("e", 0, w)
    else:
        expect_oo(r, 412, w + " (conditionalDelete: single)")
        m.expect_count("e", 2, w)
    # A result parameter beside the criteria is refused, never read as "delete only one".
    w = "DELETE /Observation?identifier=...&_count=1"
    if _declared(ctx).get("conditionalDelete") == "single":
        for _ in range(2):
            expect_status(c.post("Observation", m.observation("f")), 201, "setup: POST /Observation")
        expect_oo(c.delete("Observation?%s&_count=1" % m.criteria("f")), 400, w)
        m.expect_count("f", 2, w)


# ---------------------------------------------------------------------------------------
# PATCH
# ---------------------------------------------------------------------------------------
def _patched_observation(ctx, hint):
    m = Marked(ctx, hint)
    rid = _id(ctx.client.post("Observation", m.observation(hint)), "setup: POST /Observation")
    return m, "Observation/" + rid


@conditional_check("conditional.patch.json_patch", "patch")
def patch_json(ctx):
    c = ctx.client
    _, path = _patched_observation(ctx, "jp")
    w = "PATCH /%s (JSON Patch replace and add)" % path
    r = _patch(c, path, [{"op": "replace", "path": "/status", "value": "amended"},
                         {"op": "add", "path": "/note", "value": [{"text": "conformance"}]}], JSON_PATCH)
    expect_status(r, 200, w)
    expect_etag(r, 2, w)
    v, body = current_version(ctx, path, w)
    if v != "2" or body.get("status") != "amended" or (body.get("note") or [{}])[0].get("text") != "conformance":
        fail("%s: the stored resource does not carry the patch: version %r, status %r" % (w, v, body.get("status")))
    w = "PATCH /%s (JSON Patch whose test fails)" % path
    expect_oo(_patch(c, path, [{"op": "test", "path": "/status", "value": "final"},
                               {"op": "replace", "path": "/status", "value": "cancelled"}], JSON_PATCH), 422, w)
    expect_unchanged(ctx, path, 2, w, body=body)


@conditional_check("conditional.patch.fhirpath_patch", "patch")
def patch_fhirpath(ctx):
    c = ctx.client
    _, path = _patched_observation(ctx, "fp")
    w = "PATCH /%s (FHIRPath Patch replace)" % path
    r = _patch(c, path, _fhirpath_patch([("type", "valueCode", "replace"), ("path", "valueString", "Observation.status"),
                                         ("value", "valueCode", "amended")]), FHIR_JSON)
    expect_status(r, 200, w)
    w = "PATCH /%s (FHIRPath Patch add)" % path
    r = _patch(c, path, _fhirpath_patch([("type", "valueCode", "add"), ("path", "valueString", "Observation"),
                                         ("name", "valueString", "issued"),
                                         ("value", "valueInstant", "2024-01-15T11:00:00Z")]), FHIR_JSON)
    expect_status(r, 200, w)
    w = "PATCH /%s (FHIRPath Patch delete)" % path
    r = _patch(c, path, _fhirpath_patch([("type", "valueCode", "delete"), ("path", "valueString", "Observation.issued")]),
               FHIR_JSON)
    expect_status(r, 200, w)
    v, body = current_version(ctx, path, w)
    if v != "4" or body.get("status") != "amended" or "issued" in body:
        fail("%s: the stored resource does not carry the patches: version %r" % (w, v))


@conditional_check("conditional.patch.invalid_result", "patch")
def patch_invalid(ctx):
    """A patch whose result breaks the resource's rules is refused (422) and changes nothing."""
    c = ctx.client
    _, path = _patched_observation(ctx, "inv")
    _, before = current_version(ctx, path, "setup")
    for ops in ([{"op": "remove", "path": "/status"}],                       # Observation.status is required
                [{"op": "replace", "path": "/status", "value": "no-such-status"}]):  # not in the value set
        w = "PATCH /%s %s" % (path, json.dumps(ops))
        expect_oo(_patch(c, path, ops, JSON_PATCH), 422, w)
        expect_unchanged(ctx, path, 1, w, body=before)
    w = "PATCH /%s (FHIRPath Patch deleting Observation.status)" % path
    expect_oo(_patch(c, path, _fhirpath_patch([("type", "valueCode", "delete"),
                                               ("path", "valueString", "Observation.status")]), FHIR_JSON), 422, w)
    expect_unchanged(ctx, path, 1, w, body=before)
    w = "PATCH /%s as text/plain" % path
    expect_oo(_patch(c, path, "[]", "text/plain"), 415, w)


@conditional_check("conditional.patch.if_match", "patch")
def patch_if_match(ctx):
    c = ctx.client
    _, path = _patched_observation(ctx, "im")
    ops = [{"op": "replace", "path": "/status", "value": "amended"}]
    w = "PATCH /%s with a stale If-Match" % path
    expect_oo(_patch(c, path, ops, JSON_PATCH, {"If-Match": 'W/"7"'}), 412, w)
    expect_unchanged(ctx, path, 1, w)
    w = "PATCH /%s with If-Match of the current version" % path
    expect_status(_patch(c, path, ops, JSON_PATCH, {"If-Match": 'W/"1"'}), 200, w)


@conditional_check("conditional.patch.conditional", "patch")
def patch_conditional(ctx):
    c = ctx.client
    m, path = _patched_observation(ctx, "cp")
    ops = [{"op": "replace", "path": "/status", "value": "amended"}]
    w = "PATCH /Observation?identifier=... (one match)"
    expect_status(_patch(c, "Observation?" + m.criteria("cp"), ops, JSON_PATCH), 200, w)
    v, _ = current_version(ctx, path, w)
    if v != "2":
        fail("%s: the match is at version %r, expected 2" % (w, v))
    expect_oo(_patch(c, "Observation?" + m.criteria("none-" + uuid.uuid4().hex[:6]), ops, JSON_PATCH), (404, 412),
              "PATCH /Observation?identifier=... (no match)")
    expect_status(c.post("Observation", m.observation("cp")), 201, "setup: a second match")
    expect_oo(_patch(c, "Observation?" + m.criteria("cp"), ops, JSON_PATCH), 412, "PATCH /Observation?identifier=... (two)")
