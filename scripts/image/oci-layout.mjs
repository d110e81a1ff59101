#!/usr/bin/env node
// Writes an OCI image layout (image-spec v1.1 image-layout.md: oci-layout, index.json,
// blobs/sha256/…) for one linux/amd64 image from gzip'd layer tars, plus Docker's manifest.json
// beside it (what `docker save` writes too), so one archive of the directory loads everywhere:
// `docker load` (manifest.json), `podman load` / skopeo (oci-archive, ref.name), `ctr images
// import` and `kind load image-archive` (io.containerd.image.name).
//
//   node scripts/image/oci-layout.mjs DIR < spec.json
//   spec: { ref, version, created (epoch s), user, nodeVersion, layers: [{ file: x.tar.gz, createdBy }] }
//   each x.tar.gz has x.tar.diffid beside it: the sha256 of the uncompressed tar.
//
// Every JSON document is written with a fixed key order and no build-time clock: the same layers
// and spec give the same digests. DIR/summary.txt lists them.
import { createHash } from 'node:crypto';
import { copyFileSync, linkSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MT = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
};

const dir = process.argv[2];
if (!dir) { console.error('usage: oci-layout.mjs DIR < spec.json'); process.exit(2); }
const spec = JSON.parse(readFileSync(0, 'utf8'));
const blobs = join(dir, 'blobs', 'sha256');
mkdirSync(blobs, { recursive: true });

const sha256File = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** Put bytes (or a file, hard-linked when possible) into blobs/ and return its descriptor. */
function blob(mediaType, { bytes, file }) {
  const hex = bytes ? createHash('sha256').update(bytes).digest('hex') : sha256File(file);
  const dest = join(blobs, hex);
  if (bytes) writeFileSync(dest, bytes);
  else { try { linkSync(file, dest); } catch { copyFileSync(file, dest); } }
  return { mediaType, digest: `sha256:${hex}`, size: bytes ? bytes.length : statSync(file).size };
}

const json = (o) => Buffer.from(JSON.stringify(o));
const created = new Date(spec.created * 1000).toISOString().replace(/\.000Z$/, 'Z');

const layers = spec.layers.map((l) => ({
  desc: blob(MT.layerGzip, { file: l.file }),
  diffId: `sha256:${readFileSync(l.file.replace(/\.gz$/, '.diffid'), 'utf8').trim()}`,
  createdBy: l.createdBy,
}));
for (const l of layers) if (!/^sha256:[0-9a-f]{64}$/.test(l.diffId)) throw new Error(`bad diff_id ${l.diffId}`);

// image-spec config.md; key order fixed by this literal.
const config = {
  created,
  architecture: 'amd64',
  os: 'linux',
  config: {
    User: spec.user,
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    Entrypoint: ['/usr/local/bin/node', '/app/bin/kipsec.js'],
    WorkingDir: '/app',
    Labels: {
      'org.opencontainers.image.title': 'kipsec',
      'org.opencontainers.image.description': 'Kubernetes-native IPsec: operator and per-node IKEv2 agent',
      'org.opencontainers.image.version': spec.version,
      'org.opencontainers.image.licenses': 'Apache-2.0',
      'org.opencontainers.image.base.name': 'debian:bookworm (mmdebstrap minbase)',
      'io.kipsec.node.version': spec.nodeVersion,
    },
  },
  rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  history: layers.map((l) => ({ created, created_by: l.createdBy })),
};
const configDesc = blob(MT.config, { bytes: json(config) });

const manifest = {
  schemaVersion: 2,
  mediaType: MT.manifest,
  config: configDesc,
  layers: layers.map((l) => l.desc),
  annotations: { 'org.opencontainers.image.version': spec.version, 'org.opencontainers.image.created': created },
};
const manifestDesc = blob(MT.manifest, { bytes: json(manifest) });

const tag = spec.ref.slice(spec.ref.lastIndexOf(':') + 1);
writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
writeFileSync(join(dir, 'index.json'), JSON.stringify({
  schemaVersion: 2,
  mediaType: MT.index,
  manifests: [{
    ...manifestDesc,
    annotations: { 'io.containerd.image.name': spec.ref, 'org.opencontainers.image.ref.name': spec.ref },
    platform: { architecture: 'amd64', os: 'linux' },
  }],
}));
// Docker's own archive format (docker load before v25 reads only this).
writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{
  Config: `blobs/sha256/${configDesc.digest.slice(7)}`,
  RepoTags: [spec.ref],
  Layers: layers.map((l) => `blobs/sha256/${l.desc.digest.slice(7)}`),
}]));

const mib = (n) => (n / 1048576).toFixed(1);
const total = layers.reduce((s, l) => s + l.desc.size, 0) + configDesc.size;
writeFileSync(join(dir, '..', 'summary.txt'), [
  `image    ${spec.ref} (tag ${tag})`,
  `manifest ${manifestDesc.digest}`,
  `config   ${configDesc.digest}`,
  ...layers.map((l, i) => `layer ${i + 1}  ${l.desc.digest} ${mib(l.desc.size).padStart(6)} MiB gzip  ${l.createdBy}`),
  `compressed size ${mib(total)} MiB (${total} bytes, config and layers)`,
  '',
].join('\n'));
