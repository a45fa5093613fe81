import { useContext, useState } from "preact/hooks";
import { SessionContext } from "../session-context";
import { useI18n } from "../i18n/i18n";

/**
 * The export endpoints take the token in the Authorization header, never in the URL, so a link
 * cannot do: the file is fetched, then handed to the browser as a download.
 */
export function ResultDownloads(props: { jobId: string }) {
  const { t } = useI18n();
  const session = useContext(SessionContext);
  const [problem, setProblem] = useState<string | null>(null);

  const download = async (format: "json" | "csv") => {
    setProblem(null);
    try {
      const response = await fetch(`/jobs/${props.jobId}/result.${format}`, { headers: { authorization: `Bearer ${session?.token ?? ""}` } });
      if (!response.ok) throw new Error(((await response.json()) as { error?: { message?: string } }).error?.message ?? `HTTP ${response.status}`);
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement("a");
      link.href = url;
      link.download = `job-${props.jobId}-result.${format}`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      setProblem(t("job.downloadFailed", { message: error instanceof Error ? error.message : String(error) }));
    }
  };

  return (
    <div class="actions" aria-label={t("job.downloads")} role="group">
      <button type="button" onClick={() => void download("json")}>
        {t("job.downloadJson")}
      </button>
      <button type="button" onClick={() => void download("csv")}>
        {t("job.downloadCsv")}
      </button>
      {problem && (
        <p class="error" role="alert">
          {problem}
        </p>
      )}
    </div>
  );
}
