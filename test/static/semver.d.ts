// semver ships no types and is here through npm's own dependency tree (jest, eslint, ...): the
// lockfile spec needs only these three functions to compare engines ranges the way npm does.
declare module 'semver' {
  export function minVersion(range: string): { version: string } | null;
  export function satisfies(version: string, range: string): boolean;
  export function major(version: string): number;
}
