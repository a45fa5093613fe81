import { randomFillSync } from "node:crypto";
import { v7 } from "uuid";

/**
 * New job ids: UUIDv7, time-ordered, and strictly increasing within this process (the claim takes
 * the jobs of one batch, which share their run_at, in id order: the order they were given in).
 *
 * uuid's v7() draws its 16 random bytes with a crypto call of their own for every id; that call
 * was 2.3 ms of a 1,000-job enqueue's 24 (CPU profile of bench/peers' batch enqueue). Here the
 * bytes come from a pool refilled 4 KB at a time, and the clock and counter are kept as v7() keeps
 * them when it is given none: the milliseconds, then a counter that starts at a random value each
 * new millisecond and moves the clock on by one when it wraps.
 */
const random = new Uint8Array(4096);
let used = random.length;
let lastMilliseconds = -Infinity;
let counter = 0;

export function newJobId(): string {
  if (used === random.length) {
    randomFillSync(random);
    used = 0;
  }
  const bytes = random.subarray(used, (used += 16));
  const now = Date.now();
  if (now > lastMilliseconds) {
    lastMilliseconds = now;
    // As v7() seeds it: 31 random bits, so that the counter has room to count up within the millisecond.
    counter = ((bytes[6]! & 0x7f) << 24) | (bytes[7]! << 16) | (bytes[8]! << 8) | bytes[9]!;
  } else {
    counter = (counter + 1) | 0;
    if (counter === 0) lastMilliseconds++;
  }
  return v7({ random: bytes, msecs: lastMilliseconds, seq: counter });
}
