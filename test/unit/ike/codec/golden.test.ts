// Golden packets from real strongSwan 5.9 (test/golden/ike/*.json, produced by capture.sh; see the
// README there). Every captured datagram must decode, pass the exchange table and re-encode
// byte-identically with SK/SKF as an opaque envelope. With the keys charon logged, the tests also
// open each SK/SKF (node:crypto directly, independent of src/ike/crypto), decode the inner chain,
// check it against the table, and rebuild the exact datagram through encodeEncryptedMessage /
// encodeEncryptedFragments — which proves the AAD / ICV prefix the envelope API hands to crypto is
// the one strongSwan uses (RFC 5282 §5.1, RFC 7296 §3.14, RFC 7383 §2.5).
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { ExchangeType, notifyName, PayloadType } from '../../../../src/ike/constants.js';
import {
  checkInnerPayloads, checkOuterPayloads, decodeMessage, decodePayloadChain, encodeEncryptedFragments,
  encodeEncryptedMessage, encodeMessage, encodePayloadChain, invalidKeGroup, joinFragments, sealedPrefix,
  type IkeMessage, type IkePayload, type Sealer, type SkfPayload,
} from '../../../../src/ike/codec/index.js';
import { hex, loadGolden, toHex, type GoldenCapture, type GoldenDatagram } from './helpers.js';

const captures = loadGolden();

interface Suite { aead: boolean; ivBytes: number; icvBytes: number; encKeyBytes: number }

function suiteOf(proposal: string): Suite {
  if (proposal.includes('AES_GCM_16_256')) return { aead: true, ivBytes: 8, icvBytes: 16, encKeyBytes: 32 };
  if (proposal.includes('AES_CBC_128') && proposal.includes('HMAC_SHA2_256_128')) return { aead: false, ivBytes: 16, icvBytes: 16, encKeyBytes: 16 };
  throw new Error(`golden test knows no suite for ${proposal}`);
}

interface Keys { suite: Suite; enc: Buffer; integ?: Buffer }

function keysFor(c: GoldenCapture, m: IkeMessage): Keys {
  const spi = m.header.initiatorSpi.toString(16).padStart(16, '0');
  const sa = c.ikeSas.find((s) => s.initiatorSpi === spi);
  assert.ok(sa, `no logged keys for IKE SA ${spi}`);
  const suite = suiteOf(sa.proposal);
  // The I flag marks the IKE SA's original initiator, whose messages use SK_ei / SK_ai.
  const enc = Buffer.from(m.header.initiator ? sa.keys.Sk_ei! : sa.keys.Sk_er!, 'hex');
  const integ = suite.aead ? undefined : Buffer.from(m.header.initiator ? sa.keys.Sk_ai! : sa.keys.Sk_ar!, 'hex');
  return integ === undefined ? { suite, enc } : { suite, enc, integ };
}

/** Open one SK/SKF body; returns the plaintext without padding plus what is needed to re-seal it. */
function open(k: Keys, body: Uint8Array, prefix: Uint8Array): { plaintext: Uint8Array; iv: Uint8Array; padding: Uint8Array } {
  const { ivBytes, icvBytes, encKeyBytes } = k.suite;
  const iv = body.subarray(0, ivBytes);
  const ct = body.subarray(ivBytes, body.length - icvBytes);
  const icv = body.subarray(body.length - icvBytes);
  let padded: Buffer;
  if (k.suite.aead) {
    const d = createDecipheriv('aes-256-gcm', k.enc.subarray(0, encKeyBytes), Buffer.concat([k.enc.subarray(encKeyBytes), iv]));
    d.setAAD(prefix); d.setAuthTag(icv);
    padded = Buffer.concat([d.update(ct), d.final()]);
  } else {
    const mac = createHmac('sha256', k.integ!).update(prefix).update(body.subarray(0, body.length - icvBytes)).digest().subarray(0, icvBytes);
    assert.equal(toHex(mac), toHex(icv), 'HMAC-SHA2-256-128 ICV over header..ciphertext');
    const d = createDecipheriv('aes-128-cbc', k.enc, iv).setAutoPadding(false);
    padded = Buffer.concat([d.update(ct), d.final()]);
  }
  const padLength = padded[padded.length - 1]!;
  const cut = padded.length - 1 - padLength;
  return { plaintext: new Uint8Array(padded.subarray(0, cut)), iv, padding: new Uint8Array(padded.subarray(cut)) };
}

/** A sealer that replays strongSwan's IVs and padding, so our envelope must reproduce its bytes. */
function replaySealer(k: Keys, replay: Array<{ iv: Uint8Array; padding: Uint8Array }>): Sealer {
  let i = 0;
  return {
    encryptedLength: (n) => k.suite.ivBytes + n + replay[i]!.padding.length + k.suite.icvBytes,
    encrypt: (plaintext, prefix) => {
      const { iv, padding } = replay[i++]!;
      const padded = Buffer.concat([plaintext, padding]);
      if (k.suite.aead) {
        const c = createCipheriv('aes-256-gcm', k.enc.subarray(0, 32), Buffer.concat([k.enc.subarray(32), iv]));
        c.setAAD(prefix);
        const ct = Buffer.concat([c.update(padded), c.final()]);
        return new Uint8Array(Buffer.concat([iv, ct, c.getAuthTag()]));
      }
      const c = createCipheriv('aes-128-cbc', k.enc, iv).setAutoPadding(false);
      const ivct = Buffer.concat([iv, c.update(padded), c.final()]);
      const icv = createHmac('sha256', k.integ!).update(prefix).update(ivct).digest().subarray(0, 16);
      return new Uint8Array(Buffer.concat([ivct, icv]));
    },
  };
}

