/** A step waiting on people, as the inbox lists it. */
export interface InboxItem {
  requestId: string;
  requestName: string;
  ownerId: string;
  lifecycleClass: 'cattle' | 'pet';
  step: string;
  stepIndex: number;
  groups: string[];
  detail: Record<string, unknown>;
  /** When the step started waiting (the approval row's creation). */
  waitingSince: Date;
}

/** What waits now on one step name, for the backlog gauges. */
export interface ApprovalBacklog {
  step: string;
  waiting: number;
  oldestSeconds: number;
}

/** Reads over the approvals table the deciding side needs; writes go through the request's plan. */
export interface ApprovalQueue {
  /** Pending human steps of requests still pending approval that name one of `groups`, oldest first. */
  inbox(groups: readonly string[], limit: number): Promise<InboxItem[]>;
  /** Requests with a pending step whose timer (detail.dueAt) is at or before `now`, oldest timer first. */
  dueRequests(now: Date, limit: number): Promise<string[]>;
  /** Pending steps of pending requests per step name, with the age of the oldest. */
  backlog(now: Date): Promise<ApprovalBacklog[]>;
}
