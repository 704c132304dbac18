/**
 * The multiplexer's limits. They are constants both sides know, not negotiated (no SETTINGS
 * frame as in RFC 9113 §6.5): a peer that exceeds one violates the protocol, and the
 * connection is reset with a protocol error, so memory per connection stays bounded.
 *
 * Worst case held for a peer: MAX_STREAMS × STREAM_WINDOW = 128 × 256 KiB = 32 MiB of
 * received data no reader has taken yet, plus one frame being parsed.
 */

/** Largest DATA payload, bytes (RFC 9113 §4.2: SETTINGS_MAX_FRAME_SIZE's default, 2^14). */
export const MAX_FRAME_PAYLOAD = 16_384;

/**
 * A stream's receive window, bytes: how far the sender may run ahead of the receiver's reader
 * (RFC 9113 §6.9.2 starts at 65 535; yamux at 256 KiB). 256 KiB keeps one stream at ~250 MB/s
 * at 1 ms RTT and ~25 MB/s at 10 ms, and bounds what a bulk stream queues ahead of an
 * interactive one in the connection below.
 */
export const STREAM_WINDOW = 256 * 1024;

/**
 * The receiver grants more window once its reader has taken this much (half the window, as
 * yamux and most HTTP/2 stacks do): fewer WINDOW_UPDATE frames, the sender never idles.
 */
export const WINDOW_UPDATE_THRESHOLD = STREAM_WINDOW / 2;

/** Streams one side may have open at once (RFC 9113 §5.1.2 SETTINGS_MAX_CONCURRENT_STREAMS; ≥100 recommended). */
export const MAX_STREAMS = 128;

/** Longest OPEN target (what the stream is for: "tcp", a service name), bytes of UTF-8. */
export const MAX_TARGET_LENGTH = 255;

/** Longest reason text carried by RESET and GO_AWAY, bytes of UTF-8. */
export const MAX_REASON_LENGTH = 512;
