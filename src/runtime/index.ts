export { type BackoffPolicy, backoffDelay, sleep } from "./backoff.js";
export { retryOnConflict } from "./conflict.js";
export {
  Controller,
  type ControllerOptions,
  DEFAULT_SYNC_TIMEOUT_MS,
  type Mapper,
  type Predicate,
  type ReconcileReport,
  type ReconcileResultLabel,
  type Reconciler,
  type Result,
} from "./controller.js";
export { clone, deepEqual } from "./deep-equal.js";
export {
  ApiError,
  type ApiRequest,
  isAlreadyExists,
  isConflict,
  isGone,
  isNotFound,
  isTerminal,
  retryAfterMsOf,
  TerminalError,
} from "./errors.js";
export { CoreEventKind, EventRecorder, type EventRecorderOptions, type EventType } from "./events.js";
export { addFinalizer, hasFinalizer, isBeingDeleted, removeFinalizer } from "./finalizers.js";
export { HttpKubeClient, type HttpKubeClientOptions } from "./http-kube-client.js";
export { type EventHandler, Informer, type InformerOptions, type InformerSignal } from "./informer.js";
export { InformerFactory } from "./informer-factory.js";
export type {
  ApiCall,
  ApiObserver,
  ApiResource,
  ApiResourceList,
  KubeClient,
  ListOptions,
  ObjectList,
  PatchOptions,
  WatchEvent,
  WatchHandle,
  WatchOptions,
  WriteOptions,
} from "./kube-client.js";
export { PatchType } from "./kube-client.js";
export { LeaderElector, type LeaderElectorOptions, LeaseKind } from "./leader-election.js";
export {
  type EditableMeta,
  type MetadataWriteResult,
  patchMetadata,
  setAnnotations,
  setLabels,
} from "./metadata.js";
export { controllerOf, isOwnedBy, mapToOwner, ownerReference, withOwnerReference } from "./owner.js";
export { ExponentialRateLimiter } from "./rate-limiter.js";
export {
  apiVersionOf,
  collectionPath,
  type KubeObject,
  keyOf,
  keyString,
  type ObjectKey,
  type ObjectMeta,
  type OwnerReference,
  objectPath,
  parseKey,
  type ResourceKind,
} from "./resource.js";
export {
  type StatusWriteOutcome,
  type StatusWriteResult,
  StatusWriter,
  type StatusWriterOptions,
} from "./status.js";
export { type IndexFunc, Store } from "./store.js";
export { WorkQueue, type WorkQueueObserver, type WorkQueueOptions } from "./workqueue.js";
