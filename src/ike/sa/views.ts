// What the exchange steps read of an IKE SA record, built by the drivers from the state that
// holds the keys, so a step that derives keys is only ever handed an SA that has them.
import type { ChildIkeView } from '../exchanges/child-sa.js';
import type { ResponderIkeView } from '../steps/child-responder.js';
import type { IkeSa, PreAuthKeyed } from './ike-sa.js';
import type { KeyedIkeSa } from './ike-keys.js';

/** The Child SA steps' view of an IKE SA that is up (CREATE_CHILD_SA: no IKE_SA_INIT nonces). */
export function childIkeView(sa: KeyedIkeSa): ResponderIkeView {
  return {
    peer: sa.peer, keys: sa.state.keyed.keys, local: sa.local, remote: sa.remote, natLocal: sa.natLocal, natRemote: sa.natRemote,
    init: null, role: sa.role, state: sa.state, children: sa.children, followup: sa.followup, outstanding: sa.outstanding,
  };
}

/** IKE_AUTH's view of an IKE SA: the keys and nonces of IKE_SA_INIT (and IKE_INTERMEDIATE) for its first Child SA. */
export function authIkeView(sa: IkeSa, keyed: PreAuthKeyed): ChildIkeView {
  return {
    peer: sa.peer, keys: keyed.keys, local: sa.local, remote: sa.remote, natLocal: sa.natLocal, natRemote: sa.natRemote,
    init: { ni: keyed.ni, nr: keyed.nr }, role: sa.role,
  };
}
