// The three custom resources of DESIGN.md §3 as schema Nodes — the single source of truth for the
// CRD YAML (gen-crds.ts), the TypeScript types (types.ts) and the standalone validator.
import { bool, conditions, cidr, dpdSettings, durationMs, duration, espSettings, hostAddress, ikeSettings, int, interfaceAddress, ipAddress, secretKeyRef } from './fields.js';
import { freeform, list, map, obj, oneOf, opt, req, str } from './schema.js';
import { acceptCel, acceptMessageCel, awsInsideCel, awsInsideProblem, effectiveMode, effectiveModeCel, refusalMessage } from './profiles/index.js';
import { AWS_INSIDE } from './profiles/aws.js';
import { PROFILES, PROFILE_WEAK_ALLOWED, WEAK_TOKENS, celList, type Profile } from './transforms.js';

const labelMap = () => map(str({ maxLength: 63 }), { maxProperties: 32 });

// ---------- IPsecTunnel ----------

const psk = obj({
  file: opt(str({ maxLength: 4096, minLength: 1 }).describe('standalone: path to the PSK file (mode 0600 enforced)')),
  secretRef: opt(secretKeyRef().describe('cluster: Secret holding the PSK (key defaults to "psk")')),
}).rule('has(self.file) != has(self.secretRef)', 'set exactly one of file or secretRef', (s) => (s.file !== undefined) !== (s.secretRef !== undefined))
  .rule('!has(self.file)', 'file is for standalone configs; in a cluster use secretRef', (s, mode) => mode === 'standalone' || s.file === undefined, { fieldPath: '.file' });
psk.clusterOnly = ['secretRef'];

const certificate = obj({
  certFile: opt(str({ maxLength: 4096 })),
  keyFile: opt(str({ maxLength: 4096 })),
  caFile: opt(str({ maxLength: 4096 })),
  caSecretRef: opt(secretKeyRef().describe('cluster: Secret with the CA bundle trusted for the remote peer (key defaults to "ca.crt")')),
}).rule('!has(self.certFile) && !has(self.keyFile) && !has(self.caFile)', 'certFile/keyFile/caFile are for standalone configs; in a cluster the node identity comes from the operator and the peer CA from caSecretRef',
  (s, mode) => mode === 'standalone' || (s.certFile === undefined && s.keyFile === undefined && s.caFile === undefined))
  .rule('has(self.caSecretRef)', 'caSecretRef is required', (s, mode) => mode === 'standalone' || s.caSecretRef !== undefined, { fieldPath: '.caSecretRef' });
certificate.clusterOnly = ['caSecretRef'];
certificate.standaloneRequired = ['certFile', 'keyFile', 'caFile'];

const auth = obj({ psk: opt(psk), certificate: opt(certificate) })
  .rule('has(self.psk) != has(self.certificate)', 'set exactly one auth method: psk or certificate', (s) => (s.psk !== undefined) !== (s.certificate !== undefined));

const local = obj({
  address: opt(ipAddress().describe('standalone: required; cluster: the gateway node\'s address')),
  nodeSelector: opt(labelMap().describe('cluster only; default: nodes labelled kipsec.io/gateway=true')),
  id: opt(str({ maxLength: 255, minLength: 1 }).describe('IKE identity: IP, FQDN, user@FQDN or a DN; default: address')),
  subnets: opt(list(cidr(), { maxItems: 64, minItems: 1 }).describe('cluster default: the cluster\'s pod CIDRs')),
});
local.clusterOnly = ['nodeSelector'];
local.standaloneRequired = ['address', 'subnets'];

const remote = obj({
  address: req(hostAddress().describe('IP or DNS name of the peer')),
  standbyAddresses: opt(list(hostAddress(), { maxItems: 4 }).describe('further peer addresses for HA gateways, tried in order')),
  id: opt(str({ maxLength: 255, minLength: 1 })),
  subnets: req(list(cidr(), { maxItems: 64, minItems: 1 })),
});

