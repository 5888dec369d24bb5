import * as React from 'react';
import { act, fireEvent, render, screen } from '@testing-library/react';
import { CompareTable, compareColumns } from '../components/CompareTable';
import { FilterBar } from '../components/FilterBar';
import { LogTail } from '../components/LogTail';
import { ParallelCoordinates } from '../components/ParallelCoordinates';
import { RunActions, IRunActionHandlers } from '../components/RunActions';
import { ROW_HEIGHT, RunList } from '../components/RunList';
import { EMPTY_FILTER } from '../filter';
import { RunsModel } from '../model';
import { RunsPanelView } from '../sidebar';
import { FlagValue, IRunRow } from '../types';
import { FakeApi, record, row } from './fakeApi';

const XSS = '<img src=x onerror=alert(1)>';

function rows(n: number): IRunRow[] {
  return Array.from({ length: n }, (_, i) => row(record(`r${String(n - i).padStart(6, '0')}`, n - i, { label: `run ${n - i}` }), { loss: i }));
}

function list(props: Partial<React.ComponentProps<typeof RunList>> = {}) {
  const calls: string[] = [];
  const utils = render(
    <RunList
      rows={rows(10000)}
      selected={new Set()}
      mainScalarOf={r => ['loss', r.scalars.loss]}
      onOpen={id => calls.push(`open ${id}`)}
      onToggleSelect={id => calls.push(`select ${id}`)}
      onStop={id => calls.push(`stop ${id}`)}
      {...props}
    />
  );
  return { calls, ...utils };
}

describe('RunList', () => {
  it('puts only the visible window of 10,000 runs in the DOM', () => {
    const { container } = list();
    const shown = container.querySelectorAll('[data-testid="guild-run-row"]');
    expect(shown.length).toBeGreaterThan(5);
    expect(shown.length).toBeLessThan(60);
    const spacer = container.querySelector('.jp-guild-RunList-spacer') as HTMLElement;
    expect(spacer.style.height).toBe(`${10000 * ROW_HEIGHT}px`);
    // scrolled far down: the rows there, and no longer the first ones
    const el = screen.getByTestId('guild-run-list');
    el.scrollTop = 5000 * ROW_HEIGHT;
    fireEvent.scroll(el);
    const ids = Array.from(container.querySelectorAll('[data-testid="guild-run-row"]')).map(e => e.getAttribute('data-run-id'));
    expect(ids).toContain('r005000');
    expect(ids).not.toContain('r010000');
  });

  it('moves with the keyboard, opens with Enter, selects with Space', () => {
    const { calls } = list({ rows: rows(5) });
    const el = screen.getByTestId('guild-run-list');
    fireEvent.keyDown(el, { key: 'ArrowDown' });
    fireEvent.keyDown(el, { key: 'ArrowDown' });
    fireEvent.keyDown(el, { key: 'ArrowUp' });
    fireEvent.keyDown(el, { key: 'Enter' });
    fireEvent.keyDown(el, { key: 'End' });
    fireEvent.keyDown(el, { key: ' ' });
    expect(calls).toEqual(['open r000004', 'select r000001']);
    expect(el.getAttribute('aria-activedescendant')).toBe('guild-row-4');
  });

  it('renders labels and tags as text', () => {
    const r = row(record('x1', 1, { label: XSS, tags: ['<b>t</b>'], status: 'running' }));
    const { container, calls } = list({ rows: [r] });
    expect(container.querySelector('img')).toBeNull();
    expect(container.querySelector('b')).toBeNull();
    expect(screen.getByTestId('guild-run-label').textContent).toBe(XSS);
    expect(container.textContent).toContain('<b>t</b>');
    fireEvent.click(screen.getByTestId('guild-run-stop'));
    expect(calls).toEqual(['stop x1']);
  });

  it('shows status, main scalar and a stop button only for live runs', () => {
    const done = row(record('d', 2, { status: 'completed' }), { loss: 0.25 });
    const live = row(record('l', 1, { status: 'running', stopped: null }), { loss: 0.5 });
    list({ rows: [done, live] });
    const statuses = screen.getAllByTestId('guild-run-status').map(e => e.className);
    expect(statuses[0]).toContain('jp-guild-status-completed');
    expect(statuses[1]).toContain('jp-guild-status-running');
    expect(screen.getAllByTestId('guild-run-scalar').map(e => e.textContent)).toEqual(['0.25', '0.5']);
    expect(screen.getAllByTestId('guild-run-stop')).toHaveLength(1);
  });
});

