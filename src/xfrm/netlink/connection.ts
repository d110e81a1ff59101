// Request/response over a NetlinkTransport: sequence numbers, ACKs, NLMSG_ERROR → errno,
// multipart dumps (NLM_F_MULTI … NLMSG_DONE), interrupted dumps, timeouts. Messages that
// match no outstanding request (multicast events) go to the event listener.
//
// Use one connection for requests and a separate one for multicast events: the kernel's
// notifications about our own changes carry our seq and port id, so on a shared socket they
// would be indistinguishable from replies (strongSwan keeps two sockets for the same reason).
import { Reader, Writer } from '../../common/bytes.js';
import { ParseError } from '../../common/errors.js';
import { systemClock, type Clock, type TimerHandle } from '../../common/time.js';
import { getI32 } from '../structs/host.js';
import { parseAttrs, attrString } from './attr.js';
import {
  NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
  NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLMSGERR_ATTR_MSG, nlAlign,
} from './constants.js';
import { NetlinkClosedError, NetlinkDumpInterruptedError, NetlinkErrnoError, NetlinkTimeoutError } from './errors.js';
import { appendNlmsg, buildNlmsg, NLMSG_HDRLEN, splitNlmsgs, type NlMessage } from './nlmsghdr.js';
import type { NetlinkTransport } from './transport.js';

type Body = (w: Writer) => void;

const NO_TIMER: TimerHandle = { cancel: () => { /* batch requests share one timer */ } };

interface Pending {
  readonly type: number;
  readonly kind: 'ack' | 'reply' | 'dump';
  readonly msgs: NlMessage[];
  interrupted: boolean;
  readonly timer: TimerHandle;
  resolve(msgs: NlMessage[]): void;
  reject(e: Error): void;
}

export interface ConnectionOptions {
  readonly clock?: Clock;
  /** Per-request timeout (default 15 s). The kernel answers in microseconds, except when a new
   *  algorithm makes it load and self-test a crypto module (seconds under emulation); this only catches lost replies. */
  readonly timeoutMs?: number;
  /** How often to repeat a dump that came back with NLM_F_DUMP_INTR. */
  readonly dumpRetries?: number;
  /** Unanswered requests allowed in ackBatch (receive-buffer flow control), default 128. */
  readonly maxInFlight?: number;
}

/** struct nlmsgerr { int error; struct nlmsghdr msg; } + optional extended-ACK TLVs. */
export interface NlmsgErr { readonly error: number; readonly extack: string | undefined }

export function decodeNlmsgerr(m: NlMessage): NlmsgErr {
  const r = new Reader(m.payload);
  const error = getI32(r, 'nlmsgerr.error');
  let extack: string | undefined;
  if (m.hdr.nlmsg_flags & NLM_F_ACK_TLVS && r.remaining >= NLMSG_HDRLEN) {
    // The echoed request is the header only when CAPPED, else the whole request.
    const echoedLen = new Reader(m.payload, 4, 8).u32le();
    const skip = m.hdr.nlmsg_flags & NLM_F_CAPPED ? NLMSG_HDRLEN : nlAlign(echoedLen);
    if (4 + skip <= m.payload.length)
      for (const a of parseAttrs(m.payload.subarray(4 + skip))) if (a.type === NLMSGERR_ATTR_MSG) extack = attrString(a);
  }
  return { error, extack };
}

export class NetlinkConnection {
  readonly #t: NetlinkTransport;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #dumpRetries: number;
  readonly #maxInFlight: number;
  readonly #pending = new Map<number, Pending>();
  #seq: number;
  #closed = false;
  #subscribed = false;
  #refd = false;
  #onEvent: ((m: NlMessage) => void) | undefined;
  #onError: ((e: Error) => void) | undefined;

