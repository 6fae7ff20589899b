"""History: instance, type and system level; paging with _count and next links; _since."""

import urllib.parse

from . import check, fail
from .common import (compartment_resource, create_patient, entry_key, entry_time, entry_version,
                     expect_meta, expect_resource, expect_status, history_all, next_link, patient,
                     sleep_past, subject_ref)


def _q(instant):
    return urllib.parse.quote(instant, safe="")


def _versions_of(entries, ident):
    return [entry_key(e)[1] for e in entries if entry_key(e)[0] == ident]


def _expect_newest_first(entries, what):
    prev = None
    for i, e in enumerate(entries):
        t = entry_time(e)
        if t is None:
            continue
        if prev is not None and t > prev:
            fail("%s: entry[%d] (%s) is newer than the one before it: not newest first"
                 % (what, i, "%s v%s" % entry_key(e)))
        prev = t


def _make_versions(ctx, n, gap=1.1):
    """A Patient with versions 1..n; returns (nhs, [lastUpdated strings])."""
    nhs, body = create_patient(ctx)
    stamps = [body["meta"]["lastUpdated"]]
    for v in range(2, n + 1):
        sleep_past(gap)
        r = ctx.client.put("Patient/" + nhs, patient(nhs, family="Version%d" % v))
        b = expect_resource(r, 200, "Patient", "setup: PUT version %d" % v)
        expect_meta(b, v, "setup: PUT version %d" % v)
        stamps.append(b["meta"]["lastUpdated"])
    return nhs, stamps


@check("history.instance")
def instance(ctx):
    nhs, _ = _make_versions(ctx, 3, gap=0.05)
    r = ctx.client.delete("Patient/" + nhs)
    expect_status(r, (200, 204), "setup: DELETE")
    w = "GET /Patient/%s/_history" % nhs
    r = ctx.client.get("Patient/%s/_history" % nhs)
    b = expect_resource(r, 200, "Bundle", w)
    if "total" in b and b["total"] != 4:
        fail("%s: total %r, expected 4" % (w, b["total"]))
    entries, _ = history_all(ctx, "Patient/%s/_history" % nhs, w)
    methods = [e["request"]["method"] for e in entries]
    if len(entries) != 4:
        fail("%s: %d entries (%s), expected 4 (delete, v3, v2, v1)" % (w, len(entries), methods))
    if methods[0] != "DELETE":
        fail("%s: newest entry is %s, expected DELETE (newest first)" % (w, methods[0]))
    vers = [entry_version(e) for e in entries[1:]]
    if vers != ["3", "2", "1"]:
        fail("%s: versions %s, expected ['3', '2', '1'] (newest first)" % (w, vers))
    if methods[1] != "PUT" or methods[2] != "PUT" or methods[3] not in ("POST", "PUT"):
        fail("%s: request methods %s, expected DELETE, PUT, PUT, POST" % (w, methods))
    for e in entries:
        if not str(e["response"]["status"]).strip().startswith(("200", "201", "204")):
            fail("%s: entry response.status %r" % (w, e["response"]["status"]))
        if e["request"]["method"] != "DELETE" and e["resource"].get("id") != nhs:
            fail("%s: entry for another resource: %s" % (w, e["resource"].get("id")))
    _expect_newest_first(entries, w)


@check("history.instance_count")
def instance_count(ctx):
    nhs, _ = _make_versions(ctx, 3, gap=0.05)
    w = "GET /Patient/%s/_history?_count=1" % nhs
    r = ctx.client.get("Patient/%s/_history?_count=1" % nhs)
    b = expect_resource(r, 200, "Bundle", w)
    if len(b.get("entry") or []) != 1:
        fail("%s: first page has %d entries, expected 1" % (w, len(b.get("entry") or [])))
    if not next_link(b):
        fail("%s: no next link although there are 3 versions" % w)
    entries, pages = history_all(ctx, "Patient/%s/_history?_count=1" % nhs, w)
    vers = [entry_version(e) for e in entries]
    if vers != ["3", "2", "1"]:
        fail("%s: following next links gave versions %s, expected ['3', '2', '1']" % (w, vers))
    if pages < 3:
        fail("%s: %d pages for 3 entries with _count=1" % (w, pages))


@check("history.instance_since")
def instance_since(ctx):
    nhs, stamps = _make_versions(ctx, 3, gap=1.1)
    w = "GET /Patient/%s/_history?_since=%s" % (nhs, stamps[1])
    entries, _ = history_all(ctx, "Patient/%s/_history?_since=%s" % (nhs, _q(stamps[1])), w)
    vers = [entry_version(e) for e in entries]
    if vers != ["3", "2"]:
        fail("%s (lastUpdated of v2): versions %s, expected ['3', '2']" % (w, vers))


@check("history.type")
def type_level(ctx):
    a, body = create_patient(ctx)
    since = body["meta"]["lastUpdated"]
    since_dt = expect_meta(body, 1, "setup")
    b_nhs, _ = create_patient(ctx)
    r = ctx.client.put("Patient/" + a, patient(a, family="Again"))
    expect_status(r, 200, "setup: update")
    path = "Patient/_history?_since=%s&_count=10" % _q(since)
    w = "GET /Patient/_history?_since=%s&_count=10" % since
    entries, pages = _paged(ctx, path, w, 10)
    keys = [entry_key(e) for e in entries]
    for want in (("Patient/" + a, "1"), ("Patient/" + a, "2"), ("Patient/" + b_nhs, "1")):
        if want not in keys:
            fail("%s: %s version %s missing (%d entries over %d pages)" % (w, want[0], want[1],
                                                                           len(entries), pages))
    for e, k in zip(entries, keys):
        if not k[0].startswith("Patient/"):
            fail("%s: entry for %s in Patient type history" % (w, k[0]))
        t = entry_time(e)
        if t is not None and t < since_dt:
            fail("%s: entry %s v%s lastUpdated %s is before _since" % (w, k[0], k[1], t.isoformat()))
    _expect_newest_first(entries, w)
    if keys.index(("Patient/" + a, "2")) > keys.index(("Patient/" + a, "1")):
        fail("%s: version 2 listed after version 1 (not newest first)" % w)


@check("history.system")
def system_level(ctx):
    nhs, body = create_patient(ctx)
    since = body["meta"]["lastUpdated"]
    since_dt = expect_meta(body, 1, "setup")
    r = ctx.client.post("Observation", compartment_resource("Observation", subject_ref(nhs)))
    obs = expect_resource(r, 201, "Observation", "setup: POST /Observation")
    r = ctx.client.put("Patient/" + nhs, patient(nhs, family="Again"))
    expect_status(r, 200, "setup: update")
    path = "_history?_since=%s&_count=10" % _q(since)
    w = "GET /_history?_since=%s&_count=10" % since
    entries, pages = _paged(ctx, path, w, 10)
    keys = [entry_key(e) for e in entries]
    for want in (("Patient/" + nhs, "1"), ("Patient/" + nhs, "2"),
                 ("Observation/" + obs.get("id", ""), "1")):
        if want not in keys:
            fail("%s: %s version %s missing (%d entries over %d pages)"
                 % (w, want[0], want[1], len(entries), pages))
    for e, k in zip(entries, keys):
        t = entry_time(e)
        if t is not None and t < since_dt:
            fail("%s: entry %s v%s lastUpdated %s is before _since" % (w, k[0], k[1], t.isoformat()))
    _expect_newest_first(entries, w)


def _paged(ctx, path, what, count):
    """history_all plus a check that no page holds more than `count` entries."""
    return history_all(ctx, path, what, max_page_entries=count)
