// RFC 7296 §3.1 IKE header and message framing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExchangeType, NotifyError, PayloadType } from '../../../../src/ike/constants.js';
import {
  decodeMessage, encodeMessage, InvalidMajorVersionError, notifyForError, type IkeHeader,
} from '../../../../src/ike/codec/index.js';
import { hex, throwsCode, toHex } from './helpers.js';

const h: IkeHeader = {
  initiatorSpi: 0x0102030405060708n, responderSpi: 0n, exchangeType: ExchangeType.IKE_SA_INIT,
  initiator: true, response: false, higherVersion: false, minorVersion: 0, messageId: 0,
};

describe('IKE header, RFC 7296 §3.1', () => {
  it('encodes SPIs, version 2.0, exchange type, flags, message ID and total length', () => {
    const wire = encodeMessage({ ...h, response: true, messageId: 7 }, []);
    assert.equal(toHex(wire), '0102030405060708' + '0000000000000000' + '00' + '20' + '22' + '28' + '00000007' + '0000001c');
  });

  it('decodes what it encodes, including the V flag and a non-zero minor version', () => {
    const x = { ...h, higherVersion: true, minorVersion: 3, messageId: 0xffffffff, responderSpi: 0xffffffffffffffffn };
    assert.deepEqual(decodeMessage(encodeMessage(x, [])).header, x);
  });

  it('ignores unknown flag bits on receipt, RFC 7296 §3.1', () => {
    const wire = encodeMessage(h, []);
    wire[19] = wire[19]! | 0x47;
    const m = decodeMessage(wire);
    assert.equal(m.header.initiator, true);
    assert.equal(m.header.response, false);
  });

  it('rejects major version 3 with INVALID_MAJOR_VERSION, RFC 7296 §2.5', () => {
    const wire = encodeMessage(h, []);
    wire[17] = 0x30;
    const e = throwsCode(() => decodeMessage(wire), 'ERR_IKE_MAJOR_VERSION');
    assert.ok(e instanceof InvalidMajorVersionError);
    assert.equal(e.majorVersion, 3);
    assert.equal(notifyForError(e), NotifyError.INVALID_MAJOR_VERSION);
  });

  it('rejects an IKEv1 header (major version 1), RFC 7296 §2.5', () => {
    const wire = encodeMessage(h, []);
    wire[17] = 0x10;
    throwsCode(() => decodeMessage(wire), 'ERR_IKE_MAJOR_VERSION');
  });

  it('rejects a datagram shorter than the 28-byte header', () => {
    throwsCode(() => decodeMessage(hex('0102')), 'ERR_IKE_HEADER_TRUNCATED');
    throwsCode(() => decodeMessage(new Uint8Array(0)), 'ERR_IKE_HEADER_TRUNCATED');
  });

  it('rejects a Length field that does not match the datagram, RFC 7296 §3.1', () => {
    const wire = encodeMessage(h, []);
    new DataView(wire.buffer).setUint32(24, 29);
    const e = throwsCode(() => decodeMessage(wire), 'ERR_IKE_LENGTH');
    assert.match(e.message, /length is 29, datagram is 28 bytes/);
    assert.equal(notifyForError(e), NotifyError.INVALID_SYNTAX);
    const longer = new Uint8Array(40); longer.set(encodeMessage(h, []));
    throwsCode(() => decodeMessage(longer), 'ERR_IKE_LENGTH');
  });

  it('rejects a message over 65535 bytes before reading it', () => {
    throwsCode(() => decodeMessage(new Uint8Array(70_000)), 'ERR_IKE_MESSAGE_TOO_LONG');
  });

  it('rejects a Next Payload that points past the end of the message', () => {
    const wire = encodeMessage(h, []);
    wire[16] = PayloadType.NONCE;
    throwsCode(() => decodeMessage(wire), 'ERR_IKE_PAYLOAD_TRUNCATED');
  });
});
