// src/pki: keys, CSRs, CA signing and chain verification (DESIGN.md §4). Imports only src/common.
export { KeyPair, generateKeyPair, exportPrivateKeyPem, importPrivateKeyPem, writeKeyFile, readKeyFile } from './keys.js';
export * from './certs.js';
export { PkiError, PKI_CODES } from './errors.js';
export { x509 } from './provider.js';
