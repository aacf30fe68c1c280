import assert from "node:assert/strict";
import { startHosts, waitForFleet } from "./helpers/hosts";
import { RedisCluster } from "./helpers/redis";
import type { SockfleetHost } from "./helpers/sockfleet";
import { adapterApiSuite } from "./suites/adapter-api";

for (const recovery of ["on", "off"] as const) {
  describe(`the Socket.IO adapter API across 2 hosts x 2 workers on a 3-node Redis Cluster (bridge mode, sharded pub/sub, recovery ${recovery})`, function () {
    this.timeout(40_000);
    let cluster: RedisCluster;
    let hosts: SockfleetHost[];

    before(async () => {
      cluster = await RedisCluster.start();
      hosts = await startHosts(cluster.url, "bridge", 2, 2, ["--redis-sharded", "true", "--recovery", recovery]);
      await waitForFleet(hosts, 4);
    });
    after(async () => {
      for (const host of hosts ?? []) assert.equal(await host.stop(), 0);
      await cluster?.stop();
    });

    adapterApiSuite(() => hosts.map((h) => h.url), 4);

    it("spreads the bridge's connections over the cluster's nodes, named in CLIENT LIST", async () => {
      const names = new Set<string>();
      for (const node of cluster.nodes) for (const line of await node.clients()) names.add(/\bname=(\S+)/.exec(line)![1]);
      const expected = ["pub", "sub", ...(recovery === "on" ? ["log"] : [])].flatMap((role) => ["host-a", "host-b"].map((h) => `sockfleet:${h}:${role}`));
      assert.deepEqual([...names].sort(), expected.sort());
    });
  });
}
