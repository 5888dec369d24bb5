/**
 * The run list, windowed: rows have a fixed height and only the visible ones
 * (plus a few above and below) are in the DOM, so 10,000+ runs scroll smoothly.
 * Keyboard: Up/Down (PageUp/PageDown, Home/End) move, Enter opens, Space selects.
 */
import * as React from 'react';
import { formatDuration, formatTime, formatValue, STATUS_GLYPH } from '../format';
import { IRunRow } from '../types';

export const ROW_HEIGHT = 44;
const OVERSCAN = 8;

export interface IRunListProps {
  rows: readonly IRunRow[];
  selected: ReadonlySet<string>;
  mainScalarOf: (row: IRunRow) => [string, number | null] | null;
  onOpen: (id: string) => void;
  onToggleSelect: (id: string) => void;
  onStop?: (id: string) => void;
  /** Rendering time for running durations (tests pass a fixed one). */
  now?: number;
}

export function RunRowView(props: {
  row: IRunRow;
  index: number;
  top: number;
  active: boolean;
  selected: boolean;
  main: [string, number | null] | null;
  now?: number;
  onOpen: (id: string) => void;
  onToggleSelect: (id: string) => void;
  onStop?: (id: string) => void;
  onFocusRow: (index: number) => void;
}): JSX.Element {
  const { row, main } = props;
  const running = row.status === 'running' || row.status === 'pending';
  return (
    <div
      role="option"
      id={`guild-row-${props.index}`}
      aria-selected={props.selected}
      data-testid="guild-run-row"
      data-run-id={row.id}
      data-status={row.status}
      className={
        'jp-guild-RunRow' +
        (props.active ? ' jp-guild-mod-active' : '') +
        (props.selected ? ' jp-guild-mod-selected' : '')
      }
      style={{ top: props.top, height: ROW_HEIGHT }}
      onClick={() => props.onFocusRow(props.index)}
      onDoubleClick={() => props.onOpen(row.id)}
    >
      <input
        type="checkbox"
        className="jp-guild-RunRow-check"
        aria-label="select for comparing"
        tabIndex={-1}
        checked={props.selected}
        onChange={() => props.onToggleSelect(row.id)}
        onClick={e => e.stopPropagation()}
      />
      <span
        className={`jp-guild-RunRow-status jp-guild-status-${row.status}`}
        title={row.status + (row.reason ? `: ${row.reason}` : '')}
        data-testid="guild-run-status"
      >
        {STATUS_GLYPH[row.status] ?? '?'}
      </span>
      <div className="jp-guild-RunRow-main">
        <div className="jp-guild-RunRow-line">
          <button
            className="jp-guild-RunRow-op jp-guild-linkButton"
            tabIndex={-1}
            title={`${row.op} (${row.id.slice(0, 8)})`}
            onClick={e => {
              e.stopPropagation();
              props.onOpen(row.id);
            }}
          >
            {row.op}
          </button>
          <span className="jp-guild-RunRow-label" data-testid="guild-run-label" title={row.label}>
            {row.label}
          </span>
        </div>
        <div className="jp-guild-RunRow-line jp-guild-RunRow-meta">
          <span className="jp-guild-RunRow-id">{row.id.slice(0, 8)}</span>
          <span>{formatTime(row.started ?? row.created)}</span>
          <span>{formatDuration(row.started, row.stopped, props.now)}</span>
          {row.tags.length > 0 && <span className="jp-guild-RunRow-tags">{row.tags.join(', ')}</span>}
        </div>
      </div>
      {main && (
        <span className="jp-guild-RunRow-scalar" title={main[0]} data-testid="guild-run-scalar">
          {formatValue(main[1])}
        </span>
      )}
      {running && props.onStop && (
        <button
          className="jp-guild-RunRow-stop jp-mod-styled jp-guild-smallButton"
          data-testid="guild-run-stop"
          title="Stop this run"
          tabIndex={-1}
          onClick={e => {
            e.stopPropagation();
            props.onStop!(row.id);
          }}
        >
          Stop
        </button>
      )}
    </div>
  );
}

export function RunList(props: IRunListProps): JSX.Element {
  const ref = React.useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = React.useState(0);
  const [height, setHeight] = React.useState(600);
  const [active, setActive] = React.useState(0);
  const n = props.rows.length;

  React.useEffect(() => {
    const el = ref.current;
    if (!el) {
      return;
    }
    const measure = () => setHeight(el.clientHeight || 600);
    measure();
    if (typeof ResizeObserver === 'undefined') {
      return;
    }
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  React.useEffect(() => {
    if (active >= n && n > 0) {
      setActive(n - 1);
    }
  }, [n]);

  const scrollTo = (index: number) => {
    const el = ref.current;
    if (!el) {
      return;
    }
    const top = index * ROW_HEIGHT;
    if (top < el.scrollTop) {
      el.scrollTop = top;
    } else if (top + ROW_HEIGHT > el.scrollTop + height) {
      el.scrollTop = top + ROW_HEIGHT - height;
    }
    setScrollTop(el.scrollTop);
  };

  const move = (index: number) => {
    const i = Math.max(0, Math.min(n - 1, index));
    setActive(i);
    scrollTo(i);
  };

  const onKeyDown = (e: React.KeyboardEvent) => {
    if (!n) {
      return;
    }
    const page = Math.max(1, Math.floor(height / ROW_HEIGHT) - 1);
    const keys: Record<string, () => void> = {
      ArrowDown: () => move(active + 1),
      ArrowUp: () => move(active - 1),
      PageDown: () => move(active + page),
      PageUp: () => move(active - page),
      Home: () => move(0),
      End: () => move(n - 1),
      Enter: () => props.onOpen(props.rows[Math.min(active, n - 1)].id),
      ' ': () => props.onToggleSelect(props.rows[Math.min(active, n - 1)].id)
    };
    const action = keys[e.key];
    if (action) {
      e.preventDefault();
      e.stopPropagation();
      action();
    }
  };

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(n, Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
  const items: JSX.Element[] = [];
  for (let i = first; i < last; i++) {
    const row = props.rows[i];
    items.push(
      <RunRowView
        key={row.id}
        row={row}
        index={i}
        top={i * ROW_HEIGHT}
        active={i === active}
        selected={props.selected.has(row.id)}
        main={props.mainScalarOf(row)}
        now={props.now}
        onOpen={props.onOpen}
        onToggleSelect={props.onToggleSelect}
        onStop={props.onStop}
        onFocusRow={index => {
          setActive(index);
          ref.current?.focus();
        }}
      />
    );
  }
  return (
    <div
      ref={ref}
      className="jp-guild-RunList"
      role="listbox"
      aria-label="Guild runs"
      aria-multiselectable={true}
      aria-activedescendant={n ? `guild-row-${active}` : undefined}
      tabIndex={0}
      data-testid="guild-run-list"
      onScroll={e => setScrollTop((e.target as HTMLDivElement).scrollTop)}
      onKeyDown={onKeyDown}
    >
      <div className="jp-guild-RunList-spacer" style={{ height: n * ROW_HEIGHT }}>
        {items}
      </div>
    </div>
  );
}
