import net from "node:net";

const MAPPED_V4 = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/** The key of a client address: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is the IPv4 address it maps. */
export function normaliseAddress(address: string): string {
  return MAPPED_V4.exec(address)?.[1] ?? address.toLowerCase();
}

/** One X-Forwarded-For entry as an address: `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:80`, `2001:db8::1`. */
function entryAddress(entry: string): string | undefined {
  let text = entry.trim().replace(/^"|"$/g, "");
  if (text.startsWith("[")) text = text.slice(1, text.indexOf("]") === -1 ? undefined : text.indexOf("]"));
  else if (/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(text)) text = text.slice(0, text.indexOf(":"));
  return net.isIP(text) === 0 ? undefined : normaliseAddress(text);
}

/** X-Forwarded-For values of a raw request head, in order (several header lines are one list). */
export function forwardedFor(head: Buffer): string[] {
  const end = head.indexOf("\r\n\r\n");
  const lines = head.toString("latin1", 0, end === -1 ? head.length : end).split("\r\n").slice(1);
  const entries: string[] = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon === -1 || line.slice(0, colon).trim().toLowerCase() !== "x-forwarded-for") continue;
    entries.push(...line.slice(colon + 1).split(","));
  }
  return entries.map((e) => e.trim()).filter((e) => e !== "");
}

/**
 * The proxies (--trusted-proxies) allowed to name the client address in X-Forwarded-For. Each
 * proxy appends the address it saw, so the header is read from the right: entries of trusted
 * proxies are skipped, and the first untrusted one is the client. Anything left of it was written
 * by the client itself and is ignored.
 */
export class TrustedProxies {
  private readonly list = new net.BlockList();
  readonly empty: boolean;

  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const [address, prefix] = cidr.split("/");
      const type = net.isIP(address) === 6 ? "ipv6" : "ipv4";
      const normalised = normaliseAddress(address);
      if (prefix === undefined) this.list.addAddress(normalised, net.isIP(normalised) === 6 ? "ipv6" : "ipv4");
      else this.list.addSubnet(address, Number(prefix), type);
    }
    this.empty = cidrs.length === 0;
  }

  /** `address` (normalised) is one of the trusted proxies. */
  trusts(address: string): boolean {
    if (this.empty) return false;
    const family = net.isIP(address);
    return family !== 0 && this.list.check(address, family === 6 ? "ipv6" : "ipv4");
  }

  /**
   * The client address of a connection from `peer` (normalised) whose first request head is `head`:
   * the peer itself unless it is a trusted proxy. An unparsable entry stops the walk at the nearest
   * trusted hop, so such clients share that hop's count rather than escape it.
   */
  clientAddress(peer: string, head: Buffer): string {
    if (!this.trusts(peer)) return peer;
    let nearest = peer;
    const entries = forwardedFor(head);
    for (let i = entries.length - 1; i >= 0; i--) {
      const address = entryAddress(entries[i]);
      if (address === undefined) return nearest;
      if (!this.trusts(address)) return address;
      nearest = address;
    }
    return nearest;
  }
}
