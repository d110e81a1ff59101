// RFC 9370 Additional Key Exchange transforms (Transform Types 6..12) in the SA payload (RFC 7296
// §3.3.2 layout, no attributes), carrying the ML-KEM IDs 35/36/37: decode, encode byte-for-byte, and
// the bridge to the policy's strongSwan syntax in both directions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DhId, EncrId, PayloadType, PrfId, ProtocolId, TransformType as T } from '../../../../src/ike/constants.js';
import { decodePayloadChain, encodePayloadChain, type SaPayload } from '../../../../src/ike/codec/index.js';
import { formatProposal, fromSaProposal, parseProposal, toSaProposals } from '../../../../src/ike/policy/index.js';
import { hex, toHex, wrap } from './helpers.js';

const decodeSaBody = (body: Uint8Array): SaPayload => decodePayloadChain(wrap(body), PayloadType.SA)[0] as SaPayload;

// One IKE proposal as strongSwan 6 sends "aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none", laid
// out by hand from the RFC 7296 §3.3.1/§3.3.2 diagrams: 5 transforms, the last two of type 6.
const HYBRID_PROPOSAL = hex(`
  00 00 0034 01 01 00 05
  03 00 000c 01 00 0014 800e 0100
  03 00 0008 02 00 0006
  03 00 0008 04 00 001f
  03 00 0008 06 00 0024
  00 00 0008 06 00 0000`);

describe('SA payload with RFC 9370 ADDKE transforms', () => {
  it('decodes ADDKE1 ML-KEM-768 (36) and ADDKE1 NONE (0) next to the Transform Type 4 method, and re-encodes the same bytes', () => {
    const sa = decodeSaBody(HYBRID_PROPOSAL);
    const p = sa.proposals[0]!;
    assert.equal(p.protocolId, ProtocolId.IKE);
    assert.deepEqual(p.transforms.map((t) => [t.type, t.id, t.attributes.length]), [
      [T.ENCR, EncrId.ENCR_AES_GCM_16, 1], [T.PRF, PrfId.PRF_HMAC_SHA2_384, 0], [T.DH, DhId.CURVE25519, 0],
      [T.ADDKE1, DhId.ML_KEM_768, 0], [T.ADDKE1, DhId.NONE, 0],
    ]);
    assert.equal(toHex(encodePayloadChain([sa]).bytes), toHex(wrap(HYBRID_PROPOSAL)));
  });

  it('maps to and from the strongSwan syntax: the policy emits exactly these transforms', () => {
    const text = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none';
    assert.equal(formatProposal({ protocol: 'ike', transforms: fromSaProposal(decodeSaBody(HYBRID_PROPOSAL).proposals[0]!).transforms }), text);
    const ours = toSaProposals([parseProposal(text, 'ike', { additionalKeyExchanges: true })]);
    assert.equal(toHex(encodePayloadChain([{ kind: 'sa', critical: false, proposals: ours }]).bytes), toHex(wrap(HYBRID_PROPOSAL)));
  });

  it('carries every ADDKE type 6..12 with each ML-KEM ID through encode and decode', () => {
    const transforms = [T.ADDKE1, T.ADDKE2, T.ADDKE3, T.ADDKE4, T.ADDKE5, T.ADDKE6, T.ADDKE7]
      .flatMap((type) => [DhId.ML_KEM_512, DhId.ML_KEM_768, DhId.ML_KEM_1024].map((id) => ({ type, id, attributes: [] })));
    const sa: SaPayload = { kind: 'sa', critical: false, proposals: [{ num: 1, protocolId: ProtocolId.IKE, spi: new Uint8Array(0), transforms: [{ type: T.ENCR, id: EncrId.ENCR_CHACHA20_POLY1305, attributes: [] }, ...transforms] }] };
    const bytes = encodePayloadChain([sa]).bytes;
    const back = decodePayloadChain(bytes, PayloadType.SA)[0] as SaPayload;
    assert.deepEqual(back.proposals[0]!.transforms.slice(1).map((t) => [t.type, t.id]), transforms.map((t) => [t.type, t.id]));
  });
});
