// tests/browser/proxy.mjs - the web console behind a reverse proxy, in
// chromium: nginx terminates TLS with a self-signed certificate and
// forwards to the daemon (tests/proxy.bats).  There is no DNS: the host
// name of URL is mapped to 127.0.0.1 by chromium's resolver rules.
//
// usage: node proxy.mjs URL SCREENSHOT [USER:PASSWORD]
//
// Opens URL (https://NAME:PORT/console/0), waits for xterm.js and the
// WebSocket (wss://, through the proxy), waits until the guest's
// "hello-through-proxy" is on the terminal, types "typed-through-proxy"
// and Enter, and waits until the guest's answer "proxy-ok" is on it; with
// USER:PASSWORD, answers the proxy's basic authentication.  Prints one
// line per step; exits 1 at the first failure.

import { withChromium } from "./chromium.mjs";

const [url, screenshot, credentials] = process.argv.slice(2);
if (!url || !screenshot) {
	console.error("usage: node proxy.mjs URL SCREENSHOT [USER:PASSWORD]");
	process.exit(2);
}
const timeout = 30000;
const host = new URL(url).hostname;

// Wait until a line of the terminal is exactly text.
async function waitLine(page, text) {
	await page.waitForFunction((t) => {
		const b = window.term.buffer.active;
		for (let i = 0; i < b.length; i++)
			if (b.getLine(i).translateToString(true).trim() === t)
				return true;
		return false;
	}, text, { timeout });
}

await withChromium(async (browser) => {
	const [username, password] = credentials ? credentials.split(":") : [];
	const context = await browser.newContext({
		ignoreHTTPSErrors: true,      // the test's self-signed certificate
		viewport: { width: 900, height: 400 },
		...(credentials ? { httpCredentials: { username, password } } : {}),
	});
	const page = await context.newPage();
	page.on("console", (m) => console.log(`  page: ${m.text()}`));
	const response = await page.goto(url);
	if (!response.ok())
		throw new Error(`${url}: ${response.status()} ${await response.text()}`);
	await page.waitForFunction(() => window.term !== undefined, null, { timeout });
	await page.waitForFunction(
		() => document.getElementById("status").textContent.endsWith("connected"),
		null, { timeout });
	console.log(`page open through the proxy: ${url}`);
	await waitLine(page, "hello-through-proxy");
	console.log("the guest's output reached the page");
	await page.locator(".xterm-helper-textarea").focus();
	await page.keyboard.type("typed-through-proxy");
	await page.keyboard.press("Enter");
	await waitLine(page, "proxy-ok");
	console.log("typing reached the guest, and its answer came back");
	await page.screenshot({ path: screenshot });
}, [`--host-resolver-rules=MAP ${host} 127.0.0.1`]);
