// The IKE sockets: UDP 500 and 4500 (RFC 7296 §2.23, RFC 3948) on each local address the config
// names. Sockets are per address rather than wildcard because Node cannot read IP_PKTINFO, and
// the engine must know which of our addresses a message reached. On 4500 IKE travels behind the
// 4-byte non-ESP marker, a lone 0xFF is a NAT keepalive, and anything else is ESP-in-UDP that the
// kernel should have taken (UDP_ENCAP) — it is counted and dropped. Every datagram handler is
// wrapped so a bad packet can never throw out of the socket callback (DESIGN.md §9).
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { KipsecError, errorMessage } from '../common/errors.js';
import { classifyPort4500, withNonEspMarker } from '../ike/codec/natt.js';
import type { Logger } from './log.js';
import type { SocketTuning } from './native.js';

export interface Endpoint { readonly address: string; readonly port: number }

export interface Datagram {
  readonly data: Uint8Array;
  readonly local: Endpoint;
  readonly remote: Endpoint;
}

export type DatagramHandler = (d: Datagram) => void;

export interface UdpCounters {
  received: number;
  sent: number;
  keepalivesIn: number;
  keepalivesOut: number;
  espInUdpDropped: number;
  invalid: number;
  sendErrors: number;
}

/** Largest datagram we accept; IKE fragmentation keeps legitimate messages well below. */
export const MAX_DATAGRAM = 65_535;

interface Pair { readonly ike: Socket; readonly natt: Socket }

/** What the agent needs from its IKE sockets (IkeSockets; an in-memory fake in unit tests). */
export interface DatagramSockets {
  readonly ikePort: number;
  readonly nattPort: number;
  readonly counters: UdpCounters;
  onDatagram(h: DatagramHandler): void;
  bind(addresses: readonly string[]): Promise<void>;
  send(data: Uint8Array, local: Endpoint, remote: Endpoint): void;
  keepalive(localAddress: string, remote: Endpoint): void;
  close(): void;
}

export class IkeSockets implements DatagramSockets {
  readonly ikePort: number;
  readonly nattPort: number;
  readonly counters: UdpCounters = { received: 0, sent: 0, keepalivesIn: 0, keepalivesOut: 0, espInUdpDropped: 0, invalid: 0, sendErrors: 0 };
  readonly #pairs = new Map<string, Pair>();
  readonly #log: Logger;
  readonly #tuning: SocketTuning;
  #handler: DatagramHandler = () => { /* set by the agent */ };

  constructor(opts: { ikePort: number; nattPort: number; log: Logger; tuning: SocketTuning }) {
    this.ikePort = opts.ikePort;
    this.nattPort = opts.nattPort;
    this.#log = opts.log;
    this.#tuning = opts.tuning;
  }

  onDatagram(h: DatagramHandler): void { this.#handler = h; }

  get addresses(): string[] { return [...this.#pairs.keys()]; }

  /** Bind 500 and 4500 on each address not bound yet; close those no longer wanted. */
  async bind(addresses: readonly string[]): Promise<void> {
    for (const a of addresses) {
      if (this.#pairs.has(a)) continue;
      const ike = await this.#open(a, this.ikePort, false);
      let natt: Socket;
      try { natt = await this.#open(a, this.nattPort, true); } catch (e) { ike.close(); throw e; }
      this.#pairs.set(a, { ike, natt });
    }
    for (const [a, p] of this.#pairs) {
      if (addresses.includes(a)) continue;
      p.ike.close(); p.natt.close();
      this.#pairs.delete(a);
    }
  }

  async #open(address: string, port: number, natt: boolean): Promise<Socket> {
    const s = createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4', reuseAddr: false });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind({ address, port, exclusive: true }, () => { s.off('error', reject); resolve(); });
    }).catch((e: unknown) => {
      s.close();
      throw new KipsecError('ERR_UDP_BIND', `cannot bind UDP ${address}:${port}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`);
    });
    // The kernel must not apply our own IPsec policies to IKE packets, and on 4500 it must
    // decapsulate ESP-in-UDP itself (RFC 3948) — both are socket options Node lacks.
    this.#tuning.bypass(s, address);
    this.#tuning.receiveBuffer(s);
    if (natt) this.#tuning.udpEncap(s);
    s.on('error', (e) => this.#log.warn({ local: `${address}:${port}`, err: errorMessage(e) }, 'UDP socket error'));
    s.on('message', (msg, rinfo) => {
      try { this.#receive(msg, { address, port }, { address: rinfo.address, port: rinfo.port }, natt); } catch (e) {
        this.counters.invalid++;
        this.#log.debug({ remote: `${rinfo.address}:${rinfo.port}`, err: errorMessage(e) }, 'datagram dropped');
      }
    });
    return s;
  }

  #receive(msg: Buffer, local: Endpoint, remote: Endpoint, natt: boolean): void {
    const bytes = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
    if (this.#log.isLevelEnabled('debug')) this.#log.debug({ local: `${local.address}:${local.port}`, remote: `${remote.address}:${remote.port}`, bytes: bytes.length }, 'datagram in');
    if (!natt) { this.counters.received++; this.#handler({ data: bytes, local, remote }); return; }
    const c = classifyPort4500(bytes);
    switch (c.kind) {
      case 'ike': this.counters.received++; this.#handler({ data: c.message, local, remote }); return;
      case 'keepalive': this.counters.keepalivesIn++; return;
      case 'esp': this.counters.espInUdpDropped++; return;
      case 'invalid': this.counters.invalid++; return;
    }
  }

  /** Send an encoded IKE message; from the 4500 socket (with the marker) when local.port is 4500's. */
  send(data: Uint8Array, local: Endpoint, remote: Endpoint): void {
    const pair = this.#pairs.get(local.address);
    if (!pair) { this.counters.sendErrors++; this.#log.warn({ local: local.address }, 'no IKE socket on this address'); return; }
    const natt = local.port === this.nattPort;
    const bytes = natt ? withNonEspMarker(data) : data;
    const s = natt ? pair.natt : pair.ike;
    this.counters.sent++;
    if (this.#log.isLevelEnabled('debug')) this.#log.debug({ local: `${local.address}:${local.port}`, remote: `${remote.address}:${remote.port}`, bytes: bytes.length }, 'datagram out');
    s.send(bytes, remote.port, remote.address, (e) => {
      if (e) { this.counters.sendErrors++; this.#log.debug({ remote: `${remote.address}:${remote.port}`, err: errorMessage(e) }, 'IKE send failed'); }
    });
  }

  /** RFC 3948 §2.3 NAT-keepalive: one 0xFF octet from the 4500 socket. */
  keepalive(localAddress: string, remote: Endpoint): void {
    const pair = this.#pairs.get(localAddress);
    if (!pair) return;
    this.counters.keepalivesOut++;
    pair.natt.send(Uint8Array.of(0xff), remote.port, remote.address, () => { /* best effort */ });
  }

  close(): void {
    for (const p of this.#pairs.values()) { p.ike.close(); p.natt.close(); }
    this.#pairs.clear();
  }
}