const xfrmInterface = obj({
  ifId: req(int({ minimum: 1, maximum: 4294967295 }).describe('XFRMA_IF_ID of the interface and of the tunnel\'s SAs and policies')),
  name: opt(str({ pattern: '^[a-zA-Z0-9_.-]{1,15}$', maxLength: 15 }).describe('interface name (IFNAMSIZ - 1 characters); default xfrm<ifId>')),
  insideAddress: opt(interfaceAddress().describe('our inside address with prefix, e.g. 169.254.10.2/30')),
  remoteInsideAddress: opt(ipAddress()),
  mtu: opt(int({ minimum: 576, maximum: 9000 }).describe('inner MTU of the interface; default: the profile\'s')),
  routeMetric: opt(int({ minimum: 0, maximum: 4294967295 }).describe('metric of the routes over the interface, so two tunnels to one peer (AWS gives two) can both route the remote subnets, the lower metric preferred')),
});

function weakAllowed(profile: Profile | undefined, token: string): boolean {
  return !WEAK_TOKENS.includes(token) || (profile !== undefined && PROFILE_WEAK_ALLOWED[profile].includes(token));
}

/** CEL: every token of every proposal in `list` is not weak, or the profile allows it. */
function weakCel(parent: string, field: string): string {
  const listExpr = `${parent}.${field}`;
  const byProfile = PROFILES.filter((p) => PROFILE_WEAK_ALLOWED[p].length > 0)
    .map((p) => `(self.profile == '${p}' && t in ${celList(PROFILE_WEAK_ALLOWED[p])})`).join(' || ');
  return `!has(${parent}) || !has(${listExpr}) || ${listExpr}.all(p, p.split('-').all(t, !(t in ${celList(WEAK_TOKENS)}) || (has(self.profile) && (${byProfile}))))`;
}
const WEAK_MESSAGE = `weak transform refused (RFC 8247); a profile may allow some: ${PROFILES.filter((p) => PROFILE_WEAK_ALLOWED[p].length > 0).map((p) => `${p}: ${PROFILE_WEAK_ALLOWED[p].join(' ')}`).join('; ')}`;

export const tunnelSpec = obj({
  local: req(local),
  remote: req(remote),
  auth: req(auth),
  // No schema defaults below: what is left out comes from the profile (strongswan without one).
  ike: opt(ikeSettings({ defaults: false })),
  esp: opt(espSettings({ defaults: false })),
  dpd: opt(dpdSettings({ defaults: false })),
  startAction: opt(oneOf(['initiate', 'respond', 'on-demand'] as const).describe('default: the profile\'s (initiate)')),
  profile: opt(oneOf(PROFILES).describe('preset for a peer (aws, gcp, azure: the provider\'s published parameters; strongswan: the plain default); explicit fields override it field by field')),
  mode: opt(oneOf(['policy', 'route'] as const).describe('default: the profile\'s (route for aws, gcp, azure; policy otherwise)')),
  xfrmInterface: opt(xfrmInterface),
  installRoutes: opt(bool().default(true)),
  highAvailability: opt(oneOf(['active-standby', 'active-active'] as const).default('active-standby')),
}).rule(weakCel('self.ike', 'proposals'), WEAK_MESSAGE,
  (s) => (s.ike?.proposals ?? []).every((p) => p.split('-').every((tk) => weakAllowed(s.profile, tk))), { fieldPath: '.ike.proposals' })
  .rule(weakCel('self.esp', 'proposals'), WEAK_MESSAGE,
    (s) => (s.esp?.proposals ?? []).every((p) => p.split('-').every((tk) => weakAllowed(s.profile, tk))), { fieldPath: '.esp.proposals' })
  // After the weak rules, so a weak token's refusal is the first message at that path.
  .rule(acceptCel('ike'), 'proposal not accepted by the profile\'s provider', (s) => s.profile === undefined || refusalMessage(s.profile, 'ike', s.ike?.proposals ?? []) === undefined,
    { fieldPath: '.ike.proposals', messageExpression: acceptMessageCel('ike'), tsMessage: (s) => refusalMessage(s.profile!, 'ike', s.ike?.proposals ?? []) ?? '' })
  .rule(acceptCel('esp'), 'proposal not accepted by the profile\'s provider', (s) => s.profile === undefined || refusalMessage(s.profile, 'esp', s.esp?.proposals ?? []) === undefined,
    { fieldPath: '.esp.proposals', messageExpression: acceptMessageCel('esp'), tsMessage: (s) => refusalMessage(s.profile!, 'esp', s.esp?.proposals ?? []) ?? '' })
  // RFC 4945 §3.1: the certificate proves who the peer is, the configured ID says who it must be.
  .rule(`!has(self.auth.certificate) || has(self.remote.id)`, 'certificate authentication needs remote.id (the identity the peer\'s certificate must carry); without it any certificate the CA issued would be accepted',
    (s) => s.auth.certificate === undefined || s.remote.id !== undefined, { fieldPath: '.remote.id' })
  .rule(`${effectiveModeCel()} != 'route' || has(self.xfrmInterface)`, 'route mode needs xfrmInterface (ifId, insideAddress), whether the mode is set or comes from the profile; or set mode: policy',
    (s) => effectiveMode(s) !== 'route' || s.xfrmInterface !== undefined, { fieldPath: '.xfrmInterface' })
  .rule(`!has(self.xfrmInterface) || ${effectiveModeCel()} == 'route'`, 'xfrmInterface is only used with mode: route',
    (s) => s.xfrmInterface === undefined || effectiveMode(s) === 'route', { fieldPath: '.xfrmInterface' })
  .rule(awsInsideCel(), `not an inside address aws accepts (${AWS_INSIDE.citation})`,
    (s) => s.profile !== 'aws' || s.xfrmInterface?.insideAddress === undefined || awsInsideProblem(s.xfrmInterface.insideAddress) === undefined,
    { fieldPath: '.xfrmInterface.insideAddress', tsMessage: (s) => awsInsideProblem(s.xfrmInterface?.insideAddress ?? '') ?? '' })
  .rule(`!has(self.esp) || !has(self.esp.rekeyTime) || !has(self.dpd) || !has(self.dpd.timeout) || duration(self.dpd.timeout) < duration(self.esp.rekeyTime)`, 'must be shorter than esp.rekeyTime',
    (s) => s.esp?.rekeyTime === undefined || s.dpd?.timeout === undefined || durationMs(s.dpd.timeout) < durationMs(s.esp.rekeyTime), { fieldPath: '.dpd.timeout' });

