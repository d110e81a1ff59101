// Errors of the Kubernetes REST client: one class per failure, fixed codes.
import { KipsecError } from '../../common/errors.js';

/** The apiserver answered with a non-2xx Status. */
export class KubeApiError extends KipsecError {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super('ERR_KUBE_API', `${status} ${reason}: ${message}`);
    this.status = status;
    this.reason = reason;
  }
}

/** The apiserver could not be reached (connection refused, reset, timeout). */
export class KubeUnavailableError extends KipsecError {
  constructor(message: string, cause: unknown) { super('ERR_KUBE_UNAVAILABLE', message, { cause }); }
}

export const isNotFound = (e: unknown): boolean => e instanceof KubeApiError && e.status === 404;
export const isConflict = (e: unknown): boolean => e instanceof KubeApiError && e.status === 409;
export const isGone = (e: unknown): boolean => e instanceof KubeApiError && e.status === 410;
export const isAlreadyExists = (e: unknown): boolean => e instanceof KubeApiError && e.status === 409 && e.reason === 'AlreadyExists';
