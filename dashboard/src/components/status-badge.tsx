import { useI18n } from "../i18n/i18n";
import type { MessageKey } from "../i18n/messages";

/** A job's status as a word and a colour; the word alone carries the meaning. */
export function StatusBadge(props: { status: string }) {
  const { t } = useI18n();
  return <span class={`badge status-${props.status.toLowerCase()}`}>{t(`status.${props.status}` as MessageKey)}</span>;
}

export function HealthBadge(props: { status: string }) {
  const { t } = useI18n();
  return <span class={`badge health-${props.status.toLowerCase()}`}>{t(`health.${props.status}` as MessageKey)}</span>;
}
