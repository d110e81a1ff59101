// Proposal selection as strongSwan does it by default (responder's configured order), the
// NO_PROPOSAL_CHOSEN report with both lists, the initiator's reply check, and the bridges to the
// codec's SA payload and the crypto suites.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DhId, EncrId, EsnId, IntegId, PrfId, ProtocolId, TransformAttr, TransformType as T } from '../../../../src/ike/constants.js';
import { acceptsDhGroup, checkProposalReply, childSuiteOf, dhGroupOf, esnOf, fromSaProposal, ikeSuiteOf, parseProposal, parseProposals, preferredDhGroup, selectedToSaProposal, selectProposal, toSaProposals, type OfferedProposal, type PolicyProposal } from '../../../../src/ike/policy/index.js';

/** The peer's proposals as they arrive: numbered from 1, through the codec representation. */
function offered(texts: string[], proto: 'ike' | 'esp', spi = new Uint8Array(proto === 'esp' ? 4 : 0)): OfferedProposal[] {
  return toSaProposals(parseProposals(texts, proto, { allowWeak: true }), spi).map(fromSaProposal);
}

test('responder picks by its own configured order (strongSwan prefer_configured_proposals = yes)', () => {
  const ours = parseProposals(['aes256gcm16-prfsha384-ecp384', 'aes128-sha256-modp2048'], 'ike');
  const theirs = offered(['aes128-sha256-modp2048', 'aes256gcm16-prfsha384-ecp384'], 'ike');
  const s = selectProposal(ours, theirs);
  assert.ok(s.ok);
  assert.equal(s.proposal.num, 2);
  assert.deepEqual(s.proposal.encr, { type: T.ENCR, id: EncrId.ENCR_AES_GCM_16, keyLength: 256 });
});

test('with preferConfigured=false the initiator\'s order wins', () => {
  const ours = parseProposals(['aes256gcm16-prfsha384-ecp384', 'aes128-sha256-modp2048'], 'ike');
  const theirs = offered(['aes128-sha256-modp2048', 'aes256gcm16-prfsha384-ecp384'], 'ike');
  const s = selectProposal(ours, theirs, { preferConfigured: false });
  assert.ok(s.ok);
  assert.equal(s.proposal.num, 1);
  assert.equal(s.proposal.encr.id, EncrId.ENCR_AES_CBC);
});

test('within a proposal each type takes our first algorithm the peer also offered', () => {
  const ours = parseProposals(['aes256gcm16-aes128gcm16-prfsha512-prfsha256-x25519-ecp256-modp2048'], 'ike');
  const theirs = offered(['aes128gcm16-aes256gcm16-prfsha256-prfsha512-modp2048-ecp256'], 'ike');
  const s = selectProposal(ours, theirs);
  assert.ok(s.ok);
  assert.equal(s.proposal.encr.keyLength, 256);
  assert.equal(s.proposal.prf?.id, PrfId.PRF_HMAC_SHA2_512);
  assert.equal(s.proposal.dh?.id, DhId.ECP_256);
  assert.equal(s.proposal.transforms.length, 3); // exactly one per type in the reply
  assert.deepEqual(ikeSuiteOf(s.proposal), { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_512 });
});

test('kePayloadGroup picks the initiator\'s KE group when acceptable (avoids INVALID_KE_PAYLOAD)', () => {
  const ours = parseProposals(['aes256gcm16-prfsha256-x25519-ecp256'], 'ike');
  const theirs = offered(['aes256gcm16-prfsha256-ecp256-x25519'], 'ike');
  const s = selectProposal(ours, theirs, { kePayloadGroup: DhId.ECP_256 });
  assert.ok(s.ok);
  assert.equal(dhGroupOf(s.proposal), DhId.ECP_256);
  const s2 = selectProposal(ours, theirs);
  assert.ok(s2.ok);
  assert.equal(dhGroupOf(s2.proposal), DhId.CURVE25519);
});

