/**
 * Deep-freezes plain objects and arrays in place. Never throws: Buffers and typed arrays cannot be
 * frozen and are skipped; Maps, Sets and Dates are frozen as objects but their contents stay
 * mutable (documented; use `immutability: 'clone'` for values that hold them).
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) freezeObject(value as object)
  return value
}

// Runs on every L2 hit and fill over every node of the value: arrays by index and plain objects
// by for-in, so that freezing allocates no key arrays (Object.keys per node showed in profiles).
function freezeObject(object: object): void {
  if (Array.isArray(object)) {
    Object.freeze(object)
    for (let i = 0; i < object.length; i++) {
      const child: unknown = object[i]
      if (typeof child === 'object' && child !== null && !Object.isFrozen(child)) freezeObject(child)
    }
    return
  }
  const proto: unknown = Object.getPrototypeOf(object)
  if (proto === Object.prototype || proto === null) {
    Object.freeze(object)
    // Plain objects inherit no enumerable keys: for-in sees exactly the own ones.
    for (const key in object) {
      const child = (object as Record<string, unknown>)[key]
      if (typeof child === 'object' && child !== null && !Object.isFrozen(child)) freezeObject(child)
    }
    return
  }
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) return
  Object.freeze(object)
  if (object instanceof Map || object instanceof Set || object instanceof Date) return
  for (const key of Object.keys(object)) {
    const child = (object as Record<string, unknown>)[key]
    if (typeof child === 'object' && child !== null && !Object.isFrozen(child)) freezeObject(child)
  }
}
