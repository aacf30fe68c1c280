import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { findChromium, launchChromium, type Browser } from "./helpers/browser";
import { SockfleetHost } from "./helpers/sockfleet";
import { waitUntil } from "./helpers/wait";

/** Set SCREENSHOTS_DIR (e.g. docs/screenshots) to save the pages' main states as PNGs. */
const SCREENSHOTS_DIR = process.env.SCREENSHOTS_DIR;

const text = (page: Page, selector: string): Promise<string> => page.locator(selector).innerText();
const logLines = async (page: Page): Promise<string[]> => page.locator("#log li").allInnerTexts();

async function screenshot(page: Page, name: string): Promise<void> {
  if (!SCREENSHOTS_DIR) return;
  mkdirSync(SCREENSHOTS_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS_DIR, `${name}.png`) });
}

/** The pid of the worker serving the page, from #who (`host … · worker … · pid 4711 · websocket`). */
async function workerPid(page: Page): Promise<number> {
  const who = await waitUntil("#who to show the worker", async () => /pid (\d+)/.exec(await text(page, "#who"))?.[1]);
  return Number(who);
}

/** Every text #status showed, with when, from a MutationObserver in the page. */
// Page-side code is passed as strings: this project's TypeScript has no DOM types.
async function watchStatus(page: Page): Promise<void> {
  await page.evaluate(`(() => {
    const status = document.getElementById("status");
    window.statuses = [{ status: status.textContent, at: Date.now() }];
    new MutationObserver(() => window.statuses.push({ status: status.textContent, at: Date.now() }))
      .observe(status, { childList: true, characterData: true, subtree: true });
  })()`);
}

const statuses = (page: Page): Promise<Array<{ status: string; at: number }>> => page.evaluate("window.statuses");

/** Sets #text past its limit (the input's maxlength stops typing past 2000 characters, not a script). */
const fillTooLong = (page: Page): Promise<unknown> => page.evaluate(`document.getElementById("text").value = "x".repeat(2001)`);

