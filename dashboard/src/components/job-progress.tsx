import { useI18n } from "../i18n/i18n";
import { shortId } from "./short-id";

/** A running job's stage and percent, as a native progress bar screen readers announce. */
export function JobProgress(props: { jobId: string; stage: string | null | undefined; progress: number }) {
  const { t } = useI18n();
  const label = `${t("jobs.progress")} ${shortId(props.jobId)}${props.stage ? ` (${props.stage})` : ""}`;
  return (
    <span class="job-progress">
      <progress max={100} value={props.progress} aria-label={label} />
      <span class="job-progress-text">
        {props.progress}%{props.stage ? ` · ${props.stage}` : ""}
      </span>
    </span>
  );
}
