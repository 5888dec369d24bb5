// Jest setup shared with JupyterLab's own packages (ts-jest + jsdom).
const jestJupyterLab = require('@jupyterlab/testutils/lib/jest-config');

// Packages shipped as ES modules that Jest must transform.
const esModules = [
  '@codemirror',
  '@jupyter/ydoc',
  '@jupyter/react-components',
  '@jupyter/web-components',
  '@microsoft/fast',
  '@jupyterlab/',
  'exenv-es6',
  'lib0',
  'nanoid',
  'vscode-ws-jsonrpc',
  'y-protocols',
  'y-websocket',
  'yjs'
].join('|');

const baseConfig = jestJupyterLab(__dirname);

module.exports = {
  ...baseConfig,
  automock: false,
  roots: ['<rootDir>/src'],
  // Built copies of package.json files that would collide in jest's module map.
  modulePathIgnorePatterns: [
    '<rootDir>/.venv/',
    '<rootDir>/guild_jupyter/labextension/',
    '<rootDir>/lib/',
    '<rootDir>/ui-tests/'
  ],
  testRegex: 'src/.*/.*\\.spec\\.tsx?$',
  transformIgnorePatterns: [`/node_modules/(?!${esModules}).+`]
};