  constructor(transport: NetlinkTransport, opts: ConnectionOptions = {}) {
    this.#t = transport;
    this.#clock = opts.clock ?? systemClock;
    this.#timeoutMs = opts.timeoutMs ?? 15_000;
    this.#dumpRetries = opts.dumpRetries ?? 3;
    this.#maxInFlight = opts.maxInFlight ?? 128;
    this.#seq = (this.#clock.now() & 0x7fffffff) || 1;
    transport.setReceiver((d) => this.#receive(d), (e) => this.#fail(e));
  }

  get portId(): number { return this.#t.portId; }

  /** Listener for messages that answer no request (multicast notifications). */
  onEvent(fn: (m: NlMessage) => void): void { this.#onEvent = fn; }
  /** Listener for socket-level failures (ENOBUFS overflow, truncation, parse errors). */
  onError(fn: (e: Error) => void): void { this.#onError = fn; }

  subscribe(group: number): void {
    this.#t.addMembership(group);
    this.#subscribed = true;
    this.#t.setRef(true);
  }

  /** Keep the event loop alive exactly while replies are awaited (or events are subscribed). */
  #updateRef(): void {
    const want = this.#subscribed || this.#pending.size > 0;
    if (want !== this.#refd && !this.#closed) { this.#refd = want; this.#t.setRef(want); }
  }

  /** NEW/UPD/DEL/FLUSH: request with NLM_F_ACK; resolves on the zero-errno ACK. */
  async ack(type: number, flags: number, body: Body): Promise<void> {
    await this.#request(type, NLM_F_REQUEST | NLM_F_ACK | flags, 'ack', body);
  }

  /** GET/ALLOCSPI: resolves with the single reply message. */
  async get(type: number, flags: number, body: Body): Promise<NlMessage> {
    const [m] = await this.#request(type, NLM_F_REQUEST | flags, 'reply', body);
    return m!;
  }

  /** Dump: every message up to NLMSG_DONE; repeats the dump when the kernel flags it interrupted. */
  async dump(type: number, body: Body): Promise<NlMessage[]> {
    for (let attempt = 0; attempt <= this.#dumpRetries; attempt++) {
      const p = this.#request(type, NLM_F_REQUEST | NLM_F_DUMP, 'dump', body);
      const msgs = await p.catch((e: unknown) => {
        if (e instanceof NetlinkDumpInterruptedError) return null;
        throw e;
      });
      if (msgs) return msgs;
    }
    throw new NetlinkDumpInterruptedError(type);
  }

  /**
   * Many requests packed into few datagrams (the kernel walks every message of a datagram, like
   * `ip -batch`) and pipelined. Requests go without NLM_F_ACK: the kernel still answers every
   * failure with NLMSG_ERROR, and each datagram ends with an NLMSG_NOOP carrying NLM_F_ACK as a
   * barrier — netlink handles one socket's messages in order, so when the barrier's ACK arrives,
   * every request before it that drew no error succeeded. That saves one ACK (and one wake-up
   * of this process) per request. At most `maxInFlight` requests are unanswered at a time: flow
   * control for our receive buffer (errors echo the request; a kernel with the default
   * rmem_max of 208 KiB would drop them with ENOBUFS). Resolves with one result per request,
   * in order; it never rejects for a single failed request.
   */
  async ackBatch(
    reqs: readonly { readonly type: number; readonly flags?: number; readonly body: Body }[],
    opts: { readonly maxDatagram?: number; readonly maxInFlight?: number } = {},
  ): Promise<(Error | null)[]> {
    const maxDatagram = opts.maxDatagram ?? 32 << 10;
    const maxInFlight = Math.max(2, opts.maxInFlight ?? this.#maxInFlight);
    const perDatagram = Math.floor(maxInFlight / 2);
    const results: Promise<Error | null>[] = [];
    const seqs: number[] = [];
    // One timer for the whole batch (thousands of timers would cost more than the requests).
    const batchTimer = this.#clock.setTimer(this.#timeoutMs + reqs.length, () => {
      for (const seq of seqs) {
        const p = this.#pending.get(seq);
        if (p) this.#settle(seq, p, new NetlinkTimeoutError(p.type, seq, this.#timeoutMs));
      }
    });
    let inFlight = 0;
    let wake: (() => void) | null = null;
    let w = new Writer(maxDatagram + 4096);
    let group: number[] = [];
    const flush = (): void => {
      if (!group.length) return;
      const members = group;
      const barrier = this.#nextSeq();
      appendNlmsg(w, NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, barrier, this.#t.portId, () => { /* empty */ });
      seqs.push(barrier);
      void this.#expect(NLMSG_NOOP, barrier, 'ack', false).then(() => null, (e: unknown) => e as Error).then((err) => {
        // Requests the kernel did not complain about before the barrier succeeded (or share the barrier's failure).
        for (const seq of members) {
          const p = this.#pending.get(seq);
          if (p) this.#settle(seq, p, err);
        }
        inFlight -= members.length;
        if (wake && inFlight <= perDatagram) { const f = wake; wake = null; f(); }
      });
      const d = w.finish();
      w = new Writer(maxDatagram + 4096);
      group = [];
      try { this.#t.send(d); } catch (e) { this.#fail(e as Error); }
    };
    for (const q of reqs) {
      if (this.#closed) { results.push(Promise.resolve(new NetlinkClosedError(`cannot send type ${q.type}`))); continue; }
      if (inFlight >= maxInFlight) {
        flush();
        await new Promise<void>((r) => { wake = r; });
      }
      const seq = this.#nextSeq();
      const before = w.length;
      appendNlmsg(w, q.type, NLM_F_REQUEST | (q.flags ?? 0), seq, this.#t.portId, q.body);
      if (w.length + 32 > maxDatagram && group.length > 0) {
        // Move the message that overflowed into the next datagram.
        const all = w.finish();
        const msg = all.slice(nlAlign(before));
        w = new Writer(maxDatagram + 4096);
        w.bytes(all.subarray(0, before));
        flush();
        w.bytes(msg);
      }
      group.push(seq);
      inFlight++;
      seqs.push(seq);
      results.push(this.#expect(q.type, seq, 'ack', false).then(() => null, (e: unknown) => e as Error));
      if (group.length >= perDatagram) flush();
    }
    flush();
    const out = await Promise.all(results);
    batchTimer.cancel();
    return out;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#t.close();
    this.#fail(new NetlinkClosedError('closed while requests were outstanding'));
  }

  #request(type: number, flags: number, kind: Pending['kind'], body: Body): Promise<NlMessage[]> {
    if (this.#closed) return Promise.reject(new NetlinkClosedError(`cannot send type ${type}`));
    const seq = this.#nextSeq();
    const msg = buildNlmsg(type, flags, seq, this.#t.portId, body);
    const p = this.#expect(type, seq, kind);
    try { this.#t.send(msg); } catch (e) { const q = this.#pending.get(seq); if (q) this.#settle(seq, q, e as Error); }
    return p;
  }

  #expect(type: number, seq: number, kind: Pending['kind'], ownTimer = true): Promise<NlMessage[]> {
    return new Promise<NlMessage[]>((resolve, reject) => {
      const timer = ownTimer ? this.#clock.setTimer(this.#timeoutMs, () => {
        this.#pending.delete(seq);
        this.#updateRef();
        reject(new NetlinkTimeoutError(type, seq, this.#timeoutMs));
      }) : NO_TIMER;
      this.#pending.set(seq, { type, kind, msgs: [], interrupted: false, timer, resolve, reject });
      this.#updateRef();
    });
  }

  #nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0 || 1;
    return this.#seq;
  }

  #receive(datagram: Uint8Array): void {
    let msgs: NlMessage[];
    try { msgs = splitNlmsgs(datagram); } catch (e) { this.#onError?.(e as ParseError); return; }
    for (const m of msgs) this.#dispatch(m);
  }

  #dispatch(m: NlMessage): void {
    const seq = m.hdr.nlmsg_seq;
    const p = m.hdr.nlmsg_pid === this.#t.portId ? this.#pending.get(seq) : undefined;
    if (!p) {
      if (m.hdr.nlmsg_type !== NLMSG_NOOP && m.hdr.nlmsg_type !== NLMSG_DONE) this.#onEvent?.(m);
      return;
    }
    const type = m.hdr.nlmsg_type;
    if (type === NLMSG_NOOP || type === NLMSG_OVERRUN) return;
    if (m.hdr.nlmsg_flags & NLM_F_DUMP_INTR) p.interrupted = true;
    if (type === NLMSG_ERROR) {
      let err: NlmsgErr;
      try { err = decodeNlmsgerr(m); } catch (e) { return this.#settle(seq, p, e as Error); }
      if (err.error === 0) return this.#settle(seq, p, null);
      return this.#settle(seq, p, new NetlinkErrnoError(err.error, p.type, err.extack));
    }
    if (type === NLMSG_DONE) {
      return this.#settle(seq, p, p.interrupted ? new NetlinkDumpInterruptedError(p.type) : null);
    }
    p.msgs.push(m);
    if (p.kind === 'reply') this.#settle(seq, p, null);
  }

  #settle(seq: number, p: Pending, err: Error | null): void {
    this.#pending.delete(seq);
    this.#updateRef();
    p.timer.cancel();
    if (err) p.reject(err); else p.resolve(p.msgs);
  }

  #fail(e: Error): void {
    if (this.#pending.size === 0) { this.#onError?.(e); return; }
    for (const [seq, p] of [...this.#pending]) this.#settle(seq, p, e);
    this.#onError?.(e);
  }
}
