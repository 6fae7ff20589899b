#!/usr/bin/env node
// caregate's patient-facing endpoint driven by SMART's official JavaScript client, fhirclient
// (https://github.com/smart-on-fhir/client-js), in Node: the library discovers the endpoint from
// {base}/.well-known/smart-configuration with its own code (a standalone launch, PKCE required),
// then its client, holding a citizen's development token and their NHS number as the patient launch
// context, reads the record. See README.md in this directory.
//
// Output: one line per check, `PASS name` or `FAIL name: reason`, then `N passed, M failed`.
// Exit status 0 when M is 0, 1 otherwise, 2 for a usage error.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";

import { readCommandLine } from "../command_line.mjs";

const usage = `usage: node check.mjs --base-url URL --token TOKEN --nhs NHS [--cacert FILE] [--other-nhs NHS] [--dev-idp]

  --base-url URL   the patient-facing endpoint's FHIR base, e.g. https://localhost:9443/fhir
  --token TOKEN    a citizen's bearer token for that endpoint (caregate token --citizen NHS --aud URL)
  --nhs NHS        the citizen's NHS number (the token's nhs_number; their Patient's id)
  --cacert FILE    a CA (PEM) to trust besides the system's, e.g. certs/dev/ca.crt (NODE_EXTRA_CA_CERTS)
  --other-nhs NHS  another NHS number, whose record must answer 404 (default 9000000017)
  --dev-idp        the server runs caregate serve --dev-idp: also run the whole standalone launch
                   (login page, code, PKCE exchange by fhirclient, refresh) with no token handed over`;

const { args, usageError } = readCommandLine({
  usage,
  required: ["base-url", "token", "nhs"],
  options: {
    "base-url": { type: "string" },
    token: { type: "string" },
    nhs: { type: "string" },
    cacert: { type: "string" },
    "other-nhs": { type: "string", default: "9000000017" },
    "dev-idp": { type: "boolean", default: false },
  },
});
if (args["other-nhs"] === args.nhs) usageError("--other-nhs must differ from --nhs");

// Node reads NODE_EXTRA_CA_CERTS once, at start-up: with --cacert, run again with it set.
if (args.cacert) {
  const cacert = resolve(args.cacert);
  if (!existsSync(cacert)) {
    console.error(`--cacert ${args.cacert}: no such file`);
    process.exit(2);
  }
  if (process.env.NODE_EXTRA_CA_CERTS !== cacert) {
    const again = spawnSync(process.execPath, process.argv.slice(1), {
      stdio: "inherit",
      env: { ...process.env, NODE_EXTRA_CA_CERTS: cacert },
    });
    process.exit(again.status ?? 1);
  }
}

const require = createRequire(import.meta.url);
// The Node entry point: smart(request, response, storage) -> { authorize, ready, init, client }.
const smart = require("fhirclient");
// The library's own discovery: GET {base}/.well-known/smart-configuration, cached per URL, so this
// answers the very document authorize() used.
const { fetchWellKnownJson } = require("fhirclient/lib/smart");

const base = args["base-url"].replace(/\/+$/, "");
const { token, nhs } = args;
const other = args["other-nhs"];
const NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number";
const REDIRECT_URI = "https://app.example/callback"; // the app's; never visited here

let passed = 0;
let failed = 0;
function pass(name) {
  passed++;
  console.log(`PASS ${name}`);
}
function fail(name, reason) {
  failed++;
  console.log(`FAIL ${name}: ${String(reason).replace(/\s*\n\s*/g, " ")}`);
}
class CheckFailed extends Error {}
function expect(condition, reason) {
  if (!condition) throw new CheckFailed(reason);
}
// Runs one check; a string it returns is printed, indented, after its PASS line.
async function check(name, body) {
  try {
    const note = await body();
    pass(name);
    if (typeof note === "string") console.log(`    ${note}`);
    return true;
  } catch (e) {
    // fhirclient's HttpError carries the status; parse() adds the OperationOutcome to the message.
    if (typeof e?.parse === "function") await e.parse().catch(() => {});
    fail(name, e instanceof CheckFailed ? e.message : `${e?.name ?? "Error"}: ${e?.message ?? e}`);
    return false;
  }
}
function hasNhsNumber(patient, number) {
  return (patient?.identifier ?? []).some((i) => i.system === NHS_NUMBER_SYSTEM && i.value === number);
}
// Whether a resource points at a patient: a reference Patient/{nhs} (relative or absolute) or a
// logical reference by the NHS number.
function references(resource, target) {
  const text = JSON.stringify(resource);
  return text.includes(`Patient/${target}"`) || text.includes(`"value":"${target}"`);
}

