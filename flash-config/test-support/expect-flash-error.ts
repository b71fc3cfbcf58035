import { expect } from 'vitest';
import { FlashConfigError } from '../flash-config-error.js';

/** Asserts the promise rejects with a FlashConfigError about `file` whose reason matches. */
export async function expectFlashError(promise: Promise<unknown>, file: string, reason: RegExp): Promise<FlashConfigError> {
  const error = await promise.then(
    () => undefined,
    (rejection: unknown) => rejection,
  );
  expect(error).toBeInstanceOf(FlashConfigError);
  const flashError = error as FlashConfigError;
  expect({ file: flashError.file, reason: flashError.reason }).toEqual({ file, reason: expect.stringMatching(reason) });
  expect(flashError.message).toBe(`${file}: ${flashError.reason}`);
  return flashError;
}
