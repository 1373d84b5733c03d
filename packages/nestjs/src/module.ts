import {
  ConfigError,
  type Contract,
  type ContractInput,
  FreshgateError,
  type RouteTable,
  toProblem,
} from '@freshgate/core';
import { type AdapterKit, createAdapterKit, type SessionKey } from '@freshgate/core/adapter';
import {
  createFreshgate,
  currentDb,
  type FreshDataSource,
  Freshgate,
  type FreshgateOptions,
  type FreshRequest,
  type Queryable,
} from '@freshgate/pg';
import {
  type ArgumentsHost,
  type CallHandler,
  Catch,
  type DynamicModule,
  type ExceptionFilter,
  type ExecutionContext,
  Global,
  Inject,
  Injectable,
  type InjectionToken,
  Module,
  type ModuleMetadata,
  type NestInterceptor,
  type OnApplicationShutdown,
  type OnModuleInit,
  type Provider,
} from '@nestjs/common';
import {
  APP_FILTER,
  APP_INTERCEPTOR,
  BaseExceptionFilter,
  DiscoveryModule,
  DiscoveryService,
  MetadataScanner,
} from '@nestjs/core';
import { Observable, type Subscription } from 'rxjs';
import { recordStarted, sharesContext } from './fresh.js';
import { RouteContracts } from './routes.js';

/** The request as both platforms give it: Express' `Request` or Fastify's `FastifyRequest`. */
export interface NestHttpRequest {
  readonly headers: Record<string, string | string[] | undefined>;
}

/** Options of {@link FreshgateModule.forRoot}. */
export interface FreshgateModuleOptions<Req extends NestHttpRequest = NestHttpRequest> {
  /**
   * What `createFreshgate()` takes: the module creates the Freshgate, starts it with the app
   * and closes it on shutdown. Or a Freshgate of your own, which the module uses as it is
   * (you start and close it).
   */
  gate: FreshgateOptions | Freshgate;
  /** Contract of routes without `@Fresh()`. Default: the engine's (`read-your-writes`). */
  contract?: ContractInput | Contract;
  /** Stable key of the client session (a user id), for server-side pins. Default: none. */
  sessionKey?(req: Req): SessionKey | PromiseLike<SessionKey>;
  /**
   * Answer freshgate's errors (503 with `Retry-After`, 400 for a token refused in strict
   * mode) with `application/problem+json` through {@link FreshgateExceptionFilter}. Default
   * `true`; `false` leaves them to your own filters (`@Catch(FreshgateError)`).
   */
  errorFilter?: boolean;
}

/** Options of {@link FreshgateModule.forRootAsync}. */
export interface FreshgateModuleAsyncOptions<Req extends NestHttpRequest = NestHttpRequest>
  extends Pick<ModuleMetadata, 'imports'> {
  useFactory(
    ...args: never[]
  ):
    | Omit<FreshgateModuleOptions<Req>, 'errorFilter'>
    | Promise<Omit<FreshgateModuleOptions<Req>, 'errorFilter'>>;
  inject?: InjectionToken[];
  /** As {@link FreshgateModuleOptions.errorFilter}; known before the factory runs. */
  errorFilter?: boolean;
}

/** Injection token of the module's options. */
export const FRESHGATE_OPTIONS = Symbol('FRESHGATE_OPTIONS');

const OPTION_NAMES = ['gate', 'contract', 'sessionKey', 'errorFilter'];

/** The Freshgate of the module, whether it owns it, and the per-request glue. */
@Injectable()
export class FreshgateHost implements OnModuleInit, OnApplicationShutdown {
  /** The Freshgate the module routes with. */
  readonly gate: Freshgate;
  readonly #owned: boolean;
  readonly #kit: AdapterKit<NestHttpRequest, object, FreshDataSource>;
  readonly #routes: RouteContracts;
  readonly #discovery: DiscoveryService;
  readonly #scanner: MetadataScanner;
  /** Whether `@FreshDb()` finds this gate's requests through `currentDb()` (first request). */
  #contextShared: boolean | undefined;

