#!/usr/bin/env node
// Judges what export.mjs left in DIR: for each export of the run (DIR/run.json), that the client
// completed it, that the manifest it got has the Bulk Data v2 shape, that every file the manifest
// names was downloaded with 200, that every line of every file is a JSON object whose resourceType
// is the file's type (and as many as the manifest's count says), and that the error files report
// nothing worse than warnings. Plain Node, no dependencies: it reads files, it talks to no server.
// See README.md in this directory.
//
// Output: one line per check, `PASS name` or `FAIL name: reason`, one summary line per export
// (files, lines per type), then exactly one line `N passed, M failed`. Exit status 0 when M is 0,
// 1 otherwise, 2 for a usage error.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { readCommandLine } from "../command_line.mjs";

const usage = `usage: node check.mjs --out DIR [--allow-empty]

  --out DIR       the folder export.mjs wrote (DIR/run.json and a folder per export)
  --allow-empty   an export whose manifest lists no output file passes (by default it fails: an
                  export of a server with data that lists nothing proves nothing)`;

// Unknown options are export.mjs's (run.sh may hand both the same arguments): ignored here.
const { args } = readCommandLine({
  usage,
  strict: false,
  required: ["out"],
  options: {
    out: { type: "string" },
    "allow-empty": { type: "boolean", default: false },
  },
});
const runFile = join(args.out, "run.json");
if (!existsSync(runFile)) {
  console.error(`${runFile}: no such file (run export.mjs first)`);
  process.exit(2);
}
const run = JSON.parse(readFileSync(runFile, "utf8"));

let passed = 0;
let failed = 0;
class CheckFailed extends Error {}
function expect(condition, reason) {
  if (!condition) throw new CheckFailed(reason);
}
function check(name, body) {
  try {
    const note = body();
    passed++;
    console.log(`PASS ${name}`);
    if (typeof note === "string" && note) console.log(`    ${note}`);
    return true;
  } catch (e) {
    failed++;
    const reason = e instanceof CheckFailed ? e.message : `${e?.name ?? "Error"}: ${e?.message ?? e}`;
    console.log(`FAIL ${name}: ${String(reason).replace(/\s*\n\s*/g, " ")}`);
    return false;
  }
}

// FHIR instant: a date-time with seconds and a time zone.
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const RESOURCE_TYPE = /^[A-Z][A-Za-z]+$/;
const FAILING_SEVERITIES = new Set(["fatal", "error"]);
const limit = (text, n = 160) => (text.length > n ? `${text.slice(0, n)}...` : text);

// Reads a downloaded NDJSON file: every line, but for the empty one after a final newline, must be
// a JSON object with `resourceType` equal to `type`. Returns the resources; throws CheckFailed.
function readNdjson(dir, file) {
  const text = readFileSync(join(dir, file.path), "utf8");
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const resources = [];
  lines.forEach((line, i) => {
    const where = `${file.path} line ${i + 1}`;
    let value;
    try {
      value = JSON.parse(line.endsWith("\r") ? line.slice(0, -1) : line);
    } catch (e) {
      throw new CheckFailed(`${where} is not JSON (${e.message}): ${limit(JSON.stringify(line))}`);
    }
    expect(value !== null && typeof value === "object" && !Array.isArray(value), `${where} is not a JSON object: ${limit(line)}`);
    expect(value.resourceType === file.type, `${where} is a ${value.resourceType ?? "thing with no resourceType"}, in a file of type ${file.type}`);
    resources.push(value);
  });
  return resources;
}

