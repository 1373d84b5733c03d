export type { SessionKey } from './adapter-kit.js';
export type { BudgetChange, BudgetStatus } from './budget.js';
export type {
  AdaptiveBudgetSettings,
  BudgetOptions,
  FixedBudgetSettings,
} from './budget-options.js';
export type { CircuitBreakerSettings } from './circuit-breaker.js';
export type { Clock } from './clock.js';
export type {
  Contract,
  ContractInput,
  ContractLevel,
  ContractName,
  ContractOptions,
  Fallback,
  FallbackInput,
} from './contract.js';
export type { CookieOptions } from './cookie.js';
export type {
  BarrierCause,
  BarrierDecision,
  CheckDecision,
  Decision,
  DecisionReason,
  ErrorDecision,
  FallbackKind,
  PrimaryDecision,
  ReplicaDecision,
  SelectionPolicy,
  WaitDecision,
} from './decide.js';
export type { Duration } from './duration.js';
export type { BeginInput, Engine, EngineOptions, TokenOptions } from './engine.js';
export type { FreshgateErrorCode, TokenRejectionReason } from './errors.js';
export type {
  MemoryPinStoreOptions,
  Pin,
  PinStore,
  PinStoreVouch,
  PinUpdate,
} from './pin-store.js';
export type { Problem } from './problem.js';
export type { BarrierSource, RequestFreshness, RouteOptions } from './request-freshness.js';
export type { RouteListing, RouteTable } from './route-table.js';
export type { ReadCount, TelemetryOptions, TokenIgnoredReason } from './telemetry.js';
export type {
  AsymmetricTokenKey,
  RejectedToken,
  SecretTokenKey,
  SignedToken,
  TokenAlgorithm,
  TokenClaims,
  TokenCodec,
  TokenCodecOptions,
  TokenKey,
  VerifiedToken,
  VerifyResult,
} from './token-codec.js';
export type {
  CircuitState,
  NodeHealth,
  PrimaryPatch,
  PrimaryState,
  ReplicaPatch,
  ReplicaSpec,
  ReplicaState,
  TopologyEvent,
  TopologyOptions,
  TopologySnapshot,
} from './topology.js';
