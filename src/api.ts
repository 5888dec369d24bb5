/**
 * The one client of guild-jupyter's server API: REST over
 * `ServerConnection.makeRequest` (Jupyter's auth and XSRF handling) and the
 * `events` WebSocket with resume offsets. Everything else talks to the server
 * through an `IGuildApi`, so tests substitute a fake.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import {
  FlagValue,
  GuildEvent,
  ICompare,
  IListing,
  IOutputChunk,
  IProvenance,
  IRunFile,
  IRunRecord,
  IScalars
} from './types';

export interface IListQuery {
  limit?: number;
  offset?: number;
  sort?: string;
  deleted?: 'true' | 'false' | 'any';
  columns?: string;
}

export interface IEventConnection {
  dispose(): void;
}

export interface IGuildApi {
  listRuns(q?: IListQuery): Promise<IListing>;
  getRun(id: string): Promise<IRunRecord>;
  patchRun(
    id: string,
    body: { label?: string; tags?: string[]; add_tags?: string[]; remove_tags?: string[] }
  ): Promise<IRunRecord>;
  deleteRun(id: string): Promise<IRunRecord>;
  restoreRun(id: string): Promise<IRunRecord>;
  stopRun(id: string): Promise<IRunRecord>;
  restartRun(id: string): Promise<IRunRecord>;
  rerunRun(id: string, flags: Record<string, FlagValue>, label?: string): Promise<IRunRecord>;
  output(id: string, offset: number): Promise<IOutputChunk>;
  scalars(id: string, keys?: string[]): Promise<IScalars>;
  files(id: string): Promise<{ run: string; files: IRunFile[] }>;
  fileBlob(id: string, path: string): Promise<Blob>;
  provenance(id: string): Promise<IProvenance>;
  compare(ids: string[]): Promise<ICompare>;
  /** Subscribe to the event stream; reconnects with `?since=` after a drop. */
  connectEvents(onEvent: (e: GuildEvent) => void, onState?: (connected: boolean) => void): IEventConnection;
}

/** An API error carrying the server's one-line message. */
export class GuildApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

const API = 'guild/api';

export class GuildApi implements IGuildApi {
  constructor(readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    const url = URLExt.join(this.settings.baseUrl, API, path);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (e) {
      throw new GuildApiError(`guild-jupyter server is not reachable: ${e}`, 0);
    }
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const body = await response.json();
        if (body && typeof body.message === 'string') {
          message = body.message;
        }
      } catch {
        // not JSON: keep the status line
      }
      throw new GuildApiError(message, response.status);
    }
    return response;
  }

  private async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    const r = await this.request(path, init);
    return (await r.json()) as T;
  }

  private send<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.json<T>(path, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? undefined : { 'Content-Type': 'application/json' }
    });
  }

  listRuns(q: IListQuery = {}): Promise<IListing> {
    const params = Object.entries(q)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join('&');
    return this.json<IListing>(params ? `runs?${params}` : 'runs');
  }

  getRun(id: string): Promise<IRunRecord> {
    return this.json(`runs/${encodeURIComponent(id)}`);
  }

  patchRun(id: string, body: Record<string, unknown>): Promise<IRunRecord> {
    return this.send('PATCH', `runs/${encodeURIComponent(id)}`, body);
  }

  deleteRun(id: string): Promise<IRunRecord> {
    return this.send('DELETE', `runs/${encodeURIComponent(id)}`);
  }

  restoreRun(id: string): Promise<IRunRecord> {
    return this.send('POST', `runs/${encodeURIComponent(id)}/restore`, {});
  }

  stopRun(id: string): Promise<IRunRecord> {
    return this.send('POST', `runs/${encodeURIComponent(id)}/stop`, {});
  }

  restartRun(id: string): Promise<IRunRecord> {
    return this.send('POST', `runs/${encodeURIComponent(id)}/restart`, {});
  }

  rerunRun(id: string, flags: Record<string, FlagValue>, label?: string): Promise<IRunRecord> {
    const body: Record<string, unknown> = { flags };
    if (label !== undefined) {
      body.label = label;
    }
    return this.send('POST', `runs/${encodeURIComponent(id)}/rerun`, body);
  }

  output(id: string, offset: number): Promise<IOutputChunk> {
    return this.json(`runs/${encodeURIComponent(id)}/output?offset=${offset}`);
  }

  scalars(id: string, keys?: string[]): Promise<IScalars> {
    const q = keys && keys.length ? `?keys=${encodeURIComponent(keys.join(','))}` : '';
    return this.json(`runs/${encodeURIComponent(id)}/scalars${q}`);
  }

  files(id: string): Promise<{ run: string; files: IRunFile[] }> {
    return this.json(`runs/${encodeURIComponent(id)}/files`);
  }

  async fileBlob(id: string, path: string): Promise<Blob> {
    const rel = path.split('/').map(encodeURIComponent).join('/');
    const r = await this.request(`runs/${encodeURIComponent(id)}/files/${rel}`);
    return r.blob();
  }

  provenance(id: string): Promise<IProvenance> {
    return this.json(`runs/${encodeURIComponent(id)}/provenance`);
  }

  compare(ids: string[]): Promise<ICompare> {
    return this.json(`compare?runs=${encodeURIComponent(ids.join(','))}`);
  }

  connectEvents(onEvent: (e: GuildEvent) => void, onState?: (connected: boolean) => void): IEventConnection {
    let socket: WebSocket | null = null;
    let lastSeq: number | null = null;
    let disposed = false;
    let retry = 500;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const open = () => {
      let url = URLExt.join(this.settings.wsUrl, API, 'events');
      const query: string[] = [];
      if (lastSeq !== null) {
        query.push(`since=${lastSeq}`);
      }
      if (this.settings.token) {
        query.push(`token=${encodeURIComponent(this.settings.token)}`);
      }
      if (query.length) {
        url += `?${query.join('&')}`;
      }
      socket = new this.settings.WebSocket(url);
      socket.onopen = () => {
        retry = 500;
        onState?.(true);
      };
      socket.onmessage = msg => {
        let event: GuildEvent;
        try {
          event = JSON.parse(String(msg.data));
        } catch {
          return;
        }
        if (event.type === 'hello') {
          // a restarted server numbers from 1 again: our offset means nothing to it
          if (lastSeq !== null && event.seq < lastSeq) {
            onEvent({ type: 'gap', seq: null, since: lastSeq, first: 1, message: 'server restarted' });
          }
        }
        if (typeof event.seq === 'number' && (lastSeq === null || event.seq > lastSeq)) {
          lastSeq = event.seq;
        }
        onEvent(event);
      };
      socket.onclose = () => {
        onState?.(false);
        if (!disposed) {
          timer = setTimeout(open, retry);
          retry = Math.min(retry * 2, 10000);
        }
      };
    };
    open();
    return {
      dispose: () => {
        disposed = true;
        if (timer !== null) {
          clearTimeout(timer);
        }
        socket?.close();
      }
    };
  }
}
