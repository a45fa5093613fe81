import { useSubscription, type AnyVariables, type UseSubscriptionArgs, type UseSubscriptionState } from "@urql/preact";
import { useEffect, useRef } from "preact/hooks";

/**
 * Codes a live stream ends with while the server is fine and the page should follow on: changes
 * may have been lost in an outage of the events' connection (EVENTS_INTERRUPTED), or this page fell
 * too far behind (SUBSCRIBER_TOO_SLOW).
 */
const RESUBSCRIBE_CODES = new Set(["EVENTS_INTERRUPTED", "SUBSCRIBER_TOO_SLOW"]);
const RESUBSCRIBE_DELAY_MS = 1000;

/**
 * useSubscription that subscribes again when the server ends the stream with one of
 * RESUBSCRIBE_CODES, then calls `caughtUp` so that the page reads afresh what the stream missed.
 */
export function useLiveSubscription<Data, Variables extends AnyVariables = AnyVariables>(
  args: UseSubscriptionArgs<Variables, Data>,
  caughtUp: () => void,
): UseSubscriptionState<Data, Variables> {
  const [result, subscribeAgain] = useSubscription<Data, Data, Variables>(args);
  const latestCaughtUp = useRef(caughtUp);
  latestCaughtUp.current = caughtUp;
  useEffect(() => {
    const codes = result.error?.graphQLErrors.map((error) => error.extensions?.code) ?? [];
    if (!codes.some((code) => typeof code === "string" && RESUBSCRIBE_CODES.has(code))) return;
    const timer = setTimeout(() => {
      subscribeAgain();
      latestCaughtUp.current();
    }, RESUBSCRIBE_DELAY_MS);
    return () => clearTimeout(timer);
  }, [result.error]);
  return result;
}
