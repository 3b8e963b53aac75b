/**
 * The order checker of the randomized coherence test. Times are wall-clock milliseconds taken in
 * the process that did the thing (one machine, so comparable up to `skewMs`).
 *
 * A write W (a set, or a delete with value null) of key k is *known* to a read R of k on node N
 * when, before R started:
 *   (a) N applied a bus message of W's node with a sequence >= W's (the message of W or a later
 *       one: a node's messages are delivered in order, and a lost one is covered by (b)), or
 *   (b) N's bus became healthy again after W was acknowledged (the recovery flush), or
 *   (c) W was N's own write and was acknowledged.
 * Only writes during which nothing failed (no L2 error, no publish error on the writer) can be
 * known: a failed one may or may not have reached L2 and the others.
 *
 * For every write W known to R, R must return W's value or the value of a write W' of k that
 * may be ordered after W in L2 (W' was not acknowledged before W started). Every value read
 * must have been written by a write that started before the read ended. Anything else is a
 * violation.
 */
export interface WriteRecord {
  readonly node: string
  readonly key: string
  /** null for a delete. */
  readonly value: string | null
  readonly start: number
  readonly ack: number
  readonly seq: number
  readonly clean: boolean
}

export interface ReadRecord {
  readonly node: string
  readonly key: string
  readonly value: string | null
  readonly start: number
  readonly end: number
}

export interface NodeTimeline {
  /** Instance id of the node's bus (the `source` others see). */
  readonly instanceId: string
  /** Messages this node applied: sender instance id, sequence, local time. */
  readonly applied: readonly { readonly source: string; readonly seq: number; readonly at: number }[]
  /** Times this node's bus became healthy again after being unhealthy. */
  readonly recoveries: readonly number[]
}

export interface Violation {
  readonly read: ReadRecord
  readonly reason: string
  readonly known?: WriteRecord
}

export interface CheckResult {
  readonly violations: readonly Violation[]
  /** Reads for which at least one other node's write was known (the interesting ones). */
  readonly readsWithKnownRemoteWrite: number
}

export function checkHistory(
  writes: readonly WriteRecord[],
  reads: readonly ReadRecord[],
  nodes: Readonly<Record<string, NodeTimeline>>,
  skewMs = 2,
): CheckResult {
  const writesByKey = new Map<string, WriteRecord[]>()
  for (const write of writes) {
    let list = writesByKey.get(write.key)
    if (!list) writesByKey.set(write.key, (list = []))
    list.push(write)
  }
  const progress = new Map<string, SourceProgress>()
  for (const [name, timeline] of Object.entries(nodes)) progress.set(name, sourceProgress(timeline))
  const violations: Violation[] = []
  let readsWithKnownRemoteWrite = 0
  for (const read of reads) {
    const candidates = writesByKey.get(read.key) ?? []
    // The writes that could have produced the value read (values are unique; deletes share null).
    const producers = candidates.filter((w) => w.value === read.value && w.start < read.end + skewMs)
    if (read.value !== null && producers.length === 0) {
      violations.push({ read, reason: 'value never written (before the read ended)' })
      continue
    }
    const timeline = nodes[read.node]
    if (!timeline) throw new Error(`no timeline for node ${read.node}`)
    let remoteKnown = false
    for (const write of candidates) {
      if (!write.clean || !isKnown(write, read, timeline, progress.get(read.node)!, nodes, skewMs)) continue
      if (write.node !== read.node) remoteKnown = true
      if (read.value === write.value) continue
      // Fine if the value read may come from a write ordered after the known one in L2.
      if (!producers.some((other) => other.ack + skewMs >= write.start)) {
        violations.push({ read, known: write, reason: 'stale: a known write was overwritten by an older value' })
      }
    }
    if (remoteKnown) readsWithKnownRemoteWrite++
  }
  return { violations, readsWithKnownRemoteWrite }
}

/** Per sender: the times a node applied its messages, with the highest sequence applied so far. */
type SourceProgress = Map<string, { readonly at: number[]; readonly maxSeq: number[] }>

function sourceProgress(timeline: NodeTimeline): SourceProgress {
  const bySource: SourceProgress = new Map()
  const sorted = [...timeline.applied].sort((x, y) => x.at - y.at)
  for (const { source, seq, at } of sorted) {
    let entry = bySource.get(source)
    if (!entry) bySource.set(source, (entry = { at: [], maxSeq: [] }))
    entry.at.push(at)
    entry.maxSeq.push(Math.max(seq, entry.maxSeq[entry.maxSeq.length - 1] ?? 0))
  }
  return bySource
}

/** Highest sequence of `source` the node had applied by `time`, 0 if none. */
function appliedBy(progress: SourceProgress, source: string, time: number): number {
  const entry = progress.get(source)
  if (!entry) return 0
  let low = 0
  let high = entry.at.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (entry.at[mid]! <= time) low = mid + 1
    else high = mid
  }
  return low === 0 ? 0 : entry.maxSeq[low - 1]!
}

function isKnown(
  write: WriteRecord,
  read: ReadRecord,
  timeline: NodeTimeline,
  progress: SourceProgress,
  nodes: Readonly<Record<string, NodeTimeline>>,
  skewMs: number,
): boolean {
  if (write.node === read.node) return write.ack <= read.start
  const source = nodes[write.node]?.instanceId
  if (source !== undefined && appliedBy(progress, source, read.start) >= write.seq) return true
  return timeline.recoveries.some((at) => at <= read.start && write.ack + skewMs < at)
}
