// An IPsecMesh spec resolved into what the agent uses: durations in milliseconds, defaults filled
// in (the CRD defaults them on the server; an object written before a field existed may lack it),
// and a problem list instead of an exception, so a bad mesh is reported in status, never a crash.
import { parseDurationMs } from '../../common/duration.js';
import { errorMessage } from '../../common/errors.js';
import { DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS } from '../../api/fields.js';
import { OVERLAY_DEFAULT_PORT } from '../../api/resources.js';
import type { IPsecMesh } from '../../api/types.js';

export interface Overlay { readonly protocol: 'vxlan' | 'geneve'; readonly port: number }

export interface MeshSettings {
  readonly name: string;
  readonly nodeSelector: Readonly<Record<string, string>>;
  readonly strict: boolean;
  readonly trafficMode: 'auto' | 'routed' | 'overlay';
  readonly overlay: Overlay | undefined;
  readonly hostToHost: boolean;
  readonly ikeProposals: readonly string[];
  readonly ikeRekeyMs: number;
  readonly espProposals: readonly string[];
  readonly espRekeyMs: number;
  readonly espLifeMs: number;
  /**
   * Hard limits of a Child SA (spec.esp.lifePackets/lifeBytes); the kernel's soft expire at 90%
   * starts a rekey. Unset: the engine's default, 2^31 packets without ESN so the 32-bit sequence
   * number never wraps (RFC 4303 §3.3.3) — a busy pod pair at 1 Mpps reaches 2^32 in 72 minutes.
   */
  readonly espLifePackets: bigint | undefined;
  readonly espLifeBytes: bigint | undefined;
  readonly dpdIntervalMs: number;
  readonly dpdTimeoutMs: number;
  readonly dpdAction: 'restart' | 'clear' | 'hold';
  readonly natTraversal: 'auto' | 'always';
  readonly datapath: 'kernel' | 'userspace' | 'auto';
}

export function resolveMesh(m: IPsecMesh): { readonly settings: MeshSettings; readonly problems: readonly string[] } {
  const s = m.spec;
  const problems: string[] = [];
  const dur = (text: string | undefined, fallback: string, path: string): number => {
    try { return parseDurationMs(text ?? fallback, path); } catch (e) { problems.push(errorMessage(e)); return parseDurationMs(fallback, path); }
  };
  const ov = s.traffic?.overlay;
  const settings: MeshSettings = {
    name: m.metadata.name,
    nodeSelector: s.nodeSelector ?? {},
    strict: s.strict ?? true,
    trafficMode: s.traffic?.mode ?? 'auto',
    overlay: ov ? { protocol: ov.protocol, port: ov.port ?? OVERLAY_DEFAULT_PORT[ov.protocol] } : undefined,
    hostToHost: s.traffic?.hostToHost ?? false,
    ikeProposals: s.ike?.proposals ?? DEFAULT_IKE_PROPOSALS,
    ikeRekeyMs: dur(s.ike?.rekeyTime, '4h', 'spec.ike.rekeyTime'),
    espProposals: s.esp?.proposals ?? DEFAULT_ESP_PROPOSALS,
    espRekeyMs: dur(s.esp?.rekeyTime, '1h', 'spec.esp.rekeyTime'),
    espLifeMs: dur(s.esp?.lifeTime, '66m', 'spec.esp.lifeTime'),
    espLifePackets: s.esp?.lifePackets === undefined ? undefined : BigInt(s.esp.lifePackets),
    espLifeBytes: s.esp?.lifeBytes === undefined ? undefined : BigInt(s.esp.lifeBytes),
    dpdIntervalMs: dur(s.dpd?.interval, '30s', 'spec.dpd.interval'),
    dpdTimeoutMs: dur(s.dpd?.timeout, '150s', 'spec.dpd.timeout'),
    dpdAction: s.dpd?.action ?? 'restart',
    natTraversal: s.natTraversal ?? 'auto',
    datapath: s.datapath ?? 'kernel',
  };
  if (settings.trafficMode === 'overlay' && !settings.overlay) problems.push('spec.traffic: mode overlay needs spec.traffic.overlay (protocol, port)');
  return { settings, problems };
}

/** Does the mesh select a node with these labels? An empty selector selects every node. */
export function selects(m: Pick<MeshSettings, 'nodeSelector'>, labels: Readonly<Record<string, string>> | undefined): boolean {
  return Object.entries(m.nodeSelector).every(([k, v]) => labels?.[k] === v);
}

/** The mesh that applies: the one named, else "default", else the oldest (as the operator picks). */
export function activeMeshOf(meshes: readonly IPsecMesh[], name?: string): IPsecMesh | undefined {
  if (name !== undefined) return meshes.find((m) => m.metadata.name === name);
  return meshes.find((m) => m.metadata.name === 'default')
    ?? [...meshes].sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') || a.metadata.name.localeCompare(b.metadata.name))[0];
}
