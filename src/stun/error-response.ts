import { StunErrorResponseError } from '../errors.js';
import { type StunMessage, AttrType, errorCode, getAttribute } from '../wire/index.js';

/** The error an error response stands for; a missing or malformed ERROR-CODE is reported as status 0. */
export function errorFromResponse(message: StunMessage): StunErrorResponseError {
  const value = getAttribute(message, AttrType.ErrorCode);
  if (!value) return new StunErrorResponseError(0, 'error response without ERROR-CODE');
  try {
    const { code, reason } = errorCode.decode(value);
    // coturn 4.6 counts a C string's terminating NUL into some reason phrases.
    return new StunErrorResponseError(code, reason.replace(/\0+$/, ''));
  } catch (error) {
    return new StunErrorResponseError(0, `malformed ERROR-CODE: ${(error as Error).message}`);
  }
}
