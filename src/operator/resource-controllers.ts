// Reconcilers of kipsec's own resources and of the CA. Each reads from the caches, computes status
// with a pure function (status.ts) and writes with server-side apply only when it changed.
import { CONDITION_TYPES as C, REASONS, findCondition, isTrue } from '../api/conditions.js';
import { RESOURCES, resourcePath } from '../api/kube/client.js';
import { isNotFound } from '../api/kube/errors.js';
import { API_VERSION, FINALIZERS, KINDS, OPERATOR_FIELD_MANAGER } from '../api/names.js';
import type { IPsecMesh, IPsecTunnel, IPsecTunnelStatus, TunnelGatewayStatus } from '../api/types.js';
import { nodeCaViews, rotationStatus, type NodeCaView } from './ca-rotation.js';
import { activeMesh, nodeLeaseOf, type Ctx } from './context.js';
import { WORST_PAIRS_MAX, evaluatePairs, nextStaleCheckMs, type PairEvaluation, type PairState as MeshPairState } from './mesh-pairs.js';
import { memorySinceFn, pairEvents, seedPairMemory, trackPairs } from './mesh-pair-memory.js';
import { computeIdentityCondition, computeMeshStatus, computeTunnelStatus, gatewayReports, metaTime, resolveActive, sameDesired, sameMeshStatus, sameTunnelStatus } from './status.js';

const RESYNC_MS = 5 * 60_000;
const TEARDOWN_GRACE_MS = 60_000;
/** How long an unknown fingerprint waits for a certificate being issued to that node. */
const PENDING_RECHECK_MS = 2_000;

/**
 * Status applies carry the resourceVersion the status was computed from: a precondition even for
 * server-side apply (a 409 when the object changed since; the apiserver checks it and does not
 * record it as a managed field). Without it a forced apply computed from a stale cache, or sent by
 * a deposed leader after a pause, silently overwrites a newer status. The 409 is retried by the
 * queue (controller.ts) once the cache has the new version.
 */
const rv = (resourceVersion: string | undefined): { resourceVersion?: string } => (resourceVersion ? { resourceVersion } : {});

/** IPsecNode: the operator owns one condition, IdentityVerified, via SSA (the agent owns the rest). */
export async function reconcileIpsecNode(ctx: Ctx, name: string): Promise<number | undefined> {
  const n = ctx.caches.ipsecNodes.get(name);
  if (!n) { ctx.identityWritten.delete(name); return undefined; }
  const now = ctx.clock.now();
  const want = computeIdentityCondition(n, ctx.caches.nodes.get(name) !== undefined, ctx.identities.issued(name), now);
  // Woken again (a CSR event) before our last write's event arrived: compare with that write, not
  // with the older cached version — writing again on it would only meet a 409.
  const mine = ctx.identityWritten.get(name);
  if (mine && mine.basedOn !== (n.metadata.resourceVersion ?? '')) ctx.identityWritten.delete(name);
  const have = mine && mine.basedOn === (n.metadata.resourceVersion ?? '') ? mine.condition : findCondition(n.status?.conditions, C.IdentityVerified);
  if (sameDesired(have, want)) return want.status === 'True' ? RESYNC_MS : undefined;
  // Nothing published yet and nothing said yet: no write (saves one write per joining node).
  if (!have && want.reason === REASONS.NoCertificate) return undefined;
  // A fingerprint we do not know while a certificate for the node is being issued: most likely that
  // one, published by an agent that saw it before we did (the CSR event, or our own write's answer,
  // is still on its way). Writing False now would cost a second write to set True a moment later;
  // the CSR's update brings this node back, and the requeue bounds the wait.
  if (want.reason === REASONS.UnknownCertificate && have?.status !== 'True' && ctx.identities.pending(name)) return PENDING_RECHECK_MS;
  const cond = { ...want, lastTransitionTime: have && have.status === want.status ? have.lastTransitionTime : metaTime(now) };
  try {
    await ctx.kube.apply(resourcePath(RESOURCES.ipsecNodes, { name, sub: 'status' }),
      { apiVersion: API_VERSION, kind: KINDS.IPsecNode.kind, metadata: { name, ...rv(n.metadata.resourceVersion) }, status: { conditions: [cond] } }, OPERATOR_FIELD_MANAGER);
  } catch (e) {
    if (isNotFound(e)) return undefined; // deleted under us (its Node is gone: node-gc.ts)
    throw e;
  }
  ctx.identityWritten.set(name, { basedOn: n.metadata.resourceVersion ?? '', condition: cond });
  ctx.metrics.statusWrites.inc({ kind: 'IPsecNode' });
  return undefined;
}

