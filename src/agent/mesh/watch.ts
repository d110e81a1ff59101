// What a node's agent watches in the cluster: the IPsecMeshes, every IPsecNode (its peers), the
// Nodes' labels (metadata only, for the mesh's nodeSelector: no specs or statuses of thousands of
// Nodes in memory), its own Node in full (pod CIDRs, addresses) and the trust bundle ConfigMap.
// Informers list then watch, relist after a 410 and retry with backoff (src/api/kube/informer.ts);
// `onChange` fires (coalesced) on anything that may change the desired peers.
import type { Clock } from '../../common/time.js';
import { errorMessage } from '../../common/errors.js';
import { Informer, kubeListWatcher, type KubeObject } from '../../api/kube/informer.js';
import { RESOURCES, resourcePath, type KubeClient } from '../../api/kube/client.js';
import { ANNOTATIONS, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY } from '../../api/names.js';
import type { IPsecMesh, IPsecNode } from '../../api/types.js';
import { stableJson } from '../../api/stable-json.js';
import type { Logger } from '../log.js';
import { trimIpsecNode, trimNodeMeta, trimOwnNode, withoutManagedFields } from './watch-trim.js';

export interface NodeObject extends KubeObject {
  metadata: { name: string; resourceVersion?: string; labels?: Record<string, string>; uid?: string };
  spec?: { podCIDR?: string; podCIDRs?: string[] };
  status?: { addresses?: { type: string; address: string }[] };
}
interface NodeMeta extends KubeObject { metadata: { name: string; resourceVersion?: string; labels?: Record<string, string> } }
interface ConfigMapObject extends KubeObject { metadata: KubeObject['metadata'] & { annotations?: Record<string, string> }; data?: Record<string, string> }

export class MeshWatch {
  readonly meshes: Informer<IPsecMesh>;
  readonly ipsecNodes: Informer<IPsecNode>;
  readonly nodeLabels: Informer<NodeMeta>;
  readonly self: Informer<NodeObject>;
  readonly bundle: Informer<ConfigMapObject>;
  readonly #all: Informer<KubeObject>[];
  readonly #running: Promise<void>[] = [];
  readonly #listeners: (() => void)[] = [];
  readonly #errors = new Map<string, string>();

  constructor(kube: KubeClient, o: { readonly node: string; readonly namespace: string; readonly clock: Clock; readonly log: Logger }) {
    // Each cache keeps only what the agent reads of its objects (watch-trim.ts): every node holds them.
    const inf = <T extends KubeObject>(what: string, path: string, transform: (x: T) => T, sel: { fieldSelector?: string } = {}, metadataOnly = false): Informer<T> => new Informer<T>(kubeListWatcher<T>(kube, path, sel, 500, { metadataOnly }), o.clock, (e) => {
      const msg = errorMessage(e);
      if (this.#errors.get(what) !== msg) o.log.warn({ watch: what, err: msg }, 'watch failed; retrying');
      this.#errors.set(what, msg);
    }, { transform });
    this.meshes = inf('ipsecmeshes', resourcePath(RESOURCES.ipsecMeshes), withoutManagedFields);
    this.ipsecNodes = inf('ipsecnodes', resourcePath(RESOURCES.ipsecNodes), trimIpsecNode(o.node));
    this.nodeLabels = inf('nodes', resourcePath(RESOURCES.nodes), trimNodeMeta, {}, true);
    this.self = inf('own node', resourcePath(RESOURCES.nodes), trimOwnNode, { fieldSelector: `metadata.name=${o.node}` });
    this.bundle = inf('trust bundle', resourcePath(RESOURCES.configMaps, { namespace: o.namespace }), withoutManagedFields, { fieldSelector: `metadata.name=${TRUST_BUNDLE_CONFIGMAP}` });
    this.#all = [this.meshes, this.ipsecNodes, this.nodeLabels, this.self, this.bundle] as Informer<KubeObject>[];
    // Data flowing again means the watches recovered: a later failure is worth a new log line.
    const fire = (): void => { this.#errors.clear(); for (const l of this.#listeners) l(); };
    // Only changes that can change the desired peers count: agents write their IPsecNode's status
    // whenever a peer comes or goes and kubelets update their Nodes, so reacting to those would
    // make every agent recompute the mesh a thousand times a minute in a large cluster.
    const on = <T extends KubeObject>(i: Informer<T>, relevant: (x: T) => unknown): void =>
      i.addHandlers({ onAdd: fire, onDelete: fire, onUpdate: (a, b) => { if (stableJson(relevant(a)) !== stableJson(relevant(b))) fire(); } });
    on(this.meshes, (m) => m.spec);
    on(this.ipsecNodes, (n) => n.spec);
    on(this.nodeLabels, (n) => n.metadata.labels);
    on(this.self, (n) => [n.spec, internalIps(n), n.metadata.labels]);
    on(this.bundle, (c) => [c.data, c.metadata.annotations?.[ANNOTATIONS.signingCa]]);
  }

  /** Something that may change the desired peers happened (called synchronously; debounce outside). */
  onChange(fn: () => void): void { this.#listeners.push(fn); }

  start(): void { for (const i of this.#all) this.#running.push(i.run()); }

  get synced(): boolean { return this.#all.every((i) => i.hasSynced); }
  waitForSync(): Promise<void> { return Promise.all(this.#all.map((i) => i.waitForSync())).then(() => undefined); }

  /** Watches that failed since data last arrived, with their last error. */
  get failing(): ReadonlyMap<string, string> { return this.#errors; }

  node(name: string): NodeObject | undefined { return this.self.get(name); }
  labelsOf(node: string): Record<string, string> | undefined { return this.nodeLabels.get(node)?.metadata.labels; }
  nodeExists(node: string): boolean { return this.nodeLabels.get(node) !== undefined; }
  trustBundle(): string | undefined { return this.bundle.list()[0]?.data?.[TRUST_BUNDLE_KEY]; }
  /** SHA-256 of the CA the operator signs with now (on the bundle ConfigMap; ca-follow.ts). */
  signingCa(): string | undefined { return this.bundle.list()[0]?.metadata.annotations?.[ANNOTATIONS.signingCa]; }

  async stop(): Promise<void> {
    for (const i of this.#all) i.stop();
    await Promise.allSettled(this.#running);
  }
}

/** The addresses the Node reports (status.addresses), InternalIP first. */
export function internalIps(n: NodeObject | undefined): string[] {
  const a = n?.status?.addresses ?? [];
  return [...a.filter((x) => x.type === 'InternalIP'), ...a.filter((x) => x.type === 'ExternalIP')].map((x) => x.address);
}

export function podCidrsOf(n: NodeObject | undefined): string[] {
  return n?.spec?.podCIDRs ?? (n?.spec?.podCIDR ? [n.spec.podCIDR] : []);
}
