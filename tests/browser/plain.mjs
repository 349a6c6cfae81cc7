// tests/browser/plain.mjs - the page without xterm.js (no --web-assets), in
// chromium: it must say what to install, show the guest's output as plain
// text with the escape sequences stripped, and send a typed line.
//
// usage: node plain.mjs URL SCREENSHOT
// The guest (tests/browser.bats) writes "\e[1mBOLD\e[0m plain" and, once
// it got "typed-in-plain\r", "plain-ok".

import { withChromium } from "./chromium.mjs";

const [url, screenshot] = process.argv.slice(2);
const timeout = 30000;
await withChromium(async (browser) => {
	const page = await browser.newPage({ viewport: { width: 900, height: 400 } });
	await page.goto(url);
	const missing = await page.locator("#missing").textContent({ timeout });
	if (!missing.includes("npm install --prefix DIR @xterm/xterm@6.0.0"))
		throw new Error(`the page does not say what to install: ${missing}`);
	if (!(await page.locator("#missing").isVisible()))
		throw new Error("the note about xterm.js is not shown");
	console.log("the page says: npm install --prefix DIR @xterm/xterm@6.0.0");
	await page.waitForFunction(
		() => document.getElementById("text").textContent.includes("BOLD plain"),
		null, { timeout });
	const text = await page.locator("#text").textContent();
	if (text.includes("\x1b") || text.includes("[1m"))
		throw new Error(`escape sequences left in: ${JSON.stringify(text)}`);
	console.log(`plain text, escapes stripped: ${JSON.stringify(text.trim())}`);
	await page.locator("#line").fill("typed-in-plain");
	await page.locator("#line").press("Enter");
	await page.waitForFunction(
		() => document.getElementById("text").textContent.includes("plain-ok"),
		null, { timeout });
	console.log("a typed line reached the guest");
	await page.screenshot({ path: screenshot });
});
