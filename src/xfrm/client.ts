// XfrmClient: the friendly API over XFRM netlink. SAs and policies go in as SaSpec/PolicySpec,
// come back as SaState/PolicyState; kernel refusals become typed errors naming the object.
// Wire structs live in structs/, message framing in messages.ts; this file only composes.
import { Writer } from '../common/bytes.js';
import { KipsecError } from '../common/errors.js';
import type { Clock } from '../common/time.js';
import { attr, findAttr, type XfrmAttr } from './attrs.js';
import * as C from './constants.js';
import { xfrmError, type XfrmTarget } from './errors.js';
import { decodeXfrmMessage, encodeXfrmPayload, type XfrmBody } from './messages.js';
import { NetlinkConnection } from './netlink/connection.js';
import { NETLINK_XFRM } from './netlink/constants.js';
import type { NlMessage } from './netlink/nlmsghdr.js';
import { RawNetlinkTransport } from './netlink/raw-transport.js';
import type { NetlinkTransport } from './netlink/transport.js';
import { decodePolicy, encodePolicy, encodePolicyId, type PolicyId, type PolicySpec, type PolicyState } from './policy.js';
import { decodeSa, encodeSa, MODE_NUMBER, PROTO_NUMBER, type IpsecProto, type Mark, type SaId, type SaMode, type SaSpec, type SaState } from './sa.js';
import { addressBytes, familyOf, ZERO_ADDRESS } from './structs/address.js';
import { LIFETIME_CFG_UNLIMITED } from './structs/lifetime-cfg.js';

// ALLOCSPI ignores lifetimes (the larval SA gets the kernel's acquire timeout); zeros as iproute2 sends.
const LIFETIME_CFG_ZERO = { ...LIFETIME_CFG_UNLIMITED, soft_byte_limit: 0n, hard_byte_limit: 0n, soft_packet_limit: 0n, hard_packet_limit: 0n };
import { LIFETIME_CUR_ZERO, type XfrmLifetimeCur } from './structs/lifetime-cur.js';
import type { XfrmReplayStateEsn } from './structs/replay-state-esn.js';
import type { XfrmReplayState } from './structs/replay-state.js';
import { EMPTY_SELECTOR } from './structs/selector.js';
import { STATS_ZERO } from './structs/stats.js';
import { IPSEC_PROTO_ANY } from './structs/usersa-flush.js';
import type { XfrmUsersaId } from './structs/usersa-id.js';
import { installChild, removeChild, type ChildInstall, type InstalledChild, type XfrmBatchOp } from './install.js';
import { openXfrmEvents, type XfrmEventGroup, type XfrmEventHandler, type XfrmEvents } from './events.js';

export interface XfrmClientOptions {
  readonly clock?: Clock;
  readonly timeoutMs?: number;
  /** Opens the transport for event subscriptions (tests inject a fake). */
  readonly eventTransport?: () => NetlinkTransport;
}

export interface AllocSpiRequest {
  readonly src: string;
  readonly dst: string;
  readonly proto?: IpsecProto;
  readonly mode?: SaMode;
  readonly reqid?: number;
  /** Range the kernel picks from; IKE implementations use 0xc0000000..0xcfffffff or similar. */
  readonly min?: number;
  readonly max?: number;
  readonly mark?: Mark;
  readonly ifId?: number;
  /** The ACQUIRE seq this SPI answers. */
  readonly acquireSeq?: number;
}

/** XFRM_MSG_GETAE answer: replay state and current lifetime (bytes/packets) of one SA. */
export interface SaAe {
  readonly current: XfrmLifetimeCur | undefined;
  readonly replay: XfrmReplayState | undefined;
  readonly replayEsn: XfrmReplayStateEsn | undefined;
  readonly replayThresh: number | undefined;
  readonly etimerThresh: number | undefined;
}

export interface SetAe {
  readonly replay?: XfrmReplayState;
  readonly replayEsn?: XfrmReplayStateEsn;
  readonly current?: XfrmLifetimeCur;
  readonly replayThresh?: number;
  readonly etimerThresh?: number;
}

