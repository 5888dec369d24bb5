/**
 * The left-sidebar panel "Guild runs": toolbar, filter, the windowed list.
 */
import * as React from 'react';
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { FilterBar } from './components/FilterBar';
import { RunList } from './components/RunList';
import { RunsModel } from './model';

export interface IRunsPanelActions {
  open(id: string): void;
  compare(ids: string[]): void;
  stop(id: string): void;
}

export function RunsPanelView(props: { model: RunsModel; actions: IRunsPanelActions }): JSX.Element {
  const { model, actions } = props;
  const rows = model.filtered;
  const selected = Array.from(model.selected);
  return (
    <div className="jp-guild-RunsPanel">
      <div className="jp-guild-toolbar">
        <span className="jp-guild-title">Guild runs</span>
        <span className="jp-guild-count" data-testid="guild-run-count">
          {rows.length === model.rows.length ? `${model.total}` : `${rows.length} of ${model.total}`}
        </span>
        <span
          className={'jp-guild-live' + (model.connected ? ' jp-guild-mod-on' : '')}
          title={model.connected ? 'live: following the event stream' : 'not connected to the event stream'}
        >
          ●
        </span>
        <span className="jp-guild-spacer" />
        <button
          className="jp-mod-styled jp-guild-smallButton"
          data-testid="guild-compare-button"
          disabled={selected.length < 2}
          title="Compare the selected runs"
          onClick={() => actions.compare(selected)}
        >
          Compare{selected.length ? ` (${selected.length})` : ''}
        </button>
        <label className="jp-guild-trashToggle" title="Show deleted runs (the trash)">
          <input
            type="checkbox"
            checked={model.showDeleted}
            data-testid="guild-show-deleted"
            onChange={e => void model.setShowDeleted(e.target.checked)}
          />
          trash
        </label>
        <button
          className="jp-mod-styled jp-guild-smallButton"
          title="Reload the list"
          onClick={() => void model.reload()}
        >
          ⟳
        </button>
      </div>
      <FilterBar filter={model.filter} error={model.filterError} onChange={c => model.setFilter(c)} />
      {model.error && (
        <div className="jp-guild-error" role="alert">
          {model.error}
        </div>
      )}
      {model.loaded && rows.length === 0 && (
        <div className="jp-guild-empty">
          {model.rows.length ? 'No run matches the filter.' : 'No runs yet. Run a cell with %%guild_run.'}
        </div>
      )}
      <RunList
        rows={rows}
        selected={model.selected}
        mainScalarOf={r => model.mainScalarOf(r)}
        onOpen={actions.open}
        onToggleSelect={id => model.toggleSelected(id)}
        onStop={actions.stop}
      />
    </div>
  );
}

export class RunsPanel extends ReactWidget {
  constructor(
    readonly model: RunsModel,
    private readonly actions: IRunsPanelActions
  ) {
    super();
    this.addClass('jp-guild-jupyter');
    this.addClass('jp-guild-RunsPanelWidget');
    // durations of running runs move on
    this._timer = setInterval(() => {
      if (this.isVisible && model.runningCount) {
        this.update();
      }
    }, 1000);
  }

  dispose(): void {
    clearInterval(this._timer);
    super.dispose();
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <RunsPanelView model={this.model} actions={this.actions} />}
      </UseSignal>
    );
  }

  private _timer: ReturnType<typeof setInterval>;
}