  constructor(
    @Inject(FRESHGATE_OPTIONS) state: {
      options: FreshgateModuleOptions;
      gate: Freshgate;
      owned: boolean;
    },
    @Inject(DiscoveryService) discovery: DiscoveryService,
    @Inject(MetadataScanner) scanner: MetadataScanner,
  ) {
    this.gate = state.gate;
    this.#owned = state.owned;
    this.#discovery = discovery;
    this.#scanner = scanner;
    const { contract, sessionKey } = state.options;
    this.#kit = createAdapterKit<NestHttpRequest, object, FreshDataSource>(
      state.gate,
      { contract, sessionKey },
      { name: 'FreshgateModule options', hostOption: 'gate', io: IO },
    );
    this.#routes = new RouteContracts(this.#kit.defaultContract);
  }

  /** Reads every controller's `@Fresh()` declarations: a typo fails here, with the route named. */
  onModuleInit(): void {
    for (const wrapper of this.#discovery.getControllers()) {
      const controller = wrapper.metatype;
      if (typeof controller !== 'function' || controller.prototype === undefined) continue;
      this.#routes.addController(controller, this.#scanner.getAllMethodNames(controller.prototype));
    }
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.#owned) await this.gate.close();
  }

  /** Every route freshgate serves, with its contract (as `routeTable()` of the other adapters). */
  routeTable(): RouteTable {
    return this.#routes.table();
  }

  /** @internal The interceptor's work: start the request, then run the handler inside it. */
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const contract = this.#routes.contractOf(context.getClass(), context.getHandler());
    if (contract === null) return next.handle();
    const http = context.switchToHttp();
    const req = http.getRequest<NestHttpRequest>();
    const res = http.getResponse<object>();
    return new Observable((subscriber) => {
      let inner: Subscription | undefined;
      this.#kit.start(
        req,
        res,
        contract,
        (started) => {
          this.#contextShared ??= sharesContext(started as FreshRequest);
          if (!this.#contextShared) recordStarted(req, started as FreshRequest);
          // Nest binds the handler to the async context in which handle() is called: inside
          // run(), so that currentDb() and the routed pool see this request.
          started.run(() => {
            inner = next.handle().subscribe(subscriber);
          });
        },
        (error) => subscriber.error(error),
      );
      return () => inner?.unsubscribe();
    });
  }
}

function isFastifyReply(res: object): res is FastifyReplyLike {
  return typeof (res as FastifyReplyLike).header === 'function' && 'raw' in res;
}

interface FastifyReplyLike {
  header(name: string, value: string | string[]): unknown;
  getHeader(name: string): unknown;
  removeHeader(name: string): unknown;
}

interface ExpressResponseLike {
  getHeader(name: string): unknown;
  setHeader(name: string, value: string | string[]): unknown;
  append(name: string, value: string | string[]): unknown;
  removeHeader(name: string): unknown;
}

// One I/O for both platforms: the response tells which one runs.
const IO = {
  headers: (req: NestHttpRequest) => req.headers,
  secure: (req: NestHttpRequest) =>
    (req as { secure?: unknown }).secure === true ||
    (req as { protocol?: unknown }).protocol === 'https',
  response: (res: object) => {
    if (isFastifyReply(res)) {
      return {
        get: (name: string) => res.getHeader(name) as never,
        set: (name: string, value: string | string[]) => res.header(name, value),
        // reply.header() appends to an existing set-cookie rather than replacing it.
        append: (name: string, value: string | string[]) => res.header(name, value),
        remove: (name: string) => res.removeHeader(name),
      };
    }
    const r = res as ExpressResponseLike;
    return {
      get: (name: string) => r.getHeader(name) as never,
      set: (name: string, value: string | string[]) => r.setHeader(name, value),
      append: (name: string, value: string | string[]) => r.append(name, value),
      remove: (name: string) => r.removeHeader(name),
    };
  },
};

/** Starts freshgate for every HTTP route it serves; registered by the module. */
@Injectable()
export class FreshgateInterceptor implements NestInterceptor {
  readonly #host: FreshgateHost;
  constructor(@Inject(FreshgateHost) host: FreshgateHost) {
    this.#host = host;
  }
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    return this.#host.intercept(context, next);
  }
}

/**
 * Answers freshgate's errors as the other adapters do: 503 with `Retry-After` when no node
 * can serve a read under its contract, 400 for a token refused in strict mode, both
 * `application/problem+json`. Other errors go to Nest's own handling. Registered globally
 * unless `errorFilter: false`.
 */
@Catch(FreshgateError)
export class FreshgateExceptionFilter extends BaseExceptionFilter implements ExceptionFilter {
  override catch(error: unknown, host: ArgumentsHost): void {
    const problem = host.getType() === 'http' ? toProblem(error) : null;
    if (problem === null) {
      super.catch(error, host);
      return;
    }
    const res = host.switchToHttp().getResponse<object>();
    const adapter = this.httpAdapterHost?.httpAdapter;
    if (adapter === undefined) throw error;
    for (const [name, value] of Object.entries(problem.headers))
      adapter.setHeader(res, name, value);
    adapter.reply(res, JSON.stringify(problem.body), problem.status);
  }
}

