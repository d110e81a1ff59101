// The engine's status view of its SAs: IKE SA and Child SA records as `kipsec status` and the
// agents' reports show them (types.ts), from the engine's own state.
import type { AdoptedChildSa, ChildSaStatus, IkeSaStatus, PeerStatus } from '../types.js';
import { identityText } from './identity.js';
import { ikeSpisText, upOf, type ChildSa, type IkeSa } from './ike-sa.js';
import { keysOf } from './ike-keys.js';
import { formatTs } from './ts.js';

const STATE_NAME = { idle: 'connecting', 'init-sent': 'connecting', 'auth-sent': 'connecting', 'init-done': 'connecting', keying: 'connecting', established: 'established', rekeyed: 'rekeying', deleting: 'deleting', dead: 'down' } as const;

function childStatus(c: ChildSa): ChildSaStatus {
  const state = c.state.tag === 'installed' ? 'installed' : c.state.tag === 'rekeying' ? 'rekeying' : c.state.tag === 'rekeyed' ? 'rekeying' : 'deleting';
  return { name: c.ref.child, state, ref: c.ref, mode: c.mode, suite: c.suiteText, localTs: c.localTs.map(formatTs), remoteTs: c.remoteTs.map(formatTs), encap: c.encap !== null, installedAtMs: c.installedAtMs, rekeyAtMs: c.rekeyAtMs, expiresAtMs: c.expiresAtMs, adopted: false };
}

export function adoptedStatus(a: AdoptedChildSa): ChildSaStatus {
  return { name: a.ref.child, state: 'installed', ref: a.ref, mode: a.mode, suite: a.algorithms.suite, localTs: a.localTs, remoteTs: a.remoteTs, encap: a.encap !== null, installedAtMs: a.installedAtMs, rekeyAtMs: 0, expiresAtMs: 0, adopted: true };
}

export function saStatus(sa: IkeSa): IkeSaStatus {
  const up = upOf(sa);
  return {
    state: STATE_NAME[sa.state.tag], role: sa.role, ikeSpis: ikeSpisText(sa), suite: keysOf(sa)?.suiteText ?? null,
    local: sa.local, remote: sa.remote, localId: identityText(sa.peer.config.local.id), remoteId: up?.remoteId ?? null,
    natDetected: { local: sa.natLocal, remote: sa.natRemote }, establishedAtMs: up?.establishedAtMs ?? null, rekeyAtMs: up?.rekeyAtMs ?? null, resumedAtMs: up?.resumedAtMs ?? null,
    children: [...sa.children.values()].filter((c) => c.state.tag !== 'deleted').map(childStatus),
  };
}

/** A peer's status: its newest established IKE SA, else its newest one not dead; adopted children; last error. */
export function peerStatus(name: string, sas: readonly IkeSa[], adopted: readonly AdoptedChildSa[], lastError: PeerStatus['lastError']): PeerStatus {
  const live = sas.filter((s) => s.state.tag !== 'dead').sort((a, b) => b.serial - a.serial);
  const best = live.find((s) => s.state.tag === 'established') ?? live[0];
  return { name, ike: best ? saStatus(best) : null, adoptedChildren: adopted.map(adoptedStatus), lastError };
}
