// The agent side of the control socket. The socket file is created with mode 0600 (umask held
// while binding, so there is no window where others could connect) and removed on close.
// Each request is handled by the agent's handler; a throw becomes an error reply with its code.
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, mkdirSync, unlinkSync, lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { KipsecError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../log.js';
import { MAX_LINE_BYTES, parseRequest, type ControlReply, type ControlRequest } from './protocol.js';

export type ControlHandler = (req: ControlRequest) => Promise<unknown>;

export class ControlServer {
  readonly path: string;
  readonly #server: Server;
  readonly #log: Logger;
  readonly #clients = new Set<Socket>();

  private constructor(path: string, server: Server, log: Logger) { this.path = path; this.#server = server; this.#log = log; }

  static async listen(path: string, handler: ControlHandler, log: Logger): Promise<ControlServer> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    removeStaleSocket(path);
    const server = createServer();
    const cs = new ControlServer(path, server, log);
    server.on('connection', (s) => cs.#serve(s, handler));
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => { server.off('error', reject); resolve(); });
      });
    } finally { process.umask(old); }
    chmodSync(path, 0o600);
    server.on('error', (e) => log.error({ err: errorMessage(e) }, 'control socket error'));
    return cs;
  }

  #serve(sock: Socket, handler: ControlHandler): void {
    this.#clients.add(sock);
    sock.setEncoding('utf8');
    let buf = '';
    const reply = (r: ControlReply): void => { if (!sock.destroyed) sock.write(`${JSON.stringify(r)}\n`); };
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE_BYTES && !buf.includes('\n')) {
        reply({ id: 0, ok: false, error: { code: 'ERR_CONTROL_LINE', message: `request longer than ${MAX_LINE_BYTES} bytes` } });
        sock.destroy();
        return;
      }
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === '') continue;
        const req = parseRequest(line);
        if (typeof req === 'string') { reply({ id: 0, ok: false, error: { code: 'ERR_CONTROL_REQUEST', message: req } }); continue; }
        handler(req).then(
          (result) => reply({ id: req.id, ok: true, result: result ?? null }),
          (e: unknown) => {
            const code = e instanceof KipsecError ? e.code : 'ERR_INTERNAL';
            if (code === 'ERR_INTERNAL') this.#log.error({ cmd: req.cmd, err: errorMessage(e) }, 'control request failed');
            reply({ id: req.id, ok: false, error: { code, message: errorMessage(e) } });
          });
      }
    });
    sock.on('error', () => { /* client went away */ });
    sock.on('close', () => this.#clients.delete(sock));
  }

  async close(): Promise<void> {
    for (const c of this.#clients) c.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
    try { unlinkSync(this.path); } catch { /* already gone */ }
  }
}

/** A socket file left by a crashed agent would make listen() fail with EADDRINUSE. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch { /* absent */ }
}
