// The operator's token lives in sessionStorage: gone when the tab closes, never in a URL or a
// cookie (so no other site can make the browser send it).
const STORAGE_KEY = "conveyor.session";

export interface Session {
  token: string;
  /** The token's subject, as the server read it. */
  operatorId: string;
}

export function savedSession(): Session | null {
  try {
    const session = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null") as Session | null;
    return session && typeof session.token === "string" && typeof session.operatorId === "string" ? session : null;
  } catch {
    return null;
  }
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}