test('key lengths must match: aes128 does not match aes256', () => {
  const s = selectProposal(parseProposals(['aes256-sha256-modp2048'], 'ike'), offered(['aes128-sha256-modp2048'], 'ike'));
  assert.equal(s.ok, false);
});

test('NO_PROPOSAL_CHOSEN carries both sides\' proposals as strings', () => {
  const ours = parseProposals(['aes256gcm16-prfsha384-x25519'], 'ike');
  const theirs = offered(['3des-sha1-modp1024', 'aes128-sha256-modp2048'], 'ike');
  const s = selectProposal(ours, theirs);
  assert.equal(s.ok, false);
  if (s.ok) return;
  assert.equal(s.notify, 'NO_PROPOSAL_CHOSEN');
  assert.deepEqual(s.received, ['IKE:3des-sha1-prfsha1-modp1024', 'IKE:aes128-sha256-prfsha256-modp2048']);
  assert.deepEqual(s.configured, ['IKE:aes256gcm16-prfsha384-x25519']);
  assert.match(s.message, /received IKE:3des-sha1-prfsha1-modp1024, IKE:aes128-sha256-prfsha256-modp2048; configured IKE:aes256gcm16-prfsha384-x25519/);
});

test('weak algorithms the peer offers are never chosen unless we configured them', () => {
  const theirs = offered(['3des-sha1-modp1024'], 'ike');
  assert.equal(selectProposal(parseProposals(['aes128-sha1-modp2048'], 'ike'), theirs).ok, false);
  const weakOk = parseProposals(['3des-sha1-modp1024'], 'ike', { allowWeak: true });
  assert.equal(selectProposal(weakOk, theirs).ok, true);
});

test('unknown transform IDs and unknown attributes in an offer are reported, not chosen', () => {
  const theirs: OfferedProposal[] = [
    { num: 1, protocol: 'ike', spi: new Uint8Array(0), transforms: [{ type: T.ENCR, id: 99, keyLength: 128 }, { type: T.PRF, id: 5 }, { type: T.INTEG, id: 12 }, { type: T.DH, id: 31 }] },
    fromSaProposal({ num: 2, protocolId: ProtocolId.IKE, spi: new Uint8Array(0), transforms: [
      { type: T.ENCR, id: EncrId.ENCR_AES_GCM_16, attributes: [{ type: TransformAttr.KEY_LENGTH, format: 'tv', value: 256 }, { type: 99, format: 'tv', value: 1 }] },
      { type: T.PRF, id: PrfId.PRF_HMAC_SHA2_256, attributes: [] }, { type: T.DH, id: DhId.CURVE25519, attributes: [] }] }),
  ];
  const s = selectProposal(parseProposals(['aes256gcm16-prfsha256-x25519', 'aes128-sha256-x25519'], 'ike'), theirs);
  assert.equal(s.ok, false);
  if (!s.ok) assert.equal(s.received[0], 'IKE:encr99/128-sha256-prfsha256-x25519');
});

test('ESP: PFS group must match; no-PFS on both sides matches; NONE from the peer is echoed', () => {
  const pfs = parseProposals(['aes256gcm16-x25519'], 'esp');
  const noPfs = parseProposals(['aes256gcm16'], 'esp');
  assert.equal(selectProposal(pfs, offered(['aes256gcm16'], 'esp')).ok, false);
  assert.equal(selectProposal(noPfs, offered(['aes256gcm16-x25519'], 'esp')).ok, false);
  const s = selectProposal(noPfs, offered(['aes256gcm16'], 'esp', new Uint8Array([1, 2, 3, 4])));
  assert.ok(s.ok);
  assert.equal(dhGroupOf(s.proposal), null);
  assert.deepEqual(Array.from(s.proposal.spi), [1, 2, 3, 4]);
  const withNone: OfferedProposal = { num: 1, protocol: 'esp', spi: new Uint8Array(4), transforms: [{ type: T.ENCR, id: EncrId.ENCR_AES_GCM_16, keyLength: 256 }, { type: T.DH, id: DhId.NONE }, { type: T.DH, id: DhId.CURVE25519 }, { type: T.ESN, id: EsnId.NO_ESN }] };
  const s2 = selectProposal(noPfs, [withNone]);
  assert.ok(s2.ok);
  assert.deepEqual(s2.proposal.transforms.filter((t) => t.type === T.DH), [{ type: T.DH, id: DhId.NONE }]);
  const s3 = selectProposal(pfs, [withNone]);
  assert.ok(s3.ok);
  assert.equal(dhGroupOf(s3.proposal), DhId.CURVE25519);
});

