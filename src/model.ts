/**
 * The run list's state: the rows (newest first), the filter, the selection,
 * and the event stream applied to them. A new run, a status change, a scalar
 * update each touch one row; the whole list is fetched only at start, after a
 * gap in the stream, or when switching to the trash.
 */
import { ISignal, Signal } from '@lumino/signaling';
import { IEventConnection, IGuildApi } from './api';
import { compileFilter, EMPTY_FILTER, ICompiledFilter, IFilterState } from './filter';
import { GuildEvent, IRunRecord, IRunRow, rowFromRecord, TERMINAL } from './types';

export interface IModelOptions {
  maxRuns?: number;
  mainScalar?: string;
}

export class RunsModel {
  constructor(
    readonly api: IGuildApi,
    options: IModelOptions = {}
  ) {
    this.maxRuns = options.maxRuns ?? 10000;
    this.mainScalar = options.mainScalar ?? 'loss';
  }

  maxRuns: number;
  mainScalar: string;
  total = 0;
  loading = false;
  loaded = false;
  connected = false;
  error: string | null = null;

  get changed(): ISignal<this, void> {
    return this._changed;
  }
  /** Every event of the stream, for open detail views. */
  get runEvent(): ISignal<this, GuildEvent> {
    return this._runEvent;
  }
  /** A run seen running (live) reached a final status. */
  get runEnded(): ISignal<this, IRunRow> {
    return this._runEnded;
  }

  get rows(): readonly IRunRow[] {
    return this._rows;
  }
  get filtered(): readonly IRunRow[] {
    if (this._filtered === null) {
      const f = this._compiled;
      this._filtered = f.active ? this._rows.filter(r => f.match(r)) : this._rows;
    }
    return this._filtered;
  }
  get filter(): IFilterState {
    return this._filter;
  }
  get filterError(): string | null {
    return this._compiled.error;
  }
  get showDeleted(): boolean {
    return this._showDeleted;
  }
  get selected(): ReadonlySet<string> {
    return this._selected;
  }
  get runningCount(): number {
    let n = 0;
    for (const r of this._rows) {
      if (r.status === 'running') {
        n++;
      }
    }
    return n;
  }

  get(id: string): IRunRow | undefined {
    return this._byId.get(id);
  }

  /** The main scalar of a row: the configured key, else the first non-`sys/` key. */
  mainScalarOf(row: IRunRow): [string, number | null] | null {
    if (this.mainScalar && this.mainScalar in row.scalars) {
      return [this.mainScalar, row.scalars[this.mainScalar]];
    }
    for (const key of Object.keys(row.scalars).sort()) {
      if (!key.startsWith('sys/') && row.scalars[key] !== null) {
        return [key, row.scalars[key]];
      }
    }
    return null;
  }

  setFilter(state: Partial<IFilterState>): void {
    this._filter = { ...this._filter, ...state };
    this._compiled = compileFilter(this._filter);
    this._invalidate();
  }

  async setShowDeleted(on: boolean): Promise<void> {
    if (on !== this._showDeleted) {
      this._showDeleted = on;
      this._selected.clear();
      await this.reload();
    }
  }

  toggleSelected(id: string): void {
    if (this._selected.has(id)) {
      this._selected.delete(id);
    } else {
      this._selected.add(id);
    }
    this._changed.emit();
  }

  clearSelection(): void {
    this._selected.clear();
    this._changed.emit();
  }

  /** Load the list and follow the event stream (events during the load are queued). */
  async start(): Promise<void> {
    if (!this._connection) {
      this._connection = this.api.connectEvents(
        e => this.handleEvent(e),
        up => {
          this.connected = up;
          this._changed.emit();
        }
      );
    }
    await this.reload();
  }

  async reload(): Promise<void> {
    this.loading = true;
    this._queue = [];
    this._changed.emit();
    try {
      const listing = await this.api.listRuns({
        limit: this.maxRuns,
        sort: '-created',
        deleted: this._showDeleted ? 'true' : 'false'
      });
      this._rows = listing.runs.slice();
      this._byId = new Map(this._rows.map(r => [r.id, r]));
      this.total = listing.total;
      this.error = null;
      this.loaded = true;
    } catch (e) {
      this.error = (e as Error).message;
    } finally {
      this.loading = false;
    }
    const queued = this._queue ?? [];
    this._queue = null;
    this._invalidate();
    for (const e of queued) {
      this.handleEvent(e);
    }
  }

