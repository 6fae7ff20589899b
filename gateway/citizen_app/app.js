// The citizen app: a citizen (or a carer, acting for someone who named them) logs in through the SMART
// standalone launch with fhirclient, then sees the record as the care team shares it, adds a home
// reading or an "about me" answer, changes their sharing choices, names and revokes carers, and reads
// who accessed the record. Everything goes through the patient-facing FHIR API, whose rules decide
// what the app may see and do; the app only hides what it knows the API would refuse (a carer's
// view has no sharing choices or carers).
"use strict";

const PROVENANCE = "https://fhir.caregate.nhs.uk/CodeSystem/provenance";
const NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number";
const PROXY_ACCESS = "https://fhir.caregate.nhs.uk/CodeSystem/proxy-access";
const PROXY_BASIS = "https://fhir.caregate.nhs.uk/CodeSystem/proxy-basis";
const CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope";
const SCOPES = "openid fhirUser launch/patient offline_access patient/*.cruds";

const state = { client: null, self: "", actFor: "", subject: "", consents: [] };

const $ = (id) => document.getElementById(id);

function say(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.className = isError ? "error" : "note";
}

function show(id, visible) {
  $(id).hidden = !visible;
}

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  for (const child of children)
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  return node;
}

// Requests through fhirclient, with X-Act-For when a carer acts for someone.
function headers() {
  return state.actFor ? { "X-Act-For": state.actFor } : {};
}
function request(url, options = {}) {
  return state.client.request({ url, ...options, headers: { ...headers(), ...(options.headers || {}) } });
}
async function searchAll(url) {
  const bundle = await request(url);
  return (bundle.entry || []).map((entry) => entry.resource);
}
function create(resource) {
  return state.client.create(resource, { headers: headers() });
}
function update(resource) {
  return state.client.update(resource, { headers: headers() });
}

function refusal(error) {
  const status = error && error.status;
  if (status === 403) return "You do not have permission to do that.";
  if (status === 404) return "That part of the record could not be found.";
  if (status === 422) return "The record could not take that: please check what you entered.";
  return "Something went wrong. Please try again later.";
}

// ---- Login --------------------------------------------------------------------------------------

async function start() {
  $("log-in").addEventListener("click", logIn);
  $("log-out").addEventListener("click", logOut);
  $("choose-form").addEventListener("submit", chooseRecord);
  $("reading-form").addEventListener("submit", addReading);
  $("about-form").addEventListener("submit", addAboutMe);
  $("carer-form").addEventListener("submit", nameCarer);
  $("objection-toggle").addEventListener("click", () => toggleChoice("objection"));
  $("opt-out-toggle").addEventListener("click", () => toggleChoice("opt-out"));
  try {
    state.client = await FHIR.oauth2.ready();
  } catch (notLoggedIn) {
    show("welcome", true);
    return;
  }
  state.self = state.client.getPatientId();
  show("log-out", true);
  const chosen = sessionStorage.getItem("caregate-act-for");
  if (chosen !== null) return openRecord(chosen);
  show("choose", true);
  $("choose-title").focus();
}

async function logIn() {
  const config = await (await fetch("config.json")).json();
  await FHIR.oauth2.authorize({
    iss: config.fhirBaseUrl,
    clientId: config.clientId,
    scope: SCOPES,
    redirectUri: "./",
    pkceMode: "required",
  });
}

function logOut() {
  sessionStorage.clear();
  window.location.replace("./");
}

function chooseRecord(event) {
  event.preventDefault();
  const other = $("choose-other").checked;
  const nhs = $("act-for").value.replace(/\s/g, "");
  if (other && !/^[0-9]{10}$/.test(nhs)) {
    say("Enter the 10-digit NHS number of the person you care for.", true);
    $("act-for").focus();
    return;
  }
  const actFor = other && nhs !== state.self ? nhs : "";
  sessionStorage.setItem("caregate-act-for", actFor);
  openRecord(actFor);
}

// ---- The record ---------------------------------------------------------------------------------

async function openRecord(actFor) {
  state.actFor = actFor;
  state.subject = actFor || state.self;
  show("choose", false);
  say("Loading the record…");
  let patient;
  try {
    patient = await request(`Patient/${state.subject}`);
  } catch (error) {
    sessionStorage.removeItem("caregate-act-for");
    state.actFor = "";
    show("choose", true);
    say(actFor ? "You do not have permission to act for this person. They may have stopped it." : refusal(error), true);
    return;
  }
  const name = displayName(patient);
  $("record-title").textContent = actFor ? `${name}'s care record` : "Your care record";
  $("care-title").textContent = actFor ? `${name}'s care` : "Your care";
  $("about-submit").textContent = actFor ? `Add to ${name}'s record` : "Add to my record";
  $("acting-note").textContent = actFor
    ? `You are acting for ${name} as their carer. What you add is marked as added by you for them.`
    : "";
  show("acting-note", Boolean(actFor));
  // Sharing choices and carers are the citizen's own: a carer's view has neither.
  for (const id of ["sharing", "carers", "nav-sharing", "nav-carers"]) show(id, !actFor);
  show("record", true);
  await refresh();
  say(actFor ? `Showing ${name}'s record.` : "Showing your record.");
  $("record-title").setAttribute("tabindex", "-1");
  $("record-title").focus();
}

