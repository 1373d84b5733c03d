export { ManualClock } from './manual-clock.js';
export { type PinStoreHarness, pinStoreContract } from './pin-store-contract.js';
