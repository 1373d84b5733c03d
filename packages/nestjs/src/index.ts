export { FRESH_METADATA, Fresh, FreshDb, type FreshDeclaration } from './fresh.js';
export {
  FRESHGATE_OPTIONS,
  FreshgateExceptionFilter,
  FreshgateHost,
  FreshgateInterceptor,
  FreshgateModule,
  type FreshgateModuleAsyncOptions,
  type FreshgateModuleOptions,
  FreshgateService,
  type NestHttpRequest,
} from './module.js';
