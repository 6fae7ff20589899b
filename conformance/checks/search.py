"""Search (https://hl7.org/fhir/R4/search.html): parameter types with their modifiers and prefixes,
chains, _include/_revinclude, result parameters and paging, system and compartment search, $everything,
errors, and (with --identities) that search never shows what a read by the same caller would not.

Each check makes its own data, marked with the run token (code systems, family names, tags), and
searches so that only that data can match: the expected set is exact on a database with other data.
Data are made once a run per fixture and shared by the checks that use it. A check whose parameters,
includes, interactions or operations the CapabilityStatement does not declare is skipped (`SKIP`).
"""

import re
import urllib.parse

from . import CheckFailed, check, fail, gated_check, needs_identities
from .common import NHS_SYSTEM, expect_oo, expect_resource, expect_status, logical_subject, patient

UCUM = "http://unitsofmeasure.org"
SUBSETTED = ("http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "SUBSETTED")
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
FORM = "application/x-www-form-urlencoded"
LOCATION_ID_RE = re.compile(r"/([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})(/_history/[^/]+)?/?$")


# ---------------------------------------------------------------------------------------
# What the CapabilityStatement declares
# ---------------------------------------------------------------------------------------
def _declared(ctx):
    if getattr(ctx, "search_declared", None) is None:
        d = {"system": set(), "ops": set(), "types": {}}
        for rest in ctx.capability().get("rest") or []:
            if not isinstance(rest, dict) or rest.get("mode") != "server":
                continue
            d["system"] |= {i.get("code") for i in rest.get("interaction") or [] if isinstance(i, dict)}
            d["ops"] |= {o.get("name") for o in rest.get("operation") or [] if isinstance(o, dict)}
            for res in rest.get("resource") or []:
                if isinstance(res, dict) and isinstance(res.get("type"), str):
                    d["types"][res["type"]] = {
                        "interactions": {i.get("code") for i in res.get("interaction") or []},
                        "params": {p.get("name") for p in res.get("searchParam") or []},
                        "include": set(res.get("searchInclude") or []),
                        "revinclude": set(res.get("searchRevInclude") or []),
                        "ops": {o.get("name") for o in res.get("operation") or []}}
        ctx.search_declared = d
    return ctx.search_declared


def _needs(query):
    """What a query template relies on: [(kind, type, name)], read from the template itself."""
    path, _, qs = query.partition("?")
    parts = [p for p in path.split("/") if p]
    needs, rtype = [], None
    if not parts:
        needs.append(("system", None, "search-system"))
    elif parts[-1].startswith("$"):
        needs.append(("op", parts[0], parts[-1][1:]))
    else:
        rtype = parts[-1]
        needs.append(("search", rtype, "search-type"))
    for pair in filter(None, qs.split("&")):
        name, _, value = pair.partition("=")
        if name.startswith("_has:"):
            _, src, ref, inner = name.split(":", 3)
            needs += [("param", src, ref), ("param", src, inner.split(":")[0].split(".")[0])]
        elif name.startswith("_include"):
            if not value.endswith(":*"):
                needs.append(("include", value.split(":")[0], ":".join(value.split(":")[:2])))
        elif name == "_revinclude":
            needs.append(("revinclude", rtype, ":".join(value.split(":")[:2])))
        elif not name.startswith("_") and rtype:   # _id, _tag, _sort, _count...: not looked up
            cur = rtype
            for seg in name.split("."):   # a chain: subject:Patient.general-practitioner:Organization.name
                p, _, mod = seg.partition(":")
                needs.append(("param", cur, p))
                cur = mod if mod[:1].isupper() else None
                if cur is None:
                    break
    return needs


def _undeclared(ctx, needs):
    """Why the server cannot be asked this (a reason), or None if everything is declared."""
    d = _declared(ctx)
    for kind, rtype, name in needs:
        t = d["types"].get(rtype) or {"interactions": set(), "params": set(), "include": set(),
                                      "revinclude": set(), "ops": set()}
        if kind == "system" and name not in d["system"]:
            return "the CapabilityStatement does not declare search-system"
        if kind == "search" and "search-type" not in t["interactions"]:
            return "%s search-type not declared" % rtype
        if kind == "param" and name not in t["params"]:
            return "%s search parameter %r not declared" % (rtype, name)
        if kind == "include" and name not in t["include"]:
            return "_include=%s not in %s.searchInclude" % (name, rtype)
        if kind == "revinclude" and name not in t["revinclude"]:
            return "_revinclude=%s not in %s.searchRevInclude" % (name, rtype)
        if kind == "op" and name not in t["ops"] and name not in d["ops"]:
            return "operation $%s not declared for %s" % (name, rtype)
        if kind == "create" and "create" not in t["interactions"]:
            return "%s create not declared" % rtype
    return None


def search_check(name, *queries, uses=None, identities=False):
    """Register `fn(ctx)` as check `name`; skipped (a SKIP line, neither pass nor fail) when the
    CapabilityStatement does not declare what the query templates rely on, or the create
    interaction for the types its fixture `uses` makes."""
    needs = [("create", t, "create") for t in (FIXTURES[uses][1] if uses else ())]

    def why_not(ctx):
        return ((identities and needs_identities(ctx))
                or _undeclared(ctx, [n for q in queries for n in _needs(q)] + needs))
    return gated_check(name, why_not)


# ---------------------------------------------------------------------------------------
# Searching
# ---------------------------------------------------------------------------------------
def _encode(query):
    """Percent-encode a readable query (names keep : . _ - *, values keep , : / *)."""
    path, sep, qs = query.partition("?")
    pairs = []
    for pair in filter(None, qs.split("&")):
        k, _, v = pair.partition("=")
        pairs.append(urllib.parse.quote(k, safe=":._-*$") + "=" + urllib.parse.quote(v, safe=",:/*"))
    return path + sep + "&".join(pairs)


def link(bundle, *relations):
    for lk in bundle.get("link") or []:
        if isinstance(lk, dict) and lk.get("relation") in relations and lk.get("url"):
            return lk["url"]
    return None


class Found:
    """A search followed through its `next` links: match and include entries as 'Type/id'."""
    def __init__(self):
        self.match, self.include, self.pages, self.resources = [], [], [], {}
        self.first = None

    def page_keys(self, i):
        return [_key(e["resource"]) for e in self.pages[i].get("entry") or [] if _mode(e) == "match"]


def _key(res):
    return "%s/%s" % (res.get("resourceType"), res.get("id"))


def _mode(entry):
    return (entry.get("search") or {}).get("mode") or "match"


def search(ctx, query, client=None, headers=None, form=None, max_pages=60, max_entries=None):
    """GET `query` (base-relative, readable, e.g. 'Observation?code=a|b'), or POST `form` to it,
    and follow `next` links to the end. Fails on a non-200 page, a Bundle that is not a searchset,
    an entry without a resource, a match seen twice, a looping next link, a page over `max_entries`."""
    c = client or ctx.client
    what = "%s /%s" % ("POST" if form is not None else "GET", query + ("  [form %s]" % form if form else ""))
    target = _encode(query)
    if target.startswith("?"):
        target = c.base_url + target
    if form is not None:
        body = "&".join(urllib.parse.quote(k, safe=":._-*") + "=" + urllib.parse.quote(v, safe=",:")
                        for k, _, v in (p.partition("=") for p in form.split("&")))
        r = c.request("POST", target, body=body, headers=dict(headers or {}, **{"Content-Type": FORM}))
    else:
        r = c.get(target, headers=headers)
    found, seen_urls = Found(), set()
    while True:
        w = "%s (page %d)" % (what, len(found.pages) + 1)
        bundle = expect_resource(r, 200, "Bundle", w)
        if bundle.get("type") != "searchset":
            fail("%s: Bundle.type %r, expected 'searchset'" % (w, bundle.get("type")))
        entries = bundle.get("entry") or []
        on_page = len([e for e in entries if isinstance(e, dict) and _mode(e) == "match"])
        if max_entries is not None and on_page > max_entries:
            fail("%s: %d matches on one page, more than _count=%d" % (w, on_page, max_entries))
        for i, e in enumerate(entries):
            if isinstance(e, dict) and _mode(e) == "outcome":
                continue   # an OperationOutcome with warnings about the search
            res = e.get("resource") if isinstance(e, dict) else None
            if not isinstance(res, dict) or not res.get("resourceType") or not res.get("id"):
                fail("%s: entry[%d] has no resource with resourceType and id" % (w, i))
            k, mode = _key(res), _mode(e)
            if mode == "match":
                if k in found.match:
                    fail("%s: %s matched twice (across pages)" % (what, k))
                found.match.append(k)
            elif mode == "include":
                if k not in found.include:
                    found.include.append(k)
            else:
                fail("%s: entry[%d].search.mode %r" % (w, i, mode))
            found.resources[k] = res
        found.pages.append(bundle)
        found.first = found.first or bundle
        nxt = link(bundle, "next")
        if not nxt:
            return found
        if nxt in seen_urls:
            fail("%s: next link loops back to %s" % (what, nxt))
        seen_urls.add(nxt)
        if len(found.pages) >= max_pages:
            fail("%s: more than %d pages" % (what, max_pages))
        r = c.get(nxt)


# ---------------------------------------------------------------------------------------
# Test data
# ---------------------------------------------------------------------------------------
def _create(ctx, res, what, client=None):
    """POST a resource (its id dropped); returns the id the server gave it."""
    c = client or ctx.client
    body = {k: v for k, v in res.items() if k != "id"}
    r = c.post(res["resourceType"], body)
    if r.status != 201:
        fail("%s: POST /%s: expected 201, got %s" % (what, res["resourceType"], r.summary()))
    b = r.json()
    if isinstance(b, dict) and b.get("id"):
        return b["id"]
    m = LOCATION_ID_RE.search(r.header("Location") or "")
    if not m:
        fail("%s: POST /%s: 201 without a body id or a Location" % (what, res["resourceType"]))
    return m.group(2)


def _observation(subject_id, system, code, **extra):
    obs = {"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": system, "code": code}] if system else [{"code": code}]},
           "subject": {"reference": "Patient/" + subject_id}}
    obs.update(extra)
    return obs


