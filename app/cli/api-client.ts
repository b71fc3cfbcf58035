/* HTTPS with mutual TLS to one appliance's management API. Failures are classified so the CLI can
 * say what went wrong and exit with a code scripts can branch on. */
import { request } from 'node:https';
import { readFileSync } from 'node:fs';

export interface ClientCredentials {
  /** Operator certificate, its key, and the cluster CA that must have issued the appliance's certificate. */
  cert: string;
  key: string;
  ca: string;
}

/** The appliance could not be reached at all (no route, nothing listening, timeout). */
export class UnreachableError extends Error {
  override readonly name = 'UnreachableError';
}

/** TLS failed on a certificate: the appliance refused ours, or we do not trust its. */
export class CertificateError extends Error {
  override readonly name = 'CertificateError';
}

/** The appliance answered with an error status. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export function readCredentials(files: { cert: string; key: string; ca: string }): ClientCredentials {
  const read = (what: string, file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      throw new CertificateError(`cannot read the ${what} ${file}: ${(error as Error).message}`);
    }
  };
  return { cert: read('operator certificate', files.cert), key: read('operator key', files.key), ca: read('cluster CA certificate', files.ca) };
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET']);

/** `handshakeDone`: our TLS handshake had completed; with TLS 1.3 the server checks our certificate
 * only after that, so a reset before any answer is its refusal. */
function classify(error: NodeJS.ErrnoException, url: URL, handshakeDone: boolean): Error {
  const code = error.code ?? '';
  if (handshakeDone && code === 'ECONNRESET') {
    return new CertificateError(`${url.host} closed the connection right after the TLS handshake: it refused our certificate; is it an operator certificate from this cluster's CA?`);
  }
  const text = `${code} ${error.message}`;
  if (/alert|certificate required|bad certificate|unknown ca|handshake failure/i.test(text)) {
    return new CertificateError(`${url.host} refused our certificate (${error.message}); is it an operator certificate from this cluster's CA?`);
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(code)) {
    return new CertificateError(`${url.host} presented a certificate we do not trust (${code}: ${error.message}); is --ca this cluster's CA?`);
  }
  if (UNREACHABLE.has(code) || code === 'TIMEOUT') return new UnreachableError(`cannot reach the appliance at ${url.origin} (${code || error.message})`);
  return error;
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    readonly credentials: ClientCredentials,
    readonly timeoutMs = 10_000,
  ) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const text = await this.raw(method, path, body);
    return JSON.parse(text) as T;
  }

  raw(method: string, path: string, body?: unknown): Promise<string> {
    const url = new URL(path, this.baseUrl);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      let handshakeDone = false;
      const req = request(
        url,
        {
          method,
          ...this.credentials,
          timeout: this.timeoutMs,
          headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', (error) => reject(classify(error, url, false)));
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = response.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve(text);
            let message = text;
            try {
              message = (JSON.parse(text) as { message?: string }).message ?? text;
            } catch {
              // not JSON: keep the body as it is
            }
            reject(new ApiError(status, `${method} ${url.pathname}: ${status} ${message}`));
          });
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${this.timeoutMs} ms`), { code: 'TIMEOUT' })));
      req.on('socket', (socket) => socket.once('secureConnect', () => (handshakeDone = true)));
      req.on('error', (error) => reject(classify(error, url, handshakeDone)));
      req.end(payload);
    });
  }
}
