/** Typed attribute codecs, table-driven: what each encodes to, and every way decoding fails. */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttrType,
  LEGACY_XOR_MAPPED_ADDRESS,
  MessageClass,
  Method,
  alternateServer,
  changeRequest,
  decodeMessage,
  encodeMessage,
  errorCode,
  mappedAddress,
  nonce,
  otherAddress,
  padding,
  passwordAlgorithm,
  passwordAlgorithms,
  realm,
  reflexiveAddress,
  responseOrigin,
  responsePort,
  software,
  unknownAttributes,
  username,
  xorMappedAddress,
  xorPeerAddress,
  xorRelayedAddress,
  type Attribute,
  type TransportAddress,
} from '../../src/wire/index.js';
import { assertDecodeError, assertEncodeError, hex, toHex } from './helpers.js';

const TID = hex('b7e7a701bc34d686fa87dfae');
const V4: TransportAddress = { family: 4, address: '192.0.2.1', port: 32853 };
const V6: TransportAddress = { family: 6, address: '2001:db8::1', port: 3478 };

describe('MAPPED-ADDRESS and its look-alikes', () => {
  const encodings: Array<[TransportAddress, string]> = [
    [V4, '00018055c0000201'],
    [{ family: 4, address: '0.0.0.0', port: 0 }, '0001000000000000'],
    [{ family: 4, address: '255.255.255.255', port: 65535 }, '0001ffffffffffff'],
    [V6, '00020d9620010db8000000000000000000000001'],
    [{ family: 6, address: '::ffff:10.0.0.1', port: 1 }, '0002000100000000000000000000ffff0a000001'],
  ];
  for (const [address, value] of encodings) {
    it(`encodes ${address.address} port ${address.port} as ${value}`, () => {
      assert.equal(toHex(mappedAddress.encode(address)), value);
      assert.deepEqual(mappedAddress.decode(hex(value)), address);
    });
  }

  it('ignores the first byte on decode', () => {
    assert.deepEqual(mappedAddress.decode(hex('ff018055c0000201')), V4);
  });

  it('canonicalises IPv6 text on decode', () => {
    assert.equal(mappedAddress.decode(hex('00020d9620010DB8000000000000000000000001')).address, '2001:db8::1');
  });

  const rejections: Array<[string, string, RegExp]> = [
    ['3 bytes', '000180', /attribute MAPPED-ADDRESS: value length 3, expected 8 or 20/],
    ['no bytes', '', /value length 0, expected 8 or 20/],
    ['12 bytes', '000180550000000000000000', /value length 12, expected 8 or 20/],
    ['family 0x03', '00038055c0000201', /address family 0x03, expected 0x01 \(IPv4\) or 0x02 \(IPv6\)/],
    ['family 0x00', '00008055c0000201', /address family 0x00/],
    ['IPv4 family with 20 bytes', '00010d9620010db8000000000000000000000001', /value length 20 for family IPv4, expected 8/],
    ['IPv6 family with 8 bytes', '00028055c0000201', /value length 8 for family IPv6, expected 20/],
  ];
  for (const [what, value, message] of rejections) {
    it(`rejects ${what}`, () => assertDecodeError(() => mappedAddress.decode(hex(value)), message));
  }

  const encodeRejections: Array<[string, unknown, RegExp]> = [
    ['port 65536', { family: 4, address: '1.2.3.4', port: 65536 }, /MAPPED-ADDRESS: port 65536 is not 0-65535/],
    ['port -1', { family: 4, address: '1.2.3.4', port: -1 }, /port -1/],
    ['port 1.5', { family: 4, address: '1.2.3.4', port: 1.5 }, /port 1.5/],
    ['an IPv6 address with family 4', { family: 4, address: '::1', port: 1 }, /"::1" is not an IPv4 address \(family 4\)/],
    ['an IPv4 address with family 6', { family: 6, address: '1.2.3.4', port: 1 }, /"1.2.3.4" is not an IPv6 address/],
    ['family 5', { family: 5, address: '1.2.3.4', port: 1 }, /is not an IPv5 address/],
    ['a host name', { family: 4, address: 'example.com', port: 1 }, /"example.com" is not an IPv4 address/],
    ['a zone id', { family: 6, address: 'fe80::1%eth0', port: 1 }, /"fe80::1%eth0" is not an IPv6 address/],
    ['null', null, /expected a transport address/],
  ];
  for (const [what, address, message] of encodeRejections) {
    it(`refuses to encode ${what}`, () => assertEncodeError(() => mappedAddress.encode(address as TransportAddress), message));
  }

  it('names OTHER-ADDRESS, RESPONSE-ORIGIN and ALTERNATE-SERVER in their errors', () => {
    assertDecodeError(() => otherAddress.decode(new Uint8Array(3)), /^attribute OTHER-ADDRESS: value length 3/);
    assertDecodeError(() => responseOrigin.decode(new Uint8Array(3)), /^attribute RESPONSE-ORIGIN: value length 3/);
    assertDecodeError(() => alternateServer.decode(new Uint8Array(3)), /^attribute ALTERNATE-SERVER: value length 3/);
    assert.deepEqual(otherAddress.decode(otherAddress.encode(V6)), V6);
  });
});

