// The Grafana dashboard of docs/grafana plots only what @tiercache/prometheus exports: a renamed
// metric must not leave a panel empty.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createTieredCache, memoryStore } from '@tiercache/core'
import { prometheusMetrics } from '@tiercache/prometheus'
import { Registry } from 'prom-client'
import { describe, expect, it, onTestFinished } from 'vitest'

const dashboardFile = fileURLToPath(new URL('../../docs/grafana/tiercache-dashboard.json', import.meta.url))

interface Panel {
  readonly title: string
  readonly targets: readonly { readonly expr: string }[]
}

/** The metric names of PromQL expressions: tiercache_* identifiers, histogram suffixes cut. */
const metricsOf = (expr: string): string[] => [...expr.matchAll(/\btiercache_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''))

describe('the Grafana dashboard', () => {
  it('uses only metric names the Prometheus exporter registers, and every one of them', async () => {
    const registry = new Registry()
    const cache = createTieredCache({ name: 'dashboard', l2: memoryStore() })
    const metrics = prometheusMetrics(cache, { registry, databaseQueries: () => 0 })
    onTestFinished(async () => {
      metrics.close()
      await cache.close()
    })
    const exported = new Set((await registry.getMetricsAsJSON()).map((m) => m.name))
    const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as { panels: Panel[] }
    const used = new Set<string>()
    for (const panel of dashboard.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0)
      for (const target of panel.targets) {
        const names = metricsOf(target.expr)
        expect(names.length, `${panel.title}: ${target.expr}`).toBeGreaterThan(0)
        for (const name of names) {
          expect(exported, `${panel.title} plots ${name}`).toContain(name)
          used.add(name)
        }
      }
    }
    const required = ['tiercache_reads_total', 'tiercache_loader_duration_seconds', 'tiercache_l2_duration_seconds', 'tiercache_l2_errors_total', 'tiercache_breaker_state', 'tiercache_bus_healthy', 'tiercache_bus_messages_total', 'tiercache_l1_entries', 'tiercache_recovery_queue_depth']
    for (const name of required) expect(used, `no panel plots ${name}`).toContain(name)
  })
})
