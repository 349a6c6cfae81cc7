// tests/browser/console.mjs - the web backend's page in a real browser:
// Debian's chromium, headless, driven by playwright-core (pinned in
// package.json here; npm ci --prefix tests/browser).  tests/browser.bats
// runs it against a user-mode Linux guest.
//
// usage: node console.mjs URL SCREENSHOT X Y
//
// 1. Opens URL (a console page), waits for xterm.js and the WebSocket,
//    types `echo $((X*Y))` and Enter, and waits until the terminal shows
//    the product on a line of its own; saves a screenshot to SCREENSHOT.
// 2. `stty size` in the guest, then a smaller viewport: the page reports
//    the new size, and `stty size` must say the terminal's new rows and
//    columns.
// 3. A second page on the same console sees what the first one types.
// Prints one line per step; exits 1 at the first failure.

import { withChromium } from "./chromium.mjs";

const [url, screenshot, x, y] = process.argv.slice(2);
if (!url || !screenshot || !x || !y) {
	console.error("usage: node console.mjs URL SCREENSHOT X Y");
	process.exit(2);
}
const timeout = 30000;

function fail(msg) {
	throw new Error(msg);
}

// The terminal's lines, as text (xterm.js keeps them in its buffer).
async function lines(page) {
	return page.evaluate(() => {
		const b = window.term.buffer.active, out = [];
		for (let i = 0; i < b.length; i++)
			out.push(b.getLine(i).translateToString(true));
		return out;
	});
}

// Wait until a line of the terminal is exactly text; returns its index.
async function waitLine(page, text, after = -1) {
	const end = Date.now() + timeout;
	for (;;) {
		const ls = await lines(page);
		const i = ls.findIndex((l, n) => n > after && l.trim() === text);
		if (i >= 0)
			return i;
		if (Date.now() > end)
			fail(`no line '${text}' in the terminal within ${timeout} ms; it shows:\n` +
			     ls.filter((l) => l.trim()).slice(-15).join("\n"));
		await page.waitForTimeout(50);
	}
}

async function openConsole(browser, viewport) {
	const page = await browser.newPage({ viewport });
	page.on("console", (m) => console.log(`  page: ${m.text()}`));
	await page.goto(url);
	await page.waitForFunction(() => window.term !== undefined, null, { timeout });
	await page.waitForFunction(
		() => document.getElementById("status").textContent.endsWith("connected"),
		null, { timeout });
	return page;
}

// Type a command into the terminal (xterm.js's textarea has the focus).
async function type(page, text) {
	await page.locator(".xterm-helper-textarea").focus();
	await page.keyboard.type(text);
	await page.keyboard.press("Enter");
}

// `stty size` in the guest, and its answer "rows cols".
let marks = 0;
async function sttySize(page) {
	const mark = `size-${++marks}-${x}`;
	await type(page, `echo ${mark}-$(stty size | tr ' ' x)`);
	const end = Date.now() + timeout;
	for (;;) {
		const hit = (await lines(page)).map((l) => l.trim())
			.find((l) => l.startsWith(`${mark}-`) && /^\S+-\d+x\d+$/.test(l));
		if (hit) {
			const [rows, cols] = hit.slice(mark.length + 1).split("x").map(Number);
			return { rows, cols };
		}
		if (Date.now() > end)
			fail(`no answer to stty size within ${timeout} ms`);
		await page.waitForTimeout(50);
	}
}

await withChromium(async (browser) => {
	const page = await openConsole(browser, { width: 1000, height: 640 });
	console.log(`page open: ${url}`);

	const product = String(BigInt(x) * BigInt(y));
	await type(page, `echo $((${x}*${y}))`);
	await waitLine(page, product);
	console.log(`typed echo $((${x}*${y})), the terminal shows ${product}`);
	await page.screenshot({ path: screenshot });
	console.log(`screenshot: ${screenshot}`);

	const before = await sttySize(page);
	const termBefore = await page.evaluate(() => [window.term.rows, window.term.cols]);
	console.log(`stty size: ${before.rows} ${before.cols} (terminal ${termBefore.join(" ")})`);
	if (before.rows !== termBefore[0] || before.cols !== termBefore[1])
		fail("the guest's size is not the terminal's");
	await page.setViewportSize({ width: 640, height: 400 });
	await page.waitForFunction(
		([r, c]) => window.term.rows !== r || window.term.cols !== c,
		termBefore, { timeout });
	const termAfter = await page.evaluate(() => [window.term.rows, window.term.cols]);
	// The report travels to the guest as RESIZE: ask until it is there.
	let after;
	const end = Date.now() + timeout;
	do {
		after = await sttySize(page);
	} while ((after.rows !== termAfter[0] || after.cols !== termAfter[1]) &&
	         Date.now() < end);
	console.log(`after the resize: stty size: ${after.rows} ${after.cols} ` +
	            `(terminal ${termAfter.join(" ")})`);
	if (after.rows !== termAfter[0] || after.cols !== termAfter[1])
		fail("stty size did not follow the browser's terminal");
	if (after.rows === before.rows && after.cols === before.cols)
		fail("the size did not change");

	const second = await openConsole(browser, { width: 640, height: 400 });
	const shared = String(BigInt(y) * 7n);
	await type(page, `echo $((${y}*7))`);
	await waitLine(second, shared);
	console.log(`a second page sees the first one's output: ${shared}`);
});