def _quantity(value, code, system=UCUM):
    return {"valueQuantity": {"value": value, "unit": code, "system": system, "code": code}}


class Fixture:
    """Resources made for a group of checks: label -> 'Type/id', and the values templates use
    ({S} the run's code system, {tok} the run token, {label} the id of what a label names)."""
    def __init__(self, ctx):
        self.ctx = ctx
        self.keys = {}
        tok = ctx.run_token
        self.vars = {"tok": tok, "S": "http://example.org/fhir/conformance-%s/code" % tok,
                     "S2": "http://example.org/fhir/conformance-%s/other" % tok,
                     "ID": "http://example.org/fhir/conformance-%s/id" % tok,
                     "TAG": "http://example.org/fhir/conformance-%s/tag" % tok,
                     "URL": "http://example.org/fhir/conformance-%s/Questionnaire/q" % tok,
                     "NHS": NHS_SYSTEM}

    def add(self, label, res, client=None):
        rid = _create(self.ctx, res, "setup (%s)" % label, client)
        self.keys[label] = "%s/%s" % (res["resourceType"], rid)
        self.vars[label] = rid
        return rid

    def patient(self, label, family, given=("Test",), birth="1980-02-29", **extra):
        nhs = self.ctx.fresh_nhs()
        res = patient(nhs, family=family, birth=birth)
        res["name"][0]["given"] = list(given)
        if birth is None:
            del res["birthDate"]
        res.update(extra)
        self.vars[label + "_nhs"] = nhs
        return self.add(label, res)

    def fmt(self, s):
        return s.format(**self.vars)

    def want(self, labels):
        return [self.keys[lb] for lb in self.fmt(labels).split()]

    def names(self, keys):
        back = {v: k for k, v in self.keys.items()}
        shown = [back.get(k, k) for k in keys]
        return ", ".join(shown[:6]) + (" (+%d more)" % (len(shown) - 6) if len(shown) > 6 else "")


