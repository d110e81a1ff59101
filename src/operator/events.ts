// Kubernetes Events (events.k8s.io/v1) for what an on-call engineer needs to see: denials, Ready
// transitions, CA rotation. Identical events within a short window are counted, not re-sent
// (the apiserver would otherwise take a write per repeat).
import { randomBytes } from 'node:crypto';
import type { Clock } from '../common/time.js';
import type { OperatorKube } from './fence.js';
import { RESOURCES, resourcePath } from '../api/kube/client.js';
import { microTime } from './leader.js';
import type { Logger } from './logger.js';

export interface Regarding { apiVersion: string; kind: string; name: string; namespace?: string; uid?: string }
export type EventType = 'Normal' | 'Warning';

const DEDUPE_MS = 60_000;
const REPORTING_CONTROLLER = 'kipsec.io/operator';

export class EventRecorder {
  readonly #kube: OperatorKube;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #instance: string;
  readonly #recent = new Map<string, number>();
  sent = 0;

  constructor(kube: OperatorKube, clock: Clock, log: Logger, instance: string) {
    this.#kube = kube; this.#clock = clock; this.#log = log; this.#instance = instance;
  }

  /** Fire and forget: an Event that cannot be written is logged, never fails a reconcile. */
  emit(regarding: Regarding, type: EventType, reason: string, action: string, note: string): void {
    const now = this.#clock.now();
    const key = `${regarding.kind}/${regarding.namespace ?? ''}/${regarding.name}/${reason}/${note}`;
    const last = this.#recent.get(key);
    if (last !== undefined && now - last < DEDUPE_MS) return;
    this.#recent.set(key, now);
    if (this.#recent.size > 10_000) for (const [k, t] of this.#recent) if (now - t >= DEDUPE_MS) this.#recent.delete(k);
    // Events about cluster-scoped objects live in "default", where kubectl describe looks for them.
    const ns = regarding.namespace ?? 'default';
    this.sent++;
    this.#kube.create(resourcePath(RESOURCES.events, { namespace: ns }), {
      apiVersion: 'events.k8s.io/v1', kind: 'Event',
      // Named like the kubelet's events (object.hex); generateName may not end in '.'.
      metadata: { name: `${regarding.name.slice(0, 200)}.${randomBytes(8).toString('hex')}`, namespace: ns },
      eventTime: microTime(now), reportingController: REPORTING_CONTROLLER, reportingInstance: this.#instance,
      action, reason, note: note.slice(0, 1024), type, regarding,
    }).catch((e: unknown) => this.#log.warn({ reason, regarding: regarding.name, err: (e as Error).message }, 'could not write an Event'));
  }
}
