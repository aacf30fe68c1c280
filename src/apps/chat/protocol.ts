/** Limits of the reference chat protocol (documented in the README). */
export const MAX_ROOM_LENGTH = 64;
export const MAX_TEXT_LENGTH = 2000;

/** The acknowledgement sent for a rejected request. */
export interface ErrorAck {
  error: string;
}

export function roomError(room: unknown): string | undefined {
  if (typeof room !== "string" || room.length === 0 || room.length > MAX_ROOM_LENGTH) {
    return `room must be a string of 1 to ${MAX_ROOM_LENGTH} characters`;
  }
  return undefined;
}

export function roomMessageError(message: unknown): string | undefined {
  if (typeof message !== "object" || message === null) return "room message must be an object { room, text }";
  const { room, text } = message as { room?: unknown; text?: unknown };
  const bad = roomError(room);
  if (bad) return bad;
  if (typeof text !== "string" || text.length > MAX_TEXT_LENGTH) {
    return `text must be a string of at most ${MAX_TEXT_LENGTH} characters`;
  }
  return undefined;
}
