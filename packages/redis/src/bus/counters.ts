/** The counters behind `RedisBus.stats()` (documented there), shared by the parts of one bus. */
export interface BusCounters {
  published: number
  messagesSent: number
  publishErrors: number
  delivered: number
  received: number
  ownIgnored: number
  malformed: number
  tracked: number
  heartbeatsMissed: number
  unhealthyTransitions: number
  subscriptions: number
}

export function newCounters(): BusCounters {
  return {
    published: 0,
    messagesSent: 0,
    publishErrors: 0,
    delivered: 0,
    received: 0,
    ownIgnored: 0,
    malformed: 0,
    tracked: 0,
    heartbeatsMissed: 0,
    unhealthyTransitions: 0,
    subscriptions: 0,
  }
}
