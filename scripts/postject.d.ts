// postject ships no types; this is the one function scripts/build-sea.ts calls.
declare module 'postject' {
  export function inject(
    filename: string,
    resourceName: string,
    resourceData: Buffer,
    options?: {sentinelFuse?: string; machoSegmentName?: string; overwrite?: boolean},
  ): Promise<void>
}
