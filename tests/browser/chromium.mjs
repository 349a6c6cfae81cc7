// tests/browser/chromium.mjs - what the browser scripts share: Debian's
// chromium, headless ($CHROMIUM overrides its path), and one way to end:
// the steps run with the browser, the first failure is printed as
// "FAILED: ..." and exits 1, and the browser is closed either way.
// args: more command-line flags for chromium (tests/browser/proxy.mjs).

import { chromium } from "playwright-core";

export async function withChromium(steps, args = []) {
	const browser = await chromium.launch({
		executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
		headless: true,
		args: ["--no-sandbox", "--disable-gpu", ...args],
	});
	let status = 0;
	try {
		await steps(browser);
	} catch (e) {
		console.error(`FAILED: ${e.message}`);
		status = 1;
	} finally {
		await browser.close();
	}
	process.exit(status);
}
