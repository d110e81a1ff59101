// RFC 7296 §3.2 generic payload header chain and §2.5 critical-bit rules.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { concatBytes } from '../../../../src/common/bytes.js';
import { ExchangeType, NotifyError, PayloadType } from '../../../../src/ike/constants.js';
import {
  decodeMessage, decodePayloadChain, encodeMessage, encodePayloadChain, IkeEncodeError, MAX_PAYLOADS, notify,
  notifyForError, UnsupportedCriticalPayloadError, type IkeHeader, type IkePayload,
} from '../../../../src/ike/codec/index.js';
import { throwsCode, toHex, wrap } from './helpers.js';

const h: IkeHeader = {
  initiatorSpi: 1n, responderSpi: 2n, exchangeType: ExchangeType.INFORMATIONAL,
  initiator: true, response: false, higherVersion: false, minorVersion: 0, messageId: 1,
};
const nonce: IkePayload = { kind: 'nonce', data: new Uint8Array(16).fill(7) };

describe('generic payload header chain, RFC 7296 §3.2', () => {
  it('links payloads through Next Payload and ends the chain with 0', () => {
    const { firstType, bytes } = encodePayloadChain([nonce, notify(16384)]);
    assert.equal(firstType, PayloadType.NONCE);
    assert.equal(bytes[0], PayloadType.NOTIFY); // nonce's Next Payload
    assert.equal(new DataView(bytes.buffer).getUint16(2), 20);
    assert.equal(bytes[20], 0); // notify's Next Payload
    assert.equal(bytes.length, 20 + 8);
  });

  it('fails an unknown payload with the critical bit: UNSUPPORTED_CRITICAL_PAYLOAD carrying its type, RFC 7296 §2.5', () => {
    const chain = wrap(new Uint8Array([1, 2, 3]), 0, 0x80);
    const e = throwsCode(() => decodePayloadChain(chain, 200), 'ERR_IKE_UNSUPPORTED_CRITICAL_PAYLOAD');
    assert.ok(e instanceof UnsupportedCriticalPayloadError);
    assert.equal(e.payloadType, 200);
    assert.equal(notifyForError(e), NotifyError.UNSUPPORTED_CRITICAL_PAYLOAD);
  });

  it('skips an unknown non-critical payload but keeps it so re-encoding is byte-identical, RFC 7296 §2.5', () => {
    const chain = concatBytes(wrap(new Uint8Array([9, 9]), PayloadType.NONCE), wrap(nonce.kind === 'nonce' ? nonce.data : new Uint8Array()));
    const ps = decodePayloadChain(chain, 201);
    assert.deepEqual(ps[0], { kind: 'unknown', type: 201, data: new Uint8Array([9, 9]) });
    assert.equal(ps[1]!.kind, 'nonce');
    assert.equal(toHex(encodePayloadChain(ps).bytes), toHex(chain));
  });

  it('keeps the critical bit of a known payload (ignored on receipt) for faithful re-encoding, RFC 7296 §3.2', () => {
    const chain = wrap(new Uint8Array(16), 0, 0x80);
    const ps = decodePayloadChain(chain, PayloadType.NONCE);
    assert.equal(ps[0]!.critical, true);
    assert.equal(toHex(encodePayloadChain(ps).bytes), toHex(chain));
  });

  it('ignores the 7 reserved bits after the critical bit on receipt', () => {
    const ps = decodePayloadChain(wrap(new Uint8Array(16), 0, 0x7f), PayloadType.NONCE);
    assert.equal(ps[0]!.critical, undefined);
  });

  it('rejects a payload length below 4 or beyond the message', () => {
    const short = wrap(new Uint8Array(16)); new DataView(short.buffer).setUint16(2, 3);
    throwsCode(() => decodePayloadChain(short, PayloadType.NONCE), 'ERR_IKE_PAYLOAD_LENGTH');
    const long = wrap(new Uint8Array(16)); new DataView(long.buffer).setUint16(2, 21);
    throwsCode(() => decodePayloadChain(long, PayloadType.NONCE), 'ERR_IKE_PAYLOAD_LENGTH');
  });

  it('rejects bytes after the last payload (Next Payload 0)', () => {
    throwsCode(() => decodePayloadChain(concatBytes(wrap(new Uint8Array(16)), new Uint8Array(2)), PayloadType.NONCE), 'ERR_IKE_TRAILING_BYTES');
  });

  it('rejects a header cut short', () => {
    throwsCode(() => decodePayloadChain(new Uint8Array(3), PayloadType.NONCE), 'ERR_IKE_PAYLOAD_TRUNCATED');
  });

  it(`bounds a chain to ${MAX_PAYLOADS} payloads so a datagram of tiny payloads cannot pile up objects`, () => {
    const many = Array.from({ length: MAX_PAYLOADS + 1 }, (_, i) => wrap(new Uint8Array(0), i === MAX_PAYLOADS ? 0 : PayloadType.VENDOR_ID));
    throwsCode(() => decodePayloadChain(concatBytes(...many), PayloadType.VENDOR_ID), 'ERR_IKE_PAYLOAD_COUNT');
    assert.equal(decodePayloadChain(concatBytes(...many.slice(1)), PayloadType.VENDOR_ID).length, MAX_PAYLOADS);
  });

  it('requires SK to be the last payload: its Next Payload names the first inner payload, RFC 7296 §3.14', () => {
    const wire = encodeMessage(h, [{ kind: 'sk', innerNext: PayloadType.NOTIFY, body: new Uint8Array(32) }]);
    const m = decodeMessage(wire);
    assert.deepEqual(m.payloads, [{ kind: 'sk', innerNext: PayloadType.NOTIFY, body: new Uint8Array(32) }]);
    assert.equal(wire[28], PayloadType.NOTIFY);
    // Same bytes, but the SK payload length claims less than the datagram holds.
    new DataView(wire.buffer).setUint16(30, 20);
    throwsCode(() => decodeMessage(wire), 'ERR_IKE_SK_NOT_LAST');
    assert.throws(() => encodeMessage(h, [{ kind: 'sk', innerNext: 0, body: new Uint8Array(0) }, nonce]), IkeEncodeError);
  });

  it('rejects SK or SKF nested inside the encrypted payloads', () => {
    throwsCode(() => decodePayloadChain(wrap(new Uint8Array(8)), PayloadType.SK), 'ERR_IKE_NESTED_SK');
    throwsCode(() => decodePayloadChain(wrap(new Uint8Array([0, 1, 0, 1])), PayloadType.SKF), 'ERR_IKE_NESTED_SK');
    assert.throws(() => encodePayloadChain([{ kind: 'sk', innerNext: 0, body: new Uint8Array(0) }]), IkeEncodeError);
  });

  it('refuses to encode what the decoder would reject (a 10-byte nonce, an IPv4 ID of 3 bytes)', () => {
    for (const bad of [{ kind: 'nonce', data: new Uint8Array(10) }, { kind: 'idi', idType: 1, data: new Uint8Array(3) }] as IkePayload[]) {
      assert.throws(() => encodeMessage(h, [bad]), (e: unknown) => e instanceof IkeEncodeError && e.code === 'ERR_IKE_ENCODE_INVALID');
      assert.throws(() => encodePayloadChain([bad]), (e: unknown) => e instanceof IkeEncodeError && /nonce is 10 bytes|IDi of type 1 is 3 bytes/.test(e.message));
    }
    assert.throws(() => encodeMessage(h, [{ kind: 'unknown', type: 201, data: new Uint8Array(0), critical: true }]), IkeEncodeError);
  });

  it('reports a payload body that its decoder did not consume as a length error', () => {
    // A TS payload whose one selector is followed by 2 stray bytes inside the payload length.
    const ts = new Uint8Array([1, 0, 0, 0, 7, 0, 0, 16, 0, 0, 255, 255, 10, 0, 0, 0, 10, 255, 255, 255, 0, 0]);
    throwsCode(() => decodePayloadChain(wrap(ts), PayloadType.TSi), 'ERR_IKE_TS_LENGTH');
  });
});
