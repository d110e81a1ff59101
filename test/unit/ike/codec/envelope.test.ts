// SK / SKF envelope API: encode inner payloads -> seal via crypto -> wrap, and the reverse, with an
// AES-256-GCM sealer from node:crypto standing in for src/ike/crypto (RFC 5282 §5.1 AAD).
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { concatBytes } from '../../../../src/common/bytes.js';
import { ExchangeType, NotifyStatus, PayloadType } from '../../../../src/ike/constants.js';
import {
  checkInnerPayloads, decodeMessage, encodeEncryptedFragments, encodeEncryptedMessage, encodePayloadChain, encryptedPrefix,
  IkeEncodeError, joinFragments,
  notify, openEncryptedMessage, sealedPrefix, type IkeHeader, type IkePayload, type Opener, type Sealer, type SkfPayload,
} from '../../../../src/ike/codec/index.js';
import { throwsCode, toHex } from './helpers.js';

const key = randomBytes(32), salt = randomBytes(4);
const seenAad: Uint8Array[] = [];
const gcm: Sealer = {
  encryptedLength: (n) => 8 + n + 1 + 16, // IV, plaintext, pad length (no padding needed for GCM), ICV
  encrypt: (plaintext, prefix) => {
    seenAad.push(prefix);
    const iv = randomBytes(8);
    const c = createCipheriv('aes-256-gcm', key, Buffer.concat([salt, iv]));
    c.setAAD(prefix);
    const ct = Buffer.concat([c.update(plaintext), c.update(new Uint8Array([0])), c.final()]);
    return new Uint8Array(Buffer.concat([iv, ct, c.getAuthTag()]));
  },
};
const gcmOpen: Opener = { decrypt: (body, prefix) => {
  const d = createDecipheriv('aes-256-gcm', key, Buffer.concat([salt, body.subarray(0, 8)]));
  d.setAAD(prefix); d.setAuthTag(body.subarray(body.length - 16));
  const pt = Buffer.concat([d.update(body.subarray(8, body.length - 16)), d.final()]);
  return new Uint8Array(pt.subarray(0, pt.length - 1 - pt[pt.length - 1]!));
} };

const h: IkeHeader = { initiatorSpi: 0x1111n, responderSpi: 0x2222n, exchangeType: ExchangeType.IKE_AUTH, initiator: true, response: false, higherVersion: false, minorVersion: 0, messageId: 1 };
const inner: IkePayload[] = [
  { kind: 'idi', idType: 2, data: new Uint8Array(Buffer.from('a.kipsec.test')) },
  notify(NotifyStatus.INITIAL_CONTACT),
  { kind: 'auth', method: 2, data: new Uint8Array(48).fill(5) },
];

describe('SK envelope, RFC 7296 §3.14 / RFC 5282', () => {
  it('encode inner -> seal -> wrap, then decode -> open -> inner, with AAD = IKE header + SK header, RFC 5282 §5.1', () => {
    seenAad.length = 0;
    const wire = encodeEncryptedMessage(h, inner, gcm);
    const m = decodeMessage(wire);
    const env = m.encrypted()!;
    assert.equal(env.kind, 'sk');
    assert.equal(env.innerNext, PayloadType.IDi);
    assert.equal(seenAad[0]!.length, 28 + 4);
    assert.equal(toHex(sealedPrefix(wire, env)), toHex(seenAad[0]!));
    assert.equal(new DataView(wire.buffer).getUint32(24), wire.length, 'IKE length final before sealing');
    const opened = openEncryptedMessage(m, wire, gcmOpen);
    assert.deepEqual(opened.payloads, inner);
    assert.deepEqual(opened.header, h);
    checkInnerPayloads(ExchangeType.IKE_AUTH, false, opened.payloads);
  });

  it('covers unencrypted payloads before SK with the AAD too, RFC 7296 §3.14', () => {
    seenAad.length = 0;
    const outer: IkePayload[] = [{ kind: 'vendor', data: new Uint8Array([1, 2, 3]) }];
    const wire = encodeEncryptedMessage(h, inner, gcm, outer);
    const m = decodeMessage(wire);
    assert.deepEqual(m.payloads[0], outer[0]);
    assert.equal(wire[16], PayloadType.VENDOR_ID);
    assert.equal(wire[28], PayloadType.SK);
    assert.equal(seenAad[0]!.length, 28 + 7 + 4);
    assert.deepEqual(openEncryptedMessage(m, wire, gcmOpen).payloads, inner);
  });

  it('encrypts an empty INFORMATIONAL (liveness) with Next Payload 0 in the SK header', () => {
    const wire = encodeEncryptedMessage({ ...h, exchangeType: ExchangeType.INFORMATIONAL }, [], gcm);
    const m = decodeMessage(wire);
    assert.equal(m.encrypted()!.innerNext, 0);
    assert.deepEqual(openEncryptedMessage(m, wire, gcmOpen).payloads, []);
  });

  it('refuses a sealer that returns a different length than it promised', () => {
    const liar: Sealer = { encryptedLength: () => 10, encrypt: () => new Uint8Array(11) };
    assert.throws(() => encodeEncryptedMessage(h, inner, liar), IkeEncodeError);
  });

  it('refuses to take the AAD prefix from a datagram the envelope does not belong to', () => {
    const m = decodeMessage(encodeEncryptedMessage(h, inner, gcm));
    throwsCode(() => openEncryptedMessage(m, new Uint8Array(0), { decrypt: () => new Uint8Array(0) }), 'ERR_IKE_ENVELOPE');
  });
});

