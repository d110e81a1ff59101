// A list with at least one element, as a type: code that reads its first element needs no check.

export type NonEmpty<T> = readonly [T, ...T[]];

export function isNonEmpty<T>(xs: readonly T[]): xs is NonEmpty<T> {
  return xs.length > 0;
}
