/**
 * Lets the event loop run queued I/O before a long synchronous loop continues, so one big
 * request (listing or destroying thousands of records) cannot stall every other client.
 */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
