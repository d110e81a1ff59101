// Control socket protocol: JSON lines over a unix socket. One request per line
// `{"id":1,"cmd":"status"}`, one reply per line `{"id":1,"ok":true,"result":…}` or
// `{"id":1,"ok":false,"error":{"code":"ERR_…","message":"…"}}`. Lines are bounded so a
// misbehaving client cannot make the agent buffer without limit.

export const CONTROL_COMMANDS = ['status', 'initiate', 'terminate', 'reload', 'ping'] as const;
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

export interface ControlRequest {
  readonly id: number;
  readonly cmd: ControlCommand;
  /** Tunnel name for initiate/terminate. */
  readonly name?: string;
}

export type ControlReply =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: { readonly code: string; readonly message: string } };

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
  return { id, cmd: cmd as ControlCommand, ...(typeof name === 'string' ? { name } : {}) };
}