FIXTURES = {}   # name -> (builder, the types it creates)


def fixture(*creates):
    def deco(fn):
        FIXTURES[fn.__name__] = (fn, creates)
        return fn
    return deco


def _fixture(ctx, name):
    """The fixture's data, made on first use in this run; a failed setup fails every user of it."""
    cache = ctx.__dict__.setdefault("search_fixtures", {})
    if name not in cache:
        f = Fixture(ctx)
        try:
            FIXTURES[name][0](ctx, f)
            cache[name] = f
        except CheckFailed as e:
            cache[name] = e
    if isinstance(cache[name], CheckFailed):
        fail(str(cache[name]))
    return cache[name]


def expect_set(got, want, f, what):
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    if missing or extra:
        fail("%s: %s%s%s" % (what, "missing %s" % f.names(missing) if missing else "",
                             "; " if missing and extra else "",
                             "unexpected %s" % f.names(extra) if extra else ""))


def matches(name, fixture_name, *cases):
    """A check that each (query template, expected labels) finds exactly those resources."""
    @search_check(name, *[q for q, _ in cases], uses=fixture_name)
    def run(ctx):
        f = _fixture(ctx, fixture_name)
        for q, labels in cases:
            query = f.fmt(q)
            expect_set(search(ctx, query).match, f.want(labels), f, "GET /" + query)
    return run


# ---------------------------------------------------------------------------------------
# token
# ---------------------------------------------------------------------------------------
@fixture("Patient", "Observation")
def token(ctx, f):
    p = f.patient("P", "Tok" + ctx.run_token)
    S, S2, ID, tok = f.vars["S"], f.vars["S2"], f.vars["ID"], ctx.run_token
    f.add("a", dict(_observation(p, S, "a", identifier=[{"system": ID, "value": "1"}]),
                    code={"coding": [{"system": S, "code": "a", "display": "Alpha reading"}]}))
    f.add("b", dict(_observation(p, S, "b", identifier=[{"system": ID, "value": "2"}]),
                    code={"coding": [{"system": S, "code": "b"}], "text": "Beta reading"}))
    f.add("c", _observation(p, None, tok + "-c"))
    f.add("d", _observation(p, S2, tok + "-c"))


matches("search.token.system-code", "token", ("Observation?code={S}|a", "a"))
matches("search.token.code", "token", ("Observation?code={tok}-c", "c d"))
matches("search.token.no-system", "token", ("Observation?code=|{tok}-c", "c"))
matches("search.token.system-any-code", "token", ("Observation?code={S}|", "a b"))
matches("search.token.not", "token", ("Observation?patient={P}&code:not={S}|a", "b c d"))
matches("search.token.text", "token", ("Observation?patient={P}&code:text=alpha", "a"),
        ("Observation?patient={P}&code:text=BETA", "b"))
matches("search.token.identifier", "token", ("Observation?identifier={ID}|1", "a"),
        ("Patient?identifier={NHS}|{P_nhs}", "P"))
matches("search.token.or", "token", ("Observation?patient={P}&code={S}|a,|{tok}-c", "a c"))


# ---------------------------------------------------------------------------------------
# string
# ---------------------------------------------------------------------------------------
@fixture("Patient")
def string(ctx, f):
    base = "Str" + ctx.run_token
    f.vars["F"] = base
    f.vars["F_upper"] = base.upper()
    f.vars["F_mid"] = base[1:]
    f.patient("s1", base + "M\u00fcller")
    f.patient("s2", base + "Muller")
    f.patient("s3", base + "Mullins")
    f.patient("s4", "Van" + base + "Muller")


matches("search.string.starts-with", "string", ("Patient?family={F}", "s1 s2 s3"),
        ("Patient?family={F}mull", "s1 s2 s3"))
matches("search.string.case-insensitive", "string", ("Patient?family={F_upper}MULLI", "s3"))
matches("search.string.accent-insensitive", "string", ("Patient?family={F}muller", "s1 s2"),
        ("Patient?family={F}M\u00dcLLER", "s1 s2"))
matches("search.string.exact", "string", ("Patient?family:exact={F}M\u00fcller", "s1"),
        ("Patient?family:exact={F}muller", ""), ("Patient?family:exact={F}", ""))
