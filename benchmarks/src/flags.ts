import { SCENARIO_IDS } from './scenarios/index.js'

export interface Flags {
  quick: boolean
  /** Scenario ids to run, in registry order; undefined: all. */
  only: string[] | undefined
}

export const USAGE = `usage: pnpm bench [--quick] [--only <id>[,<id>…]]\nscenarios: ${SCENARIO_IDS.join(', ')}`

export class FlagsError extends Error {
  constructor(
    message: string,
    readonly help = false,
  ) {
    super(message)
  }
}

/**
 * `[--quick] [--only <id>[,<id>…]]`: of `pnpm bench` (scenario ids) and of `pnpm chaos` (fault
 * ids, `noun` 'fault'). `--only` comes back in the order of `ids`.
 */
export function parseFlags(argv: readonly string[], ids: readonly string[] = SCENARIO_IDS, noun = 'scenario'): Flags {
  let quick = false
  let only: string[] | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    // pnpm forwards a literal `--` before the flags.
    if (arg === '--') continue
    if (arg === '--quick') quick = true
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg.includes('=') ? arg.slice('--only='.length) : argv[++i]
      if (!value || value.startsWith('--')) throw new FlagsError(`--only needs a ${noun} id`)
      only = [...(only ?? []), ...value.split(',').map((s) => s.trim()).filter(Boolean)]
    } else if (arg === '--help' || arg === '-h') throw new FlagsError('tiercache benchmarks', true)
    else throw new FlagsError(`unknown argument: ${arg}`)
  }
  for (const id of only ?? []) if (!ids.includes(id)) throw new FlagsError(`unknown ${noun}: ${id}`)
  // Registry order, whatever order --only named them in.
  if (only) only = ids.filter((id) => only!.includes(id))
  return { quick, only }
}
