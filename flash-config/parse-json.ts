import type { z } from 'zod';
import { FlashConfigError } from './flash-config-error.js';

/** `services[0].servers[1].port` style path of a zod issue, `(root)` for the document itself. */
export function jsonPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((key, index) => (typeof key === 'number' ? `[${key}]` : `${index === 0 ? '' : '.'}${String(key)}`))
    .join('');
}

/** Parses JSON bytes against a schema; failures name the file, the JSON path and the rule broken. */
export function parseJson<S extends z.ZodType>(file: string, bytes: Uint8Array, schema: S): z.infer<S> {
  let document: unknown;
  try {
    document = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new FlashConfigError(file, `not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  return parseValue(file, document, schema);
}

/** Validates an in-memory document as the content of `file`, with the same error shape as parseJson. */
export function parseValue<S extends z.ZodType>(file: string, document: unknown, schema: S): z.infer<S> {
  const result = schema.safeParse(document);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `${jsonPath(issue.path)}: ${issue.message}`);
    throw new FlashConfigError(file, `schema violation at ${issues.join('; ')}`, { cause: result.error });
  }
  return result.data;
}
