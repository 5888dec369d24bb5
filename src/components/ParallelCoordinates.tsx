/**
 * Parallel coordinates as plain SVG: one vertical axis per numeric flag or
 * scalar, one polyline per run (no WebGL, themed with CSS variables).
 */
import * as React from 'react';
import { formatValue } from '../format';
import { IRunRow } from '../types';
import { IColumn } from './CompareTable';

const W = 140;
const H = 220;
const PAD = 24;
const PALETTE = 8;

export function ParallelCoordinates(props: { runs: IRunRow[]; columns: IColumn[] }): JSX.Element {
  const axes = props.columns.filter(
    c =>
      (c.key.startsWith('flags.') || c.key.startsWith('scalars.')) &&
      props.runs.some(r => typeof c.get(r) === 'number')
  );
  if (axes.length < 2 || props.runs.length < 1) {
    return <div className="jp-guild-empty">Parallel coordinates need two numeric flags or scalars.</div>;
  }
  const ranges = axes.map(c => {
    const vals = props.runs.map(r => c.get(r)).filter((v): v is number => typeof v === 'number');
    return [Math.min(...vals), Math.max(...vals)];
  });
  const y = (i: number, v: unknown) => {
    if (typeof v !== 'number') {
      return null;
    }
    const [lo, hi] = ranges[i];
    return hi === lo ? H / 2 : PAD + (1 - (v - lo) / (hi - lo)) * (H - 2 * PAD);
  };
  const width = W * (axes.length - 1) + 2 * PAD;
  return (
    <svg className="jp-guild-ParCoords" width={width} height={H + 20} data-testid="guild-parcoords" role="img" aria-label="parallel coordinates">
      {props.runs.map((r, k) => {
        const points = axes
          .map((c, i) => {
            const yy = y(i, c.get(r));
            return yy === null ? null : `${PAD + i * W},${yy}`;
          })
          .filter(p => p !== null)
          .join(' ');
        return (
          <polyline key={r.id} points={points} className={`jp-guild-line jp-guild-color-${k % PALETTE}`}>
            <title>{`${r.id.slice(0, 8)} ${r.label}`}</title>
          </polyline>
        );
      })}
      {axes.map((c, i) => (
        <g key={c.key} className="jp-guild-axis">
          <line x1={PAD + i * W} x2={PAD + i * W} y1={PAD} y2={H - PAD} />
          <text x={PAD + i * W} y={H} textAnchor="middle">
            {c.title}
          </text>
          <text x={PAD + i * W + 3} y={PAD - 6} className="jp-guild-tick">
            {formatValue(ranges[i][1])}
          </text>
          <text x={PAD + i * W + 3} y={H - PAD + 12} className="jp-guild-tick">
            {formatValue(ranges[i][0])}
          </text>
        </g>
      ))}
    </svg>
  );
}
