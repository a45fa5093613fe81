import { useEffect, useMemo, useRef } from "preact/hooks";

/**
 * `callback`, run at most once per `intervalMs`: a call inside the interval is held and run once
 * at its end, so the last change is never lost and a burst costs one run.
 */
export function useThrottled(callback: () => void, intervalMs: number): () => void {
  const latest = useRef(callback);
  latest.current = callback;
  const state = useRef<{ last: number; timer: ReturnType<typeof setTimeout> | null }>({ last: 0, timer: null });
  useEffect(() => () => void (state.current.timer && clearTimeout(state.current.timer)), []);
  return useMemo(
    () => () => {
      const current = state.current;
      if (current.timer) return;
      const wait = current.last + intervalMs - Date.now();
      const run = () => {
        current.timer = null;
        current.last = Date.now();
        latest.current();
      };
      if (wait <= 0) run();
      else current.timer = setTimeout(run, wait);
    },
    [intervalMs],
  );
}
