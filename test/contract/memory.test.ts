import { memoryBackend, memoryBus, memoryBusNetwork, memoryStore } from '@tiercache/core'
import { defineInvalidationBusContract, defineRemoteStoreContract } from '@tiercache/testkit'

defineRemoteStoreContract('memoryStore', async () => {
  const backend = memoryBackend()
  return {
    store: memoryStore({ namespace: 'contract', backend }),
    sibling: memoryStore({ namespace: 'contract-sibling', backend }),
    cleanup: async () => {},
  }
})

defineInvalidationBusContract('memoryBus', async () => {
  const network = memoryBusNetwork()
  const a = memoryBus({ network })
  const b = memoryBus({ network })
  return {
    a,
    b,
    cleanup: async () => {
      await Promise.all([a.close(), b.close()])
    },
  }
})
