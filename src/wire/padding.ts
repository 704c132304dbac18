/**
 * PADDING: bytes with no meaning, used to test path MTU with large responses; its value length
 * is what matters. A whole message body cannot exceed 65535 bytes, so neither can this.
 * @see RFC 5780 §7.6
 */

import { MAX_MESSAGE_BODY_LENGTH } from './constants.js';
import { StunEncodeError } from '../errors.js';

/** Largest value length that still fits a message with only this attribute. */
export const MAX_PADDING_LENGTH = MAX_MESSAGE_BODY_LENGTH - 4 - 3;

export const padding = {
  /** `length` zero bytes. RFC 5780 asks for a multiple of 4; other lengths are allowed and padded. */
  encode(length: number): Uint8Array {
    if (!Number.isInteger(length) || length < 0 || length > MAX_PADDING_LENGTH) {
      throw new StunEncodeError(`attribute PADDING: length ${length} is not 0-${MAX_PADDING_LENGTH}`);
    }
    return new Uint8Array(length);
  },
  /** The value length; the content is ignored. */
  decode(value: Uint8Array): number {
    return value.length;
  },
};