async function refresh() {
  await Promise.all([showCare(), actForOwn(showChoices), showAccessLog()]);
}

function actForOwn(show) {
  return state.actFor ? Promise.resolve() : show();
}

function displayName(patient) {
  const name = (patient.name || [])[0] || {};
  return [...(name.given || []), name.family].filter(Boolean).join(" ") || "This person";
}

function conceptText(concept) {
  if (!concept) return "";
  return concept.text || ((concept.coding || []).find((c) => c.display) || {}).display || "";
}

function hasTag(resource, code) {
  return ((resource.meta || {}).tag || []).some((t) => t.system === PROVENANCE && t.code === code);
}

function whoRecorded(resource) {
  if (hasTag(resource, "carer-contributed")) return "a carer, for the patient";
  if (hasTag(resource, "patient-contributed")) return "the patient";
  for (const key of ["recorder", "asserter", "requester", "author", "informationSource"]) {
    const ref = resource[key];
    if (ref && (ref.display || ref.reference)) return ref.display || ref.reference;
  }
  const performer = (resource.performer || [])[0];
  if (performer) return performer.display || performer.reference || "";
  return "the care team";
}

function whenRecorded(resource) {
  const when =
    resource.effectiveDateTime || resource.recordedDate || resource.authoredOn || resource.authored ||
    resource.start || (resource.period || {}).start || resource.onsetDateTime || (resource.meta || {}).lastUpdated;
  if (!when) return "";
  const date = new Date(when);
  return isNaN(date) ? when : date.toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric" });
}

function valueText(observation) {
  const q = observation.valueQuantity;
  if (q) return `${q.value} ${q.unit || q.code || ""}`.trim();
  if (observation.valueString) return observation.valueString;
  if (observation.valueCodeableConcept) return conceptText(observation.valueCodeableConcept);
  return "";
}

const CARE_LISTS = [
  { title: "Health problems", url: "Condition?patient={s}", text: (r) => conceptText(r.code) },
  { title: "Medicines", url: "MedicationRequest?patient={s}", text: (r) => conceptText(r.medicationCodeableConcept) || "A medicine" },
  { title: "Allergies", url: "AllergyIntolerance?patient={s}", text: (r) => conceptText(r.code) },
  { title: "Appointments", url: "Appointment?patient={s}", text: (r) => r.description || conceptText((r.serviceType || [])[0]) || "An appointment" },
  { title: "Care plans", url: "CarePlan?patient={s}", text: (r) => r.title || r.description || "A care plan" },
  {
    title: "Readings and results",
    url: "Observation?patient={s}&_sort=-date",
    text: (r) => [conceptText(r.code), valueText(r)].filter(Boolean).join(": "),
  },
  {
    title: "About me",
    url: "QuestionnaireResponse?patient={s}",
    text: (r) => ((((r.item || [])[0] || {}).answer || [])[0] || {}).valueString || "Answers to a questionnaire",
  },
];

async function showCare() {
  const lists = $("care-lists");
  lists.replaceChildren();
  const sections = await Promise.all(
    CARE_LISTS.map(async (list) => {
      let items;
      try {
        items = await searchAll(list.url.replace("{s}", state.subject));
      } catch (error) {
        // A carer whose grant opens part of the record is refused the rest: say so, not an error.
        return [list, null];
      }
      return [list, items];
    }),
  );
  for (const [list, items] of sections) {
    const id = "list-" + list.title.toLowerCase().replace(/[^a-z]+/g, "-");
    lists.append(el("h3", { id }, list.title));
    if (items === null) {
      lists.append(el("p", {}, "Not shared with you."));
      continue;
    }
    if (items.length === 0) {
      lists.append(el("p", {}, "Nothing recorded."));
      continue;
    }
    const ul = el("ul", { class: "items", "aria-labelledby": id });
    for (const resource of items) {
      const badge = hasTag(resource, "carer-contributed")
        ? el("span", { class: "badge" }, "Added by a carer")
        : hasTag(resource, "patient-contributed")
          ? el("span", { class: "badge" }, "Added by the patient")
          : null;
      ul.append(
        el(
          "li",
          { "data-type": resource.resourceType, "data-id": resource.id },
          el("strong", {}, list.text(resource) || resource.resourceType),
          " ",
          badge,
          el("span", { class: "meta" }, `Recorded by ${whoRecorded(resource)}${whenRecorded(resource) ? ", " + whenRecorded(resource) : ""}`),
        ),
      );
    }
    lists.append(ul);
  }
}

