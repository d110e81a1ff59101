// One describe per payload of RFC 7296 §3.4-§3.16 and RFC 7383 §2.5 (SA: sa.test.ts; Notify:
// notify.test.ts): the wire layout from the RFC diagram, and each length/value rule the decoder
// enforces, with the RFC section that makes it a rule.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthMethod, CertEncoding, DhId, ExchangeType, IdType, PayloadType, ProtocolId, TsType } from '../../../../src/ike/constants.js';
import {
  certReqHashes, decodeMessage, decodePayloadChain, encodeMessage, encodePayloadChain, idBody, joinSignatureAuth,
  splitSignatureAuth, type IkePayload,
} from '../../../../src/ike/codec/index.js';
import { asKind, hex, throwsCode, toHex, wrap } from './helpers.js';

const one = (type: number, body: Uint8Array): IkePayload => decodePayloadChain(wrap(body), type)[0]!;
const bodyOf = (p: IkePayload): string => toHex(encodePayloadChain([p]).bytes.subarray(4));

describe('Nonce payload, RFC 7296 §3.9', () => {
  it('accepts 16 and 256 bytes, the bounds of §2.10', () => {
    assert.equal(asKind('nonce', one(PayloadType.NONCE, new Uint8Array(16))).data.length, 16);
    assert.equal(asKind('nonce', one(PayloadType.NONCE, new Uint8Array(256))).data.length, 256);
  });
  it('rejects nonce shorter than 16 bytes, RFC 7296 §3.9', () => {
    const e = throwsCode(() => one(PayloadType.NONCE, new Uint8Array(12)), 'ERR_IKE_NONCE_LENGTH');
    assert.match(e.message, /nonce is 12 bytes, want 16\.\.256/);
  });
  it('rejects nonce longer than 256 bytes, RFC 7296 §3.9', () => {
    throwsCode(() => one(PayloadType.NONCE, new Uint8Array(257)), 'ERR_IKE_NONCE_LENGTH');
  });
});

describe('KE payload, RFC 7296 §3.4', () => {
  it('lays out group, reserved, data', () => {
    assert.equal(bodyOf({ kind: 'ke', group: DhId.CURVE25519, data: new Uint8Array(32).fill(0xaa) }), '001f0000' + 'aa'.repeat(32));
  });
  it('rejects key exchange data of the wrong length for its group (x25519: 32 bytes, RFC 8031 §2)', () => {
    const e = throwsCode(() => one(PayloadType.KE, hex('001f0000' + '11'.repeat(31))), 'ERR_IKE_KE_LENGTH');
    assert.match(e.message, /group 31 is 31 bytes, want 32/);
  });
  it('rejects a MODP-2048 share that is not 256 bytes, RFC 7296 §3.4', () => {
    throwsCode(() => one(PayloadType.KE, new Uint8Array([0, 14, 0, 0, ...new Uint8Array(255)])), 'ERR_IKE_KE_LENGTH');
  });
  it('accepts any non-empty data for unknown groups, but not empty data', () => {
    assert.equal(asKind('ke', one(PayloadType.KE, hex('0400 0000 01'))).group, 0x400);
    throwsCode(() => one(PayloadType.KE, hex('0400 0000')), 'ERR_IKE_KE_LENGTH');
  });
});

describe('Identification payloads IDi/IDr, RFC 7296 §3.5', () => {
  it('decodes ID_IPV4_ADDR and ID_FQDN into idi / idr', () => {
    assert.deepEqual(one(PayloadType.IDi, hex('01000000c0000201')), { kind: 'idi', idType: IdType.ID_IPV4_ADDR, data: hex('c0000201') });
    const fqdn = one(PayloadType.IDr, new Uint8Array([2, 0, 0, 0, ...Buffer.from('b.kipsec.test')]));
    assert.equal(fqdn.kind, 'idr');
  });
  it('rejects an ID_IPV4_ADDR that is not 4 bytes and an ID_IPV6_ADDR that is not 16', () => {
    throwsCode(() => one(PayloadType.IDi, hex('01000000c00002')), 'ERR_IKE_ID_LENGTH');
    throwsCode(() => one(PayloadType.IDi, hex('05000000c0000201')), 'ERR_IKE_ID_LENGTH');
  });
  it('gives the body AUTH is computed over (RestOfInitIDPayload), RFC 7296 §2.15', () => {
    assert.equal(toHex(idBody({ kind: 'idi', idType: 1, data: hex('c0000201') })), '01000000c0000201');
  });
});

