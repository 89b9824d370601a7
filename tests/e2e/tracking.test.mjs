// Drives the live tracking page in headless Chromium (Debian's, through playwright-core) the
// way a person watching the demo would, against a running Doorstep (tests/e2e/run starts one
// with scripts/demo): the map is drawn, drivers appear, and for one live order the driver
// marker moves, the timeline advances and the ETA range is shown and updated, all over the
// customer WebSocket. Then its socket is dropped and held down (Playwright's WebSocket
// routing) until the order changes status: the page reconnects with ?since=, is replayed what
// it missed (a `resumed` frame, not a snapshot) and its timeline has every status, once.
//
//   DEMO_URL=http://127.0.0.1:18480/demo E2E_SINCE_MS=<demo start, ms> node --test tracking.test.mjs
//
// Screenshots go to $E2E_ARTIFACTS (default: <repo>/artifacts/e2e).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const DEMO_URL = process.env.DEMO_URL;
const ARTIFACTS = process.env.E2E_ARTIFACTS || join(here, "..", "..", "artifacts", "e2e");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT_MS = Number(process.env.E2E_TIMEOUT_MS || 120000);
// Only orders of this run (the topics keep earlier runs' orders, some abandoned mid-way).
const SINCE_MS = Number(process.env.E2E_SINCE_MS || Date.now());

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs = TIMEOUT_MS) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < timeoutMs) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(500);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
}

test("the tracking page shows a live order: the driver moves and the timeline advances", { timeout: 4 * TIMEOUT_MS }, async () => {
  assert.ok(DEMO_URL, "set DEMO_URL to the page (tests/e2e/run does)");
  const origin = new URL(DEMO_URL).origin;
  mkdirSync(ARTIFACTS, { recursive: true });

  // A live order that has a driver and is not yet picked up: its driver is on the way to the
  // restaurant and its kitchen is still working, so both must change soon.
  const order = await waitFor("a live order with a driver", async () => {
    const r = await fetch(`${origin}/demo/api/orders`);
    const { orders } = await r.json();
    return orders.find((o) => o.driver_id && o.updated_at >= SINCE_MS
      && ["PLACED", "CONFIRMED", "PREPARING"].includes(o.status));
  });

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    // The chosen order's sockets go through a route that can drop them and refuse new ones
    // (the network is "down"); otherwise it connects them to the gateway as they are.
    const link = { down: false, current: null, urls: [] };
    const trackUrl = new RegExp(`/v1/orders/${order.order_id}/track`);
    await page.routeWebSocket(trackUrl, (ws) => {
      link.urls.push(ws.url());
      if (link.down) { ws.close({ code: 4000, reason: "e2e: network down" }); return; }
      link.current = ws;
      ws.connectToServer();
    });
    await page.goto(`${DEMO_URL}?order=${encodeURIComponent(order.order_id)}`);

    // The street map is drawn from the embedded geometry.
    await page.waitForSelector("#streets path.c2", { state: "attached" });
    const streetChars = await page.$eval("#streets path.c2", (p) => p.getAttribute("d").length);
    assert.ok(streetChars > 1000, `street geometry drawn (${streetChars} chars)`);

    // The chosen order's stream is live and its driver is on the map.
    await page.waitForFunction(() => document.getElementById("ws-state").textContent === "live", null, { timeout: TIMEOUT_MS });
    assert.equal(await page.getAttribute("#selected", "data-order"), order.order_id);
    const marker = await page.waitForSelector("#driver-marker", { state: "attached", timeout: TIMEOUT_MS });
    const pos = async () => [await marker.getAttribute("cx"), await marker.getAttribute("cy")].join(",");
    const firstPos = await pos();
    const firstTimeline = await page.$$eval("#timeline li", (l) => l.length);
    assert.ok(firstTimeline >= 2, `snapshot timeline has placement and assignment (${firstTimeline})`);
    await page.screenshot({ path: join(ARTIFACTS, "tracking-start.png") });

    const moved = await waitFor("the driver marker to move", async () => (await pos()) !== firstPos);
    assert.ok(moved);
    const advanced = await waitFor("the timeline to advance", async () =>
      (await page.$$eval("#timeline li", (l) => l.length)) > firstTimeline);
    assert.ok(advanced);
    assert.notEqual(await page.textContent("#sel-status"), "waiting for an order…");

    // The ETA range is shown ("arriving in 6–9 min", routed, not a straight-line estimate)
    // and a newer ETA replaces it.
    const RANGE = /^arriving in \d+–\d+ min/;
    const etaAt = async () => page.getAttribute("#eta", "data-computed-at");
    const firstEta = await waitFor("an ETA range", async () => {
      const text = await page.textContent("#eta");
      return RANGE.test(text) && (await etaAt());
    });
    assert.doesNotMatch(await page.textContent("#eta"), /without routing/);
    await waitFor("a newer ETA", async () => {
      const at = await etaAt();
      return at && Number(at) > Number(firstEta) && RANGE.test(await page.textContent("#eta"));
    });

    // Drop the socket and keep the network down until the order changes status.
    const server = async () => {
      const r = await fetch(`${origin}/demo/api/orders`);
      return (await r.json()).orders.find((o) => o.order_id === order.order_id);
    };
    const timeline = () => page.evaluate((id) => state.streams.get(id).timeline.map((e) => e.seq), order.order_id);
    const before = await timeline();
    const connectionsBefore = link.urls.length;
    link.down = true;
    assert.ok(link.current, "the chosen order's socket went through the route");
    await link.current.close({ code: 4000, reason: "e2e: dropped" });
    await waitFor("the page to notice the drop", async () =>
      (await page.textContent("#ws-state")) !== "live");
    const missed = await waitFor("a status change while the page is away", async () => {
      const o = await server();
      return o && o.changes > before.length && o.changes;
    });
    const refusedWhileDown = link.urls.length - connectionsBefore;
    link.down = false;
    await waitFor("the page to resume", async () =>
      Number(await page.getAttribute("#ws-state", "data-resumes")) >= 1
      && (await timeline()).length >= missed);
    const resumedUrl = link.urls[link.urls.length - 1];
    assert.match(resumedUrl, /\?since=\d+$/, `the reconnect resumes (${resumedUrl})`);
    const after = await timeline();
    assert.deepEqual(after, after.map((_, i) => i), `every status once, in order: ${after}`);
    assert.deepEqual(after.slice(0, before.length), before);
    await page.screenshot({ path: join(ARTIFACTS, "tracking-resumed.png") });
    console.log(`order ${order.order_id}: dropped at ${before.length} entries, ${refusedWhileDown} reconnects refused while down, resumed with ${after.length} (server ${missed})`);

    // Other drivers and the operations panel are there too.
    await waitFor("the operations panel", async () => (await page.textContent("#ops-events")) !== "–", 20000);
    // For the picture: give the fleet a few more seconds to fill the map (not a check).
    await waitFor("more drivers on the map", async () =>
      (await page.$$eval("#drivers circle", (c) => c.length)) >= 8, 30000).catch(() => {});
    const drivers = await page.$$eval("#drivers circle", (c) => c.length);
    assert.ok(drivers >= 1, `drivers on the map: ${drivers}`);
    await page.screenshot({ path: join(ARTIFACTS, "tracking.png") });
    assert.deepEqual(errors, [], "no script errors on the page");
    console.log(`order ${order.order_id}: marker ${firstPos} -> ${await pos()}, timeline ${firstTimeline} -> ${await page.$$eval("#timeline li", (l) => l.length)}, ${drivers} drivers on the map`);
  } finally {
    await browser.close();
  }
});