const saState = () => oneOf(['none', 'connecting', 'established', 'rekeying', 'deleting', 'failed'] as const);

export const tunnelGatewayStatus = obj({
  node: req(str({ maxLength: 253 })),
  role: opt(oneOf(['active', 'standby'] as const)),
  ikeSaState: opt(saState()),
  childSaState: opt(saState()),
  negotiatedSuite: opt(str({ maxLength: 256 })),
  remoteAddress: opt(str({ maxLength: 253 }).describe('the remote address the active gateway uses: spec.remote.address or one of standbyAddresses')),
  inboundSpi: opt(str({ maxLength: 10 })),
  outboundSpi: opt(str({ maxLength: 10 })),
  bytesIn: opt(int({ minimum: 0 })),
  bytesOut: opt(int({ minimum: 0 })),
  packetsIn: opt(int({ minimum: 0 })),
  packetsOut: opt(int({ minimum: 0 })),
  lastRekeyTime: opt(str({ format: 'date-time', maxLength: 64 })),
  lastError: opt(obj({
    notify: opt(str({ maxLength: 64 }).describe('the IKE notify that caused it, e.g. NO_PROPOSAL_CHOSEN')),
    message: req(str({ maxLength: 4096 })),
    time: opt(str({ format: 'date-time', maxLength: 64 })),
    localProposals: opt(list(str({ maxLength: 256 }), { maxItems: 16 })),
    remoteProposals: opt(list(str({ maxLength: 256 }), { maxItems: 16 })),
  })),
});

export const tunnelStatus = obj({
  observedGeneration: opt(int({ minimum: 0 })),
  conditions: opt(conditions()),
  negotiatedSuite: opt(str({ maxLength: 256 })),
  gatewaysEstablished: opt(int({ minimum: 0 })),
  gatewaysTotal: opt(int({ minimum: 0 })),
  activeGateway: opt(str({ maxLength: 253 }).describe('the node that holds the tunnel\'s Lease and runs it (active/standby); several, comma-separated, while a hand-over is reported')),
  gateways: opt(list(tunnelGatewayStatus, { maxItems: 64 })),
  lastRekeyTime: opt(str({ format: 'date-time', maxLength: 64 })),
});

