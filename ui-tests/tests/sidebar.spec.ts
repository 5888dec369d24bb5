import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';

/**
 * The "Guild runs" sidebar against a real server, kernel and runs (the test
 * server's store is a temp dir, see jupyter_server_test_config.py).
 */

const SCRIPT = `import time
lr = 0.1
epochs = 3
sleep = 0.0
print("<b>bold</b> <img src=x onerror=alert(2)> stays text", flush=True)
for i in range(epochs):
    print(f"step {i}", flush=True)
    print(f"loss: {lr / (i + 1)}", flush=True)
    time.sleep(sleep)
`;

const XSS = '<img src=x onerror=alert(1)>';

async function openSidebar(page: IJupyterLabPageFixture): Promise<Locator> {
  await page.evaluate(() => window.jupyterapp.commands.execute('guild-jupyter:open-sidebar'));
  const list = page.getByTestId('guild-run-list');
  await expect(list).toBeVisible();
  return list;
}

function rowByLabel(page: IJupyterLabPageFixture, label: string): Locator {
  return page
    .getByTestId('guild-run-row')
    .filter({ has: page.getByTestId('guild-run-label').getByText(label, { exact: true }) });
}

/** Start a script run through the REST API (as another client would). */
async function startScript(
  page: IJupyterLabPageFixture,
  tmpPath: string,
  label: string,
  flags: Record<string, unknown> = {}
): Promise<string> {
  await page.contents.uploadContent(SCRIPT, 'text', `${tmpPath}/train.py`);
  const r = await page.request.post('guild/api/runs', {
    data: { op: `${tmpPath}/train.py`, flags, label }
  });
  expect(r.status()).toBe(201);
  return (await r.json()).id;
}

