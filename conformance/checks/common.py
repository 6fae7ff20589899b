"""Shared helpers for the checks: the run context, NHS numbers, test resources and the
assertions every area uses (status, content type, OperationOutcome, ETag, history bundles)."""

import datetime
import email.utils
import random
import re
import sys
import time
import uuid

from . import CheckFailed, fail

NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
FHIR_JSON = "application/fhir+json"
JSON_TYPES = ("application/fhir+json", "application/json")

INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance",
                "history-type", "create", "search-type")

ID_RE = re.compile(r"^[A-Za-z0-9\-\.]{1,64}$")
INSTANT_RE = re.compile(
    r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$")
WEAK_ETAG_RE = re.compile(r'^W/"([^"]+)"$')

_rng = random.SystemRandom()


# ---------------------------------------------------------------------------------------
# Run context
# ---------------------------------------------------------------------------------------
class Context:
    def __init__(self, client, args, out=None):
        self.client = client
        self.args = args
        self.verbose = bool(getattr(args, "verbose", False))
        self.out = out or sys.stdout
        self.run_token = uuid.uuid4().hex[:8]
        self.used_nhs = set()
        self.results = []            # (name, reason or None)
        self._cap = None
        self._cap_error = None

    # reporting -------------------------------------------------------------------------
    def result(self, name, reason=None):
        self.results.append((name, reason))
        if reason is None:
            self.emit("PASS %s" % name)
        else:
            self.emit("FAIL %s: %s" % (name, " ".join(str(reason).split())))

    def emit(self, line):
        print(line, file=self.out, flush=True)

    def log(self, msg):
        if self.verbose:
            self.emit("    " + msg)

    # CapabilityStatement -----------------------------------------------------------------
    def capability(self):
        """The server's CapabilityStatement (fetched once); fails the calling check if absent."""
        if self._cap is None and self._cap_error is None:
            try:
                r = self.client.get("metadata")
                body = r.json()
                if r.status != 200 or not isinstance(body, dict) \
                        or body.get("resourceType") != "CapabilityStatement":
                    self._cap_error = "GET /metadata: " + r.summary()
                else:
                    self._cap = body
            except Exception as e:  # transport error
                self._cap_error = "GET /metadata: %s" % e
        if self._cap is None:
            fail(self._cap_error)
        return self._cap

    def listed_types(self):
        """{type: set(interaction codes)} from rest[mode=server] of the CapabilityStatement."""
        cap = self.capability()
        out = {}
        for rest in cap.get("rest") or []:
            if not isinstance(rest, dict) or rest.get("mode") != "server":
                continue
            for res in rest.get("resource") or []:
                if isinstance(res, dict) and isinstance(res.get("type"), str):
                    codes = out.setdefault(res["type"], set())
                    for i in res.get("interaction") or []:
                        if isinstance(i, dict) and isinstance(i.get("code"), str):
                            codes.add(i["code"])
        return out

    def claimed(self, rtype):
        return self.listed_types().get(rtype)

    # NHS numbers ---------------------------------------------------------------------------
    def fresh_nhs(self):
        while True:
            n = random_test_nhs()
            if n not in self.used_nhs:
                self.used_nhs.add(n)
                return n

    def fresh_id(self, hint=""):
        """A fresh FHIR id for non-Patient resources: run token + hint + random."""
        base = "cg-%s-%s%s" % (self.run_token, (hint + "-") if hint else "", uuid.uuid4().hex[:10])
        return base[:64]


# ---------------------------------------------------------------------------------------
# NHS numbers
# ---------------------------------------------------------------------------------------
def nhs_check_digit(nine):
    total = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1)))
    c = 11 - (total % 11)
    if c == 11:
        return 0
    if c == 10:
        return None
    return c


def is_valid_nhs(s):
    if not (isinstance(s, str) and len(s) == 10 and s.isdigit()) or len(set(s)) == 1:
        return False
    c = nhs_check_digit(s[:9])
    return c is not None and c == int(s[9])


def random_test_nhs():
    while True:
        nine = "9" + "%08d" % _rng.randrange(10 ** 8)
        c = nhs_check_digit(nine)
        if c is None:
            continue
        n = nine + str(c)
        if len(set(n)) > 1:
            return n


