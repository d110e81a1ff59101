// The node's identity in cluster mode (DESIGN.md §4): the private key made on this node and kept
// in the state directory (0600, never sent anywhere), the certificate the operator's signer issues
// for a CSR (or relays from cert-manager, as IPsecMesh.spec.identity says — the agent asks the same
// way either way), renewed at 2/3 of its life with the same key, and the trust bundle. The IKE
// engine gets them as DER and a KeyObject (MeshIdentity); nothing here logs key material.
import { createHash, KeyObject } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { Clock } from '../../common/time.js';
import { IdentityClient, type CertInfo } from '../../api/identity-client.js';
import type { KubeClient } from '../../api/kube/client.js';
import { identityCrypto } from '../../pki/identity-crypto.js';
import type { KeyPair } from '../../pki/index.js';
import type { Logger } from '../log.js';
import { pemBlocks } from '../peers.js';
import type { MeshIdentity } from './peers.js';

export class NodeIdentity {
  readonly #client: IdentityClient<KeyPair>;
  readonly #clock: Clock;
  #privateKey: KeyObject | undefined;
  #onChange: () => void = () => undefined;

  constructor(o: { readonly kube: KubeClient; readonly node: string; readonly nodeIps: readonly string[]; readonly dir: string; readonly namespace: string; readonly clock: Clock; readonly log: Logger }) {
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    this.#clock = o.clock;
    this.#client = new IdentityClient<KeyPair>({
      kube: o.kube, crypto: identityCrypto, nodeName: o.node, nodeIps: o.nodeIps, dir: o.dir, clock: o.clock, namespace: o.namespace,
      log: { info: (x, m) => o.log.info(x, m), warn: (x, m) => o.log.warn(x, m) },
      onCertificate: () => this.#onChange(),
    });
  }

  /** Called after every renewal (the peers' configs and the published fingerprint change). */
  onChange(fn: () => void): void { this.#onChange = fn; }

  /** Key from disk or new; a still-valid certificate from disk, else a CSR and the wait for it. */
  async start(): Promise<CertInfo> {
    const c = await this.#client.start();
    const key = this.#client.key;
    if (!key) throw new Error('identity: no key after start');
    this.#privateKey = KeyObject.from(key.privateKey);
    return c;
  }

  stop(): void { this.#client.stop(); }

  /** A new certificate for the same key now (as at 2/3 of its life); onChange follows. */
  renew(): Promise<CertInfo> { return this.#client.renew(); }

  get certificate(): CertInfo | undefined { return this.#client.certificate; }

  /** Valid now: issued, not expired. */
  get valid(): boolean { const c = this.#client.certificate; return c !== undefined && c.notAfterMs > this.#clock.now() && c.notBeforeMs <= this.#clock.now() + 60_000; }

  /** What the IKE engine needs; `bundlePem` from the watched ConfigMap (or the copy on disk). */
  meshIdentity(bundlePem: string | undefined): MeshIdentity | undefined {
    const c = this.#client.certificate;
    const key = this.#privateKey;
    if (!c || !key) return undefined;
    const bundle = bundlePem ?? this.#client.trustBundle;
    const [cert, ...chain] = pemBlocks(c.pem);
    const cas = pemBlocks(bundle);
    if (!cert || cas.length === 0) return undefined;
    return { certificate: cert, chain, privateKey: key, cas, certFingerprint: c.fingerprint, bundleDigest: createHash('sha256').update(bundle).digest('hex').slice(0, 16) };
  }
}
