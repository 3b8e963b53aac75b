import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TestkitError } from './errors.js'

const INSTALL_HINT = 'Install it with `sudo apt-get install -y openssl` (Debian/Ubuntu) or `brew install openssl` (macOS).'

/** A certificate and its private key, as PEM text and as files. */
export interface TlsKeyPair {
  /** PEM of the certificate. */
  readonly cert: string
  /** PEM of the private key. */
  readonly key: string
  readonly certFile: string
  readonly keyFile: string
}

/**
 * A throwaway PKI in a temp directory: a CA, a server certificate it signed (SAN IP 127.0.0.1
 * and DNS localhost) and a client certificate it signed. Valid for a day; EC P-256 keys.
 */
export interface TlsCertificates {
  readonly dir: string
  /** PEM of the CA certificate: what a client trusts (`tls: { ca }`). */
  readonly ca: string
  readonly caFile: string
  readonly server: TlsKeyPair
  /** For servers that require client certificates (`tls: { ca, cert, key }`). */
  readonly client: TlsKeyPair
  /** Removes the directory. Idempotent; also done when this process exits. */
  remove(): void
}

const live = new Set<string>()
let exitHookInstalled = false

function openssl(dir: string, args: readonly string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: Buffer }
    if (failure.code === 'ENOENT') {
      throw new TestkitError('E_REDIS_START', `openssl was not found on PATH; the testkit needs it to make TLS certificates. ${INSTALL_HINT}`, { cause: error })
    }
    const stderr = failure.stderr?.toString().trim() ?? ''
    throw new TestkitError('E_REDIS_START', `openssl ${args[0]} failed${stderr ? `: ${stderr}` : ''}`, { cause: error })
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

/** A new key and its certificate, signed by the CA in `dir`, with these v3 extensions. */
function issue(dir: string, name: string, subject: string, extensions: readonly string[]): TlsKeyPair {
  const keyFile = join(dir, `${name}.key`)
  const certFile = join(dir, `${name}.crt`)
  const extFile = join(dir, `${name}.ext`)
  writeFileSync(extFile, ['basicConstraints = CA:FALSE', 'keyUsage = critical, digitalSignature, keyEncipherment', ...extensions, ''].join('\n'))
  openssl(dir, ['req', '-new', ...EC_KEY, '-keyout', keyFile, '-out', join(dir, `${name}.csr`), '-subj', subject])
  openssl(dir, [
    'x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', 'ca.crt', '-CAkey', 'ca.key',
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '1', '-extfile', extFile, '-out', certFile,
  ])
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile }
}

/** Makes a CA, a server and a client certificate with the openssl CLI (see `TlsCertificates`). */
export function createTlsCertificates(): TlsCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-tls-'))
  live.add(dir)
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.once('exit', () => {
      for (const path of live) rmSync(path, { recursive: true, force: true })
    })
  }
  const remove = () => {
    live.delete(dir)
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    openssl(dir, [
      'req', '-x509', '-new', ...EC_KEY, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=tiercache test CA',
      '-addext', 'basicConstraints = critical, CA:TRUE', '-addext', 'keyUsage = critical, keyCertSign, cRLSign',
    ])
    const server = issue(dir, 'server', '/CN=localhost', ['extendedKeyUsage = serverAuth, clientAuth', 'subjectAltName = IP:127.0.0.1, DNS:localhost'])
    const client = issue(dir, 'client', '/CN=tiercache test client', ['extendedKeyUsage = clientAuth'])
    const caFile = join(dir, 'ca.crt')
    return { dir, ca: readFileSync(caFile, 'utf8'), caFile, server, client, remove }
  } catch (error) {
    remove()
    throw error
  }
}

/** The `redis-server` arguments that add a TLS port with these certificates. */
export function tlsServerArgs(certificates: TlsCertificates, tlsPort: number, clientCerts: boolean): string[] {
  return [
    '--tls-port', String(tlsPort),
    '--tls-cert-file', certificates.server.certFile,
    '--tls-key-file', certificates.server.keyFile,
    '--tls-ca-cert-file', certificates.caFile,
    '--tls-auth-clients', clientCerts ? 'yes' : 'no',
  ]
}
