import { useI18n } from "../i18n/i18n";
import type { MessageKey } from "../i18n/messages";

interface TimelineEvent {
  id: string;
  fromStatus?: string | null;
  toStatus: string;
  attempt: number;
  stage?: string | null;
  progress?: number | null;
  message?: string | null;
  at: string;
}

/** A job's history, oldest first: each transition and each new stage. */
export function JobTimeline(props: { events: TimelineEvent[] }) {
  const { t, dateTime } = useI18n();
  const status = (value: string) => t(`status.${value}` as MessageKey);
  return (
    <section aria-labelledby="timeline-heading" class="card">
      <h2 id="timeline-heading">{t("job.timeline")}</h2>
      <ol class="timeline" data-testid="timeline">
        {props.events.map((event) => (
          <li key={event.id}>
            <time dateTime={event.at}>{dateTime(event.at)}</time>
            <span class="timeline-what">
              {event.fromStatus ? t("job.event", { from: status(event.fromStatus), to: status(event.toStatus) }) : status(event.toStatus)}
              {event.stage ? ` · ${event.stage}` : ""}
              {event.progress != null && event.fromStatus === event.toStatus ? ` · ${event.progress}%` : ""}
              {event.message ? ` · ${event.message}` : ""}
            </span>
            <span class="timeline-attempt">#{event.attempt}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}
