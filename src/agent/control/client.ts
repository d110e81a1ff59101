// The CLI side of the control socket: one request, one reply, bounded in time.
import { connect } from 'node:net';
import { KipsecError } from '../../common/errors.js';
import { MAX_LINE_BYTES, type ControlArgs, type ControlCommand, type ControlReply } from './protocol.js';

export class ControlError extends KipsecError {}

/** `args`: the tunnel name, or the request's arguments (e.g. `{ name, ike: true }` for rekey). */
export async function controlRequest(path: string, cmd: ControlCommand, args?: string | ControlArgs, timeoutMs = 30_000): Promise<unknown> {
  const fields: ControlArgs = typeof args === 'string' ? { name: args } : args ?? {};
  const reply = await new Promise<ControlReply>((resolve, reject) => {
    const sock = connect(path);
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new ControlError('ERR_CONTROL_TIMEOUT', `no reply from the agent on ${path} within ${timeoutMs} ms`)); }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify({ id: 1, cmd, ...fields })}\n`));
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.length > 64 * MAX_LINE_BYTES) { clearTimeout(timer); sock.destroy(); reject(new ControlError('ERR_CONTROL_REPLY', 'reply too large')); return; }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.end();
      try { resolve(JSON.parse(buf.slice(0, nl)) as ControlReply); } catch { reject(new ControlError('ERR_CONTROL_REPLY', 'agent sent a reply that is not JSON')); }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? 'is the agent running? (kipsec agent --standalone --config FILE)' : e.code ?? e.message;
      reject(new ControlError('ERR_CONTROL_CONNECT', `cannot reach the agent at ${path}: ${why}`));
    });
  });
  if (!reply.ok) throw new ControlError(reply.error.code, reply.error.message);
  return reply.result;
}