// ---------- IPsecMesh ----------

const issuerRef = obj({
  name: req(str({ maxLength: 253, minLength: 1 })),
  kind: opt(oneOf(['Issuer', 'ClusterIssuer'] as const).default('Issuer')),
  group: opt(str({ maxLength: 253 }).default('cert-manager.io')),
});

const identity = obj({
  source: opt(oneOf(['builtin', 'cert-manager'] as const).default('builtin')),
  issuerRef: opt(issuerRef),
  issuerNamespace: opt(str({ maxLength: 63 }).describe('namespace of the CertificateRequests (an Issuer must live there); default: the operator namespace')),
  certificateLifetime: opt(duration().default('24h')),
}).rule(`(has(self.source) && self.source == 'cert-manager') == has(self.issuerRef)`, 'issuerRef is required with source: cert-manager and only allowed with it',
  (s) => (s.source === 'cert-manager') === (s.issuerRef !== undefined), { fieldPath: '.issuerRef' })
  .rule(`!has(self.certificateLifetime) || (duration(self.certificateLifetime) >= duration('1h') && duration(self.certificateLifetime) <= duration('8760h'))`, 'must be between 1h and 8760h',
    (s) => s.certificateLifetime === undefined || (durationMs(s.certificateLifetime) >= 3_600_000 && durationMs(s.certificateLifetime) <= 8760 * 3_600_000), { fieldPath: '.certificateLifetime' })
  .default({});

const overlaySettings = () => obj({
  protocol: req(oneOf(['vxlan', 'geneve'] as const)),
  port: opt(int({ minimum: 1, maximum: 65535 }).describe('UDP port of the overlay; default 4789 for vxlan (flannel uses 8472), 6081 for geneve')),
});

/** Default UDP port of an overlay protocol (IANA: VXLAN 4789, RFC 7348; Geneve 6081, RFC 8926). */
export const OVERLAY_DEFAULT_PORT = { vxlan: 4789, geneve: 6081 } as const;

const traffic = obj({
  mode: opt(oneOf(['auto', 'routed', 'overlay'] as const).default('auto')
    .describe('routed: pod CIDR <-> pod CIDR in tunnel mode; overlay: the overlay\'s node-to-node UDP in transport mode; auto: overlay when the node has a VXLAN/Geneve device, else routed')),
  overlay: opt(overlaySettings().describe('the overlay to encrypt with mode: overlay')),
  hostToHost: opt(bool().default(false).describe('also encrypt all traffic between node addresses (transport mode)')),
}).rule(`!has(self.mode) || self.mode != 'overlay' || has(self.overlay)`, 'mode: overlay needs overlay (protocol, port)',
  (s) => s.mode !== 'overlay' || s.overlay !== undefined, { fieldPath: '.overlay' })
  .rule(`!has(self.overlay) || (has(self.mode) && self.mode == 'overlay')`, 'overlay is only used with mode: overlay',
    (s) => s.overlay === undefined || s.mode === 'overlay', { fieldPath: '.overlay' })
  .default({});

export const meshSpec = obj({
  nodeSelector: opt(labelMap()),
  traffic: opt(traffic),
  strict: opt(bool().default(true).describe('once a peer is known, its pod traffic is ESP or dropped, never clear (also while no SA exists and while the agent is down); false allows clear traffic while no SA exists (migration)')),
  ike: opt(ikeSettings()),
  esp: opt(espSettings()),
  dpd: opt(dpdSettings()),
  identity: opt(identity),
  datapath: opt(oneOf(['kernel', 'userspace', 'auto'] as const).default('kernel')),
  natTraversal: opt(oneOf(['auto', 'always'] as const).default('auto')),
  mtu: opt(int({ minimum: 576, maximum: 9000 }).describe('inner MTU; default: derived from the node\'s interface MTU')),
  mssClamping: opt(bool().default(true)),
}).rule(`!has(self.ike) || !has(self.ike.proposals) || self.ike.proposals.all(p, p.split('-').all(t, !(t in ${celList(WEAK_TOKENS)})))`, 'weak transform refused (RFC 8247); the mesh has no profile that allows one',
  (s) => (s.ike?.proposals ?? []).every((p) => p.split('-').every((t) => !WEAK_TOKENS.includes(t))), { fieldPath: '.ike.proposals' })
  .rule(`!has(self.esp) || !has(self.esp.proposals) || self.esp.proposals.all(p, p.split('-').all(t, !(t in ${celList(WEAK_TOKENS)})))`, 'weak transform refused (RFC 8247); the mesh has no profile that allows one',
    (s) => (s.esp?.proposals ?? []).every((p) => p.split('-').every((t) => !WEAK_TOKENS.includes(t))), { fieldPath: '.esp.proposals' });

