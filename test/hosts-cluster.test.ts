import { withFleet } from "./helpers/hosts";
import { RedisCluster } from "./helpers/redis";
import { adapterApiSuite } from "./suites/adapter-api";

describe("the Socket.IO adapter API across 2 hosts x 2 workers on a 3-node Redis Cluster (adapter mode, sharded)", function () {
  this.timeout(40_000);
  const fleet = withFleet({ per: "all", redis: () => RedisCluster.start(), hosts: { mode: "adapter", count: 2, workers: 2, args: ["--redis-sharded", "true"] }, cleanExit: true });

  adapterApiSuite(() => fleet.hosts.map((h) => h.url), 4);
});
