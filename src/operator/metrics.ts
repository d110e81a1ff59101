// Prometheus metrics of one operator (its own Registry, so two operators can run in one process
// in tests) and the HTTP endpoints /metrics, /healthz and /readyz.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly csrDecisions = new Counter({ name: 'kipsec_operator_csr_decisions_total', help: 'CSR approvals and denials by reason', labelNames: ['decision', 'reason'], registers: [this.registry] });
  readonly certificatesIssued = new Counter({ name: 'kipsec_operator_certificates_issued_total', help: 'node certificates issued (builtin CA) or relayed (cert-manager)', labelNames: ['mode'], registers: [this.registry] });
  readonly reconciles = new Counter({ name: 'kipsec_operator_reconcile_total', help: 'reconciles by controller and result', labelNames: ['controller', 'result'], registers: [this.registry] });
  readonly reconcileSeconds = new Histogram({ name: 'kipsec_operator_reconcile_duration_seconds', help: 'reconcile latency', labelNames: ['controller'], buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10], registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'kipsec_operator_queue_depth', help: 'keys waiting per controller queue', labelNames: ['controller'], registers: [this.registry] });
  readonly isLeader = new Gauge({ name: 'kipsec_operator_leader', help: '1 while this operator holds the leader lease', registers: [this.registry] });
  readonly caNotAfter = new Gauge({ name: 'kipsec_operator_ca_not_after_seconds', help: 'expiry of the signing CA (unix seconds)', registers: [this.registry] });
  readonly ipsecNodesCollected = new Counter({ name: 'kipsec_operator_ipsecnodes_collected_total', help: 'IPsecNodes deleted because their Node does not exist', registers: [this.registry] });
  readonly statusWrites = new Counter({ name: 'kipsec_operator_status_writes_total', help: 'status writes (only on change)', labelNames: ['kind'], registers: [this.registry] });
  readonly meshPairs = new Gauge({ name: 'kipsec_operator_mesh_pairs', help: 'node pairs of a mesh by state (established, half, connecting, failed, unknown), from the IPsecNode statuses', labelNames: ['mesh', 'state'], registers: [this.registry] });
  readonly apiRequests = new Gauge({ name: 'kipsec_operator_apiserver_requests', help: 'requests this operator sent to the apiserver', labelNames: ['verb'], registers: [this.registry] });

  constructor(defaultMetrics = false) { if (defaultMetrics) collectDefaultMetrics({ register: this.registry }); }
}

export interface HealthSource { healthy(): boolean; ready(): boolean }

/** Serve /metrics, /healthz, /readyz on host:port (port 0 = any); resolves with the bound port. */
export async function startHealthServer(m: OperatorMetrics, h: HealthSource, port: number, host = '0.0.0.0'): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const ok = (good: boolean): void => { res.writeHead(good ? 200 : 503, { 'content-type': 'text/plain' }); res.end(good ? 'ok\n' : 'not ready\n'); };
    if (path === '/healthz' || path === '/livez') return ok(h.healthy());
    if (path === '/readyz') return ok(h.ready());
    if (path === '/metrics') {
      m.registry.metrics().then((text) => { res.writeHead(200, { 'content-type': m.registry.contentType }); res.end(text); }, () => { res.writeHead(500); res.end(); });
      return;
    }
    res.writeHead(404); res.end();
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, host, resolve); });
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : port };
}
