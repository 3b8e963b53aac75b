// The task workload of task-workload.ts on PostgreSQL: a real server the scenario starts on a
// loopback port and stops, 100,000 seeded tasks, 4 processes × 15 s per mode, without and with
// the cache. Run alone: `pnpm bench --only task-workload-postgres` (`--quick`: 10,000 tasks,
// 2 processes, 3 s).
import { taskWorkloadScenario } from './task-workload.js'

export const scenario = taskWorkloadScenario('postgres')
