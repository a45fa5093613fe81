import { useMutation, useQuery, useSubscription } from "@urql/preact";
import { useRoute } from "preact-iso/router";
import { useEffect, useState } from "preact/hooks";
import { ConfirmAction, OutcomeMessage, type ActionOutcome } from "../components/confirm-action";
import { dataOrThrow, ErrorMessage, JsonBlock, Loading } from "../components/feedback";
import { JobProgress } from "../components/job-progress";
import { isAtLeastAsRecent } from "../components/job-state";
import { JobTimeline } from "../components/job-timeline";
import { ResultDownloads } from "../components/result-downloads";
import { StatusBadge } from "../components/status-badge";
import { graphql } from "../gql";
import type { JobStatus, Locale as ApiLocale } from "../gql/graphql";
import { useI18n } from "../i18n/i18n";
import { shortId } from "../components/short-id";

const JobQuery = graphql(`
  query Job($id: ID!, $locale: Locale) {
    job(id: $id) {
      id
      type
      owner
      status
      stage
      progress
      updatedAt
      priority
      retryCount
      maxAttempts
      correlationId
      createdAt
      startedAt
      completedAt
      processingTimeMs
      runAt
      queuePosition
      lockedBy
      payload
      result
      metadata
      error {
        category
        message(locale: $locale)
        technicalMessage
        details
        recoverable
      }
      events(first: 100) {
        id
        fromStatus
        toStatus
        attempt
        stage
        progress
        message
        at
      }
    }
  }
`);

const JobLive = graphql(`
  subscription JobLive($id: ID!) {
    jobProgress(jobId: $id) {
      status
      stage
      progress
      at
    }
  }
`);

const RetryJob = graphql(`
  mutation RetryJob($id: ID!) {
    retryJob(id: $id) {
      id
      status
    }
  }
`);

const CancelJob = graphql(`
  mutation CancelJob($id: ID!) {
    cancelJob(id: $id) {
      outcome
    }
  }
`);

const RETRYABLE: JobStatus[] = ["FAILED", "VALIDATION_FAILED", "CANCELLED"];
const CANCELLABLE: JobStatus[] = ["QUEUED", "RETRYING", "PROCESSING"];