describe('FilterBar', () => {
  it('toggles status chips and shows expression errors', () => {
    const changes: unknown[] = [];
    render(<FilterBar filter={{ ...EMPTY_FILTER, statuses: ['failed'] }} error="cannot read x" onChange={c => changes.push(c)} />);
    fireEvent.click(screen.getByTestId('guild-chip-running'));
    fireEvent.click(screen.getByTestId('guild-chip-failed'));
    fireEvent.change(screen.getByTestId('guild-filter-expr'), { target: { value: 'lr<1' } });
    expect(changes).toEqual([{ statuses: ['failed', 'running'] }, { statuses: [] }, { expr: 'lr<1' }]);
    expect(screen.getByRole('alert').textContent).toBe('cannot read x');
  });
});

describe('RunsPanelView', () => {
  it('lists the model, filters, and compares the selection', async () => {
    const api = new FakeApi();
    api.add(record('a', 1, { label: 'first' }));
    api.add(record('b', 2, { label: 'second' }));
    const model = new RunsModel(api);
    await model.start();
    const compared: string[][] = [];
    const view = () => <RunsPanelView model={model} actions={{ open: () => undefined, stop: () => undefined, compare: ids => compared.push(ids) }} />;
    const { rerender } = render(view());
    expect(screen.getAllByTestId('guild-run-row').map(e => e.getAttribute('data-run-id'))).toEqual(['b', 'a']);
    act(() => model.setFilter({ text: 'first' }));
    rerender(view());
    expect(screen.getAllByTestId('guild-run-row')).toHaveLength(1);
    expect(screen.getByTestId('guild-run-count').textContent).toBe('1 of 2');
    act(() => {
      model.setFilter({ text: '' });
      model.toggleSelected('a');
      model.toggleSelected('b');
    });
    rerender(view());
    fireEvent.click(screen.getByTestId('guild-compare-button'));
    expect(compared).toEqual([['a', 'b']]);
  });
});

describe('CompareTable', () => {
  const a = row(record('aaaaaaaa1', 1, { flags: { lr: 0.1, epochs: 3 }, label: 'A' }), { loss: 0.5 });
  const b = row(record('bbbbbbbb2', 2, { flags: { lr: 0.5, epochs: 3 }, label: 'B' }), { loss: 0.2 });

  it('highlights differing columns and sorts by a column', () => {
    const cols = compareColumns(['lr', 'epochs'], ['loss', 'sys/cpu']);
    expect(cols.map(c => c.key)).not.toContain('scalars.sys/cpu');
    const { container } = render(<CompareTable runs={[a, b]} columns={cols} onOpen={() => undefined} />);
    const th = (k: string) => container.querySelector(`th[data-column="${k}"]`)!;
    expect(th('flags.lr').getAttribute('data-differs')).toBe('true');
    expect(th('flags.epochs').getAttribute('data-differs')).toBe('false');
    const labels = () => Array.from(container.querySelectorAll('tbody tr')).map(tr => tr.getAttribute('data-run-id'));
    fireEvent.click(th('scalars.loss'));
    expect(labels()).toEqual(['bbbbbbbb2', 'aaaaaaaa1']);
    fireEvent.click(th('scalars.loss'));
    expect(labels()).toEqual(['aaaaaaaa1', 'bbbbbbbb2']);
    expect(th('scalars.loss').getAttribute('aria-sort')).toBe('descending');
  });

  it('draws one parallel-coordinates line per run', () => {
    const cols = compareColumns(['lr', 'epochs'], ['loss']);
    const { container } = render(<ParallelCoordinates runs={[a, b]} columns={cols} />);
    expect(container.querySelectorAll('polyline')).toHaveLength(2);
    expect(container.querySelectorAll('.jp-guild-axis')).toHaveLength(3);
  });
});

