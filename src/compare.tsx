/**
 * The compare tab: the selected runs in a sortable table (differing columns
 * highlighted), parallel coordinates, and one scalar's curves overlaid.
 */
import * as React from 'react';
import { ReactWidget } from '@jupyterlab/ui-components';
import { drawLines } from './chart';
import { CompareTable, compareColumns, IColumn } from './components/CompareTable';
import { usePurgeOnUnmount } from './components/ScalarChart';
import { ParallelCoordinates } from './components/ParallelCoordinates';
import { RunsModel } from './model';
import { ICompare, ISeries } from './types';

export function OverlaidCurves(props: { model: RunsModel; data: ICompare }): JSX.Element {
  const keys = props.data.scalars.filter(k => !k.startsWith('sys/'));
  const [key, setKey] = React.useState(keys.includes(props.model.mainScalar) ? props.model.mainScalar : keys[0] ?? '');
  const ref = React.useRef<HTMLDivElement>(null);
  React.useEffect(() => {
    if (!key || !ref.current) {
      return;
    }
    let cancelled = false;
    const el = ref.current;
    void Promise.all(
      props.data.runs.map(r =>
        props.model.api
          .scalars(r.id, [key])
          .then(s => [r, s.series[key]] as const)
          .catch(() => [r, undefined] as const)
      )
    ).then(results => {
      if (cancelled) {
        return;
      }
      const traces = results
        .filter((x): x is readonly [(typeof x)[0], ISeries] => !!x[1])
        .map(([r, s]) => ({ name: `${r.id.slice(0, 8)} ${r.label}`.trim(), x: s.step, y: s.value }));
      return drawLines(el, traces, { yaxis: { title: { text: key } } });
    });
    return () => {
      cancelled = true;
    };
  }, [key, props.data]);
  usePurgeOnUnmount(ref);
  if (!keys.length) {
    return <div className="jp-guild-empty">These runs have no scalars.</div>;
  }
  return (
    <div>
      <label>
        scalar{' '}
        <select value={key} onChange={e => setKey(e.target.value)} data-testid="guild-compare-scalar">
          {keys.map(k => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
      </label>
      <div ref={ref} className="jp-guild-chart" data-testid="guild-compare-chart" />
    </div>
  );
}

export class CompareWidget extends ReactWidget {
  constructor(
    readonly model: RunsModel,
    readonly ids: string[],
    private readonly openRun: (id: string) => void
  ) {
    super();
    this.id = `guild-compare-${ids.map(i => i.slice(0, 8)).join('-')}`;
    this.title.label = `Compare ${ids.length} runs`;
    this.title.closable = true;
    this.addClass('jp-guild-jupyter');
    this.addClass('jp-guild-Compare');
    void this.load();
  }

  data: ICompare | null = null;
  error: string | null = null;

  async load(): Promise<void> {
    try {
      this.data = await this.model.api.compare(this.ids);
      this.error = null;
    } catch (e) {
      this.error = (e as Error).message;
    }
    this.update();
  }

  render(): JSX.Element {
    if (!this.data) {
      return <div className="jp-guild-empty">{this.error ?? 'Loading…'}</div>;
    }
    const columns: IColumn[] = compareColumns(this.data.flags, this.data.scalars);
    return (
      <div className="jp-guild-Compare-body" data-testid="guild-compare">
        <div className="jp-guild-toolbar">
          <button className="jp-mod-styled jp-guild-smallButton" onClick={() => void this.load()}>
            Refresh
          </button>
          <span className="jp-guild-muted">columns whose values differ are highlighted; click a header to sort</span>
        </div>
        <CompareTable runs={this.data.runs} columns={columns} onOpen={this.openRun} />
        <h3>Parallel coordinates</h3>
        <ParallelCoordinates runs={this.data.runs} columns={columns} />
        <h3>Scalar curves</h3>
        <OverlaidCurves model={this.model} data={this.data} />
      </div>
    );
  }
}
