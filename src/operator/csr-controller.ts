// The signer for CertificateSigningRequests with signerName kipsec.io/node-identity: decide
// (csr-policy.ts) and record the decision through /approval, then issue through /status — with
// the builtin CA, or by relaying to a cert-manager CertificateRequest. Every write carries the
// resourceVersion we decided on, so a stale cache or a second operator can never sign twice; a
// write refused for that (409) is retried by the queue on the new version. Before issuing, the
// signer applies the approval policy again: an approval by anyone else does not bypass it.
import { errorMessage } from '../common/errors.js';
import { durationMs } from '../api/fields.js';
import { RESOURCES, resourcePath } from '../api/kube/client.js';
import { isAlreadyExists, isNotFound } from '../api/kube/errors.js';
import { LABELS, SIGNER_NAME } from '../api/names.js';
import { parseCsr, issueNodeCertificate, DEFAULT_NODE_CERT_LIFETIME_MS, type ParsedCsr } from '../pki/index.js';
import { activeMesh, type Ctx } from './context.js';
import { CSR_REASONS, decideCsr, isApproved, isDecided, isFailed, type PolicyContext } from './csr-policy.js';
import type { CertificateRequest, Csr, CsrCondition } from './kinds.js';
import { metaTime } from './status.js';

export function certLifetimeMs(ctx: Ctx): number {
  const l = activeMesh(ctx.caches, ctx.meshName)?.spec.identity?.certificateLifetime;
  return l ? durationMs(l) : ctx.defaultCertLifetimeMs;
}

