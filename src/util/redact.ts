/** Removes secrets from text before it reaches a terminal or a log: passwords, private keys, auth tokens. */
export function redact(text: string): string {
  return text
    .replace(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, '[REDACTED PRIVATE KEY]')
    .replace(/(password["']?\s*[:=]\s*["']?)[^\s"',}]+/gi, '$1[REDACTED]')
    .replace(/(--password[= ])\S+/g, '$1[REDACTED]')
    .replace(/(--user[= ][^:\s]+:)\S+/g, '$1[REDACTED]')
    .replace(/(token["']?\s*[:=]\s*["']?)[^\s"',}]+/gi, '$1[REDACTED]')
    .replace(/(\/\/[^:/@\s]+:)[^@/\s]+@/g, '$1[REDACTED]@')
}
