// The agent's Prometheus metrics and its HTTP endpoints (/metrics, /healthz, /readyz), on
// --metrics-port (9964 by default: hostNetwork, so one port per node). Per-peer gauges are
// refreshed from the agent's status on every scrape, so they equal what `kipsec status` and the
// kernel say at that moment; the SA counters are the kernel's counters of the current Child SA
// (they restart from zero when it is rekeyed — `kipsec_agent_rekeys_total` counts those).
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { IkeFailure } from '../ike/ports.js';
import type { EventObserver } from './status-book.js';
import { peerIsUp, type IkeCounters, type TunnelStatus } from './status.js';

const STATES = ['none', 'connecting', 'established', 'rekeying', 'deleting', 'failed'] as const;

export class AgentMetrics implements EventObserver {
  readonly registry = new Registry();
  readonly ikeState = new Gauge({ name: 'kipsec_agent_ike_sa_state', help: 'IKE SA state per peer (1 for the current state)', labelNames: ['peer', 'state'], registers: [this.registry] });
  readonly peerUp = new Gauge({ name: 'kipsec_agent_peer_up', help: '1 when the peer\'s IKE SA and all its Child SAs are up', labelNames: ['peer'], registers: [this.registry] });
  readonly childSas = new Gauge({ name: 'kipsec_agent_child_sas', help: 'installed Child SAs per peer and child', labelNames: ['peer', 'child'], registers: [this.registry] });
  readonly saBytes = new Gauge({ name: 'kipsec_agent_child_sa_bytes', help: 'bytes through the current Child SA (kernel counter; restarts at a rekey)', labelNames: ['peer', 'child', 'direction'], registers: [this.registry] });
  readonly saPackets = new Gauge({ name: 'kipsec_agent_child_sa_packets', help: 'packets through the current Child SA (kernel counter; restarts at a rekey)', labelNames: ['peer', 'child', 'direction'], registers: [this.registry] });
  readonly rekeys = new Counter({ name: 'kipsec_agent_rekeys_total', help: 'completed rekeys by peer and kind (ike, child)', labelNames: ['peer', 'kind'], registers: [this.registry] });
  readonly failures = new Counter({ name: 'kipsec_agent_ike_failures_total', help: 'IKE failures by peer and the notify that caused them', labelNames: ['peer', 'notify', 'code'], registers: [this.registry] });
  readonly downs = new Counter({ name: 'kipsec_agent_sa_down_total', help: 'SAs that went down, by peer, kind and reason', labelNames: ['peer', 'kind', 'reason'], registers: [this.registry] });
  readonly handshake = new Histogram({ name: 'kipsec_agent_ike_handshake_seconds', help: 'IKE_SA_INIT to IKE_AUTH done, retransmissions included', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry] });
  readonly peersExpected = new Gauge({ name: 'kipsec_agent_peers_expected', help: 'peer nodes the mesh selects', registers: [this.registry] });
  readonly peersUp = new Gauge({ name: 'kipsec_agent_peers_up', help: 'peer nodes with an established IKE SA and Child SAs', registers: [this.registry] });
  readonly strictBlocks = new Gauge({ name: 'kipsec_agent_strict_block_policies', help: 'strict-mode block policies in the kernel', registers: [this.registry] });
  readonly certNotAfter = new Gauge({ name: 'kipsec_agent_certificate_not_after_seconds', help: 'expiry of the node certificate (unix seconds)', registers: [this.registry] });
  readonly xfrmStat = new Gauge({ name: 'kipsec_agent_xfrm_stat', help: 'kernel XFRM error counters (/proc/net/xfrm_stat)', labelNames: ['counter'], registers: [this.registry] });
  readonly ikeDrops = new Counter({ name: 'kipsec_agent_ike_dropped_total', help: 'IKE datagrams the engine dropped, by reason (bad input, limits: see docs/SECURITY.md)', labelNames: ['reason'], registers: [this.registry] });
  readonly udpInvalid = new Counter({ name: 'kipsec_agent_udp_invalid_total', help: 'datagrams on the IKE ports refused before the engine (not IKE, too large)', registers: [this.registry] });
  readonly halfOpen = new Gauge({ name: 'kipsec_agent_ike_half_open', help: 'half-open IKE SAs (IKE_SA_INIT answered, IKE_AUTH not done)', registers: [this.registry] });
  readonly cookies = new Gauge({ name: 'kipsec_agent_ike_cookies_active', help: '1 while the engine demands COOKIEs (RFC 7296 §2.6)', registers: [this.registry] });
  /** The engine's counters at the previous refresh: Prometheus counters take increments. */
  #seen: { drops: Record<string, number>; invalid: number } = { drops: {}, invalid: 0 };

  constructor(defaultMetrics = true) { if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'kipsec_agent_' }); }

  ikeUp(_peer: string, handshakeMs: number | undefined): void { if (handshakeMs !== undefined) this.handshake.observe(handshakeMs / 1000); }
  rekeyed(peer: string, what: 'ike' | 'child'): void { this.rekeys.inc({ peer, kind: what }); }
  failure(peer: string, f: IkeFailure): void { this.failures.inc({ peer, notify: f.notify ?? 'none', code: f.code }); }
  down(peer: string, what: 'ike' | 'child', reason: string): void { this.downs.inc({ peer, kind: what, reason }); }

  /** Per-peer gauges from a status snapshot (peers that left disappear). */
  setPeers(peers: readonly TunnelStatus[]): void {
    this.ikeState.reset(); this.peerUp.reset(); this.childSas.reset(); this.saBytes.reset(); this.saPackets.reset();
    for (const p of peers) {
      for (const s of STATES) this.ikeState.set({ peer: p.name, state: s }, p.ikeState === s ? 1 : 0);
      this.peerUp.set({ peer: p.name }, peerIsUp(p) ? 1 : 0);
      const byChild = new Map<string, number>();
      for (const c of p.children) {
        byChild.set(c.name, (byChild.get(c.name) ?? 0) + 1);
        // The newest SA of a child (a rekey briefly leaves two) carries the traffic.
        this.saBytes.set({ peer: p.name, child: c.name, direction: 'in' }, c.bytesIn);
        this.saBytes.set({ peer: p.name, child: c.name, direction: 'out' }, c.bytesOut);
        this.saPackets.set({ peer: p.name, child: c.name, direction: 'in' }, c.packetsIn);
        this.saPackets.set({ peer: p.name, child: c.name, direction: 'out' }, c.packetsOut);
      }
      for (const [child, n] of byChild) this.childSas.set({ peer: p.name, child }, n);
    }
  }

  /** The engine's and the sockets' counts; a count below the last one seen (a new engine) counts from zero. */
  setIke(c: IkeCounters): void {
    for (const [reason, n] of Object.entries(c.drops)) {
      const last = this.#seen.drops[reason] ?? 0;
      const inc = n >= last ? n - last : n;
      if (inc > 0) this.ikeDrops.inc({ reason }, inc);
      this.#seen.drops[reason] = n;
    }
    const inv = c.udp.invalid >= this.#seen.invalid ? c.udp.invalid - this.#seen.invalid : c.udp.invalid;
    if (inv > 0) this.udpInvalid.inc(inv);
    this.#seen.invalid = c.udp.invalid;
    this.halfOpen.set(c.halfOpen);
    this.cookies.set(c.cookiesActive ? 1 : 0);
  }

  setXfrmStat(counters: Readonly<Record<string, number>>): void {
    for (const [k, v] of Object.entries(counters)) this.xfrmStat.set({ counter: k }, v);
  }
}