# ---------------------------------------------------------------------------------------
# Test resources
# ---------------------------------------------------------------------------------------
def patient(nhs, family="Conformance", given="Test", birth="1980-02-29", rid=None):
    return {
        "resourceType": "Patient",
        "id": nhs if rid is None else rid,
        "identifier": [{"system": NHS_SYSTEM, "value": nhs}],
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": "female",
        "birthDate": birth,
    }


def subject_ref(nhs):
    return {"reference": "Patient/" + nhs}


def logical_subject(nhs):
    return {"identifier": {"system": NHS_SYSTEM, "value": nhs}}


def compartment_resource(rtype, subject, variant=0):
    """A minimal valid R4 resource of `rtype` (Observation, Condition, Encounter) for a citizen.
    `variant` changes content so that an update makes a new version."""
    if rtype == "Observation":
        return {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs", "display": "Vital Signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4",
                                 "display": "Heart rate"}]},
            "subject": subject,
            "effectiveDateTime": "2024-01-15T10:30:00Z",
            "valueQuantity": {"value": 60 + variant, "unit": "beats/minute",
                              "system": "http://unitsofmeasure.org", "code": "/min"},
        }
    if rtype == "Condition":
        return {
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active" if variant % 2 == 0 else "resolved"}]},
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "confirmed"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "195967001",
                                 "display": "Asthma"}]},
            "subject": subject,
            "onsetDateTime": "2019-06-0%d" % (1 + variant % 9),
        }
    if rtype == "Encounter":
        return {
            "resourceType": "Encounter",
            "status": "finished" if variant % 2 == 0 else "cancelled",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "AMB", "display": "ambulatory"},
            "subject": subject,
            "period": {"start": "2024-01-15T09:00:00Z",
                       "end": "2024-01-15T09:%02d:00Z" % (20 + variant % 30)},
        }
    raise ValueError("no test resource for " + rtype)


# ---------------------------------------------------------------------------------------
# Assertions
# ---------------------------------------------------------------------------------------
def _status_list(statuses):
    return (statuses,) if isinstance(statuses, int) else tuple(statuses)


def _fmt_statuses(statuses):
    return "/".join(str(s) for s in _status_list(statuses))


def expect_status(resp, statuses, what):
    if resp.status not in _status_list(statuses):
        fail("%s: expected %s, got %s" % (what, _fmt_statuses(statuses), resp.summary()))


def expect_json_content_type(resp, what, fhir_only=True):
    allowed = (FHIR_JSON,) if fhir_only else JSON_TYPES
    if resp.media_type not in allowed:
        fail("%s: Content-Type %r, expected %s" % (what, resp.header("Content-Type"),
                                                   " or ".join(allowed)))


def expect_oo(resp, statuses, what):
    """A non-2xx answer with status in `statuses` and a JSON OperationOutcome body."""
    expect_status(resp, statuses, what)
    expect_json_content_type(resp, what + " (error response)", fhir_only=False)
    body = resp.json()
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        fail("%s: body is not an OperationOutcome: %s" % (what, resp.text(160)))
    issues = body.get("issue")
    if not isinstance(issues, list) or not issues:
        fail("%s: OperationOutcome has no issue" % what)
    for i, issue in enumerate(issues):
        if not isinstance(issue, dict) or issue.get("severity") not in \
                ("fatal", "error", "warning", "information") or not isinstance(issue.get("code"), str):
            fail("%s: OperationOutcome.issue[%d] lacks a valid severity/code" % (what, i))
    if resp.status >= 400 and not any(i.get("severity") in ("fatal", "error") for i in issues):
        fail("%s: OperationOutcome for %d has no issue of severity error/fatal" % (what, resp.status))
    return body


def oo_names(oo, path, diagnostics_too=False):
    """Whether an OperationOutcome points at `path` (e.g. 'Patient.birthDate')."""
    for issue in oo.get("issue") or []:
        places = list(issue.get("expression") or []) + list(issue.get("location") or [])
        if diagnostics_too and isinstance(issue.get("diagnostics"), str):
            places.append(issue["diagnostics"])
        for p in places:
            if isinstance(p, str) and path in p:
                return True
    return False


