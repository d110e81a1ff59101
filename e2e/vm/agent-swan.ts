// swanctl.conf for a strongSwan peer with several connections at once (one charon serving many
// agent tunnels keeps the VM lane's run time sane), PSK or certificate auth.
export interface SwanConn {
  readonly name: string;
  readonly local: string;
  readonly remote: string;
  readonly localTs: string;
  readonly remoteTs: string;
  readonly proposals: string;
  readonly espProposals: string;
  readonly startAction?: 'none' | 'trap' | 'start';
  /** 'psk' (secret in the secrets section) or certificate file names in x509/ and the CA in x509ca/. */
  readonly auth: { readonly psk: string } | {
    readonly cert: string; readonly remoteId: string; readonly localId: string;
    /** swanctl `auth` values (default `pubkey`), e.g. `rsa/pss-sha384` to make charon sign with RSASSA-PSS. */
    readonly localAuth?: string; readonly remoteAuth?: string;
  };
  readonly extra?: string;
  readonly childExtra?: string;
  /** Override remote_addrs (e.g. %any behind NAT) and the peer's PSK identity. */
  readonly remoteAddrs?: string;
  readonly remotePskId?: string;
}

export function swanctlConf(conns: readonly SwanConn[]): string {
  const connections = conns.map((c) => {
    const cert = 'cert' in c.auth ? c.auth : undefined;
    const local = cert ? `auth = ${cert.localAuth ?? 'pubkey'}\n      certs = ${cert.cert}\n      id = "${cert.localId}"` : `auth = psk\n      id = ${c.local}`;
    const remote = cert ? `auth = ${cert.remoteAuth ?? 'pubkey'}\n      id = "${cert.remoteId}"` : `auth = psk\n      id = ${c.remotePskId ?? c.remote}`;
    return `  ${c.name} {
    version = 2
    local_addrs = ${c.local}
    remote_addrs = ${c.remoteAddrs ?? c.remote}
    proposals = ${c.proposals}
    ${c.extra ?? ''}
    local {
      ${local}
    }
    remote {
      ${remote}
    }
    children {
      ${c.name} {
        local_ts = ${c.localTs}
        remote_ts = ${c.remoteTs}
        esp_proposals = ${c.espProposals}
        start_action = ${c.startAction ?? 'none'}
        ${c.childExtra ?? ''}
      }
    }
  }`;
  }).join('\n');
  const seen = new Set<string>();
  const secrets = conns.flatMap((c) => {
    if (!('psk' in c.auth)) return [];
    const k = `${c.local}|${c.remote}`;
    if (seen.has(k)) return [];
    seen.add(k);
    return [`  ike-${c.name} {\n    id-a = ${c.local}\n    id-b = ${c.remotePskId ?? c.remote}\n    secret = "${c.auth.psk}"\n  }`];
  });
  return `connections {\n${connections}\n}\nsecrets {\n${secrets.join('\n')}\n}\n`;
}
