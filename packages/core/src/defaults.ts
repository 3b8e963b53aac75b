import type { Clock, Logger, StatsSink } from './ports.js'

/** Wall-clock time. */
export const systemClock: Clock = Object.freeze({ now: Date.now })

const nothing = (): void => {}

/** A logger that drops everything: the default, so the engine never checks for one. */
export const silentLogger: Logger = Object.freeze({ debug: nothing, info: nothing, warn: nothing, error: nothing })

/** A stats sink that records nothing: the default. */
export const noopStatsSink: StatsSink = Object.freeze({ increment: nothing, timing: nothing })
