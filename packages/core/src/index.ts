export type {
  Clock,
  InvalidationBus,
  Invalidation,
  LeaseGrant,
  Logger,
  ReceivedInvalidation,
  RemoteEntry,
  RemoteStore,
  StatsSink,
  StoreKey,
} from './ports.js'
