// The crypto layer against real strongSwan 5.9.8 traffic (test/golden/ike, see its README):
// with the SKEYSEED/SK_* keys charon logged, our prf+ reproduces every SK_* key, our SK module
// opens every SK/SKF payload of every exchange (first inner payload type = the SK header's Next
// Payload, inner chain well formed), AEAD payloads re-seal byte-identically, and the AUTH payloads
// verify: PSK with our signed-octets construction, ECDSA (RFC 7427) with the certificate from the
// CERT payload after validating it to ca.crt and matching the FQDN identity.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { X509Certificate } from 'node:crypto';
import { concatBytes, fromHex, toHex } from '../../../../src/common/bytes.js';
import { SecretBytes } from '../../../../src/common/secret.js';
import { AuthMethod, CertEncoding, PayloadType, TransformType } from '../../../../src/ike/constants.js';
import { createSkCipher } from '../../../../src/ike/crypto/sk.js';
import { expandIkeSaKeys, type IkeSuite } from '../../../../src/ike/crypto/keys.js';
import { createPrf } from '../../../../src/ike/crypto/prf.js';
import { keyExchangeLength, validatePeerPublicValue } from '../../../../src/ike/crypto/dh.js';
import { pskAuthData, signedOctets, verifySignatureAuth } from '../../../../src/ike/crypto/auth.js';
import { matchIdentity, validateCertificateChain } from '../../../../src/ike/crypto/certs.js';
import { parseProposal } from '../../../../src/ike/policy/index.js';

const dir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../golden/ike');

interface Golden {
  scenario: string;
  auth: { method: string; secret?: string; ca?: string };
  config: { ikeProposals: string };
  initiator: { id: string }; responder: { id: string };
  ikeSas: { initiatorSpi: string; responderSpi: string; keys: Record<string, string> }[];
  datagrams: { index: number; exchange: string; response: boolean; hex: string }[];
}

/** A payload as found by walking generic headers (RFC 7296 §3.2); body excludes the 4-octet header. */
interface RawPayload { type: number; body: Uint8Array; raw: Uint8Array }

function walk(first: number, bytes: Uint8Array): RawPayload[] {
  const out: RawPayload[] = [];
  let type = first; let at = 0;
  while (type !== PayloadType.NONE) {
    assert.ok(at + 4 <= bytes.length, `payload ${type} header overruns at ${at}`);
    const next = bytes[at]!; const len = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    assert.ok(len >= 4 && at + len <= bytes.length, `payload ${type} length ${len} at ${at}`);
    out.push({ type, body: bytes.subarray(at + 4, at + len), raw: bytes.subarray(at, at + len) });
    at += len;
    if (type === PayloadType.SK || type === PayloadType.SKF) break; // the SK header's Next Payload names the first inner payload
    type = next;
  }
  if (out[out.length - 1]?.type !== PayloadType.SK && out[out.length - 1]?.type !== PayloadType.SKF) assert.equal(at, bytes.length, 'trailing octets after the last payload');
  return out;
}

function suiteOf(text: string): IkeSuite {
  const p = parseProposal(text, 'ike');
  const first = (type: number) => p.transforms.find((t) => t.type === type);
  const e = first(TransformType.ENCR)!; const prf = first(TransformType.PRF)!; const i = first(TransformType.INTEG);
  return { encrId: e.id, prfId: prf.id, ...(e.keyLength ? { encrKeyBits: e.keyLength } : {}), ...(i ? { integId: i.id } : {}) };
}

const scenarios = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort() : [];

test('golden strongSwan captures are present', { skip: scenarios.length === 0 ? 'test/golden/ike not present' : false }, () => {
  assert.ok(scenarios.length > 0);
});

