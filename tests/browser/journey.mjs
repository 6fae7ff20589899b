// The citizen app's whole journey in a real browser (Debian's chromium, driven by puppeteer-core):
// the standalone launch through the development login, a citizen's record, a reading they add that
// the GP then reads through the provider API, a carer named who logs in, acts for the citizen and
// contributes, is revoked, and is then refused. axe-core runs on every page (no serious or critical
// finding may stand) and a screenshot of each step is kept in --out.
//
//   node journey.mjs --app https://localhost:9443/app/ --provider https://localhost:8443/fhir \
//     --cacert certs/dev/ca.crt --gp-cert certs/dev/client-A81001.crt --gp-key certs/dev/client-A81001.key \
//     --gp-token TOKEN --emergency-cert certs/dev/client-RX1.crt --emergency-key certs/dev/client-RX1.key \
//     --emergency-token TOKEN --citizen 9000000009 --carer 9000000017 --out DIR [--chromium /usr/bin/chromium]
//
// The emergency token is a clinician's of an organisation with no relationship to the citizen,
// asking to break the glass (purpose ETREAT with a reason): the citizen's access log must mark it.
//
// Prints "PASS name" or "FAIL name: why" per check, then "N passed, M failed"; exits 1 on a failure.
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import https from "node:https";
import path from "node:path";
import puppeteer from "puppeteer-core";

const require = createRequire(import.meta.url);
const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
for (const needed of ["app", "provider", "cacert", "gp-cert", "gp-key", "gp-token", "emergency-cert", "emergency-key",
                      "emergency-token", "citizen", "carer", "out"])
  if (!args[needed]) {
    console.error(`journey.mjs: --${needed} is required`);
    process.exit(2);
  }
const chromium = args.chromium || "/usr/bin/chromium";
mkdirSync(args.out, { recursive: true });
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const callers = {
  gp: { ca: readFileSync(args.cacert), cert: readFileSync(args["gp-cert"]), key: readFileSync(args["gp-key"]), token: args["gp-token"] },
  emergency: {
    ca: readFileSync(args.cacert),
    cert: readFileSync(args["emergency-cert"]),
    key: readFileSync(args["emergency-key"]),
    token: args["emergency-token"],
  },
};

let passed = 0;
let failed = 0;
function report(name, ok, why) {
  if (ok) {
    passed++;
    console.log(`PASS ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}: ${why}`);
  }
}

// A professional's view, through the provider API (client certificate and token): the GP's unless
// another caller is named.
function provider(url, caller = callers.gp) {
  const { token, ...tls } = caller;
  return new Promise((resolve, reject) => {
    const request = https.request(
      `${args.provider}/${url}`,
      { ...tls, headers: { Authorization: `Bearer ${token}`, Accept: "application/fhir+json" } },
      (response) => {
        let body = "";
        response.on("data", (chunk) => (body += chunk));
        response.on("end", () => resolve({ status: response.statusCode, body: body ? JSON.parse(body) : null }));
      },
    );
    request.on("error", reject);
    request.end();
  });
}

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  acceptInsecureCerts: true, // the development CA of certs/dev, which chromium does not know
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--window-size=412,915"],
});
const page = await browser.newPage();
await page.setViewport({ width: 412, height: 915 }); // a phone-sized screen
await page.setBypassCSP(true); // so that axe-core can be injected; the app itself never needs it
let shot = 0;

/// The whole page, or only the element `selector` picks (the part of the page the step is about).
async function snapshot(name, selector) {
  shot++;
  const file = path.join(args.out, `${String(shot).padStart(2, "0")}-${name}.png`);
  if (selector) await (await page.$(selector)).screenshot({ path: file });
  else await page.screenshot({ path: file, fullPage: true });
}

