import { z } from 'zod';
import { identitySchema } from './identity-schema.js';
import { policySchema } from './policy-schema.js';
import { authorityDescriptionSchema } from './authority-schema.js';
import { revocationListSchema } from './revocation-schema.js';

const SCHEMA_BASE = 'https://edgeplane.invalid/flash-config/';

/**
 * JSON Schema documents for third-party validation, keyed by file name under flash-config/schema/.
 * `io: 'input'` describes what may be written (defaulted fields are optional). Cross-field rules
 * (unique service names and listeners) exist only in the zod schemas.
 */
export function flashConfigJsonSchemas(): Record<string, object> {
  const document = (name: string, title: string, schema: z.ZodType) => ({
    [`${name}.schema.json`]: {
      ...z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' }),
      $id: `${SCHEMA_BASE}${name}.schema.json`,
      title,
    },
  });
  return {
    ...document('identity', 'edgeplane flash config identity.json', identitySchema),
    ...document('policy', 'edgeplane flash config policy.json', policySchema),
    ...document('revoked', 'edgeplane revocation list revoked.json', revocationListSchema),
    ...document('authority', 'edgeplane cluster authority authority.json', authorityDescriptionSchema),
  };
}
