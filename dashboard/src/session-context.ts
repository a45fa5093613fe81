import { createContext } from "preact";
import type { Session } from "./api/session";

/** The signed-in operator's session, for the few requests made outside GraphQL (exports). */
export const SessionContext = createContext<Session | null>(null);