async function accessible(name) {
  await page.addScriptTag({ content: axeSource });
  const results = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  const serious = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  report(
    `axe.${name}`,
    serious.length === 0,
    serious.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`).join("; "),
  );
}

async function visible(selector, timeout = 10000) {
  await page.waitForSelector(selector, { visible: true, timeout });
}

async function statusSays(text, timeout = 10000) {
  await page.waitForFunction((t) => document.getElementById("status").textContent.includes(t), { timeout }, text);
}

async function check(name, step) {
  try {
    await step();
    report(name, true);
    return true;
  } catch (error) {
    report(name, false, String(error && error.message ? error.message : error).split("\n")[0]);
    await snapshot(`failed-${name}`).catch(() => {});
    return false;
  }
}

async function logIn(nhs) {
  await page.goto(args.app, { waitUntil: "networkidle0" });
  await visible("#log-in");
  await Promise.all([page.waitForNavigation({ waitUntil: "networkidle0" }), page.click("#log-in")]);
  await visible("#nhs_number");
  await page.$eval("#nhs_number", (input, value) => (input.value = value), nhs);
  await page.click("#p9");
  await Promise.all([page.waitForNavigation({ waitUntil: "networkidle0" }), page.click("button[value=allow]")]);
  await visible("#choose");
}

async function openRecord(actFor) {
  if (actFor) {
    await page.click("#choose-other");
    await page.type("#act-for", actFor);
  } else {
    await page.click("#choose-own");
  }
  await page.click("#choose-form button[type=submit]");
}

async function logOut() {
  await Promise.all([page.waitForNavigation({ waitUntil: "networkidle0" }), page.click("#log-out")]);
  await visible("#welcome");
}

async function readingsText() {
  return page.$eval("#care-lists", (lists) => lists.textContent);
}

try {
  await check("welcome", async () => {
    await page.goto(args.app, { waitUntil: "networkidle0" });
    await visible("#log-in");
    await snapshot("welcome");
  });
  await accessible("welcome");

  await check("login.citizen", async () => {
    await page.goto(args.app, { waitUntil: "networkidle0" });
    await Promise.all([page.waitForNavigation({ waitUntil: "networkidle0" }), page.click("#log-in")]);
    await visible("#nhs_number");
    await snapshot("development-login");
  });
  await accessible("development-login");
  await check("login.citizen.record", async () => {
    await page.$eval("#nhs_number", (input, value) => (input.value = value), args.citizen);
    await Promise.all([page.waitForNavigation({ waitUntil: "networkidle0" }), page.click("button[value=allow]")]);
    await visible("#choose");
    await snapshot("choose-record");
    await openRecord("");
    await statusSays("Showing your record");
    const text = await readingsText();
    for (const expected of ["Type 2 diabetes", "Metformin", "Penicillin", "Diabetes review", "Diabetes care plan"])
      if (!text.includes(expected)) throw new Error(`the record does not show ${expected}`);
    await snapshot("record", "#care");
  });
  await accessible("record");

  await check("contribute.citizen", async () => {
    await page.select("#reading-kind", "heart-rate");
    await page.type("#reading-value", "72");
    await page.click("#reading-form button[type=submit]");
    await statusSays("heart rate reading was added");
    if (!(await readingsText()).includes("Heart rate: 72 /min")) throw new Error("the reading is not in the record");
    await snapshot("reading-added");
  });
  await check("contribute.about-me", async () => {
    await page.type("#about-text", "Walking my dog every morning");
    await page.click("#about-form button[type=submit]");
    await statusSays("What matters to you was added");
    if (!(await readingsText()).includes("Walking my dog every morning")) throw new Error("the answer is not in the record");
  });
  await check("gp-sees.citizen-reading", async () => {
    const found = await provider(
      `Observation?patient=${args.citizen}&_tag=https://fhir.caregate.nhs.uk/CodeSystem/provenance|patient-contributed`,
    );
    const values = (found.body.entry || []).map((e) => e.resource.valueQuantity && e.resource.valueQuantity.value);
    if (found.status !== 200 || !values.includes(72)) throw new Error(`the GP found ${JSON.stringify(values)}`);
  });

  await check("sharing.opt-out", async () => {
    await page.click("#opt-out-toggle");
    await statusSays("planning and research choice was saved");
    await page.waitForFunction(() => document.getElementById("opt-out-state").textContent.includes("You have opted out"));
    await snapshot("opted-out");
    await page.click("#opt-out-toggle");
    await page.waitForFunction(() => !document.getElementById("opt-out-state").textContent.includes("You have opted out"));
  });

  await check("carer.named", async () => {
    await page.type("#carer-name", "Bunmi Adeyemi");
    await page.type("#carer-nhs", args.carer);
    await page.select("#carer-scope", "full-record-and-contributions");
    await page.click("#carer-form button[type=submit]");
    await statusSays("can now act for you");
    const carers = await page.$eval("#carer-list", (list) => list.textContent);
    if (!carers.includes("Bunmi Adeyemi may see your record and add to it")) throw new Error(`the carers list says ${carers}`);
    await snapshot("carer-named");
  });
  await accessible("record-with-carer");
  await logOut();

  await check("carer.acts", async () => {
    await logIn(args.carer);
    await openRecord(args.citizen);
    await statusSays("record.");
    const note = await page.$eval("#acting-note", (p) => p.textContent);
    if (!note.includes("You are acting for")) throw new Error(`the page says ${note}`);
    if (!(await page.$eval("#sharing", (s) => s.hidden))) throw new Error("a carer is shown the sharing choices");
    if (!(await readingsText()).includes("Type 2 diabetes")) throw new Error("the carer does not see the record");
    await snapshot("carer-acting");
  });
  await accessible("carer-acting");
  await check("contribute.carer", async () => {
    await page.select("#reading-kind", "weight");
    await page.type("#reading-value", "81.5");
    await page.click("#reading-form button[type=submit]");
    await statusSays("weight reading was added");
    const text = await readingsText();
    if (!text.includes("Body weight: 81.5 kg") || !text.includes("Added by a carer")) throw new Error("the carer's reading is not shown as theirs");
    await snapshot("carer-reading-added", "#care");
  });
  await check("gp-sees.carer-reading", async () => {
    const found = await provider(
      `Observation?patient=${args.citizen}&_tag=https://fhir.caregate.nhs.uk/CodeSystem/provenance|carer-contributed`,
    );
    const reading = (found.body.entry || []).map((e) => e.resource).find((r) => r.valueQuantity && r.valueQuantity.value === 81.5);
    if (!reading) throw new Error("the GP does not find the carer's reading");
    if (!String((reading.performer || [])[0]?.reference || "").startsWith("RelatedPerson/"))
      throw new Error("the reading does not name the carer");
    const provenance = await provider(`Provenance?target=Observation/${reading.id}`);
    const agents = (provenance.body.entry || []).map((e) => e.resource.agent[0]);
    if (agents.length !== 1 || agents[0].onBehalfOf.reference !== `Patient/${args.citizen}`)
      throw new Error(`the Provenance agents are ${JSON.stringify(agents)}`);
  });
  await logOut();

  await check("emergency.break-glass", async () => {
    const read = await provider(`Patient/${args.citizen}`, callers.emergency);
    if (read.status !== 200) throw new Error(`the emergency read answered ${read.status}`);
  });

  await check("carer.revoked", async () => {
    await logIn(args.citizen);
    await openRecord("");
    await statusSays("Showing your record");
    const log = await page.$eval("#access-table", (table) => table.textContent);
    if (!log.includes("A carer, through the app")) throw new Error("the access log does not show the carer's accesses");
    if (!log.includes("Emergency access (break-glass)")) throw new Error("the access log does not mark the break-glass access");
    if (!(await page.$("#access-table tr.break-glass"))) throw new Error("the break-glass row is not highlighted");
    await snapshot("access-log", "#access");
    await page.click("#carer-list button");
    await statusSays("can no longer act for you");
    await snapshot("carer-revoked");
  });
  await logOut();

  await check("carer.refused", async () => {
    await logIn(args.carer);
    await openRecord(args.citizen);
    await statusSays("You do not have permission to act for this person");
    await visible("#choose");
    await snapshot("carer-refused");
  });
  await accessible("carer-refused");
} finally {
  await browser.close();
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