describe('LogTail', () => {
  it('shows output as text, searches it, and pauses', () => {
    const text = 'line 1\n<script>alert(1)</script>\nline 2\n';
    const { container, rerender } = render(<LogTail text={text} trimmed={false} live={true} />);
    const log = screen.getByTestId('guild-log');
    expect(log.textContent).toBe(text);
    expect(container.querySelector('script')).toBeNull();
    fireEvent.change(screen.getByTestId('guild-log-search'), { target: { value: 'LINE' } });
    expect(log.textContent).toBe('line 1\nline 2');
    fireEvent.change(screen.getByTestId('guild-log-search'), { target: { value: '' } });
    fireEvent.click(screen.getByTestId('guild-log-pause'));
    rerender(<LogTail text={text + 'line 3\n'} trimmed={false} live={true} />);
    expect(log.textContent).toBe(text);
    fireEvent.click(screen.getByTestId('guild-log-pause'));
    expect(log.textContent).toContain('line 3');
  });
});

describe('RunActions', () => {
  function handlers(log: string[]): IRunActionHandlers {
    const h = (name: string) => async (arg?: unknown) => {
      log.push(arg === undefined ? name : `${name} ${JSON.stringify(arg)}`);
    };
    return {
      stop: h('stop'),
      restart: h('restart'),
      remove: h('remove'),
      restore: h('restore'),
      setLabel: h('label') as (l: string) => Promise<void>,
      setTags: h('tags') as (t: string[]) => Promise<void>,
      rerun: h('rerun') as (f: Record<string, FlagValue>) => Promise<void>
    };
  }

  it('offers stop for a live run, delete/rerun for a finished one, restore for a deleted one', () => {
    const log: string[] = [];
    const { rerender } = render(<RunActions run={record('x', 1, { status: 'running' })} handlers={handlers(log)} />);
    expect(screen.queryByTestId('guild-action-delete')).toBeNull();
    fireEvent.click(screen.getByTestId('guild-action-stop'));
    rerender(<RunActions run={record('x', 1)} handlers={handlers(log)} />);
    expect(screen.queryByTestId('guild-action-stop')).toBeNull();
    fireEvent.click(screen.getByTestId('guild-action-delete'));
    rerender(<RunActions run={record('x', 1, { deleted: true })} handlers={handlers(log)} />);
    fireEvent.click(screen.getByTestId('guild-action-restore'));
    expect(log).toEqual(['stop', 'remove', 'restore']);
  });

  it('sets label and tags, and reruns with typed edited flags', async () => {
    const log: string[] = [];
    const run = record('x', 1, { flags: { lr: 0.1, opt: 'adam', n: 3 } });
    render(<RunActions run={run} handlers={handlers(log)} />);
    fireEvent.change(screen.getByTestId('guild-label-input'), { target: { value: 'best' } });
    fireEvent.click(screen.getByTestId('guild-label-save'));
    fireEvent.change(screen.getByTestId('guild-tags-input'), { target: { value: 'a, b ,' } });
    fireEvent.click(screen.getByTestId('guild-tags-save'));
    fireEvent.click(screen.getByTestId('guild-action-rerun'));
    const form = screen.getByTestId('guild-rerun-form');
    fireEvent.change(form.querySelector('[data-flag="lr"]')!, { target: { value: '0.5' } });
    fireEvent.change(form.querySelector('[data-flag="opt"]')!, { target: { value: '12' } });
    await act(async () => {
      fireEvent.click(screen.getByTestId('guild-rerun-submit'));
    });
    expect(log).toEqual(['label "best"', 'tags ["a","b"]', 'rerun {"lr":0.5,"opt":"12","n":3}']);
  });
});