function saTarget(id: { src?: string | undefined; dst: string; spi: number; proto?: IpsecProto | undefined }): XfrmTarget {
  return { kind: 'sa', dst: id.dst, spi: id.spi, ...(id.src ? { src: id.src } : {}), ...(id.proto ? { proto: id.proto } : {}) };
}
function policyTarget(p: PolicyId): XfrmTarget { return { kind: 'policy', selector: p.selector, dir: p.dir }; }

function usersaId(id: SaId): XfrmUsersaId {
  return { daddr: addressBytes(id.dst), spi: id.spi, family: familyOf(id.dst), proto: PROTO_NUMBER[id.proto ?? 'esp'] };
}
function saIdAttrs(id: SaId): XfrmAttr[] {
  const a: XfrmAttr[] = [];
  if (id.src) a.push(attr('XFRMA_SRCADDR', addressBytes(id.src)));
  if (id.mark) a.push(attr('XFRMA_MARK', { v: id.mark.value, m: id.mark.mask ?? 0xffffffff }));
  return a;
}

const payload = (body: XfrmBody, attrs: readonly XfrmAttr[] = []) => (w: Writer): void => { encodeXfrmPayload(w, body, attrs); };

export class XfrmClient {
  readonly #conn: NetlinkConnection;
  readonly #opts: XfrmClientOptions;

  constructor(transport: NetlinkTransport, opts: XfrmClientOptions = {}) {
    this.#conn = new NetlinkConnection(transport, { ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
    this.#opts = opts;
  }

  /** A client on a real NETLINK_XFRM socket in the current network namespace. */
  static open(opts: XfrmClientOptions = {}): XfrmClient {
    return new XfrmClient(new RawNetlinkTransport(NETLINK_XFRM), opts);
  }

