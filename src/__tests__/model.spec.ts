import { RunsModel } from '../model';
import { FakeApi, record, settle } from './fakeApi';

function setup(n = 3): { api: FakeApi; model: RunsModel } {
  const api = new FakeApi();
  for (let i = 0; i < n; i++) {
    api.add(record(`run${i}`, 1000 + i, { label: `l${i}`, tags: i === 0 ? ['base'] : [] }), { loss: i / 10, acc: 1 });
  }
  return { api, model: new RunsModel(api, { maxRuns: 500, mainScalar: 'loss' }) };
}

describe('RunsModel', () => {
  it('loads the newest runs first, as many as the setting says', async () => {
    const { api, model } = setup();
    await model.start();
    expect(model.rows.map(r => r.id)).toEqual(['run2', 'run1', 'run0']);
    expect(api.listCalls[0]).toMatchObject({ limit: 500, sort: '-created', deleted: 'false' });
    expect(model.connected).toBe(true);
    expect(model.total).toBe(3);
  });

  it('puts a created run at the top without listing again', async () => {
    const { api, model } = setup();
    await model.start();
    api.add(record('new', 2000, { status: 'running', stopped: null }));
    api.emit({ type: 'run-created', seq: 1, run: 'new', op: 'train.py', status: 'running' });
    await settle();
    expect(model.rows[0].id).toBe('new');
    expect(model.rows[0].status).toBe('running');
    expect(model.runningCount).toBe(1);
    expect(api.listCalls).toHaveLength(1);
  });

  it('applies status changes and tells when a live run ends', async () => {
    const { api, model } = setup();
    api.add(record('live', 3000, { status: 'running', stopped: null }));
    await model.start();
    const ended: string[] = [];
    model.runEnded.connect((_, r) => ended.push(`${r.id}:${r.status}`));
    api.runs.set('live', record('live', 3000, { status: 'failed', reason: 'exit code 1' }));
    api.emit({ type: 'status', seq: 2, run: 'live', status: 'failed', attempt: 1, reason: 'exit code 1', exit_code: 1 });
    expect(model.get('live')!.status).toBe('failed');
    expect(ended).toEqual(['live:failed']);
    await settle();
    expect(model.get('live')!.stopped).toBe(3002);
    // a repeated final status does not notify twice
    api.emit({ type: 'status', seq: 3, run: 'live', status: 'failed', attempt: 1, reason: null, exit_code: 1 });
    expect(ended).toHaveLength(1);
  });

  it('updates the last scalar values from scalars events', async () => {
    const { api, model } = setup();
    await model.start();
    api.emit({ type: 'scalars', seq: 4, run: 'run1', scalars: { loss: { value: 0.01, step: 9, count: 10 } } });
    expect(model.get('run1')!.scalars).toEqual({ loss: 0.01, acc: 1 });
    expect(model.mainScalarOf(model.get('run1')!)).toEqual(['loss', 0.01]);
  });

  it('removes deleted runs and brings restored ones back', async () => {
    const { api, model } = setup();
    await model.start();
    model.toggleSelected('run1');
    api.runs.set('run1', { ...api.runs.get('run1')!, deleted: true });
    api.emit({ type: 'run-deleted', seq: 5, run: 'run1', restored: false });
    expect(model.get('run1')).toBeUndefined();
    expect(model.selected.has('run1')).toBe(false);
    api.runs.set('run1', { ...api.runs.get('run1')!, deleted: false });
    api.emit({ type: 'run-deleted', seq: 6, run: 'run1', restored: true });
    await settle();
    expect(model.rows.map(r => r.id)).toEqual(['run2', 'run1', 'run0']);
  });

  it('queues events that arrive during the first load', async () => {
    const { api, model } = setup();
    let open: () => void = () => undefined;
    api.listGate = new Promise(resolve => (open = resolve));
    const started = model.start();
    // the row is not known yet: applied once the listing is in
    api.emit({ type: 'scalars', seq: 1, run: 'run0', scalars: { loss: { value: 7, step: 3, count: 4 } } });
    open();
    await started;
    expect(model.get('run0')!.scalars.loss).toBe(7);
    expect(api.listCalls).toHaveLength(1);
  });

  it('reloads after a gap in the event stream', async () => {
    const { api, model } = setup();
    await model.start();
    api.add(record('missed', 5000));
    api.emit({ type: 'gap', seq: null, since: 1, first: 50, message: 'events dropped' });
    await settle();
    expect(api.listCalls).toHaveLength(2);
    expect(model.rows[0].id).toBe('missed');
  });

  it('filters by text, status and expression', async () => {
    const { api, model } = setup();
    api.add(record('f', 4000, { status: 'failed', label: 'bad one', flags: { lr: 0.5 } }), { loss: 9 });
    await model.start();
    model.setFilter({ text: 'base' });
    expect(model.filtered.map(r => r.id)).toEqual(['run0']);
    model.setFilter({ text: '', statuses: ['failed'] });
    expect(model.filtered.map(r => r.id)).toEqual(['f']);
    model.setFilter({ statuses: [], expr: 'loss<0.15 and lr=0.1' });
    expect(model.filtered.map(r => r.id)).toEqual(['run1', 'run0']);
    model.setFilter({ expr: 'loss <' });
    expect(model.filterError).toMatch(/cannot read/);
    expect(model.filtered).toHaveLength(4);
  });

  it('shows the trash when asked', async () => {
    const { api, model } = setup();
    api.add(record('gone', 100, { deleted: true }));
    await model.start();
    await model.setShowDeleted(true);
    expect(model.rows.map(r => r.id)).toEqual(['gone']);
    expect(api.listCalls[1].deleted).toBe('true');
    // a restored run leaves the trash view
    model.applyRecord({ ...api.runs.get('gone')!, deleted: false });
    expect(model.rows).toHaveLength(0);
  });

  it('main scalar falls back to the first non-system scalar', async () => {
    const { model } = setup();
    model.mainScalar = 'auc';
    const r = { ...record('x', 1), scalars: { 'sys/cpu': 3, zeta: 1, beta: 2 } } as any;
    expect(model.mainScalarOf(r)).toEqual(['beta', 2]);
  });
});
