import { RunDetailWidget } from '../detail';
import { RunsModel } from '../model';
import { IOutputChunk } from '../types';
import { FakeApi, record, settle } from './fakeApi';

/** A fake whose output file grows as the test says. */
class OutputApi extends FakeApi {
  text = '';
  outputCalls: number[] = [];
  async output(id: string, offset: number): Promise<IOutputChunk> {
    this.outputCalls.push(offset);
    const bytes = this.text.slice(offset);
    return { run: id, offset, next: offset + bytes.length, size: this.text.length, text: bytes };
  }
}

async function open(): Promise<{ api: OutputApi; detail: RunDetailWidget; errors: string[] }> {
  const api = new OutputApi();
  api.add(record('run1', 1, { status: 'running', stopped: null, label: 'L' }));
  api.text = 'a\nb\n';
  const model = new RunsModel(api);
  await model.start();
  const errors: string[] = [];
  const opened: string[] = [];
  const detail = new RunDetailWidget(model, 'run1', { openRun: id => opened.push(id), notifyError: m => errors.push(m) });
  await settle();
  return { api, detail, errors };
}

describe('RunDetailWidget', () => {
  it('appends streamed output by offset and fetches what it missed', async () => {
    const { api, detail } = await open();
    expect(detail.output).toBe('a\nb\n');
    expect(detail.title.label).toBe('train.py run1');
    api.text += 'c\n';
    api.emit({ type: 'output', seq: 1, run: 'run1', offset: 4, next: 6, text: 'c\n' });
    expect(detail.output).toBe('a\nb\nc\n');
    // an event for another run changes nothing
    api.emit({ type: 'output', seq: 2, run: 'other', offset: 6, next: 8, text: 'x\n' });
    // a repeated event is ignored
    api.emit({ type: 'output', seq: 3, run: 'run1', offset: 4, next: 6, text: 'c\n' });
    expect(detail.output).toBe('a\nb\nc\n');
    // a missed range (event at 8, we are at 6) is read from the server
    api.text += 'd\ne\n';
    const before = api.outputCalls.length;
    api.emit({ type: 'output', seq: 5, run: 'run1', offset: 8, next: 10, text: 'e\n' });
    await settle();
    expect(api.outputCalls.slice(before)).toEqual([6]);
    expect(detail.output).toBe('a\nb\nc\nd\ne\n');
    detail.dispose();
  });

  it('reads the record again when the run ends, and runs actions through the API', async () => {
    const { api, detail, errors } = await open();
    api.runs.set('run1', record('run1', 1, { status: 'completed' }));
    api.emit({ type: 'status', seq: 1, run: 'run1', status: 'completed', attempt: 1, reason: null, exit_code: 0 });
    await settle();
    expect(detail.record!.status).toBe('completed');
    await detail.handlers.setLabel('new label');
    expect(detail.record!.label).toBe('new label');
    expect(detail.model.get('run1')!.label).toBe('new label');
    await detail.handlers.remove();
    expect(detail.record!.deleted).toBe(true);
    expect(detail.model.get('run1')).toBeUndefined();
    await detail.handlers.rerun({ lr: 0.5 });
    expect(api.calls).toEqual(['patch run1', 'delete run1', 'rerun run1 {"lr":0.5}']);
    expect(errors).toEqual([]);
    detail.dispose();
  });

  it('reports a failed action as one message', async () => {
    const { api, detail, errors } = await open();
    api.stopRun = () => Promise.reject(new Error('run run1 is completed; nothing to stop'));
    await detail.handlers.stop();
    expect(errors).toEqual(['run run1 is completed; nothing to stop']);
    detail.dispose();
  });
});