describe('XOR-MAPPED-ADDRESS and the TURN XOR addresses', () => {
  it('XORs the port with 0x2112 and an IPv4 address with the magic cookie', () => {
    // 192.0.2.1 ^ 21.12.a4.42 = e1.12.a6.43; 32853 = 0x8055 ^ 0x2112 = 0xa147.
    assert.equal(toHex(xorMappedAddress.encode(V4, TID)), '0001a147e112a643');
  });

  it('XORs an IPv6 address with the cookie and the transaction id', () => {
    const value = xorMappedAddress.encode(V6, TID);
    assert.equal(toHex(value.subarray(4)), toHex(hex('20010db8000000000000000000000001').map((b, i) => b ^ hex('2112a442b7e7a701bc34d686fa87dfae')[i]!)));
    assert.deepEqual(xorMappedAddress.decode(value, TID), V6);
  });

  it('decodes to a different address under another transaction id (IPv6 only)', () => {
    const other = hex('000000000000000000000000');
    assert.notDeepEqual(xorMappedAddress.decode(xorMappedAddress.encode(V6, TID), other), V6);
    assert.deepEqual(xorMappedAddress.decode(xorMappedAddress.encode(V4, TID), other), V4);
  });

  it('rejects bad lengths, families and transaction ids', () => {
    assertDecodeError(() => xorMappedAddress.decode(new Uint8Array(3), TID), /^attribute XOR-MAPPED-ADDRESS: value length 3, expected 8 or 20$/);
    assertDecodeError(() => xorMappedAddress.decode(hex('0007a147e112a643'), TID), /XOR-MAPPED-ADDRESS: address family 0x07/);
    assertDecodeError(() => xorMappedAddress.decode(hex('0001a147e112a643'), new Uint8Array(11)), /transaction id must be 12 bytes, got 11/);
    assertEncodeError(() => xorMappedAddress.encode(V4, new Uint8Array(16)), /transaction id must be 12 bytes, got 16/);
    assertDecodeError(() => xorPeerAddress.decode(new Uint8Array(0), TID), /^attribute XOR-PEER-ADDRESS:/);
    assertDecodeError(() => xorRelayedAddress.decode(new Uint8Array(0), TID), /^attribute XOR-RELAYED-ADDRESS:/);
  });
});

describe('reflexiveAddress', () => {
  function response(attributes: Attribute[]) {
    return decodeMessage(encodeMessage({ method: Method.Binding, messageClass: MessageClass.SuccessResponse, transactionId: TID, attributes }));
  }
  const other: TransportAddress = { family: 4, address: '198.51.100.7', port: 9 };

  it('prefers XOR-MAPPED-ADDRESS over the legacy and plain forms', () => {
    const msg = response([
      { type: AttrType.MappedAddress, value: mappedAddress.encode(other) },
      { type: AttrType.XorMappedAddress, value: xorMappedAddress.encode(V4, TID) },
    ]);
    assert.deepEqual(reflexiveAddress(msg), V4);
  });

  it('falls back to 0x8020, then MAPPED-ADDRESS, unless strict', () => {
    const legacy = response([
      { type: AttrType.MappedAddress, value: mappedAddress.encode(other) },
      { type: LEGACY_XOR_MAPPED_ADDRESS, value: xorMappedAddress.encode(V6, TID) },
    ]);
    assert.deepEqual(reflexiveAddress(legacy), V6);
    assert.equal(reflexiveAddress(legacy, { strict: true }), undefined);
    const plain = response([{ type: AttrType.MappedAddress, value: mappedAddress.encode(other) }]);
    assert.deepEqual(reflexiveAddress(plain), other);
    assert.equal(reflexiveAddress(response([])), undefined);
  });

  it('throws a StunDecodeError naming the legacy attribute when it is malformed', () => {
    const msg = response([{ type: LEGACY_XOR_MAPPED_ADDRESS, value: new Uint8Array(5) }]);
    assertDecodeError(() => reflexiveAddress(msg), /XOR-MAPPED-ADDRESS\(0x8020\): value length 5/);
  });
});

