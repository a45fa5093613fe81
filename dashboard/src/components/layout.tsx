import type { ComponentChildren } from "preact";
import { useLocation } from "preact-iso/router";
import { useI18n } from "../i18n/i18n";
import { LOCALE_NAMES, LOCALES, type Locale } from "../i18n/messages";

/** Header (navigation, language, who is signed in), then the page in <main>. */
export function Layout(props: { operatorId: string; onSignOut: () => void; children: ComponentChildren }) {
  const { t } = useI18n();
  const { path } = useLocation();
  const jobsActive = path.startsWith("/dashboard/jobs");
  return (
    <>
      <a class="skip-link" href="#main">
        {t("app.skip")}
      </a>
      <header class="app-header">
        <span class="brand">{t("app.title")}</span>
        <nav aria-label={t("nav.label")}>
          <a href="/dashboard/" aria-current={jobsActive ? undefined : "page"}>
            {t("nav.overview")}
          </a>
          <a href="/dashboard/jobs" aria-current={jobsActive ? "page" : undefined}>
            {t("nav.jobs")}
          </a>
        </nav>
        <div class="header-tools">
          <LanguagePicker />
          <span class="who">{t("nav.signedInAs", { id: props.operatorId })}</span>
          <button type="button" onClick={props.onSignOut}>
            {t("nav.signOut")}
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {props.children}
      </main>
    </>
  );
}

export function LanguagePicker() {
  const { t, locale, setLocale } = useI18n();
  return (
    <label class="language">
      <span>{t("nav.language")}</span>
      <select value={locale} onChange={(event) => setLocale((event.currentTarget as HTMLSelectElement).value as Locale)}>
        {LOCALES.map((code) => (
          <option value={code} lang={code} key={code}>
            {LOCALE_NAMES[code]}
          </option>
        ))}
      </select>
    </label>
  );
}