matches("search.string.contains", "string", ("Patient?family:contains={F_mid}", "s1 s2 s3 s4"),
        ("Patient?family={F_mid}", ""))


# ---------------------------------------------------------------------------------------
# date: birthdate (date of year, month, day precision) and Observation date (dateTime, Period, date)
# ---------------------------------------------------------------------------------------
@fixture("Patient")
def birthdate(ctx, f):
    fam = f.vars["F"] = "Dat" + ctx.run_token
    for label, birth in (("Y1970", "1970"), ("M197006", "1970-06"), ("D19700615", "1970-06-15"),
                         ("D19710302", "1971-03-02"), ("D19691231", "1969-12-31")):
        f.patient(label, fam, birth=birth)


_BD = "Patient?family={F}&birthdate="
matches("search.date.birthdate.eq", "birthdate", (_BD + "1970", "Y1970 M197006 D19700615"),
        (_BD + "eq1970-06", "M197006 D19700615"), (_BD + "1970-06-15", "D19700615"))
matches("search.date.birthdate.ne", "birthdate", (_BD + "ne1970-06", "Y1970 D19710302 D19691231"))
matches("search.date.birthdate.gt", "birthdate", (_BD + "gt1970-06", "Y1970 D19710302"))
matches("search.date.birthdate.lt", "birthdate", (_BD + "lt1970-06", "Y1970 D19691231"))
matches("search.date.birthdate.ge", "birthdate", (_BD + "ge1970-06-15", "Y1970 M197006 D19700615 D19710302"))
matches("search.date.birthdate.le", "birthdate", (_BD + "le1970-06", "Y1970 M197006 D19700615 D19691231"))
matches("search.date.birthdate.sa", "birthdate", (_BD + "sa1970-06", "D19710302"))
matches("search.date.birthdate.eb", "birthdate", (_BD + "eb1970", "D19691231"))


@fixture("Patient", "Observation")
def obsdate(ctx, f):
    p = f.patient("Q", "Obd" + ctx.run_token)
    S = f.vars["S"]
    # Instants at noon UTC stay on their day in any server time zone within +-11 h.
    f.add("instant10", _observation(p, S, "date", effectiveDateTime="2024-03-10T12:00:00Z"))
    f.add("period10to12", _observation(p, S, "date", effectivePeriod={
        "start": "2024-03-10T12:00:00Z", "end": "2024-03-12T12:00:00Z"}))
    f.add("day11", _observation(p, S, "date", effectiveDateTime="2024-03-11"))
    f.add("instant15", _observation(p, S, "date", effectiveDateTime="2024-03-15T12:00:00Z"))


_OD = "Observation?patient={Q}&date="
matches("search.date.observation.eq", "obsdate", (_OD + "2024-03", "instant10 period10to12 day11 instant15"),
        (_OD + "eq2024-03-11", "day11"), (_OD + "2024-03-10T12:00:00Z", "instant10"))
matches("search.date.observation.ne", "obsdate", (_OD + "ne2024-03-11", "instant10 period10to12 instant15"))
matches("search.date.observation.gt", "obsdate", (_OD + "gt2024-03-11", "period10to12 instant15"))
matches("search.date.observation.lt", "obsdate", (_OD + "lt2024-03-11", "instant10 period10to12"))
matches("search.date.observation.ge", "obsdate", (_OD + "ge2024-03-11", "period10to12 day11 instant15"))
matches("search.date.observation.le", "obsdate", (_OD + "le2024-03-11", "instant10 period10to12 day11"))
matches("search.date.observation.sa", "obsdate", (_OD + "sa2024-03-11", "instant15"))
matches("search.date.observation.eb", "obsdate", (_OD + "eb2024-03-11", "instant10"))
matches("search.and.date-range", "obsdate",
        (_OD + "ge2024-03-10&date=le2024-03-11", "instant10 period10to12 day11"))


# ---------------------------------------------------------------------------------------
# quantity
# ---------------------------------------------------------------------------------------
@fixture("Patient", "Observation")
def quantity(ctx, f):
    p = f.patient("R", "Qty" + ctx.run_token)
    S = f.vars["S"]
    for label, value, unit in (("mg5_4", 5.4, "mg"), ("mg5_5", 5.5, "mg"), ("mg100", 100, "mg"),
                               ("mg95", 95, "mg"), ("mg80", 80, "mg"), ("mL7", 7, "mL")):
        f.add(label, _observation(p, S, "qty", **_quantity(value, unit)))


_VQ = "Observation?patient={R}&value-quantity="
matches("search.quantity.gt", "quantity", (_VQ + "gt5.4|" + UCUM + "|mg", "mg5_5 mg100 mg95 mg80"))
matches("search.quantity.eq", "quantity", (_VQ + "5.4|" + UCUM + "|mg", "mg5_4"),
        (_VQ + "7|" + UCUM + "|mL", "mL7"))
matches("search.quantity.lt-code-only", "quantity", (_VQ + "lt90||mg", "mg5_4 mg5_5 mg80"))
matches("search.quantity.le", "quantity", (_VQ + "le5.5|" + UCUM + "|mg", "mg5_4 mg5_5"))
matches("search.quantity.ap", "quantity", (_VQ + "ap100|" + UCUM + "|mg", "mg100 mg95"))


