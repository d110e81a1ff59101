// Following a CA rotation from the node (src/agent/mesh/ca-follow.ts): which CA issued our
// certificate, and renewing once the operator signs with a CA we trust that did not issue it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ManualClock } from '../../../src/common/time.js';
import { createCa, createCsr, generateKeyPair, issueNodeCertificate, parseCsr } from '../../../src/pki/index.js';
import { pemBlocks } from '../../../src/agent/peers.js';
import { bundleFingerprints, CaFollower, caView } from '../../../src/agent/mesh/ca-follow.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => quiet } as unknown as import('../../../src/agent/log.js').Logger;
const der = (pem: string): Uint8Array => pemBlocks(pem)[0]!;
const fp = (d: Uint8Array): string => createHash('sha256').update(d).digest('hex');

test('caView names the bundle CA whose signature the certificate carries, also when two CAs share a subject; none when no bundle CA signed it', async () => {
  const now = Date.now();
  const oldCa = await createCa(await generateKeyPair(), 'kipsec node CA', now);
  const newCa = await createCa(await generateKeyPair(), 'kipsec node CA', now); // same subject DN on purpose
  const csr = await parseCsr(await createCsr(await generateKeyPair(), 'node-a', ['192.0.2.1']));
  const byOld = der(issueNodeCertificate(oldCa, csr, { nowMs: now, dnsNames: ['node-a'] }).pem);
  const byNew = der(issueNodeCertificate(newCa, csr, { nowMs: now, dnsNames: ['node-a'] }).pem);
  const oldDer = der(oldCa.cert.toString('pem')); const newDer = der(newCa.cert.toString('pem'));
  assert.deepEqual(caView(byOld, [newDer, oldDer]), { trusted: [fp(newDer), fp(oldDer)], issuer: fp(oldDer) });
  assert.deepEqual(caView(byNew, [newDer, oldDer]), { trusted: [fp(newDer), fp(oldDer)], issuer: fp(newDer) });
  assert.equal(caView(byNew, [oldDer]).issuer, undefined);
  assert.deepEqual(bundleFingerprints(`${newCa.cert.toString('pem')}\n${oldCa.cert.toString('pem')}`), [fp(newDer), fp(oldDer)], 'a PEM bundle names the same CAs as caView');
  assert.deepEqual(caView(Uint8Array.of(1, 2, 3), [oldDer]), { trusted: [fp(oldDer)], issuer: undefined }, 'garbage is no certificate, not a crash');
});

function follower(o: { fail?: number } = {}) {
  const clock = new ManualClock();
  let renewals = 0; let rechecks = 0; let failLeft = o.fail ?? 0;
  const f = new CaFollower({
    clock, log: quiet, jitterMs: 5_000, retryMs: 30_000, random: () => 0.5,
    renew: async () => { renewals++; if (failLeft-- > 0) throw new Error('signer unreachable'); },
    recheck: () => { rechecks++; },
  });
  return { clock, f, renewals: () => renewals, rechecks: () => rechecks };
}
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

test('renews once, after the jitter, when the signing CA is trusted and did not issue the certificate; repeated checks do not renew again', async () => {
  const h = follower();
  h.f.check('new', { trusted: ['old', 'new'], issuer: 'old' });
  h.f.check('new', { trusted: ['old', 'new'], issuer: 'old' });
  assert.equal(h.f.state, 'waiting');
  h.clock.advance(2_499); await settle();
  assert.equal(h.renewals(), 0, 'not before the jitter (0.5 × 5 s)');
  h.clock.advance(1); await settle();
  assert.equal(h.renewals(), 1);
  assert.equal(h.f.state, 'idle');
  assert.equal(h.rechecks(), 1, 'looks again after renewing');
  h.f.check('new', { trusted: ['old', 'new'], issuer: 'new' });
  h.clock.advance(60_000); await settle();
  assert.equal(h.renewals(), 1, 'the new certificate is from the signer: nothing more');
});

test('does not renew while the signing CA is not in the bundle it holds (it could not verify its own certificate), nor when the issuer already signs', async () => {
  const h = follower();
  h.f.check('new', { trusted: ['old'], issuer: 'old' });
  h.f.check('old', { trusted: ['old', 'new'], issuer: 'old' });
  h.f.check(undefined, { trusted: ['old'], issuer: 'old' });
  h.f.check('new', undefined);
  h.clock.advance(60_000); await settle();
  assert.equal(h.renewals(), 0);
});

test('a pending renewal is cancelled when the signing CA goes back to the issuer before it starts', async () => {
  const h = follower();
  h.f.check('new', { trusted: ['old', 'new'], issuer: 'old' });
  h.f.check('old', { trusted: ['old', 'new'], issuer: 'old' });
  h.clock.advance(10_000); await settle();
  assert.equal(h.renewals(), 0);
  assert.equal(h.f.state, 'idle');
});

test('a failed renewal is retried after the backoff, not at every check before it', async () => {
  const h = follower({ fail: 1 });
  h.f.check('new', { trusted: ['old', 'new'], issuer: 'old' });
  h.clock.advance(2_500); await settle();
  assert.equal(h.renewals(), 1);
  assert.equal(h.f.state, 'backoff');
  h.f.check('new', { trusted: ['old', 'new'], issuer: 'old' });
  h.clock.advance(10_000); await settle();
  assert.equal(h.renewals(), 1, 'no retry within the backoff');
  h.clock.advance(20_000); await settle();
  assert.equal(h.rechecks(), 1, 'asks to be checked again when the backoff ends');
  h.f.check('new', { trusted: ['old', 'new'], issuer: 'old' });
  h.clock.advance(2_500); await settle();
  assert.equal(h.renewals(), 2);
  assert.equal(h.f.state, 'idle');
});
