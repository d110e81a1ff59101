// ML-KEM vectors: the NIST ACVP subset (mlkem-acvp.json) and C2SP CCTV modulus-check keys
// (mlkem-cctv-modulus.json), each naming its source and commit, plus the parameter-set names.
// Kept next to the tests that use it rather than in test/vectors/, which the ML-KEM work does not own.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DhId } from '../../../../src/ike/constants.js';

type Set = 'ML-KEM-512' | 'ML-KEM-768' | 'ML-KEM-1024';
export interface AcvpMlKem {
  readonly source: string;
  readonly keyGen: readonly { parameterSet: Set; tcId: number; d: string; z: string; ek: string; dkSha256: string }[];
  readonly encapsulation: readonly { parameterSet: Set; tcId: number; ek: string; m: string; c: string; k: string }[];
  readonly decapsulation: readonly { parameterSet: Set; tcId: number; reason: string; d: string; z: string; c: string; k: string }[];
  readonly encapsulationKeyCheck: readonly { parameterSet: Set; tcId: number; testPassed: boolean; reason: string; ek: string }[];
}

export interface CctvModulus {
  readonly source: string;
  readonly vectors: readonly { parameterSet: Set; line: number; ek: string }[];
}

const load = <T extends { source: string }>(name: string, mustName: string): T => {
  const v = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), name), 'utf8')) as T;
  if (typeof v.source !== 'string' || !v.source.includes(mustName)) throw new Error(`${name} lacks its source`);
  return v;
};
export const acvp = load<AcvpMlKem>('mlkem-acvp.json', 'ACVP-Server');
export const cctv = load<CctvModulus>('mlkem-cctv-modulus.json', 'C2SP/CCTV');

export const METHOD: Readonly<Record<Set, number>> = { 'ML-KEM-512': DhId.ML_KEM_512, 'ML-KEM-768': DhId.ML_KEM_768, 'ML-KEM-1024': DhId.ML_KEM_1024 };
