import { createContext, type ComponentChildren } from "preact";
import { useContext, useEffect, useMemo, useState } from "preact/hooks";
import { LOCALES, MESSAGES, type Locale, type MessageKey } from "./messages";

const STORAGE_KEY = "conveyor.locale";

export interface I18n {
  locale: Locale;
  setLocale(locale: Locale): void;
  /** The message for `key`, with each {name} replaced by `params[name]`. */
  t(key: MessageKey, params?: Record<string, string | number>): string;
  number(value: number): string;
  percent(value: number): string;
  dateTime(iso: string): string;
  /** A duration in milliseconds, in the largest unit that keeps it readable (850 ms, 12 s, 3 min, 2 h). */
  duration(ms: number): string;
}

const I18nContext = createContext<I18n | null>(null);

/** The saved choice, else the browser's first language we speak, else English. */
function initialLocale(): Locale {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved && (LOCALES as readonly string[]).includes(saved)) return saved as Locale;
  for (const language of navigator.languages ?? [navigator.language]) {
    const base = language.slice(0, 2).toLowerCase();
    if ((LOCALES as readonly string[]).includes(base)) return base as Locale;
  }
  return "en";
}

export function I18nProvider(props: { children: ComponentChildren }) {
  const [locale, setLocale] = useState<Locale>(initialLocale);
  useEffect(() => {
    document.documentElement.lang = locale;
    localStorage.setItem(STORAGE_KEY, locale);
  }, [locale]);
  const value = useMemo<I18n>(() => {
    const numbers = new Intl.NumberFormat(locale);
    const percents = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 });
    const dates = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "medium" });
    const unit = (value: number, name: string) => new Intl.NumberFormat(locale, { style: "unit", unit: name, unitDisplay: "short", maximumFractionDigits: 1 }).format(value);
    return {
      locale,
      setLocale,
      t: (key, params = {}) => MESSAGES[locale][key].replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole)),
      number: (value) => numbers.format(value),
      percent: (value) => percents.format(value),
      dateTime: (iso) => dates.format(new Date(iso)),
      duration: (ms) => {
        if (ms < 1000) return unit(Math.round(ms), "millisecond");
        if (ms < 60_000) return unit(ms / 1000, "second");
        if (ms < 3600_000) return unit(ms / 60_000, "minute");
        if (ms < 48 * 3600_000) return unit(ms / 3600_000, "hour");
        return unit(ms / 86_400_000, "day");
      },
    };
  }, [locale]);
  return <I18nContext.Provider value={value}>{props.children}</I18nContext.Provider>;
}

export function useI18n(): I18n {
  const i18n = useContext(I18nContext);
  if (!i18n) throw new Error("useI18n outside I18nProvider");
  return i18n;
}