// fhirclient's Node adapter takes the app's HTTP request and response (an Express or http server's)
// and a storage for the launch state (by default the request's session). This script is not a web
// app: the request is the app's launch URL with no parameters, the storage a Map, and authorize()
// is asked for the authorization URL instead of a redirect (noRedirect).
function appEnvironment(storage, request) {
  return smart(
    request,
    {
      writeHead() {
        throw new Error("fhirclient tried to redirect");
      },
      end() {},
    },
    {
      get: async (key) => storage.get(key),
      set: async (key, value) => (storage.set(key, value), value),
      unset: async (key) => storage.delete(key),
    },
  );
}
const storage = new Map();
const env = () => appEnvironment(storage, { url: "/launch", headers: { host: "app.example" }, socket: { encrypted: true } });

let wellKnown = null;
let authorizeUrl = null;
let client = null;

// 1. Discovery: a standalone launch against iss = the base URL. fhirclient fetches
//    .well-known/smart-configuration (falling back to the CapabilityStatement only if that fails,
//    which has no PKCE methods: with pkceMode "required" the launch would then fail), stores the
//    endpoints in its launch state and builds the authorization request.
await check("discovery.authorize", async () => {
  authorizeUrl = await env().authorize({
    iss: base,
    clientId: "caregate-smart-conformance",
    scope: "launch/patient openid patient/*.rs",
    redirectUri: REDIRECT_URI,
    pkceMode: "required",
    noRedirect: true,
    // caregate is not an identity provider (its discovery names the configured one; in development
    // placeholders): the development token stands in for the token response the login would give.
    fakeTokenResponse: { access_token: token, token_type: "Bearer", patient: nhs, scope: "launch/patient patient/*.rs" },
  });
  expect(typeof authorizeUrl === "string" && authorizeUrl, `authorize() gave ${authorizeUrl}`);
});

await check("discovery.well-known", async () => {
  wellKnown = await fetchWellKnownJson(base);
  expect(wellKnown && typeof wellKnown === "object", `.well-known/smart-configuration is ${typeof wellKnown}`);
});

if (wellKnown) {
  await check("discovery.endpoints", async () => {
    for (const field of ["authorization_endpoint", "token_endpoint"]) {
      const url = wellKnown[field];
      expect(typeof url === "string" && /^https?:\/\/./.test(url), `${field} is ${JSON.stringify(url)}`);
    }
  });
  await check("discovery.pkce-s256", async () => {
    const methods = wellKnown.code_challenge_methods_supported;
    expect(Array.isArray(methods) && methods.includes("S256"), `code_challenge_methods_supported is ${JSON.stringify(methods)}`);
  });
  await check("discovery.capabilities", async () => {
    const capabilities = wellKnown.capabilities;
    expect(Array.isArray(capabilities), `capabilities is ${JSON.stringify(capabilities)}`);
    const missing = ["launch-standalone", "permission-patient"].filter((c) => !capabilities.includes(c));
    expect(missing.length === 0, `capabilities lack ${missing.join(", ")}: ${JSON.stringify(capabilities)}`);
  });
}

