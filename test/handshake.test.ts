import assert from "node:assert/strict";
import { closeClients, connect, request, type Client } from "./helpers/clients";
import { compiledFixture, SockfleetHost } from "./helpers/sockfleet";

/**
 * Workers keep a plain copy of each connection's HTTP request instead of the request object
 * itself (memory per connection); what handshakes and apps read from it must be intact.
 */
describe("handshake fields after the request object is released", function () {
  this.timeout(30_000);
  let host: SockfleetHost;
  const clients: Client[] = [];

  before(async () => {
    host = await SockfleetHost.start({ workers: 2, app: compiledFixture("adapter-app") });
  });
  after(async () => {
    closeClients(clients);
    assert.equal(await host.stop(), 0);
  });

  for (const transports of [["polling", "websocket"], ["websocket"]]) {
    it(`keeps headers, query, address and URL in socket.handshake and socket.request (${transports.join(" then ")})`, async () => {
      const client = await connect(host.url, { transports, query: { q: "42" }, extraHeaders: { "x-test": "yes" } });
      clients.push(client);
      const seen = await request<Record<string, unknown>>(client, "handshake");
      assert.equal(seen.header, "yes");
      assert.equal(seen.query, "42");
      assert.match(String(seen.address), /127\.0\.0\.1$/);
      assert.match(String(seen.url), /^\/socket\.io\/\?/);
      assert.equal(seen.secure, false);
      assert.equal(seen.requestHeader, "yes");
      assert.equal(seen.requestUrl, seen.url);
      assert.match(String(seen.requestAddress), /127\.0\.0\.1$/);
    });
  }

  it("builds the handshake of a namespace joined later over the same connection from the kept copy", async () => {
    const main = await connect(host.url, { transports: ["websocket"], query: { q: "7" }, extraHeaders: { "x-test": "later" } });
    clients.push(main);
    await request(main, "whoami");
    // Same Manager, so the same Engine.IO connection: the namespace CONNECT comes after the release.
    // (Manager.socket connects by itself; a second connect() would send a second CONNECT.)
    const custom = main.io.socket("/custom");
    const seen = await request<Record<string, unknown>>(custom, "handshake");
    custom.disconnect();
    assert.equal(seen.header, "later");
    assert.equal(seen.query, "7");
    assert.match(String(seen.address), /127\.0\.0\.1$/);
  });
});
