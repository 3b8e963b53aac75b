export { defineRemoteStoreContract } from './remote-store.js'
export type { RemoteStoreFixture } from './remote-store.js'
export { defineInvalidationBusContract } from './invalidation-bus.js'
export type { InvalidationBusFixture } from './invalidation-bus.js'
