// After the node's certificate changes (renewal at two thirds of its life, or `kipsec renew`),
// every IKE SA it holds was authenticated with the previous certificate. Each is re-authenticated
// make-before-break (RFC 7296 §2.8.3): a new IKE SA presenting the new certificate and new Child
// SAs come up while the old ones carry traffic, then the old IKE SA is deleted. One peer at a time,
// spaced, so a node with many peers does not start all its handshakes at once. A pair the engine
// refuses (not established right now, or another IKE SA being negotiated — the peer may be
// re-authenticating it itself, which presents our new certificate as well) is skipped.
import { errorMessage } from '../../common/errors.js';
import type { Clock } from '../../common/time.js';
import type { Agent } from '../daemon.js';
import type { Logger } from '../log.js';

export interface ReauthResult { readonly started: readonly string[]; readonly skipped: readonly { readonly peer: string; readonly why: string }[] }

export async function reauthenticateAll(agent: Pick<Agent, 'peerStatuses' | 'rekey'>, o: { readonly clock: Clock; readonly log: Logger; readonly spacingMs: number; readonly stopped: () => boolean }): Promise<ReauthResult> {
  const started: string[] = []; const skipped: { peer: string; why: string }[] = [];
  const peers = (await agent.peerStatuses()).filter((p) => p.node !== undefined);
  for (const p of peers) {
    if (o.stopped()) break;
    if (p.ikeState !== 'established') { skipped.push({ peer: p.name, why: `IKE SA ${p.ikeState}` }); continue; }
    try {
      agent.rekey(p.name, { ike: false, child: false, reauth: true });
      started.push(p.name);
    } catch (e) {
      skipped.push({ peer: p.name, why: errorMessage(e) });
    }
    await new Promise<void>((r) => o.clock.setTimer(o.spacingMs, r));
  }
  o.log.info({ started: started.length, skipped }, 'IKE SAs re-authenticated with the new certificate');
  return { started, skipped };
}
