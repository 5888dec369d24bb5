/**
 * A run's detail tab: status and timestamps, flags, provenance, live scalar
 * charts, the live output tail, files, and actions. It follows the model's
 * event stream for its run: output is appended by byte offset (a gap is
 * fetched), scalars and the record are re-read when they change.
 */
import * as React from 'react';
import { ReactWidget } from '@jupyterlab/ui-components';
import { FilesPanel } from './components/FilesPanel';
import { LogTail } from './components/LogTail';
import { RunActions, IRunActionHandlers } from './components/RunActions';
import { ScalarChart } from './components/ScalarChart';
import { formatDuration, formatTime, formatValue, STATUS_GLYPH } from './format';
import { RunsModel } from './model';
import { FlagValue, GuildEvent, IProvenance, IRunFile, IRunRecord, ISeries, TERMINAL } from './types';

/** Output kept in the view, at most (the start of longer output is dropped). */
export const MAX_OUTPUT_CHARS = 1_000_000;
const SCALAR_REFRESH_MS = 500;

export interface IDetailCallbacks {
  openRun(id: string): void;
  notifyError(message: string): void;
}

export class RunDetailWidget extends ReactWidget {
  constructor(
    readonly model: RunsModel,
    readonly runId: string,
    private readonly callbacks: IDetailCallbacks
  ) {
    super();
    this.id = `guild-run-${runId}`;
    this.title.label = `Run ${runId.slice(0, 8)}`;
    this.title.closable = true;
    this.addClass('jp-guild-jupyter');
    this.addClass('jp-guild-RunDetail');
    model.runEvent.connect(this._onEvent, this);
    void this.refresh();
  }

  record: IRunRecord | null = null;
  provenance: IProvenance['provenance'] | null = null;
  series: Record<string, ISeries> = {};
  files: IRunFile[] = [];
  output = '';
  outputTrimmed = false;
  error: string | null = null;

  dispose(): void {
    this.model.runEvent.disconnect(this._onEvent, this);
    if (this._scalarTimer) {
      clearTimeout(this._scalarTimer);
    }
    super.dispose();
  }

  /** Read everything again (at open, and after the run ends). */
  async refresh(): Promise<void> {
    const api = this.model.api;
    try {
      await this._loadRecord();
      const [prov, files] = await Promise.all([api.provenance(this.runId).catch(() => null), api.files(this.runId)]);
      this.provenance = prov ? prov.provenance : null;
      this.files = files.files;
      await Promise.all([this._loadScalars(), this._loadOutput()]);
    } catch (e) {
      this.error = (e as Error).message;
    }
    this.update();
  }

  private async _loadRecord(): Promise<void> {
    this.record = await this.model.api.getRun(this.runId);
    this.title.label = `${this.record.op} ${this.runId.slice(0, 8)}`;
    this.title.caption = `${this.record.op} (${this.runId}) ${this.record.status}`;
    this.update();
  }

  private async _loadScalars(): Promise<void> {
    const r = await this.model.api.scalars(this.runId);
    this.series = r.series;
    this.update();
  }

  /** Output from the current end; the first time, only the last MAX_OUTPUT_CHARS. */
  private async _loadOutput(): Promise<void> {
    if (this._outputLoading) {
      this._outputAgain = true;
      return;
    }
    this._outputLoading = true;
    try {
      do {
        this._outputAgain = false;
        let chunk = await this.model.api.output(this.runId, this._next);
        if (this._next === 0 && chunk.size > MAX_OUTPUT_CHARS * 2) {
          this.outputTrimmed = true;
          chunk = await this.model.api.output(this.runId, chunk.size - MAX_OUTPUT_CHARS);
        }
        while (chunk.text) {
          if (chunk.offset === this._next) {
            this._append(chunk.text, chunk.next);
          }
          if (chunk.next >= chunk.size) {
            break;
          }
          chunk = await this.model.api.output(this.runId, this._next);
        }
      } while (this._outputAgain);
    } finally {
      this._outputLoading = false;
    }
    this.update();
  }

