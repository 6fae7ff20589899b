#!/usr/bin/env node
// Runs Bulk Data exports against a FHIR server with a real third-party client, Medplum's FHIR client
// library (@medplum/core's MedplumClient), unchanged: its bulkExport() kicks off, its async request
// code polls the status URL to the manifest, and its download() fetches every file the manifest
// names. This script only configures the client (base URL, bearer token, and a fetch that presents
// the client certificate), saves what it downloaded, and records what went over the wire. check.mjs
// then judges the result. See README.md in this directory.
//
// Writes, for each export, DIR/<level>-<method>/: result.json (what the client did and returned),
// manifest.json, the files (NNN.<type>.ndjson; error files error-NNN.<type>.ndjson) and
// requests.log (every request the client made, with the token elided); DIR/run.json lists the
// exports of this run. Exit status 0 when every export completed, 1 otherwise, 2 for a usage error.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { rootCertificates } from "node:tls";
import { fileURLToPath } from "node:url";

import { MedplumClient } from "@medplum/core";
import { Agent, fetch as undiciFetch } from "undici";

import { readCommandLine } from "../command_line.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const usage = `usage: node export.mjs --base-url URL --token TOKEN --out DIR [--cacert FILE] [--cert FILE --key FILE]
                        [--group ID] [--patient] [--kickoff post|get|both] [--poll-ms N] [--timeout S]

  --base-url URL    the FHIR base, e.g. https://localhost:8443/fhir
  --token TOKEN     the bearer token the client sends with every request
  --out DIR         where the downloads and records go (a folder per export)
  --cacert FILE     a CA (PEM) to trust besides the system's, e.g. certs/dev/ca.crt
  --cert FILE       the client certificate (PEM) to present (mutual TLS), with --key
  --key FILE        its private key (PEM)
  --group ID        also export Group/ID/$export
  --patient         also export Patient/$export
  --kickoff MODE    post: the client's bulkExport() (POST kick-off, no body; the default);
                    get: a GET kick-off through the same client's async request code; both
  --poll-ms N       the client's pollStatusPeriod (default: the client's own, 1000 ms)
  --timeout S       give up on an export that has no manifest after S seconds (default 300)
  --allow-empty     (for check.mjs) an export may list no files`;

const { args, usageError } = readCommandLine({
  usage,
  required: ["base-url", "token", "out"],
  options: {
    "base-url": { type: "string" },
    token: { type: "string" },
    out: { type: "string" },
    cacert: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    group: { type: "string" },
    patient: { type: "boolean", default: false },
    kickoff: { type: "string", default: "post" },
    "poll-ms": { type: "string" },
    timeout: { type: "string", default: "300" },
    "allow-empty": { type: "boolean", default: false },
  },
});
if (!/^https?:\/\//.test(args["base-url"])) usageError(`--base-url must be an http(s) URL, not ${args["base-url"]}`);
if (Boolean(args.cert) !== Boolean(args.key)) usageError("--cert and --key go together");
for (const file of ["cacert", "cert", "key"]) {
  if (args[file] && !existsSync(args[file])) usageError(`--${file} ${args[file]}: no such file`);
}
if (!["post", "get", "both"].includes(args.kickoff)) usageError(`--kickoff must be post, get or both, not ${args.kickoff}`);
const pollMs = args["poll-ms"] === undefined ? undefined : Number(args["poll-ms"]);
if (pollMs !== undefined && !(Number.isInteger(pollMs) && pollMs >= 0)) usageError("--poll-ms must be a whole number");
const timeoutSeconds = Number(args.timeout);
if (!(timeoutSeconds > 0)) usageError("--timeout must be a positive number of seconds");
if (args.group !== undefined && !/^[A-Za-z0-9\-.]{1,64}$/.test(args.group)) usageError(`--group ${args.group} is not a FHIR id`);

const base = args["base-url"].replace(/\/+$/, "");
const out = resolve(args.out);
const clientVersion = JSON.parse(readFileSync(join(here, "node_modules/@medplum/core/package.json"), "utf8")).version;
const CLIENT = `@medplum/core ${clientVersion} (MedplumClient)`;

// The TLS side, the one thing the client cannot be told through its own options: MedplumClient
// takes a `fetch` (its documented `fetch` option), and this one is undici's, connecting with the
// client certificate and trusting the given CA besides the system's. It passes the client's
// requests and answers through unchanged; it only notes each exchange in requests.log, and refuses
// further requests of an export abandoned at --timeout.
const agent = new Agent({
  connect: {
    ...(args.cacert ? { ca: [...rootCertificates, readFileSync(args.cacert, "utf8")] } : {}),
    ...(args.cert ? { cert: readFileSync(args.cert), key: readFileSync(args.key) } : {}),
  },
});
function tracingFetch(trace) {
  return async (url, init = {}) => {
    const method = init.method ?? "GET";
    // After a timeout the client would poll on; this ends its loop (with an error it cannot retry
    // past) instead of letting it run beside the next export.
    if (trace.abandoned) throw new Error("abandoned by export.mjs after --timeout");
    const headers = Object.entries(init.headers ?? {})
      .map(([name, value]) => (name.toLowerCase() === "authorization" ? `${name}: ${String(value).split(" ")[0]} (token elided)` : `${name}: ${value}`))
      .join("; ");
    const body = init.body === undefined || init.body === null ? "no body" : `body of ${String(init.body).length} characters`;
    let response;
    try {
      response = await undiciFetch(url, { ...init, dispatcher: agent });
    } catch (e) {
      trace.line(`${method} ${url} [${headers}; ${body}] -> failed: ${describe(e)}`);
      throw e;
    }
    const seen = ["content-type", "content-location", "x-progress", "retry-after", "expires"]
      .map((name) => [name, response.headers.get(name)])
      .filter(([, value]) => value !== null)
      .map(([name, value]) => `${name}: ${value}`)
      .join("; ");
    trace.line(`${method} ${url} [${headers}; ${body}] -> ${response.status}${seen ? ` [${seen}]` : ""}`);
    trace.exchanges.push({ method, url: String(url), status: response.status, contentType: response.headers.get("content-type") });
    return response;
  };
}

function describe(e) {
  if (e?.outcome?.issue) {
    return `OperationOutcome ${e.outcome.issue.map((i) => `${i.severity}/${i.code}: ${i.details?.text ?? i.diagnostics ?? ""}`).join("; ")}`;
  }
  const cause = e?.cause ? ` (${e.cause.code ?? ""}${e.cause.code && e.cause.message ? " " : ""}${e.cause.message ?? ""})` : "";
  return `${e?.name ?? "Error"}: ${e?.message ?? e}${cause}`;
}

const exports = [{ level: "system", path: "" }];
if (args.patient) exports.push({ level: "patient", path: "Patient" });
if (args.group !== undefined) exports.push({ level: "group", path: `Group/${args.group}` });
const methods = args.kickoff === "both" ? ["post", "get"] : [args.kickoff];

mkdirSync(out, { recursive: true });
const run = { client: CLIENT, baseUrl: base, started: new Date().toISOString(), exports: [] };

let allOk = true;
for (const { level, path } of exports) {
  for (const method of methods) {
    const name = `${level}-${method}`;
    run.exports.push(name);
    writeFileSync(join(out, "run.json"), JSON.stringify(run, null, 2) + "\n");
    const ok = await runExport({ name, level, path, method });
    allOk &&= ok;
  }
}
await agent.close().catch(() => {});
process.exit(allOk ? 0 : 1);

async function runExport({ name, level, path, method }) {
  const dir = join(out, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  const trace = {
    exchanges: [],
    abandoned: false,
    line(text) {
      appendFileSync(join(dir, "requests.log"), `${((Date.now() - started) / 1000).toFixed(3)}s ${text}\n`);
    },
  };
  const medplum = new MedplumClient({
    baseUrl: `${base}/`,
    fhirUrlPath: "",
    accessToken: args.token,
    fetch: tracingFetch(trace),
    cacheTime: 0,
  });
  const kickoffUrl = medplum.fhirUrl(`${path ? `${path}/` : ""}$export`).toString();
  const result = {
    client: CLIENT,
    level,
    group: level === "group" ? args.group : undefined,
    kickoff: { method: method.toUpperCase(), url: kickoffUrl },
    ok: false,
    error: undefined,
    seconds: undefined,
    polls: 0,
    statusUrl: undefined,
    manifest: undefined,
    files: [],
  };
  const save = () => writeFileSync(join(dir, "result.json"), JSON.stringify(result, null, 2) + "\n");
  const label = `${level} export (${method.toUpperCase()} ${kickoffUrl})`;
  console.log(`${label}: kicking off`);

  const asyncOptions = { pollStatusOnAccepted: true, ...(pollMs === undefined ? {} : { pollStatusPeriod: pollMs }) };
  let timer;
  try {
    const kickoff =
      method === "post"
        ? // The client's Bulk Data call: POST {base}/[Patient/|Group/{id}/]$export, Prefer: respond-async.
          medplum.bulkExport(path, undefined, undefined, asyncOptions)
        : // The same client's FHIR asynchronous request pattern, with a GET kick-off.
          medplum.get(kickoffUrl, { ...asyncOptions, headers: { Prefer: "respond-async" } });
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no manifest after ${timeoutSeconds} s`)), timeoutSeconds * 1000);
    });
    const manifest = await Promise.race([kickoff, timeout]);
    clearTimeout(timer);
    const kick = trace.exchanges[0];
    result.statusUrl = trace.exchanges.find((x, i) => i > 0 && x.method === "GET")?.url;
    result.polls = trace.exchanges.filter((x, i) => i > 0 && x.url === result.statusUrl).length;
    if (!kick || kick.status !== 202) {
      throw new Error(`the kick-off answered ${kick?.status ?? "nothing"}, not 202 Accepted`);
    }
    if (!result.statusUrl) {
      throw new Error("the kick-off's 202 named no status URL (Content-Location), so the client polled nothing");
    }
    if (manifest === null || typeof manifest !== "object" || Array.isArray(manifest)) {
      throw new Error(`the client returned ${JSON.stringify(manifest)?.slice(0, 300)} as the manifest, not a JSON object`);
    }
    result.manifest = manifest;
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    const items = [
      ...(Array.isArray(manifest.output) ? manifest.output : []).map((item) => ({ kind: "output", item })),
      ...(Array.isArray(manifest.error) ? manifest.error : []).map((item) => ({ kind: "error", item })),
    ];
    console.log(`${label}: manifest after ${result.polls} status request(s): ${items.filter((i) => i.kind === "output").length} output file(s), ${items.filter((i) => i.kind === "error").length} error file(s)`);
    let n = 0;
    for (const { kind, item } of items) {
      n++;
      const type = String(item?.type ?? "unknown");
      const file = `${kind === "error" ? "error-" : ""}${String(n).padStart(3, "0")}.${type.replace(/[^A-Za-z0-9]/g, "_")}.ndjson`;
      const entry = { kind, type, url: item?.url, count: item?.count, path: file, status: undefined, contentType: undefined, bytes: undefined, error: undefined };
      result.files.push(entry);
      if (typeof item?.url !== "string") {
        entry.error = "no url";
        continue;
      }
      try {
        // The client's own download (GET, its Authorization header, Accept: */*), as a Blob.
        const blob = await medplum.download(item.url);
        const bytes = Buffer.from(await blob.arrayBuffer());
        writeFileSync(join(dir, file), bytes);
        const exchange = trace.exchanges.findLast((x) => x.url === item.url);
        entry.status = exchange?.status;
        entry.contentType = exchange?.contentType ?? undefined;
        entry.bytes = bytes.length;
      } catch (e) {
        entry.error = describe(e);
      }
    }
    result.ok = true;
  } catch (e) {
    clearTimeout(timer);
    trace.abandoned = true;
    const last = trace.exchanges.at(-1);
    result.error = `${describe(e)}${last ? ` (the client's last request: ${last.method} ${last.url} -> ${last.status})` : ""}`;
    result.polls = result.statusUrl ? trace.exchanges.filter((x) => x.url === result.statusUrl).length : 0;
  }
  result.seconds = Number(((Date.now() - started) / 1000).toFixed(3));
  save();
  if (result.ok) {
    const fetched = result.files.filter((f) => f.status === 200).length;
    console.log(`${label}: downloaded ${fetched} of ${result.files.length} file(s) in ${result.seconds} s`);
  } else {
    console.log(`${label}: failed after ${result.seconds} s: ${result.error}`);
  }
  return result.ok;
}
