// What the kernel tells the agent about its Child SAs, turned into engine calls: XFRM expires
// (soft: rekey, hard: replace), acquires (a policy without an SA; also the sign that an SA's states
// were deleted behind our back) and NAT mapping changes. When the event socket overruns, some
// expires are lost: the SA table is read once more and what expired meanwhile is handed over.
import { errorMessage } from '../common/errors.js';
import { NetlinkSocketError, type XfrmEvent } from '../xfrm/index.js';
import type { EngineLike } from './engine-like.js';
import { hex, type XfrmKernel } from './kernel.js';
import type { Logger } from './log.js';

export interface KernelEventParts {
  readonly kernel: XfrmKernel;
  readonly log: Logger;
  /** The running engine; undefined before start. */
  readonly engine: () => EngineLike | undefined;
  /** The agent is shutting down: lost events no longer matter. */
  readonly stopping: () => boolean;
}

export class KernelEvents {
  readonly #p: KernelEventParts;
  #recheck: 'idle' | 'running' | 'again' = 'idle';
  readonly #checkingLost = new Set<number>();

  constructor(p: KernelEventParts) { this.#p = p; }

  /** An error of the event socket: ENOBUFS means events were lost, anything else is logged. */
  onError(e: unknown): void {
    if (this.#p.stopping()) return;
    if (e instanceof NetlinkSocketError && e.errnoName === 'ENOBUFS') { this.#recheckExpires(); return; }
    this.#p.log.warn({ err: errorMessage(e) }, 'XFRM event socket error');
  }

  onEvent(e: XfrmEvent): void {
    const engine = this.#p.engine();
    if (!engine) return;
    const { kernel, log } = this.#p;
    if (e.kind === 'expire') {
      const inbound = kernel.isInboundSpi(e.sa.dst, e.sa.spi) ? e.sa.spi : kernel.inboundSpiOfOutbound(e.sa.dst, e.sa.spi);
      if (inbound === undefined) return;
      log.info({ spi: hex(e.sa.spi), ...(inbound !== e.sa.spi ? { outbound: true } : {}), hard: e.hard }, 'kernel SA expire');
      engine.expired(inbound, e.hard);
    } else if (e.kind === 'acquire') {
      const stable = e.templates.find((t) => t.reqid !== undefined)?.reqid;
      const reqid = stable === undefined ? undefined : kernel.engineReqidFor(stable);
      if (reqid !== undefined) engine.acquire(reqid);
      if (stable !== undefined) this.#checkLost(stable);
    } else if (e.kind === 'mapping') {
      // Sent for every such packet until the SA moves: debug here, the engine logs the move once.
      if (!kernel.isInboundSpi(e.dst, e.spi)) return;
      log.debug({ spi: hex(e.spi), old: `${e.oldSrc}:${e.oldSport}`, new: `${e.newSrc}:${e.newSport}` }, 'kernel reports a new NAT mapping');
      engine.natMapping(e.spi, { address: e.newSrc, port: e.newSport });
    }
  }

  /** Another overrun came while a check ran: run once more (after its events were lost too). */
  #takeAgain(): boolean {
    const again = this.#recheck === 'again';
    this.#recheck = 'running';
    return again;
  }

  /** The event socket overran: some expires may be lost. Ask the kernel (one dump at a time). */
  #recheckExpires(): void {
    if (this.#recheck !== 'idle') { this.#recheck = 'again'; return; }
    this.#recheck = 'running';
    const { kernel, log } = this.#p;
    log.warn('XFRM events lost (the event socket\'s receive buffer overran); checking Child SA lifetimes against the kernel');
    void (async () => {
      try {
        do {
          const missed = await kernel.missedExpires();
          const engine = this.#p.engine();
          if (this.#p.stopping() || !engine) break;
          for (const m of missed) {
            log.info({ spi: hex(m.inboundSpi), hard: m.hard }, 'kernel SA expire (found after lost events)');
            engine.expired(m.inboundSpi, m.hard);
          }
        } while (this.#takeAgain());
      } catch (e) {
        log.warn({ err: errorMessage(e) }, 'checking Child SA lifetimes after lost XFRM events failed');
      } finally {
        this.#recheck = 'idle';
      }
    })();
  }

  /**
   * An ACQUIRE for a reqid whose Child SA we think installed: its states may have been deleted
   * behind our back. Such a child is treated as hard-expired — the engine deletes it with the
   * peer and negotiates a new one — instead of leaving its policy without an SA until the next
   * rekey (traffic is dropped meanwhile, never sent in clear: the policy stays).
   */
  #checkLost(stableReqid: number): void {
    if (this.#checkingLost.has(stableReqid)) return;
    this.#checkingLost.add(stableReqid);
    void (async () => {
      try {
        for (const spi of await this.#p.kernel.lostChildren(stableReqid)) {
          this.#p.log.warn({ spi: hex(spi) }, 'a Child SA\'s kernel states are gone though nothing of ours removed them; replacing it');
          this.#p.engine()?.expired(spi, true);
        }
      } catch (e) {
        this.#p.log.warn({ err: errorMessage(e) }, 'checking the kernel for lost Child SAs failed');
      } finally {
        // One look at a time per reqid. The kernel itself paces ACQUIREs (one per larval state,
        // net.core.xfrm_acq_expires), and a replaced child leaves our table, so none is replaced twice.
        this.#checkingLost.delete(stableReqid);
      }
    })();
  }
}
