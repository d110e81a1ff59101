// The kernel's events about one Child SA, found by the core from its inbound SPI: an expiry
// (XFRM_MSG_EXPIRE) starts its rekey when soft and, when hard, removes it and negotiates a
// successor; a NAT mapping change (XFRM_MSG_MAPPING) moves the IKE SA to the peer's new endpoint
// (RFC 7296 §2.23). Both run in the IKE SA's queue.
import type { Endpoint } from '../ports.js';
import type { EngineHost } from './host.js';
import type { ChildSa, IkeSa } from './ike-sa.js';
import { removeChild } from './lifecycle.js';
import { followPeer } from './responder.js';
import { queueTask } from './tasks.js';

export function childExpired(e: EngineHost, sa: IkeSa, c: ChildSa, hard: boolean): void {
  void e.enqueue(sa, async () => {
    if (!hard) { if (c.state.tag === 'installed') queueTask(e, sa, { kind: 'child-rekey', old: c }); return; }
    await removeChild(e, sa, c, 'hard-lifetime');
    if (sa.state.tag === 'established') {
      queueTask(e, sa, { kind: 'child-delete', child: c, reason: 'hard-lifetime' });
      if (!sa.peer.terminated) queueTask(e, sa, { kind: 'child-create', child: c.runtime });
    }
  });
}

export function natMappingChanged(e: EngineHost, sa: IkeSa, c: ChildSa, from: Endpoint): void {
  const moved = (): boolean => sa.remote.address === from.address && sa.remote.port === from.port;
  // The kernel reports every such packet until the SA moves: most of them find it moved.
  if (moved()) return;
  void e.enqueue(sa, async () => {
    // §2.23: only the side facing a NAT follows (as strongSwan: the peer must be behind one).
    if (sa.state.tag !== 'established' || !sa.natRemote || c.state.tag === 'deleted') { e.drop('mapping-ignored'); return; }
    if (moved()) return;
    sa.remote = from;
    await followPeer(e, sa);
    e.persistPeer(sa.peer.config.name);
  });
}