if (authorizeUrl && wellKnown) {
  // What the library made of the discovery: the authorization request it would send the citizen's
  // browser to, and the token endpoint it keeps for the code exchange.
  await check("discovery.authorization-request", async () => {
    const url = new URL(authorizeUrl);
    expect(`${url.origin}${url.pathname}` === wellKnown.authorization_endpoint,
      `the authorization request goes to ${url.origin}${url.pathname}, not ${wellKnown.authorization_endpoint}`);
    const q = url.searchParams;
    expect(q.get("response_type") === "code", `response_type=${q.get("response_type")}`);
    expect(q.get("aud") === base, `aud=${q.get("aud")}, not ${base}`);
    expect(q.get("code_challenge_method") === "S256", `code_challenge_method=${q.get("code_challenge_method")}`);
    expect(/^[A-Za-z0-9_-]{43}$/.test(q.get("code_challenge") ?? ""), `code_challenge=${q.get("code_challenge")}`);
    const state = storage.get(q.get("state"));
    expect(state, "no launch state stored under the request's state");
    expect(state.tokenUri === wellKnown.token_endpoint, `the launch state's tokenUri is ${state.tokenUri}, not ${wellKnown.token_endpoint}`);
  });
}

// 2. The client: ready() completes the launch from the stored state (already holding the token
//    response) and gives fhirclient's Client, with the patient launch context.
if (authorizeUrl) {
  await check("client.ready", async () => {
    client = await env().ready();
    expect(client.getState("serverUrl") === base, `serverUrl is ${client.getState("serverUrl")}`);
    expect(client.patient.id === nhs, `the patient launch context is ${client.patient.id}, not ${nhs}`);
    expect(client.getAuthorizationHeader() === `Bearer ${token}`, "the client does not send the token as a bearer");
  });
}

if (client) {
  await check("read.patient", async () => {
    const patient = await client.patient.read();
    expect(patient?.resourceType === "Patient", `Patient/${nhs} read gave ${patient?.resourceType}`);
    expect(patient.id === nhs, `Patient/${nhs} read gave id ${patient.id}`);
    expect(hasNhsNumber(patient, nhs), `Patient/${nhs} has no identifier ${NHS_NUMBER_SYSTEM}|${nhs}: ${JSON.stringify(patient.identifier)}`);
  });

  await check("read.everything", async () => {
    // every page (pageLimit 0), as a flat list of resources
    const resources = await client.request(`Patient/${nhs}/$everything`, { pageLimit: 0, flat: true });
    expect(Array.isArray(resources), `$everything gave ${JSON.stringify(resources)?.slice(0, 200)}`);
    const patients = resources.filter((r) => r?.resourceType === "Patient");
    expect(patients.length === 1 && patients[0].id === nhs,
      `$everything holds Patients ${JSON.stringify(patients.map((p) => p.id))}, not just ${nhs}`);
    expect(hasNhsNumber(patients[0], nhs), `$everything's Patient has no identifier ${NHS_NUMBER_SYSTEM}|${nhs}`);
    const others = resources.filter((r) => references(r, other));
    expect(others.length === 0, `$everything holds ${others.map((r) => `${r.resourceType}/${r.id}`).join(", ")} about ${other}`);
    return `$everything: ${resources.length} resources (${[...new Set(resources.map((r) => r.resourceType))].join(", ")})`;
  });

  await check("search.patient-observations", async () => {
    // fhirclient picks the patient search parameter from the endpoint's CapabilityStatement
    const observations = await client.patient.request("Observation", { pageLimit: 0, flat: true });
    expect(Array.isArray(observations), `Observation?patient=${nhs} gave ${JSON.stringify(observations)?.slice(0, 200)}`);
    const wrong = observations.filter((o) => o?.resourceType !== "Observation" || !references(o, nhs));
    expect(wrong.length === 0, `not the patient's Observations: ${wrong.map((r) => `${r.resourceType}/${r.id}`).join(", ")}`);
    return `Observation?patient=${nhs}: ${observations.length} Observations`;
  });

  await check("read.other-patient-404", async () => {
    let answer;
    try {
      answer = await client.request(`Patient/${other}`);
    } catch (e) {
      if (e?.status === 404) return;
      throw e;
    }
    throw new CheckFailed(`Patient/${other} answered ${answer?.resourceType ?? JSON.stringify(answer)}, not 404`);
  });

  await check("search.other-patient-empty", async () => {
    const bundle = await client.request(`Observation?patient=${other}`);
    expect(bundle?.resourceType === "Bundle", `Observation?patient=${other} gave ${bundle?.resourceType}`);
    const entries = bundle.entry ?? [];
    expect(entries.length === 0 && !bundle.total,
      `Observation?patient=${other} shows ${entries.length} entries, total ${bundle.total}`);
  });
}

