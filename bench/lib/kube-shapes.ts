// Kubernetes objects shaped as real clusters hold them, for benches that measure what watching
// them costs: a kubelet's Node is mostly what kipsec never reads.
import { createHash } from 'node:crypto';

/**
 * A Node as a kubelet registers and updates it: labels, annotations, addresses, five conditions,
 * capacity, nodeInfo and 24 cached images (~8 KB of JSON, plus the managedFields the apiserver
 * adds).
 */
export function kubeletNode(name: string, ip: string, tag: string): unknown {
  const t = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const cond = (type: string, status: string, reason: string, message: string) => ({ type, status, reason, message, lastHeartbeatTime: t, lastTransitionTime: t });
  const digest = (k: number): string => createHash('sha256').update(`${name}-${k}`).digest('hex');
  const images = Array.from({ length: 24 }, (_, k) => ({ names: [`registry.example.com/team-${k % 6}/service-${k}@sha256:${digest(k)}`, `registry.example.com/team-${k % 6}/service-${k}:v1.${k}.0`], sizeBytes: 20_000_000 + k * 1_234_567 }));
  const resources = { cpu: '8', 'ephemeral-storage': '101430960Ki', 'hugepages-1Gi': '0', 'hugepages-2Mi': '0', memory: '32882336Ki', pods: '110' };
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: {
      name,
      labels: { 'kipsec.io/test': tag, 'kubernetes.io/arch': 'amd64', 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': name, 'node.kubernetes.io/instance-type': 'm6i.2xlarge', 'topology.kubernetes.io/region': 'eu-west-1', 'topology.kubernetes.io/zone': 'eu-west-1a', 'beta.kubernetes.io/arch': 'amd64', 'beta.kubernetes.io/os': 'linux' },
      annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'volumes.kubernetes.io/controller-managed-attach-detach': 'true', 'csi.volume.kubernetes.io/nodeid': JSON.stringify({ 'ebs.csi.aws.com': `i-${digest(99).slice(0, 17)}` }) },
    },
    spec: { podCIDR: `10.244.${(Number(ip.split('.')[3]) % 250)}.0/24`, providerID: `aws:///eu-west-1a/i-${digest(98).slice(0, 17)}` },
    status: {
      addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: name }, { type: 'InternalDNS', address: `${name}.eu-west-1.compute.internal` }],
      conditions: [
        cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
        cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
        cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
        cond('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
        cond('NetworkUnavailable', 'False', 'RouteCreated', 'RouteController created a route'),
      ],
      capacity: resources, allocatable: { ...resources, cpu: '7910m', memory: '31682336Ki' },
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: { architecture: 'amd64', bootID: digest(1).slice(0, 36), containerRuntimeVersion: 'containerd://1.7.22', kernelVersion: '6.1.0-26-cloud-amd64', kubeProxyVersion: 'v1.36.3', kubeletVersion: 'v1.36.3', machineID: digest(2).slice(0, 32), operatingSystem: 'linux', osImage: 'Debian GNU/Linux 12 (bookworm)', systemUUID: digest(3).slice(0, 36) },
      images,
    },
  };
}
