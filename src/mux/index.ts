export { MuxSession, type MuxSessionOptions } from './session.js';
export { MuxStream } from './stream.js';
export { MuxError, MuxStreamResetError } from './errors.js';
export { FrameType, MuxErrorCode, muxErrorName } from './frame-type.js';
export { encodeFrame, decodeFrame, FrameDecoder, HEADER_LENGTH, type Frame } from './frame.js';
export { MAX_FRAME_PAYLOAD, MAX_STREAMS, STREAM_WINDOW, MAX_TARGET_LENGTH, MAX_REASON_LENGTH } from './limits.js';
