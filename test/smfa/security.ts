/* The shared secret of the test's managers and agents. */
import { MessageAuthenticator } from '../../app/smfa/message-authenticator.js';

export const TEST_SECRET_HEX = '5e3f8a1c9b2d4e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7';

export function authenticator(senderId: number): MessageAuthenticator {
  return new MessageAuthenticator({ keys: new Map([[1, Buffer.from(TEST_SECRET_HEX, 'hex')]]), sendKeyId: 1, senderId });
}