function meshRef(m: IPsecMesh) { return { apiVersion: API_VERSION, kind: KINDS.IPsecMesh.kind, name: m.metadata.name, ...(m.metadata.uid ? { uid: m.metadata.uid } : {}) }; }
function tunnelRef(t: IPsecTunnel) { return { apiVersion: API_VERSION, kind: KINDS.IPsecTunnel.kind, name: t.metadata.name, ...(t.metadata.uid ? { uid: t.metadata.uid } : {}) }; }

/**
 * IPsecMesh status from the selected nodes' IPsecNodes: nodes ready, node pairs (mesh-pairs.ts),
 * identity and CA. Written only when it changed and at most once a second (node updates arrive
 * batched through addAfter(1000) too); PairDown/PairUp Events from what went down or came back
 * since the last reconcile (the memory: a byte and a since per pair, seeded from the status after a start).
 * Writes per change: one status apply plus one Event per pair that changed, at most O(nodes).
 */
export async function reconcileMesh(ctx: Ctx, name: string): Promise<number | undefined> {
  const m = ctx.caches.meshes.get(name);
  if (!m) {
    ctx.meshMemory.delete(name);
    for (const state of MESH_PAIR_STATES) ctx.metrics.meshPairs.remove({ mesh: name, state });
    return undefined;
  }
  const now = ctx.clock.now();
  const started = performance.now();
  const sel = m.spec.nodeSelector ?? {};
  const nodes = ctx.caches.ipsecNodes.list().filter((n) => {
    const k = ctx.caches.nodes.get(n.metadata.name);
    return Object.entries(sel).every(([key, v]) => k?.metadata.labels?.[key] === v);
  });
  const mem = ctx.meshMemory.get(name);
  // Our own last write may not be in the cache yet: compare with it until the cache moves on.
  const prev = mem?.written && mem.written.basedOn === m.metadata.resourceVersion ? mem.written.status : m.status;
  const leaseOf = nodeLeaseOf(ctx.caches, ctx.namespace);
  const pairs = evaluatePairs(nodes, now, leaseOf);
  const tr = trackPairs(mem?.pairs ?? seedPairMemory(prev, pairs.nodes.map((n) => n.name), now), pairs, now);
  const ca = ctx.ca.state;
  const r = ca?.rotation;
  // Only while a rotation runs: the view of every node is not free at thousands of nodes.
  const progress = r && r.phase !== 'Idle' ? ctx.ca.progress(caNodes(ctx)) : undefined;
  const caRotation = progress && r?.phase === 'Trusting' ? rotationStatus(progress, r.nextFingerprint, r.startedMs)
    : progress && r?.phase === 'Reissuing' ? rotationStatus(progress, ca!.fingerprint, r.startedMs) : undefined;
  const st = computeMeshStatus({ ...m, ...(prev ? { status: prev } : {}) }, {
    nodes, pairs, caFingerprint: ca?.fingerprint, caRotation, since: memorySinceFn(tr.memory),
  }, now);
  const again = Math.min(RESYNC_MS, nextStaleCheckMs(nodes, now, leaseOf));
  let written = mem?.written; let lastWriteMs = mem?.lastWriteMs;
  if (!sameMeshStatus(prev, st)) {
    // At most one write a second per mesh; nothing is remembered until written, so the next pass
    // finds the same transitions and emits their Events then.
    if (lastWriteMs !== undefined && now - lastWriteMs < 1000) return 1000 - (now - lastWriteMs);
    // While the cache lags behind our own last write, the version to build on is the one that write made.
    const base = mem?.written && mem.written.basedOn === m.metadata.resourceVersion ? mem.written.resourceVersion : m.metadata.resourceVersion;
    const saved = await ctx.kube.apply<IPsecMesh | undefined>(resourcePath(RESOURCES.ipsecMeshes, { name, sub: 'status' }), { apiVersion: API_VERSION, kind: KINDS.IPsecMesh.kind, metadata: { name, ...rv(base) }, status: st }, OPERATOR_FIELD_MANAGER);
    ctx.metrics.statusWrites.inc({ kind: 'IPsecMesh' });
    written = { basedOn: m.metadata.resourceVersion, status: st, ...rv(saved?.metadata.resourceVersion) }; lastWriteMs = now;
    const wasReady = isTrue(prev?.conditions, C.Ready); const isReady = isTrue(st.conditions, C.Ready);
    if (wasReady !== isReady) {
      const c = findCondition(st.conditions, C.Ready)!;
      ctx.events.emit(meshRef(m), isReady ? 'Normal' : 'Warning', c.reason, 'Reconcile', c.message);
    }
  }
  ctx.meshMemory.set(name, { pairs: tr.memory, ...(written ? { written } : {}), ...(lastWriteMs !== undefined ? { lastWriteMs } : {}), costMs: performance.now() - started });
  for (const e of pairEvents(tr, pairs, now, Math.max(WORST_PAIRS_MAX, pairs.nodes.length))) ctx.events.emit(meshRef(m), e.type, e.reason, 'Reconcile', e.note);
  setPairMetrics(ctx, name, pairs);
  return again;
}