/** One job: live status and progress, details, error, timeline, payload and result, actions. */
export function JobPage() {
  const { params } = useRoute();
  const id = params.id ?? "";
  const { t, locale, dateTime, duration } = useI18n();
  const [result, reexecute] = useQuery({ query: JobQuery, variables: { id, locale: locale.toUpperCase() as ApiLocale } });
  const refresh = () => reexecute({ requestPolicy: "network-only" });
  // jobProgress ends with a final state; a retried job gets a new subscription.
  const [generation, setGeneration] = useState(0);
  const [live, setLive] = useState<LiveState | null>(null);
  const [, retry] = useMutation(RetryJob);
  const [, cancel] = useMutation(CancelJob);
  const [outcome, setOutcome] = useState<ActionOutcome | null>(null);

  useEffect(() => {
    document.title = `${t("job.title", { id: shortId(id) })} · ${t("app.title")}`;
  }, [t, id]);

  const job = result.data?.job;
  if (!job) return result.error ? <ErrorMessage error={result.error} /> : result.data ? <p>{t("job.notFound")}</p> : <Loading />;
  // The newer of the last event and the last read: a read made after an event may already hold a
  // later stage, or may have been answered before the event's stage was written.
  const current = live && isAtLeastAsRecent(live, { at: job.updatedAt, progress: job.progress }) ? live : job;
  const { status, stage, progress } = current;

  return (
    <>
      <LiveJob
        key={`${id}:${generation}`}
        id={id}
        onChange={(change) => {
          // A new status or stage adds to the timeline: re-read the job; progress alone does not.
          if (change.status !== status || change.stage !== stage) refresh();
          setLive(change);
        }}
      />
      <p>
        <a href="/dashboard/jobs">← {t("job.back")}</a>
      </p>
      <h1>
        {t("job.title", { id: shortId(job.id) })} <StatusBadge status={status} />
      </h1>
      <div class="live-status" data-testid="job-live-status" data-status={status} aria-live="polite">
        {status === "PROCESSING" ? <JobProgress jobId={job.id} stage={stage} progress={progress} /> : <span>{stage ? `${stage} · ${progress}%` : `${progress}%`}</span>}
      </div>

      <section aria-labelledby="actions-heading" class="card">
        <h2 id="actions-heading">{t("job.actions")}</h2>
        <div class="actions">
          {RETRYABLE.includes(status) && (
            <ConfirmAction
              label={t("job.retry")}
              onOutcome={setOutcome}
              question={t("job.retryConfirm")}
              run={async () => {
                dataOrThrow(await retry({ id: job.id }));
                setLive(null);
                setGeneration((value) => value + 1);
                refresh();
                return t("job.retried");
              }}
            />
          )}
          {CANCELLABLE.includes(status) && (
            <ConfirmAction
              label={t("job.cancel")}
              onOutcome={setOutcome}
              question={t("job.cancelConfirm")}
              variant="danger"
              run={async () => {
                const outcome = dataOrThrow(await cancel({ id: job.id })).cancelJob.outcome;
                refresh();
                return outcome === "CANCELLED" ? t("job.cancelled") : t("job.cancelRequested");
              }}
            />
          )}
          {!RETRYABLE.includes(status) && !CANCELLABLE.includes(status) && <p>{t("job.noActions")}</p>}
        </div>
        <OutcomeMessage outcome={outcome} />
      </section>

      {job.error && (
        <section aria-labelledby="error-heading" class="card error-card">
          <h2 id="error-heading">{t("job.error")}</h2>
          <dl class="details">
            <dt>{t("job.errorCategory")}</dt>
            <dd>
              <code data-testid="error-category">{job.error.category}</code>
            </dd>
            <dt>{t("job.errorMessage")}</dt>
            <dd data-testid="error-message">{job.error.message}</dd>
            <dt>{t("job.errorRecoverable")}</dt>
            <dd>{job.error.recoverable === null || job.error.recoverable === undefined ? "—" : job.error.recoverable ? t("job.yes") : t("job.no")}</dd>
            {job.error.technicalMessage && (
              <>
                <dt>{t("job.errorTechnical")}</dt>
                <dd>{job.error.technicalMessage}</dd>
              </>
            )}
          </dl>
          {job.error.details != null && <JsonBlock value={job.error.details} label={t("job.errorTechnical")} />}
        </section>
      )}

      <section aria-labelledby="details-heading" class="card">
        <h2 id="details-heading">{t("job.metadata")}</h2>
        <dl class="details">
          <dt>{t("job.type")}</dt>
          <dd>{job.type}</dd>
          <dt>{t("job.owner")}</dt>
          <dd>{job.owner}</dd>
          <dt>{t("job.priority")}</dt>
          <dd>{job.priority}</dd>
          <dt>{t("job.attempts")}</dt>
          <dd>{t("job.attemptsValue", { current: job.retryCount + 1, max: job.maxAttempts })}</dd>
          <dt>{t("job.createdAt")}</dt>
          <dd>{dateTime(job.createdAt)}</dd>
          <dt>{t("job.runAt")}</dt>
          <dd>{dateTime(job.runAt)}</dd>
          {job.queuePosition != null && (
            <>
              <dt>{t("job.queuePosition")}</dt>
              <dd>{job.queuePosition}</dd>
            </>
          )}
          <dt>{t("job.startedAt")}</dt>
          <dd>{job.startedAt ? dateTime(job.startedAt) : "—"}</dd>
          <dt>{t("job.completedAt")}</dt>
          <dd>{job.completedAt ? dateTime(job.completedAt) : "—"}</dd>
          <dt>{t("job.processingTime")}</dt>
          <dd>{job.processingTimeMs != null ? duration(job.processingTimeMs) : "—"}</dd>
          <dt>{t("job.correlationId")}</dt>
          <dd>
            <code>{job.correlationId}</code>
          </dd>
          {job.lockedBy && (
            <>
              <dt>{t("job.lockedBy")}</dt>
              <dd>
                <code>{job.lockedBy}</code>
              </dd>
            </>
          )}
        </dl>
      </section>

      <JobTimeline events={job.events} />

      <section aria-labelledby="payload-heading" class="card">
        <h2 id="payload-heading">{t("job.payload")}</h2>
        <JsonBlock value={job.payload} label={t("job.payload")} />
        <h2>{t("job.metadataJson")}</h2>
        <JsonBlock value={job.metadata} label={t("job.metadataJson")} />
      </section>

      {job.result != null && (
        <section aria-labelledby="result-heading" class="card">
          <h2 id="result-heading">{t("job.result")}</h2>
          {status === "COMPLETED" && <ResultDownloads jobId={job.id} />}
          <JsonBlock value={job.result} label={t("job.result")} />
        </section>
      )}
    </>
  );
}

interface LiveState {
  status: JobStatus;
  stage?: string | null;
  progress: number;
  at: string;
}

/** Follows one job's changes (jobProgress: the current state first, then each change). */
function LiveJob(props: { id: string; onChange: (change: LiveState) => void }) {
  const [live] = useSubscription({ query: JobLive, variables: { id: props.id } });
  useEffect(() => {
    if (live.data) props.onChange(live.data.jobProgress);
  }, [live.data]);
  return null;
}
