/** The instrumentation scope the meter and the tracer are named after (a test keeps it in step with package.json). */
export const SCOPE_NAME = '@tiercache/opentelemetry'
export const SCOPE_VERSION = '0.1.0'