/**
 * The request's data source for services anywhere in the call graph, without request-scoped
 * providers: it reads the request from AsyncLocalStorage (`currentDb()`).
 *
 * @example
 * ```ts
 * @Injectable()
 * export class CasesRepository {
 *   constructor(private readonly fresh: FreshgateService) {}
 *   async find(id: string) {
 *     const { rows } = await this.fresh.query('SELECT * FROM cases WHERE id = $1', [id]);
 *     return rows[0];
 *   }
 * }
 * ```
 */
@Injectable()
export class FreshgateService {
  readonly #host: FreshgateHost;
  constructor(@Inject(FreshgateHost) host: FreshgateHost) {
    this.#host = host;
  }

  /** The Freshgate of the module (`status()`, `engine`, `monitor`). */
  get gate(): Freshgate {
    return this.#host.gate;
  }

  /** The data source of the request being handled; throws outside one. */
  get db(): FreshDataSource {
    return currentDb();
  }

  /** `db.query(...)` of the request being handled. */
  readonly query: Queryable['query'] = ((...args: Parameters<Queryable['query']>) =>
    currentDb().query(...args)) as Queryable['query'];

  /** Every route freshgate serves, with its contract. */
  routeTable(): RouteTable {
    return this.#host.routeTable();
  }
}

function checkModuleOptions(options: FreshgateModuleOptions): void {
  if (typeof options !== 'object' || options === null)
    throw new ConfigError('FreshgateModule', 'expected an options object with `gate`');
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.includes(key))
      throw new ConfigError(
        key,
        `unknown FreshgateModule option; expected ${OPTION_NAMES.join(', ')}`,
      );
  }
  if (options.gate === undefined)
    throw new ConfigError('gate', 'give createFreshgate() options or a Freshgate');
}

async function resolveGate(options: FreshgateModuleOptions) {
  checkModuleOptions(options);
  if (options.gate instanceof Freshgate) return { options, gate: options.gate, owned: false };
  const gate = await createFreshgate(options.gate);
  try {
    await gate.start();
  } catch (error) {
    await gate.close();
    throw error;
  }
  return { options, gate, owned: true };
}

function providers(optionsProvider: Provider, errorFilter: boolean): Provider[] {
  return [
    optionsProvider,
    FreshgateHost,
    FreshgateService,
    { provide: APP_INTERCEPTOR, useClass: FreshgateInterceptor },
    ...(errorFilter ? [{ provide: APP_FILTER, useClass: FreshgateExceptionFilter }] : []),
  ];
}

/**
 * freshgate for a NestJS app, on `@nestjs/platform-express` or `@nestjs/platform-fastify`:
 * every controller route gets the request's data source (`@FreshDb()`, or
 * {@link FreshgateService} anywhere in the call graph), reads routed by its `@Fresh()`
 * contract, and the `X-Freshness-*` headers and cookie. Global: import it once.
 *
 * @example
 * ```ts
 * @Module({
 *   imports: [
 *     FreshgateModule.forRoot({
 *       gate: { primary: process.env.DATABASE_URL, replicas: { r1: process.env.REPLICA_URL }, secret },
 *       sessionKey: (req) => req.headers['x-user-id'] as string | undefined,
 *     }),
 *   ],
 *   controllers: [CasesController],
 * })
 * export class AppModule {}
 * ```
 */
@Global()
@Module({})
// biome-ignore lint/complexity/noStaticOnlyClass: a Nest module is a class; forRoot() is the convention.
export class FreshgateModule {
  static forRoot<Req extends NestHttpRequest = NestHttpRequest>(
    options: FreshgateModuleOptions<Req>,
  ): DynamicModule {
    checkModuleOptions(options as FreshgateModuleOptions);
    return {
      module: FreshgateModule,
      imports: [DiscoveryModule],
      providers: providers(
        {
          provide: FRESHGATE_OPTIONS,
          useFactory: () => resolveGate(options as FreshgateModuleOptions),
        },
        options.errorFilter !== false,
      ),
      exports: [FreshgateService, FreshgateHost],
    };
  }

  static forRootAsync<Req extends NestHttpRequest = NestHttpRequest>(
    options: FreshgateModuleAsyncOptions<Req>,
  ): DynamicModule {
    return {
      module: FreshgateModule,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      providers: providers(
        {
          provide: FRESHGATE_OPTIONS,
          useFactory: async (...args: never[]) =>
            resolveGate((await options.useFactory(...args)) as FreshgateModuleOptions),
          inject: options.inject ?? [],
        },
        options.errorFilter !== false,
      ),
      exports: [FreshgateService, FreshgateHost],
    };
  }
}