describe('CHANGE-REQUEST', () => {
  const table: Array<[boolean, boolean, string]> = [
    [false, false, '00000000'],
    [false, true, '00000002'],
    [true, false, '00000004'],
    [true, true, '00000006'],
  ];
  for (const [changeIp, changePort, value] of table) {
    it(`encodes change IP ${changeIp}, change port ${changePort} as ${value}`, () => {
      assert.equal(toHex(changeRequest.encode({ changeIp, changePort })), value);
      assert.deepEqual(changeRequest.decode(hex(value)), { changeIp, changePort });
    });
  }

  it('ignores the unused bits', () => {
    assert.deepEqual(changeRequest.decode(hex('fffffff9')), { changeIp: false, changePort: false });
  });

  it('rejects values that are not 4 bytes and flags that are not booleans', () => {
    assertDecodeError(() => changeRequest.decode(new Uint8Array(2)), /^attribute CHANGE-REQUEST: value length 2, expected 4$/);
    assertDecodeError(() => changeRequest.decode(new Uint8Array(8)), /value length 8, expected 4/);
    assertEncodeError(() => changeRequest.encode({ changeIp: 1 } as unknown as { changeIp: boolean; changePort: boolean }), /CHANGE-REQUEST: expected/);
  });
});

describe('RESPONSE-PORT', () => {
  it('encodes the port then two zero bytes, and ignores those bytes on decode', () => {
    assert.equal(toHex(responsePort.encode(3479)), '0d970000');
    assert.equal(responsePort.decode(hex('0d97ffff')), 3479);
    assert.equal(responsePort.decode(responsePort.encode(0)), 0);
    assert.equal(responsePort.decode(responsePort.encode(65535)), 65535);
  });

  it('rejects values that are not 4 bytes and ports out of range', () => {
    assertDecodeError(() => responsePort.decode(new Uint8Array(2)), /^attribute RESPONSE-PORT: value length 2, expected 4$/);
    assertEncodeError(() => responsePort.encode(65536), /RESPONSE-PORT: port 65536 is not 0-65535/);
    assertEncodeError(() => responsePort.encode(Number.NaN), /port NaN/);
  });
});

describe('PADDING', () => {
  it('encodes zero bytes of the given length and decodes to the length', () => {
    assert.deepEqual(padding.encode(8), new Uint8Array(8));
    assert.equal(padding.decode(new Uint8Array(1200).fill(0xaa)), 1200);
    assert.equal(padding.decode(padding.encode(0)), 0);
  });

  it('refuses lengths a message cannot carry', () => {
    assertEncodeError(() => padding.encode(-4), /PADDING: length -4 is not 0-65528/);
    assertEncodeError(() => padding.encode(65529), /length 65529/);
    assertEncodeError(() => padding.encode(2.5), /length 2.5/);
  });
});

