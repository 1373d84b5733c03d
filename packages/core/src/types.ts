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
  DecideContext,
  Decision,
  DecisionReason,
  ErrorDecision,
  FallbackKind,
  PrimaryDecision,
  ReplicaDecision,
  RouteRequest,
  SelectionPolicy,
  WaitDecision,
} from './decide.js';
export type { Duration } from './duration.js';
export type { BeginInput, Engine, EngineOptions } from './engine.js';
export type { FreshgateErrorCode, TokenRejectionReason } from './errors.js';
export type { MemoryPinStoreOptions, Pin, PinStore, PinUpdate } from './pin-store.js';
export type { Problem } from './problem.js';
export type { BarrierSource, ResponseSink, RouteOptions } from './request-freshness.js';
export type { RouteDeclaration, RouteListing, RouteTable } from './route-registry.js';
export type { TelemetryOptions, TokenIgnoredReason } from './telemetry.js';
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