const pairState = () => oneOf(['established', 'connecting', 'failed', 'half', 'unknown'] as const);

export const meshPairStatus = obj({
  nodes: req(list(str({ maxLength: 253 }), { maxItems: 2, minItems: 2 }).describe('the two nodes, in name order')),
  state: req(pairState().describe('established: both report it up; half: only one side does; failed/connecting: what the sides report')),
  message: opt(str({ maxLength: 1024 })),
  since: opt(str({ format: 'date-time', maxLength: 64 })),
});

export const caRotationStatus = obj({
  phase: req(oneOf(['Trusting', 'Reissuing'] as const).describe('Trusting: the bundle holds old and new CA, the old one still signs, until every node trusts the new one; Reissuing: the new CA signs and nodes renew, until every node presents a new-CA certificate; then the old CA leaves the bundle')),
  newCaFingerprint: req(str({ maxLength: 64 })),
  startedAt: opt(str({ format: 'date-time', maxLength: 64 })),
  nodesDone: req(int({ minimum: 0 }).describe('nodes that finished this phase (trust the new CA / present a certificate from it)')),
  nodesTotal: req(int({ minimum: 0 })),
  waitingFor: opt(list(str({ maxLength: 253 }), { maxItems: 10 }).describe('up to 10 nodes the phase waits for')),
  message: opt(str({ maxLength: 1024 })),
});

export const meshStatus = obj({
  observedGeneration: opt(int({ minimum: 0 })),
  conditions: opt(conditions()),
  nodesReady: opt(int({ minimum: 0 })),
  nodesTotal: opt(int({ minimum: 0 })),
  pairsEstablished: opt(int({ minimum: 0 })),
  pairsExpected: opt(int({ minimum: 0 })),
  worstPairs: opt(list(meshPairStatus, { maxItems: 10 }).describe('up to 10 node pairs that are not established, worst first')),
  caFingerprint: opt(str({ maxLength: 64 })),
  rotationInProgress: opt(bool()),
  caRotation: opt(caRotationStatus),
});

// ---------- IPsecNode ----------

const nodeTraffic = () => obj({
  mode: req(oneOf(['routed', 'overlay'] as const)),
  overlay: opt(overlaySettings()),
  hostToHost: opt(bool()),
});

export const nodeSpec = obj({
  endpoint: req(obj({
    address: req(ipAddress()),
    ikePort: opt(int({ minimum: 1, maximum: 65535 }).default(500)),
    nattPort: opt(int({ minimum: 1, maximum: 65535 }).default(4500)),
  })),
  podCIDRs: opt(list(cidr(), { maxItems: 8 })),
  traffic: opt(nodeTraffic().describe('what this node encrypts towards its peers (the mesh setting, or what the agent detected)')),
  identity: opt(obj({
    certFingerprint: opt(str({ pattern: '^[0-9a-f]{64}$', maxLength: 64 }).describe('SHA-256 of the DER certificate')),
    publicKeyFingerprint: opt(str({ pattern: '^[0-9a-f]{64}$', maxLength: 64 }).describe('SHA-256 of the DER SubjectPublicKeyInfo')),
    san: opt(str({ maxLength: 253 })),
    notAfter: opt(str({ format: 'date-time', maxLength: 64 })),
    issuerFingerprint: opt(str({ pattern: '^[0-9a-f]{64}$', maxLength: 64 }).describe('SHA-256 of the DER certificate of the trust-bundle CA that issued the node certificate')),
    trustedCAs: opt(list(str({ pattern: '^[0-9a-f]{64}$', maxLength: 64 }), { maxItems: 8 }).describe('SHA-256 of each CA certificate the agent has given its IKE engine to trust')),
  })),
});

