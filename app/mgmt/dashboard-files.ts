/* The dashboard's static files (app/dashboard), read once at start and served from memory. */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// From the sources (app/mgmt) and from the build (dist/app/mgmt): tsc does not copy html/js/css.
const CANDIDATES = [path.join(here, '../dashboard'), path.join(here, '../../../app/dashboard')];
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

export interface StaticFile {
  type: string;
  body: Buffer;
}

export function loadDashboardFiles(): Map<string, StaticFile> {
  const dir = CANDIDATES.find((candidate) => existsSync(path.join(candidate, 'index.html')));
  if (!dir) throw new Error(`dashboard files not found (looked in ${CANDIDATES.join(', ')})`);
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (type) files.set(name, { type, body: readFileSync(path.join(dir, name)) });
  }
  return files;
}