# ---------------------------------------------------------------------------------------
# reference
# ---------------------------------------------------------------------------------------
@fixture("Patient", "Observation")
def reference(ctx, f):
    p1 = f.patient("P1", "Ref" + ctx.run_token)
    p2 = f.patient("P2", "Ref" + ctx.run_token)
    S = f.vars["S"]
    f.add("literal", _observation(p1, S, "ref"))
    f.add("logical", dict(_observation(p1, S, "ref"), subject=logical_subject(f.vars["P1_nhs"])))
    f.add("other", _observation(p2, S, "ref"))
    # A server may resolve a logical reference to its target (caregate does): then it is Patient/P1's too.
    r = ctx.client.get(f.keys["logical"])
    expect_status(r, 200, "setup: read back the logically referenced Observation")
    ref = ((r.json() or {}).get("subject") or {}).get("reference")
    resolved = ref in ("Patient/" + p1, ctx.client.url("Patient/" + p1))
    f.vars["P1_OBS"] = "literal logical" if resolved else "literal"


_RF = "Observation?code={S}|ref&"
matches("search.reference.type-id", "reference", (_RF + "subject=Patient/{P1}", "{P1_OBS}"))
matches("search.reference.patient-id", "reference", (_RF + "patient={P1}", "{P1_OBS}"))
matches("search.reference.type-modifier", "reference", (_RF + "subject:Patient={P1}", "{P1_OBS}"))
matches("search.reference.identifier", "reference", (_RF + "subject:identifier={NHS}|{P1_nhs}", "logical"))
matches("search.reference.or", "reference",
        (_RF + "subject=Patient/{P1},Patient/{P2}", "{P1_OBS} other"))


# ---------------------------------------------------------------------------------------
# uri, :missing, AND/OR of strings
# ---------------------------------------------------------------------------------------
@fixture("Questionnaire")
def uri(ctx, f):
    f.add("q", {"resourceType": "Questionnaire", "status": "active", "url": f.vars["URL"]})
    f.add("q_sub", {"resourceType": "Questionnaire", "status": "active", "url": f.vars["URL"] + "/sub"})


matches("search.uri.exact", "uri", ("Questionnaire?url={URL}", "q"))
matches("search.uri.below", "uri", ("Questionnaire?url:below={URL}", "q q_sub"))
matches("search.uri.above", "uri", ("Questionnaire?url:above={URL}/sub/deeper", "q q_sub"))


@fixture("Patient")
def missing(ctx, f):
    fam = f.vars["F"] = "Mis" + ctx.run_token
    f.patient("born", fam)
    f.patient("unborn", fam, birth=None)


matches("search.missing.true", "missing", ("Patient?family={F}&birthdate:missing=true", "unborn"))
matches("search.missing.false", "missing", ("Patient?family={F}&birthdate:missing=false", "born"))


@fixture("Patient")
def andor(ctx, f):
    fam = f.vars["F"] = "And" + ctx.run_token
    f.patient("both", fam, given=("Alpha", "Beta"))
    f.patient("alpha", fam, given=("Alpha",))
    f.patient("beta", fam, given=("Beta",))


matches("search.or.given", "andor", ("Patient?family={F}&given=Alpha,Beta", "both alpha beta"))
matches("search.and.given-repeat", "andor", ("Patient?family={F}&given=Alpha&given=Beta", "both"))


# ---------------------------------------------------------------------------------------
# chains and reverse chains
# ---------------------------------------------------------------------------------------
@fixture("Organization", "Patient", "Observation")
def chain(ctx, f):
    tok = ctx.run_token
    f.vars.update(F1="Chn%sOne" % tok, F2="Chn%sTwo" % tok, ORG1="Org%sAlpha" % tok)
    o1 = f.add("org1", {"resourceType": "Organization", "name": f.vars["ORG1"]})
    o2 = f.add("org2", {"resourceType": "Organization", "name": "Org%sBeta" % tok})
    p1 = f.patient("c1", f.vars["F1"], generalPractitioner=[{"reference": "Organization/" + o1}])
    p2 = f.patient("c2", f.vars["F2"], generalPractitioner=[{"reference": "Organization/" + o2}])
    f.add("o1", _observation(p1, f.vars["S"], "chain-one"))
    f.add("o2", _observation(p2, f.vars["S"], "chain-two"))


matches("search.chain.typed", "chain", ("Observation?subject:Patient.name={F1}", "o1"))
matches("search.chain.untyped", "chain", ("Observation?patient.family={F2}", "o2"))
matches("search.chain.identifier", "chain", ("Observation?subject:Patient.identifier={NHS}|{c1_nhs}", "o1"))
matches("search.chain.two-levels", "chain",
        ("Observation?subject:Patient.general-practitioner:Organization.name={ORG1}", "o1"))
matches("search.chain.reverse", "chain", ("Patient?_has:Observation:patient:code={S}|chain-one", "c1"))


# ---------------------------------------------------------------------------------------
# _include, _revinclude, :iterate, *
# ---------------------------------------------------------------------------------------
@fixture("Organization", "Patient", "Observation")
def include(ctx, f):
    tok = ctx.run_token
    gp = f.add("gp", {"resourceType": "Organization", "name": "Inc%sGp" % tok})
    perf = f.add("performer", {"resourceType": "Organization", "name": "Inc%sLab" % tok})
    p1 = f.patient("ip1", "Inc" + tok, generalPractitioner=[{"reference": "Organization/" + gp}])
    p2 = f.patient("ip2", "Inc" + tok)
    S = f.vars["S"]
    f.add("x1", _observation(p1, S, "inc", performer=[{"reference": "Organization/" + perf}]))
    f.add("x2", _observation(p2, S, "inc"))
    f.add("x3", _observation(p1, S, "inc-other"))


