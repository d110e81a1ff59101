// A NAT in front of the peer changes its mapping while traffic flows, and only ESP tells (no IKE
// message: charon sends no DPD by default). The userspace engine reports the authenticated packet
// from the new port ('mapping', as the kernel's XFRM_MSG_MAPPING), the agent moves both SAs to it
// (RFC 7296 §2.23, RFC 3948), and the replies follow. Before that report existed, kipsec decrypted
// every request and kept answering the old, dead port: 12 of 60 pings answered, all before the
// change. Host kernel: charon on kernel-libipsec behind an nftables masquerade, kipsec on
// `--datapath userspace`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { natTopology } from '../lib/nat.js';
import { StrongSwan } from '../lib/strongswan.js';
import { parsePingLog } from '../lib/traffic.js';
import { AgentProcess, pollUntil, tunnelYaml } from '../vm/agent-harness.js';

const PSK = 'kipsec e2e nat remap: correct horse battery staple';
const PINGS = 60;
const SWANCTL = `connections {
  us {
    version = 2
    local_addrs = 10.0.0.2
    remote_addrs = 203.0.113.2
    proposals = aes256gcm16-prfsha384-x25519
    local {
      auth = psk
      id = 10.0.0.2
    }
    remote {
      auth = psk
      id = 203.0.113.2
    }
    children {
      us {
        local_ts = 10.2.0.0/24
        remote_ts = 10.1.0.0/24
        esp_proposals = aes256gcm16
      }
    }
  }
}
secrets {
  ike-us {
    id-a = 10.0.0.2
    id-b = 203.0.113.2
    secret = "${PSK}"
  }
}
`;

test('userspace data path behind a NAT that remaps the peer mid-traffic: the authenticated ESP from the new port moves the SAs (RFC 7296 §2.23) and pings keep being answered', async (t) => {
  const { inside, outside, remapTo } = await natTopology(t);
  await outside.run('ip', ['addr', 'add', '10.1.0.1/24', 'dev', 'lo']);
  await inside.run('ip', ['addr', 'add', '10.2.0.1/24', 'dev', 'lo']);

  const swan = await StrongSwan.start(t, inside, { mode: 'libipsec', swanctl: SWANCTL });
  const agent = await AgentProcess.start(t, outside, {
    config: tunnelYaml({ name: 'us', local: '203.0.113.2', remote: '203.0.113.1', localSubnets: ['10.1.0.0/24'], remoteSubnets: ['10.2.0.0/24'], startAction: 'respond', remoteId: '10.0.0.2' }),
    files: { psk: `${PSK}\n` }, args: ['--datapath', 'userspace'],
  });
  const init = await swan.initiate('us');
  assert.equal(init.code, 0, `${init.stdout}${init.stderr}`);
  const up = await agent.waitEstablished('us', 30_000);
  const before = up.remotePort ?? 0;
  assert.ok(before >= 20000 && before <= 29999, `the NAT's first mapping: remote port ${before}`);

  // 60 pings from behind the NAT; after 3 s the NAT moves to another port range and forgets its
  // mappings, so charon's next ESP leaves from a new port.
  const pinging = inside.run('ping', ['-c', String(PINGS), '-i', '0.25', '-W', '2', '-I', '10.2.0.1', '10.1.0.1'], { check: false, timeoutMs: 60_000 });
  await new Promise((r) => setTimeout(r, 3_000));
  await remapTo(40000, 49999);
  const moved = await pollUntil('the tunnel to follow the new mapping', 20_000, async () => {
    const p = (await agent.tunnel('us')).remotePort ?? 0;
    return p >= 40000 && p <= 49999 ? p : undefined;
  }, async () => `${await agent.table()}\n${agent.log().slice(-3000)}`);
  const res = await pinging;
  const answered = parsePingLog(res.stdout).answered;
  const lost = Array.from({ length: PINGS }, (_, i) => i + 1).filter((s) => !answered.has(s));
  t.diagnostic(`remote port ${before} -> ${moved}; ${answered.size}/${PINGS} pings answered, lost ${lost.join(',') || 'none'}`);
  assert.ok(lost.length <= 2, `pings lost across the remap (at most the one or two around it): ${lost.join(',')}\n${res.stdout.slice(-600)}`);
  assert.deepEqual(lost.filter((s) => s > 24), [], 'everything after the move is answered');
  assert.match(agent.log(), /NAT|mapping/i, 'the agent logged the move');
  assert.equal((await swan.childSas()).length, 1, 'no renegotiation: the same Child SA carries on');
  assert.equal(await agent.stop(), 0);
});
