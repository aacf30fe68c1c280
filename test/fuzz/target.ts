import type { PacketGenerator } from "./packets";
import type { Tally } from "./tally";

/** What every hostile sender needs: where to send, what to generate, where to count. */
export interface Target {
  port: number;
  adminPort: number;
  packets: PacketGenerator;
  enabled: (kind: string) => boolean;
  tally: Tally;
  /** Session ids of hostile sessions seen so far, for forged "foreign" sids (bounded). */
  sids: string[];
  /** Source address for sender `index`: hostile traffic comes from 127.0.0.2 and up, never 127.0.0.1. */
  localAddress(index: number): string;
  /** Set when the run must stop early (time bound reached or the test failed). */
  stopped(): boolean;
}

export const SOCKET_IO_PATH = "/socket.io/";

export function rememberSid(target: Target, sid: string): void {
  target.sids.push(sid);
  if (target.sids.length > 200) target.sids.splice(0, 100);
}
