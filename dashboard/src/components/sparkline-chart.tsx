import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  label: string;
  values: (number | null)[];
  /** A CSS colour with enough contrast on white. */
  colour: string;
}

/**
 * A small time chart (uPlot, canvas): `times` in seconds since the epoch, one line per series.
 * The canvas is an image to assistive technology, described by `description`, which states the
 * figures the chart shows.
 */
export function SparklineChart(props: { times: number[]; series: ChartSeries[]; description: string; percent?: boolean }) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = `${props.series.map((series) => series.label).join("|")}|${props.percent ?? false}`;

  useEffect(() => {
    const element = container.current!;
    const options: uPlot.Options = {
      width: Math.max(element.clientWidth, 160),
      height: 90,
      legend: { show: false },
      cursor: { show: false },
      padding: [6, 14, 0, 0],
      scales: { x: { time: true }, y: props.percent ? { range: [0, 1] } : { range: (_plot, _min, max) => [0, Math.max(1, max)] } },
      axes: [
        { show: true, size: 22, font: "10px system-ui, sans-serif", stroke: "#444", grid: { show: false }, ticks: { size: 3 } },
        {
          show: true,
          size: 42,
          // Whole jobs, or tenths of the success rate: never a fraction of a job.
          incrs: props.percent ? [0.1, 0.25, 0.5] : [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000],
          font: "10px system-ui, sans-serif",
          stroke: "#444",
          grid: { stroke: "#e4e4e4", width: 1 },
          values: (_plot, ticks) => ticks.map((tick) => (props.percent ? `${Math.round(tick * 100)}%` : String(tick))),
        },
      ],
      series: [{}, ...props.series.map((series) => ({ label: series.label, stroke: series.colour, width: 2, spanGaps: props.percent,
        // A lone bucket with a value (a quiet queue) still shows as a dot.
        points: { show: true, size: 4 } }))],
    };
    plot.current = new uPlot(options, [props.times, ...props.series.map((series) => series.values)], element);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(element.clientWidth, 160), height: 90 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // Rebuilt only when the series change shape; new figures go through setData below.
  }, [shape]);

  useEffect(() => {
    plot.current?.setData([props.times, ...props.series.map((series) => series.values)]);
  }, [props.times, props.series]);

  return <div class="chart" role="img" aria-label={props.description} ref={container} />;
}
