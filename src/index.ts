import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, showDialog, Dialog, Notification } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Widget } from '@lumino/widgets';
import { GuildApi } from './api';
import { CompareWidget } from './compare';
import { RunDetailWidget } from './detail';
import { guildIcon } from './icon';
import { RunsModel } from './model';
import { RunsPanel } from './sidebar';
import { notifyEnded, RunningStatus } from './status';

/**
 * Command ids contributed by guild-jupyter.
 */
export namespace CommandIDs {
  export const about = 'guild-jupyter:about';
  export const openSidebar = 'guild-jupyter:open-sidebar';
  export const openRun = 'guild-jupyter:open-run';
  export const compare = 'guild-jupyter:compare';
  export const stopRun = 'guild-jupyter:stop-run';
}

/**
 * The message logged when the plugin activates (UI tests look for it).
 */
export const ACTIVATED_MESSAGE = 'guild-jupyter is activated';

const PLUGIN_ID = 'guild-jupyter:plugin';

/**
 * The guild-jupyter front end: the "Guild runs" sidebar, run detail and
 * compare tabs, notifications and a status-bar item.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Experiment tracking in the spirit of Guild AI, native to JupyterLab.',
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer, IStatusBar, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    statusBar: IStatusBar | null,
    settingRegistry: ISettingRegistry | null
  ): void => {
    const model = new RunsModel(new GuildApi(app.serviceManager.serverSettings));
    let notify = true;
    const tabs = new Map<string, Widget>();

    const showTab = (widget: Widget) => {
      tabs.set(widget.id, widget);
      widget.disposed.connect(() => tabs.delete(widget.id));
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
    };
    const openRun = (id: string) => {
      const existing = tabs.get(`guild-run-${id}`);
      if (existing) {
        app.shell.activateById(existing.id);
        return;
      }
      showTab(
        new RunDetailWidget(model, id, {
          openRun,
          notifyError: message => Notification.error(message, { autoClose: 8000 })
        })
      );
    };
    const compare = (ids: string[]) => {
      const widget = new CompareWidget(model, ids, openRun);
      const existing = tabs.get(widget.id);
      if (existing) {
        widget.dispose();
        (existing as CompareWidget).load();
        app.shell.activateById(existing.id);
        return;
      }
      showTab(widget);
    };
    const stop = (id: string) => {
      model.api.stopRun(id).then(
        record => model.applyRecord(record),
        e => Notification.error((e as Error).message, { autoClose: 8000 })
      );
    };

    const panel = new RunsPanel(model, { open: openRun, compare, stop });
    panel.id = 'guild-jupyter-runs';
    panel.title.icon = guildIcon;
    panel.title.caption = 'Guild runs';
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, 'guild-jupyter-runs');

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
    app.commands.addCommand(CommandIDs.openSidebar, {
      label: 'Show Guild Runs',
      caption: 'Open the Guild runs sidebar',
      execute: () => app.shell.activateById(panel.id)
    });
    app.commands.addCommand(CommandIDs.openRun, {
      label: args => (args.id ? `Open Guild Run ${String(args.id).slice(0, 8)}` : 'Open Guild Run'),
      execute: args => openRun(String(args.id))
    });
    app.commands.addCommand(CommandIDs.compare, {
      label: 'Compare Selected Guild Runs',
      isEnabled: args => (Array.isArray(args.ids) ? args.ids.length : model.selected.size) >= 2,
      execute: args => compare(Array.isArray(args.ids) ? (args.ids as string[]) : Array.from(model.selected))
    });
    app.commands.addCommand(CommandIDs.stopRun, {
      label: 'Stop Guild Run',
      execute: args => stop(String(args.id))
    });
    if (palette) {
      for (const command of [CommandIDs.about, CommandIDs.openSidebar, CommandIDs.compare]) {
        palette.addItem({ command, category: 'Guild' });
      }
    }

    model.runEnded.connect((_, row) => {
      if (notify) {
        notifyEnded(row, openRun);
      }
    });

    if (statusBar) {
      statusBar.registerStatusItem('guild-jupyter:running', {
        item: new RunningStatus(model, () => app.shell.activateById(panel.id)),
        align: 'left',
        rank: 50
      });
    }

    const start = () => void app.restored.then(() => model.start());
    if (settingRegistry) {
      settingRegistry.load(PLUGIN_ID).then(
        settings => {
          const apply = () => {
            const maxRuns = settings.get('maxRuns').composite as number;
            model.mainScalar = settings.get('mainScalar').composite as string;
            notify = settings.get('notifyOnEnd').composite as boolean;
            if (model.loaded && maxRuns !== model.maxRuns) {
              model.maxRuns = maxRuns;
              void model.reload();
            } else {
              model.maxRuns = maxRuns;
              panel.update();
            }
          };
          apply();
          settings.changed.connect(apply);
          start();
        },
        reason => {
          console.warn('guild-jupyter: settings not loaded', reason);
          start();
        }
      );
    } else {
      start();
    }
    console.log(ACTIVATED_MESSAGE);
  }
};

export default plugin;
