export { createTieredCache } from './cache.js'
export { l1KeyOfStoreKey } from './keys.js'
export type { ReadyOptions, ReadyState, TieredCache } from './cache.js'
export type { BatchLoader, BatchLoaderContext, Family, FamilyDefinition, Loader, LoaderContext, ValueSchema } from './family.js'
export { DEFAULTS, defaultSizeOf } from './options.js'
export type { TagOptions } from './tags/tag-options.js'
export type {
  BreakerOptions,
  EntryOptions,
  GetOrSetOptions,
  Immutability,
  L1Options,
  LeaseOptions,
  SetOptions,
  WriteOptions,
  TieredCacheOptions,
} from './options.js'
export { parseDuration } from './duration.js'
export type { Duration } from './duration.js'
export {
  CacheClosedError,
  InvalidOptionsError,
  L2TimeoutError,
  L2UnavailableError,
  LoaderError,
  LoaderTimeoutError,
  SerializationError,
  TierCacheError,
  ValueTooLargeError,
} from './errors.js'
export type { TierCacheErrorCode } from './errors.js'
export { noopStatsSink, silentLogger, systemClock } from './defaults.js'
export { memoryStore, memoryBackend } from './memory/store.js'
export type { MemoryBackend, MemoryStore, MemoryStoreOptions } from './memory/store.js'
export { memoryBus, memoryBusNetwork } from './memory/bus.js'
export type { MemoryBus, MemoryBusNetwork, MemoryBusOptions } from './memory/bus.js'
export type { CacheEventListener, CacheEventName, CacheEvents, StaleReason } from './events.js'
export type { BreakerState, CacheStats, LatencySnapshot } from './stats.js'
export type {
  Clock,
  InvalidationBus,
  Invalidation,
  LeaseGrant,
  Logger,
  PreparedMessage,
  ReceivedInvalidation,
  RemoteEntry,
  RemoteStore,
  StatsSink,
  StoreChanges,
  StoreInfo,
  StoreInfoOptions,
  StoreKey,
  TagVersions,
} from './ports.js'
export { L2_CHANNEL, LOADER_CHANNEL, l2Channel, loaderChannel } from './diagnostics.js'
export type { L2TraceContext, LoaderTraceContext } from './diagnostics.js'