describe("the chat page in headless Chromium, against 2 workers", function () {
  this.timeout(120_000);
  const executable = findChromium();
  let host: SockfleetHost;
  let browser: Browser;
  let pages: Page[] = [];

  before(async function () {
    if (!executable) {
      console.log("    (skipped: no Chromium found at $CHROMIUM, /usr/bin/chromium or /usr/bin/chromium-browser; .ci/run installs Debian's chromium)");
      this.skip();
    }
    host = await SockfleetHost.start({ workers: 2 });
    browser = await launchChromium(executable!);
  });
  afterEach(async () => {
    await Promise.all(pages.map((page) => page.close()));
    pages = [];
  });
  after(async () => {
    await browser?.close();
    if (host) assert.equal(await host.stop(), 0);
  });

  async function open(): Promise<Page> {
    const page = await browser.context.newPage();
    pages.push(page);
    await page.goto(host.url);
    await waitUntil("the page to connect", async () => (await text(page, "#status")) === "connected", 20_000);
    await workerPid(page);
    return page;
  }

  /** Two pages served by different workers (the balancer sends a new connection to the least loaded). */
  async function twoPagesOnTwoWorkers(): Promise<[Page, Page]> {
    const first = await open();
    for (let attempt = 0; attempt < 10; attempt++) {
      const second = await open();
      if ((await workerPid(second)) !== (await workerPid(first))) return [first, second];
    }
    throw new Error("no two pages on different workers");
  }

  async function setName(page: Page, name: string): Promise<void> {
    await page.fill("#name", name);
    await page.press("#name", "Enter");
    await waitUntil(`the name ${name}`, async () => (await logLines(page)).includes(`you are ${name}`));
  }

  async function join(page: Page, room: string): Promise<void> {
    await page.fill("#room", room);
    await page.click("#join");
    await waitUntil(`joining ${room}`, async () => (await logLines(page)).includes(`joined ${room}`));
  }

  async function send(page: Page, message: string): Promise<void> {
    await page.fill("#text", message);
    await page.press("#text", "Enter");
  }

  it("lets two named pages on different workers see each other in #members and exchange messages with names", async () => {
    const [ann, bob] = await twoPagesOnTwoWorkers();
    await setName(ann, "ann");
    await setName(bob, "bob");
    await join(ann, "lobby");
    await join(bob, "lobby");
    for (const page of [ann, bob]) {
      await waitUntil("both names in #members", async () => {
        const members = await page.locator("#members li").allInnerTexts();
        return members.length === 2 && members.some((m) => m.startsWith("ann")) && members.some((m) => m.startsWith("bob"));
      });
    }
    await send(ann, "hello from ann");
    await send(bob, "hi ann");
    for (const page of [ann, bob]) {
      await waitUntil("both messages, with names", async () => {
        const lines = await logLines(page);
        return lines.includes("[lobby] ann: hello from ann") && lines.includes("[lobby] bob: hi ann");
      });
    }
    await screenshot(ann, "chat-two-workers");
    await page_leaves(bob, ann);
  });

  /** bob leaves: ann's #members drops him. */
  async function page_leaves(leaver: Page, stayer: Page): Promise<void> {
    await leaver.click("#leave");
    await waitUntil("the leaver gone from #members", async () => {
      const members = await stayer.locator("#members li").allInnerTexts();
      return members.length === 1 && members[0].startsWith("ann");
    });
  }

  it("shows the current transport in #who, websocket after the upgrade", async () => {
    const page = await open();
    await waitUntil("#who to say websocket", async () => (await text(page, "#who")).endsWith("· websocket"));
    assert.match(await text(page, "#who"), /^host \S+ · worker \d+ · pid \d+ · websocket$/);
  });

  it("recovers a page whose worker is SIGKILLed before it received any message: reconnecting, then recovered, and the message sent meanwhile shows once", async () => {
    const [quiet, sender] = await twoPagesOnTwoWorkers();
    // The page got no broadcast at all: socket.io-client has a session id but no offset.
    assert.equal(await quiet.evaluate("window.socket._lastOffset ?? null"), null);
    await watchStatus(quiet);
    const victim = await workerPid(quiet);
    const killedAt = Date.now();
    process.kill(victim, "SIGKILL");
    await waitUntil("#status reconnecting", async () => (await text(quiet, "#status")) === "reconnecting", 15_000);
    await screenshot(quiet, "chat-reconnecting");
    await send(sender, "sent while you were away");
    await waitUntil("#status recovered", async () => (await text(quiet, "#status")) === "recovered", 30_000);
    const history = await statuses(quiet);
    const back = history.find((entry) => entry.status === "recovered")!;
    console.log(`      (the page came back ${back.at - killedAt} ms after its worker was SIGKILLed)`);
    assert.deepEqual(history.map((entry) => entry.status), ["connected", "reconnecting", "recovered"]);
    await waitUntil("the message", async () => (await logLines(quiet)).includes("sent while you were away"));
    await waitUntil("#who to show the new worker", async () => (await workerPid(quiet)) !== victim);
    await screenshot(quiet, "chat-recovered");
    assert.equal((await logLines(quiet)).filter((line) => line === "sent while you were away").length, 1);
  });

  it("shows the server's error for a message over the length limit, and sends nothing", async () => {
    const [writer, reader] = await twoPagesOnTwoWorkers();
    await fillTooLong(writer);
    await writer.click("#send-form button");
    await waitUntil("the error", async () => /text must be a string of at most 2000 characters/.test(await text(writer, "#error")));
    await send(writer, "fence");
    await waitUntil("the fence", async () => (await logLines(reader)).includes("fence"));
    assert.ok((await logLines(reader)).every((line) => !line.includes("xxxx")));
    await writer.setViewportSize({ width: 390, height: 560 });
    await fillTooLong(writer);
    await writer.click("#send-form button");
    await screenshot(writer, "chat-error-phone");
  });
});