const MESH_PAIR_STATES: readonly MeshPairState[] = ['established', 'half', 'connecting', 'failed', 'unknown'];

function setPairMetrics(ctx: Ctx, mesh: string, p: PairEvaluation): void {
  for (const state of MESH_PAIR_STATES) ctx.metrics.meshPairs.set({ mesh, state }, p.counts[state]);
}

export async function reconcileTunnel(ctx: Ctx, name: string): Promise<number | undefined> {
  const t = ctx.caches.tunnels.get(name);
  if (!t) return undefined;
  const path = resourcePath(RESOURCES.ipsecTunnels, { name });
  const fins = t.metadata.finalizers ?? [];
  const gateways = gatewayReports(name, ctx.caches.ipsecNodes.list());
  if (t.metadata.deletionTimestamp) {
    if (!fins.includes(FINALIZERS.tunnel)) return undefined;
    const up = gateways.filter((g) => g.ikeSaState === 'established' || g.childSaState === 'established' || g.childSaState === 'rekeying');
    const waited = ctx.clock.now() - Date.parse(t.metadata.deletionTimestamp);
    if (up.length > 0 && waited < TEARDOWN_GRACE_MS) return 2_000;
    try {
      await ctx.kube.mergePatch(path, { metadata: { resourceVersion: t.metadata.resourceVersion, finalizers: fins.filter((f) => f !== FINALIZERS.tunnel) } });
    } catch (e) { if (isNotFound(e)) return undefined; throw e; } // a 409 is retried by the queue (controller.ts)
    if (up.length > 0) ctx.events.emit(tunnelRef(t), 'Warning', 'TeardownTimeout', 'Finalize', `gateways ${up.map((g) => g.node).join(', ')} did not report teardown within ${TEARDOWN_GRACE_MS / 1000}s`);
    return undefined;
  }
  if (!fins.includes(FINALIZERS.tunnel)) {
    try { await ctx.kube.mergePatch(path, { metadata: { resourceVersion: t.metadata.resourceVersion, finalizers: [...fins, FINALIZERS.tunnel] } }); } catch (e) { if (isNotFound(e)) return undefined; throw e; }
    return undefined; // the update event brings the new version
  }
  const st = computeTunnelStatus(t, await withLease(ctx, name, gateways), ctx.clock.now());
  if (sameTunnelStatus(t.status, st)) return RESYNC_MS;
  await ctx.kube.apply(`${path}/status`, { apiVersion: API_VERSION, kind: KINDS.IPsecTunnel.kind, metadata: { name, ...rv(t.metadata.resourceVersion) }, status: st }, OPERATOR_FIELD_MANAGER);
  ctx.metrics.statusWrites.inc({ kind: 'IPsecTunnel' });
  for (const e of tunnelEvents(t.status, st)) ctx.events.emit(tunnelRef(t), e.type, e.reason, 'Reconcile', e.note);
  return RESYNC_MS;
}

