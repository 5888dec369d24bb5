/**
 * The status-bar item (how many runs are running) and the notifications sent
 * when a run the sidebar saw running ends.
 */
import * as React from 'react';
import { Notification } from '@jupyterlab/apputils';
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { formatDuration } from './format';
import { RunsModel } from './model';
import { IRunRow } from './types';

export class RunningStatus extends ReactWidget {
  constructor(
    private readonly model: RunsModel,
    private readonly onClick: () => void
  ) {
    super();
    this.addClass('jp-guild-StatusItem');
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => {
          const n = this.model.runningCount;
          return (
            <span
              data-testid="guild-status-item"
              title="guild-jupyter: runs running now (click to show the runs)"
              onClick={this.onClick}
            >
              Guild: {n} running
            </span>
          );
        }}
      </UseSignal>
    );
  }
}

/** One notification for a run that ended, with a button that opens it. */
export function notifyEnded(row: IRunRow, open: (id: string) => void): string {
  const what = `${row.op} ${row.label ? `"${row.label}" ` : ''}(${row.id.slice(0, 8)})`;
  const took = formatDuration(row.started, row.stopped);
  const options = {
    autoClose: row.status === 'completed' ? 5000 : (false as const),
    actions: [{ label: 'Open run', callback: () => open(row.id) }]
  };
  if (row.status === 'completed') {
    return Notification.success(`Run ${what} completed${took ? ` in ${took}` : ''}`, options);
  }
  if (row.status === 'failed') {
    return Notification.error(`Run ${what} failed${row.reason ? `: ${row.reason}` : ''}`, options);
  }
  return Notification.info(`Run ${what} was ${row.status}`, options);
}
