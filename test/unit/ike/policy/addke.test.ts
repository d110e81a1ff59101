// RFC 9370 additional key exchanges (ADDKE1..7, Transform Types 6..12) in the proposal policy:
// strongSwan's keN_ syntax both ways, the "not yet negotiated" refusal of configs that ask for them,
// per-type negotiation with NONE as the optional choice (RFC 9370 §2.2.1), and the initiator's
// check that each ADDKE type it offered comes back as exactly one of its IDs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigError } from '../../../../src/common/errors.js';
import { DhId, TransformType as T } from '../../../../src/ike/constants.js';
import {
  ADDITIONAL_KE_NOT_NEGOTIATED, checkProposalReply, formatProposal, fromSaProposal, parseProposal, parseProposals, selectProposal,
  toSaProposals, transformName, withoutKeyExchange, type OfferedProposal, type PolicyProposal,
} from '../../../../src/ike/policy/index.js';

const withAddke = { additionalKeyExchanges: true } as const;
const ike = (text: string): PolicyProposal => parseProposal(text, 'ike', withAddke);
/** The peer's proposals as they arrive, numbered from 1, through the codec representation. */
const offered = (texts: string[], proto: 'ike' | 'esp' = 'ike'): OfferedProposal[] =>
  toSaProposals(parseProposals(texts, proto, withAddke), new Uint8Array(proto === 'esp' ? 4 : 0)).map(fromSaProposal);
/** A responder's reply as the initiator decodes it. */
const reply = (num: number, text: string): OfferedProposal[] => [{ ...offered([text])[0]!, num }];

test('strongSwan syntax: x25519-ke1_mlkem768 parses to ADDKE1 = 36 and prints back unchanged', () => {
  const p = ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768');
  assert.deepEqual(p.transforms.filter((t) => t.type === T.ADDKE1), [{ type: T.ADDKE1, id: DhId.ML_KEM_768 }]);
  assert.equal(formatProposal(p), 'aes256gcm16-prfsha384-x25519-ke1_mlkem768');
});

test('ke1_ .. ke7_ map to Transform Types 6 .. 12; ke1_none is NONE (0); alternatives keep their order', () => {
  const p = ike('aes256gcm16-prfsha384-x25519-ke7_mlkem512-ke1_mlkem1024-ke1_mlkem768-ke1_none-ke2_mlkem768');
  assert.deepEqual(p.transforms.filter((t) => t.type >= T.ADDKE1).map((t) => [t.type, t.id]), [
    [6, DhId.ML_KEM_1024], [6, DhId.ML_KEM_768], [6, DhId.NONE], [7, DhId.ML_KEM_768], [12, DhId.ML_KEM_512],
  ]);
  // Printed in type order, as strongSwan does; parsing the printed form gives the same proposal.
  const text = formatProposal(p);
  assert.equal(text, 'aes256gcm16-prfsha384-x25519-ke1_mlkem1024-ke1_mlkem768-ke1_none-ke2_mlkem768-ke7_mlkem512');
  assert.deepEqual(ike(text), p);
  assert.equal(transformName(T.ADDKE3, 99), 'ke3_ke99');
  assert.equal(formatProposal(parseProposal('aes256gcm16-x25519-ke1_mlkem768-esn', 'esp', withAddke)), 'aes256gcm16-x25519-ke1_mlkem768-esn');
});

test('a config that asks for ke1_ gets a ConfigError: multiple key exchanges are not yet negotiated', () => {
  for (const [text, proto] of [['aes256gcm16-prfsha384-x25519-ke1_mlkem768', 'ike'], ['aes256gcm16-x25519-ke2_none', 'esp']] as const) {
    assert.throws(() => parseProposals([text], proto, { path: 'spec.ike.proposals' }), (e: unknown) =>
      e instanceof ConfigError && e.path === 'spec.ike.proposals[0]' && e.message.includes(ADDITIONAL_KE_NOT_NEGOTIATED) && e.message.includes('not yet negotiated'));
  }
});

test('ML-KEM as the Transform Type 4 method is refused, pointing at keN_ (IKE_SA_INIT cannot be fragmented)', () => {
  assert.throws(() => parseProposal('aes256gcm16-prfsha384-mlkem768', 'ike', withAddke), /"mlkem768" is supported only as an additional key exchange \(e\.g\. x25519-ke1_mlkem768\)/);
});