// ---- Adding to the record -----------------------------------------------------------------------

const READINGS = {
  "heart-rate": { code: "8867-4", display: "Heart rate", unit: "/min", ucum: "/min" },
  weight: { code: "29463-7", display: "Body weight", unit: "kg", ucum: "kg" },
  temperature: { code: "8310-5", display: "Body temperature", unit: "°C", ucum: "Cel" },
};

async function addReading(event) {
  event.preventDefault();
  const kind = READINGS[$("reading-kind").value];
  const value = Number($("reading-value").value.replace(",", "."));
  if (!Number.isFinite(value) || value <= 0) {
    say("Enter the reading as a number, for example 72.", true);
    $("reading-value").focus();
    return;
  }
  try {
    await create({
      resourceType: "Observation",
      status: "final",
      category: [{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/observation-category", code: "vital-signs" }] }],
      code: { coding: [{ system: "http://loinc.org", code: kind.code, display: kind.display }], text: kind.display },
      subject: { reference: `Patient/${state.subject}` },
      effectiveDateTime: new Date().toISOString(),
      valueQuantity: { value, unit: kind.unit, system: "http://unitsofmeasure.org", code: kind.ucum },
    });
  } catch (error) {
    say(refusal(error), true);
    return;
  }
  $("reading-form").reset();
  await refresh();
  say(`Your ${kind.display.toLowerCase()} reading was added to the record.`);
}

async function addAboutMe(event) {
  event.preventDefault();
  const text = $("about-text").value.trim();
  if (!text) {
    say("Write what matters to you first.", true);
    return;
  }
  try {
    await create({
      resourceType: "QuestionnaireResponse",
      status: "completed",
      subject: { reference: `Patient/${state.subject}` },
      authored: new Date().toISOString(),
      item: [{ linkId: "what-matters", text: "What matters to me", answer: [{ valueString: text }] }],
    });
  } catch (error) {
    say(refusal(error), true);
    return;
  }
  $("about-form").reset();
  await refresh();
  say("What matters to you was added to the record.");
}

// ---- Sharing choices ----------------------------------------------------------------------------

function scopeOf(consent) {
  return ((consent.scope || {}).coding || []).find((c) => c.system === CONSENT_SCOPE)?.code || "";
}
function codeIn(concepts, system) {
  for (const concept of [].concat(concepts || []))
    for (const coding of concept.coding || []) if (coding.system === system) return coding.code;
  return "";
}
function activeChoice(kind) {
  const scope = kind === "objection" ? "patient-privacy" : "research";
  return state.consents.find(
    (c) => c.status === "active" && scopeOf(c) === scope && (c.provision || {}).type === "deny",
  );
}

// The citizen's Consents, read once for both the sharing choices and the carers they grant.
async function showChoices() {
  state.consents = await searchAll(`Consent?patient=${state.subject}&_count=100`);
  showSharing();
  await showCarers();
}

function showSharing() {
  const objection = activeChoice("objection");
  $("objection-state").textContent = objection
    ? "You have objected to sharing: each organisation sees only what it recorded itself."
    : "Your record is shared with the people caring for you.";
  $("objection-toggle").textContent = objection ? "Withdraw my objection" : "Object to sharing";
  const optOut = activeChoice("opt-out");
  $("opt-out-state").textContent = optOut
    ? "You have opted out: your data is not used for planning or research."
    : "Your data may be used, without your name or NHS number, to plan services and for research.";
  $("opt-out-toggle").textContent = optOut ? "Withdraw my opt-out" : "Opt out of planning and research";
}

async function toggleChoice(kind) {
  const current = activeChoice(kind);
  try {
    if (current) {
      await update({ ...current, status: "inactive" });
    } else {
      await create({
        resourceType: "Consent",
        status: "active",
        scope: { coding: [{ system: CONSENT_SCOPE, code: kind === "objection" ? "patient-privacy" : "research" }] },
        category: [{ coding: [{ system: "http://loinc.org", code: "59284-0" }] }],
        patient: { reference: `Patient/${state.subject}` },
        dateTime: new Date().toISOString(),
        provision: { type: "deny" },
      });
    }
  } catch (error) {
    say(refusal(error), true);
    return;
  }
  await showChoices();
  say(kind === "objection" ? "Your sharing choice was saved." : "Your planning and research choice was saved.");
}

// ---- Carers -------------------------------------------------------------------------------------

const SCOPE_TEXT = {
  "full-record-and-contributions": "may see your record and add to it for you",
  "full-record": "may see your record",
  "appointments-and-medications": "may see your appointments and medicines",
};

async function showCarers() {
  const people = await searchAll(`RelatedPerson?patient=${state.subject}&_count=100`);
  const list = $("carer-list");
  list.replaceChildren();
  const grants = state.consents.filter((c) => c.status === "active" && (c.provision || {}).type === "permit");
  for (const grant of grants) {
    const actor = (((grant.provision || {}).actor || [])[0] || {}).reference || {};
    const person = people.find((p) => `RelatedPerson/${p.id}` === actor.reference);
    if (!person) continue;
    const name = displayName(person);
    const scope = codeIn(grant.category, PROXY_ACCESS);
    const stop = el("button", { type: "button", class: "button secondary small" }, `Stop ${name} acting for me`);
    stop.addEventListener("click", () => revokeCarer(grant, name));
    list.append(el("li", { "data-carer": person.id }, el("strong", {}, name), ` ${SCOPE_TEXT[scope] || "may act for you"}. `, stop));
  }
  if (!list.children.length) list.append(el("li", {}, "Nobody acts for you."));
}

async function nameCarer(event) {
  event.preventDefault();
  const name = $("carer-name").value.trim();
  const nhs = $("carer-nhs").value.replace(/\s/g, "");
  if (!name || !/^[0-9]{10}$/.test(nhs)) {
    say("Enter your carer's name and their 10-digit NHS number.", true);
    return;
  }
  const scope = $("carer-scope").value;
  const [given, ...rest] = name.split(/\s+/);
  try {
    const person = await create({
      resourceType: "RelatedPerson",
      patient: { reference: `Patient/${state.subject}` },
      identifier: [{ system: NHS_NUMBER, value: nhs }],
      name: [rest.length ? { given: [given], family: rest.join(" ") } : { text: name, family: name }],
    });
    await create({
      resourceType: "Consent",
      status: "active",
      scope: { coding: [{ system: CONSENT_SCOPE, code: "patient-privacy" }] },
      category: [{ coding: [{ system: PROXY_ACCESS, code: scope }] }],
      patient: { reference: `Patient/${state.subject}` },
      dateTime: new Date().toISOString(),
      policyRule: { coding: [{ system: PROXY_BASIS, code: "citizen-consent" }] },
      provision: { type: "permit", actor: [{ role: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v3-RoleCode", code: "CAREGIVER" }] }, reference: { reference: `RelatedPerson/${person.id}` } }] },
    });
  } catch (error) {
    say(refusal(error), true);
    return;
  }
  $("carer-form").reset();
  await showChoices();
  say(`${name} can now act for you.`);
}

async function revokeCarer(grant, name) {
  try {
    await update({ ...grant, status: "inactive" });
  } catch (error) {
    say(refusal(error), true);
    return;
  }
  await showChoices();
  say(`${name} can no longer act for you.`);
}

// ---- The access log -----------------------------------------------------------------------------

async function showAccessLog() {
  const body = $("access-table").querySelector("tbody");
  body.replaceChildren();
  let events;
  try {
    events = await searchAll(`AuditEvent?patient=${state.subject}&_count=20`);
  } catch (error) {
    body.append(el("tr", {}, el("td", { colspan: "4" }, "Only the person themselves can see who looked at their record.")));
    return;
  }
  for (const event of events) {
    const purpose = (((event.purposeOfEvent || [])[0] || {}).coding || [])[0] || {};
    const breakGlass = purpose.code === "ETREAT";
    const person = ((event.agent || [])[0] || {}).who || {};
    const organisation = ((event.agent || [])[1] || {}).who || {};
    const user = (person.identifier || {}).value || "";
    const viaApp = ((organisation.identifier || {}).system || "").endsWith("/patient-endpoint");
    const who = viaApp
      ? user.startsWith("nhs:") ? "A carer, through the app" : "The patient, through the app"
      : [user, organisation.display].filter(Boolean).join(", ");
    const what = (((event.subtype || [])[0] || {}).code || event.action || "").replace(/-/g, " ");
    const why = breakGlass
      ? `Emergency access (break-glass): ${((event.purposeOfEvent || [])[0] || {}).text || "no reason given"}`
      : purpose.display || purpose.code || "";
    body.append(
      el(
        "tr",
        breakGlass ? { class: "break-glass" } : {},
        el("td", {}, new Date(event.recorded).toLocaleString("en-GB")),
        el("td", {}, who),
        el("td", {}, what),
        el("td", {}, why),
      ),
    );
  }
  if (!events.length) body.append(el("tr", {}, el("td", { colspan: "4" }, "Nobody has looked yet.")));
}

document.addEventListener("DOMContentLoaded", start);
