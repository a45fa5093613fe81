import { useEffect, useState } from "preact/hooks";
import { checkToken, devTokensAvailable, mintDevToken } from "../api/sign-in";
import type { Session } from "../api/session";
import { LanguagePicker } from "../components/layout";
import { useI18n } from "../i18n/i18n";
import type { MessageKey } from "../i18n/messages";

/**
 * Paste a token (checked against the API: only an operator's is accepted) or, where the server
 * offers it, mint a development operator token.
 */
export function SignIn(props: { notice: MessageKey | null; onSignedIn: (session: Session) => void }) {
  const { t, locale } = useI18n();
  const [token, setToken] = useState("");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(props.notice ? t(props.notice) : null);
  const [devAvailable, setDevAvailable] = useState(false);

  useEffect(() => {
    void devTokensAvailable().then(setDevAvailable);
  }, []);

  const signIn = async (candidate: string) => {
    if (!candidate.trim()) return setProblem(t("signIn.empty"));
    setBusy(true);
    setProblem(null);
    try {
      const check = await checkToken(candidate.trim(), locale);
      if (check.kind === "operator") return props.onSignedIn({ token: candidate.trim(), operatorId: check.operatorId });
      setProblem(check.kind === "user" ? t("signIn.userToken") : check.kind === "invalid" ? t("signIn.invalidToken") : t("signIn.failed", { message: check.message }));
    } catch (error) {
      setProblem(t("signIn.failed", { message: error instanceof Error ? error.message : String(error) }));
    } finally {
      setBusy(false);
    }
  };

  const useDevToken = async () => {
    setBusy(true);
    try {
      await signIn(await mintDevToken());
    } catch (error) {
      setProblem(t("signIn.failed", { message: error instanceof Error ? error.message : String(error) }));
      setBusy(false);
    }
  };

  return (
    <main id="main" class="sign-in">
      <div class="sign-in-header">
        <span class="brand">{t("app.title")}</span>
        <LanguagePicker />
      </div>
      <h1>{t("signIn.title")}</h1>
      <p>{t("signIn.intro")}</p>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void signIn(token);
        }}
      >
        <label for="token">{t("signIn.token")}</label>
        <textarea id="token" name="token" rows={4} autoComplete="off" spellcheck={false} value={token} onInput={(event) => setToken((event.currentTarget as HTMLTextAreaElement).value)} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? t("signIn.checking") : t("signIn.submit")}
        </button>
      </form>
      {problem && (
        <p class="error" role="alert">
          {problem}
        </p>
      )}
      {devAvailable && (
        <section class="dev-token">
          <button type="button" disabled={busy} onClick={() => void useDevToken()}>
            {t("signIn.devToken")}
          </button>
          <p class="hint">{t("signIn.devTokenHint")}</p>
        </section>
      )}
    </main>
  );
}
