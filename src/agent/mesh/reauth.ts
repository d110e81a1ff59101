// After the node's certificate changes (renewal at two thirds of its life, `kipsec renew`, or a CA
// rotation), every IKE SA it holds was authenticated with the previous certificate. Each is
// re-authenticated make-before-break (RFC 7296 §2.8.3): a new IKE SA presenting the new
// certificate and new Child SAs come up while the old ones carry traffic, then the old IKE SA is
// deleted. One peer at a time, spaced, so a node with many peers does not start all its handshakes
// at once. A pair the engine refuses (not established right now, or another IKE SA being
// negotiated) is skipped.
//
// Both ends of a pair renew within seconds in a CA rotation. Their re-authentications of the pair
// would cross, which the engine settles (src/ike/sa/reauth.ts settleReauthCollision: one new IKE
// SA stays), but each pair then does two handshakes where one is enough. So of each pair the node
// whose name sorts first goes at once; the other waits until the first has had its turn, and then
// skips the pair if its IKE SA came up after our certificate changed (the peer's
// re-authentication presented our new certificate already).
import { errorMessage } from '../../common/errors.js';
import type { Clock } from '../../common/time.js';
import type { Agent } from '../daemon.js';
import type { Logger } from '../log.js';
import type { TunnelStatus } from '../status.js';

export interface ReauthResult { readonly started: readonly string[]; readonly skipped: readonly { readonly peer: string; readonly why: string }[] }

export interface ReauthOptions {
  readonly clock: Clock;
  readonly log: Logger;
  readonly spacingMs: number;
  readonly stopped: () => boolean;
  /** Our node name: decides which end of each pair goes first. */
  readonly self: string;
  /** When the new credentials reached the engine: an IKE SA up after this presents them. */
  readonly sinceMs: number;
  /** How long the second end waits beyond the first end's pacing; default 10 s. */
  readonly marginMs?: number;
}

export async function reauthenticateAll(agent: Pick<Agent, 'peerStatuses' | 'rekey'>, o: ReauthOptions): Promise<ReauthResult> {
  const started: string[] = []; const skipped: { peer: string; why: string }[] = [];
  const sleep = (ms: number): Promise<void> => new Promise<void>((r) => o.clock.setTimer(ms, r));
  const peers = (await agent.peerStatuses()).filter((p) => p.node !== undefined);
  const start = (p: TunnelStatus): void => {
    if (p.ikeState !== 'established') { skipped.push({ peer: p.name, why: `IKE SA ${p.ikeState}` }); return; }
    try {
      agent.rekey(p.name, { ike: false, child: false, reauth: true });
      started.push(p.name);
    } catch (e) {
      skipped.push({ peer: p.name, why: errorMessage(e) });
    }
  };
  const first = peers.filter((p) => o.self < p.node!);
  const second = new Set(peers.filter((p) => o.self >= p.node!).map((p) => p.name));
  for (const p of first) {
    if (o.stopped()) break;
    start(p);
    await sleep(o.spacingMs);
  }
  if (second.size > 0 && !o.stopped()) {
    // The peer paces its own re-authentications the same way: give it all of its turns.
    await sleep(peers.length * o.spacingMs + (o.marginMs ?? 10_000));
    for (const p of (await agent.peerStatuses()).filter((x) => second.has(x.name))) {
      if (o.stopped()) break;
      const up = p.establishedAt ? Date.parse(p.establishedAt) : NaN;
      if (p.ikeState === 'established' && up > o.sinceMs) { skipped.push({ peer: p.name, why: 'the peer re-authenticated it after our certificate changed' }); continue; }
      start(p);
      await sleep(o.spacingMs);
    }
  }
  o.log.info({ started: started.length, skipped }, 'IKE SAs re-authenticated with the new certificate');
  return { started, skipped };
}
