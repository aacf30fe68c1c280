import assert from "node:assert/strict";
import { compiledFixture, SockfleetHost } from "./helpers/sockfleet";
import { adapterApiSuite } from "./suites/adapter-api";

describe("the Socket.IO adapter API across the 3 workers of one host", function () {
  this.timeout(30_000);
  let host: SockfleetHost;

  before(async () => {
    host = await SockfleetHost.start({ workers: 3, app: compiledFixture("adapter-app") });
  });
  after(async () => {
    assert.equal(await host.stop(), 0);
  });

  adapterApiSuite(() => [host.url], 3);
});
