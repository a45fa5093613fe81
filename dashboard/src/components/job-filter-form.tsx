import { useLocation } from "preact-iso/router";
import { useEffect, useState } from "preact/hooks";
import type { JobStatus } from "../gql/graphql";
import { useI18n } from "../i18n/i18n";
import type { MessageKey } from "../i18n/messages";

export const JOB_STATUSES: JobStatus[] = ["QUEUED", "PROCESSING", "RETRYING", "COMPLETED", "FAILED", "VALIDATION_FAILED", "CANCELLED"];

/** The list's filter as the form and the URL hold it (datetime-local values for the times). */
export interface ListFilter {
  status: JobStatus | "";
  type: string;
  owner: string;
  createdAfter: string;
  createdBefore: string;
}

const FIELDS = ["status", "type", "owner", "createdAfter", "createdBefore"] as const;

/** The filter is kept in the URL's query, so a filtered list can be bookmarked and shared. */
export function filterFromQuery(query: Record<string, string>): ListFilter {
  const status = (JOB_STATUSES as string[]).includes(query.status ?? "") ? (query.status as JobStatus) : "";
  return { status, type: query.type ?? "", owner: query.owner ?? "", createdAfter: query.createdAfter ?? "", createdBefore: query.createdBefore ?? "" };
}

export function JobFilterForm(props: { filter: ListFilter }) {
  const { t } = useI18n();
  const { route } = useLocation();
  const [draft, setDraft] = useState(props.filter);
  useEffect(() => setDraft(props.filter), [props.filter]);
  const set = (field: keyof ListFilter) => (event: Event) => setDraft({ ...draft, [field]: (event.currentTarget as HTMLInputElement).value });

  const apply = (filter: ListFilter) => {
    const params = new URLSearchParams();
    for (const field of FIELDS) if (filter[field]) params.set(field, filter[field]);
    const search = params.toString();
    route(`/dashboard/jobs${search ? `?${search}` : ""}`);
  };

  return (
    <form
      class="card filter"
      aria-label={t("jobs.filter")}
      onSubmit={(event) => {
        event.preventDefault();
        apply(draft);
      }}
    >
      <label>
        {t("jobs.status")}
        <select name="status" value={draft.status} onChange={set("status")}>
          <option value="">{t("jobs.anyStatus")}</option>
          {JOB_STATUSES.map((status) => (
            <option key={status} value={status}>
              {t(`status.${status}` as MessageKey)}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t("jobs.type")}
        <input name="type" value={draft.type} onInput={set("type")} />
      </label>
      <label>
        {t("jobs.owner")}
        <input name="owner" value={draft.owner} onInput={set("owner")} />
      </label>
      <label>
        {t("jobs.createdAfter")}
        <input name="createdAfter" type="datetime-local" step={1} value={draft.createdAfter} onInput={set("createdAfter")} />
      </label>
      <label>
        {t("jobs.createdBefore")}
        <input name="createdBefore" type="datetime-local" step={1} value={draft.createdBefore} onInput={set("createdBefore")} />
      </label>
      <div class="filter-buttons">
        <button type="submit" class="primary">
          {t("jobs.apply")}
        </button>
        <button type="button" onClick={() => apply({ status: "", type: "", owner: "", createdAfter: "", createdBefore: "" })}>
          {t("jobs.reset")}
        </button>
      </div>
    </form>
  );
}