const csrPath = (name: string, sub?: string): string => resourcePath(RESOURCES.csrs, { name, ...(sub ? { sub } : {}) });
const regarding = (c: Csr) => ({ apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', name: c.metadata.name, ...(c.metadata.uid ? { uid: c.metadata.uid } : {}) });

function pem(c: Csr): string { return Buffer.from(c.spec.request, 'base64').toString('utf8'); }

// spec.request is immutable, so a CSR is parsed and its signature checked once (by uid), not on
// every reconcile — at thousands of nodes the ASN.1 parsing dominates the signer's CPU otherwise.
const parsedByUid = new Map<string, Promise<ParsedCsr | Error>>();
export function parsedCsr(c: Csr): Promise<ParsedCsr | Error> {
  const uid = c.metadata.uid ?? `${c.metadata.name}/${c.spec.request.length}`;
  let p = parsedByUid.get(uid);
  if (!p) {
    p = parseCsr(pem(c)).catch((e: unknown) => (e instanceof Error ? e : new Error(errorMessage(e))));
    parsedByUid.set(uid, p);
  }
  return p;
}
export function forgetParsedCsr(c: Csr): void { if (c.metadata.uid) parsedByUid.delete(c.metadata.uid); }

async function setConditions(ctx: Ctx, c: Csr, cond: CsrCondition, sub: 'approval' | 'status'): Promise<Csr> {
  return ctx.kube.mergePatch<Csr>(csrPath(c.metadata.name, sub), {
    metadata: { resourceVersion: c.metadata.resourceVersion },
    status: { conditions: [...(c.status?.conditions ?? []), cond] },
  });
}

/** What the policy (csr-policy.ts) knows of the cluster, from the caches; `name` is the CSR decided. */
function policyContext(ctx: Ctx, name: string, nowMs: number): PolicyContext {
  return {
    agentUsername: ctx.agentUsername, nowMs,
    nodeAddresses: (n) => { const k = ctx.caches.nodes.get(n); return k ? (k.status?.addresses ?? []).map((a) => a.address) : undefined; },
    liveIdentities: (n) => ctx.identities.live(n, name),
  };
}

/** Returns a requeue delay or undefined. */
export async function reconcileCsr(ctx: Ctx, name: string): Promise<number | undefined> {
  const c = ctx.caches.csrs.get(name);
  if (!c || c.spec.signerName !== SIGNER_NAME) return undefined;
  const uid = c.metadata.uid;
  if (isFailed(c) || c.status?.certificate) { forgetParsedCsr(c); if (uid) ctx.csrsIssued.delete(uid); return undefined; }
  // Signed by this process already; the cache shows an older version (the approval's). A certificate
  // is never taken back, so its own event is on the way.
  if (uid && ctx.csrsIssued.has(uid)) return undefined;
  const log = ctx.log.child({ csr: name });
  const now = ctx.clock.now();
  const parsed = await parsedCsr(c);

  if (!isDecided(c)) {
    const d = decideCsr(c, parsed, policyContext(ctx, name, now));
    const cond: CsrCondition = { type: d.verdict === 'approve' ? 'Approved' : 'Denied', status: 'True', reason: d.reason, message: d.message, lastUpdateTime: metaTime(now) };
    if (d.verdict === 'approve' && !(parsed instanceof Error)) ctx.identities.reserve(name, d.node, parsed.publicKeyFingerprint, now);
    try { await setConditions(ctx, c, cond, 'approval'); } catch (e) {
      ctx.identities.forget(name);
      if (isNotFound(e)) return undefined;
      throw e; // a 409 (changed under us) is retried by the queue and decided again on the new version
    }
    ctx.metrics.csrDecisions.inc({ decision: d.verdict, reason: d.reason });
    if (d.verdict === 'deny') {
      log.info({ reason: d.reason, message: d.message, requester: c.spec.username }, 'denied node identity request');
      ctx.events.emit(regarding(c), 'Warning', d.reason, 'Deny', d.message);
      return undefined;
    }
    if (d.supersedes.length > 0) {
      // A node back with a new key (reboot with a wiped state directory): worth an on-call's eye.
      log.info({ node: d.node, supersedes: d.supersedes.map((l) => l.csrName) }, 'approved a new key for a node that had a live identity');
      ctx.events.emit(regarding(c), 'Normal', CSR_REASONS.superseded, 'Approve', d.message);
    } else {
      log.debug({ node: d.node }, 'approved node identity request');
    }
    // The approval's watch event brings us back to sign, ahead of the CSRs still waiting for a
    // decision (operator.ts: addFront). Not at once on the version the approval returned: the
    // apiserver's watch cache would not have it yet, and its patch path then reads the object
    // from etcd and runs the patch again — at 5,000 nodes ~15 more apiserver CPU-seconds.
    return undefined;
  }
  if (!isApproved(c)) { forgetParsedCsr(c); return undefined; }
  // Approval is not ours alone: anyone allowed to approve for this signer (a cluster admin running
  // `kubectl certificate approve`, another controller) can approve a request we would deny. So the
  // signer checks again, with the same policy, right before it issues (or relays) anything.
  const recheck = decideCsr(c, parsed, policyContext(ctx, name, now));
  if (recheck.verdict === 'deny' || parsed instanceof Error) {
    const by = c.status?.conditions?.find((x) => x.type === 'Approved' && x.status === 'True')?.reason;
    const why = recheck.verdict === 'deny' ? recheck : { reason: CSR_REASONS.invalid, message: 'the request does not parse' };
    await failCsr(ctx, c, why.reason, `approved${by ? ` (${by})` : ''}, but the signer does not issue it: ${why.message}`);
    ctx.metrics.csrDecisions.inc({ decision: 'refuse-to-sign', reason: why.reason });
    log.info({ reason: why.reason, requester: c.spec.username, approvedBy: by }, 'refused to sign an approved node identity request');
    return undefined;
  }
  const mesh = activeMesh(ctx.caches, ctx.meshName);
  const lifetime = Math.min(certLifetimeMs(ctx), c.spec.expirationSeconds ? c.spec.expirationSeconds * 1000 : Infinity);
  if (mesh?.spec.identity?.source === 'cert-manager') return relayToCertManager(ctx, c, lifetime);

  const ca = ctx.ca.state;
  if (!ca) return 1000; // CA not loaded yet (leadership just started)
  const cert = issueNodeCertificate(ca.signer, parsed, { nowMs: now, lifetimeMs: lifetime, dnsNames: parsed.dnsNames, ipAddresses: parsed.ipAddresses });
  try {
    await ctx.kube.mergePatch(csrPath(name, 'status'), { metadata: { resourceVersion: c.metadata.resourceVersion }, status: { certificate: Buffer.from(cert.pem).toString('base64') } });
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e; // a 409: retried by the queue, on the new version (which may carry a certificate already)
  }
  if (uid) ctx.csrsIssued.add(uid);
  ctx.identities.issuedNow(name, cert.pem);
  ctx.metrics.certificatesIssued.inc({ mode: 'builtin' });
  log.debug({ node: parsed.dnsNames[0], notAfter: new Date(cert.notAfterMs).toISOString() }, 'issued node certificate');
  return undefined;
}

async function failCsr(ctx: Ctx, c: Csr, reason: string, message: string): Promise<void> {
  try {
    await setConditions(ctx, c, { type: 'Failed', status: 'True', reason, message, lastUpdateTime: metaTime(ctx.clock.now()) }, 'status');
  } catch (e) {
    if (isNotFound(e)) return;
    throw e; // a 409: retried by the queue, which looks at the new version again
  }
  ctx.events.emit(regarding(c), 'Warning', reason, 'Sign', message);
}

/** Name of the CertificateRequest relaying a CSR. */
export function certificateRequestName(csrName: string): string { return `kipsec-${csrName}`.slice(0, 253); }

function crNamespace(ctx: Ctx): string { return activeMesh(ctx.caches, ctx.meshName)?.spec.identity?.issuerNamespace ?? ctx.namespace; }

async function relayToCertManager(ctx: Ctx, c: Csr, lifetimeMs: number): Promise<number | undefined> {
  const mesh = activeMesh(ctx.caches, ctx.meshName)!;
  const ref = mesh.spec.identity!.issuerRef!;
  const ns = crNamespace(ctx);
  const crName = certificateRequestName(c.metadata.name);
  const cr = ctx.caches.certificateRequests?.get(`${ns}/${crName}`);
  if (!cr) {
    const body: CertificateRequest = {
      apiVersion: 'cert-manager.io/v1', kind: 'CertificateRequest',
      metadata: { name: crName, namespace: ns, labels: { [LABELS.managedBy]: 'kipsec-operator', [LABELS.node]: (await parseCsr(pem(c))).dnsNames[0]! }, annotations: { 'kipsec.io/csr': c.metadata.name } },
      spec: { request: c.spec.request, issuerRef: { name: ref.name, kind: ref.kind ?? 'Issuer', group: ref.group ?? 'cert-manager.io' }, usages: ['digital signature', 'server auth', 'client auth'], duration: `${Math.round(lifetimeMs / 1000)}s`, isCA: false },
    };
    try { await ctx.kube.create(resourcePath(RESOURCES.certificateRequests, { namespace: ns }), body); } catch (e) { if (!isAlreadyExists(e)) throw e; }
    ctx.log.info({ csr: c.metadata.name, certificateRequest: `${ns}/${crName}`, issuer: ref.name }, 'relayed node identity request to cert-manager');
    return undefined; // the CertificateRequest informer brings us back
  }
  const ready = cr.status?.conditions?.find((x) => x.type === 'Ready');
  const denied = cr.status?.conditions?.find((x) => x.type === 'Denied' && x.status === 'True');
  if (denied || (ready?.status === 'False' && (ready.reason === 'Failed' || ready.reason === 'Denied'))) {
    await failCsr(ctx, c, denied ? 'CertManagerDenied' : 'CertManagerFailed', `cert-manager ${denied ? 'denied' : 'failed'} ${ns}/${crName}: ${(denied ?? ready)?.message ?? ''}`);
    return undefined;
  }
  if (ready?.status === 'True' && cr.status?.certificate) {
    try {
      await ctx.kube.mergePatch(csrPath(c.metadata.name, 'status'), { metadata: { resourceVersion: c.metadata.resourceVersion }, status: { certificate: cr.status.certificate } });
    } catch (e) { if (isNotFound(e)) return undefined; throw e; } // a 409 is retried by the queue
    ctx.metrics.certificatesIssued.inc({ mode: 'cert-manager' });
    return undefined;
  }
  return undefined;
}

/** CSR key a CertificateRequest event should wake. */
export function csrForCertificateRequest(cr: CertificateRequest): string | undefined { return cr.metadata.annotations?.['kipsec.io/csr']; }

export { DEFAULT_NODE_CERT_LIFETIME_MS };