test.describe('Guild runs sidebar', () => {
  test('a %%guild_run cell shows up running, streams output and scalars, then completes', async ({ page }) => {
    const name = 'guild-cell.ipynb';
    await page.notebook.createNew(name);
    await page.notebook.setCell(0, 'code', '%load_ext guild_jupyter');
    await page.notebook.addCell(
      'code',
      [
        '%%guild_run --label cell-run',
        'import time',
        'steps = 8',
        'for i in range(steps):',
        '    print(f"line {i}", flush=True)',
        '    print(f"loss: {1 / (i + 1)}", flush=True)',
        '    time.sleep(0.6)'
      ].join('\n')
    );
    await page.notebook.runCell(0, true);
    expect(await page.notebook.getCellTextOutput(0)).toBeNull();
    const list = await openSidebar(page);
    // run the cell without waiting for it to finish
    await page.notebook.runCell(1, { inplace: true, wait: false });

    const row = rowByLabel(page, 'cell-run');
    await expect(row).toHaveAttribute('data-status', 'running', { timeout: 30000 });
    await expect(page.getByTestId('guild-status-item')).toHaveText(/Guild: [1-9] running/);

    await row.locator('.jp-guild-RunRow-op').click();
    const detail = page.locator('[data-testid="guild-run-detail"]:visible');
    await expect(detail).toBeVisible();
    const log = detail.getByTestId('guild-log');
    await expect(log).toContainText('line 1', { timeout: 15000 });
    // lines arrive while the run goes
    await expect(detail).toHaveAttribute('data-status', 'running');
    await expect(log).toContainText('line 3', { timeout: 15000 });
    await expect(detail.locator('[data-testid="guild-scalar-chart"] .main-svg').first()).toBeVisible({
      timeout: 15000
    });

    await expect(row).toHaveAttribute('data-status', 'completed', { timeout: 30000 });
    await expect(detail).toHaveAttribute('data-status', 'completed', { timeout: 15000 });
    await expect(log).toContainText('line 7');
    await expect(row.getByTestId('guild-run-scalar')).toHaveText('0.125');
    await expect(list).toBeVisible();
    // a notification with a button to open the run
    const toast = page.getByRole('alert').filter({ hasText: '"cell-run"' });
    await expect(toast).toContainText('completed');
    await expect(page.getByRole('button', { name: 'Open run' }).first()).toBeVisible();
  });

  test('stops a long run from the sidebar', async ({ page, tmpPath }) => {
    await openSidebar(page);
    await startScript(page, tmpPath, 'long-run', { epochs: 2000, sleep: 0.05 });
    const row = rowByLabel(page, 'long-run');
    await expect(row).toHaveAttribute('data-status', 'running', { timeout: 30000 });
    await row.getByTestId('guild-run-stop').click();
    await expect(row).toHaveAttribute('data-status', 'cancelled', { timeout: 30000 });
    await expect(row.getByTestId('guild-run-stop')).toHaveCount(0);
  });

  test('compares two runs, with the list driven from the keyboard', async ({ page, tmpPath }) => {
    await openSidebar(page);
    await startScript(page, tmpPath, 'cmp-a', { lr: 0.1 });
    await startScript(page, tmpPath, 'cmp-b', { lr: 0.5 });
    const a = rowByLabel(page, 'cmp-a');
    const b = rowByLabel(page, 'cmp-b');
    await expect(a).toHaveAttribute('data-status', 'completed', { timeout: 30000 });
    await expect(b).toHaveAttribute('data-status', 'completed', { timeout: 30000 });

    // filter to the two runs, then select them with the keyboard (Space) and compare
    await page.getByTestId('guild-filter-text').fill('cmp-');
    await expect(page.getByTestId('guild-run-row')).toHaveCount(2);
    await page.getByTestId('guild-filter-expr').fill('lr>0.2');
    await expect(page.getByTestId('guild-run-row')).toHaveCount(1);
    await page.getByTestId('guild-filter-expr').fill('');
    const list = page.getByTestId('guild-run-list');
    await list.focus();
    await page.keyboard.press('Home');
    await page.keyboard.press(' ');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press(' ');
    await expect(page.getByTestId('guild-compare-button')).toHaveText('Compare (2)');
    await page.getByTestId('guild-compare-button').click();

    const cmp = page.locator('[data-testid="guild-compare"]:visible');
    await expect(cmp).toBeVisible();
    const table = cmp.getByTestId('guild-compare-table');
    await expect(table.locator('tbody tr')).toHaveCount(2);
    await expect(table.locator('th[data-column="flags.lr"]')).toHaveAttribute('data-differs', 'true');
    await expect(table.locator('th[data-column="flags.epochs"]')).toHaveAttribute('data-differs', 'false');
    // sortable: descending lr puts cmp-b first
    await table.locator('th[data-column="flags.lr"]').click();
    await table.locator('th[data-column="flags.lr"]').click();
    await expect(table.locator('tbody tr').first()).toContainText('cmp-b');
    await expect(cmp.getByTestId('guild-parcoords').locator('polyline')).toHaveCount(2);
    await expect(cmp.locator('[data-testid="guild-compare-chart"] .main-svg').first()).toBeVisible();

    // Enter on the active row opens its detail
    await list.focus();
    await page.keyboard.press('Enter');
    await expect(page.locator('[data-testid="guild-run-detail"]:visible')).toBeVisible();
  });

  test('labels, tags and output are rendered as text, never as HTML', async ({ page, tmpPath }) => {
    const dialogs: string[] = [];
    page.on('dialog', d => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await openSidebar(page);
    const id = await startScript(page, tmpPath, XSS);
    const row = rowByLabel(page, XSS);
    await expect(row).toHaveAttribute('data-status', 'completed', { timeout: 30000 });
    await expect(row.getByTestId('guild-run-label')).toHaveText(XSS);
    await expect(page.locator('.jp-guild-RunList img')).toHaveCount(0);

    await page.evaluate(runId => window.jupyterapp.commands.execute('guild-jupyter:open-run', { id: runId }), id);
    const detail = page.locator('[data-testid="guild-run-detail"]:visible');
    await expect(detail.getByTestId('guild-detail-label')).toHaveText(XSS);
    await expect(detail.getByTestId('guild-log')).toContainText('<b>bold</b> <img src=x onerror=alert(2)> stays text');
    // a tag set from the detail view is text too
    await detail.getByTestId('guild-tags-input').fill('<b>t</b>');
    await detail.getByTestId('guild-tags-save').click();
    await expect(row.locator('.jp-guild-RunRow-tags')).toHaveText('<b>t</b>');
    await expect(detail.locator('img, b')).toHaveCount(0);
    await expect(page.locator('.jp-guild-RunList b')).toHaveCount(0);
    await page.waitForTimeout(300);
    expect(dialogs).toEqual([]);
  });
});

test('the sidebar follows the light and dark themes', async ({ page }) => {
  await openSidebar(page);
  const panel = page.locator('.jp-guild-RunsPanelWidget');
  const colours = () =>
    panel.evaluate(el => {
      const body = getComputedStyle(document.body);
      return {
        background: getComputedStyle(el).backgroundColor,
        text: getComputedStyle(el).color,
        themeText: body.getPropertyValue('--jp-ui-font-color1').trim()
      };
    });
  const light = await colours();
  await page.theme.setDarkTheme();
  await expect.poll(async () => (await colours()).background).not.toBe(light.background);
  const dark = await colours();
  expect(dark.text).not.toBe(light.text);
  expect(dark.themeText).not.toBe(light.themeText);
  await page.theme.setLightTheme();
  await expect.poll(async () => (await colours()).background).toBe(light.background);
});

test('its settings are in the settings editor', async ({ page }) => {
  const r = await page.request.get('lab/api/settings/guild-jupyter:plugin');
  expect(r.ok()).toBe(true);
  const settings = await r.json();
  expect(Object.keys(settings.schema.properties).sort()).toEqual(['mainScalar', 'maxRuns', 'notifyOnEnd']);
  expect(settings.schema.title).toBe('Guild runs');
});
