// Cluster mode: this node as a gateway of IPsecTunnels (DESIGN.md §3). It watches the
// IPsecTunnels; for each one whose nodeSelector selects this node (select.ts) it competes for the
// tunnel's Lease (lease.ts). The holder is the active gateway: the node agent adds the tunnel's IKE
// peer to the same engine the mesh runs in (peers()); standbys keep it out, and losing the Lease
// takes it out. Every selected node reports its role and the peer's state (report.ts) in its
// IPsecNode status.tunnels, from which the operator writes IPsecTunnel.status.
//
// The PSK Secret (spec.auth.psk.secretRef), or with certificate authentication the Secret holding
// the CA bundle the remote's certificate must chain to (spec.auth.certificate.caSecretRef), is read
// with a GET by name, no list or watch: the agent's RBAC grants `get` on exactly the Secrets named
// (deploy/rbac.yaml), never on the operator's CA Secret. It is read again every SECRET_REFRESH_MS,
// so a rotated PSK or CA bundle is used from the next IKE SA on. Our own certificate and key are the
// node's identity (useIdentity): a renewal reaches the engine with the next recompute, and the next
// IKE_AUTH presents it.
//
// A route-mode tunnel (an XFRM interface, as AWS and Azure expect) gets its interface while this node
// is its active gateway, before its SAs (links.ts); standby, a lost Lease or shutdown removes it.
//
// Every agent, gateway or not, also watches the tunnels' Leases in its namespace: their holders
// say which node each tunnel's remote subnets are routed to over the mesh (routing.ts).
import { errorMessage } from '../../common/errors.js';
import type { Clock, TimerHandle } from '../../common/time.js';
import { Informer, kubeListWatcher } from '../../api/kube/informer.js';
import { RESOURCES, resourcePath, type KubeClient } from '../../api/kube/client.js';
import type { IPsecTunnel } from '../../api/types.js';
import { effectiveMode } from '../../api/profiles/index.js';
import type { PeerConfig } from '../../ike/engine.js';
import type { Logger } from '../log.js';
import type { DesiredPeer } from '../source.js';
import type { TunnelStatus } from '../status.js';
import { CA_SECRET_KEY, caSecretText, type GatewayIdentity } from './cert-auth.js';
import { compileGatewayTunnel, nextRemoteIndex, remoteAddresses } from './compile.js';
import { GatewayLinks, type LinkPort } from './links.js';
import { TunnelLease, GATEWAY_LEASE_TIMING, type Lease, type LeaseTiming } from './lease.js';
import { gatewayReport, type GatewayReport } from './report.js';
import { gatewayRouting, type GatewayRouting } from './routing.js';
import { leaseNameOf, selectsGateway } from './select.js';
import { NODE_LEASE_LABEL } from '../../api/node-lease.js';

const SECRET_REFRESH_MS = 30_000;

interface SecretObject { metadata: { name: string; resourceVersion?: string }; data?: Record<string, string> }

interface Candidacy {
  readonly lease: TunnelLease;
  /** The PSK, or with certificate authentication the CA bundle, as last read from its Secret. */
  secret: { readonly bytes: Uint8Array; readonly atMs: number } | undefined;
  secretError: string | undefined;
  /** Why the last compile failed (spec the gateway cannot run), with when it was first seen. */
  problem: { readonly message: string; readonly timeMs: number } | undefined;
  wasHeld: boolean;
  /** Which remote address (compile.ts remoteAddresses) and since when it is in use. */
  remote: { index: number; sinceMs: number };
}

export interface GatewayOptions {
  readonly kube: KubeClient;
  readonly node: string;
  /** The agent's namespace: where the Leases live. */
  readonly namespace: string;
  readonly labels: () => Readonly<Record<string, string>> | undefined;
  readonly clock: Clock;
  readonly log: Logger;
  readonly timing?: LeaseTiming;
  /** The kernel's XFRM interfaces (xfrm-interfaces.ts), for route-mode tunnels; absent: none are made. */
  readonly links?: LinkPort;
}

export class TunnelGateways {
  readonly #o: GatewayOptions;
  readonly tunnels: Informer<IPsecTunnel>;
  /** The tunnels' Leases (holders only): who is the active gateway of each, for the routes of every node. */
  readonly leases: Informer<Lease>;
  readonly #mine = new Map<string, Candidacy>();
  readonly #listeners: (() => void)[] = [];
  readonly #links: GatewayLinks;
  #running: Promise<void> | undefined;
  #leasesRunning: Promise<void> | undefined;
  #timer: TimerHandle | undefined;
  #identity: () => GatewayIdentity | undefined = () => undefined;
  #ticking = false;
  #stopped = false;

