// The scenarios, in the order they run. A scenario whose file is missing or does not export
// `scenario` yet is reported as "not available", never a crash of the run.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Scenario } from '../scenario.js'

export const SCENARIO_IDS = ['l1-hit', 'l2-hit', 'codec', 'stampede', 'propagation', 'scale', 'tags', 'memory', 'task-workload', 'task-workload-postgres', 'outage', 'loading'] as const

export type ScenarioId = (typeof SCENARIO_IDS)[number]

export type LoadedScenario = { id: string; scenario: Scenario } | { id: string; unavailable: string }

export async function loadScenario(id: string): Promise<LoadedScenario> {
  const url = new URL(`./${id}.ts`, import.meta.url)
  if (!existsSync(fileURLToPath(url))) return { id, unavailable: `not available: benchmarks/src/scenarios/${id}.ts does not exist yet` }
  try {
    const mod = (await import(url.href)) as { scenario?: Scenario }
    if (!mod.scenario || typeof mod.scenario.run !== 'function') {
      return { id, unavailable: `not available: scenarios/${id}.ts does not export a scenario yet` }
    }
    return { id, scenario: mod.scenario }
  } catch (error) {
    return { id, unavailable: `not available: scenarios/${id}.ts failed to load: ${(error as Error).message.split('\n')[0]}` }
  }
}
