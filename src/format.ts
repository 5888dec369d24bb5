/**
 * How values are shown: times, durations, numbers, status glyphs.
 */
import { FlagValue, RunStatus } from './types';

export const STATUS_GLYPH: Record<RunStatus, string> = {
  pending: '◷',
  running: '▶',
  completed: '✔',
  failed: '✖',
  cancelled: '■'
};

export function formatTime(t: number | null | undefined): string {
  if (!t) {
    return '';
  }
  const d = new Date(t * 1000);
  const now = new Date();
  const pad = (n: number) => String(n).padStart(2, '0');
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === now.toDateString()) {
    return hm;
  }
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
}

export function formatDuration(started: number | null | undefined, stopped: number | null | undefined, now?: number): string {
  if (!started) {
    return '';
  }
  const end = stopped ?? now ?? Date.now() / 1000;
  let s = Math.max(0, end - started);
  if (s < 10) {
    return `${s.toFixed(1)}s`;
  }
  s = Math.round(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h) {
    return `${h}h${String(m).padStart(2, '0')}m`;
  }
  return m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

export function formatValue(v: FlagValue | undefined): string {
  if (v === undefined || v === null) {
    return '';
  }
  if (typeof v === 'number') {
    if (Number.isInteger(v)) {
      return String(v);
    }
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(5)));
  }
  if (typeof v === 'string') {
    return v;
  }
  return JSON.stringify(v);
}

export function formatBytes(n: number): string {
  if (n < 1024) {
    return `${n} B`;
  }
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** A flag value typed by the user: JSON when it parses (numbers, true, "text"), else the text. */
export function parseFlagInput(text: string): FlagValue {
  const t = text.trim();
  try {
    const v = JSON.parse(t);
    if (v === null || ['number', 'string', 'boolean'].includes(typeof v)) {
      return v;
    }
  } catch {
    // not JSON
  }
  if (t === 'True' || t === 'False') {
    return t === 'True';
  }
  return text;
}
