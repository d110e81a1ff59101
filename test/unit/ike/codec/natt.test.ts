// RFC 3948 non-ESP marker on UDP 4500 and the IkeMessage accessors.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExchangeType, NotifyStatus } from '../../../../src/ike/constants.js';
import { classifyPort4500, decodeMessage, encodeMessage, IkeCodecError, notify, withNonEspMarker, type IkeHeader } from '../../../../src/ike/codec/index.js';
import { hex, loadGolden, toHex } from './helpers.js';

describe('port 4500 demultiplexing, RFC 3948 §2.2-2.3', () => {
  it('strips the 4-byte zero non-ESP marker from IKE and adds it back', () => {
    const ike = hex(loadGolden()[0]!.datagrams[2]!.hex);
    const onWire = withNonEspMarker(ike);
    assert.equal(toHex(onWire.subarray(0, 4)), '00000000');
    const c = classifyPort4500(onWire);
    assert.equal(c.kind, 'ike');
    assert.equal(c.kind === 'ike' && toHex(c.message), toHex(ike));
  });
  it('passes ESP (non-zero SPI) to the data plane and recognises the 0xFF NAT-keepalive', () => {
    assert.equal(classifyPort4500(hex('c0ffee0100000001')).kind, 'esp');
    assert.equal(classifyPort4500(hex('ff')).kind, 'keepalive');
    assert.equal(classifyPort4500(hex('0000')).kind, 'invalid');
  });
});

describe('IkeMessage accessors', () => {
  const h: IkeHeader = { initiatorSpi: 1n, responderSpi: 0n, exchangeType: ExchangeType.IKE_SA_INIT, initiator: true, response: false, higherVersion: false, minorVersion: 0, messageId: 0 };
  const m = decodeMessage(encodeMessage(h, [
    { kind: 'nonce', data: new Uint8Array(16) }, notify(NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED), notify(NotifyStatus.NAT_DETECTION_SOURCE_IP, new Uint8Array(20)),
    notify(NotifyStatus.NAT_DETECTION_SOURCE_IP, new Uint8Array(20).fill(1)),
  ]));
  it('first / all / required / notifies / has', () => {
    assert.equal(m.first('nonce')?.data.length, 16);
    assert.equal(m.first('ke'), undefined);
    assert.equal(m.all('notify').length, 3);
    assert.equal(m.notifies(NotifyStatus.NAT_DETECTION_SOURCE_IP).length, 2);
    assert.ok(m.has(NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED));
    assert.equal(m.errorNotifies().length, 0);
    assert.throws(() => m.required('sa'), (e: unknown) => e instanceof IkeCodecError && e.code === 'ERR_IKE_PAYLOAD_MISSING' && /IKE_SA_INIT request has no sa/.test(e.message));
    assert.equal(m.exchangeName, 'IKE_SA_INIT');
    assert.equal(m.encrypted(), undefined);
  });
});
