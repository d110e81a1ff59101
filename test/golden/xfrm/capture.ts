// Records the netlink request `ip xfrm …` sends, as golden bytes for test/unit/xfrm/golden.test.ts.
// Run as root on the host: `node --import tsx test/golden/xfrm/capture.ts` (rewrites requests.json).
// Each command runs in a fresh network namespace under `strace -e trace=sendmsg -xx -s 65536`;
// strace prints the nlmsghdr decoded and the payload as \x.. bytes, which we reassemble with
// nlmsg_seq and nlmsg_pid zeroed. The host kernel refuses ESP states, but iproute2 sends the
// request before the error comes back, so SA requests are captured here too (the reply is
// recorded as `exit` for information).
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GOLDEN_COMMANDS } from './commands.js';

const NAMES: Record<string, number> = {
  XFRM_MSG_NEWSA: 0x10, XFRM_MSG_DELSA: 0x11, XFRM_MSG_GETSA: 0x12, XFRM_MSG_NEWPOLICY: 0x13,
  XFRM_MSG_DELPOLICY: 0x14, XFRM_MSG_GETPOLICY: 0x15, XFRM_MSG_ALLOCSPI: 0x16, XFRM_MSG_UPDPOLICY: 0x19,
  XFRM_MSG_UPDSA: 0x1a, XFRM_MSG_FLUSHSA: 0x1c, XFRM_MSG_FLUSHPOLICY: 0x1d, XFRM_MSG_NEWAE: 0x1e, XFRM_MSG_GETAE: 0x1f,
};
const FLAGS: Record<string, number> = {
  NLM_F_REQUEST: 1, NLM_F_MULTI: 2, NLM_F_ACK: 4, NLM_F_ECHO: 8, NLM_F_ROOT: 0x100, NLM_F_MATCH: 0x200,
  NLM_F_DUMP: 0x300, NLM_F_REPLACE: 0x100, NLM_F_EXCL: 0x200, NLM_F_CREATE: 0x400, NLM_F_APPEND: 0x800,
};

function parse(line: string): { type: number; flags: number; payload: Buffer } | null {
  const m = /nlmsg_len=(\d+), nlmsg_type=(\w+), nlmsg_flags=([\w|]+), nlmsg_seq=\d+, nlmsg_pid=\d+\}(?:, "((?:\\x[0-9a-f]{2})*)")?/.exec(line);
  if (!m) return null;
  const type = NAMES[m[2]!] ?? Number(m[2]);
  if (!Number.isFinite(type)) return null;
  let flags = 0;
  for (const f of m[3]!.split('|')) flags |= FLAGS[f] ?? Number(f);
  const payload = Buffer.from((m[4] ?? '').replace(/\\x/g, ''), 'hex');
  if (16 + payload.length > Number(m[1])) throw new Error(`payload longer than nlmsg_len in: ${line.slice(0, 200)}`);
  return { type, flags, payload };
}

function header(len: number, type: number, flags: number): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(len, 0); h.writeUInt16LE(type, 4); h.writeUInt16LE(flags, 6);
  return h;
}

const ns = `kt-${process.pid}-golden-0`;
execFileSync('ip', ['netns', 'add', ns]);
const out: unknown[] = [];
try {
  for (const g of GOLDEN_COMMANDS) {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'strace', '-e', 'trace=sendmsg', '-xx', '-s', '65536', 'ip', ...g.args], { encoding: 'utf8', timeout: 10_000 });
    const msg = r.stderr.split('\n').map(parse).find((x) => x && x.type >= 0x10);
    if (!msg) throw new Error(`${g.name}: no XFRM sendmsg in strace output:\n${r.stderr}`);
    // nlmsg_len counts the payload; strace shows exactly nlmsg_len - 16 bytes when -s is large enough.
    const bytes = Buffer.concat([header(16 + msg.payload.length, msg.type, msg.flags), msg.payload]);
    const err = /^Error: .*$|^RTNETLINK answers: .*$/m.exec(r.stderr)?.[0];
    out.push({ name: g.name, command: `ip ${g.args.join(' ')}`, exit: r.status, ...(err ? { reply: err } : {}), hex: bytes.toString('hex') });
    console.log(`${g.name}: ${bytes.length} bytes, ip exit ${r.status}${err ? ` (${err})` : ''}`);
  }
} finally {
  execFileSync('ip', ['netns', 'del', ns]);
}
const file = join(dirname(fileURLToPath(import.meta.url)), 'requests.json');
writeFileSync(file, JSON.stringify({
  source: 'iproute2 `ip xfrm` requests recorded with strace on the host kernel by test/golden/xfrm/capture.ts; nlmsg_seq and nlmsg_pid zeroed',
  iproute2: execFileSync('ip', ['-V'], { encoding: 'utf8' }).trim(),
  messages: out,
}, null, 1) + '\n');
