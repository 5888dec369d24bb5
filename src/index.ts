import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, showDialog, Dialog } from '@jupyterlab/apputils';

/**
 * Command ids contributed by guild-jupyter.
 */
export namespace CommandIDs {
  export const about = 'guild-jupyter:about';
}

/**
 * The message logged when the plugin activates (UI tests look for it).
 */
export const ACTIVATED_MESSAGE = 'guild-jupyter is activated';

/**
 * The guild-jupyter front-end plugin: registers its commands.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'guild-jupyter:plugin',
  description: 'Experiment tracking in the spirit of Guild AI, native to JupyterLab.',
  autoStart: true,
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, palette: ICommandPalette | null): void => {
    app.commands.addCommand(CommandIDs.about, {
      label: 'About guild-jupyter',
      caption: 'Experiment tracking for notebooks, scripts and sweeps',
      execute: () =>
        showDialog({
          title: 'guild-jupyter',
          body:
            'Experiment tracking in the spirit of Guild AI: ' +
            'runs, flags, scalars and sweeps, native to JupyterLab.',
          buttons: [Dialog.okButton()]
        })
    });
    if (palette) {
      palette.addItem({ command: CommandIDs.about, category: 'Guild' });
    }
    console.log(ACTIVATED_MESSAGE);
  }
};

export default plugin;