describe('SKF fragments, RFC 7383', () => {
  it('splits the inner chain, numbers fragments 1..n, names the first payload only in fragment 1, and reassembles', () => {
    seenAad.length = 0;
    const frags = encodeEncryptedFragments(h, inner, gcm, 30);
    assert.ok(frags.length >= 3);
    const msgs = frags.map((w) => ({ w, m: decodeMessage(w) }));
    const envs = msgs.map(({ m }) => m.encrypted() as SkfPayload);
    assert.deepEqual(envs.map((e) => [e.fragmentNumber, e.totalFragments]), frags.map((_, i) => [i + 1, frags.length]));
    assert.deepEqual(envs.map((e) => e.innerNext), [PayloadType.IDi, ...envs.slice(1).map(() => 0)]);
    assert.equal(seenAad[0]!.length, 28 + 8, 'AAD runs through the 8-byte SKF header, RFC 7383 §2.5.3');
    const parts = msgs.map(({ w, m }) => {
      const env = m.encrypted() as SkfPayload;
      return { envelope: env, plaintext: gcmOpen.decrypt(env.body, sealedPrefix(w, env)) };
    });
    assert.deepEqual(joinFragments(parts.reverse()), inner);
  });

  it('refuses to reassemble with a missing fragment or disagreeing totals, RFC 7383 §2.6', () => {
    const env = (n: number, t: number): SkfPayload => ({ kind: 'skf', innerNext: n === 1 ? 41 : 0, fragmentNumber: n, totalFragments: t, body: new Uint8Array(0) });
    throwsCode(() => joinFragments([{ envelope: env(1, 2), plaintext: new Uint8Array(4) }]), 'ERR_IKE_SKF_MISSING');
    throwsCode(() => joinFragments([{ envelope: env(2, 2), plaintext: new Uint8Array(4) }]), 'ERR_IKE_SKF_MISSING');
    throwsCode(() => joinFragments([{ envelope: env(1, 2), plaintext: new Uint8Array(4) }, { envelope: env(2, 3), plaintext: new Uint8Array(4) }]), 'ERR_IKE_SKF_TOTAL');
  });
});

describe('encryptedPrefix (hand-rolled flow)', () => {
  it('prefix || body equals what encodeEncryptedMessage builds, RFC 7296 §3.14', () => {
    const fixedIv: Sealer = { encryptedLength: gcm.encryptedLength, encrypt: (p, aad) => new Uint8Array(gcm.encryptedLength(p.length)).fill(aad.length) };
    const whole = encodeEncryptedMessage(h, inner, fixedIv);
    const { firstType, bytes } = encodePayloadChain(inner);
    const prefix = encryptedPrefix(h, [], firstType, fixedIv.encryptedLength(bytes.length));
    assert.equal(toHex(concatBytes(prefix, fixedIv.encrypt(bytes, prefix))), toHex(whole));
  });
});
