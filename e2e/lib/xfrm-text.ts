// `ip -s xfrm state` and `ip xfrm policy` as data, read inside a namespace: the lane's view of
// the kernel, independent of the agent's own netlink code (iproute2 is the reference tool).
import type { Netns } from './netns.js';

export interface XState {
  readonly src: string;
  readonly dst: string;
  readonly proto: string;
  /** 8 hex digits. */
  readonly spi: string;
  readonly reqid: number;
  readonly mode: string;
  /** The AEAD or cipher name: "rfc4106(gcm(aes))", "cbc(aes)". */
  readonly alg: string;
  /** Key length in bits as iproute2 prints it (AEAD: key + salt). */
  readonly keyBits: number;
  readonly encap: boolean;
  readonly bytes: number;
  readonly packets: number;
}

export interface XPolicy {
  readonly src: string;
  readonly dst: string;
  readonly proto?: string;
  readonly sport?: number;
  readonly dport?: number;
  readonly dir: string;
  readonly action: 'allow' | 'block';
  readonly priority: number;
  readonly mark?: string;
  readonly socket: boolean;
  readonly tmpl?: { readonly src: string; readonly dst: string; readonly reqid: number; readonly mode: string };
}

function blocks(text: string): string[][] {
  const out: string[][] = [];
  for (const line of text.split('\n')) {
    if (/^src /.test(line)) out.push([line]);
    else if (line.trim() !== '' && out.length > 0) out[out.length - 1]!.push(line.trim());
  }
  return out;
}

export function parseStates(text: string): XState[] {
  return blocks(text).map((b) => {
    const all = b.join('\n');
    const head = /^src (\S+) dst (\S+)/.exec(b[0]!)!;
    const p = /proto (\S+) spi 0x([0-9a-f]+)\S* reqid (\d+)\S* mode (\S+)/.exec(all);
    const alg = /^(?:aead|enc) (\S+) 0x([0-9a-f]+)/m.exec(all);
    const cur = /lifetime current:\n\s*(\d+)\(bytes\), (\d+)\(packets\)/.exec(all);
    return {
      src: head[1]!, dst: head[2]!, proto: p?.[1] ?? '?', spi: (p?.[2] ?? '').padStart(8, '0'), reqid: Number(p?.[3] ?? 0), mode: p?.[4] ?? '?',
      alg: alg?.[1] ?? '', keyBits: alg ? (alg[2]!.length / 2) * 8 : 0, encap: /^encap type espinudp/m.test(all),
      bytes: Number(cur?.[1] ?? 0), packets: Number(cur?.[2] ?? 0),
    };
  });
}

export function parsePolicies(text: string): XPolicy[] {
  return blocks(text).map((b) => {
    const all = b.join('\n');
    const head = /^src (\S+) dst (\S+)(?: proto (\S+))?(?: sport (\d+))?(?: dport (\d+))?/.exec(b[0]!)!;
    const socket = /^socket /m.test(all);
    const dir = /^(?:dir|socket) (\S+)/m.exec(all)?.[1] ?? '?';
    const tmpl = /^tmpl src (\S+) dst (\S+)\n\s*proto \S+ reqid (\d+) mode (\S+)/m.exec(all);
    const mark = /^mark (\S+)/m.exec(all)?.[1];
    return {
      src: head[1]!, dst: head[2]!, ...(head[3] ? { proto: head[3] } : {}), ...(head[4] ? { sport: Number(head[4]) } : {}), ...(head[5] ? { dport: Number(head[5]) } : {}),
      dir, action: / action block /.test(` ${all} `) ? 'block' : 'allow', priority: Number(/priority (\d+)/.exec(all)?.[1] ?? 0),
      ...(mark ? { mark } : {}), socket,
      ...(tmpl ? { tmpl: { src: tmpl[1]!, dst: tmpl[2]!, reqid: Number(tmpl[3]), mode: tmpl[4]! } } : {}),
    };
  });
}

export async function kernelStates(ns: Netns): Promise<XState[]> {
  return parseStates((await ns.run('ip', ['-s', 'xfrm', 'state'])).stdout);
}

export async function kernelPolicies(ns: Netns): Promise<XPolicy[]> {
  return parsePolicies((await ns.run('ip', ['xfrm', 'policy'])).stdout).filter((p) => !p.socket);
}

/** /proc/net/xfrm_stat of the namespace (per network namespace). */
export async function xfrmStat(ns: Netns): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of (await ns.run('cat', ['/proc/net/xfrm_stat'])).stdout.matchAll(/^(Xfrm\w+)\s+(\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}
