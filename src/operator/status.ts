// Status of each resource computed by pure functions of what the caches hold (cert-manager's
// habit), so "write only on change" is a comparison and every reason has a unit test.
import { CONDITION_TYPES as C, REASONS as R, setCondition, isTrue, type Condition, type DesiredCondition } from '../api/conditions.js';
import type { CaRotationStatus, IPsecMesh, IPsecMeshStatus, IPsecNode, IPsecTunnel, IPsecTunnelStatus, TunnelGatewayStatus } from '../api/types.js';
import { evaluatePairs, heardText, isCountedReady, metaTime, pairKey, worstPairs, type LeaseOf, type NodeView, type PairEvaluation, type SinceFn } from './mesh-pairs.js';
import { stableJson } from '../api/stable-json.js';

export { metaTime };

function merge(existing: readonly Condition[] | undefined, wants: readonly DesiredCondition[], nowMs: number): Condition[] {
  let cs = [...(existing ?? [])];
  for (const w of wants) cs = setCondition(cs, w, metaTime(nowMs));
  return cs;
}

export interface MeshInputs {
  readonly nodes: readonly IPsecNode[];
  readonly caFingerprint: string | undefined;
  /** The CA rotation under way (ca-rotation.ts), if any. */
  readonly caRotation?: CaRotationStatus | undefined;
  /** The nodes' heartbeat Leases (mesh-pairs.ts staleness); absent: statuses alone. */
  readonly leaseOf?: LeaseOf;
  /** The pairs of `nodes` (evaluatePairs); computed here when absent. */
  readonly pairs?: PairEvaluation;
  /** When each non-established pair was first seen down (the operator's memory); absent: from the previous status, else now. */
  readonly since?: SinceFn;
}

/**
 * Mesh status. Ready: every node ready (a stale node is not) and every pair established —
 * NoNodes | NodesNotReady | PairsNotEstablished, True with AllPairsEstablished (AllNodesReady for a
 * single node, which has no pairs). Degraded: UnknownCertificate (an unverified node identity) |
 * PairsNotEstablished (a pair is down) | CARotating (False) | AsExpected (False).
 */
export function computeMeshStatus(m: IPsecMesh, inp: MeshInputs, nowMs: number): IPsecMeshStatus {
  const ev = inp.pairs ?? evaluatePairs(inp.nodes, nowMs, inp.leaseOf);
  const total = ev.nodes.length;
  const ready = ev.nodes.filter(isCountedReady).length;
  const unverified = inp.nodes.filter((n) => !isTrue(n.status?.conditions, C.IdentityVerified)).map((n) => n.metadata.name);
  const worst = worstPairs(ev, inp.since ?? sinceFromStatus(m.status, ev, nowMs));
  const down = ev.expected - ev.established;
  const pairsText = `${ev.established}/${ev.expected} pairs established`;
  const worstText = worst[0] ? `; worst: ${worst[0].nodes[0]} <-> ${worst[0].nodes[1]} ${worst[0].state}: ${worst[0].message ?? ''}` : '';
  const gen = m.metadata.generation;
  const g = gen === undefined ? {} : { observedGeneration: gen };
  const readyC: DesiredCondition = total === 0
    ? { type: C.Ready, status: 'False', reason: R.NoNodes, message: 'no IPsecNode has registered yet', ...g }
    : ready < total
      ? { type: C.Ready, status: 'False', reason: R.NodesNotReady, message: clip(`${ready}/${total} nodes ready; not ready: ${notReadyNames(ev.nodes)}; ${pairsText}`), ...g }
      : down > 0
        ? { type: C.Ready, status: 'False', reason: R.PairsNotEstablished, message: clip(`${ready}/${total} nodes ready; ${pairsText}${worstText}`), ...g }
        : { type: C.Ready, status: 'True', reason: ev.expected > 0 ? R.AllPairsEstablished : R.AllNodesReady, message: `${ready}/${total} nodes ready; ${pairsText}`, ...g };
  const degradedC: DesiredCondition = unverified.length > 0
    ? { type: C.Degraded, status: 'True', reason: R.UnknownCertificate, message: clip(`${unverified.length} node(s) without a verified identity: ${listSome(unverified)}${down > 0 ? `; ${down} pair(s) not established` : ''}`), ...g }
    : down > 0
      ? { type: C.Degraded, status: 'True', reason: R.PairsNotEstablished, message: clip(`${down} of ${ev.expected} pairs not established${worstText}`), ...g }
      : inp.caRotation
        ? { type: C.Degraded, status: 'False', reason: R.CARotating, message: clip(`CA rotation: ${inp.caRotation.message ?? inp.caRotation.phase}`), ...g }
        : { type: C.Degraded, status: 'False', reason: R.AsExpected, message: `all node identities verified; ${pairsText}`, ...g };
  const st: IPsecMeshStatus = {
    conditions: merge(m.status?.conditions, [readyC, degradedC], nowMs),
    nodesReady: ready, nodesTotal: total, pairsEstablished: ev.established, pairsExpected: ev.expected,
    rotationInProgress: inp.caRotation !== undefined,
  };
  if (inp.caRotation) st.caRotation = inp.caRotation;
  if (worst.length > 0) st.worstPairs = worst;
  if (gen !== undefined) st.observedGeneration = gen;
  if (inp.caFingerprint !== undefined) st.caFingerprint = inp.caFingerprint;
  return st;
}