  get connection(): NetlinkConnection { return this.#conn; }

  close(): void { this.#conn.close(); }

  // --- SAs -----------------------------------------------------------------------------------

  async addSa(sa: SaSpec): Promise<void> { await this.#putSa(C.XFRM_MSG_NEWSA, 'add', sa); }
  /** UPDSA: replace an SA, notably the larval SA ALLOCSPI created for an inbound SPI. */
  async updateSa(sa: SaSpec): Promise<void> { await this.#putSa(C.XFRM_MSG_UPDSA, 'update', sa); }

  async #putSa(type: number, op: string, sa: SaSpec): Promise<void> {
    const { info, attrs } = encodeSa(sa);
    try { await this.#conn.ack(type, 0, payload({ struct: 'xfrm_usersa_info', value: info }, attrs)); } catch (e) { throw xfrmError(e, op, saTarget(sa)); }
  }

  /** Many SAs pipelined in few datagrams; one result (null = installed) per SA. */
  async addSas(sas: readonly SaSpec[], update = false): Promise<(Error | null)[]> {
    const type = update ? C.XFRM_MSG_UPDSA : C.XFRM_MSG_NEWSA;
    const res = await this.#conn.ackBatch(sas.map((sa) => {
      const { info, attrs } = encodeSa(sa);
      return { type, body: payload({ struct: 'xfrm_usersa_info', value: info }, attrs) };
    }));
    return res.map((e, i) => (e ? (xfrmError(e, update ? 'update' : 'add', saTarget(sas[i]!)) as Error) : null));
  }

  async deleteSa(id: SaId): Promise<void> {
    try {
      await this.#conn.ack(C.XFRM_MSG_DELSA, 0, payload({ struct: 'xfrm_usersa_id', value: usersaId(id) }, saIdAttrs(id)));
    } catch (e) { throw xfrmError(e, 'delete', saTarget(id)); }
  }

  async getSa(id: SaId): Promise<SaState> {
    let m: NlMessage;
    try {
      m = await this.#conn.get(C.XFRM_MSG_GETSA, 0, payload({ struct: 'xfrm_usersa_id', value: usersaId(id) }, saIdAttrs(id)));
    } catch (e) { throw xfrmError(e, 'get', saTarget(id)); }
    return this.#saFrom(m);
  }

  async listSas(filter: { proto?: IpsecProto } = {}): Promise<SaState[]> {
    const msgs = await this.#conn.dump(C.XFRM_MSG_GETSA, () => { /* empty body: every SA */ });
    const out = msgs.filter((m) => m.hdr.nlmsg_type === C.XFRM_MSG_NEWSA).map((m) => this.#saFrom(m));
    return filter.proto ? out.filter((s) => (s.proto ?? 'esp') === filter.proto) : out;
  }

  #saFrom(m: NlMessage): SaState {
    const d = decodeXfrmMessage(m.hdr.nlmsg_type, m.payload);
    if (d.body.struct !== 'xfrm_usersa_info') throw new KipsecError('ERR_XFRM_UNEXPECTED', `expected an SA, got message type ${m.hdr.nlmsg_type}`);
    return decodeSa(d.body.value, d.attrs);
  }

  /** XFRM_MSG_ALLOCSPI: the kernel picks a free SPI in [min, max] and holds it in a larval SA (install with updateSa). */
  async allocSpi(q: AllocSpiRequest): Promise<number> {
    const family = familyOf(q.dst);
    const attrs: XfrmAttr[] = [];
    if (q.mark) attrs.push(attr('XFRMA_MARK', { v: q.mark.value, m: q.mark.mask ?? 0xffffffff }));
    if (q.ifId !== undefined) attrs.push(attr('XFRMA_IF_ID', q.ifId));
    const body: XfrmBody = {
      struct: 'xfrm_userspi_info',
      value: {
        info: {
          sel: EMPTY_SELECTOR, id: { daddr: addressBytes(q.dst), spi: 0, proto: PROTO_NUMBER[q.proto ?? 'esp'] },
          saddr: addressBytes(q.src), lft: LIFETIME_CFG_ZERO, curlft: LIFETIME_CUR_ZERO, stats: STATS_ZERO,
          seq: q.acquireSeq ?? 0, reqid: q.reqid ?? 0, family, mode: MODE_NUMBER[q.mode ?? 'tunnel'], replay_window: 0, flags: 0,
        },
        min: q.min ?? 0xc0000000, max: q.max ?? 0xcfffffff,
      },
    };
    try {
      const m = await this.#conn.get(C.XFRM_MSG_ALLOCSPI, 0, payload(body, attrs));
      return this.#saFrom(m).spi;
    } catch (e) { throw xfrmError(e, 'allocate SPI', { kind: 'other', text: `SPI for ${q.src} → ${q.dst}` }); }
  }

  /** XFRM_MSG_FLUSHSA for one protocol (default ESP). Tests only: the agent never flushes on restart. */
  async flushSas(proto: IpsecProto | 'any' = 'esp'): Promise<void> {
    const p = proto === 'any' ? IPSEC_PROTO_ANY : PROTO_NUMBER[proto];
    try { await this.#conn.ack(C.XFRM_MSG_FLUSHSA, 0, payload({ struct: 'xfrm_usersa_flush', value: { proto: p } })); } catch (e) { throw xfrmError(e, 'flush SAs', { kind: 'other', text: proto }); }
  }

  // --- SA counters and replay state (XFRM_MSG_GETAE / NEWAE) ---------------------------------

  async getAe(id: SaId & { src: string; reqid?: number }): Promise<SaAe> {
    const body: XfrmBody = { struct: 'xfrm_aevent_id', value: { sa_id: usersaId(id), saddr: addressBytes(id.src), flags: C.XFRM_AE_RVAL | C.XFRM_AE_LVAL, reqid: id.reqid ?? 0 } };
    const attrs: XfrmAttr[] = id.mark ? [attr('XFRMA_MARK', { v: id.mark.value, m: id.mark.mask ?? 0xffffffff })] : [];
    let m: NlMessage;
    try { m = await this.#conn.get(C.XFRM_MSG_GETAE, 0, payload(body, attrs)); } catch (e) { throw xfrmError(e, 'get counters of', saTarget(id)); }
    const d = decodeXfrmMessage(m.hdr.nlmsg_type, m.payload);
    return {
      current: findAttr(d.attrs, 'XFRMA_LTIME_VAL'), replay: findAttr(d.attrs, 'XFRMA_REPLAY_VAL'),
      replayEsn: findAttr(d.attrs, 'XFRMA_REPLAY_ESN_VAL'), replayThresh: findAttr(d.attrs, 'XFRMA_REPLAY_THRESH'),
      etimerThresh: findAttr(d.attrs, 'XFRMA_ETIMER_THRESH'),
    };
  }

  /** XFRM_MSG_NEWAE (needs NLM_F_REPLACE): set replay counters/thresholds, e.g. to restore state. */
  async setAe(id: SaId & { src: string; reqid?: number }, v: SetAe): Promise<void> {
    const body: XfrmBody = { struct: 'xfrm_aevent_id', value: { sa_id: usersaId(id), saddr: addressBytes(id.src), flags: 0, reqid: id.reqid ?? 0 } };
    const attrs: XfrmAttr[] = [];
    if (v.replay) attrs.push(attr('XFRMA_REPLAY_VAL', v.replay));
    if (v.replayEsn) attrs.push(attr('XFRMA_REPLAY_ESN_VAL', v.replayEsn));
    if (v.current) attrs.push(attr('XFRMA_LTIME_VAL', v.current));
    if (v.replayThresh !== undefined) attrs.push(attr('XFRMA_REPLAY_THRESH', v.replayThresh));
    if (v.etimerThresh !== undefined) attrs.push(attr('XFRMA_ETIMER_THRESH', v.etimerThresh));
    if (id.mark) attrs.push(attr('XFRMA_MARK', { v: id.mark.value, m: id.mark.mask ?? 0xffffffff }));
    try { await this.#conn.ack(C.XFRM_MSG_NEWAE, 0x100 /* NLM_F_REPLACE */, payload(body, attrs)); } catch (e) { throw xfrmError(e, 'set replay state of', saTarget(id)); }
  }

  // --- Policies ------------------------------------------------------------------------------

  async addPolicy(p: PolicySpec): Promise<void> { await this.#putPolicy(C.XFRM_MSG_NEWPOLICY, 'add', p); }
  async updatePolicy(p: PolicySpec): Promise<void> { await this.#putPolicy(C.XFRM_MSG_UPDPOLICY, 'update', p); }

  async #putPolicy(type: number, op: string, p: PolicySpec): Promise<void> {
    const { info, attrs } = encodePolicy(p);
    try { await this.#conn.ack(type, 0, payload({ struct: 'xfrm_userpolicy_info', value: info }, attrs)); } catch (e) { throw xfrmError(e, op, policyTarget(p)); }
  }

  async addPolicies(ps: readonly PolicySpec[], update = false): Promise<(Error | null)[]> {
    const type = update ? C.XFRM_MSG_UPDPOLICY : C.XFRM_MSG_NEWPOLICY;
    const res = await this.#conn.ackBatch(ps.map((p) => {
      const { info, attrs } = encodePolicy(p);
      return { type, body: payload({ struct: 'xfrm_userpolicy_info', value: info }, attrs) };
    }));
    return res.map((e, i) => (e ? (xfrmError(e, update ? 'update' : 'add', policyTarget(ps[i]!)) as Error) : null));
  }

  async deletePolicy(id: PolicyId): Promise<void> {
    const { body, attrs } = encodePolicyId(id);
    try { await this.#conn.ack(C.XFRM_MSG_DELPOLICY, 0, payload({ struct: 'xfrm_userpolicy_id', value: body }, attrs)); } catch (e) { throw xfrmError(e, 'delete', policyTarget(id)); }
  }

  async getPolicy(id: PolicyId): Promise<PolicyState> {
    const { body, attrs } = encodePolicyId(id);
    let m: NlMessage;
    try { m = await this.#conn.get(C.XFRM_MSG_GETPOLICY, 0, payload({ struct: 'xfrm_userpolicy_id', value: body }, attrs)); } catch (e) { throw xfrmError(e, 'get', policyTarget(id)); }
    return this.#policyFrom(m);
  }

  async listPolicies(): Promise<PolicyState[]> {
    const msgs = await this.#conn.dump(C.XFRM_MSG_GETPOLICY, () => { /* empty body: every policy */ });
    return msgs.filter((m) => m.hdr.nlmsg_type === C.XFRM_MSG_NEWPOLICY).map((m) => this.#policyFrom(m));
  }

  #policyFrom(m: NlMessage): PolicyState {
    const d = decodeXfrmMessage(m.hdr.nlmsg_type, m.payload);
    if (d.body.struct !== 'xfrm_userpolicy_info') throw new KipsecError('ERR_XFRM_UNEXPECTED', `expected a policy, got message type ${m.hdr.nlmsg_type}`);
    return decodePolicy(d.body.value, d.attrs);
  }

  /** XFRM_MSG_FLUSHPOLICY of the main policy type. Tests only. */
  async flushPolicies(): Promise<void> {
    try { await this.#conn.ack(C.XFRM_MSG_FLUSHPOLICY, 0, () => { /* no body */ }); } catch (e) { throw xfrmError(e, 'flush policies', { kind: 'other', text: 'all' }); }
  }

  /**
   * Mixed requests pipelined in order (NetlinkConnection.ackBatch): one typed result per request,
   * null when the kernel applied it. A Child SA install or removal is one or two datagrams.
   */
  async batch(ops: readonly XfrmBatchOp[]): Promise<(Error | null)[]> {
    const reqs = ops.map((o) => {
      switch (o.op) {
        case 'add-sa': case 'update-sa': {
          const { info, attrs } = encodeSa(o.sa);
          return { type: o.op === 'add-sa' ? C.XFRM_MSG_NEWSA : C.XFRM_MSG_UPDSA, body: payload({ struct: 'xfrm_usersa_info', value: info }, attrs), what: o.op === 'add-sa' ? 'add' : 'update', target: saTarget(o.sa) };
        }
        case 'delete-sa':
          return { type: C.XFRM_MSG_DELSA, body: payload({ struct: 'xfrm_usersa_id', value: usersaId(o.id) }, saIdAttrs(o.id)), what: 'delete', target: saTarget(o.id) };
        case 'add-policy': {
          const { info, attrs } = encodePolicy(o.policy);
          return { type: C.XFRM_MSG_NEWPOLICY, body: payload({ struct: 'xfrm_userpolicy_info', value: info }, attrs), what: 'add', target: policyTarget(o.policy) };
        }
        case 'delete-policy': {
          const { body, attrs } = encodePolicyId(o.id);
          return { type: C.XFRM_MSG_DELPOLICY, body: payload({ struct: 'xfrm_userpolicy_id', value: body }, attrs), what: 'delete', target: policyTarget(o.id) };
        }
      }
    });
    if (reqs.length === 0) return [];
    const res = await this.#conn.ackBatch(reqs.map(({ type, body }) => ({ type, body })));
    return res.map((e, i) => (e ? (xfrmError(e, reqs[i]!.what, reqs[i]!.target) as Error) : null));
  }

  // --- Composite operations and events -------------------------------------------------------

  /** Install SAs then policies; on any failure remove what this call added and throw XfrmInstallError. */
  installChild(c: ChildInstall): Promise<InstalledChild> { return installChild(this, c); }
  /** Remove an installed child (policies first so no packet leaves in clear, then SAs). */
  removeChild(c: InstalledChild): Promise<void> { return removeChild(this, c); }

  /** Subscribe to XFRMNLGRP_* multicast groups on a separate socket. */
  events(groups: readonly XfrmEventGroup[], handler: XfrmEventHandler): XfrmEvents {
    return openXfrmEvents(this.#opts.eventTransport?.() ?? new RawNetlinkTransport(NETLINK_XFRM), groups, handler);
  }
}

export { ZERO_ADDRESS };