  private _append(text: string, next: number): void {
    this.output += text;
    this._next = next;
    if (this.output.length > MAX_OUTPUT_CHARS) {
      const cut = this.output.indexOf('\n', this.output.length - MAX_OUTPUT_CHARS);
      this.output = this.output.slice(cut >= 0 ? cut + 1 : this.output.length - MAX_OUTPUT_CHARS);
      this.outputTrimmed = true;
    }
  }

  private _onEvent(_: RunsModel, e: GuildEvent): void {
    if (e.type === 'gap') {
      void this.refresh();
      return;
    }
    if (!('run' in e) || e.run !== this.runId) {
      return;
    }
    switch (e.type) {
      case 'output':
        if (e.offset === this._next && !this._outputLoading) {
          this._append(e.text, e.next);
          this.update();
        } else if (e.next > this._next) {
          void this._loadOutput();
        }
        break;
      case 'scalars':
        if (!this._scalarTimer) {
          this._scalarTimer = setTimeout(() => {
            this._scalarTimer = null;
            void this._loadScalars().catch(() => undefined);
          }, SCALAR_REFRESH_MS);
        }
        break;
      case 'status':
        if (TERMINAL.has(e.status)) {
          void this.refresh();
        } else {
          void this._loadRecord().catch(() => undefined);
        }
        break;
      case 'run-deleted':
        void this._loadRecord().catch(() => undefined);
        break;
      default:
        break;
    }
  }

  private _act(fn: () => Promise<IRunRecord>): Promise<void> {
    return fn().then(
      record => {
        this.model.applyRecord(record);
        if (record.id === this.runId) {
          this.record = record;
          this.update();
        }
      },
      e => this.callbacks.notifyError((e as Error).message)
    );
  }

  get handlers(): IRunActionHandlers {
    const api = this.model.api;
    const id = this.runId;
    return {
      stop: () => this._act(() => api.stopRun(id)),
      restart: () =>
        this._act(() => api.restartRun(id)).then(() => {
          this._next = 0;
          this.output = '';
          void this._loadOutput();
        }),
      remove: () => this._act(() => api.deleteRun(id)),
      restore: () => this._act(() => api.restoreRun(id)),
      setLabel: (label: string) => this._act(() => api.patchRun(id, { label })),
      setTags: (tags: string[]) => this._act(() => api.patchRun(id, { tags })),
      rerun: (flags: Record<string, FlagValue>) =>
        api.rerunRun(id, flags).then(
          record => {
            this.model.applyRecord(record);
            this.callbacks.openRun(record.id);
          },
          e => this.callbacks.notifyError((e as Error).message)
        )
    };
  }

  render(): JSX.Element {
    return (
      <RunDetailView
        run={this.record}
        provenance={this.provenance}
        series={this.series}
        files={this.files}
        output={this.output}
        outputTrimmed={this.outputTrimmed}
        error={this.error}
        handlers={this.handlers}
        detail={this}
      />
    );
  }

  private _next = 0;
  private _outputLoading = false;
  private _outputAgain = false;
  private _scalarTimer: ReturnType<typeof setTimeout> | null = null;
}

function Section(props: { title: string; children: React.ReactNode; open?: boolean; testid?: string }): JSX.Element {
  return (
    <details className="jp-guild-section" open={props.open ?? true} data-testid={props.testid}>
      <summary>{props.title}</summary>
      {props.children}
    </details>
  );
}

