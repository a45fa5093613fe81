import { useMutation, useQuery, useSubscription } from "@urql/preact";
import { useEffect, useState } from "preact/hooks";
import { ConfirmAction } from "../components/confirm-action";
import { dataOrThrow, ErrorMessage, Loading } from "../components/feedback";
import { useLiveSubscription } from "../components/live-subscription";
import { HealthBadge, StatusBadge } from "../components/status-badge";
import { ThroughputCharts } from "../components/throughput-charts";
import { useThrottled } from "../components/throttle";
import { graphql } from "../gql";
import { useI18n } from "../i18n/i18n";

const OverviewQuery = graphql(`
  query Overview {
    queueHealth {
      status
      reasons
      checkedAt
      stats {
        windowSeconds
        counts {
          queued
          processing
          retrying
          completed
          failed
          validationFailed
          cancelled
        }
        successRate
        averageProcessingMs
        averageQueueMs
        stalled
        oldestQueuedAgeMs
        failuresByCategory {
          category
          count
        }
      }
    }
    hour: queueThroughput(range: HOUR) {
      ...ThroughputSeriesFields
    }
    day: queueThroughput(range: DAY) {
      ...ThroughputSeriesFields
    }
    week: queueThroughput(range: WEEK) {
      ...ThroughputSeriesFields
    }
  }
`);

const HealthChanged = graphql(`
  subscription OverviewHealth {
    queueHealthChanged {
      status
      at
    }
  }
`);

const JobsChanged = graphql(`
  subscription OverviewJobUpdates {
    jobUpdateBatches(batchMs: 1000) {
      at
    }
  }
`);

const RecoverStalled = graphql(`
  mutation RecoverStalledJobs {
    recoverStalledJobs {
      recovered
    }
  }
`);

const CleanupJobs = graphql(`
  mutation CleanupJobs($olderThanSeconds: Int!) {
    cleanupJobs(olderThanSeconds: $olderThanSeconds) {
      deleted
    }
  }
`);

/**
 * Figures are re-read when the health changes or jobs change, at most once per this interval: the
 * server computes health at most once per HEALTH_CACHE_MS (2 s by default) and broadcasts every 5 s.
 */
const REFRESH_MS = 5000;

const STATUS_ORDER = ["queued", "processing", "retrying", "completed", "failed", "validationFailed", "cancelled"] as const;
const STATUS_NAMES = { queued: "QUEUED", processing: "PROCESSING", retrying: "RETRYING", completed: "COMPLETED", failed: "FAILED", validationFailed: "VALIDATION_FAILED", cancelled: "CANCELLED" } as const;

