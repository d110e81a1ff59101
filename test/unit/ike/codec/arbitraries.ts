// fast-check generators for every payload the codec knows and for whole messages; shared by the
// property tests and the fuzz script. Values respect the wire constraints the decoder enforces
// (so decode(encode(x)) = x), and nothing more: lengths, counts and contents are otherwise random.
import fc from 'fast-check';
import { DhId, ExchangeType, IdType, PayloadType, ProtocolId, TsType } from '../../../../src/ike/constants.js';
import { KE_DATA_BYTES, type IkeHeader, type IkePayload, type Proposal, type Transform, type TransformAttribute } from '../../../../src/ike/codec/index.js';

/** fast-check builds records with a null prototype; decoded values have Object's. */
function plain<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T> { return arb.map((v) => structuredClone(v)); }

const bytes = (min: number, max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: min, maxLength: max });
const u8 = fc.integer({ min: 0, max: 255 });
const u16 = fc.integer({ min: 0, max: 0xffff });
const critical = fc.option(fc.constant(true as const), { nil: undefined, freq: 8 });

function withCritical<T extends IkePayload>(arb: fc.Arbitrary<T>): fc.Arbitrary<IkePayload> {
  return fc.tuple(arb, critical).map(([p, c]) => (c ? { ...p, critical: true } : p));
}

const attribute: fc.Arbitrary<TransformAttribute> = fc.oneof(
  fc.record({ type: fc.integer({ min: 0, max: 0x7fff }), format: fc.constant('tv' as const), value: u16 }),
  fc.record({ type: fc.integer({ min: 0, max: 0x7fff }).filter((t) => t !== 14), format: fc.constant('tlv' as const), value: bytes(0, 12) }),
);

const transform: fc.Arbitrary<Transform> = fc.record({
  type: fc.integer({ min: 1, max: 5 }), id: u16, attributes: fc.array(attribute, { maxLength: 3 }),
});

const proposal: fc.Arbitrary<Proposal> = fc.oneof(
  fc.record({ num: u8, protocolId: fc.constant(ProtocolId.IKE as number), spi: fc.oneof(bytes(0, 0), bytes(8, 8)), transforms: fc.array(transform, { maxLength: 6 }) }),
  fc.record({ num: u8, protocolId: fc.constantFrom(ProtocolId.AH as number, ProtocolId.ESP), spi: bytes(4, 4), transforms: fc.array(transform, { maxLength: 6 }) }),
);

const keGroup = fc.oneof(fc.constantFrom(...KE_DATA_BYTES.keys()), fc.integer({ min: 0, max: 0xffff }).filter((g) => !KE_DATA_BYTES.has(g)));

const selector = fc.oneof(
  fc.record({ tsType: fc.constant(TsType.TS_IPV4_ADDR_RANGE as number), ipProtocol: u8, startPort: u16, endPort: u16, start: bytes(4, 4), end: bytes(4, 4) }),
  fc.record({ tsType: fc.constant(TsType.TS_IPV6_ADDR_RANGE as number), ipProtocol: u8, startPort: u16, endPort: u16, start: bytes(16, 16), end: bytes(16, 16) }),
);

const idData = fc.oneof(
  fc.record({ idType: fc.constant(IdType.ID_IPV4_ADDR as number), data: bytes(4, 4) }),
  fc.record({ idType: fc.constant(IdType.ID_IPV6_ADDR as number), data: bytes(16, 16) }),
  fc.record({ idType: fc.constantFrom(IdType.ID_FQDN as number, IdType.ID_RFC822_ADDR, IdType.ID_DER_ASN1_DN, IdType.ID_KEY_ID, 200), data: bytes(0, 40) }),
);

/** Payload type numbers the codec does not know (so they round-trip as `unknown`). */
const unknownType = fc.integer({ min: 1, max: 255 }).filter((t) => !(t >= 33 && t <= 48) && t !== 53);