describe('ERROR-CODE', () => {
  const table: Array<[number, string, string]> = [
    [300, 'Try Alternate', '00000300' + Buffer.from('Try Alternate').toString('hex')],
    [401, 'Unauthenticated', '00000401' + Buffer.from('Unauthenticated').toString('hex')],
    [420, '', '00000414'],
    [438, 'Stale Nonce', '00000426' + Buffer.from('Stale Nonce').toString('hex')],
    [699, 'x', '0000066378'],
  ];
  for (const [code, reason, value] of table) {
    it(`encodes ${code} "${reason}" with class and number split`, () => {
      assert.equal(toHex(errorCode.encode({ code, reason })), value);
      assert.deepEqual(errorCode.decode(hex(value)), { code, reason });
    });
  }

  it('ignores the reserved bits and decodes a UTF-8 reason', () => {
    assert.deepEqual(errorCode.decode(hex('fffff8' + '01' + Buffer.from('é').toString('hex')).map((b, i) => (i === 2 ? b | 4 : b))), {
      code: 401,
      reason: 'é',
    });
  });

  const rejections: Array<[string, string, RegExp]> = [
    ['3 bytes', '000004', /^attribute ERROR-CODE: value length 3, expected at least 4$/],
    ['class 2', '00000263', /ERROR-CODE: class 2, expected 3-6/],
    ['class 7', '00000700', /class 7, expected 3-6/],
    ['number 100', '00000464', /ERROR-CODE: number 100, expected 0-99/],
    ['a reason that is not UTF-8', '00000400ff', /ERROR-CODE: reason phrase is not valid UTF-8/],
    ['a 764-byte reason', '00000400' + '61'.repeat(764), /reason phrase is 764 bytes, at most 763/],
    ['a reason of 128 characters', '00000400' + '61'.repeat(128), /reason phrase has 128 characters, at most 127/],
  ];
  for (const [what, value, message] of rejections) {
    it(`rejects ${what}`, () => assertDecodeError(() => errorCode.decode(hex(value)), message));
  }

  const encodeRejections: Array<[string, unknown, RegExp]> = [
    ['code 299', { code: 299, reason: '' }, /ERROR-CODE: code 299 is not 300-699/],
    ['code 700', { code: 700, reason: '' }, /code 700/],
    ['code 400.5', { code: 400.5, reason: '' }, /code 400.5/],
    ['a reason of 128 characters', { code: 400, reason: 'a'.repeat(128) }, /reason phrase has 128 characters, at most 127/],
    ['a reason that is not a string', { code: 400, reason: 4 }, /reason phrase must be a string, got number/],
    ['a lone surrogate', { code: 400, reason: '\ud800' }, /unpaired surrogate/],
    ['no object', undefined, /expected \{ code, reason \}/],
  ];
  for (const [what, v, message] of encodeRejections) {
    it(`refuses to encode ${what}`, () => assertEncodeError(() => errorCode.encode(v as { code: number; reason: string }), message));
  }

  it('accepts 127 four-byte characters (508 bytes) both ways', () => {
    const reason = '\u{1f600}'.repeat(127);
    assert.deepEqual(errorCode.decode(errorCode.encode({ code: 500, reason })), { code: 500, reason });
  });
});

describe('UNKNOWN-ATTRIBUTES', () => {
  it('encodes a list of 16-bit types', () => {
    assert.equal(toHex(unknownAttributes.encode([0x0003, 0x7fff, 0x8000])), '00037fff8000');
    assert.deepEqual(unknownAttributes.decode(hex('00037fff8000')), [0x0003, 0x7fff, 0x8000]);
    assert.deepEqual(unknownAttributes.decode(new Uint8Array(0)), []);
  });

  it('rejects an odd value length and types that are not 16-bit', () => {
    assertDecodeError(() => unknownAttributes.decode(new Uint8Array(3)), /^attribute UNKNOWN-ATTRIBUTES: value length 3, expected a multiple of 2$/);
    assertEncodeError(() => unknownAttributes.encode([0x10000]), /UNKNOWN-ATTRIBUTES: type 65536 is not a 16-bit number/);
    assertEncodeError(() => unknownAttributes.encode('x' as unknown as number[]), /expected an array/);
    assertEncodeError(() => unknownAttributes.encode(new Array<number>(40000).fill(1)), /40000 types do not fit/);
  });
});