/** Without the operator's memory: the since the previous status lists, else now. */
function sinceFromStatus(st: IPsecMeshStatus | undefined, ev: PairEvaluation, nowMs: number): SinceFn {
  const listed = new Map((st?.worstPairs ?? []).filter((p) => p.nodes.length === 2 && p.since !== undefined).map((p) => [pairKey(p.nodes[0]!, p.nodes[1]!), Date.parse(p.since!)]));
  if (listed.size === 0) return () => nowMs;
  return (i, j) => listed.get(pairKey(ev.nodes[i]!.name, ev.nodes[j]!.name)) ?? nowMs;
}

function clip(s: string, n = 32_768): string { return s.length <= n ? s : `${s.slice(0, n - 1)}…`; }
function listSome(xs: readonly string[], n = 5): string { return xs.length <= n ? xs.join(', ') : `${xs.slice(0, n).join(', ')} and ${xs.length - n} more`; }
function notReadyNames(nodes: readonly NodeView[]): string {
  return listSome(nodes.filter((n) => !isCountedReady(n)).map((n) => (n.stale && n.readyReported ? `${n.name} (${heardText(n)})` : n.name)));
}

/** Gateway reports for a tunnel, taken from IPsecNode.status.tunnels entries (one writer per node). */
export function gatewayReports(tunnel: string, nodes: readonly IPsecNode[]): TunnelGatewayStatus[] {
  const out: TunnelGatewayStatus[] = [];
  for (const n of nodes) {
    for (const t of n.status?.tunnels ?? []) {
      if (t['name'] !== tunnel) continue;
      const { name: _name, ...rest } = t;
      out.push({ ...(rest as Omit<TunnelGatewayStatus, 'node'>), node: n.metadata.name });
    }
  }
  return out.sort((a, b) => a.node.localeCompare(b.node));
}

/**
 * Several gateways report themselves active (a hand-over: the previous active gateway's agent died
 * and its last report is still there): the Lease decides. The others are shown as standby with what
 * happened, which is a gateway down, so Degraded says so.
 */
export function resolveActive(gateways: readonly TunnelGatewayStatus[], lease: { readonly name: string; readonly holder: string | undefined }): TunnelGatewayStatus[] {
  if (gateways.filter((g) => g.role === 'active').length < 2 || !lease.holder) return [...gateways];
  return gateways.map((g) => (g.role !== 'active' || g.node === lease.holder ? g : {
    node: g.node, role: 'standby', ikeSaState: 'none', childSaState: 'none',
    lastError: { message: `reports itself active, but the Lease ${lease.name} is held by ${lease.holder}: this gateway's agent stopped reporting (its last report is stale)` },
  }));
}

