import { z } from 'zod';

/** An IPv4 or IPv6 address literal (no prefix, no zone). */
export const ipAddress = z.union([z.ipv4(), z.ipv6()], { error: 'must be an IPv4 or IPv6 address' });

export const ipv6Address = z.ipv6({ error: 'must be an IPv6 address' });

/** Names that also appear in certificates and file paths: DNS-label-like, so they need no escaping. */
export const dnsLabel = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'must be 1-63 lowercase letters, digits or inner hyphens');

export const port = z.int().min(1).max(65535);

/** Monotonic configuration version shared by identity and policy (CL-R6 compares it between units). */
export const configVersion = z.int().min(1);
