/**
 * Playwright configuration: Galata's defaults, with the system Chromium
 * (Playwright cannot download its own browser or ffmpeg on our machines).
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// Must match jupyter_server_test_config.py (same variable, same default).
const port = process.env.UI_TEST_PORT || '8988';
const baseURL = `http://localhost:${port}`;

module.exports = {
  ...baseConfig,
  retries: 0,
  workers: 1,
  reporter: [['list'], ['html', { open: 'never' }]],
  use: {
    ...baseConfig.use,
    baseURL,
    video: 'off',
    trace: 'off',
    launchOptions: {
      executablePath,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run'
      ]
    }
  },
  webServer: {
    command: 'jlpm start',
    url: `${baseURL}/lab`,
    timeout: 120 * 1000,
    reuseExistingServer: !process.env.CI
  }
};
