// IKEv2 crypto for the exchange layer (node:crypto in every hot path, DESIGN.md §6).
//
// How an IKE SA uses it (names from RFC 7296):
//
//   IKE_SA_INIT
//     const share = createKeyShare(dhGroupOf(selected)!, { random });        // our KE payload: share.publicValue
//     const gir = share.computeSharedSecret(peerKeData);                      // InvalidKeyExchangeError -> INVALID_SYNTAX
//     const suite = ikeSuiteOf(selected);                                     // from src/ike/policy
//     const keys = deriveIkeSaKeys({ suite, sharedSecret: gir, ni, nr, spiI, spiR });   // SK_d … SK_pr (SecretBytes)
//     const { outbound, inbound } = createSkPair(suite, keys, role, random);
//
//   Every protected message (SK, or each SKF fragment)
//     const bodyLen = outbound.encryptedLength(inner.length);   // write IKE header + SK header lengths first
//     const body = outbound.encrypt(inner, aad);                // aad = header..end of SK/SKF header
//     const inner = inbound.decrypt(body, aad);                 // IntegrityError (drop silently) | SkMalformedError
//
//   IKE_AUTH
//     const octets = signedOctets({ realMessage, peerNonce, prf: createPrf(suite.prfId), skP, idPayloadBody });
//     PSK:   pskAuthData(prf, psk, octets) / verifyPskAuth(prf, psk, peerOctets, authData)
//     Certs: signAuth(chooseSignatureScheme(key, peerHashesOrNull), key, octets)
//            const chain = validateCertificateChain({ endEntity, intermediates, trustAnchors, nowMs: clock.now() });
//            matchIdentity(chain.endEntity, idType, idData);
//            verifySignatureAuth(authMethod, authData, chain.publicKey, peerOctets, { allowedHashes });
//     Every AUTH failure is AuthenticationError / CertificateError (notify AUTHENTICATION_FAILED).
//
//   Any key exchange method, DH or ML-KEM (RFC 9370 additional key exchanges), by role:
//     initiator: const share = initiateKeyExchange(method, { random }); ...; share.computeSharedSecret(keData)
//     responder: const { publicValue, sharedSecret } = respondToKeyExchange(method, peerKeData, { random })
//     keyExchangeDataLength(method, role) is the KE data length the peer in that role must send.
//
//   CREATE_CHILD_SA
//     deriveChildSaKeys({ prfId, skD, suite: childSuiteOf(selected), ni, nr, pfsSharedSecret? })
//     deriveRekeyedIkeSaKeys({ suite: newSuite, oldPrfId, oldSkD, sharedSecret, ni, nr, spiI, spiR })
export { createKeyShare, keyShareFromPrivate, keyExchangeLength, validatePeerPublicValue, modpPrime, type KeyShare, type KeyShareOptions } from './dh.js';
export {
  createMlKemShare, mlKemShareFromSeed, encapsulateMlKem, checkEncapsulationKey, checkCiphertext, isMlKem, mlKemParams, nodeHasMlKem,
  defaultMlKemBackend, InvalidMlKemDataError, ML_KEM_PARAMS, type MlKemParams, type MlKemOptions, type MlKemBackendName,
} from './mlkem.js';
export { initiateKeyExchange, respondToKeyExchange, keyExchangeDataLength, isKemMethod, type KeyExchangeRole, type KeyExchangeOptions, type KeyExchangeResponse } from './key-exchange.js';
export { createPrf, prfPlus, type Prf } from './prf.js';
export {
  deriveIkeSaKeys, deriveRekeyedIkeSaKeys, deriveChildSaKeys, computeSkeyseed, computeRekeyedSkeyseed, expandIkeSaKeys,
  resolveSuite, ikeKeyLengths, childKeyLengths,
  type IkeSuite, type ChildSuite, type IkeSaKeys, type IkeKeyInputs, type ChildSaKeys, type ChildDirectionKeys, type ResolvedSuite,
} from './keys.js';
export { createSkCipher, createSkPair, type SkCipher, type SkCipherParams } from './sk.js';
export {
  signedOctets, pskAuthData, verifyPskAuth, signAuth, verifySignatureAuth, chooseSignatureScheme, pskFrom,
  encodeSignatureHashAlgorithms, decodeSignatureHashAlgorithms, DEFAULT_SIGNATURE_HASHES,
  type SignedOctetsInput, type AuthValue, type VerifyOptions,
} from './auth.js';
export { RFC7427_SCHEMES, CLASSIC_SCHEMES, schemeByName, type SignatureScheme } from './signature-schemes.js';
export { validateCertificateChain, matchIdentity, type ChainInput, type ValidatedChain } from './certs.js';
export { parseCertificate, KeyUsageBit, type CertInfo } from './x509.js';
export { encrAlg, prfAlg, integAlg, dhGroupInfo, encrNeedsKeyLength, type EncrAlg, type PrfAlg, type IntegAlg, type DhGroupInfo } from './algorithms.js';
export {
  UnsupportedAlgorithmError, InvalidKeyExchangeError, IntegrityError, SkMalformedError, AuthenticationError, CertificateError,
  type CertificateErrorCode, type CryptoNotify,
} from './errors.js';