describe('text attributes', () => {
  const codecs = [
    ['USERNAME', username],
    ['REALM', realm],
    ['NONCE', nonce],
    ['SOFTWARE', software],
  ] as const;

  for (const [name, codec] of codecs) {
    it(`${name} round-trips UTF-8, a leading BOM and the empty string`, () => {
      for (const s of ['', 'natpunch/0.1', '\ufeffbom', 'マトリックス', '\u{1f600}']) assert.equal(codec.decode(codec.encode(s)), s);
    });

    it(`${name} rejects malformed UTF-8 and more than 763 bytes on decode`, () => {
      assertDecodeError(() => codec.decode(hex('c3')), new RegExp(`^attribute ${name}: value is not valid UTF-8$`));
      assertDecodeError(() => codec.decode(hex('eda080')), /not valid UTF-8/); // an encoded surrogate
      assertDecodeError(() => codec.decode(new Uint8Array(764).fill(0x61)), new RegExp(`${name}: value is 764 bytes, at most 763`));
    });

    it(`${name} refuses lone surrogates and non-strings on encode`, () => {
      assertEncodeError(() => codec.encode('a\udc00'), new RegExp(`${name}: value has an unpaired surrogate`));
      assertEncodeError(() => codec.encode(undefined as unknown as string), /must be a string, got undefined/);
    });
  }

  it('USERNAME sends fewer than 509 bytes and accepts up to 763', () => {
    assert.equal(username.encode('a'.repeat(508)).length, 508);
    assertEncodeError(() => username.encode('a'.repeat(509)), /USERNAME: value is 509 bytes of UTF-8, at most 508/);
    assert.equal(username.decode(new Uint8Array(763).fill(0x61)).length, 763);
  });

  for (const [name, codec] of codecs.slice(1)) {
    it(`${name} holds fewer than 128 characters both ways`, () => {
      assert.equal(codec.decode(codec.encode('é'.repeat(127))), 'é'.repeat(127));
      assertEncodeError(() => codec.encode('a'.repeat(128)), new RegExp(`${name}: value has 128 characters, at most 127`));
      assertDecodeError(() => codec.decode(new Uint8Array(128).fill(0x61)), new RegExp(`${name}: value has 128 characters, at most 127`));
    });
  }
});

describe('PASSWORD-ALGORITHM and PASSWORD-ALGORITHMS', () => {
  it('encode algorithm numbers with padded parameters', () => {
    assert.equal(toHex(passwordAlgorithm.encode({ algorithm: 2 })), '00020000');
    assert.equal(toHex(passwordAlgorithm.encode({ algorithm: 9, parameters: hex('aabbcc') })), '00090003aabbcc00');
    assert.equal(toHex(passwordAlgorithms.encode([{ algorithm: 2 }, { algorithm: 1 }])), '0002000000010000');
    assert.deepEqual(passwordAlgorithms.decode(hex('00020000 00090003aabbcc00 00010000')), [
      { algorithm: 2, parameters: new Uint8Array(0) },
      { algorithm: 9, parameters: hex('aabbcc') },
      { algorithm: 1, parameters: new Uint8Array(0) },
    ]);
    assert.deepEqual(passwordAlgorithm.decode(hex('00090003aabbcc')), { algorithm: 9, parameters: hex('aabbcc') });
  });

  it('reject truncated entries, overlong parameters and trailing bytes', () => {
    assertDecodeError(() => passwordAlgorithm.decode(hex('0002')), /^attribute PASSWORD-ALGORITHM: entry at offset 0 needs 4 bytes, 2 left$/);
    assertDecodeError(() => passwordAlgorithm.decode(hex('00020008aabb')), /PASSWORD-ALGORITHM: parameters length 8 at offset 0, but 2 bytes left/);
    assertDecodeError(() => passwordAlgorithm.decode(hex('00020000 00010000')), /PASSWORD-ALGORITHM: value length 8, expected 4 for one algorithm/);
    assertDecodeError(() => passwordAlgorithms.decode(hex('00020000 0001')), /PASSWORD-ALGORITHMS: entry at offset 4 needs 4 bytes, 2 left/);
    assertEncodeError(() => passwordAlgorithm.encode({ algorithm: 0x10000 }), /PASSWORD-ALGORITHM: algorithm 65536 is not a 16-bit number/);
    assertEncodeError(() => passwordAlgorithms.encode([{ algorithm: 1, parameters: 'x' as unknown as Uint8Array }]), /parameters must be a Uint8Array/);
    assertEncodeError(() => passwordAlgorithms.encode(new Array(20000).fill({ algorithm: 1 })), /PASSWORD-ALGORITHMS: 80000 bytes, at most 65535/);
  });
});
