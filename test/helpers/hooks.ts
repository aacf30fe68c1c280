import { killAll } from "./processes";
import { closeAllClients } from "./clients";

/** Mocha root hooks: whatever a test file started is stopped after it, pass or fail. */
export const mochaHooks = {
  async afterAll(): Promise<void> {
    closeAllClients();
    await killAll();
  },
};