const lastError = () => obj({
  notify: opt(str({ maxLength: 64 }).describe('the IKE notify that caused it, e.g. AUTHENTICATION_FAILED')),
  message: req(str({ maxLength: 1024 })),
  time: opt(str({ format: 'date-time', maxLength: 64 })),
});

export const nodePeerChildStatus = obj({
  name: req(str({ maxLength: 64 })),
  mode: opt(oneOf(['tunnel', 'transport'] as const)),
  spiIn: opt(str({ maxLength: 8 })),
  spiOut: opt(str({ maxLength: 8 })),
});

export const nodePeerStatus = obj({
  node: req(str({ maxLength: 253 })),
  state: req(saState()),
  role: opt(oneOf(['initiator', 'responder'] as const)),
  address: opt(ipAddress()),
  ikeSuite: opt(str({ maxLength: 128 })),
  espSuite: opt(str({ maxLength: 128 })),
  ikeSpis: opt(str({ maxLength: 40 }).describe('"<initiator SPI>_i <responder SPI>_r", as strongSwan prints them')),
  children: opt(list(nodePeerChildStatus, { maxItems: 8 })),
  establishedTime: opt(str({ format: 'date-time', maxLength: 64 })),
  lastRekeyTime: opt(str({ format: 'date-time', maxLength: 64 })),
  bytesIn: opt(int({ minimum: 0 })),
  bytesOut: opt(int({ minimum: 0 })),
  packetsIn: opt(int({ minimum: 0 })),
  packetsOut: opt(int({ minimum: 0 })),
  lastError: opt(lastError()),
});

export const nodeStatus = obj({
  observedGeneration: opt(int({ minimum: 0 })),
  conditions: opt(conditions()),
  datapath: opt(oneOf(['kernel', 'userspace'] as const)),
  datapathOffloads: opt(list(str({ maxLength: 32 }), { maxItems: 16 }).describe('userspace: the kernel offloads the ESP engine uses (udpGso, udpGro, tunVnetHdr, tunCsum, tunTso)')),
  strict: opt(bool().describe('block policies keep pod traffic to known peers ESP-only')),
  traffic: opt(obj({
    mode: req(oneOf(['routed', 'overlay'] as const)),
    overlay: opt(overlaySettings()),
    hostToHost: opt(bool()),
    source: req(oneOf(['mesh', 'detected', 'default'] as const).describe('mesh: spec.traffic.mode; detected: the agent found the overlay device; default: nothing found, routed')),
    message: opt(str({ maxLength: 1024 })),
  })),
  peersUp: opt(int({ minimum: 0 })),
  peersExpected: opt(int({ minimum: 0 })),
  espOverheadBytes: opt(int({ minimum: 0 }).describe('largest per-packet ESP overhead over the established Child SAs (outer header, ESP header, IV, padding, ICV, UDP encapsulation)')),
  maxInnerPacketBytes: opt(int({ minimum: 0 }).describe('largest inner packet that passes without fragmentation: the interface MTU minus espOverheadBytes')),
  certificateNotAfter: opt(str({ format: 'date-time', maxLength: 64 })),
  peers: opt(list(nodePeerStatus, { maxItems: 10000 })),
  peersListed: opt(oneOf(['all', 'notUp', 'someNotUp'] as const).describe('which mesh peers `peers` lists. all (or unset): every one. notUp: only those not up (in a large mesh), so every other expected peer is up. someNotUp: more were not up than are listed; an unlisted peer\'s state is unknown')),
  // Free-form so agents of a newer minor version can add fields without a CRD change.
  tunnels: opt(list(freeform(), { maxItems: 256 }).describe('per-tunnel gateway state ({name, ...IPsecTunnel status.gateways entry}) reported by this node')),
  counters: opt(freeform()),
  xfrmErrors: opt(map(int({ minimum: 0 }), { maxProperties: 64 }).describe('kernel XFRM error counters (/proc/net/xfrm_stat)')),
  lastUpdateTime: opt(str({ format: 'date-time', maxLength: 64 })),
});
