import { useMutation, useQuery } from "@urql/preact";
import { useLocation } from "preact-iso/router";
import { useEffect, useMemo, useState } from "preact/hooks";
import { ConfirmAction } from "../components/confirm-action";
import { dataOrThrow, ErrorMessage, Loading } from "../components/feedback";
import { JobFilterForm, filterFromQuery, type ListFilter } from "../components/job-filter-form";
import { JobProgress } from "../components/job-progress";
import { isAtLeastAsRecent } from "../components/job-state";
import { useLiveSubscription } from "../components/live-subscription";
import { StatusBadge } from "../components/status-badge";
import { useThrottled } from "../components/throttle";
import { graphql } from "../gql";
import type { JobFilter, JobStatus } from "../gql/graphql";
import { useI18n } from "../i18n/i18n";
import { shortId } from "../components/short-id";

const PAGE_SIZE = 25;

const JobsQuery = graphql(`
  query Jobs($filter: JobFilter, $first: Int, $after: String) {
    jobs(filter: $filter, first: $first, after: $after) {
      edges {
        node {
          id
          type
          owner
          status
          stage
          progress
          createdAt
          updatedAt
          error {
            category
          }
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const JobsLive = graphql(`
  subscription JobsLive($filter: JobUpdatesFilter) {
    jobUpdateBatches(filter: $filter, batchMs: 500) {
      changes {
        jobId
        status
        previousStatus
        stage
        progress
        at
      }
    }
  }
`);

const BulkAction = graphql(`
  mutation BulkJobAction($action: BulkJobAction!, $filter: JobFilter!) {
    bulkJobAction(action: $action, filter: $filter) {
      action
      changed
      cancelRequested
      limitReached
    }
  }
`);

interface LiveState {
  status: JobStatus;
  stage: string | null | undefined;
  progress: number;
  at: string;
}

/** The API's JobFilter for what the form set; empty fields filter nothing. */
function apiFilter(filter: ListFilter): JobFilter {
  return {
    status: filter.status ? [filter.status] : undefined,
    type: filter.type || undefined,
    owner: filter.owner || undefined,
    createdAfter: filter.createdAfter ? new Date(filter.createdAfter).toISOString() : undefined,
    createdBefore: filter.createdBefore ? new Date(filter.createdBefore).toISOString() : undefined,
  };
}

/**
 * Jobs matching the filter in the URL, newest first, a page at a time. Changes arrive in batches
 * (jobUpdateBatches) and update the rows in place (status, stage, progress); a job that is new to
 * the first page refreshes it.
 */
export function Jobs() {
  const { t, dateTime, number } = useI18n();
  const { query } = useLocation();
  const filter = useMemo(() => filterFromQuery(query), [query]);
  const variables = useMemo(() => apiFilter(filter), [filter]);
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const after = cursors.at(-1) ?? null;
  useEffect(() => setCursors([null]), [variables]);

  const [result, reexecute] = useQuery({ query: JobsQuery, variables: { filter: variables, first: PAGE_SIZE, after } });
  const refresh = useThrottled(() => reexecute({ requestPolicy: "network-only" }), 1000);
  const [live, setLive] = useState<Map<string, LiveState>>(new Map());
  const [newJobsNotice, setNewJobsNotice] = useState(false);
  const liveFilter = useMemo(() => ({ type: variables.type, owner: variables.owner }), [variables]);
  const updates = useLiveSubscription({ query: JobsLive, variables: { filter: liveFilter } }, refresh);
  const [, bulk] = useMutation(BulkAction);

  const rows = result.data?.jobs.edges.map((edge) => edge.node) ?? [];
  useEffect(() => {
    const changes = updates.data?.jobUpdateBatches.changes;
    if (!changes?.length) return;
    const shown = new Set(rows.map((row) => row.id));
    setLive((previous) => {
      const next = new Map(previous);
      for (const change of changes) {
        const known = next.get(change.jobId);
        if (shown.has(change.jobId) && (!known || isAtLeastAsRecent(change, known))) next.set(change.jobId, change);
      }
      return next;
    });
    const arrived = changes.some((change) => !shown.has(change.jobId) && change.previousStatus === null && (!filter.status || filter.status === change.status));
    if (arrived && after === null) {
      setNewJobsNotice(true);
      refresh();
    }
  }, [updates.data]);

  useEffect(() => {
    document.title = `${t("jobs.title")} · ${t("app.title")}`;
  }, [t]);

  const bulkRun = (action: "RETRY" | "CANCEL") => async () => {
    const outcome = dataOrThrow(await bulk({ action, filter: variables })).bulkJobAction;
    refresh();
    const summary =
      action === "RETRY" ? t("jobs.bulkRetried", { changed: number(outcome.changed) }) : t("jobs.bulkCancelled", { changed: number(outcome.changed), requested: number(outcome.cancelRequested) });
    return outcome.limitReached ? `${summary} ${t("jobs.bulkMore")}` : summary;
  };

  return (
    <>
      <h1>{t("jobs.title")}</h1>
      <JobFilterForm filter={filter} />

      <section aria-labelledby="bulk-heading" class="card">
        <h2 id="bulk-heading">{t("jobs.bulk")}</h2>
        <div class="actions">
          <ConfirmAction label={t("jobs.bulkRetry")} question={t("jobs.bulkRetryConfirm")} run={bulkRun("RETRY")} />
          <ConfirmAction label={t("jobs.bulkCancel")} question={t("jobs.bulkCancelConfirm")} run={bulkRun("CANCEL")} variant="danger" />
        </div>
      </section>

      <p role="status" class="hint">
        {newJobsNotice ? t("jobs.newJobs") : ""}
      </p>
      {result.error && <ErrorMessage error={result.error} />}
      {!result.data ? (
        !result.error && <Loading />
      ) : rows.length === 0 ? (
        <p>{t("jobs.empty")}</p>
      ) : (
        <div class="table-scroll" tabIndex={0} role="region" aria-label={t("jobs.table")}>
          <table class="jobs">
            <thead>
              <tr>
                <th scope="col">{t("jobs.id")}</th>
                <th scope="col">{t("jobs.type")}</th>
                <th scope="col">{t("jobs.owner")}</th>
                <th scope="col">{t("jobs.status")}</th>
                <th scope="col">{t("jobs.progress")}</th>
                <th scope="col">{t("jobs.created")}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => {
                const change = live.get(row.id);
                const current = change && isAtLeastAsRecent(change, { at: row.updatedAt, progress: row.progress }) ? change : row;
                return (
                  <tr key={row.id} data-job-id={row.id} data-status={current.status}>
                    <td>
                      <a href={`/dashboard/jobs/${row.id}`}>
                        <code>{shortId(row.id)}</code>
                      </a>
                    </td>
                    <td>{row.type}</td>
                    <td>{row.owner}</td>
                    <td>
                      <StatusBadge status={current.status} />
                      {row.error && current.status === row.status && <code class="category">{row.error.category}</code>}
                    </td>
                    <td>{current.status === "PROCESSING" ? <JobProgress jobId={row.id} stage={current.stage} progress={current.progress} /> : `${current.progress}%`}</td>
                    <td>
                      <time dateTime={row.createdAt}>{dateTime(row.createdAt)}</time>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <nav class="pager" aria-label={t("jobs.page", { page: cursors.length })}>
        <button type="button" disabled={cursors.length === 1} onClick={() => setCursors([null])}>
          {t("jobs.first")}
        </button>
        <button type="button" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          {t("jobs.previous")}
        </button>
        <span>{t("jobs.page", { page: cursors.length })}</span>
        <button
          type="button"
          disabled={!result.data?.jobs.pageInfo.hasNextPage}
          onClick={() => setCursors([...cursors, result.data?.jobs.pageInfo.endCursor ?? null])}
        >
          {t("jobs.next")}
        </button>
      </nav>
    </>
  );
}
