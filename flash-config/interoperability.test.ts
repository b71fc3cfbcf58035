import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { verifyFlashConfig, type VerifiedFlashConfig } from './verify-flash-config.js';
import { provisionUnit } from './unit-provisioning.js';
import { scratchAuthority, unitRequest } from './test-support/fixtures.js';

let scratch: Awaited<ReturnType<typeof scratchAuthority>>;
let first: VerifiedFlashConfig;
let second: VerifiedFlashConfig;
beforeAll(async () => {
  scratch = await scratchAuthority();
  for (const unit of ['unit-1', 'unit-2']) await provisionUnit(scratch.authority, unitRequest(unit), join(scratch.root, unit));
  first = await verifyFlashConfig(join(scratch.root, 'unit-1'));
  second = await verifyFlashConfig(join(scratch.root, 'unit-2'));
});
afterAll(() => scratch.cleanup());

describe('third parties accept what the provisioner writes', () => {
  it('openssl verifies the unit certificate chain for TLS client and server use, and the policy signature', () => {
    const dir = join(scratch.root, 'unit-1');
    for (const purpose of ['sslclient', 'sslserver']) {
      expect(execFileSync('openssl', ['verify', '-CAfile', 'ca.crt', '-purpose', purpose, 'unit.crt'], { cwd: dir, encoding: 'utf8' })).toBe('unit.crt: OK\n');
    }
    const publicKey = execFileSync('openssl', ['x509', '-in', 'policy-signer.crt', '-pubkey', '-noout'], { cwd: dir });
    const keyFile = join(scratch.root, 'policy-signer.pub.pem');
    writeFileSync(keyFile, publicKey);
    expect(
      execFileSync('openssl', ['dgst', '-sha256', '-verify', keyFile, '-signature', 'policy.json.sig', 'policy.json'], { cwd: dir, encoding: 'utf8' }),
    ).toBe('Verified OK\n');
  });

  it('two units complete mutual TLS on loopback with their flash-config material', async () => {
    const server = createServer({ ...first.tls, requestCert: true, rejectUnauthorized: true }, (socket) => socket.end('hello'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const serverSide = once(server, 'secureConnection') as Promise<[TLSSocket]>;
    try {
      const client = connect({
        ...second.tls,
        host: '127.0.0.1',
        port: (server.address() as AddressInfo).port,
        // Units name each other by unit id, not DNS: identity is checked with verifyPeer below.
        checkServerIdentity: () => undefined,
      });
      await once(client, 'secureConnect');
      const [accepted] = await serverSide;
      const serverSeen = await second.verifyPeer(new Uint8Array(client.getPeerX509Certificate()!.raw));
      const clientSeen = await first.verifyPeer(new Uint8Array(accepted.getPeerX509Certificate()!.raw));
      expect([serverSeen.unitId, clientSeen.unitId]).toEqual(['unit-1', 'unit-2']);
      const [greeting] = await once(client, 'data');
      expect(String(greeting)).toBe('hello');
      client.destroy();
    } finally {
      server.close();
    }
  });
});
