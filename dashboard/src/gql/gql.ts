/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query Me {\n    me {\n      id\n      role\n    }\n  }\n": typeof types.MeDocument,
    "\n  fragment ThroughputSeriesFields on ThroughputSeries {\n    range\n    bucketSeconds\n    buckets {\n      start\n      completed\n      failed\n      successRate\n    }\n  }\n": typeof types.ThroughputSeriesFieldsFragmentDoc,
    "\n  query Job($id: ID!, $locale: Locale) {\n    job(id: $id) {\n      id\n      type\n      owner\n      status\n      stage\n      progress\n      updatedAt\n      priority\n      retryCount\n      maxAttempts\n      correlationId\n      createdAt\n      startedAt\n      completedAt\n      processingTimeMs\n      runAt\n      queuePosition\n      lockedBy\n      payload\n      result\n      metadata\n      error {\n        category\n        message(locale: $locale)\n        technicalMessage\n        details\n        recoverable\n      }\n      events(first: 100) {\n        id\n        fromStatus\n        toStatus\n        attempt\n        stage\n        progress\n        message\n        at\n      }\n    }\n  }\n": typeof types.JobDocument,
    "\n  subscription JobLive($id: ID!) {\n    jobProgress(jobId: $id) {\n      status\n      stage\n      progress\n      at\n    }\n  }\n": typeof types.JobLiveDocument,
    "\n  mutation RetryJob($id: ID!) {\n    retryJob(id: $id) {\n      id\n      status\n    }\n  }\n": typeof types.RetryJobDocument,
    "\n  mutation CancelJob($id: ID!) {\n    cancelJob(id: $id) {\n      outcome\n    }\n  }\n": typeof types.CancelJobDocument,
    "\n  query Jobs($filter: JobFilter, $first: Int, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      edges {\n        node {\n          id\n          type\n          owner\n          status\n          stage\n          progress\n          createdAt\n          updatedAt\n          error {\n            category\n          }\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n": typeof types.JobsDocument,
    "\n  subscription JobsLive($filter: JobUpdatesFilter) {\n    jobUpdateBatches(filter: $filter, batchMs: 500) {\n      changes {\n        jobId\n        status\n        previousStatus\n        stage\n        progress\n        at\n      }\n    }\n  }\n": typeof types.JobsLiveDocument,
    "\n  mutation BulkJobAction($action: BulkJobAction!, $filter: JobFilter!) {\n    bulkJobAction(action: $action, filter: $filter) {\n      action\n      changed\n      cancelRequested\n      limitReached\n    }\n  }\n": typeof types.BulkJobActionDocument,
    "\n  query Overview {\n    queueHealth {\n      status\n      reasons\n      checkedAt\n      stats {\n        windowSeconds\n        counts {\n          queued\n          processing\n          retrying\n          completed\n          failed\n          validationFailed\n          cancelled\n        }\n        successRate\n        averageProcessingMs\n        averageQueueMs\n        stalled\n        oldestQueuedAgeMs\n        failuresByCategory {\n          category\n          count\n        }\n      }\n    }\n    hour: queueThroughput(range: HOUR) {\n      ...ThroughputSeriesFields\n    }\n    day: queueThroughput(range: DAY) {\n      ...ThroughputSeriesFields\n    }\n    week: queueThroughput(range: WEEK) {\n      ...ThroughputSeriesFields\n    }\n  }\n": typeof types.OverviewDocument,
    "\n  subscription OverviewHealth {\n    queueHealthChanged {\n      status\n      at\n    }\n  }\n": typeof types.OverviewHealthDocument,
    "\n  subscription OverviewJobUpdates {\n    jobUpdateBatches(batchMs: 1000) {\n      at\n    }\n  }\n": typeof types.OverviewJobUpdatesDocument,
    "\n  mutation RecoverStalledJobs {\n    recoverStalledJobs {\n      recovered\n    }\n  }\n": typeof types.RecoverStalledJobsDocument,
    "\n  mutation CleanupJobs($olderThanSeconds: Int!) {\n    cleanupJobs(olderThanSeconds: $olderThanSeconds) {\n      deleted\n    }\n  }\n": typeof types.CleanupJobsDocument,
};
const documents: Documents = {
    "\n  query Me {\n    me {\n      id\n      role\n    }\n  }\n": types.MeDocument,
    "\n  fragment ThroughputSeriesFields on ThroughputSeries {\n    range\n    bucketSeconds\n    buckets {\n      start\n      completed\n      failed\n      successRate\n    }\n  }\n": types.ThroughputSeriesFieldsFragmentDoc,
    "\n  query Job($id: ID!, $locale: Locale) {\n    job(id: $id) {\n      id\n      type\n      owner\n      status\n      stage\n      progress\n      updatedAt\n      priority\n      retryCount\n      maxAttempts\n      correlationId\n      createdAt\n      startedAt\n      completedAt\n      processingTimeMs\n      runAt\n      queuePosition\n      lockedBy\n      payload\n      result\n      metadata\n      error {\n        category\n        message(locale: $locale)\n        technicalMessage\n        details\n        recoverable\n      }\n      events(first: 100) {\n        id\n        fromStatus\n        toStatus\n        attempt\n        stage\n        progress\n        message\n        at\n      }\n    }\n  }\n": types.JobDocument,
    "\n  subscription JobLive($id: ID!) {\n    jobProgress(jobId: $id) {\n      status\n      stage\n      progress\n      at\n    }\n  }\n": types.JobLiveDocument,
    "\n  mutation RetryJob($id: ID!) {\n    retryJob(id: $id) {\n      id\n      status\n    }\n  }\n": types.RetryJobDocument,
    "\n  mutation CancelJob($id: ID!) {\n    cancelJob(id: $id) {\n      outcome\n    }\n  }\n": types.CancelJobDocument,
    "\n  query Jobs($filter: JobFilter, $first: Int, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      edges {\n        node {\n          id\n          type\n          owner\n          status\n          stage\n          progress\n          createdAt\n          updatedAt\n          error {\n            category\n          }\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n": types.JobsDocument,
    "\n  subscription JobsLive($filter: JobUpdatesFilter) {\n    jobUpdateBatches(filter: $filter, batchMs: 500) {\n      changes {\n        jobId\n        status\n        previousStatus\n        stage\n        progress\n        at\n      }\n    }\n  }\n": types.JobsLiveDocument,
    "\n  mutation BulkJobAction($action: BulkJobAction!, $filter: JobFilter!) {\n    bulkJobAction(action: $action, filter: $filter) {\n      action\n      changed\n      cancelRequested\n      limitReached\n    }\n  }\n": types.BulkJobActionDocument,
    "\n  query Overview {\n    queueHealth {\n      status\n      reasons\n      checkedAt\n      stats {\n        windowSeconds\n        counts {\n          queued\n          processing\n          retrying\n          completed\n          failed\n          validationFailed\n          cancelled\n        }\n        successRate\n        averageProcessingMs\n        averageQueueMs\n        stalled\n        oldestQueuedAgeMs\n        failuresByCategory {\n          category\n          count\n        }\n      }\n    }\n    hour: queueThroughput(range: HOUR) {\n      ...ThroughputSeriesFields\n    }\n    day: queueThroughput(range: DAY) {\n      ...ThroughputSeriesFields\n    }\n    week: queueThroughput(range: WEEK) {\n      ...ThroughputSeriesFields\n    }\n  }\n": types.OverviewDocument,
    "\n  subscription OverviewHealth {\n    queueHealthChanged {\n      status\n      at\n    }\n  }\n": types.OverviewHealthDocument,
    "\n  subscription OverviewJobUpdates {\n    jobUpdateBatches(batchMs: 1000) {\n      at\n    }\n  }\n": types.OverviewJobUpdatesDocument,
    "\n  mutation RecoverStalledJobs {\n    recoverStalledJobs {\n      recovered\n    }\n  }\n": types.RecoverStalledJobsDocument,
    "\n  mutation CleanupJobs($olderThanSeconds: Int!) {\n    cleanupJobs(olderThanSeconds: $olderThanSeconds) {\n      deleted\n    }\n  }\n": types.CleanupJobsDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Me {\n    me {\n      id\n      role\n    }\n  }\n"): (typeof documents)["\n  query Me {\n    me {\n      id\n      role\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment ThroughputSeriesFields on ThroughputSeries {\n    range\n    bucketSeconds\n    buckets {\n      start\n      completed\n      failed\n      successRate\n    }\n  }\n"): (typeof documents)["\n  fragment ThroughputSeriesFields on ThroughputSeries {\n    range\n    bucketSeconds\n    buckets {\n      start\n      completed\n      failed\n      successRate\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Job($id: ID!, $locale: Locale) {\n    job(id: $id) {\n      id\n      type\n      owner\n      status\n      stage\n      progress\n      updatedAt\n      priority\n      retryCount\n      maxAttempts\n      correlationId\n      createdAt\n      startedAt\n      completedAt\n      processingTimeMs\n      runAt\n      queuePosition\n      lockedBy\n      payload\n      result\n      metadata\n      error {\n        category\n        message(locale: $locale)\n        technicalMessage\n        details\n        recoverable\n      }\n      events(first: 100) {\n        id\n        fromStatus\n        toStatus\n        attempt\n        stage\n        progress\n        message\n        at\n      }\n    }\n  }\n"): (typeof documents)["\n  query Job($id: ID!, $locale: Locale) {\n    job(id: $id) {\n      id\n      type\n      owner\n      status\n      stage\n      progress\n      updatedAt\n      priority\n      retryCount\n      maxAttempts\n      correlationId\n      createdAt\n      startedAt\n      completedAt\n      processingTimeMs\n      runAt\n      queuePosition\n      lockedBy\n      payload\n      result\n      metadata\n      error {\n        category\n        message(locale: $locale)\n        technicalMessage\n        details\n        recoverable\n      }\n      events(first: 100) {\n        id\n        fromStatus\n        toStatus\n        attempt\n        stage\n        progress\n        message\n        at\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription JobLive($id: ID!) {\n    jobProgress(jobId: $id) {\n      status\n      stage\n      progress\n      at\n    }\n  }\n"): (typeof documents)["\n  subscription JobLive($id: ID!) {\n    jobProgress(jobId: $id) {\n      status\n      stage\n      progress\n      at\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RetryJob($id: ID!) {\n    retryJob(id: $id) {\n      id\n      status\n    }\n  }\n"): (typeof documents)["\n  mutation RetryJob($id: ID!) {\n    retryJob(id: $id) {\n      id\n      status\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CancelJob($id: ID!) {\n    cancelJob(id: $id) {\n      outcome\n    }\n  }\n"): (typeof documents)["\n  mutation CancelJob($id: ID!) {\n    cancelJob(id: $id) {\n      outcome\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Jobs($filter: JobFilter, $first: Int, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      edges {\n        node {\n          id\n          type\n          owner\n          status\n          stage\n          progress\n          createdAt\n          updatedAt\n          error {\n            category\n          }\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n"): (typeof documents)["\n  query Jobs($filter: JobFilter, $first: Int, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      edges {\n        node {\n          id\n          type\n          owner\n          status\n          stage\n          progress\n          createdAt\n          updatedAt\n          error {\n            category\n          }\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription JobsLive($filter: JobUpdatesFilter) {\n    jobUpdateBatches(filter: $filter, batchMs: 500) {\n      changes {\n        jobId\n        status\n        previousStatus\n        stage\n        progress\n        at\n      }\n    }\n  }\n"): (typeof documents)["\n  subscription JobsLive($filter: JobUpdatesFilter) {\n    jobUpdateBatches(filter: $filter, batchMs: 500) {\n      changes {\n        jobId\n        status\n        previousStatus\n        stage\n        progress\n        at\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation BulkJobAction($action: BulkJobAction!, $filter: JobFilter!) {\n    bulkJobAction(action: $action, filter: $filter) {\n      action\n      changed\n      cancelRequested\n      limitReached\n    }\n  }\n"): (typeof documents)["\n  mutation BulkJobAction($action: BulkJobAction!, $filter: JobFilter!) {\n    bulkJobAction(action: $action, filter: $filter) {\n      action\n      changed\n      cancelRequested\n      limitReached\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Overview {\n    queueHealth {\n      status\n      reasons\n      checkedAt\n      stats {\n        windowSeconds\n        counts {\n          queued\n          processing\n          retrying\n          completed\n          failed\n          validationFailed\n          cancelled\n        }\n        successRate\n        averageProcessingMs\n        averageQueueMs\n        stalled\n        oldestQueuedAgeMs\n        failuresByCategory {\n          category\n          count\n        }\n      }\n    }\n    hour: queueThroughput(range: HOUR) {\n      ...ThroughputSeriesFields\n    }\n    day: queueThroughput(range: DAY) {\n      ...ThroughputSeriesFields\n    }\n    week: queueThroughput(range: WEEK) {\n      ...ThroughputSeriesFields\n    }\n  }\n"): (typeof documents)["\n  query Overview {\n    queueHealth {\n      status\n      reasons\n      checkedAt\n      stats {\n        windowSeconds\n        counts {\n          queued\n          processing\n          retrying\n          completed\n          failed\n          validationFailed\n          cancelled\n        }\n        successRate\n        averageProcessingMs\n        averageQueueMs\n        stalled\n        oldestQueuedAgeMs\n        failuresByCategory {\n          category\n          count\n        }\n      }\n    }\n    hour: queueThroughput(range: HOUR) {\n      ...ThroughputSeriesFields\n    }\n    day: queueThroughput(range: DAY) {\n      ...ThroughputSeriesFields\n    }\n    week: queueThroughput(range: WEEK) {\n      ...ThroughputSeriesFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription OverviewHealth {\n    queueHealthChanged {\n      status\n      at\n    }\n  }\n"): (typeof documents)["\n  subscription OverviewHealth {\n    queueHealthChanged {\n      status\n      at\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription OverviewJobUpdates {\n    jobUpdateBatches(batchMs: 1000) {\n      at\n    }\n  }\n"): (typeof documents)["\n  subscription OverviewJobUpdates {\n    jobUpdateBatches(batchMs: 1000) {\n      at\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RecoverStalledJobs {\n    recoverStalledJobs {\n      recovered\n    }\n  }\n"): (typeof documents)["\n  mutation RecoverStalledJobs {\n    recoverStalledJobs {\n      recovered\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CleanupJobs($olderThanSeconds: Int!) {\n    cleanupJobs(olderThanSeconds: $olderThanSeconds) {\n      deleted\n    }\n  }\n"): (typeof documents)["\n  mutation CleanupJobs($olderThanSeconds: Int!) {\n    cleanupJobs(olderThanSeconds: $olderThanSeconds) {\n      deleted\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;