/** Every payload kind that may appear in an inner (decrypted) chain. */
export const innerPayload: fc.Arbitrary<IkePayload> = plain(fc.oneof(
  withCritical(fc.record({ kind: fc.constant('sa' as const), proposals: fc.array(proposal, { minLength: 1, maxLength: 4 }) })),
  withCritical(keGroup.chain((group) => bytes(KE_DATA_BYTES.get(group) ?? 1, KE_DATA_BYTES.get(group) ?? 64).map((data) => ({ kind: 'ke' as const, group, data })))),
  withCritical(fc.tuple(fc.constantFrom('idi' as const, 'idr' as const), idData).map(([kind, d]) => ({ kind, ...d }))),
  withCritical(fc.record({ kind: fc.constant('cert' as const), encoding: u8, data: bytes(1, 64) })),
  withCritical(fc.record({ kind: fc.constant('certreq' as const), encoding: u8, authorities: bytes(0, 60) })),
  withCritical(fc.record({ kind: fc.constant('auth' as const), method: u8, data: bytes(1, 64) })),
  withCritical(fc.record({ kind: fc.constant('nonce' as const), data: bytes(16, 256) })),
  withCritical(fc.oneof(
    fc.record({ kind: fc.constant('notify' as const), protocolId: fc.constant(0), type: u16, spi: bytes(0, 0), data: bytes(0, 32) }),
    fc.record({ kind: fc.constant('notify' as const), protocolId: fc.integer({ min: 0, max: 3 }), type: u16, spi: fc.oneof(bytes(4, 4), bytes(8, 8)), data: bytes(0, 32) }),
  )),
  withCritical(fc.oneof(
    fc.record({ kind: fc.constant('delete' as const), protocolId: fc.constant(ProtocolId.IKE as number), spis: fc.constant([]) }),
    fc.record({ kind: fc.constant('delete' as const), protocolId: fc.constantFrom(ProtocolId.AH as number, ProtocolId.ESP), spis: fc.array(bytes(4, 4), { maxLength: 8 }) }),
  )),
  withCritical(fc.record({ kind: fc.constant('vendor' as const), data: bytes(0, 32) })),
  withCritical(fc.record({ kind: fc.constantFrom('tsi' as const, 'tsr' as const), selectors: fc.array(selector, { minLength: 1, maxLength: 4 }) })),
  withCritical(fc.record({ kind: fc.constant('cp' as const), cfgType: u8, attributes: fc.array(fc.record({ type: fc.integer({ min: 0, max: 0x7fff }), value: bytes(0, 20) }), { maxLength: 5 }) })),
  withCritical(fc.record({ kind: fc.constant('eap' as const), data: bytes(0, 40) })),
  fc.record({ kind: fc.constant('unknown' as const), type: unknownType, data: bytes(0, 32) }),
));

const payloadTypeNumber = fc.constantFrom(...Object.values(PayloadType).filter((t) => t !== PayloadType.SK && t !== PayloadType.SKF && t !== 0));

export const envelope: fc.Arbitrary<IkePayload> = plain(fc.oneof(
  fc.record({ kind: fc.constant('sk' as const), innerNext: payloadTypeNumber, body: bytes(0, 128) }),
  fc.integer({ min: 1, max: 0xffff }).chain((total) => fc.record({
    kind: fc.constant('skf' as const), innerNext: fc.oneof(payloadTypeNumber, fc.constant(0)),
    fragmentNumber: fc.integer({ min: 1, max: total }), totalFragments: fc.constant(total), body: bytes(0, 128),
  })),
));

export const header: fc.Arbitrary<IkeHeader> = plain(fc.record({
  initiatorSpi: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  responderSpi: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  exchangeType: fc.oneof(fc.constantFrom(...Object.values(ExchangeType) as number[]), u8),
  initiator: fc.boolean(), response: fc.boolean(), higherVersion: fc.boolean(),
  minorVersion: fc.integer({ min: 0, max: 15 }),
  messageId: fc.integer({ min: 0, max: 0xffffffff }),
}));

/** A whole message: clear payloads, optionally ending in one SK/SKF envelope. */
export const message = fc.record({
  header,
  payloads: fc.tuple(fc.array(innerPayload, { maxLength: 8 }), fc.option(envelope, { nil: undefined }))
    .map(([clear, env]) => (env === undefined ? clear : [...clear, env])),
});

export const dhGroups = [DhId.MODP_2048, DhId.ECP_256, DhId.CURVE25519];
