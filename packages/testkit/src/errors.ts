/** Stable codes of the testkit's errors: what a test setup can branch on or grep for. */
export type TestkitErrorCode =
  /** No usable redis-server binary: install one or point REDIS_SERVER_BIN at it. */
  | 'E_REDIS_BINARY'
  /** No Chromium for the browser tests: run ./scripts/setup.sh or point CHROMIUM_BIN at one. */
  | 'E_CHROMIUM_BINARY'
  /** A redis-server, cluster or Sentinel did not come up in time (its log is in the message). */
  | 'E_REDIS_START'
  /** The server was stopped for good: start a new one. */
  | 'E_REDIS_STOPPED'
  /** The shared Redis of a vitest run is missing: add the testkit's globalSetup. */
  | 'E_NO_SHARED_REDIS'
  /** No usable PostgreSQL (`postgres` and `initdb`): install it or point PG_BIN at its bin directory. */
  | 'E_POSTGRES_BINARY'
  /** A PostgreSQL server did not come up in time, or its first database could not be made (its log is in the message). */
  | 'E_POSTGRES_START'
  /** The PostgreSQL server was stopped: start a new one. */
  | 'E_POSTGRES_STOPPED'

export class TestkitError extends Error {
  readonly code: TestkitErrorCode

  constructor(code: TestkitErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'TestkitError'
    this.code = code
  }
}
