// CA rotation in phases (DESIGN.md §4), judged from what the agents publish in their IPsecNode
// spec.identity: `trustedCAs` (the CAs their IKE engine has been given) and `issuerFingerprint`
// (the CA that signed the certificate they present). A node presenting a new-CA certificate to a
// peer that does not trust the new CA yet would fail authentication, and dropping a CA that a node
// still presents would do the same; so each phase waits for every node, however late:
//   Idle      — one CA signs and is trusted.
//   Trusting  — the bundle holds old + new; the old CA still signs; done when every node trusts new.
//   Reissuing — the new CA signs, the old stays trusted; agents renew (they see the signer change
//               on the bundle ConfigMap); done when every node presents a new-CA certificate.
// Then the old CA leaves the bundle. A node whose agent does not report (down, or too old to
// publish these fields) holds the phase; the status names it. Pure functions only.
import type { CaRotationStatus, IPsecNode } from '../api/types.js';

export type RotationPhase = 'Idle' | 'Trusting' | 'Reissuing';

export interface NodeCaView {
  readonly name: string;
  /** undefined: the agent does not publish it (older agent, or not running yet). */
  readonly trusted: readonly string[] | undefined;
  readonly issuer: string | undefined;
}

export function nodeCaViews(nodes: readonly IPsecNode[]): NodeCaView[] {
  return nodes.map((n) => ({ name: n.metadata.name, trusted: n.spec.identity?.trustedCAs, issuer: n.spec.identity?.issuerFingerprint }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface RotationProgress {
  readonly phase: 'Trusting' | 'Reissuing';
  readonly done: readonly string[];
  /** Each node the phase waits for, with why. */
  readonly waiting: ReadonlyArray<{ readonly name: string; readonly why: string }>;
  readonly complete: boolean;
}

/**
 * Trusting: a node is done when it trusts `newCa`. Reissuing: when the CA that issued its
 * certificate is `newCa`. With no node at all, a phase is complete (nobody can be cut off).
 */
export function rotationProgress(phase: 'Trusting' | 'Reissuing', newCa: string, nodes: readonly NodeCaView[]): RotationProgress {
  const done: string[] = [];
  const waiting: Array<{ name: string; why: string }> = [];
  for (const n of nodes) {
    if (phase === 'Trusting') {
      if (n.trusted?.includes(newCa)) done.push(n.name);
      else waiting.push({ name: n.name, why: n.trusted === undefined ? 'reports no trusted CAs (agent not running, or older than this operator)' : 'does not trust the new CA yet' });
    } else if (n.issuer === newCa) done.push(n.name);
    else waiting.push({ name: n.name, why: n.issuer === undefined ? 'reports no certificate issuer (agent not running, or older than this operator)' : 'still presents a certificate from the old CA' });
  }
  return { phase, done, waiting, complete: waiting.length === 0 };
}

/** What the IPsecMesh status shows of a rotation. */
export function rotationStatus(p: RotationProgress, newCa: string, startedMs: number | undefined): CaRotationStatus {
  const total = p.done.length + p.waiting.length;
  const what = p.phase === 'Trusting' ? 'trust the new CA' : 'present a certificate from the new CA';
  const first = p.waiting[0];
  const message = `${p.phase}: ${p.done.length}/${total} nodes ${what}` + (first ? `; waiting for ${p.waiting.slice(0, 5).map((w) => w.name).join(', ')}${p.waiting.length > 5 ? ` and ${p.waiting.length - 5} more` : ''} (${first.name} ${first.why})` : '');
  return {
    phase: p.phase, newCaFingerprint: newCa,
    ...(startedMs !== undefined ? { startedAt: new Date(startedMs).toISOString().replace(/\.\d{3}Z$/, 'Z') } : {}),
    nodesDone: p.done.length, nodesTotal: total,
    ...(p.waiting.length > 0 ? { waitingFor: p.waiting.slice(0, 10).map((w) => w.name) } : {}),
    message: message.length > 1024 ? `${message.slice(0, 1023)}…` : message,
  };
}
