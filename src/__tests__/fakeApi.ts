/**
 * An in-memory IGuildApi for tests: runs in a map, events pushed by the test.
 */
import { IGuildApi, IListQuery } from '../api';
import { FlagValue, GuildEvent, IListing, IRunRecord, IRunRow, RunStatus } from '../types';

export function record(id: string, created: number, extra: Partial<IRunRecord> = {}): IRunRecord {
  return {
    id,
    op: 'train.py',
    kind: 'script',
    flags: { lr: 0.1 },
    created,
    label: '',
    tags: [],
    sweep: null,
    source: {},
    attempts: [],
    status: 'completed' as RunStatus,
    started: created,
    stopped: created + 2,
    deleted: false,
    reason: null,
    exit_code: 0,
    ...extra
  };
}

export function row(r: IRunRecord, scalars: Record<string, number | null> = {}): IRunRow {
  return {
    id: r.id,
    op: r.op,
    status: r.status,
    created: r.created,
    started: r.started,
    stopped: r.stopped,
    label: r.label,
    tags: r.tags,
    deleted: r.deleted,
    flags: r.flags,
    scalars
  };
}

export class FakeApi implements IGuildApi {
  runs = new Map<string, IRunRecord>();
  scalarsOf = new Map<string, Record<string, number | null>>();
  listCalls: IListQuery[] = [];
  listGate: Promise<void> | null = null;
  onEvent: ((e: GuildEvent) => void) | null = null;
  calls: string[] = [];

  add(r: IRunRecord, scalars: Record<string, number | null> = {}): IRunRecord {
    this.runs.set(r.id, r);
    this.scalarsOf.set(r.id, scalars);
    return r;
  }

  emit(e: GuildEvent): void {
    this.onEvent!(e);
  }

  async listRuns(q: IListQuery = {}): Promise<IListing> {
    this.listCalls.push(q);
    if (this.listGate) {
      await this.listGate;
    }
    const deleted = q.deleted === 'true';
    const rows = Array.from(this.runs.values())
      .filter(r => r.deleted === deleted)
      .sort((a, b) => b.created - a.created)
      .map(r => row(r, this.scalarsOf.get(r.id)));
    return { total: rows.length, offset: 0, limit: q.limit ?? null, columns: [], runs: rows.slice(0, q.limit) };
  }

  async getRun(id: string): Promise<IRunRecord> {
    const r = this.runs.get(id);
    if (!r) {
      throw new Error(`no run ${id}`);
    }
    return { ...r };
  }

  private change(id: string, what: string, c: Partial<IRunRecord>): Promise<IRunRecord> {
    this.calls.push(`${what} ${id}`);
    const r = { ...this.runs.get(id)!, ...c };
    this.runs.set(id, r);
    return Promise.resolve({ ...r });
  }

  patchRun(id: string, body: { label?: string; tags?: string[] }): Promise<IRunRecord> {
    return this.change(id, 'patch', body);
  }
  deleteRun(id: string): Promise<IRunRecord> {
    return this.change(id, 'delete', { deleted: true });
  }
  restoreRun(id: string): Promise<IRunRecord> {
    return this.change(id, 'restore', { deleted: false });
  }
  stopRun(id: string): Promise<IRunRecord> {
    return this.change(id, 'stop', {});
  }
  restartRun(id: string): Promise<IRunRecord> {
    return this.change(id, 'restart', { status: 'running' });
  }
  async rerunRun(id: string, flags: Record<string, FlagValue>): Promise<IRunRecord> {
    this.calls.push(`rerun ${id} ${JSON.stringify(flags)}`);
    return this.add(record(`${id}-re`, Date.now() / 1000, { flags, status: 'pending' }));
  }
  async output(id: string, offset: number) {
    return { run: id, offset, next: offset, size: offset, text: '' };
  }
  async scalars(id: string) {
    return { run: id, series: {} };
  }
  async files(id: string) {
    return { run: id, files: [] };
  }
  async fileBlob(): Promise<Blob> {
    return new Blob(['x']);
  }
  async provenance(id: string) {
    return { run: id, provenance: {} };
  }
  async compare(ids: string[]) {
    return { runs: ids.map(i => row(this.runs.get(i)!, this.scalarsOf.get(i))), flags: ['lr'], scalars: [] };
  }
  connectEvents(onEvent: (e: GuildEvent) => void, onState?: (up: boolean) => void) {
    this.onEvent = onEvent;
    onState?.(true);
    return { dispose: () => (this.onEvent = null) };
  }
}

/** Let pending promises (fetches after events) settle. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setTimeout(resolve, 0));
  }
}
