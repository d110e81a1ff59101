// The IKE sockets of the userspace data path: UDP 500 as node:dgram sockets (as IkeSockets), and
// UDP 4500 through the ESP engine, which owns that socket because ESP and IKE share it and only
// one reader can tell them apart (RFC 3948 §2.2). IKE datagrams come up as the engine's 'ike'
// events (marker kept), go out with sendIke (marker added here), and a NAT keepalive is a lone
// 0xFF (RFC 3948 §2.3). One local address: the engine binds one socket (datapath.ts).
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { KipsecError, errorMessage } from '../../common/errors.js';
import { classifyPort4500, withNonEspMarker } from '../../ike/codec/natt.js';
import type { EspEvent } from '../../esp/index.js';
import type { Logger } from '../log.js';
import type { SocketTuning } from '../native.js';
import type { DatagramHandler, DatagramSockets, Endpoint, UdpCounters } from '../udp.js';
import type { UserspaceDatapath } from './datapath.js';

export class EspSockets implements DatagramSockets {
  readonly ikePort: number;
  readonly nattPort: number;
  readonly counters: UdpCounters = { received: 0, sent: 0, keepalivesIn: 0, keepalivesOut: 0, espInUdpDropped: 0, invalid: 0, sendErrors: 0 };
  readonly #dp: UserspaceDatapath;
  readonly #log: Logger;
  readonly #tuning: SocketTuning;
  readonly #ike = new Map<string, Socket>();
  #handler: DatagramHandler = () => { /* set by the agent */ };
  #unsubscribe: (() => void) | undefined;

  constructor(o: { ikePort: number; nattPort: number; datapath: UserspaceDatapath; log: Logger; tuning: SocketTuning }) {
    this.ikePort = o.ikePort; this.nattPort = o.nattPort; this.#dp = o.datapath; this.#log = o.log; this.#tuning = o.tuning;
  }

  onDatagram(h: DatagramHandler): void { this.#handler = h; }

  async bind(addresses: readonly string[]): Promise<void> {
    const wanted = [...new Set(addresses)];
    if (wanted.length > 1) throw new KipsecError('ERR_ESP_ADDRESS', `--datapath userspace serves one local address; the tunnels use ${wanted.join(', ')}`);
    const [address] = wanted;
    if (address !== undefined && !this.#dp.isOpen) {
      const engine = await this.#dp.open(address, this.nattPort);
      this.#unsubscribe = engine.on((e) => this.#fromEngine(e, address));
    } else if (address !== undefined) {
      await this.#dp.open(address, this.nattPort); // throws for another address
    }
    for (const a of wanted) if (!this.#ike.has(a)) this.#ike.set(a, await this.#open(a));
    for (const [a, s] of this.#ike) if (!wanted.includes(a)) { s.close(); this.#ike.delete(a); }
  }

  async #open(address: string): Promise<Socket> {
    const s = createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4', reuseAddr: false });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind({ address, port: this.ikePort, exclusive: true }, () => { s.off('error', reject); resolve(); });
    }).catch((e: unknown) => {
      s.close();
      throw new KipsecError('ERR_UDP_BIND', `cannot bind UDP ${address}:${this.ikePort}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`);
    });
    this.#tuning.bypass(s, address);
    this.#tuning.receiveBuffer(s);
    s.on('error', (e) => this.#log.warn({ local: `${address}:${this.ikePort}`, err: errorMessage(e) }, 'UDP socket error'));
    s.on('message', (msg, rinfo) => {
      this.counters.received++;
      this.#deliver(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), { address, port: this.ikePort }, { address: rinfo.address, port: rinfo.port });
    });
    return s;
  }

  #fromEngine(e: EspEvent, address: string): void {
    if (e.kind !== 'ike') return;
    const c = classifyPort4500(new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength));
    if (c.kind === 'ike') { this.counters.received++; this.#deliver(c.message, { address, port: this.nattPort }, { address: e.address, port: e.port }); }
    else if (c.kind === 'keepalive') this.counters.keepalivesIn++;
    else this.counters.invalid++;
  }

  /** A bad datagram never throws out of a socket or engine callback (DESIGN.md §9). */
  #deliver(data: Uint8Array, local: Endpoint, remote: Endpoint): void {
    try { this.#handler({ data, local, remote }); } catch (err) {
      this.counters.invalid++;
      this.#log.debug({ remote: `${remote.address}:${remote.port}`, err: errorMessage(err) }, 'datagram dropped');
    }
  }

  send(data: Uint8Array, local: Endpoint, remote: Endpoint): void {
    this.counters.sent++;
    if (local.port === this.nattPort) {
      try { this.#dp.engine.sendIke(withNonEspMarker(data), remote.address, remote.port); } catch (e) {
        this.counters.sendErrors++;
        this.#log.debug({ remote: `${remote.address}:${remote.port}`, err: errorMessage(e) }, 'IKE send failed');
      }
      return;
    }
    const s = this.#ike.get(local.address);
    if (!s) { this.counters.sendErrors++; this.#log.warn({ local: local.address }, 'no IKE socket on this address'); return; }
    s.send(data, remote.port, remote.address, (e) => {
      if (e) { this.counters.sendErrors++; this.#log.debug({ remote: `${remote.address}:${remote.port}`, err: errorMessage(e) }, 'IKE send failed'); }
    });
  }

  keepalive(_localAddress: string, remote: Endpoint): void {
    if (!this.#dp.isOpen) return;
    this.counters.keepalivesOut++;
    try { this.#dp.engine.sendIke(Uint8Array.of(0xff), remote.address, remote.port); } catch { /* best effort */ }
  }

  /** The 500 sockets; the engine (4500, TUN) closes with the data path, after the SAs left it. */
  close(): void {
    this.#unsubscribe?.();
    for (const s of this.#ike.values()) s.close();
    this.#ike.clear();
    this.#dp.close();
  }
}
