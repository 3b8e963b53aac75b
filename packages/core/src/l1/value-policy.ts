/**
 * How L1 protects the values it shares between callers, chosen once from `l1.immutability`:
 *
 * - `freeze`: a value is deep-frozen once, when it enters the cache; L1 and every caller share it.
 * - `clone`: L1 keeps its own copy and every read gets a new one (`structuredClone`).
 * - `none`: callers are trusted not to mutate.
 */
import type { Immutability } from '../options.js'
import { deepFreeze } from './freeze.js'

export interface ValuePolicy {
  /** A value entering the cache (loaded, read from L2, written): what L1 and callers then see. */
  seal(value: unknown): unknown
  /** What L1 keeps of a sealed value. */
  keep(value: unknown): unknown
  /** What a reader gets from a value L1 keeps. */
  out(value: unknown): unknown
  /** Readers may share L1's value (and its settled promise): `out` is the identity. */
  readonly shared: boolean
}

const same = (value: unknown): unknown => value
const copy = (value: unknown): unknown => structuredClone(value)

export function valuePolicy(mode: Immutability): ValuePolicy {
  switch (mode) {
    case 'freeze':
      return Object.freeze({ seal: deepFreeze, keep: same, out: same, shared: true })
    case 'clone':
      return Object.freeze({ seal: same, keep: copy, out: copy, shared: false })
    case 'none':
      return Object.freeze({ seal: same, keep: same, out: same, shared: true })
  }
}
