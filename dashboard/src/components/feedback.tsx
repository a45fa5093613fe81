import type { CombinedError } from "@urql/core";
import { useI18n } from "../i18n/i18n";

export function Loading() {
  const { t } = useI18n();
  return <p aria-busy="true">{t("common.loading")}</p>;
}

export function ErrorMessage(props: { error: CombinedError | Error }) {
  const { t } = useI18n();
  const error = props.error as CombinedError;
  const message = error.graphQLErrors?.[0]?.message ?? error.networkError?.message ?? props.error.message;
  return (
    <p class="error" role="alert">
      {t("common.error", { message })}
    </p>
  );
}

/** Any JSON value, indented, in a block that scrolls instead of widening the page. */
export function JsonBlock(props: { value: unknown; label: string }) {
  return (
    <pre class="json" tabIndex={0} aria-label={props.label}>
      {JSON.stringify(props.value, null, 2)}
    </pre>
  );
}

/** Raises an operation's error as an exception, for ConfirmAction to show; returns its data. */
export function dataOrThrow<T>(result: { data?: T; error?: CombinedError }): T {
  if (result.error) throw new Error(result.error.graphQLErrors[0]?.message ?? result.error.message);
  if (result.data === undefined) throw new Error("no data");
  return result.data;
}