for (const name of scenarios) {
  const g = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as Golden;
  const suite = suiteOf(g.config.ikeProposals);
  const prf = createPrf(suite.prfId);
  const msgs = g.datagrams.map((d) => ({ ...d, bytes: fromHex(d.hex) }));
  const sa0 = g.ikeSas[0]!;
  const keysFor = (m: Uint8Array) => {
    const spiI = toHex(m.subarray(0, 8)); const spiR = toHex(m.subarray(8, 16));
    const sa = g.ikeSas.find((s) => s.initiatorSpi === spiI && s.responderSpi === spiR);
    assert.ok(sa, `no logged IKE SA for SPIs ${spiI}/${spiR}`);
    return sa.keys;
  };
  const hex = (k: Record<string, string>, n: string) => new SecretBytes(fromHex(k[n] ?? ''));

  /** The IKE_SA_INIT exchange that created the IKE SA: the last request and response (RFC 7296 §1.3 retry after INVALID_KE_PAYLOAD). */
  const initPair = (): { req: Uint8Array; resp: Uint8Array } => {
    const init = msgs.filter((d) => d.exchange === 'IKE_SA_INIT');
    return { req: init.filter((d) => !d.response).at(-1)!.bytes, resp: init.filter((d) => d.response).at(-1)!.bytes };
  };

  /** Decrypt a protected message (SK, or one SKF fragment) with our SK module. */
  const open = (m: Uint8Array): { firstInner: number; inner: Uint8Array; skf?: { num: number; total: number } } => {
    const k = keysFor(m);
    const initiatorSent = (m[19]! & 0x08) !== 0;
    const sk = createSkCipher({ suite, encKey: hex(k, initiatorSent ? 'Sk_ei' : 'Sk_er'), integKey: hex(k, initiatorSent ? 'Sk_ai' : 'Sk_ar') });
    const payloads = walk(m[16]!, m.subarray(28));
    const last = payloads[payloads.length - 1]!;
    const hdrLen = last.type === PayloadType.SKF ? 8 : 4;
    const start = m.length - last.raw.length;
    const aad = m.subarray(0, start + hdrLen);
    const body = m.subarray(start + hdrLen);
    const inner = sk.decrypt(body, aad);
    if (sk.encr.aead) assert.equal(toHex(sk.encrypt(inner, aad, { iv: body.subarray(0, 8) })), toHex(body), 'AEAD re-seal is byte-identical');
    const skf = last.type === PayloadType.SKF ? { num: (last.body[0]! << 8) | last.body[1]!, total: (last.body[2]! << 8) | last.body[3]! } : undefined;
    return { firstInner: last.raw[0]!, inner, ...(skf ? { skf } : {}) };
  };

  /** Every protected exchange, with SKF fragments reassembled (RFC 7383 §2.6). */
  const decrypted = (): { index: number; exchange: string; response: boolean; initiatorSent: boolean; payloads: RawPayload[] }[] => {
    const out: ReturnType<typeof decrypted> = [];
    let pending: { first: number; parts: Uint8Array[] } | null = null;
    for (const d of msgs) {
      if (d.exchange === 'IKE_SA_INIT') continue;
      const o = open(d.bytes);
      const initiatorSent = (d.bytes[19]! & 0x08) !== 0;
      if (o.skf) {
        if (o.skf.num === 1) { pending = { first: o.firstInner, parts: [] }; assert.notEqual(o.firstInner, 0); } else assert.equal(o.firstInner, 0, 'only the first fragment names the first inner payload');
        pending!.parts.push(o.inner);
        if (o.skf.num === o.skf.total) { out.push({ index: d.index, exchange: d.exchange, response: d.response, initiatorSent, payloads: walk(pending!.first, concatBytes(...pending!.parts)) }); pending = null; }
      } else out.push({ index: d.index, exchange: d.exchange, response: d.response, initiatorSent, payloads: walk(o.firstInner, o.inner) });
    }
    return out;
  };

  test(`golden ${name}: prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) reproduces every SK_* key charon logged (RFC 7296 §2.14)`, () => {
    const { req, resp } = initPair();
    const nonce = (m: Uint8Array) => walk(m[16]!, m.subarray(28)).find((p) => p.type === PayloadType.NONCE)!.body;
    const check = (sa: Golden['ikeSas'][number], ni: Uint8Array, nr: Uint8Array) => {
      const keys = expandIkeSaKeys(suite, new SecretBytes(fromHex(sa.keys['SKEYSEED']!)), ni, nr, fromHex(sa.initiatorSpi), fromHex(sa.responderSpi));
      const got: Record<string, SecretBytes> = { Sk_d: keys.skD, Sk_ai: keys.skAi, Sk_ar: keys.skAr, Sk_ei: keys.skEi, Sk_er: keys.skEr, Sk_pi: keys.skPi, Sk_pr: keys.skPr };
      for (const [k, v] of Object.entries(got)) assert.equal(toHex(v.expose()), sa.keys[k] ?? '', `${k} of IKE SA ${sa.initiatorSpi}`);
    };
    check(sa0, nonce(req), nonce(resp));
    // The IKE rekey: nonces come from the CREATE_CHILD_SA whose SA payload proposes protocol IKE.
    const sa1 = g.ikeSas[1];
    if (sa1) {
      const rekey = decrypted().filter((x) => x.exchange === 'CREATE_CHILD_SA' && x.payloads.some((p) => p.type === PayloadType.SA && p.body[5] === 1));
      const ni = rekey.find((x) => !x.response)!.payloads.find((p) => p.type === PayloadType.NONCE)!.body;
      const nr = rekey.find((x) => x.response)!.payloads.find((p) => p.type === PayloadType.NONCE)!.body;
      check(sa1, ni, nr);
    }
  });

  test(`golden ${name}: strongSwan's KE payloads have our lengths and pass our public-value validation; INVALID_KE_PAYLOAD names the retried group`, () => {
    const init = msgs.filter((d) => d.exchange === 'IKE_SA_INIT');
    let asked: number | undefined;
    for (const d of init) {
      const ps = walk(d.bytes[16]!, d.bytes.subarray(28));
      const invalidKe = ps.find((p) => p.type === PayloadType.NOTIFY && ((p.body[2]! << 8) | p.body[3]!) === 17);
      if (invalidKe) { asked = (invalidKe.body[4]! << 8) | invalidKe.body[5]!; continue; }
      const ke = ps.find((p) => p.type === PayloadType.KE);
      if (!ke) continue;
      const group = (ke.body[0]! << 8) | ke.body[1]!;
      const data = ke.body.subarray(4);
      assert.equal(data.length, keyExchangeLength(group), `KE length for group ${group}`);
      validatePeerPublicValue(group, data);
      if (asked !== undefined && !d.response) { assert.equal(group, asked, 'retry uses the group the responder asked for'); }
    }
    if (name.includes('invalid-ke')) assert.ok(asked !== undefined, 'capture contains INVALID_KE_PAYLOAD');
  });

  test(`golden ${name}: every SK${name.endsWith('frag') ? '/SKF' : ''} payload decrypts; first inner payload type matches the SK header`, () => {
    const all = decrypted();
    assert.ok(all.length >= 8);
    const auth = all.filter((x) => x.exchange === 'IKE_AUTH');
    assert.equal(auth.length, 2);
    assert.equal(auth.find((x) => !x.response)!.payloads[0]!.type, PayloadType.IDi);
    assert.equal(auth.find((x) => x.response)!.payloads[0]!.type, PayloadType.IDr);
    for (const a of auth) for (const t of [PayloadType.AUTH, PayloadType.SA, PayloadType.TSi, PayloadType.TSr]) assert.ok(a.payloads.some((p) => p.type === t), `IKE_AUTH ${a.response ? 'response' : 'request'} lacks payload ${t}`);
  });

  test(`golden ${name}: tampering with an IKE_AUTH message makes our SK module fail with IntegrityError`, () => {
    const m = msgs.find((d) => d.exchange === 'IKE_AUTH')!.bytes;
    const bad = new Uint8Array(m); bad[bad.length - 20] = bad[bad.length - 20]! ^ 1;
    assert.throws(() => open(bad), (e: unknown) => (e as { code?: string }).code === 'ERR_IKE_INTEGRITY');
  });

  test(`golden ${name}: both AUTH payloads verify with our signed octets (RFC 7296 §2.15${g.auth.method === 'psk' ? '' : ', RFC 7427'})`, () => {
    const k = sa0.keys;
    const { req, resp } = initPair();
    const nonce = (m: Uint8Array) => walk(m[16]!, m.subarray(28)).find((p) => p.type === PayloadType.NONCE)!.body;
    const auth = decrypted().filter((x) => x.exchange === 'IKE_AUTH');
    for (const side of ['initiator', 'responder'] as const) {
      const msg = auth.find((x) => x.response === (side === 'responder'))!;
      const id = msg.payloads[0]!;
      const a = msg.payloads.find((p) => p.type === PayloadType.AUTH)!;
      const octets = signedOctets({
        realMessage: side === 'initiator' ? req : resp,
        peerNonce: side === 'initiator' ? nonce(resp) : nonce(req),
        prf, skP: hex(k, side === 'initiator' ? 'Sk_pi' : 'Sk_pr'), idPayloadBody: id.body,
      });
      const method = a.body[0]!; const data = a.body.subarray(4);
      if (g.auth.method === 'psk') {
        assert.equal(method, AuthMethod.SHARED_KEY_MESSAGE_INTEGRITY_CODE);
        assert.equal(toHex(pskAuthData(prf, new SecretBytes(new TextEncoder().encode(g.auth.secret!)), octets)), toHex(data), `${side} PSK AUTH`);
      } else {
        const certs = msg.payloads.filter((p) => p.type === PayloadType.CERT);
        assert.equal(certs[0]!.body[0], CertEncoding.X509_CERT_SIGNATURE);
        const ca = new Uint8Array(new X509Certificate(readFileSync(join(dir, g.auth.ca!))).raw);
        const ee = certs[0]!.body.subarray(1);
        const nowMs = Date.parse(new X509Certificate(ee).validFrom) + 3_600_000;
        const chain = validateCertificateChain({ endEntity: ee, intermediates: certs.slice(1).map((c) => c.body.subarray(1)), trustAnchors: [ca], nowMs });
        matchIdentity(chain.endEntity, id.body[0]!, id.body.subarray(4));
        assert.equal(new TextDecoder().decode(id.body.subarray(4)), side === 'initiator' ? g.initiator.id : g.responder.id);
        const scheme = verifySignatureAuth(method, data, chain.publicKey, octets);
        assert.equal(scheme.name, 'ecdsa-with-sha256');
        const bad = new Uint8Array(octets); bad[0] = bad[0]! ^ 1;
        assert.throws(() => verifySignatureAuth(method, data, chain.publicKey, bad), (e: unknown) => (e as { code?: string }).code === 'ERR_IKE_AUTHENTICATION_FAILED');
      }
    }
  });
}