def includes(name, q, match_labels, include_labels):
    @search_check(name, q, uses="include")
    def run(ctx):
        f = _fixture(ctx, "include")
        query = f.fmt(q)
        found = search(ctx, query)
        w = "GET /" + query
        expect_set(found.match, f.want(match_labels), f, w + " (entries with search.mode match)")
        expect_set(found.include, f.want(include_labels), f, w + " (entries with search.mode include)")
        total = found.first.get("total")
        if total is not None and total != len(found.match):
            fail("%s: total %r counts more than the %d matches (includes are not counted)"
                 % (w, total, len(found.match)))


includes("search.include.forward", "Observation?code={S}|inc&_include=Observation:subject", "x1 x2", "ip1 ip2")
includes("search.include.reverse", "Patient?_id={ip1}&_revinclude=Observation:subject", "ip1", "x1 x3")
includes("search.include.iterate",
         "Observation?code={S}|inc&_include=Observation:subject&_include:iterate=Patient:general-practitioner",
         "x1 x2", "ip1 ip2 gp")
includes("search.include.wildcard", "Observation?code={S}|inc&_include=Observation:*", "x1 x2",
         "ip1 ip2 performer")


# ---------------------------------------------------------------------------------------
# _sort, _count and paging, _total, _summary, _elements
# ---------------------------------------------------------------------------------------
@fixture("Patient")
def sort(ctx, f):
    fam = f.vars["F"] = "Srt" + ctx.run_token
    f.patient("B1990", fam + "B", birth="1990-01-01")
    f.patient("A1985", fam + "A", birth="1985-01-01")
    f.patient("A1995", fam + "A", birth="1995-01-01")
    f.patient("C1980", fam + "C", birth="1980-01-01")


def ordered(name, q, labels):
    @search_check(name, q, uses="sort")
    def run(ctx):
        f = _fixture(ctx, "sort")
        query = f.fmt(q)
        got, want = search(ctx, query).match, f.want(labels)
        if got != want:
            fail("GET /%s: order %s, expected %s" % (query, f.names(got), f.names(want)))


ordered("search.sort.ascending", "Patient?family={F}&_sort=birthdate", "C1980 A1985 B1990 A1995")
ordered("search.sort.descending", "Patient?family={F}&_sort=-birthdate&_count=2", "A1995 B1990 A1985 C1980")
ordered("search.sort.two-keys", "Patient?family={F}&_sort=family,-birthdate", "A1995 A1985 B1990 C1980")


PAGE_ITEMS = 7


@fixture("Patient", "Observation")
def paging(ctx, f):
    p = f.patient("pg", "Pag" + ctx.run_token)
    for i in range(PAGE_ITEMS):
        f.add("n%d" % i, _observation(p, f.vars["S"], "page",
                                       effectiveDateTime="2024-02-%02dT12:00:00Z" % (i + 1),
                                       note=[{"text": "a note, which is not a summary element"}],
                                       **_quantity(i + 1, "mg")))
    f.vars["ALL"] = " ".join("n%d" % i for i in range(PAGE_ITEMS))


_PG = "Observation?code={S}|page"


@search_check("search.paging.count", _PG, uses="paging")
def paging_count(ctx):
    f = _fixture(ctx, "paging")
    query = f.fmt(_PG + "&_count=3")
    found = search(ctx, query, max_entries=3)
    if not link(found.first, "next"):
        fail("GET /%s: no next link on the first page although %d match" % (query, PAGE_ITEMS))
    expect_set(found.match, f.want("{ALL}"), f, "GET /%s and its next links" % query)


@search_check("search.paging.previous", _PG, uses="paging")
def paging_previous(ctx):
    f = _fixture(ctx, "paging")
    query = f.fmt(_PG + "&_count=3")
    found = search(ctx, query, max_entries=3)
    if len(found.pages) < 2:
        fail("GET /%s: %d page(s) for %d matches" % (query, len(found.pages), PAGE_ITEMS))
    prev = link(found.pages[1], "previous", "prev")
    if not prev:
        ctx.log("search.paging.previous: page 2 has no previous link (optional)")
        return
    r = ctx.client.get(prev)
    b = expect_resource(r, 200, "Bundle", "GET previous link of page 2")
    back = [_key(e["resource"]) for e in b.get("entry") or [] if _mode(e) == "match"]
    if back != found.page_keys(0):
        fail("the previous link of page 2 gives %s, page 1 was %s"
             % (f.names(back), f.names(found.page_keys(0))))


@search_check("search.total.accurate", _PG, uses="paging")
def total_accurate(ctx):
    f = _fixture(ctx, "paging")
    query = f.fmt(_PG + "&_total=accurate&_count=3")
    found = search(ctx, query)
    if found.first.get("total") != PAGE_ITEMS or len(found.match) != PAGE_ITEMS:
        fail("GET /%s: total %r and %d matches over the pages, expected %d"
             % (query, found.first.get("total"), len(found.match), PAGE_ITEMS))


@search_check("search.summary.count", _PG, uses="paging")
def summary_count(ctx):
    f = _fixture(ctx, "paging")
    query = f.fmt(_PG + "&_summary=count")
    b = expect_resource(ctx.client.get(_encode(query)), 200, "Bundle", "GET /" + query)
    if b.get("total") != PAGE_ITEMS or b.get("entry"):
        fail("GET /%s: total %r and %d entries, expected total %d and no entries"
             % (query, b.get("total"), len(b.get("entry") or []), PAGE_ITEMS))


