import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { decodeMessage, decodeSegment, encodeMessage } from '../../app/smfa/codec.js';
import { MessageAuthenticator } from '../../app/smfa/message-authenticator.js';
import * as arb from '../../app/smfa/test-support/arbitraries.js';

export interface FuzzOptions {
  inputs: number;
  seed: number;
  /** Wall-clock bound for the whole run; exceeding it is reported as a failure (a hang or a slowdown). */
  budgetMs: number;
}

export interface FuzzReport {
  inputs: number;
  accepted: number;
  rejectedByCode: Record<string, number>;
  authenticatorOutcomes: Record<string, number>;
  failures: string[];
  slowestInputMs: number;
  elapsedMs: number;
}

/** mulberry32: tiny, fast, and reproducible from the seed printed in the report. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = [0x00, 0x01, 0x04, 0x06, 0x7f, 0x80, 0xfe, 0xff];
const secret = Buffer.from('fuzz secret');

function corpus(seed: number): Buffer[] {
  const messages = fc.sample(arb.message, { numRuns: 400, seed });
  const sealer = new MessageAuthenticator({ keys: new Map([[1, secret]]), sendKeyId: 1, senderId: 1 });
  return [...messages.map((m) => encodeMessage(m)), ...messages.slice(0, 100).map((m) => sealer.seal(m))];
}

function mutate(seedInput: Buffer, other: Buffer, rand: () => number): Buffer {
  const pick = (n: number) => Math.floor(rand() * n);
  let b = Buffer.from(seedInput);
  const rounds = 1 + pick(4);
  for (let i = 0; i < rounds; i++) {
    switch (pick(8)) {
      case 0:
        if (b.length > 0) b[pick(b.length)]! ^= 1 << pick(8);
        break;
      case 1:
        if (b.length > 0) b[pick(b.length)] = INTERESTING[pick(INTERESTING.length)]!;
        break;
      case 2:
        b = b.subarray(0, pick(b.length + 1));
        break;
      case 3:
        b = Buffer.concat([b, Buffer.from(Array.from({ length: pick(16) }, () => pick(256)))]);
        break;
      case 4: {
        // Rewrite a 16-bit field at a 4-byte boundary + 2: where every segment length lives.
        const at = (pick(Math.max(1, b.length >> 2)) << 2) + 2;
        if (at + 2 <= b.length) b.writeUInt16BE(rand() < 0.5 ? pick(0x10000) : pick(64), at);
        break;
      }
      case 5: {
        const cut = pick(b.length + 1);
        b = Buffer.concat([b.subarray(0, cut), other.subarray(pick(other.length + 1))]);
        break;
      }
      case 6: {
        const from = pick(b.length + 1);
        b = Buffer.concat([b.subarray(0, from), b.subarray(from, from + pick(64)), b.subarray(from)]);
        break;
      }
      default:
        b = Buffer.from(Array.from({ length: pick(128) }, () => pick(256)));
    }
  }
  // Usually keep the header length honest so mutations get past it into segment parsing.
  if (b.length >= 4 && rand() < 0.8) b.writeUInt16BE(Math.min(b.length, 0xffff), 2);
  if (b.length >= 1 && rand() < 0.8) b[0] = 1;
  return b;
}

function check(input: Buffer, report: FuzzReport, authenticator: MessageAuthenticator): void {
  const result = decodeMessage(input);
  if (!result.ok) {
    report.rejectedByCode[result.error.code] = (report.rejectedByCode[result.error.code] ?? 0) + 1;
    if (typeof result.error.reason !== 'string' || result.error.reason.length === 0) throw new Error('decode error without a reason');
  } else {
    report.accepted++;
    // Whatever decodes must re-encode to something that decodes to the same message.
    const again = decodeMessage(encodeMessage(result.message));
    if (!again.ok || !isDeepStrictEqual(again.message, result.message)) throw new Error('decode -> encode -> decode is not stable');
  }
  if (input.length >= 8) decodeSegment(input.subarray(4));
  const outcome = authenticator.open(input);
  const key = outcome.ok ? 'accepted' : outcome.reason;
  report.authenticatorOutcomes[key] = (report.authenticatorOutcomes[key] ?? 0) + 1;
}

export function runFuzz(options: FuzzOptions): FuzzReport {
  const rand = prng(options.seed);
  const seeds = corpus(options.seed);
  const authenticator = new MessageAuthenticator({ keys: new Map([[1, secret]]), sendKeyId: 1, senderId: 2 });
  const report: FuzzReport = { inputs: 0, accepted: 0, rejectedByCode: {}, authenticatorOutcomes: {}, failures: [], slowestInputMs: 0, elapsedMs: 0 };
  const start = performance.now();
  for (let i = 0; i < options.inputs; i++) {
    const input = mutate(seeds[Math.floor(rand() * seeds.length)]!, seeds[Math.floor(rand() * seeds.length)]!, rand);
    const t0 = performance.now();
    try {
      check(input, report, authenticator);
    } catch (e) {
      if (report.failures.length < 20) report.failures.push(`${(e as Error).message} on input ${input.toString('hex')}`);
    }
    report.inputs++;
    report.slowestInputMs = Math.max(report.slowestInputMs, performance.now() - t0);
    if ((i & 0x3ff) === 0 && performance.now() - start > options.budgetMs) {
      report.failures.push(`time budget of ${options.budgetMs} ms exceeded after ${report.inputs} inputs`);
      break;
    }
  }
  report.elapsedMs = Math.round(performance.now() - start);
  return report;
}
