/**
 * plotly.js, loaded on first use (its own chunk, so the sidebar loads fast),
 * with layouts coloured from JupyterLab's theme variables.
 */
type PlotlyModule = typeof import('plotly.js-basic-dist-min');

let loading: Promise<PlotlyModule> | null = null;

export function loadPlotly(): Promise<PlotlyModule> {
  if (!loading) {
    loading = import(/* webpackChunkName: "guild-plotly" */ 'plotly.js-basic-dist-min').then(
      m => ((m as any).default ?? m) as PlotlyModule
    );
  }
  return loading;
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}

/** A plotly layout in the current theme's colours. */
export function themedLayout(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const fg = cssVar('--jp-ui-font-color1', '#333');
  const grid = cssVar('--jp-border-color2', '#ddd');
  const axis = { color: fg, gridcolor: grid, zerolinecolor: grid };
  return {
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: 'rgba(0,0,0,0)',
    font: { color: fg, family: cssVar('--jp-ui-font-family', 'sans-serif'), size: 11 },
    margin: { l: 50, r: 10, t: 10, b: 40 },
    legend: { orientation: 'h', y: -0.2 },
    xaxis: { ...axis, title: { text: 'step' } },
    yaxis: { ...axis },
    ...extra
  };
}

export interface ITrace {
  name: string;
  x: number[];
  y: (number | null)[];
}

/** Draw (or redraw in place) line traces into `el`. */
export async function drawLines(el: HTMLElement, traces: ITrace[], layout: Record<string, unknown> = {}): Promise<void> {
  const Plotly = await loadPlotly();
  const data = traces.map(t => ({ type: 'scatter', mode: 'lines', name: t.name, x: t.x, y: t.y }));
  await (Plotly as any).react(el, data, themedLayout(layout), { displaylogo: false, responsive: true });
}

export async function purge(el: HTMLElement): Promise<void> {
  if (loading) {
    const Plotly = await loading;
    (Plotly as any).purge(el);
  }
}