/** /proc/net/xfrm_stat: "XfrmInError  0" lines (absent without CONFIG_XFRM_STATISTICS: empty). */
export function parseXfrmStat(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(Xfrm\w+)\s+(\d+)\s*$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

export async function readXfrmStat(path = '/proc/net/xfrm_stat'): Promise<Record<string, number>> {
  try { return parseXfrmStat(await readFile(path, 'utf8')); } catch { return {}; }
}

export interface HealthSource {
  healthy(): boolean;
  ready(): { readonly ok: boolean; readonly why: string };
  /** Refresh the per-peer gauges before a scrape. */
  refresh(): Promise<void>;
}

/** Serve /metrics, /healthz, /readyz; resolves with the bound port once listening. */
export async function startMetricsServer(m: AgentMetrics, h: HealthSource, port: number, host: string): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/livez') {
      const ok = h.healthy();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }); res.end(ok ? 'ok\n' : 'unhealthy\n');
      return;
    }
    if (path === '/readyz') {
      const r = h.ready();
      res.writeHead(r.ok ? 200 : 503, { 'content-type': 'text/plain' }); res.end(`${r.ok ? 'ok' : 'not ready'}: ${r.why}\n`);
      return;
    }
    if (path === '/metrics') {
      h.refresh().catch(() => undefined).then(() => m.registry.metrics()).then((text) => { res.writeHead(200, { 'content-type': m.registry.contentType }); res.end(text); }, () => { res.writeHead(500); res.end(); });
      return;
    }
    res.writeHead(404); res.end();
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, host, resolve); });
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : port };
}
