import { LabIcon } from '@jupyterlab/ui-components';

/** The sidebar icon: a flask, coloured by the theme. */
export const guildIcon = new LabIcon({
  name: 'guild-jupyter:runs',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">' +
    '<path class="jp-icon3" fill="#616161" d="M9 2v2h1v5.2L4.4 18.6A2.3 2.3 0 0 0 6.4 22h11.2a2.3 2.3 0 0 0 2-3.4L14 9.2V4h1V2H9zm3 2h0v5.7l2.3 3.8H9.7L12 9.7V4z"/>' +
    '</svg>'
});
