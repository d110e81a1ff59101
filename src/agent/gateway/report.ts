// A gateway node's report of one tunnel, as it goes into its IPsecNode status.tunnels
// ({name, ...IPsecTunnel status.gateways entry}); the operator merges the reports of every gateway
// into IPsecTunnel.status (src/operator/status.ts gatewayReports). Built from the engine's status
// of the peer (src/agent/status.ts) and from what this node decided (active or standby, or why it
// cannot run the tunnel).
import type { TunnelGatewayStatus } from '../../api/types.js';
import type { SaStateName, TunnelStatus } from '../status.js';

export type GatewayRole = 'active' | 'standby';

export interface GatewayFacts {
  readonly name: string;
  readonly node: string;
  readonly role: GatewayRole;
  /** The engine's view of the peer (active gateways only). */
  readonly peer: TunnelStatus | undefined;
  /** Why this node cannot run the tunnel (bad spec, unreadable Secret, Lease errors). */
  readonly problem: { readonly message: string; readonly timeMs: number } | undefined;
  /** The last error the engine reported for this tunnel while active, kept across a restart of the peer. */
  readonly lastError: TunnelStatus['lastError'];
  /** The remote address the active gateway uses (spec.remote.address or a standby address). */
  readonly remoteAddress?: string | undefined;
}

export type GatewayReport = Record<string, unknown> & TunnelGatewayStatus & { readonly name: string };

function childState(p: TunnelStatus): SaStateName {
  const c = p.children[0];
  if (!c) return p.ikeState === 'failed' ? 'failed' : 'none';
  return c.state === 'rekeying' ? 'rekeying' : 'established';
}

export function gatewayReport(f: GatewayFacts): GatewayReport {
  const out: GatewayReport = { name: f.name, node: f.node, role: f.role };
  const p = f.role === 'active' ? f.peer : undefined;
  out.ikeSaState = p ? p.ikeState : 'none';
  out.childSaState = p ? childState(p) : 'none';
  if (f.role === 'active' && f.remoteAddress !== undefined) out.remoteAddress = f.remoteAddress;
  const c = p?.children[0];
  if (c) {
    out.negotiatedSuite = p?.ikeSuite ? `IKE:${p.ikeSuite} ESP:${c.suite}` : c.suite;
    out.inboundSpi = c.spiIn; out.outboundSpi = c.spiOut;
    out.bytesIn = c.bytesIn; out.bytesOut = c.bytesOut; out.packetsIn = c.packetsIn; out.packetsOut = c.packetsOut;
  }
  if (p?.lastRekeyAt) out.lastRekeyTime = p.lastRekeyAt.replace(/\.\d{3}Z$/, 'Z');
  if (f.problem) out.lastError = { message: f.problem.message.slice(0, 4096), time: new Date(f.problem.timeMs).toISOString().replace(/\.\d{3}Z$/, 'Z') };
  else {
    const e = p?.lastError ?? (f.role === 'active' ? f.lastError : undefined);
    // An error older than the Child SA that now carries traffic is history, not the state.
    if (e && !(c && p?.establishedAt && Date.parse(e.time) < Date.parse(p.establishedAt))) {
      out.lastError = {
        message: e.message.slice(0, 4096), time: e.time.replace(/\.\d{3}Z$/, 'Z'),
        ...(e.notify ? { notify: e.notify } : {}),
        ...(e.localProposals ? { localProposals: e.localProposals.slice(0, 16) } : {}),
        ...(e.remoteProposals ? { remoteProposals: e.remoteProposals.slice(0, 16) } : {}),
      };
    }
  }
  return out;
}