def expect_resource(resp, statuses, rtype, what):
    """A 2xx answer carrying a resource of `rtype` as application/fhir+json."""
    expect_status(resp, statuses, what)
    expect_json_content_type(resp, what)
    body = resp.json()
    if not isinstance(body, dict):
        fail("%s: body is not a JSON object: %s" % (what, resp.text(160)))
    if body.get("resourceType") != rtype:
        fail("%s: resourceType %r, expected %r" % (what, body.get("resourceType"), rtype))
    return body


def etag_version(resp, what):
    """The version in a weak ETag W/"n" (required)."""
    tag = resp.header("ETag")
    if tag is None:
        fail("%s: no ETag header" % what)
    m = WEAK_ETAG_RE.match(tag.strip())
    if not m:
        fail("%s: ETag %r is not of the form W/\"version\"" % (what, tag))
    return m.group(1)


def expect_etag(resp, version, what):
    v = etag_version(resp, what)
    if v != str(version):
        fail("%s: ETag W/\"%s\", expected W/\"%s\"" % (what, v, version))


def parse_instant(s, what):
    if not isinstance(s, str) or not INSTANT_RE.match(s):
        fail("%s: %r is not a FHIR instant" % (what, s))
    t = s.replace("Z", "+00:00")
    # Python < 3.11 accepts only 3 or 6 fractional digits: normalise to 6.
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", t)
    frac = (m.group(2) or ".0")[1:]
    frac = (frac + "000000")[:6]
    return datetime.datetime.fromisoformat("%s.%s%s" % (m.group(1), frac, m.group(3)))


def expect_meta(body, version, what):
    """meta.versionId == version and a valid meta.lastUpdated; returns lastUpdated (datetime)."""
    meta = body.get("meta")
    if not isinstance(meta, dict):
        fail("%s: no meta" % what)
    if meta.get("versionId") != str(version):
        fail("%s: meta.versionId %r, expected %r" % (what, meta.get("versionId"), str(version)))
    return parse_instant(meta.get("lastUpdated"), what + " meta.lastUpdated")


def last_modified(resp, what):
    lm = resp.header("Last-Modified")
    if not lm:
        fail("%s: no Last-Modified header" % what)
    try:
        dt = email.utils.parsedate_to_datetime(lm)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt.tzinfo is None:
        fail("%s: Last-Modified %r is not an HTTP-date" % (what, lm))
    return dt


def http_date(dt):
    return email.utils.format_datetime(dt.astimezone(datetime.timezone.utc), usegmt=True)


