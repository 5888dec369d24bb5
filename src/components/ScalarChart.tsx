/**
 * A run's scalar series as line charts (plotly), one trace per key, redrawn
 * in place as new points arrive.
 */
import * as React from 'react';
import { drawLines, purge } from '../chart';
import { ISeries } from '../types';

export function ScalarChart(props: { series: Record<string, ISeries>; showSystem?: boolean }): JSX.Element {
  const ref = React.useRef<HTMLDivElement>(null);
  const keys = Object.keys(props.series)
    .filter(k => props.showSystem || !k.startsWith('sys/'))
    .sort();
  React.useEffect(() => {
    if (!ref.current || !keys.length) {
      return;
    }
    void drawLines(
      ref.current,
      keys.map(k => ({ name: k, x: props.series[k].step, y: props.series[k].value }))
    ).catch(e => console.warn('guild-jupyter: chart failed', e));
  }, [props.series, props.showSystem]);
  usePurgeOnUnmount(ref);
  if (!keys.length) {
    return <div className="jp-guild-empty">No scalars yet.</div>;
  }
  return <div ref={ref} className="jp-guild-chart" data-testid="guild-scalar-chart" />;
}

/** Frees a plotly chart's resources when its element goes away. */
export function usePurgeOnUnmount(ref: React.RefObject<HTMLDivElement>): void {
  React.useEffect(() => {
    const el = ref.current;
    return () => {
      if (el) {
        void purge(el);
      }
    };
  }, []);
}
