/**
 * A run's actions: stop, restart, delete/restore, label, tags, and rerun with
 * edited flags.
 */
import * as React from 'react';
import { formatValue, parseFlagInput } from '../format';
import { FlagValue, IRunRecord, TERMINAL } from '../types';

export interface IRunActionHandlers {
  stop(): Promise<void>;
  restart(): Promise<void>;
  remove(): Promise<void>;
  restore(): Promise<void>;
  setLabel(label: string): Promise<void>;
  setTags(tags: string[]): Promise<void>;
  rerun(flags: Record<string, FlagValue>): Promise<void>;
}

function flagText(v: FlagValue): string {
  return typeof v === 'string' ? v : formatValue(v) || JSON.stringify(v);
}

export function RunActions(props: { run: IRunRecord; handlers: IRunActionHandlers }): JSX.Element {
  const { run, handlers } = props;
  const finished = TERMINAL.has(run.status);
  const [label, setLabel] = React.useState(run.label);
  const [tags, setTags] = React.useState(run.tags.join(', '));
  const [rerunOpen, setRerunOpen] = React.useState(false);
  const [flags, setFlags] = React.useState<Record<string, string>>({});
  React.useEffect(() => setLabel(run.label), [run.label]);
  React.useEffect(() => setTags(run.tags.join(', ')), [run.tags.join('\u0000')]);

  const openRerun = () => {
    setFlags(Object.fromEntries(Object.entries(run.flags).map(([k, v]) => [k, flagText(v)])));
    setRerunOpen(!rerunOpen);
  };
  const submitRerun = () => {
    const parsed: Record<string, FlagValue> = {};
    for (const [k, text] of Object.entries(flags)) {
      const original = run.flags[k];
      // a string flag stays a string whatever it looks like
      parsed[k] = typeof original === 'string' ? text : parseFlagInput(text);
    }
    void handlers.rerun(parsed).then(() => setRerunOpen(false));
  };

  return (
    <div className="jp-guild-Actions">
      <div className="jp-guild-toolbar">
        {!finished && (
          <button className="jp-mod-styled jp-mod-warn" data-testid="guild-action-stop" onClick={() => void handlers.stop()}>
            Stop
          </button>
        )}
        {finished && !run.deleted && (
          <button className="jp-mod-styled" data-testid="guild-action-restart" onClick={() => void handlers.restart()}>
            Restart
          </button>
        )}
        {finished && (
          <button className="jp-mod-styled" data-testid="guild-action-rerun" aria-expanded={rerunOpen} onClick={openRerun}>
            Rerun…
          </button>
        )}
        {finished && !run.deleted && (
          <button className="jp-mod-styled" data-testid="guild-action-delete" onClick={() => void handlers.remove()}>
            Delete
          </button>
        )}
        {run.deleted && (
          <button className="jp-mod-styled jp-mod-accept" data-testid="guild-action-restore" onClick={() => void handlers.restore()}>
            Restore
          </button>
        )}
      </div>
      <form
        className="jp-guild-inline"
        onSubmit={e => {
          e.preventDefault();
          void handlers.setLabel(label);
        }}
      >
        <input className="jp-guild-input" aria-label="label" placeholder="label" data-testid="guild-label-input" value={label} onChange={e => setLabel(e.target.value)} />
        <button className="jp-mod-styled jp-guild-smallButton" type="submit" data-testid="guild-label-save">
          Set label
        </button>
      </form>
      <form
        className="jp-guild-inline"
        onSubmit={e => {
          e.preventDefault();
          void handlers.setTags(
            tags
              .split(',')
              .map(t => t.trim())
              .filter(t => t)
          );
        }}
      >
        <input className="jp-guild-input" aria-label="tags" placeholder="tags, comma separated" data-testid="guild-tags-input" value={tags} onChange={e => setTags(e.target.value)} />
        <button className="jp-mod-styled jp-guild-smallButton" type="submit" data-testid="guild-tags-save">
          Set tags
        </button>
      </form>
      {rerunOpen && (
        <form
          className="jp-guild-rerun"
          data-testid="guild-rerun-form"
          onSubmit={e => {
            e.preventDefault();
            submitRerun();
          }}
        >
          {Object.keys(flags).length === 0 && <div className="jp-guild-muted">This run has no flags.</div>}
          {Object.entries(flags).map(([k, v]) => (
            <label key={k} className="jp-guild-flagInput">
              <span>{k}</span>
              <input className="jp-guild-input" data-flag={k} value={v} onChange={e => setFlags({ ...flags, [k]: e.target.value })} />
            </label>
          ))}
          <button className="jp-mod-styled jp-mod-accept" type="submit" data-testid="guild-rerun-submit">
            Start rerun
          </button>
        </form>
      )}
    </div>
  );
}