def _subsetted(res):
    return any(t.get("system") == SUBSETTED[0] and t.get("code") == SUBSETTED[1]
               for t in (res.get("meta") or {}).get("tag") or [])


def subset_check(name, suffix, kept, gone):
    @search_check(name, _PG, uses="paging")
    def run(ctx):
        f = _fixture(ctx, "paging")
        query = f.fmt(_PG + suffix)
        found = search(ctx, query)
        expect_set(found.match, f.want("{ALL}"), f, "GET /" + query)
        for k in found.match:
            res = found.resources[k]
            lost = [e for e in kept if e not in res]
            kept_too = [e for e in gone if e in res]
            if lost or kept_too or not _subsetted(res):
                fail("GET /%s: %s%s%s%s" % (query, k, " lacks %s" % lost if lost else "",
                                            " still has %s" % kept_too if kept_too else "",
                                            "" if _subsetted(res) else " has no meta.tag SUBSETTED"))


subset_check("search.summary.true", "&_summary=true", ("status", "code", "subject", "valueQuantity"),
             ("note",))
subset_check("search.elements", "&_elements=status,code", ("status", "code"),
             ("note", "subject", "valueQuantity", "effectiveDateTime"))


# ---------------------------------------------------------------------------------------
# system, POST, compartment search, $everything
# ---------------------------------------------------------------------------------------
@fixture("Patient", "Observation", "Condition")
def system(ctx, f):
    tag = {"tag": [{"system": f.vars["TAG"], "code": ctx.run_token}]}
    p = f.patient("sp", "Sys" + ctx.run_token, meta=tag)
    f.add("so", _observation(p, f.vars["S"], "sys", meta=tag))
    f.add("sc", {"resourceType": "Condition", "meta": tag, "code": {"text": "a condition"},
                 "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
                 "subject": {"reference": "Patient/" + p}})


matches("search.system.type", "system", ("?_type=Patient,Observation&_tag={TAG}|{tok}", "sp so"))
matches("search.system.all-types", "system", ("?_tag={TAG}|{tok}", "sp so sc"))


@search_check("search.post", "Observation?patient=&code=", uses="token")
def post_search(ctx):
    f = _fixture(ctx, "token")
    form = f.fmt("patient={P}&code={S}|a,{S}|b")
    expect_set(search(ctx, "Observation/_search", form=form).match, f.want("a b"), f,
               "POST /Observation/_search %s" % form)


matches("search.compartment", "token", ("Patient/{P}/Observation", "a b c d"),
        ("Patient/{P}/Observation?code={S}|a", "a"))


