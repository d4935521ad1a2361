'use strict';
// Not a test: takes the README's screenshot of /loop while something
// loads the server (docs/loop.png). Opens BASE/loop in Debian's Chromium,
// waits SECONDS, and saves a screenshot of the first screen.
//
//   node tests/browser/shoot-loop.js http://127.0.0.1:7878 docs/loop.png 60
//
// README.md ("See the loop") gives the whole recipe: a server, a load
// from examples/loadgen.rs, then this.

const h = require('./helpers');

async function main() {
  const [base, out, seconds = '60'] = process.argv.slice(2);
  if (!base || !out) {
    console.error('usage: node shoot-loop.js BASE_URL OUT.png [SECONDS]');
    process.exit(2);
  }
  const browser = await h.launchBrowser();
  try {
    const page = await h.newPage(browser, { label: '/loop', viewport: { width: 1280, height: 900 } });
    await h.gotoPage(page, `${base}/loop`);
    await h.sleep(Number(seconds) * 1000);
    await page.screenshot({ path: out });
    console.log(`wrote ${out}`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
