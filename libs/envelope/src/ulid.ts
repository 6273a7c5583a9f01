import { monotonicFactory } from 'ulid';

/**
 * Crockford base32 ULID: 26 characters, 48-bit time then 80 bits of randomness. The first
 * character is at most `7`: anything above overflows the 128 bits (the ULID spec rejects it).
 */
export const ULID_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

export type UlidFactory = (seedTime?: number) => string;

/**
 * A ULID factory whose ids strictly increase within this process, even when many are made in
 * the same millisecond or the clock steps back — what `tx_id` ("monotonic within a source") needs.
 */
export function createUlidFactory(): UlidFactory {
  return monotonicFactory();
}

const shared = createUlidFactory();

/** A monotonic ULID from the process-wide factory. */
export function newUlid(seedTime?: number): string {
  return shared(seedTime);
}
