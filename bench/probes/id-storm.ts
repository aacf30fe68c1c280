/**
 * Connection storm across hosts (README, "Room routing across hosts", socket ids): a 2-host bridge
 * fleet with --recovery off, N websocket connections to host A, 50 at a time. Prints connections/s
 * and Redis PUBLISH calls per connection (INFO commandstats), which were a catch-up request and
 * answers per connection while socket ids were routed on room channels.
 * Run: `npm run build && node dist/bench/probes/id-storm.js [N=1000]`.
 */
import { closeClients, connect, type Client } from "../../test/helpers/clients";
import { startHosts, waitForFleet } from "../../test/helpers/hosts";
import { RedisServer } from "../../test/helpers/redis";

const N = Number(process.argv[2] ?? 1000);
const BATCH = 50;

async function publishes(redis: RedisServer): Promise<number> {
  const info = String(await redis.command("INFO", "commandstats"));
  return Number(/cmdstat_publish:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

async function main(): Promise<void> {
  const redis = await RedisServer.start();
  const hosts = await startHosts(redis.url, "bridge", 2, 1, ["--recovery", "off"]);
  const clients: Client[] = [];
  try {
    await waitForFleet(hosts, 2);
    const before = await publishes(redis);
    const started = Date.now();
    for (let i = 0; i < N; i += BATCH) {
      clients.push(...(await Promise.all(Array.from({ length: Math.min(BATCH, N - i) }, () => connect(hosts[0].url, { transports: ["websocket"] })))));
    }
    const ms = Date.now() - started;
    const published = (await publishes(redis)) - before;
    const roomChannels = ((await redis.command("PUBSUB", "CHANNELS", "*#room#*")) as string[]).length;
    console.log(JSON.stringify({ connections: N, ms, perSecond: Math.round((N * 1000) / ms), publishes: published, publishesPerConnection: +(published / N).toFixed(3), roomChannels }));
  } finally {
    closeClients(clients);
    for (const host of hosts) await host.stop();
    await redis.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
