import fs from "node:fs";
import path from "node:path";
import { instrument } from "@socket.io/admin-ui";
import type { Server } from "socket.io";
import type { Config } from "../config/schema";

/** Namespace the Socket.IO Admin UI connects to. */
export const ADMIN_UI_NAMESPACE = "/admin";
/** Where each worker serves the UI's page when it is switched on (same origin: no CORS setting needed). */
export const ADMIN_UI_PATH = "/admin/";

/**
 * The UI bundled in @socket.io/admin-ui (ui/dist), to be served by sockfleet itself instead of the
 * hosted https://admin.socket.io. Its index.html also links a web font and an icon font from
 * public CDNs; those links are dropped, so the page loads nothing from a third party (text shows
 * in the system font, and icons are blank: the icon font is not shipped in the package).
 */
export function adminUiPage(): { dir: string; index: string } {
  const dir = path.join(path.dirname(require.resolve("@socket.io/admin-ui/package.json")), "ui", "dist");
  const index = fs.readFileSync(path.join(dir, "index.html"), "utf8").replace(/<link\b[^>]*href="https?:\/\/[^"]*"[^>]*>/g, "");
  return { dir, index };
}

/**
 * Switches on the Socket.IO Admin UI (https://admin.socket.io, or the UI bundled in the
 * @socket.io/admin-ui package) for this worker. Every worker instruments its own server under a
 * distinct server id (`host#worker`); the cluster adapter carries the admin namespace's traffic
 * between them, so one UI connection, whichever worker it lands on, shows every worker of the host
 * (and of every host once the Redis tier joins their adapters).
 *
 * Never without credentials: the UI can disconnect sockets and make them join or leave rooms.
 */
export function enableAdminUi(io: Server, config: Config, workerId: number): boolean {
  if (config.adminUiUser === undefined || config.adminUiPasswordHash === undefined) return false;
  instrument(io, {
    namespaceName: ADMIN_UI_NAMESPACE,
    auth: { type: "basic", username: config.adminUiUser, password: config.adminUiPasswordHash },
    serverId: `${config.hostId}#${workerId}`,
    // "production" keeps no per-socket details in memory beyond what the UI asks for.
    mode: "production",
    readonly: false,
  });
  return true;
}
