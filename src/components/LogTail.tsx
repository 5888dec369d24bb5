/**
 * A run's output as a live tail: follow (stay at the bottom), pause (freeze the
 * view while output keeps arriving) and search (only matching lines). Output is
 * one React text node: never parsed as HTML.
 */
import * as React from 'react';

export interface ILogTailProps {
  text: string;
  trimmed: boolean;
  live: boolean;
}

export function LogTail(props: ILogTailProps): JSX.Element {
  const [follow, setFollow] = React.useState(true);
  const [paused, setPaused] = React.useState<string | null>(null);
  const [query, setQuery] = React.useState('');
  const ref = React.useRef<HTMLPreElement>(null);
  const text = paused ?? props.text;
  const shown = React.useMemo(() => {
    if (!query) {
      return text;
    }
    const q = query.toLowerCase();
    return text
      .split('\n')
      .filter(line => line.toLowerCase().includes(q))
      .join('\n');
  }, [text, query]);
  const matches = query ? (shown ? shown.split('\n').length : 0) : null;

  React.useEffect(() => {
    if (follow && ref.current) {
      ref.current.scrollTop = ref.current.scrollHeight;
    }
  }, [shown, follow]);

  return (
    <div className="jp-guild-LogTail">
      <div className="jp-guild-toolbar">
        <label title="Keep the view at the end of the output">
          <input
            type="checkbox"
            checked={follow}
            data-testid="guild-log-follow"
            onChange={e => setFollow(e.target.checked)}
          />
          follow
        </label>
        <button
          className="jp-mod-styled jp-guild-smallButton"
          data-testid="guild-log-pause"
          aria-pressed={paused !== null}
          onClick={() => setPaused(paused === null ? props.text : null)}
        >
          {paused === null ? 'Pause' : 'Resume'}
        </button>
        <input
          className="jp-guild-input"
          type="search"
          placeholder="Search output"
          aria-label="search the output"
          data-testid="guild-log-search"
          value={query}
          onChange={e => setQuery(e.target.value)}
        />
        {matches !== null && <span className="jp-guild-muted">{matches} lines</span>}
        {props.live && paused === null && <span className="jp-guild-muted">live</span>}
      </div>
      {props.trimmed && <div className="jp-guild-muted">(earlier output not shown)</div>}
      <pre ref={ref} className="jp-guild-LogTail-text" data-testid="guild-log">
        {shown}
      </pre>
    </div>
  );
}
