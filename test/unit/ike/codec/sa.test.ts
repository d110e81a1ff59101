// RFC 7296 §3.3 Security Association payload: proposals, transforms, attributes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DhId, EncrId, IntegId, PayloadType, PrfId, ProtocolId, TransformType } from '../../../../src/ike/constants.js';
import { decodePayloadChain, encodePayloadChain, keyLength, type SaPayload } from '../../../../src/ike/codec/index.js';
import { hex, loadGolden, throwsCode, toHex, wrap } from './helpers.js';

const decodeSaBody = (body: Uint8Array): SaPayload => decodePayloadChain(wrap(body), PayloadType.SA)[0] as SaPayload;

// One IKE proposal: AES-CBC-256, PRF-HMAC-SHA2-256, HMAC-SHA2-256-128, group 19 — laid out by hand
// from the §3.3.1/§3.3.2/§3.3.5 diagrams.
const IKE_PROPOSAL = hex(`
  00 00 002c 01 01 00 04
  03 00 000c 01 00 000c 800e 0100
  03 00 0008 02 00 0005
  03 00 0008 03 00 000c
  00 00 0008 04 00 0013`);

describe('SA payload, RFC 7296 §3.3', () => {
  it('decodes a hand-built IKE proposal including KEY_LENGTH (TV format), RFC 7296 §3.3.5', () => {
    const sa = decodeSaBody(IKE_PROPOSAL);
    assert.equal(sa.proposals.length, 1);
    const p = sa.proposals[0]!;
    assert.deepEqual([p.num, p.protocolId, p.spi.length], [1, ProtocolId.IKE, 0]);
    assert.deepEqual(p.transforms.map((t) => [t.type, t.id]), [
      [TransformType.ENCR, EncrId.ENCR_AES_CBC], [TransformType.PRF, PrfId.PRF_HMAC_SHA2_256],
      [TransformType.INTEG, IntegId.AUTH_HMAC_SHA2_256_128], [TransformType.DH, DhId.ECP_256],
    ]);
    assert.equal(keyLength(p.transforms[0]!), 256);
    assert.equal(keyLength(p.transforms[1]!), undefined);
    assert.equal(toHex(encodePayloadChain([sa]).bytes), toHex(wrap(IKE_PROPOSAL)));
  });

  it('decodes the proposals strongSwan sent in IKE_SA_INIT (golden)', () => {
    const init = loadGolden().find((c) => c.scenario === 'psk-gcm')!.datagrams[0]!;
    const wire = hex(init.hex);
    // SA is the first payload: generic header at 28.
    const len = (wire[30]! << 8) | wire[31]!;
    const sa = decodeSaBody(wire.subarray(32, 28 + len));
    const t = sa.proposals[0]!.transforms;
    assert.ok(t.some((x) => x.type === TransformType.ENCR && x.id === EncrId.ENCR_AES_GCM_16 && keyLength(x) === 256));
    assert.ok(t.some((x) => x.type === TransformType.DH && x.id === DhId.CURVE25519));
  });

  it('rejects a KEY_LENGTH attribute in TLV format, RFC 7296 §3.3.5', () => {
    const bad = hex('00 00 0014 01 01 00 01  00 00 000c 01 00 000c 000e 0000');
    throwsCode(() => decodeSaBody(bad), 'ERR_IKE_SA_KEY_LENGTH');
  });

  it('rejects a "last substruc" value that disagrees with the position, RFC 7296 §3.3.1', () => {
    const more = new Uint8Array(IKE_PROPOSAL); more[0] = 2; // says more proposals follow
    throwsCode(() => decodeSaBody(more), 'ERR_IKE_SA_PROPOSAL_LAST');
    const lastTransform = new Uint8Array(IKE_PROPOSAL); lastTransform[8] = 0; // first transform says "last"
    throwsCode(() => decodeSaBody(lastTransform), 'ERR_IKE_SA_TRANSFORM_LAST');
  });

  it('rejects a transform count that disagrees with the proposal length, RFC 7296 §3.3.1', () => {
    const fewer = new Uint8Array(IKE_PROPOSAL); fewer[7] = 3;
    throwsCode(() => decodeSaBody(fewer), 'ERR_IKE_SA_TRANSFORM_LAST');
    const more = new Uint8Array(IKE_PROPOSAL); more[7] = 5;
    throwsCode(() => decodeSaBody(more), 'ERR_IKE_SA_TRANSFORM_LAST');
  });

  it('rejects SPI sizes other than 0/8 for IKE and 4 for ESP, RFC 7296 §3.3.1', () => {
    const esp = new Uint8Array(IKE_PROPOSAL); esp[5] = ProtocolId.ESP;
    throwsCode(() => decodeSaBody(esp), 'ERR_IKE_SA_SPI_SIZE');
    const badProto = new Uint8Array(IKE_PROPOSAL); badProto[5] = 9;
    throwsCode(() => decodeSaBody(badProto), 'ERR_IKE_SA_PROTOCOL');
  });

  it('rejects an empty SA payload and transform/proposal lengths below 8', () => {
    throwsCode(() => decodeSaBody(new Uint8Array(0)), 'ERR_IKE_SA_EMPTY');
    const short = new Uint8Array(IKE_PROPOSAL); short[10] = 0; short[11] = 4;
    throwsCode(() => decodeSaBody(short), 'ERR_IKE_SA_TRANSFORM_LENGTH');
  });

  it('round-trips ESP proposals with 4-byte SPIs and several proposals (OR), RFC 7296 §3.3', () => {
    const sa: SaPayload = { kind: 'sa', proposals: [
      { num: 1, protocolId: ProtocolId.ESP, spi: hex('c0ffee01'), transforms: [
        { type: TransformType.ENCR, id: EncrId.ENCR_AES_GCM_16, attributes: [{ type: 14, format: 'tv', value: 128 }] },
        { type: TransformType.ESN, id: 0, attributes: [] }] },
      { num: 2, protocolId: ProtocolId.ESP, spi: hex('c0ffee01'), transforms: [
        { type: TransformType.ENCR, id: EncrId.ENCR_CHACHA20_POLY1305, attributes: [] }] },
    ] };
    const { bytes } = encodePayloadChain([sa]);
    assert.equal(bytes[4], 2, 'first proposal says more follow');
    assert.deepEqual(decodePayloadChain(bytes, PayloadType.SA), [sa]);
  });
});