test('ESP ESN: esn-noesn from the peer against our esn picks ESN; missing ESN transform means NO_ESN', () => {
  const s = selectProposal(parseProposals(['aes128-sha256-esn'], 'esp'), offered(['aes128-sha256-noesn-esn'], 'esp'));
  assert.ok(s.ok);
  assert.equal(esnOf(s.proposal), true);
  assert.deepEqual(childSuiteOf(s.proposal), { encrId: EncrId.ENCR_AES_CBC, encrKeyBits: 128, integId: IntegId.AUTH_HMAC_SHA2_256_128 });
  const bare: OfferedProposal = { num: 1, protocol: 'esp', spi: new Uint8Array(4), transforms: [{ type: T.ENCR, id: EncrId.ENCR_AES_CBC, keyLength: 128 }, { type: T.INTEG, id: IntegId.AUTH_HMAC_SHA2_256_128 }] };
  const s2 = selectProposal(parseProposals(['aes128-sha256'], 'esp'), [bare]);
  assert.ok(s2.ok);
  assert.equal(esnOf(s2.proposal), false);
  assert.equal(s2.proposal.transforms.some((t) => t.type === T.ESN), false);
});

test('protocol must match: an ESP offer never satisfies an IKE config', () => {
  assert.equal(selectProposal(parseProposals(['aes128-sha256-modp2048'], 'ike'), offered(['aes128-sha256-modp2048'], 'esp')).ok, false);
});

test('SA payload round trip: toSaProposals carries KEY_LENGTH as a TV attribute, fromSaProposal reads it back', () => {
  const ps = parseProposals(['aes256gcm16-prfsha384-x25519', 'aes128-sha256-modp2048'], 'ike');
  const sa = toSaProposals(ps);
  assert.deepEqual(sa.map((p) => p.num), [1, 2]);
  assert.deepEqual(sa[0]!.transforms[0], { type: T.ENCR, id: EncrId.ENCR_AES_GCM_16, attributes: [{ type: TransformAttr.KEY_LENGTH, format: 'tv', value: 256 }] });
  assert.deepEqual(sa.map(fromSaProposal).map((o) => o.transforms), ps.map((p) => p.transforms));
});

test('initiator accepts a reply that is a subset of what it sent and rejects anything else (RFC 7296 §2.7)', () => {
  const sent: PolicyProposal[] = parseProposals(['aes256gcm16-aes128gcm16-prfsha256-x25519-ecp256', 'aes128-sha256-modp2048'], 'ike');
  const sel = selectProposal(parseProposals(['aes128gcm16-prfsha256-ecp256'], 'ike'), toSaProposals(sent).map(fromSaProposal));
  assert.ok(sel.ok);
  const reply = fromSaProposal(selectedToSaProposal(sel.proposal, new Uint8Array(0)));
  const ok = checkProposalReply(sent, [reply]);
  assert.ok(ok.ok);
  if (ok.ok) assert.equal(dhGroupOf(ok.proposal), DhId.ECP_256);
  assert.equal(checkProposalReply(sent, []).ok, false);
  assert.equal(checkProposalReply(sent, [{ ...reply, num: 2 }]).ok, false);
  assert.equal(checkProposalReply(sent, [{ ...reply, transforms: [...reply.transforms, { type: T.DH, id: DhId.CURVE25519 }] }]).ok, false);
  assert.equal(checkProposalReply(sent, [{ ...reply, transforms: reply.transforms.map((t) => t.type === T.DH ? { ...t, id: DhId.MODP_2048 } : t) }]).ok, false);
});

