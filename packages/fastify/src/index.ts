export { freshgate } from './plugin.js';
export type { FreshgateDecoration, FreshgatePluginOptions, SessionKey } from './types.js';
