import { Provider } from "@urql/preact";
import { LocationProvider, Route, Router } from "preact-iso/router";
import { useEffect, useMemo, useState } from "preact/hooks";
import { createApiClient } from "./api/client";
import { clearSession, saveSession, savedSession, type Session } from "./api/session";
import { Layout } from "./components/layout";
import { I18nProvider, useI18n } from "./i18n/i18n";
import type { MessageKey } from "./i18n/messages";
import { JobPage } from "./pages/job-page";
import { Jobs } from "./pages/jobs";
import { Overview } from "./pages/overview";
import { SignIn } from "./pages/sign-in";
import { SessionContext } from "./session-context";

export function App() {
  return (
    <I18nProvider>
      <LocationProvider scope="/dashboard">
        <SignedIn />
      </LocationProvider>
    </I18nProvider>
  );
}

/** The sign-in page until an operator's token is accepted; then the dashboard, on that token. */
function SignedIn() {
  const { locale } = useI18n();
  const [session, setSession] = useState<Session | null>(savedSession);
  const [notice, setNotice] = useState<MessageKey | null>(null);
  const signOut = (reason: MessageKey | null) => {
    clearSession();
    setSession(null);
    setNotice(reason);
  };
  const api = useMemo(() => (session ? createApiClient({ token: session.token, locale, onAuthLost: () => signOut("signIn.expired") }) : null), [session, locale]);
  useEffect(() => () => api?.dispose(), [api]);

  if (!session || !api) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={(accepted) => {
          saveSession(accepted);
          setNotice(null);
          setSession(accepted);
        }}
      />
    );
  }
  return (
    <SessionContext.Provider value={session}>
      <Provider value={api.client}>
        <Layout operatorId={session.operatorId} onSignOut={() => signOut(null)}>
          <Router>
            <Route path="/dashboard/" component={Overview} />
            <Route path="/dashboard/jobs" component={Jobs} />
            <Route path="/dashboard/jobs/:id" component={JobPage} />
            <Route default component={Overview} />
          </Router>
        </Layout>
      </Provider>
    </SessionContext.Provider>
  );
}
