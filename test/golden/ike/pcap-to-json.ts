// pcap-to-json.ts: turn one capture.sh scenario (tcpdump pcap + both charon logs + swanctl
// --list-sas output) into the golden JSON the codec and crypto tests read. Deliberately independent
// of src/ike: it reads only the fixed IKE header fields (RFC 7296 §3.1) so a codec bug cannot
// shape its own golden data.
//
//   node --import tsx test/golden/ike/pcap-to-json.ts NAME WORKDIR AUTH IKE_PROPS ESP_PROPS FRAG OUT [INITIATOR_IKE_PROPS]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [name, dir, auth, ikeProps, espProps, frag, out, initiatorIkeProps] = process.argv.slice(2);
if (!name || !dir || !auth || !ikeProps || !espProps || !frag || !out) throw new Error('usage: NAME WORKDIR AUTH IKE ESP FRAG OUT');

const EXCHANGES: Record<number, string> = { 34: 'IKE_SA_INIT', 35: 'IKE_AUTH', 36: 'CREATE_CHILD_SA', 37: 'INFORMATIONAL' };
const INITIATOR_ADDR = '192.0.2.1';

interface Datagram {
  index: number; from: string; to: string; direction: 'i->r' | 'r->i'; nonEspMarker: boolean;
  exchange: string; response: boolean; messageId: number; initiatorSpi: string; responderSpi: string; hex: string;
}