// 3. With --dev-idp (the server runs `caregate serve --dev-idp`): the whole standalone launch, with no
//    token handed over. fhirclient builds the authorization request (PKCE S256); this script stands
//    in for the citizen's browser (it loads the login page and submits its form, as a person would,
//    choosing the citizen); then fhirclient's ready() takes the callback and exchanges the code at
//    the token endpoint with its own code verifier, and its client reads the record with that token.
if (args["dev-idp"]) {
  const launchStorage = new Map();
  const APP = "127.0.0.1:5173"; // the app's origin: a loopback address may receive codes
  const launchEnv = (url) => appEnvironment(launchStorage, { url, headers: { host: APP }, socket: { encrypted: false } });
  const unescapeHtml = (text) =>
    text.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  let launched = null;
  const firstToken = { value: null };

  await check("launch.code-flow", async () => {
    const authorizeAt = await launchEnv("/launch").authorize({
      iss: base,
      clientId: "caregate-smart-launch",
      scope: "launch/patient openid fhirUser patient/*.rs offline_access",
      redirectUri: `http://${APP}/callback`,
      pkceMode: "required",
      noRedirect: true,
    });
    const page = await fetch(authorizeAt);
    expect(page.status === 200, `the login page answered ${page.status}`);
    const html = await page.text();
    const form = new URLSearchParams();
    for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) form.append(m[1], unescapeHtml(m[2]));
    expect(form.get("code_challenge_method") === "S256", `the page carries code_challenge_method ${form.get("code_challenge_method")}`);
    form.append("nhs_number", nhs);
    form.append("proofing", "P9");
    form.append("decision", "allow");
    const posted = await fetch(new URL("/dev-idp/authorize", authorizeAt), {
      method: "POST",
      body: form,
      redirect: "manual",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    expect(posted.status === 302, `the login answered ${posted.status}, not a redirect`);
    const callback = new URL(posted.headers.get("location"));
    expect(`${callback.origin}${callback.pathname}` === `http://${APP}/callback`, `the login redirected to ${callback.origin}${callback.pathname}`);
    expect(callback.searchParams.get("code"), `the redirect carries no code: ${callback.search}`);
    launched = await launchEnv(callback.pathname + callback.search).ready();
    expect(launched.patient.id === nhs, `the patient launch context is ${launched.patient.id}, not ${nhs}`);
    const patient = await launched.patient.read();
    expect(patient?.id === nhs && hasNhsNumber(patient, nhs), `Patient/${nhs} read gave ${patient?.resourceType}/${patient?.id}`);
    expect(launched.state.tokenResponse?.refresh_token, "the token response holds no refresh token for offline_access");
    firstToken.value = launched.state.tokenResponse.access_token;
    return `logged in as ${nhs} (P9) at ${new URL(authorizeAt).origin}/dev-idp; the code exchanged with PKCE by fhirclient`;
  });

  if (launched) {
    await check("launch.other-patient-404", async () => {
      try {
        await launched.request(`Patient/${other}`);
      } catch (e) {
        if (e?.status === 404) return;
        throw e;
      }
      throw new CheckFailed(`Patient/${other} answered, not 404`);
    });
    await check("launch.refresh", async () => {
      await launched.refresh();
      const token = launched.state.tokenResponse?.access_token;
      expect(token && token !== firstToken.value, "refresh() gave no new access token");
      const patient = await launched.patient.read();
      expect(patient?.id === nhs, `Patient/${nhs} read after the refresh gave ${patient?.id}`);
    });
  }
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
