/**
 * The sidebar's filter: text over op/label/tags, status chips, and a flag/scalar
 * expression (`lr<0.1 and loss<0.5`).
 */
import * as React from 'react';
import { IFilterState } from '../filter';
import { STATUSES, RunStatus } from '../types';
import { STATUS_GLYPH } from '../format';

export interface IFilterBarProps {
  filter: IFilterState;
  error: string | null;
  onChange: (change: Partial<IFilterState>) => void;
}

export function FilterBar(props: IFilterBarProps): JSX.Element {
  const { filter } = props;
  const toggle = (s: RunStatus) => {
    const on = filter.statuses.includes(s);
    props.onChange({ statuses: on ? filter.statuses.filter(x => x !== s) : [...filter.statuses, s] });
  };
  return (
    <div className="jp-guild-FilterBar">
      <input
        className="jp-guild-input"
        type="search"
        placeholder="Filter: op, label, tag"
        aria-label="filter runs by text"
        data-testid="guild-filter-text"
        value={filter.text}
        onChange={e => props.onChange({ text: e.target.value })}
      />
      <div className="jp-guild-chips" role="group" aria-label="status">
        {STATUSES.map(s => (
          <button
            key={s}
            className={`jp-guild-chip jp-guild-status-${s}` + (filter.statuses.includes(s) ? ' jp-guild-mod-on' : '')}
            aria-pressed={filter.statuses.includes(s)}
            data-testid={`guild-chip-${s}`}
            title={`show ${s} runs`}
            onClick={() => toggle(s)}
          >
            {STATUS_GLYPH[s]} {s}
          </button>
        ))}
      </div>
      <input
        className={'jp-guild-input' + (props.error ? ' jp-guild-mod-invalid' : '')}
        type="text"
        placeholder="Expression: lr<0.1 and loss<0.5"
        aria-label="filter runs by flag or scalar expression"
        data-testid="guild-filter-expr"
        value={filter.expr}
        onChange={e => props.onChange({ expr: e.target.value })}
      />
      {props.error && (
        <div className="jp-guild-error" role="alert">
          {props.error}
        </div>
      )}
    </div>
  );
}
