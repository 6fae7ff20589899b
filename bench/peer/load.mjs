// Loads an NDJSON file (one FHIR R4 resource a line, as bench/population.py writes it) into a
// @medplum/fhir-router MemoryRepository, keeping every resource's id (a Patient's id is its NHS
// number, as in caregate), through the repository's own createResource (which keeps a given id and
// adds meta.versionId and meta.lastUpdated), one resource at a time.
//
//   import { loadNdjson } from './load.mjs';  await loadNdjson(repo, 'pop.ndjson')  // server.mjs --load
//   node bench/peer/load.mjs pop.ndjson      // alone: loads into a fresh repository, prints the rate
//
// '-' reads standard input.
import fs from 'node:fs';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';

export async function loadNdjson(repo, file) {
  const started = process.hrtime.bigint();
  const input = file === '-' ? process.stdin : fs.createReadStream(file);
  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  let count = 0;
  let lineNumber = 0;
  for await (const line of lines) {
    lineNumber++;
    if (!line.trim()) continue;
    let resource;
    try {
      resource = JSON.parse(line);
    } catch (error) {
      throw new Error(`${file}:${lineNumber}: not JSON: ${error.message}`);
    }
    if (!resource.resourceType || !resource.id) {
      throw new Error(`${file}:${lineNumber}: a resource needs resourceType and id`);
    }
    await repo.createResource(resource);
    count++;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { count, seconds };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/peer/load.mjs FILE.ndjson   (- for standard input)');
    process.exit(2);
  }
  const { MemoryRepository } = await import('@medplum/fhir-router');
  const { count, seconds } = await loadNdjson(new MemoryRepository(), file);
  console.log(`LOADED resources=${count} seconds=${seconds.toFixed(2)} rate=${Math.round(count / seconds)}/s ` +
    `rss_mb=${Math.round(process.memoryUsage().rss / 1048576)}`);
}
