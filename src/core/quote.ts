/**
 * How an offending value appears in an error or warning: in double quotes with JSON escapes, so a newline, a tab or
 * an escape sequence hidden in a lease or a flag shows as \n, \t, \u001b instead of breaking the one-line message or
 * the terminal; and cut at QUOTE_LIMIT characters, so a megabyte of garbage stays one readable line.
 */
export const QUOTE_LIMIT = 64

export function quoted(text: string, limit = QUOTE_LIMIT): string {
  const chars = [...text]
  if (chars.length <= limit) return JSON.stringify(text)
  return `${JSON.stringify(chars.slice(0, limit).join(''))}… (${chars.length} characters)`
}

/** A piece of JSON source text as it appears in a message: already escaped by JSON itself, so only cut to length. */
export function jsonExcerpt(raw: string, limit = QUOTE_LIMIT): string {
  const text = raw.replace(/\s+/g, ' ')
  const chars = [...text]
  return chars.length <= limit ? text : `${chars.slice(0, limit).join('')}… (${chars.length} characters)`
}

/** A value shown as a table cell: as is when it is plain text, else quoted, so a newline cannot split the row. */
export function cellValue(text: string, limit = QUOTE_LIMIT): string {
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  return /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(text) || [...text].length > limit ? quoted(text, limit) : text
}