test('preferredDhGroup / acceptsDhGroup drive the KE payload and INVALID_KE_PAYLOAD handling', () => {
  const ps = parseProposals(['aes256gcm16-prfsha256-x25519-ecp256', 'aes128-sha256-modp2048'], 'ike');
  assert.equal(preferredDhGroup(ps), DhId.CURVE25519);
  assert.equal(acceptsDhGroup(ps, DhId.MODP_2048), true);
  assert.equal(acceptsDhGroup(ps, DhId.ECP_384), false);
  assert.equal(preferredDhGroup([parseProposal('aes128gcm16', 'esp')]), null);
});

test('withoutKeyExchange strips KE methods for the IKE_AUTH Child SA and merges duplicates (RFC 7296 §1.2)', async () => {
  const { withoutKeyExchange, formatProposal } = await import('../../../../src/ike/policy/index.js');
  const ps = parseProposals(['aes256gcm16-x25519', 'aes256gcm16-ecp256', 'aes128-sha256-modp2048'], 'esp');
  const stripped = withoutKeyExchange(ps);
  assert.deepEqual(stripped.map(formatProposal), ['aes256gcm16', 'aes128-sha256']);
  const s = selectProposal(withoutKeyExchange(parseProposals(['aes256gcm16-x25519'], 'esp')), offered(['aes256gcm16'], 'esp'));
  assert.ok(s.ok);
});

test('property: a selection only ever contains transforms both sides listed, and self-selection always succeeds', async () => {
  const fc = (await import('fast-check')).default;
  const enc = ['aes128', 'aes256', 'aes128gcm16', 'aes256gcm16', 'chacha20poly1305'];
  const integ = ['sha1', 'sha256', 'sha384', 'sha512']; const prf = ['prfsha256', 'prfsha384', 'prfsha512']; const dh = ['modp2048', 'ecp256', 'ecp384', 'x25519'];
  const proposal = fc.tuple(fc.constantFrom(...enc), fc.uniqueArray(fc.constantFrom(...integ), { minLength: 1, maxLength: 2 }), fc.uniqueArray(fc.constantFrom(...prf), { minLength: 1, maxLength: 2 }), fc.uniqueArray(fc.constantFrom(...dh), { minLength: 1, maxLength: 3 }))
    .map(([e, i, p, d]) => [e, ...(e.includes('gcm') || e.startsWith('chacha') ? [] : i), ...p, ...d].join('-'));
  fc.assert(fc.property(fc.array(proposal, { minLength: 1, maxLength: 3 }), fc.array(proposal, { minLength: 1, maxLength: 3 }), fc.boolean(), (ours, theirs, prefer) => {
    const cfg = parseProposals(ours, 'ike');
    const off = offered(theirs, 'ike');
    const s = selectProposal(cfg, off, { preferConfigured: prefer });
    if (s.ok) {
      const o = off.find((x) => x.num === s.proposal.num)!;
      for (const t of s.proposal.transforms) {
        assert.ok(o.transforms.some((x) => x.type === t.type && x.id === t.id && x.keyLength === t.keyLength));
        assert.ok(cfg.some((c) => c.transforms.some((x) => x.type === t.type && x.id === t.id && x.keyLength === t.keyLength)));
      }
      assert.equal(new Set(s.proposal.transforms.map((t) => t.type)).size, s.proposal.transforms.length);
    } else {
      assert.equal(s.received.length, theirs.length);
      assert.equal(s.configured.length, ours.length);
    }
    assert.ok(selectProposal(cfg, toSaProposals(cfg).map(fromSaProposal), { preferConfigured: prefer }).ok);
  }), { numRuns: 300 });
});