function label(d: GoldenDatagram): string {
  return `#${d.index} ${d.exchange} ${d.response ? 'response' : 'request'} ${d.messageId} ${d.direction}`;
}

for (const c of captures) {
  describe(`strongSwan golden ${c.scenario} (${c.negotiated.ike})`, () => {
    it('has the captured exchanges: IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL', () => {
      const seen = new Set(c.datagrams.map((d) => d.exchange));
      for (const e of ['IKE_SA_INIT', 'IKE_AUTH', 'CREATE_CHILD_SA', 'INFORMATIONAL']) assert.ok(seen.has(e), e);
    });

    for (const d of c.datagrams) {
      it(`${label(d)} decodes, passes the exchange table and re-encodes byte-identically, RFC 7296 §3`, () => {
        const wire = hex(d.hex);
        const m = decodeMessage(wire);
        assert.equal(m.exchangeName, d.exchange);
        assert.equal(m.isResponse, d.response);
        assert.equal(m.header.messageId, d.messageId);
        // 192.0.2.1 initiated both IKE SAs (the first and the rekeyed one), so only it sets the I flag.
        assert.equal(m.header.initiator, d.direction === 'i->r');
        checkOuterPayloads(m.header.exchangeType, m.header.response, m.payloads);
        assert.equal(toHex(encodeMessage(m.header, m.payloads)), d.hex);
      });
    }

    it('SK messages decrypt with the logged keys, inner chains pass the table and re-seal byte-identically', () => {
      let opened = 0;
      for (const d of c.datagrams) {
        const wire = hex(d.hex);
        const m = decodeMessage(wire);
        const env = m.encrypted();
        if (env?.kind !== 'sk') continue;
        const k = keysFor(c, m);
        const { plaintext, iv, padding } = open(k, env.body, sealedPrefix(wire, env));
        const inner = decodePayloadChain(plaintext, env.innerNext);
        checkInnerPayloads(m.header.exchangeType, m.header.response, inner);
        assert.deepEqual(encodePayloadChain(inner).bytes, plaintext, `${label(d)} inner chain re-encodes`);
        assert.equal(toHex(encodeEncryptedMessage(m.header, inner, replaySealer(k, [{ iv, padding }]))), d.hex, `${label(d)} re-seals`);
        if (m.header.exchangeType === ExchangeType.IKE_AUTH && !m.isResponse) {
          // charon logged: "generating IKE_AUTH request 1 [ IDi [CERT] N(INIT_CONTACT) [CERTREQ] IDr AUTH SA TSi TSr
          // N(MOBIKE_SUP) N(NO_ADD_ADDR) N(MULT_AUTH) N(EAP_ONLY) N(MSG_ID_SYN_SUP) ]"
          assert.deepEqual(inner.filter((p) => p.kind !== 'cert' && p.kind !== 'certreq').map((p) => (p.kind === 'notify' ? notifyName(p.type) : p.kind)), [
            'idi', 'INITIAL_CONTACT', 'idr', 'auth', 'sa', 'tsi', 'tsr', 'MOBIKE_SUPPORTED', 'NO_ADDITIONAL_ADDRESSES',
            'MULTIPLE_AUTH_SUPPORTED', 'EAP_ONLY_AUTHENTICATION', 'IKEV2_MESSAGE_ID_SYNC_SUPPORTED']);
        }
        opened++;
      }
      assert.ok(opened >= 6);
    });

    // Only captures that hold SKF fragments get this test (no skipped placeholders).
    const frags = c.datagrams.filter((d) => decodeMessage(hex(d.hex)).encrypted()?.kind === 'skf');
    if (frags.length > 0) it('SKF fragments decrypt, reassemble (RFC 7383 §2.6) and re-fragment byte-identically', () => {
      for (const response of [false, true]) {
        const group = frags.filter((d) => d.response === response);
        const msgs = group.map((d) => ({ wire: hex(d.hex), m: decodeMessage(hex(d.hex)) }));
        const k = keysFor(c, msgs[0]!.m);
        const parts = msgs.map(({ wire, m }) => {
          const env = m.encrypted() as SkfPayload;
          return { envelope: env, ...open(k, env.body, sealedPrefix(wire, env)) };
        });
        const inner: IkePayload[] = joinFragments(parts);
        checkInnerPayloads(ExchangeType.IKE_AUTH, response, inner);
        assert.ok(inner.some((p) => p.kind === 'cert'), 'the certificate is what made IKE_AUTH large');
        assert.equal(parts[0]!.envelope.innerNext, response ? PayloadType.IDr : PayloadType.IDi);
        const again = encodeEncryptedFragments(msgs[0]!.m.header, inner, replaySealer(k, parts), parts[0]!.plaintext.length);
        assert.deepEqual(again.map(toHex), group.map((d) => d.hex));
      }
    });
  });
}

describe('strongSwan golden psk-invalid-ke', () => {
  it('the responder answers a KE for the wrong group with N(INVALID_KE_PAYLOAD) alone, carrying group 19, RFC 7296 §1.3', () => {
    const c = captures.find((g) => g.scenario === 'psk-invalid-ke');
    assert.ok(c, 'psk-invalid-ke.json present');
    const [first, reply, retry] = c.datagrams.map((d) => decodeMessage(hex(d.hex)));
    assert.equal(first!.required('ke').group, 31);
    assert.deepEqual(reply!.payloads.map((p) => p.kind), ['notify']);
    assert.equal(invalidKeGroup(reply!.required('notify')), 19);
    assert.equal(reply!.header.responderSpi, 0n);
    checkOuterPayloads(ExchangeType.IKE_SA_INIT, true, reply!.payloads); // error-only reply is allowed
    assert.equal(retry!.required('ke').group, 19);
    assert.equal(retry!.header.initiatorSpi, first!.header.initiatorSpi);
  });
});
