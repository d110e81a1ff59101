// Public surface of src/xfrm: the client, specs, events, errors, and the native addon loader.
export { XfrmClient, type AllocSpiRequest, type SaAe, type SetAe, type XfrmClientOptions } from './client.js';
export type { SaSpec, SaId, SaState, SaLimits, AeadAlg, CryptAlg, AuthAlg, Encap, Mark, IpsecProto, SaMode } from './sa.js';
export type { PolicySpec, PolicyId, PolicyState, PolicyTemplate, PolicyDir, PolicyAction } from './policy.js';
export type { TrafficSelector } from './selector.js';
export type { ChildInstall, ChildSa, InstalledChild } from './install.js';
export type { XfrmEvent, XfrmEventGroup, XfrmEvents } from './events.js';
export * from './errors.js';
export { NetlinkErrnoError, NetlinkTimeoutError, NetlinkClosedError, NetlinkSocketError } from './netlink/errors.js';
export { RtnlClient, type XfrmInterfaceSpec, type RouteSpec, type RuleSpec, type LinkInfo } from './rtnl/client.js';
export { setUdpEncap, setIpsecBypass, openTun, loadNative, dgramFd, NativeError, type KipsecNative } from './native.js';
export { openXfrmEvents, decodeXfrmEvent } from './events.js';
