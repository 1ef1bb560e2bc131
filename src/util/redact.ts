/**
 * Removes secrets from text before it reaches a terminal or a log: passwords, private keys, auth tokens.
 *
 * Two layers: the secret values this process actually holds (registerSecret(), called when the etcd password is
 * known), which are replaced wherever and however they appear; and patterns for secrets it may not know
 * (name:password in URLs or --user values, password=/token= fields, PEM private key blocks, even cut-off ones).
 */
const secrets = new Set<string>()

/** Secrets shorter than this are only redacted by pattern: replacing every "a" in a message would hide the message. */
const MIN_SECRET_LENGTH = 3

/** Remember a value that must never be printed (the etcd password). */
export function registerSecret(value: string | undefined): void {
  if (value !== undefined && value.length >= MIN_SECRET_LENGTH) secrets.add(value)
}

/** For tests. */
export function clearSecrets(): void {
  secrets.clear()
}

const REDACTED = '[REDACTED]'

export function redact(text: string): string {
  let out = text
  // Longest first, so a secret containing another is replaced whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join(REDACTED)
    // The same value as it appears JSON- or URL-encoded inside a message.
    const json = JSON.stringify(secret).slice(1, -1)
    if (json !== secret) out = out.split(json).join(REDACTED)
    const uri = encodeURIComponent(secret)
    if (uri !== secret) out = out.split(uri).join(REDACTED)
  }
  return (
    out
      // A PEM private key block, also one cut off before its END line.
      .replace(
        /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----|[\s\S]*$)/g,
        '[REDACTED PRIVATE KEY]',
      )
      // password: "x", "password":"x", password=x, passwd=x, pwd=x (quoted values may contain spaces).
      .replace(/((?:password|passwd|pwd)["']?\s*[:=]\s*)(["'])(?:\\.|(?!\2).)*\2/gi, `$1$2${REDACTED}$2`)
      .replace(/((?:password|passwd|pwd)["']?\s*[:=]\s*)(?!["'[])[^\s,;&}]+/gi, `$1${REDACTED}`)
      // --password x / --password=x, and --user name:password (either spelling, also as env assignments).
      .replace(/(--password[= ])(?!\[REDACTED\])\S+/g, `$1${REDACTED}`)
      // ("name:password" itself is the placeholder of help texts; a real password "password" is still a registered secret.)
      .replace(/((?:--user[= ]|(?:FLANNELCTL|ETCDCTL)_USER=)[^:\s]+:)(?!\[REDACTED\]|password\b)\S+/gi, `$1${REDACTED}`)
      .replace(/((?:FLANNELCTL|ETCDCTL)_PASSWORD=)(?!\[REDACTED\])\S+/g, `$1${REDACTED}`)
      // Auth tokens (etcd simple tokens look like "abcdEF.42"; JWTs are three base64url parts).
      .replace(/(token["']?\s*[:=]\s*["']?)(?!\[REDACTED\])[^\s"',}]+/gi, `$1${REDACTED}`)
      .replace(/\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}/g, REDACTED)
      // user:password@ in URLs.
      .replace(/(\/\/[^:/@\s]+:)[^@/\s]+@/g, `$1${REDACTED}@`)
  )
}
