import { pathToFileURL } from "node:url";
import chat from "../apps/chat";
import type { App } from "../apps/types";

/**
 * Loads the user's app module with import(), so both ESM (`export default`) and CommonJS
 * (`module.exports`, or a transpiled `exports.default`) work. Without a path, the chat app runs.
 */
export async function loadApp(appPath: string | undefined): Promise<App> {
  if (!appPath) return chat;
  const mod: unknown = await import(pathToFileURL(appPath).href);
  const outer = (mod as { default?: unknown }).default;
  const candidate = typeof outer === "function" ? outer : (outer as { default?: unknown } | undefined)?.default;
  if (typeof candidate !== "function") {
    throw new Error(`app module ${appPath} must export a function (io, ctx) as default export or module.exports`);
  }
  return candidate as App;
}