function ipv4(b: Buffer, at: number): string { return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`; }

function readPcap(file: string): Datagram[] {
  const b = readFileSync(file);
  if (b.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error('pcap: expected little-endian microsecond pcap');
  const linktype = b.readUInt32LE(20);
  if (linktype !== 1) throw new Error(`pcap: linktype ${linktype}, want Ethernet`);
  const out: Datagram[] = [];
  for (let at = 24; at + 16 <= b.length;) {
    const incl = b.readUInt32LE(at + 8);
    const frame = b.subarray(at + 16, at + 16 + incl);
    at += 16 + incl;
    if (frame.readUInt16BE(12) !== 0x0800) continue; // IPv4 only
    const ihl = (frame[14]! & 0x0f) * 4;
    if (frame[14 + 9] !== 17) continue; // UDP
    const src = ipv4(frame, 14 + 12), dst = ipv4(frame, 14 + 16);
    const udp = 14 + ihl;
    const sport = frame.readUInt16BE(udp), dport = frame.readUInt16BE(udp + 2), ulen = frame.readUInt16BE(udp + 4);
    let payload = frame.subarray(udp + 8, udp + ulen);
    let marker = false;
    if (sport === 4500 || dport === 4500) {
      if (payload.length === 1 && payload[0] === 0xff) continue; // NAT-keepalive (RFC 3948 §2.3)
      if (payload.length < 4 || payload.readUInt32BE(0) !== 0) continue; // ESP, not IKE
      payload = payload.subarray(4);
      marker = true;
    }
    if (payload.length < 28) continue;
    const flags = payload[19]!;
    out.push({
      index: out.length,
      from: `${src}:${sport}`, to: `${dst}:${dport}`,
      direction: src === INITIATOR_ADDR ? 'i->r' : 'r->i',
      nonEspMarker: marker,
      exchange: EXCHANGES[payload[18]!] ?? `EXCHANGE_${payload[18]}`,
      response: (flags & 0x20) !== 0,
      messageId: payload.readUInt32BE(20),
      initiatorSpi: payload.subarray(0, 8).toString('hex'),
      responderSpi: payload.subarray(8, 16).toString('hex'),
      hex: payload.toString('hex'),
    });
  }
  return out;
}

type KeyName = 'SKEYSEED' | 'Sk_d' | 'Sk_ai' | 'Sk_ar' | 'Sk_ei' | 'Sk_er' | 'Sk_pi' | 'Sk_pr';
type KeySet = Partial<Record<KeyName, string>>;

/** charon's `%B` dumps: "Sk_ei secret => 36 bytes @ 0x..." then "   0: AA BB ..." lines. */
function readKeys(log: string): { keys: KeySet[]; ikeProposals: string[]; childProposals: string[] } {
  const lines = log.split('\n');
  const keys: KeySet[] = [];
  const ikeProposals: string[] = [], childProposals: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const sel = /selected proposal: ((IKE|ESP):\S+)/.exec(line);
    if (sel) (sel[2] === 'IKE' ? ikeProposals : childProposals).push(sel[1]!);
    const m = /\] <[^>]*> (SKEYSEED|Sk_\w+ secret) => (\d+) bytes/.exec(line);
    if (!m) continue;
    const label = m[1]!.replace(' secret', '') as KeyName;
    const want = Number(m[2]);
    let hex = '';
    for (let j = i + 1; j < lines.length && hex.length < want * 2; j++) {
      const d = /<[^>]*>\s+\d+: ((?:[0-9A-F]{2} )+)/.exec(lines[j]!);
      if (!d) break;
      hex += d[1]!.replace(/ /g, '').toLowerCase();
    }
    if (hex.length !== want * 2) throw new Error(`log: ${label} dump has ${hex.length / 2} bytes, want ${want}`);
    if (label === 'SKEYSEED') keys.push({});
    const cur = keys[keys.length - 1];
    if (!cur) throw new Error(`log: ${label} before SKEYSEED`);
    cur[label] = hex;
  }
  return { keys, ikeProposals, childProposals };
}

function readSas(file: string): Array<{ uniqueId: number; initiatorSpi: string; responderSpi: string; initiator: boolean }> {
  const text = readFileSync(file, 'utf8');
  const out = [];
  for (const m of text.matchAll(/uniqueid=(\d+) version=2 .*? initiator=(yes|no)? ?initiator-spi=([0-9a-f]{16}) responder-spi=([0-9a-f]{16})/g)) {
    out.push({ uniqueId: Number(m[1]), initiator: m[2] === 'yes', initiatorSpi: m[3]!, responderSpi: m[4]! });
  }
  return out;
}

const datagrams = readPcap(join(dir, 'cap.pcap'));
const la = readKeys(readFileSync(join(dir, 'a', 'charon.log'), 'utf8'));
const lb = readKeys(readFileSync(join(dir, 'b', 'charon.log'), 'utf8'));
if (JSON.stringify(la.keys) !== JSON.stringify(lb.keys)) throw new Error('initiator and responder logged different keys');
const sas = [...readSas(join(dir, 'sas-1.txt')), ...readSas(join(dir, 'sas-2.txt'))]
  .filter((s, i, all) => all.findIndex((t) => t.uniqueId === s.uniqueId) === i);
if (sas.length !== la.keys.length) throw new Error(`found ${sas.length} IKE SAs but ${la.keys.length} key sets`);

const doc = {
  source: 'strongSwan 5.9.8 (Debian) charon <-> charon in network namespaces, libipsec mode; test/golden/ike/capture.sh, see README.md',
  scenario: name,
  auth: auth === 'psk' ? { method: 'psk', secret: 'kipsec golden capture psk 0123456789' } : { method: 'ecdsa-p256-certificates', ca: 'ca.crt' },
  config: { ikeProposals: ikeProps, initiatorIkeProposals: initiatorIkeProps ?? ikeProps, espProposals: espProps, fragmentSize: Number(frag) },
  initiator: { address: '192.0.2.1', id: auth === 'psk' ? '192.0.2.1' : 'a.kipsec.test' },
  responder: { address: '192.0.2.2', id: auth === 'psk' ? '192.0.2.2' : 'b.kipsec.test' },
  negotiated: { ike: la.ikeProposals[0], esp: la.childProposals[0] },
  note: 'Keys are RFC 7296 §2.14 names as charon logs them (ike 4). For AES-GCM, Sk_ei/Sk_er are key||4-byte salt (RFC 5282 §7.1). ikeSas[0] is the first IKE SA; ikeSas[1] is the one created by the IKE rekey, whose initiator is the side that sent the rekey request (192.0.2.1). Datagrams are the IKE message without the 4-byte non-ESP marker (nonEspMarker tells whether it had one on port 4500).',
  ikeSas: sas.map((s, i) => ({
    uniqueId: s.uniqueId, initiatorSpi: s.initiatorSpi, responderSpi: s.responderSpi,
    initiatorAddress: '192.0.2.1', proposal: la.ikeProposals[i], keys: la.keys[i],
  })),
  datagrams,
};
writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