test('additional key exchanges need a Transform Type 4 method to follow (ESP without PFS has none)', () => {
  assert.throws(() => parseProposal('aes256gcm16-ke1_mlkem768', 'esp', withAddke), /no key exchange method for them to follow/);
  parseProposal('aes256gcm16-ke1_none', 'esp', withAddke);
});

test('RFC 7296 §1.2 / RFC 9370: Child SA proposals in IKE_AUTH carry neither KE nor ADDKE transforms', () => {
  const esp = parseProposal('aes256gcm16-x25519-ke1_mlkem768', 'esp', withAddke);
  assert.equal(formatProposal(withoutKeyExchange([esp])[0]!), 'aes256gcm16');
});

test('RFC 9370 §2.2.1: the peer offers ADDKE1 {ML-KEM-768, NONE}; a responder without ADDKE picks NONE and echoes it', () => {
  const s = selectProposal(parseProposals(['aes256gcm16-prfsha384-x25519'], 'ike'), offered(['aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none']));
  assert.ok(s.ok);
  assert.equal(s.proposal.additionalKeyExchanges, undefined);
  assert.deepEqual(s.proposal.transforms.filter((t) => t.type === T.ADDKE1), [{ type: T.ADDKE1, id: DhId.NONE }]);
});

test('the peer requires ADDKE1 (no NONE): NO_PROPOSAL_CHOSEN says multiple key exchanges are not yet negotiated', () => {
  const s = selectProposal(parseProposals(['aes256gcm16-prfsha384-x25519'], 'ike'), offered(['aes256gcm16-prfsha384-x25519-ke1_mlkem768']));
  assert.ok(!s.ok);
  assert.equal(s.reason, 'ADDITIONAL_KE_NOT_NEGOTIATED');
  assert.match(s.message, /the peer's proposal #1 requires ke1_mlkem768: multiple key exchanges .* are not yet negotiated by kipsec/);
  // An unrelated mismatch is not blamed on ADDKE.
  const other = selectProposal(parseProposals(['aes128gcm16-prfsha256-ecp256'], 'ike'), offered(['aes256gcm16-prfsha384-x25519-ke1_mlkem768']));
  assert.ok(!other.ok);
  assert.equal(other.reason, undefined);
});

test('both sides list ML-KEM: refused while not negotiated, unless a proposal lets ADDKE be NONE', () => {
  const ours = [ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768')];
  const s = selectProposal(ours, offered(['aes256gcm16-prfsha384-x25519-ke1_mlkem768']));
  assert.ok(!s.ok);
  assert.equal(s.reason, 'ADDITIONAL_KE_NOT_NEGOTIATED');
  assert.match(s.message, /proposal #1 would need ke1_mlkem768/);
  // A second offer without ADDKE is then taken instead.
  const fallback = selectProposal([...ours, ...parseProposals(['aes256gcm16-prfsha384-x25519'], 'ike')], offered(['aes256gcm16-prfsha384-x25519-ke1_mlkem768', 'aes256gcm16-prfsha384-x25519']));
  assert.ok(fallback.ok);
  assert.equal(fallback.proposal.num, 2);
});

test('RFC 9370 §2.2.1: each ADDKE type is negotiated on its own (with the gate open, for the exchange code to come)', () => {
  const ours = [ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_mlkem1024-ke2_mlkem512-ke2_none')];
  const theirs = offered(['aes256gcm16-prfsha384-x25519-ke1_mlkem1024-ke1_mlkem768-ke2_mlkem1024-ke2_none-ke3_mlkem512-ke3_none']);
  const s = selectProposal(ours, theirs, withAddke);
  assert.ok(s.ok);
  // ADDKE1: our first choice the peer also offered; ADDKE2: NONE is the only common ID; ADDKE3: we list nothing, so NONE.
  assert.deepEqual(s.proposal.additionalKeyExchanges, [{ type: T.ADDKE1, id: DhId.ML_KEM_768 }]);
  assert.deepEqual(s.proposal.transforms.filter((t) => t.type >= T.ADDKE1).map((t) => [t.type, t.id]), [[6, DhId.ML_KEM_768], [7, DhId.NONE], [8, DhId.NONE]]);
  // The initiator's order wins with preferConfigured = false.
  const theirsFirst = selectProposal(ours, theirs, { ...withAddke, preferConfigured: false });
  assert.ok(theirsFirst.ok);
  assert.deepEqual(theirsFirst.proposal.additionalKeyExchanges, [{ type: T.ADDKE1, id: DhId.ML_KEM_1024 }]);
});

test('initiator: an offered ADDKE type must come back as exactly one of the offered IDs', () => {
  const sent = [ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none')];
  const none = checkProposalReply(sent, reply(1, 'aes256gcm16-prfsha384-x25519-ke1_none'));
  assert.ok(none.ok);
  assert.equal(none.proposal.additionalKeyExchanges, undefined);
  const missing = checkProposalReply(sent, reply(1, 'aes256gcm16-prfsha384-x25519'));
  assert.deepEqual(missing, { ok: false, message: 'responder left out Additional Key Exchange 1 (transform type 6), which we offered' });
  const two = checkProposalReply(sent, reply(1, 'aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none'));
  assert.deepEqual(two, { ok: false, message: 'responder returned several transforms of type 6' });
  const foreign = checkProposalReply(sent, reply(1, 'aes256gcm16-prfsha384-x25519-ke1_mlkem1024'));
  assert.ok(!foreign.ok);
  assert.match(foreign.message, /is not in our proposal/);
  const unoffered = checkProposalReply(sent, reply(1, 'aes256gcm16-prfsha384-x25519-ke1_none-ke2_none'));
  assert.deepEqual(unoffered, { ok: false, message: 'responder returned Additional Key Exchange 2 (transform type 7), which we did not offer' });
});

test('initiator: a reply choosing ML-KEM is refused while not negotiated, accepted with the gate open', () => {
  const sent = [ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none')];
  const chosen = reply(1, 'aes256gcm16-prfsha384-x25519-ke1_mlkem768');
  const refused = checkProposalReply(sent, chosen);
  assert.ok(!refused.ok);
  assert.match(refused.message, /responder chose ke1_mlkem768: multiple key exchanges .* not yet negotiated/);
  const accepted = checkProposalReply(sent, chosen, withAddke);
  assert.ok(accepted.ok);
  assert.deepEqual(accepted.proposal.additionalKeyExchanges, [{ type: T.ADDKE1, id: DhId.ML_KEM_768 }]);
});

test('property, RFC 9370 §2.2.1: whatever both sides list per ADDKE type, the reply holds exactly one common ID per listed type and passes the initiator\'s check', () => {
  const ids = [DhId.ML_KEM_512, DhId.ML_KEM_768, DhId.ML_KEM_1024, DhId.NONE];
  const side = fc.array(fc.subarray(ids), { minLength: 7, maxLength: 7 });
  const build = (lists: number[][]): PolicyProposal => ({
    protocol: 'ike',
    transforms: [...ike('aes256gcm16-prfsha384-x25519').transforms, ...lists.flatMap((l, i) => l.map((id) => ({ type: T.ADDKE1 + i, id })))],
  });
  fc.assert(fc.property(side, side, (oursLists, theirsLists) => {
    const sent = build(theirsLists);
    const s = selectProposal([build(oursLists)], toSaProposals([sent]).map(fromSaProposal), withAddke);
    // Missing lists mean NONE only; a type matches when the two lists share an ID.
    const effective = (l: number[]): number[] => (l.length === 0 ? [DhId.NONE] : l);
    const matchable = oursLists.every((l, i) => effective(l).some((id) => effective(theirsLists[i]!).includes(id)));
    assert.equal(s.ok, matchable);
    if (!s.ok) return;
    theirsLists.forEach((l, i) => {
      const got = s.proposal.transforms.filter((t) => t.type === T.ADDKE1 + i);
      if (l.length === 0) assert.equal(got.length, 0);
      else { assert.equal(got.length, 1); const id: number = got[0]!.id; assert.ok((l as readonly number[]).includes(id) && effective(oursLists[i]!).includes(id)); }
    });
    const back = checkProposalReply([sent], [{ ...fromSaProposal(toSaProposals([{ protocol: 'ike', transforms: s.proposal.transforms }])[0]!), num: 1 }], withAddke);
    assert.ok(back.ok, back.ok ? '' : back.message);
  }), { numRuns: 300 });
});

test('proposals without ADDKE select exactly as before (no additionalKeyExchanges field)', () => {
  const s = selectProposal(parseProposals(['aes256gcm16-prfsha384-x25519'], 'ike'), offered(['aes256gcm16-prfsha384-x25519']));
  assert.ok(s.ok);
  assert.equal('additionalKeyExchanges' in s.proposal, false);
  assert.deepEqual(s.proposal.transforms.map((t) => t.type), [T.ENCR, T.PRF, T.DH]);
});
