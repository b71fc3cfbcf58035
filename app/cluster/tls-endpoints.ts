/* Mutual-TLS endpoints between units. Both sides present their unit certificate and check the
 * other's with flash-config's verifyPeer (chain to the cluster CA, validity, revocation, unit id):
 * TLS itself proves possession of the key, verifyPeer gives the refusal a reason to log and send. */
import { connect as netConnect } from 'node:net';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { CertificateRejectedError, type CertifiedUnit, type VerifiedFlashConfig } from '../../flash-config/index.js';
import { ControlChannel, FinalRefusal, type RequestHandler } from './control-channel.js';

export type PeerCheck = { ok: true; peer: CertifiedUnit } | { ok: false; reason: string };

async function checkPeer(config: VerifiedFlashConfig, socket: TLSSocket): Promise<PeerCheck> {
  const raw = socket.getPeerCertificate()?.raw;
  if (!raw || raw.length === 0) return { ok: false, reason: 'no certificate presented' };
  try {
    return { ok: true, peer: await config.verifyPeer(new Uint8Array(raw)) };
  } catch (error) {
    if (error instanceof CertificateRejectedError) return { ok: false, reason: `certificate refused: ${error.reason}` };
    throw error;
  }
}

function tlsMaterial(config: VerifiedFlashConfig) {
  return { ...config.tls, minVersion: 'TLSv1.3' as const, rejectUnauthorized: false };
}

export interface ControlServerOptions {
  config: VerifiedFlashConfig;
  host: string;
  port: number;
  /** A verified peer connected: return the handler for its requests and keep the channel. */
  accept(peer: CertifiedUnit, channel: () => ControlChannel): RequestHandler;
  /** A peer's certificate was refused; every request it sends is answered with this reason. */
  refused(reason: string, remoteAddress: string): void;
}

export function startControlServer(options: ControlServerOptions): Promise<Server> {
  const server = createServer({ ...tlsMaterial(options.config), requestCert: true }, (socket) => {
    socket.setNoDelay(true);
    checkPeer(options.config, socket).then(
      (check) => {
        let channel: ControlChannel | undefined;
        const handler: RequestHandler = check.ok
          ? options.accept(check.peer, () => channel as ControlChannel)
          : () => Promise.reject(new FinalRefusal(check.reason));
        channel = new ControlChannel(socket, handler);
        if (!check.ok) {
          options.refused(check.reason, socket.remoteAddress ?? 'unknown');
          setTimeout(() => channel?.close('refused peer sent nothing'), 2000).unref();
        }
      },
      () => socket.destroy(),
    );
  });
  server.on('tlsClientError', () => undefined);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

export interface ConnectedChannel {
  channel: ControlChannel;
  /** The server's certificate as we judged it; a refused server is still asked for its reasons. */
  server: PeerCheck;
}

export function connectControl(
  config: VerifiedFlashConfig,
  target: { host: string; port: number; localAddress: string },
  handler: RequestHandler,
  timeoutMs: number,
): Promise<ConnectedChannel> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      ...tlsMaterial(config),
      socket: netConnect({ host: target.host, port: target.port, localAddress: target.localAddress }),
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TLS to ${target.host}:${target.port}: no handshake within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      checkPeer(config, socket).then((server) => resolve({ channel: new ControlChannel(socket, handler), server }), reject);
    });
  });
}
