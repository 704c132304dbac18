/**
 * A ChannelData message on `channel` with `pad` bytes after the data: any number of them, since
 * tests send what encodeChannelData would never make (RFC 8656 §12.5 lets UDP ChannelData carry
 * padding, which a relay must accept and drop).
 */
export function channelData(channel: number, data: Uint8Array, pad = 0): Buffer {
  const message = Buffer.alloc(4 + data.length + pad);
  message.writeUInt16BE(channel, 0);
  message.writeUInt16BE(data.length, 2);
  message.set(data, 4);
  return message;
}