export function Overview() {
  const { t, number, percent, duration, dateTime } = useI18n();
  const [result, reexecute] = useQuery({ query: OverviewQuery });
  const refresh = useThrottled(() => reexecute({ requestPolicy: "network-only" }), REFRESH_MS);
  const [health] = useSubscription({ query: HealthChanged });
  const jobs = useLiveSubscription({ query: JobsChanged }, refresh);
  useEffect(() => void (health.data && refresh()), [health.data]);
  useEffect(() => void (jobs.data && refresh()), [jobs.data]);
  const [, recover] = useMutation(RecoverStalled);
  const [, cleanup] = useMutation(CleanupJobs);
  const [cleanupDays, setCleanupDays] = useState(7);

  useEffect(() => {
    document.title = `${t("overview.title")} · ${t("app.title")}`;
  }, [t]);

  if (!result.data) return result.error ? <ErrorMessage error={result.error} /> : <Loading />;
  const { queueHealth, hour, day, week } = result.data;
  const stats = queueHealth.stats;
  const orNone = (value: number | null | undefined, format: (value: number) => string) => (value === null || value === undefined ? t("overview.none") : format(value));

  return (
    <>
      <h1>{t("overview.title")}</h1>
      {result.error && <ErrorMessage error={result.error} />}
      <section aria-labelledby="health-heading" class="card">
        <h2 id="health-heading">
          {t("overview.health")} <HealthBadge status={queueHealth.status} />
        </h2>
        {queueHealth.reasons.length ? (
          <ul class="reasons">
            {queueHealth.reasons.map((reason) => (
              <li key={reason}>{reason}</li>
            ))}
          </ul>
        ) : (
          <p>{t("overview.noReasons")}</p>
        )}
        <p class="hint">
          {t("overview.checkedAt", { time: dateTime(queueHealth.checkedAt) })} · <span class="live-dot" aria-hidden="true" /> {t("overview.live")}
        </p>
      </section>

      <section aria-labelledby="counts-heading" class="card">
        <h2 id="counts-heading">{t("overview.counts")}</h2>
        <dl class="counts">
          {STATUS_ORDER.map((key) => (
            <div key={key} class="count">
              <dt>
                <StatusBadge status={STATUS_NAMES[key]} />
              </dt>
              <dd data-testid={`count-${STATUS_NAMES[key]}`}>{number(stats.counts[key])}</dd>
            </div>
          ))}
        </dl>
        <p class="hint">{t("overview.countsNote", { window: duration(stats.windowSeconds * 1000) })}</p>
      </section>

      <section aria-labelledby="timing-heading" class="card">
        <h2 id="timing-heading">{t("overview.timing")}</h2>
        <dl class="figures">
          <div>
            <dt>{t("overview.successRate")}</dt>
            <dd>{orNone(stats.successRate, percent)}</dd>
          </div>
          <div>
            <dt>{t("overview.queueTime")}</dt>
            <dd>{orNone(stats.averageQueueMs, duration)}</dd>
          </div>
          <div>
            <dt>{t("overview.processingTime")}</dt>
            <dd>{orNone(stats.averageProcessingMs, duration)}</dd>
          </div>
          <div>
            <dt>{t("overview.oldestQueued")}</dt>
            <dd>{orNone(stats.oldestQueuedAgeMs, duration)}</dd>
          </div>
          <div>
            <dt>{t("overview.stalled")}</dt>
            <dd>{number(stats.stalled)}</dd>
          </div>
        </dl>
      </section>

      <ThroughputCharts series={[hour, day, week]} />

      <section aria-labelledby="failures-heading" class="card">
        <h2 id="failures-heading">{t("overview.failures")}</h2>
        {stats.failuresByCategory.length ? (
          <table>
            <thead>
              <tr>
                <th scope="col">{t("overview.category")}</th>
                <th scope="col" class="numeric">
                  {t("overview.count")}
                </th>
              </tr>
            </thead>
            <tbody>
              {stats.failuresByCategory.map((entry) => (
                <tr key={entry.category}>
                  <td>
                    <code>{entry.category}</code>
                  </td>
                  <td class="numeric">{number(entry.count)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p>{t("overview.noFailures")}</p>
        )}
      </section>

      <section aria-labelledby="maintenance-heading" class="card">
        <h2 id="maintenance-heading">{t("overview.maintenance")}</h2>
        <div class="actions">
          <ConfirmAction
            label={t("overview.recover")}
            question={t("overview.recoverConfirm")}
            run={async () => {
              const data = dataOrThrow(await recover({}));
              refresh();
              return t("overview.recovered", { count: data.recoverStalledJobs.recovered });
            }}
          />
          <ConfirmAction
            label={t("overview.cleanup")}
            question={t("overview.cleanupConfirm", { days: cleanupDays })}
            variant="danger"
            run={async () => {
              const data = dataOrThrow(await cleanup({ olderThanSeconds: cleanupDays * 86_400 }));
              refresh();
              return t("overview.cleaned", { count: data.cleanupJobs.deleted });
            }}
          >
            <label class="inline-field">
              {t("overview.cleanupDays")}
              <input type="number" min={0} max={3650} value={cleanupDays} onInput={(event) => setCleanupDays(Math.max(0, Number((event.currentTarget as HTMLInputElement).value) || 0))} />
            </label>
          </ConfirmAction>
        </div>
      </section>
    </>
  );
}