def fhir_instant(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        "%03dZ" % (dt.microsecond // 1000)


def strip_meta(res):
    """Copy of a resource without meta.versionId / meta.lastUpdated (and without empty meta)."""
    out = dict(res)
    meta = out.get("meta")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
        if meta:
            out["meta"] = meta
        else:
            out.pop("meta")
    return out


def first_difference(sent, got, path=""):
    """Path and description of the first difference between two JSON values, or None."""
    if isinstance(sent, dict) and isinstance(got, dict):
        for k in sent:
            if k not in got:
                return "%s.%s missing" % (path, k) if path else "%s missing" % k
            d = first_difference(sent[k], got[k], "%s.%s" % (path, k) if path else k)
            if d:
                return d
        for k in got:
            if k not in sent:
                return "%s.%s added by server" % (path, k) if path else "%s added by server" % k
        return None
    if isinstance(sent, list) and isinstance(got, list):
        if len(sent) != len(got):
            return "%s: %d items sent, %d returned" % (path, len(sent), len(got))
        for i, (a, b) in enumerate(zip(sent, got)):
            d = first_difference(a, b, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    if isinstance(sent, (dict, list)) or isinstance(got, (dict, list)):
        return "%s: sent %s, returned %s" % (path, _short(sent), _short(got))
    if _is_number(sent) and _is_number(got):
        if not numbers_equal(sent, got):
            return "%s: sent %s, returned %s" % (path, _short(sent), _short(got))
        return None
    if _same_base64(path, sent, got):
        return None  # base64Binary's whitespace is not part of its value: a server may drop it
    if type(sent) is not type(got) or sent != got:
        return "%s: sent %s, returned %s" % (path, _short(sent), _short(got))
    return None


def _same_base64(path, sent, got):
    """Whether `sent` and `got` are a `data` element's base64 text that differ only in whitespace."""
    if not (path == "data" or path.endswith(".data")) or not isinstance(sent, str) or not isinstance(got, str):
        return False
    return "".join(sent.split()) == "".join(got.split())


class RawNumber(str):
    """A JSON decimal kept as its literal text (FHIR requires decimal precision to survive)."""


def _is_number(v):
    return isinstance(v, (int, float, RawNumber)) and not isinstance(v, bool)


def numbers_equal(a, b):
    import decimal
    try:
        da, db = decimal.Decimal(str(a)), decimal.Decimal(str(b))
    except decimal.InvalidOperation:
        return str(a) == str(b)
    # same value and same precision (1.50 != 1.5 in FHIR)
    return da == db and da.as_tuple().exponent == db.as_tuple().exponent


def _short(v):
    s = repr(v) if not isinstance(v, RawNumber) else str(v)
    return s if len(s) <= 80 else s[:80] + "..."


# ---------------------------------------------------------------------------------------
# Setup helpers
# ---------------------------------------------------------------------------------------
def create_patient(ctx, nhs=None, **kw):
    """POST a fresh test Patient; returns (nhs, body).  Fails the check as a setup error."""
    nhs = nhs or ctx.fresh_nhs()
    res = patient(nhs, **kw)
    del res["id"]
    r = ctx.client.post("Patient", res)
    if r.status != 201:
        fail("setup: POST /Patient (NHS %s): expected 201, got %s" % (nhs, r.summary()))
    body = r.json()
    if not isinstance(body, dict):
        # return=minimal servers: read it back
        g = ctx.client.get("Patient/" + nhs)
        body = g.json() if g.status == 200 else {}
    return nhs, body


def current_version(ctx, path, what):
    """Read `path` and return (versionId, body); fails if it is not readable."""
    r = ctx.client.get(path)
    if r.status != 200:
        fail("%s: GET %s: expected 200, got %s" % (what, path, r.summary()))
    body = r.json() or {}
    return (body.get("meta") or {}).get("versionId"), body


def expect_unchanged(ctx, path, version, what, body=None):
    """After a refused write: the resource still has `version` (and, if given, `body`)."""
    v, got = current_version(ctx, path, what + " (verifying nothing changed)")
    if v != str(version):
        fail("%s: refused write changed %s: version now %r, was %r" % (what, path, v, version))
    if body is not None:
        d = first_difference(strip_meta(body), strip_meta(got))
        if d:
            fail("%s: refused write changed %s: %s" % (what, path, d))


def expect_absent(ctx, path, what):
    """After a refused create: `path` does not exist (404)."""
    r = ctx.client.get(path)
    if r.status != 404:
        fail("%s: refused write left %s readable or in a bad state: GET -> %s"
             % (what, path, r.summary()))


# ---------------------------------------------------------------------------------------
# History bundles
# ---------------------------------------------------------------------------------------
def entry_version(entry):
    """versionId of a history entry: from the resource, else from response.etag."""
    res = entry.get("resource")
    if isinstance(res, dict):
        v = (res.get("meta") or {}).get("versionId")
        if v is not None:
            return str(v)
    etag = (entry.get("response") or {}).get("etag")
    if isinstance(etag, str):
        m = WEAK_ETAG_RE.match(etag.strip())
        return m.group(1) if m else etag.strip('"')
    return None


def entry_time(entry):
    res = entry.get("resource")
    if isinstance(res, dict):
        lu = (res.get("meta") or {}).get("lastUpdated")
        if isinstance(lu, str) and INSTANT_RE.match(lu):
            return parse_instant(lu, "entry")
    lm = (entry.get("response") or {}).get("lastModified")
    if isinstance(lm, str) and INSTANT_RE.match(lm):
        return parse_instant(lm, "entry")
    return None


def entry_key(entry):
    """(type/id, version) identifying one history entry."""
    res = entry.get("resource")
    if isinstance(res, dict) and res.get("id"):
        ident = "%s/%s" % (res.get("resourceType"), res.get("id"))
    else:
        ident = entry.get("fullUrl") or (entry.get("request") or {}).get("url") or ""
        m = re.search(r"([A-Z][A-Za-z]+/[A-Za-z0-9\-\.]{1,64})(/_history/.*)?$", ident)
        ident = m.group(1) if m else ident
    return ident, entry_version(entry)


def check_history_bundle(bundle, what):
    """R4 rules for a history Bundle and its entries; returns the entries."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        fail("%s: not a Bundle" % what)
    if bundle.get("type") != "history":
        fail("%s: Bundle.type %r, expected 'history'" % (what, bundle.get("type")))
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        fail("%s: Bundle.entry is not an array" % what)
    for i, e in enumerate(entries):
        w = "%s: entry[%d]" % (what, i)
        if not isinstance(e, dict):
            fail(w + " is not an object")
        full = e.get("fullUrl")
        if not isinstance(full, str) or not full:
            fail(w + " has no fullUrl")
        if "/_history/" in full:
            fail(w + " fullUrl %r is version specific (bdl-8)" % full)
        req, rsp = e.get("request"), e.get("response")
        if not isinstance(req, dict) or not req.get("method") or not req.get("url"):
            fail(w + " has no request with method and url (bdl-3)")
        if not isinstance(rsp, dict) or not rsp.get("status"):
            fail(w + " has no response with status (bdl-4)")
        if req["method"] == "DELETE":
            if "resource" in e:
                fail(w + " is a DELETE but carries a resource")
        else:
            res = e.get("resource")
            if not isinstance(res, dict) or not res.get("resourceType"):
                fail(w + " (%s) has no resource" % req["method"])
            if not full.endswith("/%s/%s" % (res.get("resourceType"), res.get("id"))) and \
                    full != "%s/%s" % (res.get("resourceType"), res.get("id")):
                fail(w + " fullUrl %r does not name %s/%s" % (full, res.get("resourceType"),
                                                              res.get("id")))
    return entries


def next_link(bundle):
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return link["url"]
    return None


def history_all(ctx, path, what, max_pages=500, max_page_entries=None):
    """GET a history URL and follow `next` links; returns (entries in order, page count).
    Fails on a non-200 page, an invalid bundle, a repeated next link or an entry seen twice."""
    entries, seen, seen_urls, pages = [], set(), set(), 0
    url = path
    while url:
        if url in seen_urls:
            fail("%s: next link loops back to %s" % (what, url))
        seen_urls.add(url)
        pages += 1
        if pages > max_pages:
            fail("%s: more than %d pages" % (what, max_pages))
        r = ctx.client.get(url)
        w = "%s (page %d)" % (what, pages)
        bundle = expect_resource(r, 200, "Bundle", w)
        page = check_history_bundle(bundle, w)
        if max_page_entries is not None and len(page) > max_page_entries:
            fail("%s: %d entries, more than _count=%d" % (w, len(page), max_page_entries))
        for e in page:
            k = entry_key(e)
            if k in seen:
                fail("%s: entry %s version %s appears twice across pages" % (what, k[0], k[1]))
            seen.add(k)
        entries.extend(page)
        url = next_link(bundle)
    return entries, pages


def sleep_past(seconds=1.1):
    """Let the clock move on, so timestamps of consecutive versions differ even at 1 s precision."""
    time.sleep(seconds)


__all__ = [n for n in dir() if not n.startswith("_")] + ["CheckFailed", "fail"]


def at_once(ctx, n, send):
    """Runs `send(client)` on `n` connections of their own at the same moment (each connected
    first, then all released by one barrier) and returns the answers in order; an exception a
    sender raised takes its answer's place, for the caller to report."""
    import threading
    from client import Client
    a = ctx.args
    clients = [Client(a.base_url, cacert=a.cacert, cert=a.cert, key=a.key, bearer=a.bearer, insecure=a.insecure,
                      timeout=a.timeout) for _ in range(n)]
    start, answers = threading.Barrier(n), [None] * n

    def run(k):
        try:
            clients[k].get("metadata")  # connected before the barrier, so that the requests do race
            start.wait(timeout=30)
            answers[k] = send(clients[k])
        except Exception as e:  # reported by the caller
            answers[k] = e
    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for client in clients:
        client.close()
    return answers
