/**
 * Attribute sets, made once per value and reused: a data point's attributes are hashed by the
 * SDK on every record, and building a fresh object per call would add garbage on every loader
 * and L2 call. Keys are families, operations and results: a bounded set.
 */
import type { Attributes } from '@opentelemetry/api'

/** `base` plus `{ [name]: value }`, one frozen object per value. */
export function attributesBy(base: Attributes, name: string): (value: string) => Attributes {
  const made = new Map<string, Attributes>()
  return (value) => {
    let attributes = made.get(value)
    if (attributes === undefined) made.set(value, (attributes = Object.freeze({ ...base, [name]: value })))
    return attributes
  }
}
