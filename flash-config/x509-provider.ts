// @peculiar/x509 2.x resolves its services through tsyringe, which needs the Reflect metadata API
// installed before @peculiar/x509 is evaluated; ESM evaluates imports in order.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// @peculiar/x509 looks for a global WebCrypto; pin it to Node's so signing and verification never
// depend on what else the process installed. Importing this module is enough.
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
