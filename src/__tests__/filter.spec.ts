import { compileFilter, parseExpression } from '../filter';
import { parseFlagInput, formatDuration, formatValue } from '../format';
import { record, row } from './fakeApi';

describe('filter expressions', () => {
  it('parses clauses joined by and, && and commas', () => {
    expect(parseExpression('lr<0.1 and opt=adam, epochs >= 3 && name~"x y"')).toEqual([
      { name: 'lr', op: '<', value: 0.1 },
      { name: 'opt', op: '=', value: 'adam' },
      { name: 'epochs', op: '>=', value: 3 },
      { name: 'name', op: '~', value: 'x y' }
    ]);
  });

  it('names the clause it cannot read', () => {
    expect(() => parseExpression('lr<0.1 and what')).toThrow(/cannot read "what"/);
  });

  it('matches flags and scalars, typed', () => {
    const r = row(record('a', 1, { flags: { lr: 0.1, opt: 'adam', deep: true } }), { loss: 0.5 });
    const m = (expr: string) => compileFilter({ text: '', statuses: [], expr }).match(r);
    expect(m('lr=0.1')).toBe(true);
    expect(m('flags.lr<0.05')).toBe(false);
    expect(m('scalars.loss<=0.5')).toBe(true);
    expect(m('deep=true')).toBe(true);
    expect(m('opt!=adam')).toBe(false);
    expect(m('opt~AD')).toBe(true);
    expect(m('missing>1')).toBe(false);
    expect(m('opt>1')).toBe(false);
  });
});

describe('formatting', () => {
  it('formats values and durations', () => {
    expect(formatValue(0.123456789)).toBe('0.12346');
    expect(formatValue(1e-7)).toBe('1.000e-7');
    expect(formatValue(null)).toBe('');
    expect(formatValue(true)).toBe('true');
    expect(formatDuration(100, 103.25)).toBe('3.3s');
    expect(formatDuration(0, 10)).toBe('');
    expect(formatDuration(100, 100 + 3725)).toBe('1h02m');
    expect(formatDuration(100, 100 + 75)).toBe('1m15s');
  });

  it('reads typed flag input', () => {
    expect(parseFlagInput('0.5')).toBe(0.5);
    expect(parseFlagInput('true')).toBe(true);
    expect(parseFlagInput('True')).toBe(true);
    expect(parseFlagInput('"3"')).toBe('3');
    expect(parseFlagInput('adam')).toBe('adam');
    expect(parseFlagInput('[1]')).toBe('[1]');
  });
});
