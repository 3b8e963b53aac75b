// The contract between the harness (main.ts) and the scenario files in scenarios/.
//
// A scenario file exports `scenario: Scenario`. It measures, returns rows, and never formats:
// the harness computes ratios, prints tables, writes results/latest.json and results/REPORT.md.
// Anything a scenario starts (clients, servers, children) it stops before `run` settles; the
// harness additionally kills every child and private Redis it handed out once the scenario ends.
import type { RedisServer, TaskFixtures } from '@tiercache/testkit'

/** The figures a row can carry, in the units their names say (µs, bytes, ms, %). */
export interface Figures {
  opsPerSec?: number
  p50Us?: number
  p99Us?: number
  maxUs?: number
  bytes?: number
  bytesPerEntry?: number
  loaderCalls?: number
  dbQueries?: number
  reductionPct?: number
  optimalReductionPct?: number
  staleReads?: number
  /** Errors surfaced to callers. */
  errors?: number
  /** Calls slower than 1 s (outage). */
  slowCalls?: number
  /** Time from Redis being available again to the cache serving from it again. */
  recoveryMs?: number
  /** Outage: latency of the phase before the fault and after recovery (p99Us/maxUs are the fault phase). */
  p99BeforeUs?: number
  p99AfterUs?: number
  maxAfterUs?: number
  /** Reads answered from L1 or L2 over all lookups, in % (loading). */
  hitRatePct?: number
  /** Loader calls per second, all processes together (loading). */
  loaderCallsPerSec?: number
  /** Entries read from Redis per second, all processes together (loading). */
  l2ReadsPerSec?: number
  /** Entries resident in L1 while a row measured (scale). */
  entries?: number
  /** Heap the process grew by per resident entry, key and value included (scale). */
  heapBytesPerEntry?: number
  /** Cache processes on one Redis (scale). */
  processes?: number
  /** Messages each node's subscriber connection received per second while idle (scale). */
  busMessagesPerNodePerSec?: number
  /** Entries of the invalidated family resident in L1 (scale). */
  residentEntries?: number
  /** Redis masters the cache read from: 1 is a single node (scale). */
  masters?: number
}

export type Figure = keyof Figures

/** One line of a scenario's table and of latest.json. */
export interface Row extends Figures {
  /** The library or baseline: `tiercache`, `lru-cache`, `ioredis`, `bentocache`, `cacheable`, `cache-manager`, `json`, … */
  name: string
  /** The setting or operation, e.g. `get`, `defaults`, `useClone: false`, `GET+JSON.parse`. */
  variant: string
  /**
   * Rows compare with the baseline row of their own group (e.g. `one at a time` and `64 in flight`
   * in l2-hit, or `task-progress` and `task-list-page` in codec). Rows without a group form one group.
   */
  group?: string
  /** The row every other row of its group is divided by. One per group. */
  baseline?: boolean
  /**
   * Compare within this key instead of `group` (one baseline per key): rows of one group that
   * measure at several sizes compare size by size.
   */
  ratioKey?: string
  /** Filled by the harness: this row's `ratioOf` figure over its group's baseline figure. */
  ratio?: number
  /** Shown in the table: why a row has no figures (skipped, timed out, not available) or a caveat. */
  note?: string
}

/**
 * The task-domain objects every scenario measures on: the testkit's fixtures (a task with 20
 * host details, the same task without them, a page of 20 task summaries), parsed JSON.
 */
export type { Json, JsonObject } from '@tiercache/testkit'
export type Fixtures = TaskFixtures

export interface RedisEndpoint {
  host: string
  port: number
  /** `redis://host:port` */
  url: string
}

/** Options of one measurement; see measure.ts. */
export interface ChildOptions {
  /** Hard deadline for the child: it is killed after this long and the call rejects. @default 120000 */
  timeoutMs?: number
  /** Extra environment for the child. */
  env?: Record<string, string>
  /** Extra Node flags for the child (e.g. `--expose-gc`). */
  execArgv?: readonly string[]
  /** Forwarded as `ChildContext.redis`; defaults to the shared server of the run. */
  redis?: RedisEndpoint
}

/** What a child process gets (the same data a scenario has, minus what cannot cross a process). */
export interface ChildContext {
  quick: boolean
  redis: RedisEndpoint
  fixtures: Fixtures
  /** Suggested measuring time per task, in ms (short with --quick). */
  timeMs: number
  /** A key prefix no other scenario or child uses. */
  keyPrefix: string
  log(message: string): void
}

/**
 * A function a child process runs: `export async function bentocacheL1(args, ctx): Promise<Row[]>`.
 * Everything it opens it closes; the process is killed anyway when the harness is done with it.
 */
export type ChildEntry<A = unknown> = (args: A, ctx: ChildContext) => Promise<Row[]>

export interface ScenarioContext {
  /** `--quick`: a few seconds per scenario (CI smoke run). */
  readonly quick: boolean
  /** Suggested measuring time per tinybench task, in ms. */
  readonly timeMs: number
  /** The run's shared redis-server. Use `keyPrefix` for keys; never FLUSHALL/FLUSHDB/KEYS. */
  readonly redis: RedisEndpoint
  /** A prefix unique to this scenario, e.g. `bench:l2-hit:`. */
  readonly keyPrefix: string
  readonly fixtures: Fixtures
  /** Absolute path of the repository root. */
  readonly repoRoot: string
  /**
   * Runs `exportName` of `module` (a `ChildEntry`) in a fresh `node --import tsx` process and
   * returns its rows. `module` is absolute, a file URL, or relative to benchmarks/src
   * (e.g. `peers/bentocache.ts`). Peers and each library's candidates run this way so that one
   * library's client or codec never shares a heap or JIT profile with another's.
   * Rejects when the child fails, exits without rows, or exceeds its deadline (it is killed).
   */
  runInChild<A>(module: string | URL, exportName: string, args: A, options?: ChildOptions): Promise<Row[]>
  /** A private redis-server (for memory figures or fault injection), stopped when the scenario ends. */
  startRedis(): Promise<RedisServer>
  /** A progress line under the scenario's own. */
  log(message: string): void
}

export interface Scenario {
  /** Stable id: the key in latest.json and the `--only` name. */
  id: string
  title: string
  /** One header line: what it measures and how to run it alone (`pnpm bench --only <id>`). */
  measures: string
  /** The figure ratios compare. @default 'opsPerSec' */
  ratioOf?: Figure
  /** Figures to show as columns, in order; by default every figure some row carries. */
  columns?: Figure[]
  /** Goal text printed under the table (e.g. `tiercache get ≥ 1.0× lru-cache in an async function`). */
  goal?: string
  run(ctx: ScenarioContext): Promise<Row[]>
}
