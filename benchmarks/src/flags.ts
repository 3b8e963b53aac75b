import { SCENARIO_IDS } from './scenarios/index.js'

export interface Flags {
  quick: boolean
  /** Scenario ids to run, in registry order; undefined: all. */
  only: string[] | undefined
  /**
   * `run`: a full run, then its report published as docs/benchmarks.md; `last`: publish the last
   * full run's results/latest.json without running. Only full runs are published.
   */
  publish?: 'run' | 'last'
}

export const USAGE = `usage: pnpm bench [--quick] [--only <id>[,<id>…]] | --publish | --publish-last\nscenarios: ${SCENARIO_IDS.join(', ')}`

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
 * ids, `noun` 'fault'); `--publish` and `--publish-last` of `pnpm bench` only. `--only` comes
 * back in the order of `ids`.
 */
export function parseFlags(argv: readonly string[], ids: readonly string[] = SCENARIO_IDS, noun = 'scenario'): Flags {
  let quick = false
  let only: string[] | undefined
  let publish: Flags['publish']
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    // pnpm forwards a literal `--` before the flags.
    if (arg === '--') continue
    if (arg === '--quick') quick = true
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg.includes('=') ? arg.slice('--only='.length) : argv[++i]
      if (!value || value.startsWith('--')) throw new FlagsError(`--only needs a ${noun} id`)
      only = [...(only ?? []), ...value.split(',').map((s) => s.trim()).filter(Boolean)]
    } else if (noun === 'scenario' && (arg === '--publish' || arg === '--publish-last')) publish = arg === '--publish' ? 'run' : 'last'
    else if (arg === '--help' || arg === '-h') throw new FlagsError('tiercache benchmarks', true)
    else throw new FlagsError(`unknown argument: ${arg}`)
  }
  for (const id of only ?? []) if (!ids.includes(id)) throw new FlagsError(`unknown ${noun}: ${id}`)
  // Registry order, whatever order --only named them in.
  if (only) only = ids.filter((id) => only!.includes(id))
  // The published page shows every scenario's full figures, never a partial or smoke run.
  if (publish !== undefined && (quick || only)) throw new FlagsError(`--publish${publish === 'last' ? '-last' : ''} publishes a full run: drop --quick and --only`)
  return publish === undefined ? { quick, only } : { quick, only, publish }
}