export function computeTunnelStatus(t: IPsecTunnel, gateways: readonly TunnelGatewayStatus[], nowMs: number): IPsecTunnelStatus {
  const gen = t.metadata.generation;
  const g = gen === undefined ? {} : { observedGeneration: gen };
  const est = gateways.filter((x) => x.childSaState === 'established' || x.childSaState === 'rekeying');
  const active = gateways.filter((x) => x.role !== 'standby');
  const failing = gateways.filter((x) => x.lastError !== undefined || x.ikeSaState === 'failed' || x.childSaState === 'failed');
  const wants: DesiredCondition[] = [];
  if (gateways.length === 0) {
    wants.push({ type: C.Established, status: 'False', reason: R.NoGatewayReports, message: 'no gateway node has reported this tunnel yet', ...g });
    wants.push({ type: C.Ready, status: 'False', reason: R.NoGatewayReports, message: 'no gateway node has reported this tunnel yet', ...g });
  } else {
    wants.push(est.length > 0
      ? { type: C.Established, status: 'True', reason: R.Established, message: `established on ${est.map((x) => x.node).join(', ')}`, ...g }
      : { type: C.Established, status: 'False', reason: R.NotEstablished, message: firstError(failing) ?? 'no gateway has an established Child SA', ...g });
    const activeUp = active.filter((x) => est.includes(x));
    wants.push(active.length > 0 && activeUp.length === active.length
      ? { type: C.Ready, status: 'True', reason: R.Established, message: `${activeUp.length}/${active.length} active gateways established`, ...g }
      : { type: C.Ready, status: 'False', reason: est.length > 0 ? R.PartiallyEstablished : R.NotEstablished, message: `${activeUp.length}/${active.length} active gateways established`, ...g });
  }
  wants.push(failing.length > 0
    ? { type: C.Degraded, status: 'True', reason: R.GatewayError, message: firstError(failing) ?? 'a gateway reports a failure', ...g }
    : { type: C.Degraded, status: 'False', reason: R.AsExpected, message: 'no gateway reports an error', ...g });
  const st: IPsecTunnelStatus = { conditions: merge(t.status?.conditions, wants, nowMs), gatewaysEstablished: est.length, gatewaysTotal: gateways.length, gateways: [...gateways] };
  if (gen !== undefined) st.observedGeneration = gen;
  const activeNames = gateways.filter((x) => x.role === 'active').map((x) => x.node);
  if (activeNames.length > 0) st.activeGateway = activeNames.join(',').slice(0, 253);
  const suite = est[0]?.negotiatedSuite;
  if (suite !== undefined) st.negotiatedSuite = suite;
  const rekeys = gateways.map((x) => x.lastRekeyTime).filter((x): x is string => x !== undefined).sort();
  if (rekeys.length > 0) st.lastRekeyTime = rekeys[rekeys.length - 1]!;
  return st;
}

function firstError(gs: readonly TunnelGatewayStatus[]): string | undefined {
  const e = gs.find((x) => x.lastError);
  if (!e?.lastError) return undefined;
  return `${e.node}: ${e.lastError.notify ? `${e.lastError.notify}: ` : ''}${e.lastError.message}`;
}

export interface IssuedIdentity { readonly certFingerprint: string; readonly notAfterMs: number }

/** The operator's own condition on an IPsecNode: does its published identity match what we issued? */
export function computeIdentityCondition(n: IPsecNode, nodeExists: boolean, issued: readonly IssuedIdentity[], nowMs: number): DesiredCondition {
  const g = n.metadata.generation === undefined ? {} : { observedGeneration: n.metadata.generation };
  if (!nodeExists) return { type: C.IdentityVerified, status: 'False', reason: R.NodeMissing, message: `no Node named ${n.metadata.name}`, ...g };
  const fp = n.spec.identity?.certFingerprint;
  if (!fp) return { type: C.IdentityVerified, status: 'False', reason: R.NoCertificate, message: 'spec.identity.certFingerprint is not set yet', ...g };
  const hit = issued.find((i) => i.certFingerprint === fp);
  if (!hit) return { type: C.IdentityVerified, status: 'False', reason: R.UnknownCertificate, message: `certificate ${fp.slice(0, 16)}… was not issued for node ${n.metadata.name}`, ...g };
  if (hit.notAfterMs <= nowMs) return { type: C.IdentityVerified, status: 'False', reason: R.UnknownCertificate, message: `certificate ${fp.slice(0, 16)}… expired at ${metaTime(hit.notAfterMs)}`, ...g };
  return { type: C.IdentityVerified, status: 'True', reason: R.CertificateMatches, message: `certificate issued for ${n.metadata.name}, valid until ${metaTime(hit.notAfterMs)}`, ...g };
}

/** Equal for "write only on change": same condition apart from lastTransitionTime. */
export function sameDesired(existing: Condition | undefined, want: DesiredCondition): boolean {
  return !!existing && existing.status === want.status && existing.reason === want.reason && existing.message === want.message && (existing.observedGeneration ?? undefined) === (want.observedGeneration ?? undefined);
}

export function sameMeshStatus(a: IPsecMeshStatus | undefined, b: IPsecMeshStatus): boolean { return stableJson(a ?? {}) === stableJson(b); }
export function sameTunnelStatus(a: IPsecTunnelStatus | undefined, b: IPsecTunnelStatus): boolean { return stableJson(a ?? {}) === stableJson(b); }

