import { StunErrorResponseError } from '../errors.js';
import { type StunMessage, AttrType, errorCode, getAttribute } from '../wire/index.js';

/** The error an error response stands for; a missing or malformed ERROR-CODE is reported as status 0. */
export function errorFromResponse(message: StunMessage): StunErrorResponseError {
  const value = getAttribute(message, AttrType.ErrorCode);
  if (!value) return new StunErrorResponseError(0, 'error response without ERROR-CODE');
  try {
    const { code, reason } = errorCode.decode(value);
    return new StunErrorResponseError(code, reason);
  } catch (error) {
    return new StunErrorResponseError(0, `malformed ERROR-CODE: ${(error as Error).message}`);
  }
}
