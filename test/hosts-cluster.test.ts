import assert from "node:assert/strict";
import { startHosts, waitForFleet } from "./helpers/hosts";
import { RedisCluster } from "./helpers/redis";
import type { SockfleetHost } from "./helpers/sockfleet";
import { adapterApiSuite } from "./suites/adapter-api";

describe("the Socket.IO adapter API across 2 hosts x 2 workers on a 3-node Redis Cluster (adapter mode, sharded)", function () {
  this.timeout(40_000);
  let cluster: RedisCluster;
  let hosts: SockfleetHost[];

  before(async () => {
    cluster = await RedisCluster.start();
    hosts = await startHosts(cluster.url, "adapter", 2, 2, ["--redis-sharded", "true"]);
    await waitForFleet(hosts, 4);
  });
  after(async () => {
    for (const host of hosts ?? []) assert.equal(await host.stop(), 0);
    await cluster?.stop();
  });

  adapterApiSuite(() => hosts.map((h) => h.url), 4);
});