  /** Apply one event of the stream. */
  handleEvent(e: GuildEvent): void {
    if (this._queue !== null) {
      this._queue.push(e);
      return;
    }
    this._runEvent.emit(e);
    switch (e.type) {
      case 'gap':
        void this.reload();
        break;
      case 'run-created':
        if (!this._showDeleted) {
          void this._fetch(e.run);
        }
        break;
      case 'status': {
        const row = this._byId.get(e.run);
        if (!row) {
          if (!this._showDeleted) {
            void this._fetch(e.run);
          }
          break;
        }
        const wasLive = !TERMINAL.has(row.status);
        this._replace({ ...row, status: e.status, attempts: e.attempt, reason: e.reason, exit_code: e.exit_code });
        if (wasLive && TERMINAL.has(e.status)) {
          this._runEnded.emit(this._byId.get(e.run)!);
        }
        void this._fetch(e.run); // its started/stopped times
        break;
      }
      case 'run-deleted': {
        const wanted = e.restored !== this._showDeleted;
        if (wanted) {
          void this._fetch(e.run);
        } else {
          this._remove(e.run);
        }
        break;
      }
      case 'scalars': {
        const row = this._byId.get(e.run);
        if (row) {
          const scalars = { ...row.scalars };
          for (const [k, v] of Object.entries(e.scalars)) {
            scalars[k] = v.value;
          }
          this._replace({ ...row, scalars });
        }
        break;
      }
      default:
        break;
    }
  }

  /** Put an action's answer (a run record) into the list. */
  applyRecord(record: IRunRecord): void {
    if (record.deleted !== this._showDeleted) {
      this._remove(record.id);
      return;
    }
    const old = this._byId.get(record.id);
    this._upsert(rowFromRecord(record, old?.scalars ?? {}));
  }

  dispose(): void {
    this._connection?.dispose();
    this._connection = null;
    Signal.clearData(this);
  }

  private async _fetch(id: string): Promise<void> {
    if (this._fetching.has(id)) {
      this._refetch.add(id);
      return;
    }
    this._fetching.add(id);
    try {
      const record = await this.api.getRun(id);
      this.applyRecord(record);
    } catch {
      // deleted meanwhile, or the server is gone: the stream or a reload will tell
    } finally {
      this._fetching.delete(id);
      if (this._refetch.delete(id)) {
        void this._fetch(id);
      }
    }
  }

  private _upsert(row: IRunRow): void {
    if (this._byId.has(row.id)) {
      this._replace(row);
      return;
    }
    // newest first: find the place by created time (new runs go to the front)
    let i = 0;
    while (i < this._rows.length && this._rows[i].created > row.created) {
      i++;
    }
    this._rows = [...this._rows.slice(0, i), row, ...this._rows.slice(i)];
    this._byId.set(row.id, row);
    this.total++;
    this._invalidate();
  }

  private _replace(row: IRunRow): void {
    const i = this._rows.findIndex(r => r.id === row.id);
    if (i < 0) {
      return;
    }
    const rows = this._rows.slice();
    rows[i] = row;
    this._rows = rows;
    this._byId.set(row.id, row);
    this._invalidate();
  }

  private _remove(id: string): void {
    if (!this._byId.delete(id)) {
      return;
    }
    this._rows = this._rows.filter(r => r.id !== id);
    this._selected.delete(id);
    this.total = Math.max(0, this.total - 1);
    this._invalidate();
  }

  private _invalidate(): void {
    this._filtered = null;
    this._changed.emit();
  }

  private _rows: IRunRow[] = [];
  private _byId = new Map<string, IRunRow>();
  private _filtered: IRunRow[] | null = null;
  private _filter: IFilterState = EMPTY_FILTER;
  private _compiled: ICompiledFilter = compileFilter(EMPTY_FILTER);
  private _selected = new Set<string>();
  private _showDeleted = false;
  private _queue: GuildEvent[] | null = null;
  private _fetching = new Set<string>();
  private _refetch = new Set<string>();
  private _connection: IEventConnection | null = null;
  private _changed = new Signal<this, void>(this);
  private _runEvent = new Signal<this, GuildEvent>(this);
  private _runEnded = new Signal<this, IRunRow>(this);
}
