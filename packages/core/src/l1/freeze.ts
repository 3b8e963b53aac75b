/**
 * Deep-freezes plain objects and arrays in place. Never throws: Buffers and typed arrays cannot be
 * frozen and are skipped; Maps, Sets and Dates are frozen as objects but their contents stay
 * mutable (documented; use `immutability: 'clone'` for values that hold them).
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) freezeObject(value as object)
  return value
}

function freezeObject(object: object): void {
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) return
  Object.freeze(object)
  if (object instanceof Map || object instanceof Set || object instanceof Date) return
  for (const key of Object.keys(object)) {
    const child = (object as Record<string, unknown>)[key]
    if (typeof child === 'object' && child !== null && !Object.isFrozen(child)) freezeObject(child)
  }
}
