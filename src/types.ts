/**
 * The shapes of guild-jupyter's REST and WebSocket API (docs/openapi.yaml).
 */

export type RunStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

export const STATUSES: RunStatus[] = ['pending', 'running', 'completed', 'failed', 'cancelled'];

export const TERMINAL: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled']);

export type FlagValue = string | number | boolean | null;

/** One row of `GET runs` (index fields plus flags and last scalar values). */
export interface IRunRow {
  id: string;
  op: string;
  kind?: string;
  status: RunStatus;
  created: number;
  started: number | null;
  stopped: number | null;
  label: string;
  tags: string[];
  sweep?: string | null;
  attempts?: number;
  exit_code?: number | null;
  reason?: string | null;
  deleted?: boolean;
  flags: Record<string, FlagValue>;
  scalars: Record<string, number | null>;
}

export interface IAttempt {
  n: number;
  status: RunStatus;
  started: number | null;
  stopped: number | null;
  exit_code: number | null;
  reason: string | null;
  host?: string | null;
  pid?: number | null;
}

/** `GET runs/{id}`: the run record with all attempts. */
export interface IRunRecord {
  id: string;
  op: string;
  kind: string;
  flags: Record<string, FlagValue>;
  created: number;
  label: string;
  tags: string[];
  sweep: string | null;
  source: Record<string, unknown>;
  attempts: IAttempt[];
  status: RunStatus;
  started: number | null;
  stopped: number | null;
  deleted: boolean;
  reason: string | null;
  exit_code: number | null;
}

export interface IListing {
  total: number;
  offset: number;
  limit: number | null;
  columns: string[];
  runs: IRunRow[];
}

export interface IOutputChunk {
  run: string;
  offset: number;
  next: number;
  size: number;
  text: string;
}

export interface ISeries {
  step: number[];
  value: (number | null)[];
  time: number[];
}

export interface IScalars {
  run: string;
  series: Record<string, ISeries>;
}

export interface IRunFile {
  path: string;
  size: number;
  mtime: number;
}

export interface ICompare {
  runs: IRunRow[];
  flags: string[];
  scalars: string[];
}

export interface IProvenance {
  run: string;
  provenance: {
    hostname?: string;
    user?: string;
    platform?: string;
    cpu_count?: number;
    python?: { version?: string; executable?: string; implementation?: string };
    packages?: Record<string, string>;
    git?: { commit?: string; dirty?: boolean; diff?: string } | null;
    [key: string]: unknown;
  };
}

/** Messages of the `events` WebSocket. */
export type GuildEvent =
  | { type: 'hello'; seq: number }
  | { type: 'gap'; seq: null; since: number; first: number; message: string }
  | { type: 'run-created'; seq: number; run: string; op: string; status: RunStatus }
  | {
      type: 'status';
      seq: number;
      run: string;
      status: RunStatus;
      attempt: number;
      reason: string | null;
      exit_code: number | null;
    }
  | { type: 'run-deleted'; seq: number; run: string; restored: boolean }
  | { type: 'output'; seq: number; run: string; offset: number; next: number; text: string }
  | {
      type: 'scalars';
      seq: number;
      run: string;
      scalars: Record<string, { value: number | null; step: number; count: number }>;
    };

/** A row from a run record (after `run-created`, or an action's answer). */
export function rowFromRecord(r: IRunRecord, scalars: Record<string, number | null> = {}): IRunRow {
  return {
    id: r.id,
    op: r.op,
    kind: r.kind,
    status: r.status,
    created: r.created,
    started: r.started,
    stopped: r.stopped,
    label: r.label ?? '',
    tags: r.tags ?? [],
    sweep: r.sweep,
    attempts: r.attempts?.length ?? 1,
    exit_code: r.exit_code,
    reason: r.reason,
    deleted: r.deleted,
    flags: r.flags ?? {},
    scalars
  };
}
