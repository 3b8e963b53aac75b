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
  StoreInfo,
  StoreKey,
} from './ports.js'
