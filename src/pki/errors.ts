// PKI failures, each with a fixed code.
import { KipsecError } from '../common/errors.js';

export class PkiError extends KipsecError {}

export const PKI_CODES = {
  keyFileMode: 'ERR_PKI_KEY_FILE_MODE',
  badPem: 'ERR_PKI_BAD_PEM',
  badCsr: 'ERR_PKI_BAD_CSR',
  untrusted: 'ERR_PKI_UNTRUSTED',
  expired: 'ERR_PKI_EXPIRED',
  notCa: 'ERR_PKI_NOT_CA',
} as const;
