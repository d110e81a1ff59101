// A tunnel's configuration checked and parsed once into what the engine runs on (PeerRuntime):
// addresses, proposals (RFC 9370 additional key exchanges included), traffic selectors, pins,
// and a reqid per Child SA that a changed configuration keeps.
import { boundedMemo } from '../../common/bounded-memo.js';
import { ConfigError } from '../../common/errors.js';
import { DhId, TransformType } from '../constants.js';
import { parseProposals, type ParseOptions, type PolicyProposal, type SaProtocol } from '../policy/proposal.js';
import { preferredDhGroup } from '../policy/convert.js';
import { isIp } from './addr.js';
import type { PeerConfig, PeerPins } from './config.js';
import type { PeerRuntime } from './ike-sa.js';
import { parseTs, type TsRange } from './ts.js';

export function buildPeerRuntime(config: PeerConfig, existing: PeerRuntime | undefined, nextReqid: () => number): PeerRuntime {
  const path = `peers[${config.name}]`;
  if (!config.name) throw new ConfigError('peer.name', 'empty peer name');
  if (!isIp(config.local.address)) throw new ConfigError(`${path}.local.address`, `"${config.local.address}" is not an IP address`);
  if (config.remote.address !== '%any' && !isIp(config.remote.address)) throw new ConfigError(`${path}.remote.address`, `"${config.remote.address}" is not an IP address or %any`);
  if (config.auth.method === 'psk' && config.remote.id === undefined) throw new ConfigError(`${path}.remote.id`, 'PSK authentication needs the remote identity');
  if (config.auth.method === 'certificate' && config.auth.peerPins) checkPinsConfig(config.auth.peerPins, `${path}.auth.peerPins`);
  const allowWeak = config.ike.allowWeak ?? false;
  // RFC 9370 ADDKE run in IKE_INTERMEDIATE (IKE SA setup) and IKE_FOLLOWUP_KE (IKE rekey, and
  // Child SAs created or rekeyed with PFS in CREATE_CHILD_SA; IKE_AUTH's Child SA has none).
  const ikeProposals = sharedProposals(config.ike.proposals, 'ike', { allowWeak, path: `${path}.ike.proposals`, additionalKeyExchanges: true });
  const ikeGroup = preferredDhGroup(ikeProposals);
  if (ikeGroup === null) throw new ConfigError(`${path}.ike.proposals`, 'IKE proposals need a key exchange method');
  const children = config.children.map((c, i) => {
    const cp = `${path}.children[${i}]`;
    if (c.lifeTimeMs <= c.rekeyTimeMs) throw new ConfigError(`${cp}.lifeTimeMs`, 'must exceed rekeyTimeMs');
    const espProposals = sharedProposals(c.espProposals, 'esp', { allowWeak, path: `${cp}.espProposals`, additionalKeyExchanges: true });
    const pfs = espProposals.flatMap((p) => p.transforms).find((t) => t.type === TransformType.DH && t.id !== DhId.NONE);
    const reqid = existing?.children.find((x) => x.config.name === c.name)?.reqid ?? nextReqid();
    return {
      config: c, reqid, espProposals, pfsGroup: pfs?.id ?? null,
      localTs: sharedTsList(c.localTs, `${cp}.localTs`), remoteTs: sharedTsList(c.remoteTs, `${cp}.remoteTs`),
    };
  });
  return {
    config, ikeProposals, ikeGroup, children, terminated: false, everEstablished: existing?.everEstablished ?? false, retryTimer: null,
    local: { address: config.local.address, port: config.local.port ?? 500 },
    remote: { address: config.remote.address, port: config.remote.port ?? 500 },
  };
}

/**
 * Parsed proposal lists shared between peers configured with the same text: most tunnels name the
 * same few, and each list is a few arrays and transform objects (~500 bytes per configured tunnel).
 * The lists are read only. Bounded: cleared when full, so configs that come and go pin nothing.
 */
const PARSED = new Map<string, readonly PolicyProposal[]>();
const PARSED_MAX = 256;

function sharedProposals(texts: readonly string[], protocol: SaProtocol, opts: ParseOptions & { readonly allowWeak: boolean; readonly additionalKeyExchanges: true }): readonly PolicyProposal[] {
  // Errors are thrown with this peer's path, never kept.
  return boundedMemo(PARSED, JSON.stringify([protocol, opts.allowWeak, texts]), () => parseProposals(texts, protocol, opts), PARSED_MAX);
}

/**
 * Parsed traffic selectors likewise: every tunnel of a gateway names its own subnets the same way
 * (an object and two address arrays, ~450 bytes each). Read only, as the proposals.
 */
const SELECTORS = new Map<string, TsRange>();

function sharedTs(text: string, path: string): TsRange {
  return boundedMemo(SELECTORS, text, () => parseTs(text, path), PARSED_MAX);
}

/** And the lists of them (most tunnels' local list is the same). */
const SELECTOR_LISTS = new Map<string, readonly TsRange[]>();

function sharedTsList(texts: readonly string[], path: string): readonly TsRange[] {
  return boundedMemo(SELECTOR_LISTS, JSON.stringify(texts), () => texts.map((t, j) => sharedTs(t, `${path}[${j}]`)), PARSED_MAX);
}

/** Pins are lower-case hex SHA-256 digests, and a pin list that pins nothing is a mistake. */
function checkPinsConfig(pins: PeerPins, path: string): void {
  let n = 0;
  for (const kind of ['spkiSha256', 'certSha256'] as const) {
    (pins[kind] ?? []).forEach((pin, i) => {
      if (!/^[0-9a-f]{64}$/.test(pin)) throw new ConfigError(`${path}.${kind}[${i}]`, `"${pin}" is not a SHA-256 digest in lower-case hex (64 digits 0-9a-f)`);
      n++;
    });
  }
  if (n === 0) throw new ConfigError(path, 'no pins: list at least one spkiSha256 or certSha256, or leave peerPins out to accept any certificate the CAs vouch for');
}
