/**
 * The files a run wrote: a list, a preview (text as text, images as images),
 * and download. Files are fetched through the authenticated API as blobs.
 */
import * as React from 'react';
import { IGuildApi } from '../api';
import { formatBytes } from '../format';
import { IRunFile } from '../types';

const TEXT_PREVIEW = 256 * 1024;
const IMAGE = /\.(png|jpe?g|gif|webp)$/i;

type Preview = { path: string; kind: 'text'; text: string; cut: boolean } | { path: string; kind: 'image'; url: string } | { path: string; kind: 'none'; message: string };

export function FilesPanel(props: { api: IGuildApi; runId: string; files: IRunFile[] }): JSX.Element {
  const [preview, setPreview] = React.useState<Preview | null>(null);
  React.useEffect(
    () => () => {
      if (preview?.kind === 'image') {
        URL.revokeObjectURL(preview.url);
      }
    },
    [preview]
  );

  const show = async (f: IRunFile) => {
    try {
      const blob = await props.api.fileBlob(props.runId, f.path);
      if (IMAGE.test(f.path)) {
        setPreview({ path: f.path, kind: 'image', url: URL.createObjectURL(blob) });
        return;
      }
      const head = await blob.slice(0, TEXT_PREVIEW).text();
      if (head.includes('\u0000')) {
        setPreview({ path: f.path, kind: 'none', message: 'binary file: download it to look inside' });
        return;
      }
      setPreview({ path: f.path, kind: 'text', text: head, cut: blob.size > TEXT_PREVIEW });
    } catch (e) {
      setPreview({ path: f.path, kind: 'none', message: (e as Error).message });
    }
  };

  const download = async (f: IRunFile) => {
    const blob = await props.api.fileBlob(props.runId, f.path);
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = f.path.split('/').pop() || 'file';
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  };

  if (!props.files.length) {
    return <div className="jp-guild-empty">No files.</div>;
  }
  return (
    <div className="jp-guild-Files">
      <table className="jp-guild-table">
        <tbody>
          {props.files.map(f => (
            <tr key={f.path} data-testid="guild-file" className={preview?.path === f.path ? 'jp-guild-mod-active' : ''}>
              <td>
                <button className="jp-guild-linkButton" onClick={() => void show(f)}>
                  {f.path}
                </button>
              </td>
              <td className="jp-guild-num">{formatBytes(f.size)}</td>
              <td>
                <button className="jp-mod-styled jp-guild-smallButton" title={`Download ${f.path}`} onClick={() => void download(f)}>
                  Download
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {preview && (
        <div className="jp-guild-preview" data-testid="guild-file-preview">
          <div className="jp-guild-muted">{preview.path}</div>
          {preview.kind === 'text' && (
            <pre className="jp-guild-LogTail-text">
              {preview.text}
              {preview.cut ? '\n…' : ''}
            </pre>
          )}
          {preview.kind === 'image' && <img src={preview.url} alt={preview.path} />}
          {preview.kind === 'none' && <div className="jp-guild-muted">{preview.message}</div>}
        </div>
      )}
    </div>
  );
}