@fixture("Patient", "Observation", "Condition", "Encounter")
def everything(ctx, f):
    tok = ctx.run_token
    p = f.patient("E", "Evr" + tok)
    for i in range(3):
        f.add("e%d" % i, _observation(p, f.vars["S"], "evr"))
    f.add("cond", {"resourceType": "Condition", "code": {"text": "a condition"},
                   "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
                   "subject": {"reference": "Patient/" + p}})
    f.add("enc", {"resourceType": "Encounter", "status": "finished", "subject": {"reference": "Patient/" + p},
                  "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}})
    other = f.patient("E2", "Evr" + tok)
    f.add("elsewhere", _observation(other, f.vars["S"], "evr"))


def _everything_set(found, f, want, what, patient_optional=False):
    # Only the server writes AuditEvents (of these very reads): not what this check is about. With
    # _type, the Patient may still come back: "at a minimum, the patient resource itself is returned".
    got = [k for k in found.match + found.include if not k.startswith("AuditEvent/")
           and not (patient_optional and k == f.keys["E"])]
    expect_set(got, f.want(want), f, what)


@search_check("search.everything", "Patient/$everything", uses="everything")
def everything_all(ctx):
    f = _fixture(ctx, "everything")
    q = f.fmt("Patient/{E}/$everything")
    _everything_set(search(ctx, q), f, "E e0 e1 e2 cond enc", "GET /" + q)


@search_check("search.everything.type", "Patient/$everything", uses="everything")
def everything_type(ctx):
    f = _fixture(ctx, "everything")
    q = f.fmt("Patient/{E}/$everything?_type=Observation")
    _everything_set(search(ctx, q), f, "e0 e1 e2", "GET /" + q, patient_optional=True)


@search_check("search.everything.count", "Patient/$everything", uses="everything")
def everything_count(ctx):
    f = _fixture(ctx, "everything")
    q = f.fmt("Patient/{E}/$everything?_count=2")
    found = search(ctx, q, max_entries=2)
    if len(found.pages) < 3:
        fail("GET /%s: %d page(s) for 6 resources" % (q, len(found.pages)))
    _everything_set(found, f, "E e0 e1 e2 cond enc", "GET /%s and its next links" % q)


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------
def _oo_text(oo):
    out = []
    for i in oo.get("issue") or []:
        out += [i.get("diagnostics") or "", (i.get("details") or {}).get("text") or ""]
        out += list(i.get("expression") or []) + list(i.get("location") or [])
    return " ".join(str(s) for s in out)


@search_check("search.error.unknown-parameter", "Patient?family=")
def unknown_parameter(ctx):
    name = "cg-unknown-%s" % ctx.run_token
    q = "Patient?family=Err%s&%s=1" % (ctx.run_token, name)
    oo = expect_oo(ctx.client.get(_encode(q)), 400, "GET /" + q)
    if name not in _oo_text(oo):
        fail("GET /%s: the OperationOutcome does not name %r: %s" % (q, name, _oo_text(oo)[:200]))


@search_check("search.error.lenient", "Patient?family=")
def lenient(ctx):
    name = "cg-unknown-%s" % ctx.run_token
    q = "Patient?family=Err%s&%s=1" % (ctx.run_token, name)
    b = expect_resource(ctx.client.get(_encode(q), headers={"Prefer": "handling=lenient"}), 200, "Bundle",
                        "GET /%s with Prefer: handling=lenient" % q)
    self_link = link(b, "self")
    if not self_link or name in self_link or "family" not in self_link:
        fail("GET /%s with Prefer: handling=lenient: self link %r should keep family and drop %s"
             % (q, self_link, name))


def error_check(name, q, why):
    @search_check(name, q)
    def run(ctx):
        expect_oo(ctx.client.get(_encode(q)), 400, "GET /%s (%s)" % (q, why))


error_check("search.error.unknown-modifier", "Patient?family:cgbogus=Smith", "unknown modifier")
error_check("search.error.bad-date", "Patient?birthdate=1970-13-45", "month 13")
error_check("search.error.bad-date-text", "Patient?birthdate=gtyesterday", "not a date")
error_check("search.error.sort-unknown", "Patient?family=Smith&_sort=cg-no-such-parameter",
            "_sort on no parameter")


# ---------------------------------------------------------------------------------------
# Access (--identities, caregate's default policy): search shows nothing a read would not
# ---------------------------------------------------------------------------------------
@fixture()
def access(ctx, f):
    from .access import Callers
    who = f.who = Callers(ctx)
    tom = f.vars["X"] = ctx.fresh_nhs()
    res = patient(tom, rid=tom, family="Acc" + ctx.run_token)
    res["generalPractitioner"] = [{"reference": "Organization/A81001"}]
    r = who("system").put("Patient/" + tom, res)
    if r.status not in (200, 201):
        fail("setup: the system identity PUT /Patient/%s: %s" % (tom, r.summary()))
    f.keys["X"] = "Patient/" + tom
    f.add("episode", {"resourceType": "EpisodeOfCare", "status": "active",
                      "patient": {"reference": "Patient/" + tom},
                      "managingOrganization": {"reference": "Organization/8JK23"}}, who("system"))
    for label, status in (("active", "active"), ("resolved", "resolved")):
        f.add(label, {"resourceType": "Condition", "code": {"text": "a condition"},
                      "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": status}]},
                      "subject": {"reference": "Patient/" + tom}}, who("gp_clinician"))
    for label, category, writer in (("vitals", "vital-signs", "gp_clinician"),
                                    ("social", "social-history", "social_worker")):
        f.add(label, dict(_observation(tom, None, "access-" + label), category=[
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": category}]}]), who(writer))


ACCESS_QUERIES = ("Condition?patient={X}&_total=accurate",
                  "Observation?patient={X}&_include=Observation:subject",
                  "Patient?_id={X}&_revinclude=Condition:patient&_revinclude=Observation:patient",
                  "Patient?_id={X}&_has:Condition:patient:clinical-status=resolved",
                  "Patient/{X}/Condition",
                  "Patient/{X}/$everything")


@search_check("search.access.total", "Condition?patient=", identities=True)
def access_total(ctx):
    f = _fixture(ctx, "access")
    q = f.fmt("Condition?patient={X}&_total=accurate")
    found = search(ctx, q, client=f.who("social_worker"))
    w = "GET /%s as the social worker" % q
    expect_set(found.match, f.want("active"), f, w)
    if found.first.get("total") != 1:
        fail("%s: total %r, expected 1 (the resolved Condition is not the social worker's to see)"
             % (w, found.first.get("total")))


@search_check("search.access.has", "Patient?_has:Condition:patient:clinical-status=", identities=True)
def access_has(ctx):
    f = _fixture(ctx, "access")
    q = "Patient?_id={X}&_has:Condition:patient:clinical-status="
    for caller, status, want in (("gp_clinician", "resolved", "X"), ("social_worker", "active", "X"),
                                 ("social_worker", "resolved", "")):
        query = f.fmt(q + status)
        expect_set(search(ctx, query, client=f.who(caller)).match, f.want(want), f,
                   "GET /%s as %s" % (query, caller.replace("_", " ")))


@search_check("search.access.readable", *[q.replace("{X}", "") for q in ACCESS_QUERIES], identities=True)
def access_readable(ctx):
    f = _fixture(ctx, "access")
    problems = []
    for caller in ("gp_clinician", "social_worker", "gp_admin", "acute_clinician"):
        c = f.who(caller)
        for q in ACCESS_QUERIES:
            query = f.fmt(q)
            r = c.get(_encode(query))
            if r.status in (403, 404):
                expect_oo(r, (403, 404), "GET /%s as %s" % (query, caller))
                continue
            found = search(ctx, query, client=c)
            for k in found.match + found.include:
                got = c.get(k)
                if got.status != 200:
                    mode = "include" if k in found.include else "match"
                    problems.append("GET /%s as %s returns %s (%s), which a read answers %d"
                                    % (query, caller, f.names([k]), mode, got.status))
    if problems:
        fail("; ".join(problems[:6]) + (" (+%d more)" % (len(problems) - 6) if len(problems) > 6 else ""))
