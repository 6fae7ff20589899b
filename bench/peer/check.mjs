// Checks a running peer server against the NDJSON file it loaded: reads a Patient by id (its NHS
// number), searches Observation?patient=Patient/X&code=system|code, creates an Observation, reads and
// vreads it back. Prints one line a check; exits 1 on the first failure.
//
//   node bench/peer/check.mjs --base-url http://127.0.0.1:PORT/fhir --load FILE.ndjson
//
// The peer matches a reference search parameter only by the typed form (patient=Patient/X), not by the
// bare id (patient=X) that FHIR also allows: the check uses the typed form and reports what the bare
// form gives, so that benchmark path lists for the peer are written with "Patient/".
import fs from 'node:fs';
import readline from 'node:readline';

const options = { 'base-url': undefined, load: undefined };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i += 2) {
  const name = args[i].replace(/^--/, '');
  if (!(name in options) || i + 1 >= args.length) {
    console.error('usage: node check.mjs --base-url http://127.0.0.1:PORT/fhir --load FILE.ndjson');
    process.exit(2);
  }
  options[name] = args[i + 1];
}
if (!options['base-url'] || !options.load) {
  console.error('usage: node check.mjs --base-url http://127.0.0.1:PORT/fhir --load FILE.ndjson');
  process.exit(2);
}
const base = options['base-url'].replace(/\/+$/, '');

function fail(message) {
  console.log(`FAIL ${message}`);
  process.exit(1);
}
function pass(message) {
  console.log(`ok   ${message}`);
}
async function call(method, path, body) {
  const response = await fetch(`${base}/${path}`, {
    method,
    headers: { Accept: 'application/fhir+json', ...(body ? { 'Content-Type': 'application/fhir+json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    fail(`${method} ${path}: ${response.status}, the body is not JSON: ${text.slice(0, 300)}`);
  }
  return { status: response.status, headers: response.headers, json };
}

// The first Patient in the file and the first Observation about them, with its first coding.
let patient;
let observation;
const lines = readline.createInterface({ input: fs.createReadStream(options.load), crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  const resource = JSON.parse(line);
  if (!patient && resource.resourceType === 'Patient') patient = resource;
  if (patient && resource.resourceType === 'Observation' && resource.subject?.reference === `Patient/${patient.id}` &&
      resource.code?.coding?.[0]?.code) {
    observation = resource;
    break;
  }
}
lines.close();
if (!patient || !observation) fail(`${options.load} has no Patient with an Observation`);
const nhsNumber = patient.identifier?.find((i) => i.system === 'https://fhir.nhs.uk/Id/nhs-number')?.value;

// 1. Read by id: the id is the NHS number, as in caregate.
{
  const { status, headers, json } = await call('GET', `Patient/${patient.id}`);
  if (status !== 200) fail(`GET Patient/${patient.id}: ${status} ${JSON.stringify(json).slice(0, 300)}`);
  if (json.resourceType !== 'Patient' || json.id !== patient.id) fail(`GET Patient/${patient.id}: got ${json.resourceType}/${json.id}`);
  const got = json.identifier?.find((i) => i.system === 'https://fhir.nhs.uk/Id/nhs-number')?.value;
  if (got !== nhsNumber || patient.id !== nhsNumber) fail(`GET Patient/${patient.id}: NHS number ${got}, expected ${nhsNumber} = id`);
  if (!headers.get('etag')) fail(`GET Patient/${patient.id}: no ETag`);
  pass(`GET Patient/${patient.id}: 200, NHS number ${got}, ETag ${headers.get('etag')}`);
}

// 2. Search by patient and code: every entry is an Observation of that patient with that code, and
//    the loaded one is among them.
const { system, code } = observation.code.coding[0];
{
  const path = `Observation?patient=Patient/${patient.id}&code=${encodeURIComponent(`${system}|${code}`)}`;
  const { status, json } = await call('GET', path);
  if (status !== 200 || json.resourceType !== 'Bundle') fail(`GET ${path}: ${status} ${JSON.stringify(json).slice(0, 300)}`);
  const entries = json.entry ?? [];
  for (const { resource } of entries) {
    if (resource.resourceType !== 'Observation' || resource.subject?.reference !== `Patient/${patient.id}` ||
        !resource.code?.coding?.some((c) => c.system === system && c.code === code)) {
      fail(`GET ${path}: an entry that does not match: ${JSON.stringify(resource).slice(0, 300)}`);
    }
  }
  if (!entries.some(({ resource }) => resource.id === observation.id)) fail(`GET ${path}: Observation/${observation.id} is missing`);
  pass(`GET ${path}: 200, ${entries.length} matching Observation(s), total ${json.total}`);

  const bare = `Observation?patient=${patient.id}&code=${encodeURIComponent(`${system}|${code}`)}`;
  const answer = await call('GET', bare);
  console.log(`note GET ${bare} (bare id): ${answer.status}, ${answer.json.entry?.length ?? 0} entries ` +
    '(the peer matches references only in the typed form Patient/X)');
}

// 3. Create, then read and vread what was created.
{
  const body = {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
    subject: { reference: `Patient/${patient.id}` },
    effectiveDateTime: '2026-11-01T09:00:00Z',
    valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
  };
  const { status, headers, json } = await call('POST', 'Observation', body);
  if (status !== 201) fail(`POST Observation: ${status} ${JSON.stringify(json).slice(0, 300)}`);
  if (json.resourceType !== 'Observation' || !json.id || !json.meta?.versionId || json.valueQuantity?.value !== 72) {
    fail(`POST Observation: unexpected answer ${JSON.stringify(json).slice(0, 300)}`);
  }
  if (!headers.get('location')?.includes(`Observation/${json.id}`)) fail(`POST Observation: Location ${headers.get('location')}`);
  pass(`POST Observation: 201, Observation/${json.id}, Location ${headers.get('location')}`);

  const read = await call('GET', `Observation/${json.id}`);
  if (read.status !== 200 || read.json.id !== json.id || read.json.subject?.reference !== `Patient/${patient.id}`) {
    fail(`GET Observation/${json.id}: ${read.status} ${JSON.stringify(read.json).slice(0, 300)}`);
  }
  const vread = await call('GET', `Observation/${json.id}/_history/${json.meta.versionId}`);
  if (vread.status !== 200 || vread.json.meta?.versionId !== json.meta.versionId) {
    fail(`GET Observation/${json.id}/_history/${json.meta.versionId}: ${vread.status}`);
  }
  pass(`GET Observation/${json.id} and its _history/${json.meta.versionId}: 200`);
}

// 4. Not found is a 404 with an OperationOutcome.
{
  const { status, json } = await call('GET', 'Patient/no-such-patient');
  if (status !== 404 || json.resourceType !== 'OperationOutcome') fail(`GET Patient/no-such-patient: ${status}`);
  pass('GET Patient/no-such-patient: 404 OperationOutcome');
}
console.log('PEER CHECK PASSED');