function KeyValues(props: { rows: [string, React.ReactNode][]; testid?: string }): JSX.Element {
  return (
    <table className="jp-guild-table jp-guild-kv" data-testid={props.testid}>
      <tbody>
        {props.rows.map(([k, v]) => (
          <tr key={k}>
            <th>{k}</th>
            <td>{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function ProvenanceView(props: { provenance: IProvenance['provenance'] | null }): JSX.Element {
  const p = props.provenance;
  if (!p || !Object.keys(p).length) {
    return <div className="jp-guild-empty">Not recorded (yet).</div>;
  }
  const packages = Object.entries(p.packages ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const git = p.git;
  return (
    <div data-testid="guild-provenance">
      <KeyValues
        rows={[
          ['git commit', git?.commit ? `${git.commit}${git.dirty ? ' (uncommitted changes)' : ''}` : 'not a git checkout'],
          ['host', String(p.hostname ?? '')],
          ['user', String(p.user ?? '')],
          ['platform', String(p.platform ?? '')],
          ['python', `${p.python?.version ?? ''} ${p.python?.executable ?? ''}`],
          ['cpus', String(p.cpu_count ?? '')]
        ]}
      />
      <details>
        <summary>{packages.length} packages</summary>
        <table className="jp-guild-table">
          <tbody>
            {packages.map(([name, version]) => (
              <tr key={name}>
                <td>{name}</td>
                <td>{version}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </div>
  );
}

export function RunDetailView(props: {
  run: IRunRecord | null;
  provenance: IProvenance['provenance'] | null;
  series: Record<string, ISeries>;
  files: IRunFile[];
  output: string;
  outputTrimmed: boolean;
  error: string | null;
  handlers: IRunActionHandlers;
  detail: RunDetailWidget;
}): JSX.Element {
  const { run } = props;
  if (!run) {
    return <div className="jp-guild-empty">{props.error ?? 'Loading…'}</div>;
  }
  const live = !TERMINAL.has(run.status);
  return (
    <div className="jp-guild-RunDetail-body" data-testid="guild-run-detail" data-run-id={run.id} data-status={run.status}>
      <div className="jp-guild-RunDetail-head">
        <span className={`jp-guild-status-${run.status}`} data-testid="guild-detail-status">
          {STATUS_GLYPH[run.status]} {run.status}
        </span>
        <span className="jp-guild-RunDetail-op">{run.op}</span>
        <span className="jp-guild-muted">{run.id}</span>
        {run.deleted && <span className="jp-guild-badge">deleted</span>}
      </div>
      <div className="jp-guild-RunDetail-label" data-testid="guild-detail-label">
        {run.label}
      </div>
      {run.tags.length > 0 && (
        <div className="jp-guild-RunDetail-tags">
          {run.tags.map(t => (
            <span key={t} className="jp-guild-badge">
              {t}
            </span>
          ))}
        </div>
      )}
      {props.error && <div className="jp-guild-error">{props.error}</div>}
      <RunActions run={run} handlers={props.handlers} />
      <Section title="Status">
        <KeyValues
          testid="guild-detail-times"
          rows={[
            ['status', run.status + (run.reason ? ` (${run.reason})` : '')],
            ['created', formatTime(run.created)],
            ['started', formatTime(run.started)],
            ['stopped', formatTime(run.stopped)],
            ['duration', formatDuration(run.started, run.stopped)],
            ['attempts', String(run.attempts.length)],
            ['exit code', run.exit_code === null ? '' : String(run.exit_code)],
            ['kind', run.kind]
          ]}
        />
      </Section>
      <Section title="Flags">
        <KeyValues testid="guild-detail-flags" rows={Object.entries(run.flags).map(([k, v]) => [k, formatValue(v)])} />
      </Section>
      <Section title="Scalars">
        <ScalarChart series={props.series} />
      </Section>
      <Section title="Output">
        <LogTail text={props.output} trimmed={props.outputTrimmed} live={live} />
      </Section>
      <Section title={`Files (${props.files.length})`}>
        <FilesPanel api={props.detail.model.api} runId={run.id} files={props.files} />
      </Section>
      <Section title="Provenance" open={false}>
        <ProvenanceView provenance={props.provenance} />
      </Section>
    </div>
  );
}