describe('Certificate payload, RFC 7296 §3.6', () => {
  it('round-trips an X.509 signature certificate', () => {
    const p = one(PayloadType.CERT, hex('04 3082'));
    assert.deepEqual(p, { kind: 'cert', encoding: CertEncoding.X509_CERT_SIGNATURE, data: hex('3082') });
  });
  it('rejects a certificate payload without data', () => {
    throwsCode(() => one(PayloadType.CERT, hex('04')), 'ERR_IKE_CERT_EMPTY');
  });
});

describe('Certificate Request payload, RFC 7296 §3.7', () => {
  it('splits the authority field into 20-byte CA key hashes', () => {
    const p = one(PayloadType.CERTREQ, new Uint8Array([4, ...new Uint8Array(40).fill(1)]));
    assert.equal(certReqHashes(p as never).length, 2);
  });
  it('accepts an empty authority list (strongSwan sends it when it trusts any CA)', () => {
    assert.deepEqual(certReqHashes(asKind('certreq', one(PayloadType.CERTREQ, hex('04')))), []);
  });
  it('rejects authorities that are not a multiple of 20 bytes when they are read', () => {
    throwsCode(() => certReqHashes(asKind('certreq', one(PayloadType.CERTREQ, new Uint8Array([4, 1, 2, 3])))), 'ERR_IKE_CERTREQ_LENGTH');
  });
});

describe('Authentication payload, RFC 7296 §3.8', () => {
  it('lays out method, reserved, data', () => {
    assert.equal(bodyOf({ kind: 'auth', method: AuthMethod.SHARED_KEY_MESSAGE_INTEGRITY_CODE, data: hex('abcd') }), '02000000abcd');
  });
  it('rejects empty authentication data', () => {
    throwsCode(() => one(PayloadType.AUTH, hex('02000000')), 'ERR_IKE_AUTH_EMPTY');
  });
  it('splits and joins RFC 7427 signature data (AlgorithmIdentifier length, DER, signature), RFC 7427 §3', () => {
    const alg = hex('300a06082a8648ce3d040302'); // ecdsa-with-SHA256
    const data = joinSignatureAuth(alg, hex('3044aabb'));
    assert.equal(data[0], alg.length);
    const parts = splitSignatureAuth({ kind: 'auth', method: AuthMethod.DIGITAL_SIGNATURE, data });
    assert.equal(toHex(parts.algorithm), toHex(alg));
    assert.equal(toHex(parts.signature), '3044aabb');
    throwsCode(() => splitSignatureAuth({ kind: 'auth', method: AuthMethod.DIGITAL_SIGNATURE, data: hex('0c3000') }), 'ERR_IKE_AUTH_SIGNATURE');
  });
});

describe('Delete payload, RFC 7296 §3.11', () => {
  it('deletes the IKE SA with protocol 1, SPI size 0 and no SPIs', () => {
    assert.deepEqual(one(PayloadType.DELETE, hex('01000000')), { kind: 'delete', protocolId: ProtocolId.IKE, spis: [] });
    throwsCode(() => one(PayloadType.DELETE, hex('01080001 0102030405060708')), 'ERR_IKE_DELETE_SPI_SIZE');
  });
  it('deletes ESP SAs by their 4-byte SPIs', () => {
    const p = one(PayloadType.DELETE, hex('03040002 c0ffee01 c0ffee02'));
    assert.deepEqual(p, { kind: 'delete', protocolId: ProtocolId.ESP, spis: [hex('c0ffee01'), hex('c0ffee02')] });
    assert.equal(bodyOf(p), '03040002c0ffee01c0ffee02');
  });
  it('rejects an SPI count that disagrees with the payload length', () => {
    throwsCode(() => one(PayloadType.DELETE, hex('03040003 c0ffee01 c0ffee02')), 'ERR_IKE_DELETE_LENGTH');
  });
  it('rejects unknown protocol ids', () => {
    throwsCode(() => one(PayloadType.DELETE, hex('07040000')), 'ERR_IKE_DELETE_PROTOCOL');
  });
});

describe('Vendor ID payload, RFC 7296 §3.12', () => {
  it('carries opaque data byte for byte', () => {
    assert.deepEqual(one(PayloadType.VENDOR_ID, hex('882fe56d6fd20dbc2251613b2ebe5beb')), { kind: 'vendor', data: hex('882fe56d6fd20dbc2251613b2ebe5beb') });
  });
});

