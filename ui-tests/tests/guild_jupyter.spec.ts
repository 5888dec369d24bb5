import { expect, test } from '@jupyterlab/galata';

/**
 * Do not open JupyterLab before the test: the console listener must be
 * attached first to see the activation message.
 */
test.use({ autoGoto: false });

test('activates the guild-jupyter plugin', async ({ page }) => {
  const logs: string[] = [];
  page.on('console', message => {
    logs.push(message.text());
  });

  await page.goto();

  expect(logs.filter(s => s === 'guild-jupyter is activated')).toHaveLength(1);
});

test('lists the about command in the command palette', async ({ page }) => {
  await page.goto();

  expect(await page.evaluate(id => window.jupyterapp.commands.hasCommand(id), 'guild-jupyter:about')).toBe(true);

  await page.keyboard.press('Control+Shift+C');
  const palette = page.locator('#modal-command-palette');
  await expect(palette).toBeVisible();
  await palette.locator('input').fill('About guild-jupyter');
  await expect(
    palette.locator('.lm-CommandPalette-item', { hasText: 'About guild-jupyter' })
  ).toHaveCount(1);
});