  constructor(o: GatewayOptions) {
    this.#o = o;
    this.#links = new GatewayLinks(o.links, o.log);
    this.tunnels = new Informer<IPsecTunnel>(kubeListWatcher<IPsecTunnel>(o.kube, resourcePath(RESOURCES.ipsecTunnels)), o.clock,
      (e) => o.log.warn({ watch: 'ipsectunnels', err: errorMessage(e) }, 'watch failed; retrying'));
    this.tunnels.addHandlers({ onAdd: () => this.#kick(), onDelete: () => this.#kick(), onUpdate: (a, b) => { if (JSON.stringify(a.spec) !== JSON.stringify(b.spec)) { this.#forgetSecret(b.metadata.name); this.#fire(); } } });
    // Renewals change only renewTime: the cache keeps the holder alone, so they are no change.
    // The nodes' heartbeat Leases (api/node-lease.ts) are not watched: every node renews one.
    this.leases = new Informer<Lease>(kubeListWatcher<Lease>(o.kube, resourcePath(RESOURCES.leases, { namespace: o.namespace }), { labelSelector: `!${NODE_LEASE_LABEL}` }), o.clock,
      (e) => o.log.warn({ watch: 'leases', err: errorMessage(e) }, 'watch failed; retrying (remote subnets stay routed to the gateways last seen)'),
      { transform: (l) => ({ metadata: { name: l.metadata.name, namespace: l.metadata.namespace, ...(l.metadata.resourceVersion ? { resourceVersion: l.metadata.resourceVersion } : {}) }, spec: { holderIdentity: l.spec?.holderIdentity ?? '' } }) });
    const holderChanged = (a: Lease | undefined, b: Lease | undefined): void => { if ((a?.spec?.holderIdentity ?? '') !== (b?.spec?.holderIdentity ?? '')) this.#fire(); };
    this.leases.addHandlers({ onAdd: (l) => holderChanged(undefined, l), onDelete: (l) => holderChanged(l, undefined), onUpdate: holderChanged });
  }

  /** The node's certificate and key (mesh/identity.ts), for tunnels with certificate authentication. */
  useIdentity(fn: () => GatewayIdentity | undefined): void { this.#identity = fn; }

  /** Something that changes the desired peers: which tunnels this node is active for, or their specs. */
  onChange(fn: () => void): void { this.#listeners.push(fn); }
  #fire(): void { for (const l of this.#listeners) l(); }
  #forgetSecret(name: string): void { const c = this.#mine.get(name); if (c) c.secret = undefined; }

  start(): void {
    this.#running = this.tunnels.run();
    this.#leasesRunning = this.leases.run();
    this.#schedule(0);
  }

  waitForSync(): Promise<void> { return this.tunnels.waitForSync(); }

  #kick(): void { this.#schedule(0); }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer?.cancel();
    this.#timer = this.#o.clock.setTimer(ms, () => { this.#timer = undefined; void this.#tick(); });
  }

  /** One round: candidacies follow the selectors, every Lease is read or renewed, the PSKs are fresh. */
  async #tick(): Promise<void> {
    if (this.#ticking || this.#stopped) return;
    this.#ticking = true;
    let changed = false;
    try {
      const labels = this.#o.labels();
      const want = new Map(this.tunnels.hasSynced ? this.tunnels.list().filter((t) => !t.metadata.deletionTimestamp && selectsGateway(t, labels)).map((t) => [t.metadata.name, t]) : []);
      for (const [name, c] of this.#mine) {
        if (want.has(name) || !this.tunnels.hasSynced) continue;
        this.#mine.delete(name);
        this.#links.drop(name);
        if (c.wasHeld) changed = true;
        await c.lease.release();
        this.#o.log.info({ tunnel: name }, 'no longer a gateway of this tunnel (deselected or deleted): Lease released');
      }
      for (const [name, t] of want) {
        let c = this.#mine.get(name);
        if (!c) {
          c = { lease: new TunnelLease({ kube: this.#o.kube, namespace: this.#o.namespace, name: leaseNameOf(name), identity: this.#o.node, clock: this.#o.clock, ...(this.#o.timing ? { timing: this.#o.timing } : {}) }), secret: undefined, secretError: undefined, problem: undefined, wasHeld: false, remote: { index: 0, sinceMs: this.#o.clock.now() } };
          this.#mine.set(name, c);
          this.#o.log.info({ tunnel: name, lease: c.lease.name }, 'this node is a gateway of the tunnel: competing for its Lease');
        }
        const wasOut = c.lease.outageSinceMs !== undefined;
        const held = await c.lease.tick();
        if (wasOut !== (c.lease.outageSinceMs !== undefined)) {
          if (wasOut) this.#o.log.info({ tunnel: name }, 'the apiserver answers again: the Lease decides the active gateway again');
          else this.#o.log.warn({ tunnel: name, err: c.lease.lastError }, 'the apiserver does not answer: keeping the tunnel up as its active gateway until it does (fail-static)');
        }
        if (held) await this.#refreshSecret(t, c);
        if (held !== c.wasHeld) {
          changed = true;
          c.remote = { index: 0, sinceMs: this.#o.clock.now() };
          c.wasHeld = held;
          if (!held) this.#links.want(name, null);
          this.#o.log.info({ tunnel: name, role: held ? 'active' : 'standby', holder: c.lease.holder || undefined }, held ? 'active gateway of the tunnel (Lease acquired)' : 'standby gateway of the tunnel');
        }
      }
      const heldRoutes = [...want].filter(([name, t]) => this.#mine.get(name)?.lease.held === true && effectiveMode(t.spec) === 'route').map(([name]) => name);
      if (this.tunnels.hasSynced && await this.#links.sync(heldRoutes)) changed = true;
    } catch (e) {
      this.#o.log.warn({ err: errorMessage(e) }, 'gateway round failed');
    } finally {
      this.#ticking = false;
    }
    if (changed) this.#fire();
    this.#schedule((this.#o.timing ?? GATEWAY_LEASE_TIMING).retryMs);
  }

  async #refreshSecret(t: IPsecTunnel, c: Candidacy): Promise<void> {
    const psk = t.spec.auth.psk?.secretRef;
    const ca = t.spec.auth.certificate?.caSecretRef;
    const ref = psk ?? ca;
    if (!ref) return;
    if (c.secret && this.#o.clock.now() - c.secret.atMs < SECRET_REFRESH_MS) return;
    const key = ref.key ?? (psk ? 'psk' : CA_SECRET_KEY);
    const what = psk ? `the PSK Secret ${ref.namespace}/${ref.name}` : `the CA Secret ${caSecretText(ref)}`;
    try {
      const s = await this.#o.kube.get<SecretObject>(resourcePath(RESOURCES.secrets, { namespace: ref.namespace, name: ref.name }));
      const b64 = s.data?.[key];
      if (b64 === undefined) throw new Error(`Secret ${ref.namespace}/${ref.name} has no key "${key}"`);
      const bytes = new Uint8Array(Buffer.from(b64, 'base64'));
      const before = c.secret?.bytes;
      c.secret = { bytes, atMs: this.#o.clock.now() };
      const was = c.secretError; c.secretError = undefined;
      if (was !== undefined || !before || Buffer.compare(before, bytes) !== 0) this.#fire();
    } catch (e) {
      const msg = `cannot read ${what}: ${errorMessage(e)}`;
      if (c.secretError !== msg) { c.secretError = msg; this.#o.log.warn({ tunnel: t.metadata.name, err: msg }, psk ? 'PSK Secret unreadable' : 'CA Secret unreadable'); this.#fire(); }
    }
  }

  /** The tunnels this node is the active gateway of, as engine peers (a tunnel it cannot run is reported, not run). */
  peers(address: string, podCIDRs: readonly string[], adapt?: (p: PeerConfig) => PeerConfig): DesiredPeer[] {
    const out: DesiredPeer[] = [];
    for (const [name, c] of this.#mine) {
      const t = this.tunnels.get(name);
      if (!t || !c.lease.held) continue;
      if (c.secretError) { this.#problem(c, c.secretError); this.#links.want(name, null); continue; }
      const cert = t.spec.auth.certificate !== undefined;
      const r = compileGatewayTunnel(t, { address, podCIDRs, psk: cert ? undefined : c.secret?.bytes, caBundle: cert ? c.secret?.bytes : undefined, identity: cert ? this.#identity() : undefined, remoteIndex: c.remote.index, ...(adapt ? { adapt } : {}) });
      if (!r.ok) { this.#problem(c, r.message); this.#links.want(name, null); continue; }
      this.#links.want(name, r.tunnel);
      if (this.#links.pending) this.#kick();
      if (r.tunnel.mode === 'route') {
        const err = this.#links.error(name);
        if (err !== undefined) { this.#problem(c, `XFRM interface: ${err}`); continue; }
        // Its SAs and policies carry the interface's if_id: they go in once it is up.
        if (!this.#links.ready(r.tunnel)) continue;
      }
      c.problem = undefined;
      out.push(r.peer);
    }
    return out;
  }

  #problem(c: Candidacy, message: string): void {
    if (c.problem?.message === message) return;
    c.problem = { message, timeMs: this.#o.clock.now() };
    this.#o.log.warn({ lease: c.lease.name, problem: message }, 'the tunnel cannot run on this gateway');
  }

  /** status.tunnels of this node's IPsecNode: one entry per tunnel it is a gateway of. */
  reports(statuses: readonly TunnelStatus[]): GatewayReport[] {
    const byName = new Map(statuses.map((s) => [s.name, s]));
    this.#rotateRemotes(byName);
    return [...this.#mine].sort(([a], [b]) => a.localeCompare(b)).map(([name, c]) => {
      const held = c.lease.held;
      const problem = c.problem ?? (c.lease.lastError ? { message: `Lease ${this.#o.namespace}/${c.lease.name}: ${c.lease.lastError}`, timeMs: this.#o.clock.now() } : undefined);
      const t = this.tunnels.get(name);
      const remoteAddress = held && t ? remoteAddresses(t)[c.remote.index % remoteAddresses(t).length] : undefined;
      return gatewayReport({ name, node: this.#o.node, role: held ? 'active' : 'standby', peer: held ? byName.get(name) : undefined, problem: held || c.lease.lastError ? problem : undefined, lastError: undefined, remoteAddress });
    });
  }

  /** An HA remote pair: the active gateway moves on to the next remote address when this one does not answer. */
  #rotateRemotes(byName: ReadonlyMap<string, TunnelStatus>): void {
    const now = this.#o.clock.now();
    let moved = false;
    for (const [name, c] of this.#mine) {
      const t = this.tunnels.get(name);
      if (!t || !c.lease.held) continue;
      const all = remoteAddresses(t);
      const p = byName.get(name);
      const established = p !== undefined && (p.ikeState === 'established' || p.ikeState === 'rekeying');
      // A responder waits for the remote side, whichever address it comes from.
      if (established || !p || p.startAction === 'respond') { c.remote.sinceMs = now; continue; }
      const next = nextRemoteIndex(all.length, c.remote.index, c.remote.sinceMs, now, established);
      if (next === c.remote.index) continue;
      this.#o.log.warn({ tunnel: name, from: all[c.remote.index], to: all[next] }, 'no IKE SA with the remote address: trying the next one');
      c.remote = { index: next, sinceMs: now };
      moved = true;
    }
    if (moved) this.#fire();
  }

  /**
   * Which node each tunnel's remote subnets go to: this node for the tunnels it holds (by its own
   * reckoning, as peers() does), otherwise the holder of the tunnel's Lease as last watched.
   */
  routing(): GatewayRouting {
    return gatewayRouting(this.tunnels.list(), this.#o.node,
      (name) => this.leases.get(`${this.#o.namespace}/${leaseNameOf(name)}`)?.spec?.holderIdentity,
      (name) => this.#mine.get(name)?.lease.held === true);
  }

  /** Which tunnels this node is active for (for logs and tests). */
  get active(): string[] { return [...this.#mine].filter(([, c]) => c.lease.held).map(([n]) => n); }

  /** Stop competing. `release`: hand the Leases back so the standbys take over at once (SIGTERM). */
  async stop(release: boolean): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.tunnels.stop();
    this.leases.stop();
    // The interfaces go with the Leases: whoever takes over makes its own.
    if (release) await this.#links.removeAll();
    if (release) for (const c of this.#mine.values()) await c.lease.release();
    await this.#running?.catch(() => undefined);
    await this.#leasesRunning?.catch(() => undefined);
  }
}