const summaries = [];
for (const name of run.exports) {
  const dir = join(args.out, name);
  const resultFile = join(dir, "result.json");
  const result = existsSync(resultFile) ? JSON.parse(readFileSync(resultFile, "utf8")) : undefined;

  const completed = check(`${name}.completed`, () => {
    expect(result, `${resultFile} is missing: the export did not run to its end`);
    expect(result.ok, `${result.kickoff?.method} ${result.kickoff?.url}: ${result.error}`);
    return `${result.kickoff.method} ${result.kickoff.url} -> 202; ${result.polls} status request(s) to ${result.statusUrl}; manifest and downloads in ${result.seconds} s`;
  });
  if (!completed) {
    summaries.push(`${name}: failed`);
    continue;
  }
  const manifest = result.manifest;

  check(`${name}.manifest`, () => {
    expect(typeof manifest.transactionTime === "string" && INSTANT.test(manifest.transactionTime),
      `transactionTime ${JSON.stringify(manifest.transactionTime)} is not a FHIR instant`);
    expect(typeof manifest.request === "string", `request ${JSON.stringify(manifest.request)} is not a string`);
    let request;
    try {
      request = new URL(manifest.request);
    } catch {
      throw new CheckFailed(`request ${JSON.stringify(manifest.request)} is not an absolute URL`);
    }
    const kickoffPath = new URL(result.kickoff.url).pathname;
    expect(decodeURIComponent(request.pathname) === decodeURIComponent(kickoffPath),
      `request ${manifest.request} is not the kick-off ${result.kickoff.url}`);
    expect(manifest.requiresAccessToken === true, `requiresAccessToken is ${JSON.stringify(manifest.requiresAccessToken)}, not true`);
    expect(Array.isArray(manifest.output), `output is ${JSON.stringify(manifest.output)}, not an array`);
    expect(Array.isArray(manifest.error), `error is ${JSON.stringify(manifest.error)}, not an array`);
    for (const [list, items] of [["output", manifest.output], ["error", manifest.error]]) {
      items.forEach((item, i) => {
        const where = `${list}[${i}]`;
        expect(typeof item?.type === "string" && RESOURCE_TYPE.test(item.type), `${where}.type ${JSON.stringify(item?.type)} is not a resource type`);
        let url;
        try {
          url = new URL(item.url);
        } catch {
          throw new CheckFailed(`${where}.url ${JSON.stringify(item?.url)} is not an absolute URL`);
        }
        expect(url.protocol === "https:", `${where}.url ${item.url} is not https`);
        expect(item.count === undefined || (Number.isInteger(item.count) && item.count >= 0), `${where}.count ${JSON.stringify(item.count)} is not a whole number`);
      });
    }
    expect(manifest.output.length > 0 || args["allow-empty"], "output lists no file (use --allow-empty if that is right)");
    return `transactionTime ${manifest.transactionTime}; ${manifest.output.length} output file(s), ${manifest.error.length} error file(s)`;
  });

  const files = result.files ?? [];
  check(`${name}.download`, () => {
    const bad = files.filter((f) => f.error || f.status !== 200);
    expect(bad.length === 0,
      bad.map((f) => `${f.url}: ${f.error ?? `${f.status}${f.contentType ? ` ${f.contentType}` : ""}`}`).join("; "));
    const types = [...new Set(files.map((f) => f.contentType ?? "no Content-Type"))];
    return `${files.length} file(s) downloaded by the client, ${files.reduce((n, f) => n + (f.bytes ?? 0), 0)} bytes; Content-Type ${types.join(", ")}`;
  });

  const perType = new Map();
  let lines = 0;
  const outputs = files.filter((f) => f.kind === "output");
  check(`${name}.ndjson`, () => {
    const problems = [];
    const seen = new Set();
    let duplicates = 0;
    for (const file of outputs) {
      if (!existsSync(join(dir, file.path))) {
        problems.push(`${file.path} (${file.url}) was not downloaded`);
        continue;
      }
      try {
        const resources = readNdjson(dir, file);
        if (file.count !== undefined && file.count !== resources.length) {
          problems.push(`${file.path}: the manifest's count is ${file.count}, the file has ${resources.length} line(s)`);
        }
        lines += resources.length;
        perType.set(file.type, (perType.get(file.type) ?? 0) + resources.length);
        for (const r of resources) {
          const key = `${r.resourceType}/${r.id}`;
          if (r.id !== undefined && seen.has(key)) duplicates++;
          seen.add(key);
        }
      } catch (e) {
        problems.push(e.message);
      }
    }
    expect(problems.length === 0, problems.join("; "));
    return `${lines} line(s), each a JSON resource of its file's type${duplicates ? `; note: ${duplicates} resource(s) appear more than once` : ""}`;
  });

  check(`${name}.errors`, () => {
    const problems = [];
    const notes = [];
    for (const file of files.filter((f) => f.kind === "error")) {
      if (!existsSync(join(dir, file.path))) {
        problems.push(`error file ${file.url} was not downloaded`);
        continue;
      }
      try {
        expect(file.type === "OperationOutcome", `error file ${file.url} is of type ${file.type}, not OperationOutcome`);
        for (const outcome of readNdjson(dir, file)) {
          for (const issue of outcome.issue ?? []) {
            const text = `${issue.severity}/${issue.code}: ${issue.details?.text ?? issue.diagnostics ?? ""}`;
            (FAILING_SEVERITIES.has(issue.severity) ? problems : notes).push(text);
          }
        }
      } catch (e) {
        problems.push(e.message);
      }
    }
    expect(problems.length === 0, `the server reports ${problems.join("; ")}`);
    return notes.length ? `the server notes: ${notes.join("; ")}` : "";
  });

  const types = [...perType].map(([type, n]) => `${type} ${n}`).join(", ");
  summaries.push(`${name}: ${outputs.length} file(s), ${lines} line(s)${types ? ` (${types})` : ""}, ${result.polls} poll(s), ${result.seconds} s`);
}

console.log(`bulk export summary: ${summaries.join("; ")}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