/** Two or more gateways claim to be active: read the tunnel's Lease (src/agent/gateway/lease.ts) to know which one is. */
async function withLease(ctx: Ctx, tunnel: string, gateways: TunnelGatewayStatus[]): Promise<TunnelGatewayStatus[]> {
  if (gateways.filter((g) => g.role === 'active').length < 2) return gateways;
  const lease = `kipsec-tunnel-${tunnel}`;
  try {
    const l = await ctx.kube.get<{ spec?: { holderIdentity?: string } }>(resourcePath(RESOURCES.leases, { namespace: ctx.namespace, name: lease }));
    return resolveActive(gateways, { name: lease, holder: l.spec?.holderIdentity });
  } catch (e) { if (isNotFound(e)) return gateways; throw e; }
}

/**
 * Events of a tunnel's status change: Established up or down, a gateway error (the exact cause, the
 * IKE notify first) when it appears or changes, and the active gateway changing hands (a failover).
 */
export function tunnelEvents(before: IPsecTunnelStatus | undefined, after: IPsecTunnelStatus): { type: 'Normal' | 'Warning'; reason: string; note: string }[] {
  const out: { type: 'Normal' | 'Warning'; reason: string; note: string }[] = [];
  const was = isTrue(before?.conditions, C.Established); const now = isTrue(after.conditions, C.Established);
  if (was !== now) {
    const c = findCondition(after.conditions, C.Established)!;
    out.push({ type: now ? 'Normal' : 'Warning', reason: c.reason, note: c.message });
  }
  const d0 = findCondition(before?.conditions, C.Degraded); const d1 = findCondition(after.conditions, C.Degraded);
  if (d1?.status === 'True' && (d0?.status !== 'True' || d0.message !== d1.message)) out.push({ type: 'Warning', reason: d1.reason, note: d1.message });
  const a0 = before?.activeGateway; const a1 = after.activeGateway;
  if (a1 !== undefined && a1 !== a0) out.push({ type: 'Normal', reason: 'ActiveGateway', note: a0 ? `${a1} is the active gateway now (was ${a0})` : `${a1} is the active gateway` });
  return out;
}

/** The nodes a CA rotation waits for: every IPsecNode whose Node exists (the others are being collected). */
function caNodes(ctx: Ctx): NodeCaView[] {
  return nodeCaViews(ctx.caches.ipsecNodes.list().filter((n) => ctx.caches.nodes.get(n.metadata.name) !== undefined));
}

/**
 * The CA: load or create, rotate in phases (ca-rotation.ts) when asked or near expiry, publish the
 * trust bundle. Every node counts, whether or not a mesh selects it: a node holding a certificate
 * must keep trusting its peers' certificates.
 */
export async function reconcileCa(ctx: Ctx): Promise<number | undefined> {
  const secret = ctx.caches.caSecret.list()[0];
  if (!secret) { await ctx.ca.ensure(); return undefined; }
  const transition = await ctx.ca.maintain(secret, caNodes(ctx));
  const st = ctx.ca.state!;
  ctx.metrics.caNotAfter.set(st.signer.cert.notAfter.getTime() / 1000);
  await ctx.ca.publishBundle(ctx.caches.bundle.list()[0]);
  const m = activeMesh(ctx.caches, ctx.meshName);
  if (m && transition !== 'none') {
    const r = st.rotation;
    const ev = {
      'started': ['CARotationStarted', `next CA ${r.phase === 'Trusting' ? r.nextFingerprint : '?'} added to the trust bundle; the current CA signs until every node trusts the next one`],
      'reissuing': ['CARotationReissuing', `every node trusts CA ${st.fingerprint}: it signs from now on, and nodes renew their certificates`],
      'finished': ['CARotationFinished', `every node presents a certificate from CA ${st.fingerprint}: the previous CA left the trust bundle`],
      'request-ignored': ['CARotationInProgress', `a rotation is already in ${r.phase}; the request was consumed`],
    } as const;
    const [reason, message] = ev[transition];
    ctx.events.emit(meshRef(m), 'Normal', reason, 'RotateCA', message);
  }
  // Hourly, to watch the CA's own expiry; IPsecNode changes requeue a running rotation.
  return 3_600_000;
}
