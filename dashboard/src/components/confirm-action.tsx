import type { ComponentChildren } from "preact";
import { useId, useRef, useState } from "preact/hooks";
import { useI18n } from "../i18n/i18n";

export interface ActionOutcome {
  ok: boolean;
  text: string;
}

/**
 * A button that asks first (a modal <dialog>: focus moves into it, Escape closes it), then runs
 * `run` and shows what it returned (or why it failed) in a live region next to the button, or
 * hands it to `onOutcome` when the action may remove the button (a cancelled job has no Cancel).
 */
export function ConfirmAction(props: {
  label: string;
  question: string;
  run: () => Promise<string>;
  onOutcome?: (outcome: ActionOutcome) => void;
  variant?: "danger";
  children?: ComponentChildren;
}) {
  const { t } = useI18n();
  const dialog = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const [busy, setBusy] = useState(false);
  const [ownOutcome, setOwnOutcome] = useState<ActionOutcome | null>(null);
  const setOutcome = (outcome: ActionOutcome | null) => (props.onOutcome && outcome ? props.onOutcome(outcome) : setOwnOutcome(outcome));

  const confirm = async () => {
    dialog.current?.close();
    setBusy(true);
    setOutcome(null);
    try {
      setOutcome({ ok: true, text: await props.run() });
    } catch (error) {
      setOutcome({ ok: false, text: t("action.failed", { message: error instanceof Error ? error.message : String(error) }) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="confirm-action">
      <button type="button" class={props.variant === "danger" ? "danger" : undefined} disabled={busy} onClick={() => dialog.current?.showModal()}>
        {props.label}
      </button>
      <dialog ref={dialog} aria-labelledby={titleId}>
        <h2 id={titleId}>{t("confirm.title")}</h2>
        <p>{props.question}</p>
        {props.children}
        <div class="dialog-buttons">
          <button type="button" onClick={() => dialog.current?.close()}>
            {t("confirm.cancel")}
          </button>
          <button type="button" class={props.variant === "danger" ? "danger" : "primary"} onClick={() => void confirm()}>
            {t("confirm.ok")}
          </button>
        </div>
      </dialog>
      {!props.onOutcome && <OutcomeMessage outcome={ownOutcome} />}
    </div>
  );
}

/** What the last action did, in a live region that is always there, so each change is announced. */
export function OutcomeMessage(props: { outcome: ActionOutcome | null }) {
  return (
    <p class={props.outcome?.ok === false ? "outcome error" : "outcome"} role="status">
      {props.outcome?.text}
    </p>
  );
}
