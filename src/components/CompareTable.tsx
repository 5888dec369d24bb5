/**
 * Runs side by side: a sortable table of fields, flags and scalars, the columns
 * whose values differ between runs highlighted.
 */
import * as React from 'react';
import { formatValue } from '../format';
import { FlagValue, IRunRow } from '../types';

export interface IColumn {
  key: string;
  title: string;
  get: (r: IRunRow) => FlagValue | undefined;
}

export function compareColumns(flags: string[], scalars: string[]): IColumn[] {
  return [
    { key: 'id', title: 'run', get: r => r.id.slice(0, 8) },
    { key: 'op', title: 'op', get: r => r.op },
    { key: 'status', title: 'status', get: r => r.status },
    { key: 'label', title: 'label', get: r => r.label },
    ...flags.map(f => ({ key: `flags.${f}`, title: f, get: (r: IRunRow) => r.flags[f] })),
    ...scalars
      .filter(s => !s.startsWith('sys/'))
      .map(s => ({ key: `scalars.${s}`, title: s, get: (r: IRunRow) => r.scalars[s] }))
  ];
}

/** Whether a column holds more than one distinct value over the runs. */
export function differs(col: IColumn, runs: IRunRow[]): boolean {
  const seen = new Set(runs.map(r => JSON.stringify(col.get(r) ?? null)));
  return seen.size > 1;
}

function cmp(a: FlagValue | undefined, b: FlagValue | undefined): number {
  if (a === b) {
    return 0;
  }
  if (a === undefined || a === null) {
    return 1;
  }
  if (b === undefined || b === null) {
    return -1;
  }
  if (typeof a === 'number' && typeof b === 'number') {
    return a - b;
  }
  return String(a).localeCompare(String(b));
}

export function CompareTable(props: { runs: IRunRow[]; columns: IColumn[]; onOpen: (id: string) => void }): JSX.Element {
  const [sort, setSort] = React.useState<{ key: string; desc: boolean } | null>(null);
  const col = sort && props.columns.find(c => c.key === sort.key);
  const runs = col
    ? props.runs.slice().sort((a, b) => (sort!.desc ? -1 : 1) * cmp(col.get(a), col.get(b)))
    : props.runs;
  return (
    <table className="jp-guild-table jp-guild-CompareTable" data-testid="guild-compare-table">
      <thead>
        <tr>
          {props.columns.map(c => {
            const diff = differs(c, props.runs);
            const dir = sort?.key === c.key ? (sort.desc ? ' ▼' : ' ▲') : '';
            return (
              <th
                key={c.key}
                className={diff ? 'jp-guild-mod-differs' : ''}
                data-column={c.key}
                data-differs={diff}
                aria-sort={sort?.key === c.key ? (sort.desc ? 'descending' : 'ascending') : 'none'}
                onClick={() => setSort({ key: c.key, desc: sort?.key === c.key ? !sort.desc : false })}
                title={`${c.key}: click to sort`}
              >
                {c.title}
                {dir}
              </th>
            );
          })}
        </tr>
      </thead>
      <tbody>
        {runs.map(r => (
          <tr key={r.id} data-run-id={r.id}>
            {props.columns.map(c => (
              <td key={c.key} className={differs(c, props.runs) ? 'jp-guild-mod-differs' : ''}>
                {c.key === 'id' ? (
                  <button className="jp-guild-linkButton" onClick={() => props.onOpen(r.id)}>
                    {formatValue(c.get(r))}
                  </button>
                ) : (
                  formatValue(c.get(r))
                )}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
