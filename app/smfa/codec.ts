import { ByteReader } from './byte-reader.js';
import { DecodeFailure, EncodeError, type DecodeError } from './errors.js';
import { MAC_OFFSET, computeMessageMac } from './message-mac.js';
import { MESSAGE_RULES, SENT_AS_REQUIRED, isAllowed } from './message-rules.js';
import { messageToSegments, segmentsToMessage, type SegmentSet } from './message-segments.js';
import { decodeSegmentBody, encodeSegmentBody } from './segment-bodies.js';
import type { Message, Security, Segment } from './types.js';
import {
  HMAC_SHA256_LENGTH,
  MESSAGE_HEADER_LENGTH,
  MessageTypeCode,
  PROTOCOL_VERSION,
  REQUIRED_FLAG,
  SEGMENT_ALIGNMENT,
  SEGMENT_HEADER_LENGTH,
  SegmentTypeCode,
  invert,
  type MessageType,
  type SegmentKind,
} from './wire-constants.js';

const MAX_LENGTH = 0xffff;
const messageTypeByCode = invert(MessageTypeCode);
const segmentKindByCode = invert(SegmentTypeCode);

function padded(length: number): number {
  return Math.ceil(length / SEGMENT_ALIGNMENT) * SEGMENT_ALIGNMENT;
}

export interface SealParams {
  keyId: number;
  secret: Buffer;
  /** Identifies the sender inside the MAC-covered bytes; the replay window is kept per sender and key. */
  senderId: number;
  sequence: bigint;
}

export interface EncodeOptions {
  /** When given, a security segment is put first and the message is authenticated with HMAC-SHA-256. */
  seal?: SealParams;
}

/** Encodes one segment: header, body, zero padding to the 4-byte boundary. */
export function encodeSegment(segment: Segment, required = SENT_AS_REQUIRED.has(segment.kind)): Buffer {
  const body = encodeSegmentBody(segment);
  const length = SEGMENT_HEADER_LENGTH + body.length;
  if (length > MAX_LENGTH) throw new EncodeError(segment.kind, `segment of ${length} bytes exceeds ${MAX_LENGTH}`);
  const out = Buffer.alloc(padded(length));
  out.writeUInt8(SegmentTypeCode[segment.kind], 0);
  out.writeUInt8(required ? REQUIRED_FLAG : 0, 1);
  out.writeUInt16BE(length, 2);
  body.copy(out, SEGMENT_HEADER_LENGTH);
  return out;
}

export function encodeMessage(msg: Message, options: EncodeOptions = {}): Buffer {
  const code = MessageTypeCode[msg.type];
  if (code === undefined) throw new EncodeError('type', `"${String(msg.type)}" is not a message type`);
  const { seal } = options;
  const security: Segment[] = seal
    ? [{ kind: 'security', value: { keyId: seal.keyId, senderId: seal.senderId, sequence: seal.sequence, mac: Buffer.alloc(HMAC_SHA256_LENGTH) } }]
    : [];
  const segments = [...security, ...messageToSegments(msg)].map((s) => encodeSegment(s));
  const total = MESSAGE_HEADER_LENGTH + segments.reduce((n, s) => n + s.length, 0);
  if (total > MAX_LENGTH) throw new EncodeError('length', `message of ${total} bytes exceeds ${MAX_LENGTH}`);
  const header = Buffer.alloc(MESSAGE_HEADER_LENGTH);
  header.writeUInt8(PROTOCOL_VERSION, 0);
  header.writeUInt8(code, 1);
  header.writeUInt16BE(total, 2);
  const datagram = Buffer.concat([header, ...segments]);
  if (seal) computeMessageMac(datagram, seal.secret).copy(datagram, MAC_OFFSET);
  return datagram;
}

export interface SkippedSegment {
  segmentType: number;
  offset: number;
  length: number;
  why: 'unknown-type' | 'not-allowed-in-message';
}

export type DecodeResult =
  | { ok: true; message: Message; skipped: SkippedSegment[]; security?: Security }
  | { ok: false; error: DecodeError };

function fail(error: DecodeError): never {
  throw new DecodeFailure(error);
}

interface SegmentHeader {
  typeCode: number;
  required: boolean;
  length: number;
  offset: number;
}

function readSegmentHeader(buf: Buffer, offset: number): SegmentHeader {
  const left = buf.length - offset;
  if (left < SEGMENT_HEADER_LENGTH) {
    fail({ code: 'truncated', reason: `segment header needs ${SEGMENT_HEADER_LENGTH} bytes, ${left} left`, offset });
  }
  const typeCode = buf.readUInt8(offset);
  const required = (buf.readUInt8(offset + 1) & REQUIRED_FLAG) !== 0;
  const length = buf.readUInt16BE(offset + 2);
  const where = { offset, segmentType: typeCode, required };
  if (length < SEGMENT_HEADER_LENGTH) {
    fail({ code: 'bad-segment-length', reason: `segment length ${length} is shorter than its ${SEGMENT_HEADER_LENGTH}-byte header`, ...where });
  }
  if (padded(length) > left) {
    fail({ code: 'bad-segment-length', reason: `segment length ${length} (padded ${padded(length)}) runs past the message end, ${left} bytes left`, ...where });
  }
  return { typeCode, required, length, offset };
}

