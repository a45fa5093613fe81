import { graphql } from "../gql";
import type { ThroughputSeriesFieldsFragment } from "../gql/graphql";
import { useI18n } from "../i18n/i18n";
import type { MessageKey } from "../i18n/messages";
import { SparklineChart } from "./sparkline-chart";

graphql(`
  fragment ThroughputSeriesFields on ThroughputSeries {
    range
    bucketSeconds
    buckets {
      start
      completed
      failed
      successRate
    }
  }
`);

// Colours with at least 4.5:1 contrast on white, told apart by more than hue in the description.
const COMPLETED = "#1a7f37";
const FAILED = "#b42318";
const SUCCESS = "#1d4ed8";

/** For each range, two small charts: jobs finished per bucket, and the success rate per bucket. */
export function ThroughputCharts(props: { series: ThroughputSeriesFieldsFragment[] }) {
  const { t, number, percent, duration } = useI18n();
  return (
    <section aria-labelledby="throughput-heading" class="card">
      <h2 id="throughput-heading">{t("overview.throughput")}</h2>
      <div class="charts">
        {props.series.map((series) => {
          const times = series.buckets.map((bucket) => Date.parse(bucket.start) / 1000 + series.bucketSeconds);
          const completed = series.buckets.reduce((sum, bucket) => sum + bucket.completed, 0);
          const failed = series.buckets.reduce((sum, bucket) => sum + bucket.failed, 0);
          const bucket = duration(series.bucketSeconds * 1000);
          const rate = completed + failed === 0 ? t("overview.none") : percent(completed / (completed + failed));
          return (
            <figure key={series.range} class="chart-group">
              <figcaption>
                <strong>{t(`overview.range.${series.range}` as MessageKey)}</strong>
                <span>{t("overview.completedInRange", { count: number(completed), failed: number(failed) })}</span>
              </figcaption>
              <SparklineChart
                times={times}
                series={[
                  { label: t("overview.seriesCompleted"), colour: COMPLETED, values: series.buckets.map((entry) => entry.completed) },
                  { label: t("overview.seriesFailed"), colour: FAILED, values: series.buckets.map((entry) => entry.failed) },
                ]}
                description={t("overview.chartThroughput", { bucket, completed: number(completed), failed: number(failed), latest: number(series.buckets.at(-1)?.completed ?? 0) })}
              />
              <SparklineChart
                times={times}
                percent
                series={[{ label: t("overview.seriesSuccess"), colour: SUCCESS, values: series.buckets.map((entry) => entry.successRate ?? null) }]}
                description={t("overview.chartSuccess", { bucket, rate })}
              />
            </figure>
          );
        })}
      </div>
    </section>
  );
}
