export { ManualClock } from './manual-clock.js';
export { type PinStoreHarness, pinStoreContract } from './pin-store-contract.js';
export { createTestHost, type TestDb, type TestHost } from './test-host.js';