function decodeOrThrow(buf: Buffer): Extract<DecodeResult, { ok: true }> {
  if (buf.length < MESSAGE_HEADER_LENGTH) {
    fail({ code: 'truncated', reason: `message header needs ${MESSAGE_HEADER_LENGTH} bytes, datagram has ${buf.length}`, offset: 0 });
  }
  const version = buf.readUInt8(0);
  if (version !== PROTOCOL_VERSION) fail({ code: 'unsupported-version', reason: `version ${version}, this receiver speaks ${PROTOCOL_VERSION}`, offset: 0 });
  const type = messageTypeByCode.get(buf.readUInt8(1));
  if (type === undefined) fail({ code: 'unknown-message-type', reason: `message type ${buf.readUInt8(1)} is not one of 1..6`, offset: 1 });
  const total = buf.readUInt16BE(2);
  if (total !== buf.length) fail({ code: 'length-mismatch', reason: `header says ${total} bytes, datagram has ${buf.length}`, offset: 2 });

  const found: SegmentSet = {};
  const skipped: SkippedSegment[] = [];
  for (let offset = MESSAGE_HEADER_LENGTH; offset < total; ) {
    const header = readSegmentHeader(buf, offset);
    decodeOneSegment(buf, type, header, found, skipped);
    offset += padded(header.length);
  }
  checkMandatory(type, found);
  const message = segmentsToMessage(type, found);
  return found.security === undefined ? { ok: true, message, skipped } : { ok: true, message, skipped, security: found.security };
}

function decodeOneSegment(buf: Buffer, type: MessageType, header: SegmentHeader, found: SegmentSet, skipped: SkippedSegment[]): void {
  const { typeCode, required, length, offset } = header;
  const where = { offset, segmentType: typeCode, required };
  const kind = segmentKindByCode.get(typeCode);
  if (kind === undefined) {
    if (required) fail({ code: 'unknown-required-segment', reason: `segment type ${typeCode} is unknown and marked required`, ...where });
    skipped.push({ segmentType: typeCode, offset, length, why: 'unknown-type' });
    return;
  }
  if (kind === 'security' && offset !== MESSAGE_HEADER_LENGTH) {
    fail({ code: 'security-not-first', reason: 'security segment must immediately follow the message header', ...where });
  }
  if (!isAllowed(type, kind)) {
    if (required) fail({ code: 'segment-not-allowed', reason: `${kind} segment is not part of a ${type} message and is marked required`, ...where });
    skipped.push({ segmentType: typeCode, offset, length, why: 'not-allowed-in-message' });
    return;
  }
  if (found[kind] !== undefined) fail({ code: 'duplicate-segment', reason: `${kind} segment appears more than once`, ...where });
  if (type === 'affinity-update-deny' && (kind === 'wildcard-affinity' || kind === 'fixed-affinity') && (found['wildcard-affinity'] ?? found['fixed-affinity']) !== undefined) {
    fail({ code: 'duplicate-segment', reason: 'a deny carries at most one original affinity, wildcard or fixed', ...where });
  }
  const bodyOffset = offset + SEGMENT_HEADER_LENGTH;
  const reader = new ByteReader(buf.subarray(bodyOffset, offset + length), bodyOffset);
  try {
    setSegment(found, kind, decodeSegmentBody(kind, reader));
  } catch (e) {
    if (e instanceof DecodeFailure) fail({ ...e.error, segmentType: typeCode, required });
    throw e;
  }
}

function setSegment<K extends SegmentKind>(found: SegmentSet, kind: K, value: SegmentSet[K]): void {
  found[kind] = value;
}

function checkMandatory(type: MessageType, found: SegmentSet): void {
  for (const kind of MESSAGE_RULES[type].mandatory) {
    if (found[kind] === undefined) {
      fail({ code: 'missing-segment', reason: `${type} message has no ${kind} segment`, offset: MESSAGE_HEADER_LENGTH, segmentType: SegmentTypeCode[kind] });
    }
  }
}

export type SegmentDecodeResult = { ok: true; segment: Segment; required: boolean } | { ok: false; error: DecodeError };

/** Decodes one known segment in isolation (message rules do not apply), e.g. to inspect a captured segment. */
export function decodeSegment(buf: Buffer): SegmentDecodeResult {
  try {
    const header = readSegmentHeader(buf, 0);
    if (padded(header.length) !== buf.length) {
      fail({ code: 'bad-segment-length', reason: `segment length ${header.length} (padded ${padded(header.length)}) but ${buf.length} bytes given`, offset: 0 });
    }
    const kind = segmentKindByCode.get(header.typeCode);
    if (kind === undefined) fail({ code: 'bad-field', reason: `type: ${header.typeCode} is not a known segment type`, offset: 0, segmentType: header.typeCode, required: header.required });
    const value = decodeSegmentBody(kind, new ByteReader(buf.subarray(SEGMENT_HEADER_LENGTH, header.length), SEGMENT_HEADER_LENGTH));
    return { ok: true, segment: { kind, value } as Segment, required: header.required };
  } catch (e) {
    if (e instanceof DecodeFailure) return { ok: false, error: e.error };
    throw e;
  }
}

/** Never throws for any input: every malformed datagram yields an error naming the field and why. */
export function decodeMessage(buf: Buffer): DecodeResult {
  try {
    return decodeOrThrow(buf);
  } catch (e) {
    if (e instanceof DecodeFailure) return { ok: false, error: e.error };
    throw e;
  }
}
