// The standalone agent's peer source: the config file (`--config FILE`, a YAML stream of
// IPsecTunnel objects) as one complete snapshot, read at start, on SIGHUP and on `kipsec reload`.
// All or nothing: every problem of the file — schema, credential files, what the engine refuses —
// is collected and thrown as one ConfigLoadError, so a bad file changes nothing.
//
// Standalone tunnels keep their SAs when their spec changes (they follow the new settings from the
// next rekey, or after `kipsec terminate` + `initiate`), as they always did: the session digest is
// the tunnel's name, so a change is an update, never a renegotiation.
import { KipsecError, errorMessage } from '../common/errors.js';
import type { Problem } from '../api/config.js';
import type { PeerConfig } from '../ike/engine.js';
import { loadConfigFile, nodeFs, type ConfigFs } from './config.js';
import { peerConfigOf } from './peers.js';
import type { DesiredPeer, PeerSnapshot } from './source.js';
import type { TunnelConfig } from './tunnel.js';

/** Config problems: printed one per line by the CLI (exit 2) or returned by reload. */
export class ConfigLoadError extends KipsecError {
  readonly problems: readonly Problem[];
  constructor(problems: readonly Problem[]) {
    super('ERR_CONFIG', problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
    this.problems = problems;
  }
}

export interface FileSnapshot extends PeerSnapshot {
  readonly tunnels: readonly TunnelConfig[];
}

// Shared by every tunnel's desired peer (read only): an empty list and a kind record each.
const NO_BLOCKS: DesiredPeer['blocks'] = [];
const TUNNEL: DesiredPeer['kind'] = { type: 'tunnel' };

export function desiredOfTunnel(t: TunnelConfig, config: PeerConfig): DesiredPeer {
  return {
    name: t.name, config, digest: t.digest, sessionDigest: `tunnel:${t.name}`, installRoutes: t.installRoutes,
    ikeProposalText: t.ikeProposalText, espProposalText: t.espProposalText, blocks: NO_BLOCKS, kind: TUNNEL,
  };
}

/**
 * Read and check the file. `validate` is the engine's own check of a peer config (addPeer on an
 * engine with inert ports), so a config the engine would refuse is refused here, before anything runs.
 * `adapt`: the data path's changes and refusals (userspace/peer.ts), before that check.
 */
export function loadFileSnapshot(file: string, validate: (p: PeerConfig) => void, fs: ConfigFs = nodeFs, adapt?: (p: PeerConfig) => PeerConfig): FileSnapshot {
  const res = loadConfigFile(file, fs);
  if (!res.ok) throw new ConfigLoadError(res.problems);
  const problems: Problem[] = [];
  const where = (name: string, e: unknown): Problem => ({ path: `${file}: ${name} ${e instanceof KipsecError && 'path' in e ? String(e.path) : 'spec'}`, message: errorMessage(e).replace(/^[^:]*: /, '') });
  const peers: DesiredPeer[] = [];
  for (const t of res.tunnels) {
    let config: PeerConfig;
    try { config = peerConfigOf(t); if (adapt) config = adapt(config); } catch (e) { problems.push(where(t.name, e)); continue; }
    try { validate(config); } catch (e) { problems.push(where(t.name, e)); continue; }
    peers.push(desiredOfTunnel(t, config));
  }
  if (problems.length > 0) throw new ConfigLoadError(problems);
  return { synced: true, peers, tunnels: res.tunnels };
}