describe('Traffic Selector payloads TSi/TSr, RFC 7296 §3.13', () => {
  const v4 = '07 00 0010 0000 ffff 0a010001 0a010001';
  const v6 = '08 06 0028 01bb 01bb' + ' 20010db8000000000000000000000001'.repeat(2);
  it('decodes IPv4 and IPv6 address ranges with ports and protocol', () => {
    const p = one(PayloadType.TSi, hex(`02000000 ${v4} ${v6}`));
    const sels = asKind('tsi', p).selectors;
    assert.deepEqual(sels.map((s) => [s.tsType, s.ipProtocol, s.startPort, s.endPort, s.start.length]),
      [[TsType.TS_IPV4_ADDR_RANGE, 0, 0, 65535, 4], [TsType.TS_IPV6_ADDR_RANGE, 6, 443, 443, 16]]);
    assert.equal(bodyOf(p), toHex(hex(`02000000 ${v4} ${v6}`)));
  });
  it('rejects a selector length that does not fit its type (IPv4: 16, IPv6: 40)', () => {
    throwsCode(() => one(PayloadType.TSr, hex('01000000 07 00 0028 0000 ffff 0a010001 0a010001')), 'ERR_IKE_TS_LENGTH');
  });
  it('rejects unknown selector types, so nothing is narrowed that was not understood', () => {
    throwsCode(() => one(PayloadType.TSr, hex('01000000 09 00 0010 0000 ffff 0a010001 0a010001')), 'ERR_IKE_TS_TYPE');
  });
  it('rejects a TS count larger than the selectors present, and a count of zero', () => {
    throwsCode(() => one(PayloadType.TSr, hex(`02000000 ${v4}`)), 'ERR_TRUNCATED');
    throwsCode(() => one(PayloadType.TSr, hex('00000000')), 'ERR_IKE_TS_COUNT');
  });
});

describe('Configuration payload, RFC 7296 §3.15', () => {
  it('decodes a CFG_REQUEST for INTERNAL_IP4_ADDRESS (empty value) and round-trips it', () => {
    const p = one(PayloadType.CP, hex('01000000 0001 0000 0003 0000'));
    assert.deepEqual(p, { kind: 'cp', cfgType: 1, attributes: [{ type: 1, value: new Uint8Array(0) }, { type: 3, value: new Uint8Array(0) }] });
    assert.equal(bodyOf(p), '010000000001000000030000');
  });
  it('ignores the reserved R bit of an attribute type on receipt', () => {
    assert.equal(asKind('cp', one(PayloadType.CP, hex('02000000 8001 0004 0a000001'))).attributes[0]!.type, 1);
  });
  it('rejects an attribute whose length runs past the payload', () => {
    throwsCode(() => one(PayloadType.CP, hex('02000000 0001 0008 0a000001')), 'ERR_TRUNCATED');
  });
});

describe('EAP payload, RFC 7296 §3.16', () => {
  it('is carried opaquely (kipsec does not do EAP)', () => {
    assert.deepEqual(one(PayloadType.EAP, hex('01020005 01')), { kind: 'eap', data: hex('0102000501') });
  });
});

describe('SK and SKF envelopes, RFC 7296 §3.14 and RFC 7383 §2.5', () => {
  const h = { initiatorSpi: 1n, responderSpi: 2n, exchangeType: ExchangeType.IKE_AUTH, initiator: true, response: false, higherVersion: false, minorVersion: 0, messageId: 1 };
  it('keeps the first inner payload type from the SK generic header', () => {
    const m = decodeMessage(encodeMessage(h, [{ kind: 'sk', innerNext: PayloadType.IDi, body: hex('00112233') }]));
    assert.deepEqual(m.encrypted(), { kind: 'sk', innerNext: PayloadType.IDi, body: hex('00112233') });
  });
  it('decodes fragment number and total of SKF', () => {
    const m = decodeMessage(encodeMessage(h, [{ kind: 'skf', innerNext: 0, fragmentNumber: 2, totalFragments: 3, body: hex('aa') }]));
    assert.deepEqual(m.encrypted(), { kind: 'skf', innerNext: 0, fragmentNumber: 2, totalFragments: 3, body: hex('aa') });
  });
  it('rejects fragment number 0, total 0, and number > total, RFC 7383 §2.5', () => {
    for (const [n, t] of [[0, 1], [1, 0], [4, 3]] as const) {
      const wire = encodeMessage(h, [{ kind: 'skf', innerNext: 0, fragmentNumber: 1, totalFragments: 1, body: hex('aa') }]);
      const v = new DataView(wire.buffer); v.setUint16(32, n); v.setUint16(34, t);
      throwsCode(() => decodeMessage(wire), 'ERR_IKE_SKF_NUMBER');
    }
  });
});
