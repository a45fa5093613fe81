// setTimeout cannot wait longer than 2^31 - 1 ms (about 24.8 days): longer, it fires at once.
const MAX_DELAY = 2 ** 31 - 1;

/** Calls `callback` at `epochMs` (at once if that has passed), however far ahead; returns the cancel. */
export function callAt(epochMs: number, callback: () => void): () => void {
  let timer: NodeJS.Timeout;
  const schedule = () => {
    const remaining = epochMs - Date.now();
    // A longer wait is taken in steps.
    timer = setTimeout(() => (remaining > MAX_DELAY ? schedule() : callback()), Math.min(Math.max(remaining, 0), MAX_DELAY));
    timer.unref();
  };
  schedule();
  return () => clearTimeout(timer);
}
