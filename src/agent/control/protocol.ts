// Control socket protocol: JSON lines over a unix socket. One request per line
// `{"id":1,"cmd":"status"}`, one reply per line `{"id":1,"ok":true,"result":…}` or
// `{"id":1,"ok":false,"error":{"code":"ERR_…","message":"…"}}`. `rekey` takes the tunnel name and
// what to rekey: `{"id":1,"cmd":"rekey","name":"t","ike":true,"child":false}`. `renew` (cluster mode)
// asks the operator's signer for a new certificate for the node's key now. Lines are bounded so a
// misbehaving client cannot make the agent buffer without limit.

export const CONTROL_COMMANDS = ['status', 'initiate', 'terminate', 'reload', 'rekey', 'renew', 'ping'] as const;
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

export interface ControlRequest {
  readonly id: number;
  readonly cmd: ControlCommand;
  /** Tunnel name for initiate/terminate/rekey. */
  readonly name?: string;
  /** rekey: the IKE SA and/or the Child SAs (neither: the Child SAs). */
  readonly ike?: boolean;
  readonly child?: boolean;
  /** rekey: re-authenticate make-before-break (a new IKE SA and Child SAs, then the old one goes). */
  readonly reauth?: boolean;
}

/** A request's arguments (everything but id and cmd). */
export type ControlArgs = Omit<ControlRequest, 'id' | 'cmd'>;

export type ControlReply =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: { readonly code: string; readonly message: string } };

/** The `rekey` answer: what the agent started (the outcome shows in `status`). SPIs in hex. */
export interface RekeyResult {
  readonly tunnel: string;
  /** The IKE SA the rekeys started on, "<spi>_i <spi>_r". */
  readonly ikeSpis: string;
  readonly ike: boolean;
  /** A re-authentication started (a new IKE SA), not a rekey. */
  readonly reauth?: boolean;
  readonly children: readonly { readonly name: string; readonly spiIn: string; readonly spiOut: string }[];
}

/** The `renew` answer: the node's certificate now in use. */
export interface RenewResult {
  readonly fingerprint: string;
  readonly publicKeyFingerprint: string;
  readonly notAfter: string;
}

export const MAX_LINE_BYTES = 64 * 1024;
export const DEFAULT_CONTROL_SOCKET = '/run/kipsec/agent.sock';

/** Parse one request line; a string is the reason it is not a request. */
export function parseRequest(line: string): ControlRequest | string {
  let v: unknown;
  try { v = JSON.parse(line); } catch { return 'not JSON'; }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not an object';
  const o = v as Record<string, unknown>;
  const id = o['id'];
  const cmd = o['cmd'];
  const name = o['name'];
  if (typeof id !== 'number' || !Number.isSafeInteger(id)) return 'id must be an integer';
  if (typeof cmd !== 'string' || !(CONTROL_COMMANDS as readonly string[]).includes(cmd)) return `unknown cmd; known: ${CONTROL_COMMANDS.join(', ')}`;
  if (name !== undefined && (typeof name !== 'string' || name.length > 253)) return 'name must be a string';
  const flags: { ike?: boolean; child?: boolean; reauth?: boolean } = {};
  for (const k of ['ike', 'child', 'reauth'] as const) {
    const f = o[k];
    if (f === undefined) continue;
    if (typeof f !== 'boolean') return `${k} must be true or false`;
    flags[k] = f;
  }
  return { id, cmd: cmd as ControlCommand, ...(typeof name === 'string' ? { name } : {}), ...flags };
}
