import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, IPaletteItem } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';

import plugin, { ACTIVATED_MESSAGE, CommandIDs } from '../index';

/**
 * The part of JupyterFrontEnd the plugin uses, backed by a real registry.
 */
function makeApp(commands: CommandRegistry): JupyterFrontEnd {
  return { commands } as unknown as JupyterFrontEnd;
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

    expect(items).toEqual([{ command: CommandIDs.about, category: 'Guild' }]);
  });
});
