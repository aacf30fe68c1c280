/** sockfleet's public API: the types and helpers app modules and embedders use. */
export type { App, AppContext, AppEvents, MissedMessages, Presence, PresenceChange, PresenceMember, PresencePage } from "./apps/types";
export { defineApp } from "./apps/types";
export type { JoinAuthorizer } from "./auth/join-guard";
export { JoinRefusedError } from "./auth/join-guard";
export { RoomLimitError } from "./worker/guard";
export type { JwtRefusal } from "./auth/jwt-verifier";
export type { Config, ConfigInput } from "./config/schema";
export { loadConfig, ConfigError } from "./config/load";
export { main } from "./main";
/** Thrown by a broadcast the data channel refuses (README "sockfleet's own channels"). */
export { ChannelFullError } from "./worker/data-link";
