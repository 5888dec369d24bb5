import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, IPaletteItem } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import plugin, { ACTIVATED_MESSAGE, CommandIDs } from '../index';

/**
 * The part of JupyterFrontEnd the plugin uses, backed by a real registry.
 */
function makeApp(commands: CommandRegistry): JupyterFrontEnd & { added: Widget[] } {
  const added: Widget[] = [];
  return {
    commands,
    added,
    shell: { add: (w: Widget) => added.push(w), activateById: () => undefined },
    serviceManager: { serverSettings: ServerConnection.makeSettings() },
    // never restored: the model does not connect to a server in these tests
    restored: new Promise(() => undefined)
  } as unknown as JupyterFrontEnd & { added: Widget[] };
}

describe('guild-jupyter:plugin', () => {
  let log: jest.SpyInstance;

  beforeEach(() => {
    log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  });

  afterEach(() => {
    log.mockRestore();
  });

  it('has the documented id and starts automatically', () => {
    expect(plugin.id).toBe('guild-jupyter:plugin');
    expect(plugin.autoStart).toBe(true);
    expect(plugin.requires ?? []).toHaveLength(0);
    expect(plugin.optional).toContain(ICommandPalette);
  });

  it('registers the about command and logs its activation', () => {
    const commands = new CommandRegistry();
    expect(commands.hasCommand(CommandIDs.about)).toBe(false);

    plugin.activate(makeApp(commands), null);

    expect(commands.hasCommand(CommandIDs.about)).toBe(true);
    expect(commands.label(CommandIDs.about)).toBe('About guild-jupyter');
    expect(log).toHaveBeenCalledWith(ACTIVATED_MESSAGE);
  });

  it('adds the runs sidebar and its commands', () => {
    const commands = new CommandRegistry();
    const app = makeApp(commands);
    plugin.activate(app, null);
    expect(app.added.map(w => w.id)).toEqual(['guild-jupyter-runs']);
    for (const id of [CommandIDs.openSidebar, CommandIDs.openRun, CommandIDs.compare, CommandIDs.stopRun]) {
      expect(commands.hasCommand(id)).toBe(true);
    }
    // comparing needs two runs
    expect(commands.isEnabled(CommandIDs.compare, { ids: ['a'] })).toBe(false);
    expect(commands.isEnabled(CommandIDs.compare, { ids: ['a', 'b'] })).toBe(true);
  });

  it('adds the command to the palette when there is one', () => {
    const commands = new CommandRegistry();
    const items: IPaletteItem[] = [];
    const palette = {
      addItem: (options: IPaletteItem) => {
        items.push(options);
        return { dispose: () => undefined };
      }
    } as unknown as ICommandPalette;

    plugin.activate(makeApp(commands), palette);

    expect(items.map(i => i.command)).toEqual([CommandIDs.about, CommandIDs.openSidebar, CommandIDs.compare]);
  });
});
