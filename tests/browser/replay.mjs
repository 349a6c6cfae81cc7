// tests/browser/replay.mjs - a new xterm.js viewer types nothing into the
// guest: tests/browser.bats gives the console a history full of queries
// xterm.js answers (ESC [ 6 n, ESC [ c, OSC 11 ; ?, ...) and a guest that
// echoes what it receives.
//
// usage: node replay.mjs URL SHOWN TYPED
//
// Opens URL (a console page), waits until the terminal shows SHOWN (the
// replay is rendered: any answer went out before), then types TYPED.
// Prints one line per step; exits 1 at the first failure.

import { withChromium } from "./chromium.mjs";

const [url, shown, typed] = process.argv.slice(2);
if (!url || !shown || !typed) {
	console.error("usage: node replay.mjs URL SHOWN TYPED");
	process.exit(2);
}
const timeout = 30000;

await withChromium(async (browser) => {
	const page = await browser.newPage({ viewport: { width: 800, height: 480 } });
	page.on("console", (m) => console.log(`  page: ${m.text()}`));
	await page.goto(url);
	await page.waitForFunction(() => window.term !== undefined, null, { timeout });
	await page.waitForFunction((text) => {
		const b = window.term.buffer.active;
		for (let i = 0; i < b.length; i++)
			if (b.getLine(i).translateToString(true).includes(text))
				return true;
		return false;
	}, shown, { timeout });
	console.log(`the replay is on the screen: ${shown}`);
	await page.locator(".xterm-helper-textarea").focus();
	await page.keyboard.type(typed);
	console.log(`typed ${typed}`);
});
