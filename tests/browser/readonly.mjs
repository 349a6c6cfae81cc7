// tests/browser/readonly.mjs - a read-only view (--web-view-token) in
// chromium: the page must show a visible "read-only" badge, show the
// guest's output, and send no keystrokes (the server would discard them
// anyway; the page must not even try).
//
// usage: node readonly.mjs URL SCREENSHOT
// The guest (tests/browser.bats) writes "viewer sees this".

import { withChromium } from "./chromium.mjs";

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
	console.error("usage: node readonly.mjs URL SCREENSHOT");
	process.exit(2);
}
const timeout = 30000;

await withChromium(async (browser) => {
	const page = await browser.newPage({ viewport: { width: 900, height: 400 } });
	page.on("console", (m) => console.log(`  page: ${m.text()}`));
	// Count what the page sends as keystrokes (binary frames); its size
	// report at open (text, before it knows) is not typing.
	await page.addInitScript(() => {
		window.keystrokesSent = 0;
		const send = WebSocket.prototype.send;
		WebSocket.prototype.send = function (data) {
			if (typeof data !== "string")
				window.keystrokesSent++;
			return send.call(this, data);
		};
	});
	await page.goto(url);
	await page.waitForFunction(() => window.term !== undefined, null, { timeout });
	await page.locator("#readonly").waitFor({ state: "visible", timeout });
	const badge = (await page.locator("#readonly").textContent()).trim();
	if (badge !== "read-only")
		throw new Error(`the badge says '${badge}'`);
	console.log("the page shows the badge: read-only");
	await page.waitForFunction(() => {
		const b = window.term.buffer.active;
		for (let i = 0; i < b.length; i++)
			if (b.getLine(i).translateToString(true).includes("viewer sees this"))
				return true;
		return false;
	}, null, { timeout });
	console.log("the guest's output is shown");
	await page.locator(".xterm-helper-textarea").focus();
	await page.keyboard.type("typed by a viewer");
	await page.keyboard.press("Enter");
	const sent = await page.evaluate(() => window.keystrokesSent);
	if (sent !== 0)
		throw new Error(`the page sent ${sent} keystroke frames`);
	console.log("typing sends nothing");
	await page.screenshot({ path: screenshot });
});
